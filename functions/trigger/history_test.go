package trigger

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/platform"
)

// historyT0 is the manual clock's start in the history tests.
var historyT0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// newHistoryEnv is an env whose emulator and Handler share a manual clock, with a job
// "nightly" whose template runs `sleep $SLEEP` (0 by default) with a 60 s timeout and no
// retries: its longest run is 6 min (60 s + platform.AttemptSlack).
func newHistoryEnv(t testing.TB, policy string, pageSize int) (*env, *clock.ManualClock, *runpb.Job) {
	t.Helper()
	clk := clock.NewManual(historyT0)
	e := newEnvWith(t, emulator.Options{OpDelay: time.Millisecond, Clock: clk})
	e.h.listPage = pageSize
	ctx := ctxT(t)
	s := platform.Settings{Workload: "nightly", ConcurrencyPolicy: policy}
	op, err := e.cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{
		Parent: "projects/" + testProject + "/locations/" + region2,
		JobId:  "nightly",
		Job: &runpb.Job{
			Labels:      map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "nightly"},
			Annotations: map[string]string{platform.AnnotationSettings: s.Encode()},
			Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{
				Containers: []*runpb.Container{{Name: "job", Image: "us-east1-docker.pkg.dev/runway-test/nightly/app:1", Command: []string{"sh", "-c", "sleep ${SLEEP:-0}"}}},
				Retries:    &runpb.TaskTemplate_MaxRetries{MaxRetries: 0},
				Timeout:    durationpb.New(time.Minute),
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	job, err := op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return e, clk, job
}

// runOutside starts an execution as the console or gcloud would, without Runway: no window is
// recorded. sleep 0 waits for its end.
func (e *env) runOutside(t testing.TB, job *runpb.Job, sleep int, timeout time.Duration) string {
	t.Helper()
	ov := &runpb.RunJobRequest_Overrides{ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Env: []*runpb.EnvVar{plainEnv("SLEEP", fmt.Sprint(sleep))}}}}
	if timeout > 0 {
		ov.Timeout = durationpb.New(timeout)
	}
	op, err := e.cl.Jobs.RunJob(ctxT(t), &runpb.RunJobRequest{Name: job.Name, Overrides: ov})
	if err != nil {
		t.Fatal(err)
	}
	x, err := op.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if sleep == 0 {
		e.waitCompleted(t, x.Name)
	}
	return x.Name
}

// runThrough starts an execution through the trigger (an Allow request with overrides).
func (e *env) runThrough(t testing.TB, id string, sleep int, timeout string, tasks int) string {
	t.Helper()
	req := platform.RunRequest{RequestID: id, Workload: "nightly", Env: map[string]string{"SLEEP": fmt.Sprint(sleep)}, Timeout: timeout, TaskCount: tasks, ConcurrencyPolicy: "Allow"}
	if err := e.h.Handle(ctxT(t), runEvent(t, "nightly", req)); err != nil {
		t.Fatal(err)
	}
	rec, _ := e.record(t, platform.RunRecordKey("nightly", id))
	if rec.Outcome != platform.RunStarted {
		t.Fatalf("request %s: %+v", id, rec)
	}
	return rec.Execution
}

// listCalls counts the emulator's ListExecutions calls (pages) from now on.
func (e *env) listCalls(t testing.TB) func() int {
	t.Helper()
	if err := e.emu.Faults().Add(fault.Rule{Method: "ListExecutions"}); err != nil { // OK code, no delay: counts only
		t.Fatal(err)
	}
	rules := e.emu.Faults().Rules()
	i, base := len(rules)-1, rules[len(rules)-1].Used
	return func() int { return e.emu.Faults().Rules()[i].Used - base }
}

