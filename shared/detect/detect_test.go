package detect

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// at is a time of the test's first day, "H:MM" or "H:MM:SS" (hours may pass 24).
func at(hms string) time.Time {
	var h, m, sec int
	if n, _ := fmt.Sscanf(hms, "%d:%d:%d", &h, &m, &sec); n < 2 {
		panic("bad time " + hms)
	}
	return t0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second)
}

func settings(mod ...func(*platform.Settings)) platform.Settings {
	s := platform.Settings{Workload: "nightly", Schedule: "0 * * * *", ConcurrencyPolicy: "Forbid", CreatedAt: t0.Add(-time.Hour),
		Timeout: 10 * time.Minute, MaxRetries: 0,
		Monitoring: platform.Monitoring{Enabled: true, Grace: 5 * time.Minute, FailureThreshold: 1, RecoveryThreshold: 1, AlertOnFlaky: true},
		Owner:      platform.Owner{EmailHandle: "dbre", Department: "infra"}}
	for _, m := range mod {
		m(&s)
	}
	return s
}

var key = Key{Project: "p", Location: "us-east1", Job: "nightly"}

// exec is a scheduled run of slot hm that took d and ended with result (Running: still runs).
func exec(n int, slot string, d time.Duration, result Result, retried int) Execution {
	s := at(slot)
	x := Execution{Name: fmt.Sprintf("%s/executions/nightly-%d", key.Name(), n), Created: s.Add(time.Second), Started: s.Add(2 * time.Second),
		Result: result, Retried: retried, Trigger: platform.TriggerSchedule, Scheduled: s, LogURI: "https://logs/" + fmt.Sprint(n)}
	if result != Running {
		x.Completed = x.Started.Add(d)
	}
	return x
}

func manual(n int, created string, d time.Duration, result Result) Execution {
	x := exec(n, created, d, result, 0)
	x.Trigger, x.Scheduled = platform.TriggerManual, time.Time{}
	return x
}

// tick is one evaluation: the executions as Cloud Run shows them at its time (every one so
// far; Evaluate reads only what is new), and trigger records.
type tick struct {
	t     time.Time
	execs []Execution
	slots map[int64]SlotRecord
}

type got struct {
	Kind   notify.Kind
	Action notify.Action
	At     string
}

// replay runs the ticks and returns every alert.
func replay(t *testing.T, s platform.Settings, cfg Config, ticks []tick) []got {
	t.Helper()
	st := &State{Watermark: t0}
	var out []got
	for _, tk := range ticks {
		var visible []Execution
		for _, x := range tk.execs {
			if x.Created.After(tk.t) {
				continue
			}
			if x.Completed.After(tk.t) {
				x.Completed, x.Result = time.Time{}, Running
			}
			visible = append(visible, x)
		}
		o := Observation{Job: Job{Key: key, Settings: s, SlotOwner: true, Channels: []string{"slack"}, Links: slotLinks}, Read: true, Executions: visible, Slots: tk.slots}
		before, _ := json.Marshal(st)
		ns, alerts := Evaluate(st, []Observation{o}, tk.t, cfg)
		if after, _ := json.Marshal(st); string(before) != string(after) {
			t.Fatalf("Evaluate changed its input state")
		}
		if len(ns.Outbox)-len(st.Outbox) != len(alerts) {
			t.Fatalf("%d alerts but %d new outbox entries", len(alerts), len(ns.Outbox)-len(st.Outbox))
		}
		for _, a := range alerts {
			if a.ID == "" || a.IncidentKey == "" || a.Summary == "" || a.Workload != "nightly" || a.Owner != "dbre" || a.Job != key.Name() {
				t.Errorf("alert lacks its facts: %+v", a)
			}
			if a.LogURL == "" && len(a.Links) == 0 {
				t.Errorf("alert gives no link: %+v", a)
			}
			if !a.DetectedAt.Equal(tk.t) {
				t.Errorf("alert detected at %s, want the evaluation time %s (Config.Now unset)", a.DetectedAt, tk.t)
			}
			out = append(out, got{Kind: a.Kind, Action: a.Action, At: a.Time.Format("15:04:05")})
		}
		ns.Outbox = nil
		st = ns
	}
	return out
}

