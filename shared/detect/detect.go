package detect

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
)

// maxSlotsPerTick bounds the slots one evaluation checks per job (a minutely job over a day).
const maxSlotsPerTick = 24 * 60

// Schedules caches parsed schedules: a tick over 10,000 jobs parses the same few hundred
// expressions again and again. It holds at most max entries (it starts over when full) and is
// safe for concurrent use; the zero value caches nothing.
type Schedules struct {
	mu  sync.Mutex
	max int
	m   map[string]parsed // expr + "\x00" + tz
}

type parsed struct {
	s   *schedule.Schedule
	err error
}

// NewSchedules returns a cache of at most max parsed schedules.
func NewSchedules(max int) *Schedules { return &Schedules{max: max} }

// parse returns schedule.Parse(expr, tz), from the cache when it holds it. A nil c parses.
func (c *Schedules) parse(expr, tz string) (*schedule.Schedule, error) {
	if c == nil || c.max <= 0 {
		return schedule.Parse(expr, tz)
	}
	k := expr + "\x00" + tz
	c.mu.Lock()
	p, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return p.s, p.err
	}
	s, err := schedule.Parse(expr, tz)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]parsed, min(c.max, 1024))
	}
	c.m[k] = parsed{s, err}
	c.mu.Unlock()
	return s, err
}

// len is the number of schedules held.
func (c *Schedules) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// prepare returns the job's state for this evaluation, as a copy: a new state for a job seen
// for the first time (slots expected after the window start w and the schedule's creation),
// and slot checking re-based on the job's update time when its schedule, zone or suspension
// changed.
func prepare(old *JobState, j Job, w time.Time) *JobState {
	sig := scheduleSig(j.Settings)
	if old == nil {
		from := w
		if j.Settings.CreatedAt.After(from) {
			from = j.Settings.CreatedAt
		}
		return &JobState{Workload: j.Settings.Workload, EvaluatedTo: w, SlotsFrom: from, Schedule: sig}
	}
	js := *old
	js.Served = slices.Clone(old.Served)
	js.Running = maps.Clone(old.Running)
	js.LateAlerted = slices.Clone(old.LateAlerted)
	js.Changes = slices.Clone(old.Changes)
	if old.Incident != nil {
		inc := *old.Incident
		inc.Links, inc.Channels = slices.Clone(inc.Links), slices.Clone(inc.Channels)
		js.Incident = &inc
	}
	js.Workload = j.Settings.Workload
	if sig != js.Schedule {
		js.Schedule, js.NextSlot = sig, time.Time{}
		if j.UpdateTime.After(js.SlotsFrom) {
			js.SlotsFrom = j.UpdateTime
		}
		if j.Settings.CreatedAt.After(js.SlotsFrom) {
			js.SlotsFrom = j.Settings.CreatedAt
		}
		js.pruneServed()
	}
	return &js
}

func (js *JobState) pruneServed() {
	from := js.SlotsFrom.Unix()
	i, _ := slices.BinarySearch(js.Served, from+1)
	js.Served = slices.Delete(js.Served, 0, i)
	if len(js.Served) == 0 {
		js.Served = nil
	}
}

// slotsChecked reports whether a job is checked for missed slots.
func slotsChecked(j Job) bool {
	s := j.Settings
	return j.SlotOwner && s.Schedule != "" && !s.Suspend && s.Monitoring.Enabled
}

// dueSlots returns the slots after js.SlotsFrom whose deadline (slot + expected runtime +
// grace) is at or before t, and the first slot after them (to cache as js.NextSlot).
func dueSlots(js *JobState, j Job, t time.Time, cache *Schedules) (due []time.Time, next time.Time) {
	if !slotsChecked(j) {
		return nil, time.Time{}
	}
	last := t.Add(-ExpectedRuntime(j.Settings) - j.Settings.Monitoring.Grace)
	if !js.NextSlot.IsZero() && js.NextSlot.After(last) {
		return nil, js.NextSlot // nothing due: no need to ask the schedule
	}
	sched, err := cache.parse(j.Settings.Schedule, j.Settings.TimeZone)
	if err != nil {
		return nil, time.Time{}
	}
	s := js.NextSlot
	if s.IsZero() {
		s = sched.Next(js.SlotsFrom)
	}
	for ; !s.IsZero() && !s.After(last) && len(due) < maxSlotsPerTick; s = sched.Next(s) {
		due = append(due, s)
	}
	return due, s
}

