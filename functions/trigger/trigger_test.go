package trigger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
)

// nightlyJob is the full name of the "nightly" job, which lives in the second region of its
// workload (the first has none: locate must look further).
var nightlyJob = platform.JobName(testProject, region2, "nightly")

// TestOneExecutionForTenDeliveries delivers one run request ten times, five of them at once,
// and expects exactly one execution, with the request's overrides and the RUNWAY_* env.
func TestOneExecutionForTenDeliveries(t *testing.T) {
	e := newEnv(t)
	e.createJob(t, "nightly", region2, platform.Settings{ConcurrencyPolicy: "Forbid"}, `echo "$FROM_JOB $SHARED $LEVEL $RUNWAY_TRIGGER $RUNWAY_REQUEST_ID" "$@"`)
	req := platform.RunRequest{RequestID: "ci-77-1001", Workload: "nightly", Args: []string{"--dry-run"}, Env: map[string]string{"LEVEL": "debug", "SHARED": "request"},
		TaskCount: 2, Timeout: "90s", Reason: "backfill", RequestedBy: "alice"}
	ev := runEvent(t, "nightly", req)

	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.h.Handle(ctxT(t), ev) }()
	}
	wg.Wait()
	for i := 5; i < 10; i++ {
		errs[i] = e.h.Handle(ctxT(t), ev)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("delivery %d: %v (want nil: the duplicates wait for the holder and acknowledge)", i, err)
		}
	}
	execs := e.executions(t, nightlyJob)
	if len(execs) != 1 {
		t.Fatalf("%d executions, want 1", len(execs))
	}
	x := execs[0]
	env := envOf(x)
	wantEnv := map[string]string{"FROM_JOB": "job", "SHARED": "request", "LEVEL": "debug",
		platform.EnvTrigger: platform.TriggerManual, platform.EnvRequestID: "ci-77-1001"}
	for k, v := range wantEnv {
		if env[k] != v {
			t.Errorf("execution env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env[platform.EnvScheduledTime]; ok {
		t.Errorf("a manual run has %s", platform.EnvScheduledTime)
	}
	if got := x.Template.Containers[0].Args; !slices.Equal(got, []string{"--dry-run"}) {
		t.Errorf("args = %q, want [--dry-run]", got)
	}
	if x.TaskCount != 2 || x.Template.Timeout.AsDuration() != 90*time.Second {
		t.Errorf("task_count %d, timeout %v; want 2, 90s", x.TaskCount, x.Template.Timeout.AsDuration())
	}
	rec, ok := e.record(t, platform.RunRecordKey("nightly", "ci-77-1001"))
	if !ok || rec.Outcome != platform.RunStarted || rec.Execution != x.Name || rec.LogURI != x.LogUri || rec.Trigger != platform.TriggerManual || rec.Attempts != 1 {
		t.Errorf("record = %+v, want started with %s, attempt 1", rec, x.Name)
	}
}

// TestScheduledSlotFiredTwice fires one slot twice (Cloud Scheduler delivers at least once)
// and the next slot once: two executions, each knowing its slot.
func TestScheduledSlotFiredTwice(t *testing.T) {
	e := newEnv(t)
	e.createJob(t, "nightly", region2, platform.Settings{Schedule: "*/15 * * * *", ConcurrencyPolicy: "Allow"}, "true")
	slot := time.Now().UTC().Truncate(15 * time.Minute)
	deliveries := []struct {
		msgID     string
		published time.Time
	}{
		{msgID: "s1", published: slot.Add(2 * time.Second)},
		{msgID: "s2", published: slot.Add(40 * time.Second)}, // the second firing of the same slot
		{msgID: "s1", published: slot.Add(2 * time.Second)},  // and a redelivery of the first
	}
	for _, d := range deliveries {
		if err := e.h.Handle(ctxT(t), scheduledEvent(t, "nightly", d.msgID, d.published)); err != nil {
			t.Fatalf("delivery %s: %v", d.msgID, err)
		}
	}
	if n := len(e.executions(t, nightlyJob)); n != 1 {
		t.Fatalf("%d executions after one slot fired twice, want 1", n)
	}
	next := slot.Add(15 * time.Minute)
	e.clock.Advance(time.Until(next) + 3*time.Second)
	if err := e.h.Handle(ctxT(t), scheduledEvent(t, "nightly", "s3", next.Add(3*time.Second))); err != nil {
		t.Fatal(err)
	}
	execs := e.executions(t, nightlyJob)
	if len(execs) != 2 {
		t.Fatalf("%d executions after two slots, want 2", len(execs))
	}
	for i, want := range []time.Time{slot, next} {
		env := envOf(execs[i])
		key := platform.SlotRecordKey("nightly", want)
		if env[platform.EnvTrigger] != platform.TriggerSchedule || env[platform.EnvScheduledTime] != want.Format(time.RFC3339) || env[platform.EnvRequestID] != key {
			t.Errorf("execution %d env = %v, want trigger schedule, slot %s, request id %s", i, env, want.Format(time.RFC3339), key)
		}
		rec, ok := e.record(t, key)
		if !ok || rec.Outcome != platform.RunStarted || rec.Execution != execs[i].Name || !rec.ScheduledTime.Equal(want) {
			t.Errorf("record of slot %s = %+v", want, rec)
		}
	}
}

// TestScheduledSkips covers the scheduled requests that start nothing.
func TestScheduledSkips(t *testing.T) {
	slot := time.Now().UTC().Truncate(time.Hour)
	tests := []struct {
		name        string
		settings    platform.Settings
		published   time.Time
		delivered   time.Duration // handler clock: slot + this
		wantOutcome string
		wantReason  string
	}{
		{name: "late beyond the starting deadline", settings: platform.Settings{Schedule: "0 * * * *", StartingDeadline: 5 * time.Minute},
			published: slot.Add(time.Second), delivered: 6 * time.Minute, wantOutcome: platform.RunMissed,
			wantReason: "later than its slot " + slot.Format(time.RFC3339) + " plus the starting deadline 5m0s"},
		{name: "suspended", settings: platform.Settings{Schedule: "0 * * * *", Suspend: true},
			published: slot.Add(time.Second), delivered: time.Second, wantOutcome: platform.RunSkipped,
			wantReason: "the job is suspended (spec.suspend): scheduled runs are ignored"},
		{name: "within the starting deadline", settings: platform.Settings{Schedule: "0 * * * *", StartingDeadline: 5 * time.Minute},
			published: slot.Add(time.Second), delivered: 4 * time.Minute, wantOutcome: platform.RunStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.settings.ConcurrencyPolicy = "Forbid"
			e.createJob(t, "nightly", region2, tt.settings, "true")
			e.clock.Advance(time.Until(slot.Add(tt.delivered)))
			ev := scheduledEvent(t, "nightly", "s1", tt.published)
			for range 2 {
				if err := e.h.Handle(ctxT(t), ev); err != nil {
					t.Fatal(err)
				}
			}
			rec, _ := e.record(t, platform.SlotRecordKey("nightly", slot))
			if rec.Outcome != tt.wantOutcome || !strings.Contains(rec.Reason, tt.wantReason) {
				t.Errorf("record = %s %q, want %s containing %q", rec.Outcome, rec.Reason, tt.wantOutcome, tt.wantReason)
			}
			wantExecs := 0
			if tt.wantOutcome == platform.RunStarted {
				wantExecs = 1
			}
			if n := len(e.executions(t, nightlyJob)); n != wantExecs {
				t.Errorf("%d executions, want %d", n, wantExecs)
			}
		})
	}
}

