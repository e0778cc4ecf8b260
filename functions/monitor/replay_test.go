package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
)

var replayCadence = flag.Duration("replay.cadence", 0, "tick cadence of TestReplayMonth (default 3m, 10m with -race)")

// month is the replayed history: December 2026, in UTC.
var (
	monthStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	monthEnd   = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	created    = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	// historyEnd: the jobs keep running while the replay's last ticks deliver what is left.
	historyEnd = monthEnd.Add(3 * time.Hour)
)

func dec(day, hour, minute, second int) time.Time {
	return time.Date(2026, 12, day, hour, minute, second, 0, time.UTC)
}

// run is what happens at a slot of the simulated history.
type run struct {
	outcome string        // "ok", "fail", "flaky", "none" (nothing runs, no record), "skip" / "deadline" (trigger record only), "hang"
	runtime time.Duration // until completion (hang: until cancelled)
	reason  string
}

// builder writes a simulated history: jobs, their executions, the trigger's records.
type builder struct {
	t     testing.TB
	w     *world
	store *memStore
	n     int
}

func settings(workload, sched string, mod ...func(*platform.Settings)) platform.Settings {
	s := platform.Settings{
		Workload: workload, Schedule: sched, ConcurrencyPolicy: "Forbid", CreatedAt: created, Timeout: 10 * time.Minute, MaxRetries: 3,
		Monitoring: platform.Monitoring{Enabled: true, Grace: 10 * time.Minute, FailureThreshold: 1, RecoveryThreshold: 1, AlertOnFlaky: true},
		Owner:      platform.Owner{EmailHandle: workload + "-owner", Department: "infrastructure"},
		Channels:   []string{"slack"},
	}
	for _, m := range mod {
		m(&s)
	}
	return s
}

func (b *builder) job(project, region string, created time.Time, versions ...simVersion) *simJob {
	versions[0].from = created
	j := &simJob{key: detect.Key{Project: project, Location: region, Job: versions[0].settings.Workload}, created: created, versions: versions}
	b.w.jobs = append(b.w.jobs, j)
	return j
}

func (b *builder) exec(j *simJob, createdAt time.Time, runtime time.Duration, result string, retried int, trigger string, slot time.Time) *simExec {
	b.n++
	x := &simExec{name: fmt.Sprintf("%s/executions/%s-%05d", j.key.Name(), j.key.Job, b.n), created: createdAt, started: createdAt.Add(time.Second),
		result: result, retried: retried, trigger: trigger, scheduled: slot}
	if runtime > 0 {
		x.completed = x.started.Add(runtime)
	}
	j.add(x)
	return x
}

// schedule runs every slot of j's schedule in [from, to) that its settings at the slot allow
// (not suspended), as fn says: each version of the job's settings runs its own schedule from
// its deploy to the next.
func (b *builder) schedule(j *simJob, from, to time.Time, fn func(slot time.Time) run) {
	for i, v := range j.versions {
		end := to
		if i+1 < len(j.versions) && j.versions[i+1].from.Before(end) {
			end = j.versions[i+1].from
		}
		if !j.deleted.IsZero() && j.deleted.Before(end) {
			end = j.deleted
		}
		if v.settings.Suspend || v.settings.Schedule == "" {
			continue
		}
		start := from
		if v.from.After(start) {
			start = v.from
		}
		b.slots(j, v.settings, start, end, fn)
	}
}

func (b *builder) slots(j *simJob, s platform.Settings, from, to time.Time, fn func(slot time.Time) run) {
	sched, err := schedule.Parse(s.Schedule, s.TimeZone)
	if err != nil {
		b.t.Fatal(err)
	}
	for slot := sched.Next(from); !slot.IsZero() && slot.Before(to); slot = sched.Next(slot) {
		r := fn(slot)
		created := slot.Add(2 * time.Second)
		switch r.outcome {
		case "ok", "":
			b.exec(j, created, r.runtime, "succeeded", 0, platform.TriggerSchedule, slot)
		case "fail":
			b.exec(j, created, r.runtime, "failed", s.MaxRetries, platform.TriggerSchedule, slot)
		case "flaky":
			b.exec(j, created, r.runtime, "succeeded", 1, platform.TriggerSchedule, slot)
		case "hang":
			b.exec(j, created, r.runtime, "cancelled", 0, platform.TriggerSchedule, slot)
		case "skip", "deadline":
			outcome := platform.RunSkipped
			if r.outcome == "deadline" {
				outcome = platform.RunMissed
			}
			rec, _ := json.Marshal(platform.RunRecord{RequestID: platform.SlotRecordKey(s.Workload, slot), Workload: s.Workload, Trigger: platform.TriggerSchedule,
				ScheduledTime: slot, Outcome: outcome, Reason: r.reason, Time: slot.Add(time.Minute)})
			if _, err := b.store.Put(context.Background(), platform.SlotRecordKey(s.Workload, slot), rec, 0); err != nil {
				b.t.Fatal(err)
			}
		case "none":
		default:
			b.t.Fatalf("unknown outcome %q", r.outcome)
		}
	}
}

