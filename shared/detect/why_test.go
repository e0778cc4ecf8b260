package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
)

var slotLinks = []notify.Link{{Text: "Scheduler job", Href: "https://sched/nightly"}, {Text: "Scheduler logs", Href: "https://logs/nightly"}}

// missedAt evaluates a job whose 2:00 slot got no execution, with the Scheduler job as sj.
func missedAt(t *testing.T, s platform.Settings, sj *SchedulerJob, slots map[int64]SlotRecord) notify.Alert {
	t.Helper()
	st := &State{Watermark: t0}
	j := Job{Key: key, Settings: s, SlotOwner: true, Channels: []string{"slack"}, Links: slotLinks}
	o := Observation{Job: j, Read: true, Executions: []Execution{exec(1, "1:00", 3*time.Minute, Succeeded, 0)}, Slots: slots, Scheduler: sj}
	_, alerts := Evaluate(st, []Observation{o}, at("2:20"), Config{})
	if len(alerts) != 1 || alerts[0].Kind != notify.KindMissed {
		t.Fatalf("alerts = %+v, want one missed", alerts)
	}
	return alerts[0]
}

func TestMissedSaysWhy(t *testing.T) {
	name := "projects/p/locations/us-east1/jobs/nightly"
	tests := []struct {
		name     string
		settings platform.Settings
		sched    *SchedulerJob
		slots    map[int64]SlotRecord
		want     string // in the detail
		wantNot  string
	}{
		{name: "not read", want: "and none was running.", wantNot: "Scheduler"},
		{name: "deleted", sched: &SchedulerJob{Name: name, Missing: true},
			want: "The Cloud Scheduler job " + name + " does not exist: it was deleted outside Runway"},
		{name: "paused outside Runway", sched: &SchedulerJob{Name: name, State: "PAUSED", LastAttempt: at("1:00"), Code: "OK"},
			want: "The Cloud Scheduler job is PAUSED, but the manifest does not suspend the job"},
		{name: "last attempt failed", sched: &SchedulerJob{Name: name, State: "ENABLED", LastAttempt: at("2:00"), Code: "NOT_FOUND", Message: "Resource not found (resource=runway-trigger-nightly)."},
			want: "Its last attempt, at 2026-12-01 02:00 UTC, failed: NOT_FOUND (Resource not found (resource=runway-trigger-nightly).)."},
		{name: "not fired", sched: &SchedulerJob{Name: name, State: "ENABLED", LastAttempt: at("1:00"), Code: "OK"},
			want: "Its last attempt was at 2026-12-01 01:00 UTC, before the slot: Cloud Scheduler did not fire it."},
		{name: "fired fine: the trigger", sched: &SchedulerJob{Name: name, State: "ENABLED", LastAttempt: at("2:00")},
			want: "succeeded: look at the trigger function's logs."},
		{name: "disabled", sched: &SchedulerJob{Name: name, State: "DISABLED", LastAttempt: at("1:00")}, want: "is DISABLED"},
		{name: "the trigger's record wins", sched: &SchedulerJob{Name: name, Missing: true},
			slots: map[int64]SlotRecord{at("2:00").Unix(): {Found: true, Outcome: platform.RunMissed, Reason: "received 20m after the slot"}},
			want:  "No execution served the slot: received 20m after the slot.", wantNot: "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := missedAt(t, settings(), tt.sched, tt.slots)
			if !strings.Contains(a.Detail, tt.want) || tt.wantNot != "" && strings.Contains(a.Detail, tt.wantNot) {
				t.Errorf("detail %q\nwant %q, not %q", a.Detail, tt.want, tt.wantNot)
			}
			if d := cmp.Diff(slotLinks, a.Links); d != "" {
				t.Errorf("links (-want +got):\n%s", d)
			}
		})
	}
}

// A re-alert of a missed slot keeps its links; a later tick's reads change nothing of it.
func TestRealertKeepsLinks(t *testing.T) {
	st := &State{Watermark: t0}
	j := Job{Key: key, Settings: settings(), SlotOwner: true, Channels: []string{"slack"}, Links: slotLinks}
	o := Observation{Job: j, Read: true, Executions: []Execution{exec(1, "1:00", 3*time.Minute, Succeeded, 0)}}
	st, _ = Evaluate(st, []Observation{o}, at("2:20"), Config{ReAlert: time.Hour})
	o.Job.Links = nil
	_, alerts := Evaluate(st, []Observation{o}, at("3:16"), Config{ReAlert: time.Hour, Now: at("3:20")})
	var re *notify.Alert
	for i := range alerts {
		if alerts[i].Action == notify.ActionRealert {
			re = &alerts[i]
		}
	}
	if re == nil || !cmp.Equal(slotLinks, re.Links) || !re.DetectedAt.Equal(at("3:20")) || !re.Time.Equal(at("3:15")) {
		t.Fatalf("re-alert = %+v, want the links, time 3:15 and detected 3:20", re)
	}
}

func TestGoneJobClosesIncident(t *testing.T) {
	failing := Observation{Job: Job{Key: key, Settings: settings(func(s *platform.Settings) { s.Schedule = "" }), Channels: []string{"pd"}},
		Read: true, Executions: []Execution{manual(1, "1:00", 3*time.Minute, Failed)}}
	st, alerts := Evaluate(&State{Watermark: t0}, []Observation{failing}, at("1:10"), Config{})
	if len(alerts) != 1 || st.Jobs[key.String()].Incident == nil {
		t.Fatalf("no incident opened: %+v", alerts)
	}
	disabled := failing
	disabled.Job.Settings.Monitoring.Enabled = false
	disabled.Job.Channels = []string{"slack"}
	tests := []struct {
		name         string
		obs          []Observation
		wantSummary  string
		wantChannels []string
	}{
		{name: "deleted", wantSummary: "nightly: the job is gone; its failed incident is closed", wantChannels: []string{"pd"}},
		{name: "monitoring disabled", obs: []Observation{disabled}, wantSummary: "nightly: monitoring was disabled; its failed incident is closed", wantChannels: []string{"slack"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, alerts := Evaluate(st, tt.obs, at("1:20"), Config{Now: at("1:24")})
			if len(alerts) != 1 {
				t.Fatalf("alerts = %+v, want one", alerts)
			}
			a := alerts[0]
			inc := st.Jobs[key.String()].Incident
			want := notify.Alert{ID: inc.Key + "/resolve", IncidentKey: inc.Key, Kind: notify.KindGone, Action: notify.ActionResolve, Severity: notify.SeverityInfo,
				Workload: "nightly", Project: "p", Location: "us-east1", Job: key.Name(), Execution: inc.Execution, LogURL: inc.LogURL,
				Since: inc.Since, Time: at("1:20"), DetectedAt: at("1:24"), Duration: at("1:20").Sub(inc.Since), Summary: tt.wantSummary}
			a.Detail = ""
			if d := cmp.Diff(want, a); d != "" {
				t.Errorf("alert (-want +got):\n%s", d)
			}
			if last := ns.Outbox[len(ns.Outbox)-1]; len(ns.Jobs) != 0 || len(ns.Outbox) != len(st.Outbox)+1 || last.Alert.ID != want.ID || !cmp.Equal(tt.wantChannels, last.Channels) {
				t.Errorf("state jobs %v, outbox %+v", ns.Jobs, ns.Outbox)
			}
			// Closed once: the next tick has nothing to say.
			if _, again := Evaluate(ns, tt.obs, at("1:30"), Config{}); len(again) != 0 {
				t.Errorf("closed again: %+v", again)
			}
		})
	}
}