// TestConcurrencyPolicies starts a long run, then requests a second one under each policy.
func TestConcurrencyPolicies(t *testing.T) {
	tests := []struct {
		name       string
		jobPolicy  string
		asked      string // the second request's own policy
		wantSecond string // outcome of the second request
		wantReason string
		wantActive int // executions still running afterwards
		firstEnds  bool
	}{
		{name: "Forbid skips", jobPolicy: "Forbid", wantSecond: platform.RunSkipped, wantReason: "previous run still active: nightly-", wantActive: 1},
		{name: "Replace cancels then starts", jobPolicy: "Replace", wantSecond: platform.RunStarted, wantReason: "replaced nightly-", wantActive: 1, firstEnds: true},
		{name: "Allow overlaps", jobPolicy: "Allow", wantSecond: platform.RunStarted, wantActive: 2},
		{name: "a manual request asks for Allow", jobPolicy: "Forbid", asked: "Allow", wantSecond: platform.RunStarted, wantActive: 2},
		{name: "a manual request asks for Forbid", jobPolicy: "Allow", asked: "Forbid", wantSecond: platform.RunSkipped, wantReason: "previous run still active", wantActive: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.createJob(t, "nightly", region2, platform.Settings{ConcurrencyPolicy: tt.jobPolicy}, "sleep 30")
			if err := e.h.Handle(ctxT(t), runEvent(t, "nightly", platform.RunRequest{RequestID: "first", Workload: "nightly"})); err != nil {
				t.Fatal(err)
			}
			first, _ := e.record(t, platform.RunRecordKey("nightly", "first"))
			if first.Outcome != platform.RunStarted {
				t.Fatalf("first request: %+v", first)
			}
			second := platform.RunRequest{RequestID: "second", Workload: "nightly", ConcurrencyPolicy: tt.asked}
			if err := e.h.Handle(ctxT(t), runEvent(t, "nightly", second)); err != nil {
				t.Fatal(err)
			}
			rec, _ := e.record(t, platform.RunRecordKey("nightly", "second"))
			if rec.Outcome != tt.wantSecond || !strings.Contains(rec.Reason, tt.wantReason) {
				t.Errorf("second request: %s %q, want %s containing %q", rec.Outcome, rec.Reason, tt.wantSecond, tt.wantReason)
			}
			var active []string
			for _, x := range e.executions(t, nightlyJob) {
				if x.CompletionTime == nil {
					active = append(active, x.Name)
				}
			}
			if len(active) != tt.wantActive {
				t.Errorf("running executions %v, want %d", active, tt.wantActive)
			}
			if tt.firstEnds {
				x := e.waitCompleted(t, first.Execution)
				if x.CancelledCount == 0 {
					t.Errorf("replaced execution %s: cancelled %d tasks, want its task cancelled", x.Name, x.CancelledCount)
				}
				if slices.Contains(active, first.Execution) {
					t.Errorf("replaced execution %s still running", first.Execution)
				}
			}
			if _, err := e.store.Get(context.Background(), lockPrefix+"nightly"); err == nil {
				t.Errorf("policy lock left behind")
			}
		})
	}
}