func ok(d time.Duration) func(time.Time) run {
	return func(time.Time) run { return run{outcome: "ok", runtime: d} }
}

// want is an alert the replay expects: who (the workload, or the project for the monitor's
// own alerts), what, and when it happened (zero: any time, for the monitor's own alerts, whose
// time depends on the ticks, and for a deleted job's closing).
type want struct {
	Channel, Who string
	Kind         notify.Kind
	Action       notify.Action
	At           time.Time
}

func (w want) String() string {
	return fmt.Sprintf("%s %s %s/%s %s", w.Channel, w.Who, w.Kind, w.Action, w.At.Format(time.RFC3339))
}

// recording is a channel that keeps what it was sent, and can refuse some deliveries first.
type recording struct {
	name  string
	mu    sync.Mutex
	got   []notify.Alert
	fail  float64
	rng   *rand.Rand
	fails int
}

func (r *recording) Send(_ context.Context, a notify.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 && r.rng.Float64() < r.fail {
		r.fails++
		return errors.New("502 bad gateway")
	}
	r.got = append(r.got, a)
	return nil
}

// replay is a month of history, the monitor over it, and what it must send.
type replay struct {
	w        *world
	store    *memStore
	inv      *inventory.Inventory
	channels map[string]*recording
	want     []want
}

const replayInventory = `inventory:
  - {name: minutely, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/minutely}
  - {name: hourly, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/hourly}
  - {name: berlin, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/berlin}
  - {name: hung, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/hung}
  - {name: weekly, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/weekly}
  - {name: monthly, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/monthly}
  - {name: halfhourly, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/halfhourly}
  - {name: redeploy, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/redeploy}
  - {name: newjob, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/newjob}
  - {name: deleted, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/deleted}
  - {name: unmonitored, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/unmonitored}
  - {name: ondemand, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/ondemand}
  - {name: regional, type: job, project_id: 1, gcp_project: runway-proj, regions: [us-east1, europe-west1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/regional, notifications: {channels: [slack]}}
  - {name: nightly2, type: job, project_id: 2, gcp_project: runway-proj2, regions: [europe-west1], artifact_repository: us-east1-docker.pkg.dev/runway-proj/nightly2}
`