// TestForbidLooksBackFarEnough plays histories against the bound of platform.RunningSince:
// the look at running executions reads the pages it must (the emulator counts them) and no
// more, and finds every execution that may still run. Pages hold 3 executions; 6 completed
// template runs ("history") sit between the past runs and the request.
func TestForbidLooksBackFarEnough(t *testing.T) {
	const history = 6
	type past struct {
		at      time.Duration // after historyT0
		outside bool          // started without Runway (no window recorded)
		sleep   int           // seconds (real time) the execution runs, 0: it completes at once
		timeout string        // timeout override
		tasks   int           // task count override
	}
	tests := []struct {
		name      string
		policy    string
		past      []past
		historyAt time.Duration
		now       time.Duration // of the request, after historyT0
		wantSkip  bool          // a past run is found running (Forbid skips, Replace replaces)
		residual  bool          // a past run is still running, and is not found
		wantPages int
	}{
		{name: "template only: the history past the bound is not read", policy: "Forbid",
			historyAt: time.Hour, now: 24 * time.Hour, wantPages: 1},
		{name: "override recorded: a long run behind the history is found", policy: "Forbid",
			past: []past{{sleep: 600, timeout: "10h"}}, historyAt: 2 * time.Hour, now: 3 * time.Hour, wantSkip: true, wantPages: 3},
		{name: "override recorded: Replace cancels it", policy: "Replace",
			past: []past{{sleep: 600, timeout: "10h"}}, historyAt: 2 * time.Hour, now: 3 * time.Hour, wantSkip: true, wantPages: 3},
		{name: "override expired: its window no longer counts", policy: "Forbid",
			past: []past{{sleep: 600, timeout: "10h"}}, historyAt: 2 * time.Hour, now: 11 * time.Hour, wantPages: 1},
		{name: "task count override recorded: looked back to, though it has ended", policy: "Forbid",
			past: []past{{tasks: 3}}, historyAt: 10 * time.Minute, now: 27 * time.Minute, wantPages: 3},
		{name: "started outside Runway, running just inside the bound: found", policy: "Forbid",
			past: []past{{outside: true, sleep: 600, timeout: "1h"}}, historyAt: time.Minute, now: 15 * time.Minute, wantSkip: true, wantPages: 3},
		{name: "started outside Runway, running just past the bound: the boundary check reads everything", policy: "Forbid",
			past: []past{{outside: true, sleep: 600, timeout: "1h"}}, historyAt: -1, now: 17 * time.Minute, wantSkip: true, wantPages: 3},
		{name: "documented residual: outside Runway, past the bound, behind completed runs: not seen", policy: "Forbid",
			past: []past{{outside: true, sleep: 600, timeout: "1h"}}, historyAt: time.Minute, now: 30 * time.Minute, residual: true, wantPages: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, clk, job := newHistoryEnv(t, tt.policy, 3)
			if tt.historyAt < 0 { // the history comes first, at historyT0
				for range history {
					e.runOutside(t, job, 0, 0)
				}
			}
			var running []string
			for i, p := range tt.past {
				clk.Set(historyT0.Add(p.at))
				var name string
				if p.outside {
					d, _ := time.ParseDuration(p.timeout)
					name = e.runOutside(t, job, p.sleep, d)
				} else {
					name = e.runThrough(t, fmt.Sprint("past-", i), p.sleep, p.timeout, p.tasks)
				}
				if p.sleep > 0 {
					running = append(running, name)
				}
			}
			if tt.historyAt >= 0 {
				clk.Set(historyT0.Add(tt.historyAt))
				for range history {
					e.runOutside(t, job, 0, 0)
				}
			}
			clk.Set(historyT0.Add(tt.now))
			if !tt.wantSkip && !tt.residual { // whatever ran has ended by now (killed at its timeout)
				for _, name := range running {
					e.waitCompleted(t, name)
				}
			}
			pages := e.listCalls(t)
			req := platform.RunRequest{RequestID: "now", Workload: "nightly", ConcurrencyPolicy: tt.policy}
			if err := e.h.Handle(ctxT(t), runEvent(t, "nightly", req)); err != nil {
				t.Fatal(err)
			}
			got := pages()
			rec, _ := e.record(t, platform.RunRecordKey("nightly", "now"))
			switch {
			case tt.wantSkip && tt.policy == "Forbid":
				if rec.Outcome != platform.RunSkipped || !strings.Contains(rec.Reason, shortNames(running)) {
					t.Errorf("record %s %q, want skipped for %s", rec.Outcome, rec.Reason, shortNames(running))
				}
			case tt.wantSkip:
				if rec.Outcome != platform.RunStarted || rec.Reason != "replaced "+shortNames(running) {
					t.Errorf("record %s %q, want started, replaced %s", rec.Outcome, rec.Reason, shortNames(running))
				}
			default:
				if rec.Outcome != platform.RunStarted || rec.Reason != "" {
					t.Errorf("record %s %q, want started", rec.Outcome, rec.Reason)
				}
			}
			if got != tt.wantPages {
				t.Errorf("ListExecutions pages read = %d, want %d", got, tt.wantPages)
			}
		})
	}
}

// TestRunWindowRecordedBeforeRunJob makes RunJob fail: the window of the run it would have
// started is in the store already, and a store that refuses the window stops the run.
func TestRunWindowRecordedBeforeRunJob(t *testing.T) {
	e, _, _ := newHistoryEnv(t, "Allow", listPage)
	e.addFault(t, `{"method":"RunJob","code":14,"times":1}`)
	req := platform.RunRequest{RequestID: "w1", Workload: "nightly", Timeout: "10h"}
	if err := e.h.Handle(ctxT(t), runEvent(t, "nightly", req)); err == nil {
		t.Fatal("Handle with RunJob failing = nil, want a transient error")
	}
	r, _, err := e.h.windows(ctxT(t), "nightly")
	if err != nil {
		t.Fatal(err)
	}
	want := platform.RunShape{Timeout: 10 * time.Hour}.MaxRun() + testTiming.RunJob + testTiming.Settle
	if len(r.Windows) != 1 || !r.Windows[0].From.Equal(historyT0) || r.Windows[0].Until.Sub(r.Windows[0].From) != want {
		t.Errorf("windows %+v, want one from %s lasting %s", r.Windows, historyT0, want)
	}
	// A record that cannot be decoded stops every run of the workload until it is fixed.
	if _, err := e.store.Put(ctxT(t), platform.RunWindowsKey("nightly"), []byte(`{"windows":[{"from":"x"}]}`), 0); err == nil {
		t.Fatal("Put over an existing record with generation 0 succeeded")
	}
	obj, err := e.store.Get(ctxT(t), platform.RunWindowsKey("nightly"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Put(ctxT(t), platform.RunWindowsKey("nightly"), []byte(`{"windows":[{"from":"x"}]}`), obj.Generation); err != nil {
		t.Fatal(err)
	}
	n := len(e.executions(t, nightlyJob))
	if err := e.h.Handle(ctxT(t), runEvent(t, "nightly", platform.RunRequest{RequestID: "w2", Workload: "nightly"})); err == nil || !strings.Contains(err.Error(), "run windows") {
		t.Errorf("Handle with a broken record = %v, want its error", err)
	}
	if got := len(e.executions(t, nightlyJob)); got != n {
		t.Errorf("%d executions, want %d: nothing may start without its window", got, n)
	}
}