// TestForbidRace sends two different requests at the same moment to a Forbid job: one starts,
// the other is skipped (the policy lock makes the check and the start one step).
func TestForbidRace(t *testing.T) {
	e := newEnv(t)
	e.createJob(t, "nightly", region2, platform.Settings{ConcurrencyPolicy: "Forbid"}, "sleep 30")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err, _ := e.deliver(t, runEvent(t, "nightly", platform.RunRequest{RequestID: fmt.Sprint("r", i), Workload: "nightly"}), 5); err != nil {
				t.Errorf("request r%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if n := len(e.executions(t, nightlyJob)); n != 1 {
		t.Errorf("%d executions of a Forbid job for 4 simultaneous requests, want 1", n)
	}
	started := 0
	for i := range 4 {
		rec, _ := e.record(t, platform.RunRecordKey("nightly", fmt.Sprint("r", i)))
		switch rec.Outcome {
		case platform.RunStarted:
			started++
		case platform.RunSkipped:
		default:
			t.Errorf("request r%d: %+v", i, rec)
		}
	}
	if started != 1 {
		t.Errorf("%d requests recorded as started, want 1", started)
	}
}

// TestRefusedLeaveNothing sends requests that can never run: each is acknowledged (a
// Permanent error), recorded as refused with the exact reason, and starts nothing.
func TestRefusedLeaveNothing(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantReason string
	}{
		{name: "reserved env", body: `{"request_id":"r1","workload":"nightly","env":{"RUNWAY_REQUEST_ID":"x"}}`,
			wantReason: `env: "RUNWAY_REQUEST_ID" is reserved: CLOUD_RUN_* and RUNWAY_* are set by the platform`},
		{name: "image override", body: `{"request_id":"r1","workload":"nightly","image":"evil:1"}`,
			wantReason: "image: there is no image override"},
		{name: "task count", body: `{"request_id":"r1","workload":"nightly","task_count":20000}`,
			wantReason: "task_count: is 20000; it must be between 1 and 10000 (Cloud Run's limit)"},
		{name: "timeout", body: `{"request_id":"r1","workload":"nightly","timeout":"200h"}`,
			wantReason: "timeout: is 200h0m0s; it must be between 1s and 168h0m0s (Cloud Run's limits)"},
		{name: "another workload", body: `{"request_id":"r1","workload":"migrate"}`,
			wantReason: `workload: the request names "migrate" but was published on the trigger topic of "nightly"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.createJob(t, "nightly", region2, platform.Settings{ConcurrencyPolicy: "Allow"}, "true")
			ev := pubsubEvent(t, platform.TriggerTopic("nightly"), "m1", []byte(tt.body), map[string]string{platform.AttrKind: platform.KindRun}, time.Now())
			for range 2 {
				if err := e.h.Handle(ctxT(t), ev); !event.IsPermanent(err) {
					t.Fatalf("Handle = %v, want a Permanent error", err)
				}
			}
			rec, ok := e.record(t, platform.RunRecordKey("nightly", "r1"))
			if !ok || rec.Outcome != platform.RunRefused || !strings.Contains(rec.Reason, tt.wantReason) {
				t.Errorf("record = %+v, want refused with %q", rec, tt.wantReason)
			}
			if n := len(e.executions(t, nightlyJob)); n != 0 {
				t.Errorf("%d executions, want none", n)
			}
			if keys, _ := e.store.List(context.Background(), ""); len(keys) != 1 {
				t.Errorf("store keys %v, want only the refused record", keys)
			}
		})
	}
}

// TestLocate covers where the job is looked for and which jobs are never run.
func TestLocate(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, e *env)
		topic      string
		wantReason string // "" means the run starts
		noRecord   bool   // refused before any record can be written
	}{
		{name: "first region that has it", topic: platform.TriggerTopic("migrate"), setup: func(t *testing.T, e *env) {
			e.createJob(t, "migrate", region1, platform.Settings{ConcurrencyPolicy: "Allow"}, "true")
		}},
		{name: "not deployed", topic: platform.TriggerTopic("migrate"), setup: func(*testing.T, *env) {},
			wantReason: `workload "migrate" has no Cloud Run job in us-east1 of project runway-test: deploy it first`},
		{name: "not managed by Runway", topic: platform.TriggerTopic("migrate"), setup: func(t *testing.T, e *env) {
			e.createRawJob(t, "migrate", region1, map[string]string{"team": "x"}, nil, "true")
		}, wantReason: `is not managed by Runway for workload "migrate"`},
		{name: "no settings", topic: platform.TriggerTopic("migrate"), setup: func(t *testing.T, e *env) {
			e.createRawJob(t, "migrate", region1, map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "migrate"}, nil, "true")
		}, wantReason: "annotation runway.gitlab.com/settings is missing (redeploy the workload)"},
		{name: "a service's topic", topic: platform.TriggerTopic("web"), setup: func(*testing.T, *env) {}, noRecord: true},
		{name: "unknown workload", topic: platform.TriggerTopic("ghost"), setup: func(*testing.T, *env) {}, noRecord: true},
		{name: "a deploy topic", topic: platform.DeployTopic("migrate"), setup: func(*testing.T, *env) {}, noRecord: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(t, e)
			body := []byte(`{"request_id":"r1","workload":"migrate"}`)
			err := e.h.Handle(ctxT(t), pubsubEvent(t, tt.topic, "m1", body, nil, time.Now()))
			keys, _ := e.store.List(context.Background(), "")
			switch {
			case tt.noRecord:
				if !event.IsPermanent(err) || len(keys) != 0 {
					t.Errorf("Handle = %v, keys %v; want Permanent and no record", err, keys)
				}
			case tt.wantReason == "":
				rec, _ := e.record(t, platform.RunRecordKey("migrate", "r1"))
				if err != nil || rec.Outcome != platform.RunStarted || !strings.HasPrefix(rec.Execution, platform.JobName(testProject, region1, "migrate")+"/executions/") {
					t.Errorf("Handle = %v, record %+v; want started in %s", err, rec, region1)
				}
			default:
				rec, _ := e.record(t, platform.RunRecordKey("migrate", "r1"))
				if !event.IsPermanent(err) || rec.Outcome != platform.RunRefused || !strings.Contains(rec.Reason, tt.wantReason) {
					t.Errorf("Handle = %v, record %+v; want refused with %q", err, rec, tt.wantReason)
				}
			}
		})
	}
}

// TestCrashWindows plays the deliveries that follow a holder which stopped at each point of
// the protocol: the request runs exactly once.
func TestCrashWindows(t *testing.T) {
	tests := []struct {
		name         string
		startedExec  bool // the holder's RunJob went through before it stopped
		wantAttempts int
	}{
		{name: "stopped after claiming", wantAttempts: 2},
		{name: "stopped after RunJob, before recording", startedExec: true, wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.createJob(t, "nightly", region2, platform.Settings{ConcurrencyPolicy: "Forbid"}, "true")
			r := request{workload: e.workload(t, "nightly"), key: platform.RunRecordKey("nightly", "crash"), requestID: "crash",
				trigger: platform.TriggerManual, run: &platform.RunRequest{RequestID: "crash", Workload: "nightly"}, policy: "Forbid"}
			job, err := e.h.locate(ctxT(t), r.workload)
			if err != nil {
				t.Fatal(err)
			}
			// The holder: claims, maybe runs, then stops.
			if c, err := e.h.acquire(ctxT(t), r, job); c == nil || err != nil {
				t.Fatalf("acquire = %v, %v", c, err)
			}
			if tt.startedExec {
				if _, err := e.h.runJob(ctxT(t), job, overridesOf(r, job)); err != nil {
					t.Fatal(err)
				}
			}
			ev := runEvent(t, "nightly", *r.run)
			// A redelivery within the lease must not run anything.
			if err := e.h.Handle(ctxT(t), ev); err == nil || event.IsPermanent(err) {
				t.Fatalf("delivery within the lease = %v, want a transient error", err)
			}
			want := 0
			if tt.startedExec {
				want = 1
			}
			if n := len(e.executions(t, nightlyJob)); n != want {
				t.Fatalf("%d executions while the claim is held, want %d", n, want)
			}
			// After the lease: the request is finished, once.
			e.clock.Advance(testTiming.Lease + time.Second)
			for range 2 {
				if err := e.h.Handle(ctxT(t), ev); err != nil {
					t.Fatalf("delivery after the lease: %v", err)
				}
			}
			execs := e.executions(t, nightlyJob)
			rec, _ := e.record(t, r.key)
			if len(execs) != 1 || rec.Outcome != platform.RunStarted || rec.Execution != execs[0].Name || rec.Attempts != tt.wantAttempts {
				t.Errorf("%d executions, record %+v; want 1 execution recorded as started, attempt %d", len(execs), rec, tt.wantAttempts)
			}
		})
	}
}

func (e *env) workload(t testing.TB, name string) inventory.Workload {
	t.Helper()
	w, ok := e.inv.Lookup(name)
	if !ok {
		t.Fatalf("no workload %s", name)
	}
	return w
}

// TestFaults makes RunJob fail with UNAVAILABLE half of the time and duplicates every delivery:
// every request still runs exactly once.
func TestFaults(t *testing.T) {
	e := newEnv(t)
	e.createJob(t, "nightly", region2, platform.Settings{ConcurrencyPolicy: "Allow"}, "true")
	e.addFault(t, `{"method":"RunJob","code":14,"rate":0.5}`)
	e.addFault(t, `{"method":"ListExecutions","code":14,"rate":0.2}`)
	const n = 12
	var wg sync.WaitGroup
	for i := range n {
		ev := runEvent(t, "nightly", platform.RunRequest{RequestID: fmt.Sprint("f", i), Workload: "nightly"})
		for range 2 { // every message delivered twice, at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err, tries := e.deliver(t, ev, 40); err != nil {
					t.Errorf("request f%d not done after %d deliveries: %v", i, tries, err)
				}
			}()
		}
	}
	wg.Wait()
	e.clearFaults(t)
	byID := map[string]int{}
	for _, x := range e.executions(t, nightlyJob) {
		byID[envOf(x)[platform.EnvRequestID]]++
	}
	retried := 0
	for i := range n {
		id := fmt.Sprint("f", i)
		rec, _ := e.record(t, platform.RunRecordKey("nightly", id))
		if byID[id] != 1 || rec.Outcome != platform.RunStarted {
			t.Errorf("request %s: %d executions, record %s (attempts %d); want exactly 1, started", id, byID[id], rec.Outcome, rec.Attempts)
		}
		if rec.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Errorf("no request needed a second attempt: the faults did not bite")
	}
	if len(byID) != n {
		t.Errorf("executions for %d request ids, want %d", len(byID), n)
	}
}

// TestScheduledRefused covers scheduled-run messages that are acknowledged without a record:
// no slot can be claimed for them.
func TestScheduledRefused(t *testing.T) {
	tests := []struct {
		name     string
		settings *platform.Settings // nil: no job
		body     string
		attrs    map[string]string
		want     string
	}{
		{name: "another workload", settings: &platform.Settings{Schedule: "@hourly"}, body: `{"workload":"migrate"}`,
			want: `the scheduled run names workload "migrate" but was published on the trigger topic of "nightly"`},
		{name: "job without a schedule", settings: &platform.Settings{}, body: `{"workload":"nightly"}`,
			want: "has no schedule: a scheduled run of it is refused"},
		{name: "not deployed", body: `{"workload":"nightly"}`, want: "deploy it first"},
		{name: "unknown kind", settings: &platform.Settings{Schedule: "@hourly"}, body: `{"workload":"nightly"}`,
			attrs: map[string]string{platform.AttrKind: "cron"}, want: `attribute runway_kind="cron" is not "run" or "scheduled"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.settings != nil {
				e.createJob(t, "nightly", region2, *tt.settings, "true")
			}
			attrs := tt.attrs
			if attrs == nil {
				attrs = map[string]string{platform.AttrKind: platform.KindScheduled}
			}
			err := e.h.Handle(ctxT(t), pubsubEvent(t, platform.TriggerTopic("nightly"), "m1", []byte(tt.body), attrs, time.Now()))
			if !event.IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Handle = %v, want a Permanent error containing %q", err, tt.want)
			}
			if keys, _ := e.store.List(context.Background(), ""); len(keys) != 0 {
				t.Errorf("store keys %v, want none", keys)
			}
			if tt.settings != nil {
				if n := len(e.executions(t, nightlyJob)); n != 0 {
					t.Errorf("%d executions, want none", n)
				}
			}
		})
	}
}