// every returns ticks every 5 minutes from from to to, each seeing execs.
func every(from, to string, execs []Execution, slots map[int64]SlotRecord) []tick {
	var out []tick
	for t := at(from); !t.After(at(to)); t = t.Add(5 * time.Minute) {
		out = append(out, tick{t: t, execs: execs, slots: slots})
	}
	return out
}

func TestEvaluate(t *testing.T) {
	min := time.Minute
	tests := []struct {
		name     string
		settings platform.Settings
		cfg      Config
		execs    []Execution
		slots    map[int64]SlotRecord
		until    string
		want     []got
	}{
		{
			name:  "failure then recovery",
			execs: []Execution{exec(1, "1:00", 3*min, Failed, 0), exec(2, "2:00", 3*min, Succeeded, 0)},
			until: "2:30",
			want:  []got{{notify.KindFailed, notify.ActionOpen, "01:03:02"}, {notify.KindRecovered, notify.ActionResolve, "02:03:02"}},
		},
		{
			name:     "failure threshold 2",
			settings: settings(func(s *platform.Settings) { s.Monitoring.FailureThreshold = 2 }),
			execs:    []Execution{exec(1, "1:00", 3*min, Failed, 0), exec(2, "2:00", 3*min, Succeeded, 0), exec(3, "3:00", 3*min, Failed, 0), exec(4, "4:00", 3*min, Failed, 0), exec(5, "5:00", 3*min, Succeeded, 0)},
			until:    "5:30",
			want:     []got{{notify.KindFailed, notify.ActionOpen, "04:03:02"}, {notify.KindRecovered, notify.ActionResolve, "05:03:02"}},
		},
		{
			name:     "recovery threshold 2, a cancelled run counts for nothing",
			settings: settings(func(s *platform.Settings) { s.Monitoring.RecoveryThreshold = 2 }),
			execs:    []Execution{exec(1, "1:00", 3*min, Failed, 0), exec(2, "2:00", 3*min, Succeeded, 0), exec(3, "3:00", 3*min, Cancelled, 0), exec(4, "4:00", 3*min, Succeeded, 0)},
			until:    "4:30",
			want:     []got{{notify.KindFailed, notify.ActionOpen, "01:03:02"}, {notify.KindRecovered, notify.ActionResolve, "04:03:02"}},
		},
		{
			name:     "flaky warnings once a day",
			settings: settings(func(s *platform.Settings) { s.Schedule = "" }),
			execs:    []Execution{exec(1, "1:00", 3*min, Succeeded, 1), exec(2, "2:00", 3*min, Succeeded, 2), exec(3, "25:10", 3*min, Succeeded, 1)},
			until:    "25:30",
			want:     []got{{notify.KindFlaky, notify.ActionWarn, "01:03:02"}, {notify.KindFlaky, notify.ActionWarn, "01:13:02"}},
		},
		{
			name:     "flaky warnings off",
			settings: settings(func(s *platform.Settings) { s.Monitoring.AlertOnFlaky = false }),
			execs:    []Execution{exec(1, "1:00", 3*min, Succeeded, 1)},
			until:    "1:30",
		},
		{
			name:     "re-alert every hour while open",
			settings: settings(func(s *platform.Settings) { s.Schedule = "" }),
			cfg:      Config{ReAlert: time.Hour},
			execs:    []Execution{manual(1, "1:00", 3*min, Failed), manual(2, "4:30", 3*min, Succeeded)},
			until:    "4:40",
			want: []got{{notify.KindFailed, notify.ActionOpen, "01:03:02"}, {notify.KindFailed, notify.ActionRealert, "02:03:02"},
				{notify.KindFailed, notify.ActionRealert, "03:03:02"}, {notify.KindFailed, notify.ActionRealert, "04:03:02"},
				{notify.KindRecovered, notify.ActionResolve, "04:33:02"}},
		},
		{
			name:  "missed slot: deadline is slot + expected runtime + grace",
			execs: []Execution{exec(1, "1:00", 3*min, Succeeded, 0), exec(3, "3:00", 3*min, Succeeded, 0)},
			until: "3:30",
			want:  []got{{notify.KindMissed, notify.ActionOpen, "02:15:00"}, {notify.KindRecovered, notify.ActionResolve, "03:03:02"}},
		},
		{
			name:  "a manual run does not serve a slot",
			execs: []Execution{exec(1, "1:00", 3*min, Succeeded, 0), manual(2, "1:30", 3*min, Succeeded)},
			until: "2:30",
			want:  []got{{notify.KindMissed, notify.ActionOpen, "02:15:00"}},
		},
		{
			name:  "skipped by Forbid, from the trigger's record",
			execs: []Execution{exec(1, "1:00", 3*min, Succeeded, 0), exec(3, "3:00", 3*min, Succeeded, 0)},
			slots: map[int64]SlotRecord{at("2:00").Unix(): {Found: true, Outcome: platform.RunSkipped, Reason: "nightly-1 is still running"}},
			until: "3:30",
			want:  []got{{notify.KindSkipped, notify.ActionOpen, "02:15:00"}, {notify.KindRecovered, notify.ActionResolve, "03:03:02"}},
		},
		{
			name:  "started by the trigger, execution not seen: served",
			execs: []Execution{exec(1, "1:00", 3*min, Succeeded, 0)},
			slots: map[int64]SlotRecord{at("2:00").Unix(): {Found: true, Outcome: platform.RunStarted}},
			until: "2:30",
		},
		{
			name:  "a run still going at the deadline: no miss, the run is late",
			execs: []Execution{exec(1, "1:00", 80*min, Succeeded, 0)},
			until: "2:30",
			want:  []got{{notify.KindHung, notify.ActionOpen, "01:15:02"}, {notify.KindRecovered, notify.ActionResolve, "02:20:02"}},
		},
		{
			name:     "late when the expected runtime is shorter than the timeout allows",
			settings: settings(func(s *platform.Settings) { s.Monitoring.ExpectedRuntime = 5 * time.Minute }),
			execs:    []Execution{exec(1, "1:00", 30*min, Succeeded, 0)},
			until:    "1:50",
			want:     []got{{notify.KindLate, notify.ActionOpen, "01:10:02"}, {notify.KindRecovered, notify.ActionResolve, "01:30:02"}},
		},
		{
			name: "a miss found after a later run succeeded is a warning",
			settings: settings(func(s *platform.Settings) {
				s.Schedule, s.CreatedAt, s.Monitoring.Grace = "*/10 * * * *", at("0:55"), 10*time.Minute
			}),
			execs: []Execution{exec(1, "1:00", min, Succeeded, 0), exec(3, "1:20", min, Succeeded, 0), exec(4, "1:30", min, Succeeded, 0)},
			until: "1:40",
			want:  []got{{notify.KindMissed, notify.ActionWarn, "01:30:00"}},
		},
		{
			name:     "suspended: no slot is expected",
			settings: settings(func(s *platform.Settings) { s.Suspend = true }),
			until:    "5:00",
		},
		{
			name:     "monitoring disabled",
			settings: settings(func(s *platform.Settings) { s.Monitoring.Enabled = false }),
			execs:    []Execution{exec(1, "1:00", 3*min, Failed, 0)},
			until:    "3:00",
		},
		{
			name: "flapping: the third resolve within 6h is held until the job settles",
			execs: []Execution{exec(1, "1:00", 3*min, Failed, 0), exec(2, "2:00", 3*min, Succeeded, 0), exec(3, "3:00", 3*min, Failed, 0),
				exec(4, "4:00", 3*min, Succeeded, 0), exec(5, "5:00", 3*min, Failed, 0), exec(6, "6:00", 3*min, Succeeded, 0),
				exec(7, "7:00", 3*min, Succeeded, 0), exec(8, "8:00", 3*min, Succeeded, 0), exec(9, "9:00", 3*min, Failed, 0)},
			until: "9:30",
			want: []got{{notify.KindFailed, notify.ActionOpen, "01:03:02"}, {notify.KindRecovered, notify.ActionResolve, "02:03:02"},
				{notify.KindFailed, notify.ActionOpen, "03:03:02"}, {notify.KindFlapping, notify.ActionWarn, "04:03:02"},
				{notify.KindRecovered, notify.ActionResolve, "08:03:02"}, {notify.KindFailed, notify.ActionOpen, "09:03:02"}},
		},
		{
			name: "flap damping off: every change pages",
			cfg:  Config{FlapWindow: -1},
			execs: []Execution{exec(1, "1:00", 3*min, Failed, 0), exec(2, "2:00", 3*min, Succeeded, 0), exec(3, "3:00", 3*min, Failed, 0),
				exec(4, "4:00", 3*min, Succeeded, 0)},
			until: "4:30",
			want: []got{{notify.KindFailed, notify.ActionOpen, "01:03:02"}, {notify.KindRecovered, notify.ActionResolve, "02:03:02"},
				{notify.KindFailed, notify.ActionOpen, "03:03:02"}, {notify.KindRecovered, notify.ActionResolve, "04:03:02"}},
		},
		{
			name: "flap window 1h, 3 changes: only the close ones flap",
			cfg:  Config{FlapWindow: time.Hour, FlapChanges: 3},
			execs: []Execution{manual(1, "1:00", 3*min, Failed), manual(2, "2:00", 3*min, Succeeded), manual(3, "3:00", 3*min, Failed),
				manual(4, "3:20", 3*min, Succeeded), manual(5, "3:40", 3*min, Failed), manual(6, "4:00", 3*min, Succeeded), manual(7, "5:00", 3*min, Succeeded)},
			settings: settings(func(s *platform.Settings) { s.Schedule = "" }),
			until:    "5:30",
			want: []got{{notify.KindFailed, notify.ActionOpen, "01:03:02"}, {notify.KindRecovered, notify.ActionResolve, "02:03:02"},
				{notify.KindFailed, notify.ActionOpen, "03:03:02"}, {notify.KindRecovered, notify.ActionResolve, "03:23:02"},
				{notify.KindFailed, notify.ActionOpen, "03:43:02"}, {notify.KindFlapping, notify.ActionWarn, "04:03:02"},
				{notify.KindRecovered, notify.ActionResolve, "05:03:02"}},
		},
		{
			name:     "slots before the schedule was created are not expected",
			settings: settings(func(s *platform.Settings) { s.CreatedAt = at("2:30") }),
			execs:    []Execution{exec(1, "3:00", 3*min, Succeeded, 0)},
			until:    "3:30",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.settings
			if s.Workload == "" {
				s = settings()
			}
			// The same alerts whether evaluated every 5 minutes or in one go.
			for _, ticks := range [][]tick{every("0:05", tt.until, tt.execs, tt.slots), {{t: at(tt.until), execs: tt.execs, slots: tt.slots}}} {
				if d := cmp.Diff(tt.want, replay(t, s, tt.cfg, ticks)); d != "" {
					t.Errorf("alerts over %d ticks (-want +got):\n%s", len(ticks), d)
				}
			}
		})
	}
}