// NeedsExecutions reports whether the job's executions must be read this tick (t is the time
// evaluated up to, w the window start), and which: those created after the returned time.
// They are read when the metrics or the job's latest execution show something new, or when a
// known run may have become late.
func NeedsExecutions(st *State, obs Observation, w, t time.Time, cfg Config) (bool, time.Time) {
	j := obs.Job
	if !j.Settings.Monitoring.Enabled {
		return false, time.Time{}
	}
	old := st.Jobs[j.Key.String()]
	if old == nil || old.ReadAt.IsZero() {
		if j.Latest == nil && !obs.Activity.Any() {
			return false, time.Time{}
		}
		return true, t.Add(-cfg.firstRead())
	}
	after := old.ReadAt
	for _, r := range old.Running {
		if !r.Created.After(after) {
			after = r.Created.Add(-time.Nanosecond)
		}
	}
	a := obs.Activity
	switch {
	case a.Succeeded+a.Failed+a.Cancelled+a.FailedAttempts > 0:
		return true, after
	case j.Latest != nil && (j.Latest.Name != old.LatestName || !j.Latest.Completed.IsZero() != old.LatestDone):
		return true, after
	case a.Running > int64(len(old.Running)):
		return true, after
	}
	deadline := ExpectedRuntime(j.Settings) + j.Settings.Monitoring.Grace
	for name, r := range old.Running {
		if !slices.Contains(old.LateAlerted, name) && !runStart(r).Add(deadline).After(t) {
			return true, after
		}
	}
	return false, time.Time{}
}

func runStart(r Run) time.Time {
	if !r.Started.IsZero() {
		return r.Started
	}
	return r.Created
}

// Unserved returns the slots due by t that no known execution serves: the monitor reads the
// trigger's records of these before Evaluate (obs.Executions as read this tick).
func Unserved(st *State, obs Observation, t time.Time, cfg Config) []time.Time {
	j := obs.Job
	if !j.Settings.Monitoring.Enabled {
		return nil
	}
	js := st.Jobs[j.Key.String()]
	if js == nil || js.Schedule != scheduleSig(j.Settings) {
		js = prepare(js, j, st.Watermark) // re-based; otherwise read as it is, without a copy
	}
	due, _ := dueSlots(js, j, t, cfg.Schedules)
	if len(due) == 0 {
		return nil
	}
	served := servedBy(obs, t)
	var out []time.Time
	for _, s := range due {
		if !js.served(s) && !served[s.Unix()] {
			out = append(out, s)
		}
	}
	return out
}

// servedBy returns the slots the executions read serve (those that existed at t).
func servedBy(obs Observation, t time.Time) map[int64]bool {
	out := map[int64]bool{}
	for _, x := range obs.Executions {
		if !x.Scheduled.IsZero() && !x.Created.After(t) {
			out[x.Scheduled.Unix()] = true
		}
	}
	return out
}

// event is something that happened to a job, dated.
type event struct {
	at     time.Time
	kind   notify.Kind // failed, missed, skipped, late, hung; succeeded and cancelled below
	result Result
	exec   *Execution
	slot   time.Time
	reason string
	// of a slot: where to look, and the Scheduler job as read this tick
	links []notify.Link
	sched *SchedulerJob
}