// TestRunJobErrors checks how each kind of RunJob failure is handled: refused for good,
// retried at once when nothing can have been created, retried after Settle when the outcome
// is unknown.
func TestRunJobErrors(t *testing.T) {
	tests := []struct {
		name        string
		code        int
		immediate   bool          // the next delivery may retry at once
		wait        time.Duration // else: how long the claim is held after the failure
		wantOutcome string
		wantReason  string
	}{
		{name: "InvalidArgument is refused", code: 3, wantOutcome: platform.RunRefused, wantReason: "Cloud Run refused the run: injected fault on /google.cloud.run.v2.Jobs/RunJob"},
		{name: "FailedPrecondition is retried at once", code: 9, immediate: true, wantOutcome: platform.RunStarted},
		{name: "Unavailable is retried after Settle", code: 14, wait: testTiming.Settle, wantOutcome: platform.RunStarted},
		{name: "DeadlineExceeded is retried after Settle", code: 4, wait: testTiming.Settle, wantOutcome: platform.RunStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.createJob(t, "nightly", region2, platform.Settings{ConcurrencyPolicy: "Forbid"}, "true")
			e.addFault(t, fmt.Sprintf(`{"method":"RunJob","code":%d,"times":1}`, tt.code))
			ev := runEvent(t, "nightly", platform.RunRequest{RequestID: "r1", Workload: "nightly"})
			err := e.h.Handle(ctxT(t), ev)
			if tt.wantOutcome == platform.RunRefused {
				rec, _ := e.record(t, platform.RunRecordKey("nightly", "r1"))
				if !event.IsPermanent(err) || rec.Outcome != platform.RunRefused || rec.Reason != tt.wantReason {
					t.Errorf("Handle = %v, record %s %q; want Permanent, refused %q", err, rec.Outcome, rec.Reason, tt.wantReason)
				}
				if n := len(e.executions(t, nightlyJob)); n != 0 {
					t.Errorf("%d executions, want none", n)
				}
				return
			}
			if err == nil || event.IsPermanent(err) {
				t.Fatalf("first delivery = %v, want a transient error", err)
			}
			if !tt.immediate {
				h := e.h.WithTiming(Timing{Lease: testTiming.Lease, RunJob: testTiming.RunJob, Settle: testTiming.Settle, Wait: time.Millisecond, Poll: time.Millisecond})
				h.leaseNow = e.clock.Now
				if err := h.Handle(ctxT(t), ev); err == nil || event.IsPermanent(err) {
					t.Fatalf("delivery within Settle = %v, want a transient error", err)
				}
				e.clock.Advance(tt.wait + time.Second)
			}
			if err := e.h.Handle(ctxT(t), ev); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			rec, _ := e.record(t, platform.RunRecordKey("nightly", "r1"))
			if n := len(e.executions(t, nightlyJob)); n != 1 || rec.Outcome != tt.wantOutcome || rec.Attempts != 2 {
				t.Errorf("%d executions, record %s attempt %d; want 1, %s, attempt 2", n, rec.Outcome, rec.Attempts, tt.wantOutcome)
			}
			if _, err := e.store.Get(context.Background(), lockPrefix+"nightly"); err == nil {
				t.Errorf("policy lock left behind")
			}
		})
	}
}