func TestScheduleChangeRebasesSlots(t *testing.T) {
	s := settings()
	j := Job{Key: key, Settings: s, SlotOwner: true, UpdateTime: at("1:00")}
	st := &State{Watermark: t0, Jobs: map[string]*JobState{key.String(): {EvaluatedTo: t0, SlotsFrom: t0, Schedule: scheduleSig(s)}}}
	s2 := s
	s2.Schedule = "30 * * * *"
	j2 := j
	j2.Settings, j2.UpdateTime = s2, at("4:10")
	// Under the old schedule, slots 1:00 to 3:00 were due; the deploy at 4:10 moved them.
	got := Unserved(st, Observation{Job: j2, Read: true}, at("6:00"), Config{})
	want := []time.Time{at("4:30"), at("5:30")} // not 1:00 to 4:00: the deploy at 4:10 moved the slots
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("unserved after the deploy (-want +got):\n%s", d)
	}
	got = Unserved(st, Observation{Job: j, Read: true}, at("3:20"), Config{Schedules: NewSchedules(8)})
	if d := cmp.Diff([]time.Time{at("1:00"), at("2:00"), at("3:00")}, got); d != "" {
		t.Errorf("unserved before (-want +got):\n%s", d)
	}
}

func TestNeedsExecutions(t *testing.T) {
	s := settings()
	j := Job{Key: key, Settings: s, SlotOwner: true, Latest: &ExecutionRef{Name: "x1", Created: at("1:00"), Completed: at("1:03")}}
	known := &State{Jobs: map[string]*JobState{key.String(): {ReadAt: at("1:10"), LatestName: "x1", LatestDone: true,
		Running: map[string]Run{"old": {Created: at("0:30"), Started: at("0:30")}}, LateAlerted: []string{"old"}}}}
	tests := []struct {
		name      string
		st        *State
		job       Job
		activity  Activity
		t         time.Time
		want      bool
		wantAfter time.Time
	}{
		{name: "new job that ran", st: &State{}, job: j, t: at("1:15"), want: true, wantAfter: at("1:15").Add(-7 * 24 * time.Hour)},
		{name: "new job that never ran", st: &State{}, job: Job{Key: key, Settings: s}, t: at("1:15")},
		{name: "nothing new", st: known, job: j, t: at("1:15")},
		{name: "completions in the metrics", st: known, job: j, activity: Activity{Failed: 1}, t: at("1:15"), want: true, wantAfter: at("0:30").Add(-time.Nanosecond)},
		{name: "a new latest execution", st: known, job: Job{Key: key, Settings: s, Latest: &ExecutionRef{Name: "x2", Created: at("1:12")}}, t: at("1:15"), want: true, wantAfter: at("0:30").Add(-time.Nanosecond)},
		{name: "the latest completed", st: known, job: Job{Key: key, Settings: s, Latest: &ExecutionRef{Name: "x1", Created: at("1:00")}}, t: at("1:15"), want: true, wantAfter: at("0:30").Add(-time.Nanosecond)},
		{name: "more running than known", st: known, job: j, activity: Activity{Running: 2}, t: at("1:15"), want: true, wantAfter: at("0:30").Add(-time.Nanosecond)},
		{name: "monitoring disabled", st: &State{}, job: Job{Key: key, Settings: settings(func(s *platform.Settings) { s.Monitoring.Enabled = false }), Latest: j.Latest}, t: at("1:15")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, after := NeedsExecutions(tt.st, Observation{Job: tt.job, Activity: tt.activity}, t0, tt.t, Config{})
			if got != tt.want || !after.Equal(tt.wantAfter) {
				t.Errorf("NeedsExecutions = %v, %s; want %v, %s", got, after, tt.want, tt.wantAfter)
			}
		})
	}
	// A known run reaching its deadline must be read, unless already reported.
	running := &State{Jobs: map[string]*JobState{key.String(): {ReadAt: at("1:10"), LatestName: "x1", Running: map[string]Run{"x1": {Created: at("1:00"), Started: at("1:00")}}}}}
	if need, _ := NeedsExecutions(running, Observation{Job: Job{Key: key, Settings: s, Latest: &ExecutionRef{Name: "x1", Created: at("1:00")}}}, t0, at("1:15"), Config{}); !need {
		t.Error("a run past expected runtime + grace is not read")
	}
}