// newReplay builds the month. Every expected alert is written next to the history causing it.
func newReplay(t testing.TB) *replay {
	w := &world{lag: 2 * time.Minute}
	store := newMemStore()
	b := &builder{t: t, w: w, store: store}
	r := &replay{w: w, store: store}
	expect := func(who string, kind notify.Kind, action notify.Action, at time.Time, channels ...string) {
		for _, c := range channels {
			r.want = append(r.want, want{Channel: c, Who: who, Kind: kind, Action: action, At: at})
		}
	}
	open, resolve, warn := notify.ActionOpen, notify.ActionResolve, notify.ActionWarn
	slack, pd := "slack", "pd"

	// Every minute, Allow, expected runtime 2m + grace 1m.
	minutely := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("minutely", "* * * * *", func(s *platform.Settings) {
		s.ConcurrencyPolicy = "Allow"
		s.Monitoring.ExpectedRuntime, s.Monitoring.Grace = 2*time.Minute, time.Minute
	})})
	b.schedule(minutely, created, historyEnd, func(slot time.Time) run {
		switch {
		case !slot.Before(dec(10, 10, 0, 0)) && slot.Before(dec(10, 10, 5, 0)):
			return run{outcome: "fail", runtime: 19 * time.Second}
		case !slot.Before(dec(20, 3, 0, 0)) && slot.Before(dec(20, 3, 10, 0)):
			return run{outcome: "none"} // the trigger never got these slots
		}
		return run{outcome: "ok", runtime: 19 * time.Second}
	})
	expect("minutely", notify.KindFailed, open, dec(10, 10, 0, 22), slack)
	expect("minutely", notify.KindRecovered, resolve, dec(10, 10, 5, 22), slack)
	expect("minutely", notify.KindMissed, open, dec(20, 3, 3, 0), slack) // slot 03:00 + 2m + 1m
	expect("minutely", notify.KindRecovered, resolve, dec(20, 3, 10, 22), slack)
	// (03:08 and 03:09, found missed after 03:10 succeeded, belong to the resolved incident.)

	// Hourly, failure_threshold 2, flaky runs.
	hourly := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("hourly", "0 * * * *", func(s *platform.Settings) {
		s.Monitoring.FailureThreshold = 2
		s.Channels = []string{slack, pd}
	})})
	b.schedule(hourly, created, historyEnd, func(slot time.Time) run {
		switch slot {
		case dec(5, 14, 0, 0), dec(5, 15, 0, 0):
			return run{outcome: "fail", runtime: 5 * time.Minute}
		case dec(12, 8, 0, 0), dec(12, 9, 0, 0), dec(14, 8, 0, 0):
			return run{outcome: "flaky", runtime: 5 * time.Minute}
		}
		return run{outcome: "ok", runtime: 5 * time.Minute}
	})
	expect("hourly", notify.KindFailed, open, dec(5, 15, 5, 3), slack, pd)
	expect("hourly", notify.KindRecovered, resolve, dec(5, 16, 5, 3), slack, pd)
	expect("hourly", notify.KindFlaky, warn, dec(12, 8, 5, 3), slack, pd)
	expect("hourly", notify.KindFlaky, warn, dec(14, 8, 5, 3), slack, pd) // 09:00 on the 12th: rate limited

	// Daily at 02:30 Berlin (01:30 UTC), expected runtime 20m + grace 10m: one late run.
	berlin := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("berlin", "30 2 * * *", func(s *platform.Settings) {
		s.TimeZone, s.Timeout, s.MaxRetries = "Europe/Berlin", time.Hour, 0
		s.Monitoring.ExpectedRuntime = 20 * time.Minute
	})})
	b.schedule(berlin, created, historyEnd, func(slot time.Time) run {
		if slot == dec(8, 1, 30, 0) {
			return run{outcome: "ok", runtime: 45 * time.Minute}
		}
		return run{outcome: "ok", runtime: 10 * time.Minute}
	})
	expect("berlin", notify.KindLate, open, dec(8, 2, 0, 3), slack)
	expect("berlin", notify.KindRecovered, resolve, dec(8, 2, 15, 3), slack)

	// Daily at 06:00, timeout 30m × 2 attempts: a hung run, the next slot skipped by Forbid.
	hung := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("hung", "0 6 * * *", func(s *platform.Settings) {
		s.Timeout, s.MaxRetries = 30*time.Minute, 1
		s.Channels = []string{slack, pd}
	})})
	b.schedule(hung, created, historyEnd, func(slot time.Time) run {
		switch slot {
		case dec(15, 6, 0, 0):
			return run{outcome: "hang", runtime: dec(16, 9, 0, 0).Sub(slot.Add(3 * time.Second))}
		case dec(16, 6, 0, 0):
			return run{outcome: "skip", reason: "execution hung-00042 is still running"}
		}
		return run{outcome: "ok", runtime: 5 * time.Minute}
	})
	expect("hung", notify.KindHung, open, dec(15, 7, 10, 3), slack, pd)
	expect("hung", notify.KindRecovered, resolve, dec(17, 6, 5, 3), slack, pd)

	// Weekly on Mondays: one slot missed by the starting deadline.
	weekly := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("weekly", "0 9 * * 1")})
	b.schedule(weekly, created, historyEnd, func(slot time.Time) run {
		if slot == dec(14, 9, 0, 0) {
			return run{outcome: "deadline", reason: "delivered 12m after the slot, past the starting deadline of 5m"}
		}
		return run{outcome: "ok", runtime: 15 * time.Minute}
	})
	expect("weekly", notify.KindMissed, open, dec(14, 9, 50, 0), slack)
	expect("weekly", notify.KindRecovered, resolve, dec(21, 9, 15, 3), slack)

	// Monthly on the 15th, and manual runs (which never serve a slot): a failed one, a fix.
	monthly := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("monthly", "0 12 15 * *")})
	b.schedule(monthly, created, historyEnd, ok(30*time.Minute))
	b.exec(monthly, dec(20, 10, 0, 0), 4*time.Minute, "failed", 3, platform.TriggerManual, time.Time{})
	b.exec(monthly, dec(20, 11, 0, 0), 4*time.Minute, "succeeded", 0, platform.TriggerManual, time.Time{})
	expect("monthly", notify.KindFailed, open, dec(20, 10, 4, 1), slack)
	expect("monthly", notify.KindRecovered, resolve, dec(20, 11, 4, 1), slack)

	// Every 30 minutes, suspended from the 7th to the 9th at noon: nothing to say.
	half := b.job("runway-proj", "us-east1", created,
		simVersion{settings: settings("halfhourly", "*/30 * * * *")},
		simVersion{from: dec(7, 0, 0, 0), settings: settings("halfhourly", "*/30 * * * *", func(s *platform.Settings) { s.Suspend = true })},
		simVersion{from: dec(9, 12, 0, 0), settings: settings("halfhourly", "*/30 * * * *")})
	b.schedule(half, created, historyEnd, ok(2*time.Minute))

	// Every 6 hours, then (deployed on the 10th at 13:07) at :15 every 4 hours; an image-only
	// deploy on the 3rd. One failure after the new schedule.
	redeploy := b.job("runway-proj", "us-east1", created,
		simVersion{settings: settings("redeploy", "0 */6 * * *")},
		simVersion{from: dec(3, 9, 0, 0), settings: settings("redeploy", "0 */6 * * *")},
		simVersion{from: dec(10, 13, 7, 0), settings: settings("redeploy", "15 */4 * * *")})
	b.schedule(redeploy, created, historyEnd, func(slot time.Time) run {
		if slot == dec(18, 16, 15, 0) {
			return run{outcome: "fail", runtime: 3 * time.Minute}
		}
		return run{outcome: "ok", runtime: 3 * time.Minute}
	})
	expect("redeploy", notify.KindFailed, open, dec(18, 16, 18, 3), slack)
	expect("redeploy", notify.KindRecovered, resolve, dec(18, 20, 18, 3), slack)

	// Created mid-month.
	newCreated := dec(16, 10, 0, 0)
	newjob := b.job("runway-proj", "us-east1", newCreated, simVersion{settings: settings("newjob", "*/15 * * * *", func(s *platform.Settings) { s.CreatedAt = newCreated })})
	b.schedule(newjob, newCreated, historyEnd, func(slot time.Time) run {
		if slot == dec(17, 0, 15, 0) {
			return run{outcome: "fail", runtime: time.Minute}
		}
		return run{outcome: "ok", runtime: time.Minute}
	})
	expect("newjob", notify.KindFailed, open, dec(17, 0, 16, 3), slack)
	expect("newjob", notify.KindRecovered, resolve, dec(17, 0, 31, 3), slack)

	// Deleted on the 11th after a failure: forgotten, its incident closed with a message.
	deleted := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("deleted", "0 3 * * *")})
	deleted.deleted = dec(11, 12, 0, 0)
	b.schedule(deleted, created, historyEnd, func(slot time.Time) run {
		if slot == dec(11, 3, 0, 0) {
			return run{outcome: "fail", runtime: 5 * time.Minute}
		}
		return run{outcome: "ok", runtime: 5 * time.Minute}
	})
	expect("deleted", notify.KindFailed, open, dec(11, 3, 5, 3), slack)
	expect("deleted", notify.KindGone, resolve, time.Time{}, slack)

	// Monitoring disabled: always failing, never alerted.
	unmonitored := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("unmonitored", "0 * * * *", func(s *platform.Settings) { s.Monitoring.Enabled = false })})
	b.schedule(unmonitored, created, historyEnd, func(time.Time) run { return run{outcome: "fail", runtime: time.Minute} })

	// On demand only, expected runtime 1h + grace 10m: a run of 3 hours is late.
	ondemand := b.job("runway-proj", "us-east1", created, simVersion{settings: settings("ondemand", "", func(s *platform.Settings) {
		s.Timeout, s.MaxRetries, s.Monitoring.ExpectedRuntime = 4*time.Hour, 0, time.Hour
	})})
	b.exec(ondemand, dec(4, 10, 0, 0), 3*time.Hour, "succeeded", 0, platform.TriggerManual, time.Time{})
	b.exec(ondemand, dec(6, 10, 0, 0), 20*time.Minute, "succeeded", 0, platform.TriggerManual, time.Time{})
	expect("ondemand", notify.KindLate, open, dec(4, 11, 10, 1), slack)
	expect("ondemand", notify.KindRecovered, resolve, dec(4, 13, 0, 1), slack)

	// In two regions: the trigger runs the slots in the first; the second's job never runs
	// and is not missing anything. Channels from the inventory.
	regional := settings("regional", "0 * * * *", func(s *platform.Settings) { s.Channels = nil })
	regionalEast := b.job("runway-proj", "us-east1", created, simVersion{settings: regional})
	b.job("runway-proj", "europe-west1", created, simVersion{settings: regional})
	b.schedule(regionalEast, created, historyEnd, ok(time.Minute))

	// Another project; recovery_threshold 2.
	nightly2 := b.job("runway-proj2", "europe-west1", created, simVersion{settings: settings("nightly2", "0 4 * * *", func(s *platform.Settings) {
		s.Monitoring.RecoveryThreshold = 2
		s.Channels = []string{slack, pd}
	})})
	b.schedule(nightly2, created, historyEnd, func(slot time.Time) run {
		if slot == dec(25, 4, 0, 0) {
			return run{outcome: "fail", runtime: 5 * time.Minute}
		}
		return run{outcome: "ok", runtime: 5 * time.Minute}
	})
	expect("nightly2", notify.KindFailed, open, dec(25, 4, 5, 3), slack, pd)
	expect("nightly2", notify.KindRecovered, resolve, dec(27, 4, 5, 3), slack, pd)

	// Cloud Monitoring: down 8 minutes on the 2nd (nothing to say), 40 minutes on the 10th
	// (both projects: the platform is told, once, and told again when it is back), and
	// answering nothing for proj for an hour on the 23rd while its jobs run.
	w.metricsFail = func(_ string, now time.Time) bool {
		return !now.Before(dec(2, 10, 0, 0)) && now.Before(dec(2, 10, 8, 0)) || !now.Before(dec(10, 9, 50, 0)) && now.Before(dec(10, 10, 30, 0))
	}
	w.metricsEmpty = func(project string, now time.Time) bool {
		return project == "runway-proj" && !now.Before(dec(23, 0, 0, 0)) && now.Before(dec(23, 1, 0, 0))
	}
	expect("runway-proj", notify.KindUnknown, open, time.Time{}, "platform")
	expect("runway-proj", notify.KindUnknown, resolve, time.Time{}, "platform")
	expect("runway-proj2", notify.KindUnknown, open, time.Time{}, "platform")
	expect("runway-proj2", notify.KindUnknown, resolve, time.Time{}, "platform")
	expect("runway-proj", notify.KindUnknown, open, time.Time{}, "platform")
	expect("runway-proj", notify.KindUnknown, resolve, time.Time{}, "platform")

	for _, j := range w.jobs {
		j.index()
	}
	inv, err := inventory.Parse("inventory.yml", []byte(replayInventory))
	if err != nil {
		t.Fatal(err)
	}
	r.inv = inv
	return r
}