// TestRunJobResponseLost: RunJob starts the execution but its response is lost (the
// emulator's lose_response fault). The redelivery finds the execution by its request id: no
// second execution starts, and the record says started with that execution, under every policy
// (Forbid must not take its own execution for a previous run and record skipped).
func TestRunJobResponseLost(t *testing.T) {
	slot := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	tests := []struct {
		name      string
		policy    string
		scheduled bool
	}{
		{name: "manual, Allow", policy: "Allow"},
		{name: "manual, Forbid", policy: "Forbid"},
		{name: "manual, Replace", policy: "Replace"},
		{name: "scheduled, Forbid", policy: "Forbid", scheduled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.createJob(t, "nightly", region2, platform.Settings{ConcurrencyPolicy: tt.policy, Schedule: "0 * * * *", TimeZone: "Etc/UTC"}, "sleep 2")
			e.addFault(t, `{"method":"/google.cloud.run.v2.Jobs/RunJob","code":4,"lose_response":true,"times":1}`)
			ev, key, id := runEvent(t, "nightly", platform.RunRequest{RequestID: "lost", Workload: "nightly"}), platform.RunRecordKey("nightly", "lost"), "lost"
			if tt.scheduled {
				ev, key = scheduledEvent(t, "nightly", "s1", slot.Add(time.Second)), platform.SlotRecordKey("nightly", slot)
				id = key
			}
			err, tries := e.deliver(t, ev, 10)
			if err != nil {
				t.Fatalf("not done after %d deliveries: %v", tries, err)
			}
			if err, _ := e.deliver(t, ev, 1); err != nil { // once more, done: nothing new
				t.Fatalf("delivery after the outcome: %v", err)
			}
			execs := e.executions(t, nightlyJob)
			rec, _ := e.record(t, key)
			if len(execs) != 1 || envOf(execs[0])[platform.EnvRequestID] != id {
				t.Fatalf("%d executions %v, want exactly one, of request %s", len(execs), execs, id)
			}
			if rec.Outcome != platform.RunStarted || rec.Execution != execs[0].Name || rec.Attempts != 1 || tries != 2 ||
				rec.Reason != "recovered: attempt 1 started it, but its RunJob answer was lost" {
				t.Errorf("record %+v after %d deliveries; want started with %s by attempt 1, found by the second delivery", rec, tries, execs[0].Name)
			}
		})
	}
}