// Evaluate applies the observations, up to t, to st and returns the new state (st is not
// modified) and the alerts decided, which are also queued in the new state's Outbox with their
// channels. A job of st that was not observed (deleted, or no longer managed) or whose
// monitoring is disabled is forgotten; its open incident is closed with a message saying so.
func Evaluate(st *State, obs []Observation, t time.Time, cfg Config) (*State, []notify.Alert) {
	ns := &State{Watermark: t, Jobs: make(map[string]*JobState, len(obs)), Outbox: slices.Clone(st.Outbox)}
	if st.Blind != nil {
		b := *st.Blind
		ns.Blind = &b
	}
	if st.Watermark.After(t) {
		ns.Watermark = st.Watermark
	}
	var alerts []notify.Alert
	disabled := map[string]*Observation{}
	for i := range obs {
		o := &obs[i]
		if !o.Job.Settings.Monitoring.Enabled {
			disabled[o.Job.Key.String()] = o
			continue
		}
		key := o.Job.Key.String()
		old := st.Jobs[key]
		if old != nil && !old.EvaluatedTo.Before(t) {
			ns.Jobs[key] = old // already evaluated this far (a concurrent or later tick)
			continue
		}
		js := prepare(old, o.Job, st.Watermark)
		out := evalJob(js, o, t, cfg)
		ns.Jobs[key] = js
		for _, a := range out {
			a.DetectedAt = cmp.Or(cfg.Now, t)
			ns.Outbox = append(ns.Outbox, Pending{Alert: a, Channels: slices.Clone(o.Job.Channels)})
			alerts = append(alerts, a)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(st.Jobs)) {
		old := st.Jobs[key]
		if _, kept := ns.Jobs[key]; kept || old.Incident == nil {
			continue
		}
		channels := old.Incident.Channels
		o := disabled[key]
		if o != nil && len(o.Job.Channels) > 0 {
			channels = o.Job.Channels
		}
		if len(channels) == 0 {
			continue // an incident opened before incidents kept their channels: nowhere to say it
		}
		a := gone(key, old, o != nil, t)
		a.DetectedAt = cmp.Or(cfg.Now, t)
		ns.Outbox = append(ns.Outbox, Pending{Alert: a, Channels: slices.Clone(channels)})
		alerts = append(alerts, a)
	}
	return ns, alerts
}

// evalJob evaluates one job's window (js.EvaluatedTo, t] in four steps: the events of its
// executions, the events of its slots, all of them applied in time order (with the re-alerts
// due between them), and what to remember of the executions for the next tick.
func evalJob(js *JobState, o *Observation, t time.Time, cfg Config) []notify.Alert {
	w := windowOf(js, o.Job, t)
	served := servedBy(*o, t)
	events := executionEvents(js, o, w)
	events = append(events, slotEvents(js, o, w, served, cfg)...)
	sortEvents(events)
	alerts := applyEvents(js, o.Job, events, t, cfg)
	remember(js, o, t, served)
	return alerts
}

// window is what one job's evaluation judges runs by.
type window struct {
	from, to time.Time     // the window evaluated: (from, to]
	deadline time.Duration // expected runtime plus grace: a run older than this is late
	hung     bool          // late means hung: the expected runtime is the maximum
}

func windowOf(js *JobState, j Job, t time.Time) window {
	s := j.Settings
	return window{
		from: js.EvaluatedTo, to: t,
		deadline: ExpectedRuntime(s) + s.Monitoring.Grace,
		hung:     ExpectedRuntime(s) >= maxRuntime(s),
	}
}

// executionEvents returns the events of the job's runs: the completions in the window and the
// runs past their deadline by w.to (late or hung, once per run). Without executions read this
// tick, the runs remembered from earlier ticks are judged.
func executionEvents(js *JobState, o *Observation, w window) []event {
	var events []event
	late := func(name string, start time.Time, x *Execution) {
		if slices.Contains(js.LateAlerted, name) {
			return
		}
		kind := notify.KindLate
		if w.hung {
			kind = notify.KindHung
		}
		events = append(events, event{at: start.Add(w.deadline), kind: kind, exec: x})
	}
	if !o.Read {
		for name, r := range js.Running {
			if !runStart(r).Add(w.deadline).After(w.to) {
				late(name, runStart(r), &Execution{Name: name, Created: r.Created, Started: r.Started, LogURI: r.LogURI})
			}
		}
		return events
	}
	for i := range o.Executions {
		x := &o.Executions[i]
		if x.Created.After(w.to) {
			continue // did not exist yet at t
		}
		done := !x.Completed.IsZero() && !x.Completed.After(w.to)
		if done && x.Completed.After(w.from) {
			events = append(events, event{at: x.Completed, result: x.Result, exec: x})
		}
		if end := x.start().Add(w.deadline); !end.After(w.to) && (!done || x.Completed.After(end) && x.Completed.After(w.from)) {
			late(x.Name, x.start(), x)
		}
	}
	return events
}

// runningAt reports whether a run of the job was going at instant at: one of the executions
// read this tick or, without those, one remembered from an earlier tick.
func runningAt(js *JobState, o *Observation, at time.Time) bool {
	if o.Read {
		for _, x := range o.Executions {
			if !x.Created.After(at) && (x.Completed.IsZero() || x.Completed.After(at)) {
				return true
			}
		}
		return false
	}
	for _, r := range js.Running {
		if !r.Created.After(at) {
			return true
		}
	}
	return false
}

// slotEvents returns the events of the slots due by w.to that no run serves: missed or
// skipped, as the trigger's records say. It moves js.SlotsFrom past the slots judged and sets
// js.NextSlot.
func slotEvents(js *JobState, o *Observation, w window, served map[int64]bool, cfg Config) []event {
	var events []event
	due, next := dueSlots(js, o.Job, w.to, cfg.Schedules)
	js.NextSlot = next
	for _, slot := range due {
		js.SlotsFrom = slot
		if js.served(slot) || served[slot.Unix()] {
			continue
		}
		at := slot.Add(w.deadline)
		rec := o.Slots[slot.Unix()]
		ev := event{at: at, slot: slot, links: o.Job.Links, sched: o.Scheduler}
		switch {
		case rec.Found && (rec.Outcome == platform.RunStarted || rec.Outcome == platform.RunClaimed):
			// the trigger ran it; the execution's own result is judged on its own
		case rec.Found && rec.Outcome == platform.RunSkipped:
			ev.kind, ev.reason = notify.KindSkipped, rec.Reason
			events = append(events, ev)
		case rec.Found:
			ev.kind, ev.reason = notify.KindMissed, cmp.Or(rec.Reason, "the trigger did not run it ("+rec.Outcome+")")
			ev.sched = nil // the trigger received the slot: the Scheduler delivered it
			events = append(events, ev)
		case runningAt(js, o, at):
			// another run was still going: Forbid would skip this slot, and that run is
			// judged late or hung on its own
		default:
			ev.kind = notify.KindMissed
			events = append(events, ev)
		}
	}
	return events
}

// sortEvents puts events in time order (then by execution name), so that the same alerts are
// decided however the time is cut into ticks.
func sortEvents(events []event) {
	slices.SortStableFunc(events, func(a, b event) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(nameOf(a.exec), nameOf(b.exec))
	})
}