// handler returns a monitor over the replay's world, delivering to recording channels ("pd"
// refuses a share of deliveries).
func (r *replay) handler(seed uint64, pdFail float64) *Handler {
	rng := rand.New(rand.NewPCG(seed, 7))
	r.channels = map[string]*recording{
		"slack":    {name: "slack"},
		"pd":       {name: "pd", fail: pdFail, rng: rng},
		"platform": {name: "platform"},
	}
	chs := map[string]notify.Channel{}
	for n, c := range r.channels {
		chs[n] = c
	}
	d := notify.NewDispatcher(chs)
	d.Sleep = func(context.Context, time.Duration) error { return nil }
	cfg := Config{IngestLag: 3 * time.Minute, BlindAfter: 15 * time.Minute}
	h := newHandler(cfg, r.w, r.store, r.inv, d, []string{"platform"}, r.w.clock, zerolog.Nop())
	h.log = zerolog.Nop()
	return h
}

// check compares what every channel got with what the history calls for, and that no alert
// reached a channel twice.
func (r *replay) check(t *testing.T) {
	t.Helper()
	var got []want
	for name, c := range r.channels {
		seen := map[string]bool{}
		for _, a := range c.got {
			if seen[a.ID] {
				t.Errorf("channel %s got alert %s twice", name, a.ID)
			}
			seen[a.ID] = true
			who := a.Workload
			at := a.Time
			switch a.Kind {
			case notify.KindUnknown:
				who, at = a.Project, time.Time{}
			case notify.KindGone:
				at = time.Time{} // when the job is first seen gone: a tick's time
			}
			got = append(got, want{Channel: name, Who: who, Kind: a.Kind, Action: a.Action, At: at})
		}
	}
	order := func(a, b want) int { return strings.Compare(a.String(), b.String()) }
	slices.SortFunc(got, order)
	wantSorted := slices.Clone(r.want)
	slices.SortFunc(wantSorted, order)
	if d := cmp.Diff(wantSorted, got); d != "" {
		t.Errorf("alerts (-want +got):\n%s", d)
	}
}

