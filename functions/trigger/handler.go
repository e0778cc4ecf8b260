package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
	"runwayjobs.dev/shared/state"
)

// Handler starts the executions that trigger-topic messages ask for. It is safe for
// concurrent use, and any number of Handlers (function instances) may share one store.
type Handler struct {
	jobs  *run.JobsClient
	execs *run.ExecutionsClient
	store state.Store
	inv   *inventory.Inventory
	// now is Google Cloud's time as the configured world sees it (slots, deadlines, records);
	// leaseNow is the wall clock of this process, which leases are measured on: they bound
	// calls that take real time, whatever a manual emulator clock does meanwhile.
	now      func() time.Time
	leaseNow func() time.Time
	log      zerolog.Logger
	t        Timing
	listPage int // page size of the look at running executions (listPage; tests shrink it)
}

// Timing holds the durations of the claim protocol (see claim.go). The zero value of a field
// means its default.
type Timing struct {
	// Lease is how long a claim (or a job's policy lock) is held before another delivery may
	// take it over (default 2m).
	Lease time.Duration
	// RunJob bounds one RunJob call; a holder calls RunJob only with at least RunJob + Settle
	// of its lease left (default 30s).
	RunJob time.Duration
	// Settle is the margin between the end of the last possible RunJob call of a holder and the
	// end of its lease, for the execution to show in ListExecutions (default 30s).
	Settle time.Duration
	// Wait is how long a duplicate delivery waits for the holder of a claim or lock to finish
	// before asking Pub/Sub to redeliver (default 2s).
	Wait time.Duration
	// Replace bounds the wait for cancelled executions to end under Replace (default 1m).
	Replace time.Duration
	// Poll is the interval of those waits (default 20ms).
	Poll time.Duration
}

func (t Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Lease, 2*time.Minute)
	def(&t.RunJob, 30*time.Second)
	def(&t.Settle, 30*time.Second)
	def(&t.Wait, 2*time.Second)
	def(&t.Replace, time.Minute)
	def(&t.Poll, 20*time.Millisecond)
	if t.Lease <= t.RunJob+t.Settle { // a lease must leave room for a RunJob call and its settling
		t.Lease = 2 * (t.RunJob + t.Settle)
	}
	return t
}

// newHandler returns a Handler over the official clients, the store and the inventory. now is
// Google Cloud's clock (time.Now in production, gcp.Config.Clock on the local platform); leases
// are measured on time.Now.
func newHandler(cl *gcp.Clients, store state.Store, inv *inventory.Inventory, now func() time.Time, log zerolog.Logger) *Handler {
	return &Handler{jobs: cl.Jobs, execs: cl.Executions, store: platform.ScopedStore("trigger", store), inv: inv, now: now, leaseNow: time.Now, log: log, t: Timing{}.withDefaults(), listPage: listPage}
}

// LocalTiming is the protocol's timing against the emulator: its calls are local and end with
// the request (faults are injected before a call is served), so seconds replace the minutes
// sized for Cloud Run's latency.
var LocalTiming = Timing{Lease: 30 * time.Second, RunJob: 10 * time.Second, Settle: time.Second}

// WithTiming returns a copy of h with the claim protocol's durations changed (the local
// platform and tests shorten them; Google Cloud keeps the defaults).
func (h *Handler) WithTiming(t Timing) *Handler {
	c := *h
	c.t = t.withDefaults()
	return &c
}

// request is one validated request to start an execution: what to claim and what to run.
type request struct {
	workload  inventory.Workload
	key       string // store key of the claim
	requestID string // RUNWAY_REQUEST_ID
	trigger   string // platform.TriggerManual | platform.TriggerSchedule
	slot      time.Time
	run       *platform.RunRequest // manual requests only
	policy    manifest.ConcurrencyPolicy
}