// TestLocateAfterRegionMove: while a region move has left a copy of the job (deploy deletes it
// after applying the new home), runs start on the most recently placed copy, not on the first
// region's; copies deployed before placements were counted keep the inventory order.
func TestLocateAfterRegionMove(t *testing.T) {
	tests := []struct {
		name       string
		placements map[string]string // region → AnnotationPlacement ("" for none)
		wantRegion string
	}{
		{name: "moved to the second region", placements: map[string]string{region1: "1", region2: "2"}, wantRegion: region2},
		{name: "moved back to the first region", placements: map[string]string{region1: "3", region2: "2"}, wantRegion: region1},
		{name: "uncounted copies: inventory order", placements: map[string]string{region1: "", region2: ""}, wantRegion: region1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			for _, r := range []string{region1, region2} {
				ann := map[string]string{platform.AnnotationSettings: platform.Settings{Workload: "nightly", ConcurrencyPolicy: "Allow"}.Encode()}
				if p := tt.placements[r]; p != "" {
					ann[platform.AnnotationPlacement] = p
				}
				e.createRawJob(t, "nightly", r, map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "nightly"}, ann, "true")
			}
			if err, _ := e.deliver(t, runEvent(t, "nightly", platform.RunRequest{RequestID: "r1", Workload: "nightly"}), 3); err != nil {
				t.Fatal(err)
			}
			rec, _ := e.record(t, platform.RunRecordKey("nightly", "r1"))
			if want := platform.JobName(testProject, tt.wantRegion, "nightly") + "/executions/"; rec.Outcome != platform.RunStarted || !strings.HasPrefix(rec.Execution, want) {
				t.Errorf("record %+v; want started on %s", rec, want)
			}
		})
	}
}