// tickMode is how one tick reaches the monitor.
type tickMode int

const (
	single     tickMode = iota
	duplicated          // delivered twice, one after the other
	concurrent          // three copies at once
)

// run drives the monitor over the month, one tick per cadence, with the tick modes drawn from
// seed, then two more hours so that retried deliveries finish.
func (r *replay) run(t *testing.T, h *Handler, cadence time.Duration, seed uint64, dupRate, concRate float64) (ticks int) {
	rng := rand.New(rand.NewPCG(seed, 11))
	ctx := context.Background()
	handle := func() {
		if _, err := h.tick(ctx); err != nil {
			// A failed tick is redelivered by Pub/Sub; the next tick would do as well.
			if _, err := h.tick(ctx); err != nil && !strings.Contains(err.Error(), "502") {
				t.Fatalf("tick at %s: %v", r.w.clock(), err)
			}
		}
	}
	for now := monthStart.Add(30 * time.Second); now.Before(monthEnd.Add(2 * time.Hour)); now = now.Add(cadence) {
		r.w.setNow(now)
		ticks++
		mode := single
		switch x := rng.Float64(); {
		case x < dupRate:
			mode = duplicated
		case x < dupRate+concRate:
			mode = concurrent
		}
		switch mode {
		case single:
			handle()
		case duplicated:
			handle()
			handle()
		case concurrent:
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(handle)
			}
			wg.Wait()
		}
	}
	return ticks
}