// applyEvents applies the sorted events to js and returns the alerts they decide. Re-alerts
// are events too: one per interval the incident stays open, dated, so that the same ones are
// sent however the time is cut into ticks.
func applyEvents(js *JobState, j Job, events []event, t time.Time, cfg Config) []notify.Alert {
	var alerts []notify.Alert
	realerts := func(until time.Time) {
		for inc := js.Incident; inc != nil && cfg.ReAlert > 0 && !inc.LastAlert.Add(cfg.ReAlert).After(until); {
			inc.LastAlert = inc.LastAlert.Add(cfg.ReAlert)
			alerts = append(alerts, realert(j, inc))
		}
	}
	for _, ev := range events {
		realerts(ev.at)
		if a, ok := apply(js, j, ev, cfg); ok {
			alerts = append(alerts, a)
		}
	}
	realerts(t)
	return alerts
}

// remember ends the evaluation at t: when executions were read, it keeps those still running,
// the latest execution and the slots they served, for the next tick; and it forgets the late
// alerts of runs that ended.
func remember(js *JobState, o *Observation, t time.Time, served map[int64]bool) {
	if o.Read {
		js.Running = nil
		for _, x := range o.Executions {
			if x.Created.After(t) || !x.Completed.IsZero() && !x.Completed.After(t) {
				continue
			}
			if js.Running == nil {
				js.Running = map[string]Run{}
			}
			r := Run{Created: x.Created, LogURI: x.LogURI}
			if !x.Started.After(t) {
				r.Started = x.Started
			}
			js.Running[x.Name] = r
		}
		js.ReadAt = t
		js.LatestName, js.LatestDone = "", false
		if l := o.Job.Latest; l != nil && !l.Created.After(t) {
			js.LatestName = l.Name
			js.LatestDone = !l.Completed.IsZero() && !l.Completed.After(t)
		}
		for slot := range served {
			if slot > js.SlotsFrom.Unix() {
				js.addServed(time.Unix(slot, 0))
			}
		}
	}
	js.LateAlerted = slices.DeleteFunc(js.LateAlerted, func(name string) bool { _, ok := js.Running[name]; return !ok })
	if len(js.LateAlerted) == 0 {
		js.LateAlerted = nil
	}
	js.pruneServed()
	js.EvaluatedTo = t
}

func nameOf(x *Execution) string {
	if x == nil {
		return ""
	}
	return x.Name
}

// apply changes js for one event and returns the alert it causes, if any.
func apply(js *JobState, j Job, ev event, cfg Config) (notify.Alert, bool) {
	s := j.Settings
	switch {
	case ev.kind == notify.KindLate || ev.kind == notify.KindHung:
		js.LateAlerted = append(js.LateAlerted, ev.exec.Name)
		if js.Incident != nil {
			return notify.Alert{}, false
		}
		js.Incident = &Incident{Kind: ev.kind, Since: ev.exec.start(), LastAlert: ev.at, Execution: ev.exec.Name, LogURL: ev.exec.LogURI,
			Channels: slices.Clone(j.Channels)}
		js.Incident.Key = incidentKey(j.Key, js.Incident.Since)
		js.noteChange(ev.at, cfg)
		return open(j, js, ev), true
	case ev.kind != "": // missed, skipped
		if ev.slot.Before(js.LastSuccess) {
			// A later run already succeeded: the job is healthy now. The slot belongs to the
			// incident just resolved, or is worth a warning, not a page.
			if r := js.Resolved; r != nil && !ev.slot.Before(r.From) && !ev.slot.After(r.To) {
				return notify.Alert{}, false
			}
			return superseded(j, ev), true
		}
		return failure(js, j, ev, cfg)
	case ev.result == Failed:
		return failure(js, j, ev, cfg)
	case ev.result == Succeeded:
		js.Failures = 0
		js.Successes++
		js.LastSuccess = ev.at
		if inc := js.Incident; inc != nil {
			if js.Successes < max(s.Monitoring.RecoveryThreshold, 1) {
				return notify.Alert{}, false
			}
			if js.wouldFlap(ev.at, cfg) {
				if inc.Flapping {
					return notify.Alert{}, false
				}
				inc.Flapping = true
				return flapping(j, js, ev, cfg), true
			}
			js.Incident = nil
			js.noteChange(ev.at, cfg)
			js.Resolved = &Span{From: inc.Since, To: ev.at}
			return recovered(j, inc, ev), true
		}
		if ev.exec.Retried > 0 && s.Monitoring.AlertOnFlaky && (js.LastFlaky.IsZero() || !ev.at.Before(js.LastFlaky.Add(cfg.flakyEvery()))) {
			js.LastFlaky = ev.at
			return flaky(j, ev), true
		}
	}
	return notify.Alert{}, false // cancelled: neither a failure nor a success
}