// Handle processes one CloudEvent. Permanent errors (event.IsPermanent) mean "acknowledge":
// the outcome, if the request could be identified, is recorded as refused.
func (h *Handler) Handle(ctx context.Context, e cloudevent.Event) error {
	msg, err := event.Decode(e)
	if err != nil {
		h.log.Error().Err(err).Str("event_id", e.ID()).Msg("event refused")
		return err
	}
	log := h.log.With().Str("event_id", e.ID()).Str("message_id", msg.ID).Str("topic", msg.Topic).Logger()
	err = h.handle(ctx, msg)
	switch {
	case err == nil:
	case event.IsPermanent(err):
		log.Warn().Err(err).Msg("request refused")
	default:
		log.Info().Err(err).Msg("request not done yet: redelivery")
	}
	return err
}

func (h *Handler) handle(ctx context.Context, msg event.Message) error {
	w, err := h.workloadOf(msg)
	if err != nil {
		return err
	}
	switch kind := msg.Attributes[platform.AttrKind]; kind {
	case platform.KindScheduled:
		return h.scheduled(ctx, w, msg)
	case platform.KindRun, "":
		return h.manual(ctx, w, msg)
	default:
		return event.Permanent(fmt.Errorf("message %s: attribute %s=%q is not %q or %q", msg.ID, platform.AttrKind, kind, platform.KindRun, platform.KindScheduled))
	}
}

// workloadOf returns the inventory entry of the job the message's topic is bound to.
func (h *Handler) workloadOf(msg event.Message) (inventory.Workload, error) {
	name, ok := platform.WorkloadOfTopic(msg.Topic)
	if !ok || msg.Topic != platform.TriggerTopic(name) {
		return inventory.Workload{}, event.Permanent(fmt.Errorf("topic %s is not a trigger topic (%s)", msg.Topic, platform.TriggerTopic("WORKLOAD")))
	}
	w, err := h.inv.Job(name)
	switch {
	case err != nil:
		return w, event.Permanent(fmt.Errorf("topic %s: %w", msg.Topic, err))
	case msg.Project != "" && msg.Project != w.GCPProject:
		return w, event.Permanent(fmt.Errorf("topic %s is in project %s, but workload %q runs in %s", msg.Topic, msg.Project, name, w.GCPProject))
	}
	return w, nil
}

// manual handles a run request published by runwayctl run.
func (h *Handler) manual(ctx context.Context, w inventory.Workload, msg event.Message) error {
	req, problems, err := platform.DecodeRunRequest(msg.Data)
	if err != nil {
		return event.Permanent(fmt.Errorf("message %s: %w", msg.ID, err))
	}
	if req.RequestID == "" {
		return event.Permanent(fmt.Errorf("message %s: %w", msg.ID, platform.ErrNoRequestID))
	}
	r := request{
		workload:  w,
		key:       platform.RunRecordKey(w.Name, req.RequestID),
		requestID: req.RequestID,
		trigger:   platform.TriggerManual,
		run:       &req,
	}
	if req.Workload != w.Name {
		problems = append([]string{fmt.Sprintf("workload: the request names %q but was published on the trigger topic of %q", req.Workload, w.Name)}, problems...)
	}
	if len(problems) > 0 {
		return h.refuse(ctx, r, platform.RunRefusal(problems))
	}
	job, err := h.locate(ctx, w)
	if err != nil {
		if event.IsPermanent(err) {
			return h.refuse(ctx, r, err.Error())
		}
		return err
	}
	settings, err := platform.SettingsOf(job.Annotations)
	if err != nil {
		return h.refuse(ctx, r, fmt.Sprintf("job %s: %v (redeploy the workload)", job.Name, err))
	}
	r.policy = policyOf(req.ConcurrencyPolicy, settings.ConcurrencyPolicy)
	return h.start(ctx, r, job, settings)
}

