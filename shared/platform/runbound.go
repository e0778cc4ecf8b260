package platform

import (
	"fmt"
	"slices"
	"time"
)

// How far back the trigger must look for executions that may still run (docs/trigger.md,
// "How far back Forbid and Replace look").
//
// Cloud Run lists a job's executions by creation time, newest first (the v2 API's documented
// order), so a reader that knows the earliest creation time an execution still running can
// have stops at the first execution created before it. That time is the earlier of two bounds:
//
//   - the job template's: an execution started from the current template (by Cloud Scheduler
//     through the trigger, or by hand in the console without overrides) ends within
//     RunShape.MaxRun of its creation;
//   - the trigger's record (RunWindows): before every RunJob call the trigger writes the window
//     [From, Until] in which that execution can exist and run, overrides included. The record
//     is written before the call, so a crash cannot lose it, and its windows are dropped once
//     ended, so it stays small however long the job has run.
//
// Both are widened by ClockSkew. What neither covers is an execution started outside Runway
// (console, gcloud) with a longer timeout or task count than the template's, or from an older
// template with a longer bound: the reader's boundary check (the first execution past the
// bound must have completed) catches one still running there, and the trigger then lists
// everything.

// Cloud Run's defaults for a task template that leaves them unset.
const (
	DefaultTaskTimeout = 600 * time.Second
	DefaultMaxRetries  = 3
)

// AttemptSlack is added to each attempt's timeout: the time Cloud Run may take to schedule and
// start an attempt, and to stop it after its timeout (SIGTERM, then SIGKILL after 10 s). Cloud
// Run documents no such figure: this is an assumption, generous against its observed seconds.
const AttemptSlack = 5 * time.Minute

// DelayedStart is how late Cloud Run may start an execution whose template sets
// delay_execution ("within the next 12 hours depending on available capacity").
const DelayedStart = 12 * time.Hour

// ClockSkew is how far the clocks of the trigger's instances and Cloud Run's creation times
// may disagree; every bound is widened by it.
const ClockSkew = 10 * time.Minute

// maxRun caps MaxRun (ten years: far beyond Cloud Run's longest possible execution, and far
// from overflowing time.Duration).
const maxRun = 10 * 365 * 24 * time.Hour

// RunShape is what decides how long an execution may run: its task template's timeout and
// retries, its task count and parallelism, and delay_execution.
type RunShape struct {
	// Timeout is each attempt's (0: Cloud Run's default, DefaultTaskTimeout).
	Timeout time.Duration
	// MaxRetries is each task's retries after its first attempt.
	MaxRetries int32
	// TaskCount is the execution's number of tasks (0: 1).
	TaskCount int32
	// Parallelism is how many tasks run at once; 0 ("as many as possible") counts as one.
	Parallelism int32
	// Delayed is delay_execution: Cloud Run may start the execution up to DelayedStart late.
	Delayed bool
}

// MaxRun returns the longest an execution of shape s can take from its creation to its end:
// its task waves (tasks / parallelism, rounded up) one after the other, each task's attempts
// one after the other, each attempt its timeout plus AttemptSlack. Parallelism 0 counts as one
// task at a time, since Cloud Run promises no number for it.
func (s RunShape) MaxRun() time.Duration {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTaskTimeout
	}
	tasks := max(int64(s.TaskCount), 1)
	par := min(max(int64(s.Parallelism), 1), tasks)
	waves := (tasks + par - 1) / par
	attempts := max(int64(s.MaxRetries), 0) + 1
	perAttempt := timeout + AttemptSlack
	var d time.Duration
	if steps := waves * attempts; steps > int64(maxRun/perAttempt) {
		d = maxRun
	} else {
		d = time.Duration(steps) * perAttempt
	}
	if s.Delayed {
		d += DelayedStart
	}
	return min(d, maxRun)
}

// RunWindow is when one execution the trigger started can exist and run, on the trigger's
// clock: it was created at or after From (the trigger called RunJob then) and has ended by
// Until.
type RunWindow struct {
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
}

// MaxRunWindows bounds the windows one record keeps: when more are live at once, the two
// whose starts are closest are merged into one that covers both.
const MaxRunWindows = 64

// RunWindows is the trigger's record of the windows of the executions it started of one
// workload that may still run (stored at RunWindowsKey). It only ever covers more time than
// the executions need, never less.
type RunWindows struct {
	Windows []RunWindow `json:"windows"`
}

// RunWindowsKey is the store key of a workload's RunWindows.
func RunWindowsKey(workload string) string { return RunWindowsPrefix + workload }

// live reports whether w may still cover a running execution at now, on a clock that may be
// ClockSkew ahead of its writer's.
func (w RunWindow) live(now time.Time) bool { return w.Until.After(now.Add(-ClockSkew)) }

// Add records w at now: ended windows are dropped, so are windows another one covers, and
// beyond MaxRunWindows the two closest starts are merged.
func (r *RunWindows) Add(w RunWindow, now time.Time) {
	ws := slices.DeleteFunc(append(r.Windows, w), func(x RunWindow) bool { return !x.live(now) })
	slices.SortFunc(ws, func(a, b RunWindow) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return b.Until.Compare(a.Until) // the longer first, so it covers the other
	})
	// Sorted by From, a window is covered by an earlier one that ends no sooner.
	kept := ws[:0]
	for _, x := range ws {
		if n := len(kept); n > 0 && !x.Until.After(kept[n-1].Until) {
			continue
		}
		kept = append(kept, x)
	}
	for len(kept) > MaxRunWindows {
		best := 0
		for i := 1; i+1 < len(kept); i++ {
			if kept[i+1].From.Sub(kept[i].From) < kept[best+1].From.Sub(kept[best].From) {
				best = i
			}
		}
		// Ends ascend with starts once covered windows are gone: the later one ends last.
		kept[best].Until = kept[best+1].Until
		kept = slices.Delete(kept, best+1, best+2)
	}
	r.Windows = kept
}

// Earliest returns the earliest From of the windows still live at now; ok is false when none
// is.
func (r RunWindows) Earliest(now time.Time) (from time.Time, ok bool) {
	for _, w := range r.Windows {
		if w.live(now) && (!ok || w.From.Before(from)) {
			from, ok = w.From, true
		}
	}
	return from, ok
}

// Validate checks a decoded record: every window must end after it starts.
func (r RunWindows) Validate() error {
	if len(r.Windows) > MaxRunWindows {
		return fmt.Errorf("run windows: %d windows, at most %d", len(r.Windows), MaxRunWindows)
	}
	for i, w := range r.Windows {
		if w.From.IsZero() || w.Until.Before(w.From) {
			return fmt.Errorf("run windows: window %d [%s, %s] is not a window", i, w.From.Format(time.RFC3339), w.Until.Format(time.RFC3339))
		}
	}
	return nil
}

// RunningSince returns the earliest creation time an execution of a job that may still be
// running at now can have: the job template's bound (now - template.MaxRun()) or the earliest
// live window of the trigger's record, whichever is earlier, widened by ClockSkew. An
// execution created before it has ended, unless it was started outside Runway with a longer
// shape than the template's (docs/trigger.md).
func RunningSince(now time.Time, template RunShape, r RunWindows) time.Time {
	since := now.Add(-template.MaxRun())
	if from, ok := r.Earliest(now); ok && from.Before(since) {
		since = from
	}
	return since.Add(-ClockSkew)
}