func TestBlind(t *testing.T) {
	cfg := Config{BlindAfter: 15 * time.Minute, BlindLinks: []notify.Link{{Text: "Metrics Explorer", Href: "https://metrics"}}}
	st := &State{Watermark: at("1:00")}
	var kinds []string
	for _, step := range []struct {
		t     string
		blind bool
	}{{"1:01", true}, {"1:10", true}, {"1:16", true}, {"1:20", true}, {"1:30", false}, {"1:31", false}, {"2:00", true}, {"2:05", false}} {
		var alerts []notify.Alert
		st, alerts = SetBlind(st, "p", step.blind, "Unavailable", at(step.t), []string{"platform"}, cfg)
		for _, a := range alerts {
			kinds = append(kinds, fmt.Sprintf("%s %s/%s", step.t, a.Kind, a.Action))
			if len(a.Links) != 1 || !a.DetectedAt.Equal(at(step.t)) {
				t.Errorf("alert %s: links %v, detected %s", a.ID, a.Links, a.DetectedAt)
			}
		}
	}
	if d := cmp.Diff([]string{"1:16 unknown/open", "1:30 unknown/resolve"}, kinds); d != "" {
		t.Errorf("alerts (-want +got):\n%s", d)
	}
	if !st.Watermark.Equal(at("1:00")) || len(st.Outbox) != 2 || st.Outbox[0].Channels[0] != "platform" {
		t.Errorf("state = %+v", st)
	}
}