// scheduled handles a scheduled-run request published by the workload's Cloud Scheduler job.
// Its slot is the most recent slot of the job's schedule at or before the publish time, so
// every firing of one slot claims the same key.
func (h *Handler) scheduled(ctx context.Context, w inventory.Workload, msg event.Message) error {
	var body platform.ScheduledRun
	if err := document.ScanJSON(msg.Data, platform.MaxRunRequestBody); err != nil {
		return event.Permanent(fmt.Errorf("message %s: scheduled-run body: %w", msg.ID, err))
	}
	if err := json.Unmarshal(msg.Data, &body); err != nil {
		return event.Permanent(fmt.Errorf("message %s: scheduled-run body: %w", msg.ID, err))
	}
	if body.Workload != w.Name {
		return event.Permanent(fmt.Errorf("message %s: the scheduled run names workload %q but was published on the trigger topic of %q", msg.ID, body.Workload, w.Name))
	}
	if msg.PublishTime.IsZero() {
		return event.Permanent(fmt.Errorf("message %s: no publish time: the slot cannot be known", msg.ID))
	}
	job, err := h.locate(ctx, w)
	if err != nil {
		return err
	}
	settings, err := platform.SettingsOf(job.Annotations)
	if err != nil {
		return event.Permanent(fmt.Errorf("job %s: %w (redeploy the workload)", job.Name, err))
	}
	if settings.Schedule == "" {
		return event.Permanent(fmt.Errorf("job %s has no schedule: a scheduled run of it is refused", job.Name))
	}
	slot, err := slotOf(settings, msg.PublishTime)
	if err != nil {
		return event.Permanent(fmt.Errorf("job %s: %w", job.Name, err))
	}
	key := platform.SlotRecordKey(w.Name, slot)
	r := request{
		workload:  w,
		key:       key,
		requestID: key,
		trigger:   platform.TriggerSchedule,
		slot:      slot,
		policy:    policyOf("", settings.ConcurrencyPolicy),
	}
	return h.start(ctx, r, job, settings)
}

// slotOf returns the most recent slot of the job's schedule at or before t.
func slotOf(s platform.Settings, t time.Time) (time.Time, error) {
	sched, err := schedule.Parse(s.Schedule, s.TimeZone)
	if err != nil {
		return time.Time{}, err
	}
	// Four years back covers the sparsest schedule Parse accepts (29 February) and stays
	// within robfig's five-year search.
	due, err := sched.MostRecent(t.Add(-4*366*24*time.Hour), t)
	if err != nil {
		return time.Time{}, err
	}
	if due.Slot.IsZero() {
		return time.Time{}, fmt.Errorf("schedule %q has no slot at or before %s", s.Schedule, t.UTC().Format(time.RFC3339))
	}
	return due.Slot, nil
}

// policyOf returns the request's policy if it asks for one, else the job's, else the
// manifest's default.
func policyOf(asked, job string) manifest.ConcurrencyPolicy {
	switch {
	case asked != "":
		return manifest.ConcurrencyPolicy(asked)
	case job != "":
		return manifest.ConcurrencyPolicy(job)
	}
	return manifest.DefaultConcurrencyPolicy
}

// locate returns the workload's Cloud Run job: its home copy (desired.Place), wherever a region
// move put it. A stray copy a move left behind is never run (deploy deletes it). A workload with
// no copy, or with only jobs Runway does not manage for it, is a Permanent error.
func (h *Handler) locate(ctx context.Context, w inventory.Workload) (*runpb.Job, error) {
	p, err := desired.Locate(ctx, h.jobs, w)
	if err != nil {
		return nil, err
	}
	if p.Home == nil {
		if len(p.Foreign) > 0 {
			job := p.Foreign[0]
			return nil, event.Permanent(fmt.Errorf("job %s is not managed by Runway for workload %q (labels %s=%s, %s=%s): it is never run", job.Name, w.Name,
				platform.LabelManagedBy, job.Labels[platform.LabelManagedBy], platform.LabelWorkload, job.Labels[platform.LabelWorkload]))
		}
		return nil, event.Permanent(fmt.Errorf("workload %q has no Cloud Run job in %s of project %s: deploy it first", w.Name, strings.Join(w.Regions, ", "), w.GCPProject))
	}
	for _, s := range p.Strays {
		h.log.Warn().Str("workload", w.Name).Str("job", p.Home.Name).Str("stray", s.Name).Msg("a region move left a copy of the job: the home copy runs, the copy never does")
	}
	if len(p.Home.GetTemplate().GetTemplate().GetContainers()) == 0 {
		return nil, event.Permanent(fmt.Errorf("job %s has no container", p.Home.Name))
	}
	return p.Home, nil
}