// A run request whose id is a slot's name gets a key of its own: it neither takes the slot's
// claim (which would have made the slot's firing a duplicate) nor is taken for it.
func TestRunRequestCannotTakeASlot(t *testing.T) {
	e := newEnv(t)
	e.createJob(t, "nightly", region2, platform.Settings{Schedule: "*/15 * * * *", ConcurrencyPolicy: "Allow"}, "true")
	slot := time.Now().UTC().Truncate(15 * time.Minute)
	slotKey := platform.SlotRecordKey("nightly", slot)
	id := strings.TrimPrefix(slotKey, "runs/nightly/") // "slot-<minute>"
	if err := e.h.Handle(ctxT(t), runEvent(t, "nightly", platform.RunRequest{RequestID: id, Workload: "nightly"})); err != nil {
		t.Fatalf("run request %s: %v", id, err)
	}
	if _, ok := e.record(t, slotKey); ok {
		t.Fatalf("the run request %s wrote the slot's claim %s", id, slotKey)
	}
	if err := e.h.Handle(ctxT(t), scheduledEvent(t, "nightly", "s1", slot.Add(2*time.Second))); err != nil {
		t.Fatal(err)
	}
	execs := e.executions(t, nightlyJob)
	if len(execs) != 2 {
		t.Fatalf("%d executions after a run request and the slot, want 2", len(execs))
	}
	rec, ok := e.record(t, slotKey)
	if !ok || rec.Outcome != platform.RunStarted || rec.Trigger != platform.TriggerSchedule {
		t.Fatalf("slot record %+v, want the slot started by its schedule", rec)
	}
	manual, ok := e.record(t, platform.RunRecordKey("nightly", id))
	if !ok || manual.Outcome != platform.RunStarted || manual.Execution == rec.Execution {
		t.Fatalf("run request record %+v (slot's execution %s), want a run of its own", manual, rec.Execution)
	}
}
