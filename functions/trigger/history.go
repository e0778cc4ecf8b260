package trigger

// How far back Forbid and Replace look for running executions (platform.RunningSince).
//
// Cloud Run lists a job's executions by creation time, newest first, so the look stops at the
// first execution created before the bound, whatever the job's history. The bound is the
// template's longest run or the earliest window of the trigger's record (platform.RunWindows),
// to which every RunJob call adds its own window before it is made. Two checks keep the bound
// honest: an execution seen out of order, or the first one past the bound still running,
// means an assumption failed; the look then goes on through every execution, and says so.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// listPage is the page size of the look at running executions: the running ones are the
// newest, and a page past the bound is rarely needed.
const listPage = 20

// maxWindowsRecord bounds the bytes of a stored RunWindows before it is decoded (MaxRunWindows
// windows take about 6 KiB).
const maxWindowsRecord = 64 << 10

// shapeOf returns what bounds the run of an execution of job with ov (nil: the template's).
func shapeOf(job *runpb.Job, ov *runpb.RunJobRequest_Overrides) platform.RunShape {
	et := job.GetTemplate()
	tt := et.GetTemplate()
	s := platform.RunShape{
		Timeout:     tt.GetTimeout().AsDuration(),
		MaxRetries:  platform.DefaultMaxRetries,
		TaskCount:   et.GetTaskCount(),
		Parallelism: et.GetParallelism(),
		Delayed:     et.GetDelayExecution(),
	}
	if tt.GetTimeout() == nil {
		s.Timeout = 0 // Cloud Run's default
	}
	if tt.GetRetries() != nil {
		s.MaxRetries = tt.GetMaxRetries()
	}
	if ov.GetTaskCount() > 0 {
		s.TaskCount = ov.GetTaskCount()
	}
	if ov.GetTimeout() != nil {
		s.Timeout = ov.GetTimeout().AsDuration()
	}
	return s
}

// windows reads the workload's record of run windows (empty if there is none) and its
// generation.
func (h *Handler) windows(ctx context.Context, workload string) (platform.RunWindows, int64, error) {
	key := platform.RunWindowsKey(workload)
	obj, err := h.store.Get(ctx, key)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return platform.RunWindows{}, 0, nil
	case err != nil:
		return platform.RunWindows{}, 0, fmt.Errorf("run windows %s: %w", key, err)
	case len(obj.Data) > maxWindowsRecord:
		return platform.RunWindows{}, 0, fmt.Errorf("run windows %s: %d bytes, at most %d", key, len(obj.Data), maxWindowsRecord)
	}
	var r platform.RunWindows
	if err := json.Unmarshal(obj.Data, &r); err != nil {
		return platform.RunWindows{}, 0, fmt.Errorf("run windows %s: %w", key, err)
	}
	if err := r.Validate(); err != nil {
		return platform.RunWindows{}, 0, fmt.Errorf("run windows %s: %w", key, err)
	}
	return r, obj.Generation, nil
}

// recordWindow adds the window of the execution the holder is about to start to the
// workload's record, before RunJob is called: a holder that crashes after the call has left
// it. A concurrent writer makes the conditioned Put fail; it is read again and retried.
func (h *Handler) recordWindow(ctx context.Context, workload string, shape platform.RunShape) error {
	key := platform.RunWindowsKey(workload)
	for range 5 {
		r, gen, err := h.windows(ctx, workload)
		if err != nil {
			return err
		}
		now := h.now()
		// The execution is created before this holder's RunJob call ends plus Settle (step 5).
		r.Add(platform.RunWindow{From: now, Until: now.Add(h.t.RunJob + h.t.Settle + shape.MaxRun())}, now)
		_, err = h.put(ctx, key, r, gen)
		if !errors.Is(err, state.ErrPrecondition) {
			if err != nil {
				return fmt.Errorf("run windows %s: %w", key, err)
			}
			return nil
		}
	}
	return fmt.Errorf("run windows %s: written by others five times in a row", key)
}

// look is what the look at running executions read, for its log line and the tests.
type look struct {
	since time.Time // the bound: executions created before it have ended
	pages int       // ListExecutions calls
	read  int       // executions read
	full  bool      // an assumption failed: every execution was read
}

// active returns the names of the job's executions that have not completed. It reads the job's
// executions newest first and stops at the first one created before the bound that has
// completed (see the top of this file).
func (h *Handler) active(ctx context.Context, job *runpb.Job, workload string) ([]string, look, error) {
	r, _, err := h.windows(ctx, workload)
	if err != nil {
		return nil, look{}, err
	}
	l := look{since: platform.RunningSince(h.now(), shapeOf(job, nil), r)}
	var names []string
	var prev time.Time
	pager := iterator.NewPager(h.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: job.Name}), h.listPage, "")
	for {
		var page []*runpb.Execution
		next, err := pager.NextPage(&page)
		if err != nil {
			return nil, l, fmt.Errorf("run.ListExecutions %s: %w", job.Name, err)
		}
		l.pages++
		for _, e := range page {
			l.read++
			created, running := e.GetCreateTime().AsTime(), e.GetCompletionTime() == nil
			if !l.full && l.read > 1 && created.After(prev) {
				l.full = true
				h.log.Warn().Str("job", job.Name).Str("execution", e.GetName()).Msg("executions listed out of creation order: every execution is looked at")
			}
			prev = created
			if !l.full && created.Before(l.since) {
				if !running {
					h.log.Debug().Str("job", job.Name).Time("since", l.since).Int("pages", l.pages).Int("read", l.read).Msg("running executions looked for")
					return names, l, nil
				}
				l.full = true
				h.log.Warn().Str("job", job.Name).Str("execution", e.GetName()).Time("created", created).Time("since", l.since).
					Msg("an execution created before the bound is still running (started outside Runway with a longer timeout or task count?): every execution is looked at")
			}
			if running {
				names = append(names, e.GetName())
			}
		}
		if next == "" {
			return names, l, nil
		}
	}
}