func failure(js *JobState, j Job, ev event, cfg Config) (notify.Alert, bool) {
	js.Successes = 0
	if js.Failures == 0 {
		js.StreakSince = ev.at
		if !ev.slot.IsZero() {
			js.StreakSince = ev.slot
		}
	}
	js.Failures++
	if js.Incident != nil || js.Failures < max(j.Settings.Monitoring.FailureThreshold, 1) {
		return notify.Alert{}, false
	}
	kind := ev.kind
	if kind == "" {
		kind = notify.KindFailed
	}
	js.Incident = &Incident{Kind: kind, Since: js.StreakSince, LastAlert: ev.at, Slot: ev.slot, Links: slices.Clone(ev.links), Channels: slices.Clone(j.Channels)}
	if ev.exec != nil {
		js.Incident.Execution, js.Incident.LogURL = ev.exec.Name, ev.exec.LogURI
	}
	js.Incident.Key = incidentKey(j.Key, js.Incident.Since)
	js.noteChange(ev.at, cfg)
	return open(j, js, ev), true
}

// noteChange records that an incident of the job opened or resolved at at (the pages flap
// damping counts), keeping the latest cfg.flapChanges() of them.
func (js *JobState) noteChange(at time.Time, cfg Config) {
	n := cfg.flapChanges()
	if n == 0 {
		js.Changes = nil
		return
	}
	js.Changes = append(js.Changes, at)
	if len(js.Changes) > n {
		js.Changes = slices.Delete(js.Changes, 0, len(js.Changes)-n)
	}
}

// wouldFlap reports whether resolving the incident at at would make cfg.flapChanges() opens
// and resolves within the cfg.flapWindow() up to at: the job is flapping.
func (js *JobState) wouldFlap(at time.Time, cfg Config) bool {
	n := cfg.flapChanges() - 1 // the resolve at at is the last
	return n > 0 && len(js.Changes) >= n && !js.Changes[len(js.Changes)-n].Before(at.Add(-cfg.flapWindow()))
}

func incidentKey(k Key, since time.Time) string {
	return fmt.Sprintf("runway/%s/%d", k, since.Unix())
}

// base fills what every alert of the job says.
func base(j Job, a notify.Alert) notify.Alert {
	a.Workload = cmp.Or(j.Settings.Workload, j.Key.Job)
	a.Project, a.Location, a.Job = j.Key.Project, j.Key.Location, j.Key.Name()
	a.Owner = j.Settings.Owner.EmailHandle
	a.Team = j.Settings.Owner.Department
	return a
}