func TestMetricsLookBlind(t *testing.T) {
	ran := Observation{Job: Job{Latest: &ExecutionRef{Name: "x", Completed: at("1:04:30")}}}
	quiet := Observation{Job: Job{}}
	tests := []struct {
		name string
		obs  []Observation
		w, t time.Time
		want bool
	}{
		{name: "completed in the window, no series", obs: []Observation{ran, quiet}, w: at("1:04"), t: at("1:05"), want: true},
		{name: "some series", obs: []Observation{ran, {Activity: Activity{Succeeded: 1}}}, w: at("1:04"), t: at("1:05")},
		{name: "bucket not ended by t", obs: []Observation{ran}, w: at("1:03"), t: at("1:04")},
		{name: "nothing ran", obs: []Observation{quiet}, w: at("1:04"), t: at("1:05")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MetricsLookBlind(tt.obs, tt.w, tt.t); got != tt.want {
				t.Errorf("MetricsLookBlind = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAlertTexts(t *testing.T) {
	s := settings(func(s *platform.Settings) { s.Monitoring.FailureThreshold = 2 })
	j := Job{Key: key, Settings: s, SlotOwner: true}
	st := &State{Watermark: t0}
	x1, x2 := exec(1, "1:00", 3*time.Minute, Failed, 0), exec(2, "2:00", 3*time.Minute, Failed, 0)
	_, alerts := Evaluate(st, []Observation{{Job: j, Read: true, Executions: []Execution{x1, x2}}}, at("2:10"), Config{Now: at("2:13:30")})
	if len(alerts) != 1 {
		t.Fatalf("alerts = %+v", alerts)
	}
	a := alerts[0]
	want := notify.Alert{ID: "runway/p/us-east1/nightly/1796086982/open", IncidentKey: "runway/p/us-east1/nightly/1796086982", Kind: notify.KindFailed,
		Action: notify.ActionOpen, Severity: notify.SeverityCritical, Workload: "nightly", Project: "p", Location: "us-east1", Job: key.Name(),
		Summary:   "nightly: execution nightly-2 failed",
		Detail:    "The execution ended failed at 2026-12-01 02:03 UTC. It is the 2nd failure in a row (failure_threshold 2); failing since 2026-12-01 01:03 UTC. See its logs for the failing task.",
		Execution: x2.Name, Since: x1.Completed, LogURL: x2.LogURI, Owner: "dbre", Team: "infra", Time: x2.Completed, DetectedAt: at("2:13:30")}
	if d := cmp.Diff(want, a); d != "" {
		t.Errorf("alert (-want +got):\n%s", d)
	}
}

func TestSchedulesBounded(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		exprs   int
		wantLen int
	}{
		{name: "under the bound", max: 8, exprs: 5, wantLen: 5},
		{name: "starts over when full", max: 4, exprs: 6, wantLen: 2},
		{name: "zero value caches nothing", max: 0, exprs: 3, wantLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewSchedules(tt.max)
			for i := range tt.exprs {
				for range 2 { // the second parse is a hit
					s, err := c.parse(fmt.Sprintf("%d * * * *", i), "Europe/Berlin")
					if err != nil || s == nil {
						t.Fatalf("parse %d: %v, %v", i, s, err)
					}
				}
			}
			if got := c.len(); got != tt.wantLen {
				t.Errorf("len = %d, want %d", got, tt.wantLen)
			}
			if _, err := c.parse("61 * * * *", ""); err == nil {
				t.Error("a bad schedule parsed")
			}
		})
	}
}