// TestReplayMonth replays December for 15 jobs (every minute to monthly, failures, misses, a
// late and a hung run, flaky runs, a suspension, deploys and a job created and one deleted
// mid-month, two projects, Cloud Monitoring down and blank), with duplicated and concurrent
// ticks and a PagerDuty channel that refuses a third of the deliveries, and checks that every
// expected alert reached each of its channels exactly once and nothing else did.
func TestReplayMonth(t *testing.T) {
	cadence := time.Minute
	switch {
	case raceEnabled:
		cadence = 10 * time.Minute
	case testing.Short():
		cadence = 4 * time.Minute // the same alerts: findings are dated by events, not ticks
	}
	r := newReplay(t)
	h := r.handler(1, 0.3)
	start := time.Now()
	ticks := r.run(t, h, cadence, 1, 0.05, 0.05)
	t.Logf("%d ticks in %s; %d store writes; cloud calls %+v; pd refused %d deliveries", ticks, time.Since(start).Round(time.Millisecond), r.store.puts, r.w.calls, r.channels["pd"].fails)
	r.check(t)
	if r.channels["pd"].fails == 0 {
		t.Error("the pd channel never refused: the retry path was not exercised")
	}
	st, _, err := h.load(context.Background(), platform.MonitorStateKey("runway-proj"))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Outbox) != 0 {
		t.Errorf("outbox not empty at the end: %+v", st.Outbox)
	}
	if _, ok := st.Jobs["runway-proj/us-east1/deleted"]; ok {
		t.Error("the deleted job is still in the state")
	}
}

// TestReplayCadences checks that the alerts do not depend on how time is cut into ticks: five
// days at irregular intervals of 1 to 13 minutes give the alerts the month has for them.
func TestReplayCadences(t *testing.T) {
	r := newReplay(t)
	h := r.handler(2, 0)
	rng := rand.New(rand.NewPCG(3, 3))
	ctx := context.Background()
	end := dec(6, 0, 0, 0)
	for now := monthStart.Add(30 * time.Second); now.Before(end); now = now.Add(time.Duration(1+rng.IntN(13)) * time.Minute) {
		r.w.setNow(now)
		if _, err := h.tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var weekWant []want
	for _, w := range r.want {
		if !w.At.IsZero() && w.At.Before(dec(5, 23, 0, 0)) {
			weekWant = append(weekWant, w)
		}
	}
	r.want = weekWant
	// Unknown alerts of the 2nd are not expected at irregular cadences either (8 minutes).
	r.check(t)
}