func shortName(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

func open(j Job, js *JobState, ev event) notify.Alert {
	s := j.Settings
	w := cmp.Or(s.Workload, j.Key.Job)
	inc := js.Incident
	a := notify.Alert{Kind: inc.Kind, Action: notify.ActionOpen, Severity: notify.SeverityCritical, IncidentKey: inc.Key,
		Since: inc.Since, Slot: ev.slot, Time: ev.at}
	if ev.exec != nil {
		a.Execution, a.LogURL = ev.exec.Name, ev.exec.LogURI
	}
	a.Links = slices.Clone(ev.links)
	grace := s.Monitoring.Grace
	streak := ""
	if js.Failures > 1 {
		streak = fmt.Sprintf(" It is the %s failure in a row (failure_threshold %d); failing since %s.", ordinal(js.Failures), s.Monitoring.FailureThreshold, ts(inc.Since))
	}
	switch inc.Kind {
	case notify.KindFailed:
		a.Summary = fmt.Sprintf("%s: execution %s failed", w, shortName(ev.exec.Name))
		a.Detail = fmt.Sprintf("The execution ended failed at %s.%s See its logs for the failing task.", ts(ev.at), streak)
	case notify.KindMissed:
		a.Summary = fmt.Sprintf("%s: the run scheduled for %s did not happen", w, ts(ev.slot))
		if ev.reason != "" {
			a.Detail = fmt.Sprintf("No execution served the slot: %s.%s", ev.reason, streak)
		} else {
			a.Detail = fmt.Sprintf("No execution served the slot by %s (slot + expected runtime %s + grace %s) and none was running.%s%s",
				ts(ev.at), ExpectedRuntime(s), grace, schedulerWhy(ev.sched, s, ev.slot), streak)
		}
	case notify.KindSkipped:
		a.Summary = fmt.Sprintf("%s: the run scheduled for %s was skipped", w, ts(ev.slot))
		a.Detail = fmt.Sprintf("The trigger skipped the slot (concurrency policy %s): %s.%s", cmp.Or(s.ConcurrencyPolicy, "Forbid"), cmp.Or(ev.reason, "a run was still active"), streak)
	case notify.KindLate:
		a.Summary = fmt.Sprintf("%s: execution %s is running late", w, shortName(ev.exec.Name))
		a.Detail = fmt.Sprintf("Running since %s, past its expected runtime %s + grace %s.", ts(inc.Since), ExpectedRuntime(s), grace)
	case notify.KindHung:
		a.Summary = fmt.Sprintf("%s: execution %s looks hung", w, shortName(ev.exec.Name))
		a.Detail = fmt.Sprintf("Running since %s, longer than timeout × (max_retries + 1) = %s + grace %s should allow. Cancel it if it is stuck: with concurrency policy Forbid it blocks every later slot.",
			ts(inc.Since), maxRuntime(s), grace)
	}
	a.ID = inc.Key + "/open"
	return base(j, a)
}

func realert(j Job, inc *Incident) notify.Alert {
	w := cmp.Or(j.Settings.Workload, j.Key.Job)
	a := notify.Alert{Kind: inc.Kind, Action: notify.ActionRealert, Severity: notify.SeverityCritical, IncidentKey: inc.Key,
		Since: inc.Since, Slot: inc.Slot, Execution: inc.Execution, LogURL: inc.LogURL, Time: inc.LastAlert, Duration: inc.LastAlert.Sub(inc.Since)}
	a.Links = slices.Clone(inc.Links)
	a.Summary = fmt.Sprintf("%s: still %s, since %s", w, inc.Kind, ts(inc.Since))
	a.Detail = fmt.Sprintf("The incident opened for a %s run has had no recovery for %s.", inc.Kind, a.Duration.Round(time.Minute))
	a.ID = fmt.Sprintf("%s/realert/%d", inc.Key, inc.LastAlert.Unix())
	return base(j, a)
}

func recovered(j Job, inc *Incident, ev event) notify.Alert {
	w := cmp.Or(j.Settings.Workload, j.Key.Job)
	a := notify.Alert{Kind: notify.KindRecovered, Action: notify.ActionResolve, Severity: notify.SeverityInfo, IncidentKey: inc.Key,
		Since: inc.Since, Execution: ev.exec.Name, LogURL: ev.exec.LogURI, Time: ev.at, Duration: ev.at.Sub(inc.Since)}
	a.Summary = fmt.Sprintf("%s recovered: execution %s succeeded", w, shortName(ev.exec.Name))
	a.Detail = fmt.Sprintf("The %s incident that started at %s lasted %s.", inc.Kind, ts(inc.Since), a.Duration.Round(time.Second))
	if inc.Flapping {
		a.Detail += " The job was flapping meanwhile (failing and succeeding in turn): it was held open until it settled."
	}
	a.ID = inc.Key + "/resolve"
	return base(j, a)
}

func superseded(j Job, ev event) notify.Alert {
	w := cmp.Or(j.Settings.Workload, j.Key.Job)
	a := notify.Alert{Kind: ev.kind, Action: notify.ActionWarn, Severity: notify.SeverityWarning, Slot: ev.slot, Since: ev.slot, Time: ev.at}
	a.IncidentKey = fmt.Sprintf("runway/%s/%s/%d", j.Key, ev.kind, ev.slot.Unix())
	a.ID = a.IncidentKey
	verb := "did not happen"
	if ev.kind == notify.KindSkipped {
		verb = "was skipped"
	}
	a.Links = slices.Clone(ev.links)
	a.Summary = fmt.Sprintf("%s: the run scheduled for %s %s", w, ts(ev.slot), verb)
	a.Detail = "A later run has succeeded since, so this is a warning, not a page." + schedulerWhy(ev.sched, j.Settings, ev.slot)
	if ev.reason != "" {
		a.Detail = ev.reason + ". " + a.Detail
	}
	return base(j, a)
}

func flaky(j Job, ev event) notify.Alert {
	w := cmp.Or(j.Settings.Workload, j.Key.Job)
	a := notify.Alert{Kind: notify.KindFlaky, Action: notify.ActionWarn, Severity: notify.SeverityWarning,
		Execution: ev.exec.Name, LogURL: ev.exec.LogURI, Time: ev.at, Since: ev.exec.start()}
	a.IncidentKey = fmt.Sprintf("runway/%s/flaky/%d", j.Key, ev.at.Unix())
	a.ID = a.IncidentKey
	attempts := "attempt"
	if ev.exec.Retried > 1 {
		attempts = "attempts"
	}
	a.Summary = fmt.Sprintf("%s: execution %s succeeded only after %d failed task %s", w, shortName(ev.exec.Name), ev.exec.Retried, attempts)
	a.Detail = "A warning, not a page: the run succeeded on retry. Flaky warnings of a job are sent at most once a day."
	return base(j, a)
}

// schedulerWhy says, as sentences after the detail, what the job's Cloud Scheduler job tells of
// a slot that got no execution: deleted, paused or disabled outside Runway, its last attempt
// failed (with the status), or its last attempt succeeded (then the trigger is to blame). It
// is empty when the Scheduler job was not read.
func schedulerWhy(sj *SchedulerJob, s platform.Settings, slot time.Time) string {
	if sj == nil {
		return ""
	}
	if sj.Missing {
		return fmt.Sprintf(" The Cloud Scheduler job %s does not exist: it was deleted outside Runway (the next deploy recreates it).", sj.Name)
	}
	var b strings.Builder
	switch sj.State {
	case "PAUSED":
		if !s.Suspend {
			b.WriteString(" The Cloud Scheduler job is PAUSED, but the manifest does not suspend the job: it was paused outside Runway (resume it, or set suspend: true and deploy).")
		}
	case "DISABLED":
		b.WriteString(" The Cloud Scheduler job is DISABLED (by Google Cloud, for example while the project's billing or the API is off).")
	case "UPDATE_FAILED":
		b.WriteString(" The Cloud Scheduler job is UPDATE_FAILED: its last update did not apply.")
	}
	switch ok := sj.Code == "" || sj.Code == "OK"; {
	case sj.LastAttempt.IsZero():
		b.WriteString(" The Cloud Scheduler job has made no attempt yet.")
	case !ok:
		fmt.Fprintf(&b, " Its last attempt, at %s, failed: %s", ts(sj.LastAttempt), sj.Code)
		if sj.Message != "" {
			fmt.Fprintf(&b, " (%s)", sj.Message)
		}
		b.WriteString(".")
	case sj.LastAttempt.Before(slot):
		fmt.Fprintf(&b, " Its last attempt was at %s, before the slot: Cloud Scheduler did not fire it.", ts(sj.LastAttempt))
	default:
		fmt.Fprintf(&b, " Its last attempt, at %s, succeeded: look at the trigger function's logs.", ts(sj.LastAttempt))
	}
	return b.String()
}

// flapping is the warning sent once when an open incident is held because the job flaps.
func flapping(j Job, js *JobState, ev event, cfg Config) notify.Alert {
	w := cmp.Or(j.Settings.Workload, j.Key.Job)
	inc := js.Incident
	n := cfg.flapChanges()
	a := notify.Alert{Kind: notify.KindFlapping, Action: notify.ActionWarn, Severity: notify.SeverityWarning, IncidentKey: inc.Key,
		Since: inc.Since, Execution: ev.exec.Name, LogURL: ev.exec.LogURI, Links: slices.Clone(inc.Links), Time: ev.at, Duration: ev.at.Sub(inc.Since)}
	a.ID = inc.Key + "/flapping"
	a.Summary = fmt.Sprintf("%s is flapping: its incidents opened and resolved %d times since %s", w, n-1, ts(js.Changes[len(js.Changes)-(n-1)]))
	a.Detail = fmt.Sprintf("Execution %s succeeded, but resolving the %s incident that opened at %s would make %d opens and resolves within %s: it stays open, with no more pages, and a success resolves it once fewer would (flap damping). If single failures are expected, raise failure_threshold.",
		shortName(ev.exec.Name), inc.Kind, ts(inc.Since), n, cfg.flapWindow())
	return base(j, a)
}

// gone closes the open incident of a job that is no longer seen (deleted, or no longer
// managed) or whose monitoring was disabled (disabled), at t.
func gone(key string, js *JobState, disabled bool, t time.Time) notify.Alert {
	inc := js.Incident
	k := Key{}
	if parts := strings.SplitN(key, "/", 3); len(parts) == 3 {
		k = Key{Project: parts[0], Location: parts[1], Job: parts[2]}
	}
	w := cmp.Or(js.Workload, k.Job)
	a := notify.Alert{Kind: notify.KindGone, Action: notify.ActionResolve, Severity: notify.SeverityInfo, IncidentKey: inc.Key,
		Workload: w, Project: k.Project, Location: k.Location, Job: k.Name(), Since: inc.Since, Execution: inc.Execution,
		LogURL: inc.LogURL, Links: slices.Clone(inc.Links), Time: t, Duration: t.Sub(inc.Since)}
	a.ID = inc.Key + "/resolve"
	if disabled {
		a.Summary = fmt.Sprintf("%s: monitoring was disabled; its %s incident is closed", w, inc.Kind)
		a.Detail = fmt.Sprintf("The %s incident that started at %s is closed without a recovery: the job's monitoring.enabled is now false, so the monitor no longer watches it.", inc.Kind, ts(inc.Since))
	} else {
		a.Summary = fmt.Sprintf("%s: the job is gone; its %s incident is closed", w, inc.Kind)
		a.Detail = fmt.Sprintf("The %s incident that started at %s is closed without a recovery: the Cloud Run job %s is no longer listed as a Runway job (deleted, or its labels or settings annotation removed).", inc.Kind, ts(inc.Since), k.Name())
	}
	return a
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprint(n) + suffix
}

// MetricsLookBlind reports whether the metrics returned nothing for every job while a job's
// latest execution completed in a one-minute bucket that ends in (w, t]: Monitoring is not
// seeing what runs.
func MetricsLookBlind(obs []Observation, w, t time.Time) bool {
	active := false
	for _, o := range obs {
		if o.Activity.Any() {
			return false
		}
		if l := o.Job.Latest; l != nil && !l.Completed.IsZero() {
			end := l.Completed.Truncate(time.Minute).Add(time.Minute)
			active = active || end.After(w) && !end.After(t)
		}
	}
	return active
}

// SetBlind records that at t the monitor could not see project's metrics (blind) or could, and
// returns the new state and the alert to send: "cannot see" once the blindness lasted
// cfg.BlindAfter, "sees again" when it ends after that alert. While blind, jobs are not
// evaluated and the watermark stays, so nothing is lost: the window is evaluated when the
// metrics are back.
func SetBlind(st *State, project string, blind bool, reason string, t time.Time, channels []string, cfg Config) (*State, []notify.Alert) {
	ns := *st
	ns.Outbox = slices.Clone(st.Outbox)
	var a notify.Alert
	switch {
	case blind && st.Blind == nil:
		ns.Blind = &Blind{Since: t, Reason: reason}
		return &ns, nil
	case blind:
		b := *st.Blind
		b.Reason = reason
		ns.Blind = &b
		if b.Alerted || t.Sub(b.Since) < cfg.blindAfter() {
			return &ns, nil
		}
		b.Alerted = true
		b.Key = fmt.Sprintf("runway/%s/unknown/%d", project, b.Since.Unix())
		a = notify.Alert{ID: b.Key + "/open", IncidentKey: b.Key, Kind: notify.KindUnknown, Action: notify.ActionOpen, Severity: notify.SeverityCritical,
			Project: project, Since: b.Since, Time: t, Duration: t.Sub(b.Since),
			Summary: fmt.Sprintf("Runway monitor cannot see the Cloud Run job metrics of project %s", project),
			Detail:  fmt.Sprintf("Since %s: %s. Job alerts are held, not lost: the window is evaluated once the metrics are back. No owner is paged meanwhile.", ts(b.Since), reason)}
	case st.Blind == nil:
		return &ns, nil
	default:
		ns.Blind = nil
		if !st.Blind.Alerted {
			return &ns, nil
		}
		a = notify.Alert{ID: st.Blind.Key + "/resolve", IncidentKey: st.Blind.Key, Kind: notify.KindUnknown, Action: notify.ActionResolve, Severity: notify.SeverityInfo,
			Project: project, Since: st.Blind.Since, Time: t, Duration: t.Sub(st.Blind.Since),
			Summary: fmt.Sprintf("Runway monitor sees the Cloud Run job metrics of project %s again", project),
			Detail:  "The held window is being evaluated now; alerts about it follow."}
	}
	a.DetectedAt = cmp.Or(cfg.Now, t)
	a.Links = slices.Clone(cfg.BlindLinks)
	ns.Outbox = append(ns.Outbox, Pending{Alert: a, Channels: slices.Clone(channels)})
	return &ns, []notify.Alert{a}
}
