package monitor

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/gcp/monitorclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// Exactly one notification per state change: the invariant and its crash windows.
//
// A project's whole monitor state — each job's incident and counters, the watermark, and the
// outbox of alerts decided but not yet delivered — is one object in the store, written only
// with a generation precondition. A tick (1) reads it, (2) evaluates the window from the
// watermark to now minus the ingest lag, (3) writes the new state, with the new alerts in the
// outbox leased to itself, in one conditional Put, then (4) hands its leased alerts to their
// channels and (5) removes the delivered ones with another conditional Put (re-reading and
// merging if something else wrote meanwhile).
//
// Invariant: an alert exists only inside the state change that caused it, so a state change
// is claimed exactly once (step 3 is the claim: of two ticks evaluating the same window, one
// Put wins and the other re-reads, finds the window evaluated, and decides nothing), and an
// alert is delivered only by the tick holding its lease.
//
//   - Crash before step 3: nothing was claimed or sent; the next tick evaluates the same window
//     (the watermark did not move) and decides the same alerts.
//   - Crash between 3 and 4: the alerts wait in the outbox, leased to a dead tick; a later tick
//     takes them over when the lease expires (Config.Lease) and delivers them. Late, not lost,
//     not doubled.
//   - A channel refuses: its name stays on the alert, the lease is released with a backoff, and
//     a later tick retries that channel only; the others are not sent twice.
//   - Crash between 4 and 5: the alerts were delivered but are still in the outbox, and will be
//     delivered again after the lease expires. That window is one Put long and cannot be closed
//     on our side; receivers can deduplicate on the alert ID (webhook X-Runway-Alert-Id,
//     PagerDuty dedup_key, the mail's Message-Id).
//   - A tick slower than its lease could have its alerts taken over: Lease is longer than a
//     delivery with all its retries takes, and each tick's context ends before it.
//
// So the watermark moves in the same write that puts the window's alerts in the outbox, and the
// outbox is emptied only once the channels took them.

// Handler runs monitor ticks.
type Handler struct {
	cfg        Config
	cloud      cloud
	store      state.Store
	inv        *inventory.Inventory
	dispatcher *notify.Dispatcher
	platform   []string // channels of the monitor's own alerts and of jobs routed nowhere
	now        func() time.Time
	log        zerolog.Logger
	newLease   func() string
	settings   settingsCache
	schedules  *detect.Schedules

	// last is the state this instance last read or wrote, by key: when the store still holds
	// that generation, load skips decoding it (the state of 10,000 jobs is megabytes of JSON).
	lastMu sync.Mutex
	last   map[string]cachedState
}

type cachedState struct {
	gen int64
	st  *detect.State
}

// shallow copies what the handler changes in place (the outbox, the job map); job states are
// never changed in place (Evaluate copies those it changes).
func shallow(s *detect.State) *detect.State {
	c := *s
	c.Jobs = maps.Clone(s.Jobs)
	c.Outbox = slices.Clone(s.Outbox)
	if s.Blind != nil {
		b := *s.Blind
		c.Blind = &b
	}
	return &c
}

func (h *Handler) remember(key string, gen int64, s *detect.State) {
	h.lastMu.Lock()
	defer h.lastMu.Unlock()
	if h.last == nil {
		h.last = map[string]cachedState{}
	}
	h.last[key] = cachedState{gen: gen, st: shallow(s)}
}

// assemble returns a Handler reading Google Cloud through cl (nil reads nothing: some tests
// only deliver), keeping its state in store, and delivering to the channels of
// cfg.ChannelsPath (none if empty).
func assemble(ctx context.Context, cfg Config, cl monitorclients.Set, store state.Store, inv *inventory.Inventory, now func() time.Time, log zerolog.Logger) (*Handler, error) {
	cfg = cfg.withDefaults()
	channels := map[string]notify.Channel{}
	var platform []string
	if cfg.ChannelsPath != "" {
		nc, err := notify.LoadConfig(cfg.ChannelsPath)
		if err != nil {
			return nil, err
		}
		channels, err = notify.Build(ctx, nc, notify.Secrets{Lookup: cfg.Lookup, SecretManager: secretManager(cfg)},
			notify.Deps{PubSub: pubsubFor(ctx, cfg)})
		if err != nil {
			return nil, fmt.Errorf("channels %s: %w", cfg.ChannelsPath, err)
		}
		platform = nc.Platform
	}
	return newHandler(cfg, gcpCloud{cl}, store, inv, notify.NewDispatcher(channels), platform, now, log), nil
}

// newHandler is the Handler over its parts; the replay tests pass their simulated cloud.
func newHandler(cfg Config, c cloud, store state.Store, inv *inventory.Inventory, d *notify.Dispatcher, platformProjects []string, now func() time.Time, log zerolog.Logger) *Handler {
	return &Handler{
		cfg: cfg.withDefaults(), cloud: c, store: platform.ScopedStore("monitor", store), inv: inv, dispatcher: d, platform: platformProjects, now: now, log: log,
		schedules: detect.NewSchedules(maxSchedules),
		newLease: func() string {
			var b [8]byte
			_, _ = rand.Read(b[:])
			return hex.EncodeToString(b[:])
		},
	}
}

// maxSchedules bounds the parsed schedules a Handler keeps: far more than the distinct
// (schedule, zone) pairs of a fleet of 10,000 jobs.
const maxSchedules = 4096

func (h *Handler) detectConfig() detect.Config {
	return detect.Config{ReAlert: h.cfg.ReAlert, BlindAfter: h.cfg.BlindAfter, Schedules: h.schedules,
		FlapWindow: h.cfg.FlapWindow, FlapChanges: h.cfg.FlapChanges}
}

// Stats counts what one tick did.
type Stats struct {
	Projects, Jobs, Alerts, Delivered int
	// Pruned counts the expired records deleted (retention.go).
	Pruned int
	// Evaluate is the time spent in the pure evaluation (detect), without I/O.
	Evaluate time.Duration
}

// Handle runs one tick: every project of the inventory is evaluated up to now minus the ingest
// lag. The tick's content does not matter, so a redelivered or duplicated tick does nothing
// twice; an event that is not a Pub/Sub message is refused with a permanent error, any other
// error is transient.
func (h *Handler) Handle(ctx context.Context, e cloudevent.Event) error {
	if _, err := event.Decode(e); err != nil {
		h.log.Error().Err(err).Str("event_id", e.ID()).Msg("not a tick")
		return err
	}
	st, err := h.tick(ctx)
	l := h.log.Info()
	if err != nil {
		l = h.log.Error().Err(err)
	}
	l.Str("event_id", e.ID()).Int("projects", st.Projects).Int("jobs", st.Jobs).Int("alerts", st.Alerts).Int("delivered", st.Delivered).Int("pruned", st.Pruned).Msg("tick")
	return err
}

func (h *Handler) tick(ctx context.Context) (Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.TickTimeout)
	defer cancel()
	lease := h.newLease()
	var st Stats
	var errs []error
	for _, p := range projectsOf(h.inv) {
		ps, err := h.tickProject(ctx, p, lease)
		st.Projects++
		st.Jobs += ps.Jobs
		st.Alerts += ps.Alerts
		st.Delivered += ps.Delivered
		st.Evaluate += ps.Evaluate
		if err != nil {
			errs = append(errs, fmt.Errorf("project %s: %w", p.id, err))
		}
	}
	// Pruning is housekeeping: its failure is logged, not the tick's (the next tick goes on).
	ps, err := h.prune(ctx)
	st.Pruned = ps.Deleted
	if err != nil {
		h.log.Warn().Err(err).Msg("expired records not pruned this tick")
	}
	return st, errors.Join(errs...)
}

// load reads a project's state; a missing object is the empty state at generation 0.
func (h *Handler) load(ctx context.Context, key string) (*detect.State, int64, error) {
	obj, err := h.store.Get(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		return &detect.State{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	h.lastMu.Lock()
	c, ok := h.last[key]
	h.lastMu.Unlock()
	if ok && c.gen == obj.Generation {
		return shallow(c.st), obj.Generation, nil
	}
	var s detect.State
	if err := json.Unmarshal(obj.Data, &s); err != nil {
		return nil, 0, fmt.Errorf("state %s: %w", key, err)
	}
	h.remember(key, obj.Generation, &s)
	return &s, obj.Generation, nil
}

func (h *Handler) save(ctx context.Context, key string, s *detect.State, gen int64) (int64, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return 0, fmt.Errorf("state %s: %w", key, err)
	}
	ngen, err := h.store.Put(ctx, key, b, gen)
	if err == nil {
		h.remember(key, ngen, s)
	}
	return ngen, err
}

func (h *Handler) tickProject(ctx context.Context, p project, lease string) (Stats, error) {
	var stats Stats
	key := platform.MonitorStateKey(p.id)
	var cur *detect.State
	var curGen int64
	for attempt := 0; ; attempt++ {
		now := h.now()
		t := now.Add(-h.cfg.IngestLag).Truncate(time.Minute)
		st, gen, err := h.load(ctx, key)
		if err != nil {
			return stats, err
		}
		cur, curGen = st, gen
		if !st.Watermark.IsZero() && !t.After(st.Watermark) {
			break // evaluated already (a duplicate or a concurrent tick)
		}
		ns, alerts, jobs, took, err := h.evaluate(ctx, p, st, t)
		if err != nil {
			return stats, err
		}
		stats.Jobs, stats.Evaluate = jobs, stats.Evaluate+took
		for i := range ns.Outbox {
			if ns.Outbox[i].Lease == "" && slices.ContainsFunc(alerts, func(a notify.Alert) bool { return a.ID == ns.Outbox[i].Alert.ID }) {
				ns.Outbox[i].Lease, ns.Outbox[i].LeaseUntil = lease, now.Add(h.cfg.Lease)
			}
		}
		gen, err = h.save(ctx, key, ns, gen)
		if errors.Is(err, state.ErrPrecondition) && attempt < 5 {
			continue // another tick wrote first: re-read and see what is left
		}
		if err != nil {
			return stats, err
		}
		cur, curGen = ns, gen
		stats.Alerts = len(alerts)
		for _, a := range alerts {
			h.log.Info().Str("alert", a.ID).Str("kind", string(a.Kind)).Str("action", string(a.Action)).Str("job", a.Job).Msg("alert claimed")
		}
		break
	}
	if len(cur.Outbox) == 0 {
		return stats, nil
	}
	n, err := h.deliver(ctx, key, lease, cur, curGen)
	stats.Delivered = n
	return stats, err
}

// evaluate observes project p and evaluates st up to t. It returns the new state, the alerts
// decided, the number of jobs seen and the time the pure evaluation took.
func (h *Handler) evaluate(ctx context.Context, p project, st *detect.State, t time.Time) (*detect.State, []notify.Alert, int, time.Duration, error) {
	w := st.Watermark
	if w.IsZero() {
		w = t // the first tick starts watching from now
	}
	if min := t.Add(-h.cfg.MaxWindow); w.Before(min) {
		h.log.Warn().Str("project", p.id).Time("watermark", w).Time("from", min).Msg("monitor fell behind: skipping ahead")
		w = min
	}
	work := *st
	work.Watermark = w
	obs, err := h.observeJobs(ctx, p)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	cfg := h.detectConfig()
	cfg.Now = h.now()
	for _, l := range h.cfg.GCP.MetricsLinks(p.id) {
		cfg.BlindLinks = append(cfg.BlindLinks, notify.Link{Text: l.Text, Href: l.URL})
	}
	merr := h.observeMetrics(ctx, p.id, obs, w, t)
	blind, reason := false, ""
	switch {
	case merr != nil:
		blind, reason = true, "Cloud Monitoring answers with errors ("+merr.Error()+")"
		h.log.Error().Err(merr).Str("project", p.id).Msg("cannot read the job metrics")
	case detect.MetricsLookBlind(obs, w, t):
		blind, reason = true, "Cloud Monitoring returns no job metrics at all while executions completed"
		h.log.Error().Str("project", p.id).Msg("job metrics are empty while executions completed")
	}
	ns, alerts := detect.SetBlind(&work, p.id, blind, reason, t, h.platform, cfg)
	if blind {
		ns.Watermark = st.Watermark // held: the window is evaluated when the metrics are back
		return ns, alerts, len(obs), 0, nil
	}
	if err := h.observeExecutions(ctx, ns, obs, w, t); err != nil {
		return nil, nil, 0, 0, err
	}
	if err := h.observeSlots(ctx, ns, obs, t); err != nil {
		return nil, nil, 0, 0, err
	}
	if err := h.observeScheduler(ctx, ns, obs, t); err != nil {
		return nil, nil, 0, 0, err
	}
	t0 := time.Now()
	ns, more := detect.Evaluate(ns, obs, t, cfg)
	return ns, append(alerts, more...), len(obs), time.Since(t0), nil
}

// deliver hands the outbox alerts leased to this tick (or whose lease expired) to their
// channels, then removes those every channel took. It returns how many were delivered.
func (h *Handler) deliver(ctx context.Context, key, lease string, st *detect.State, gen int64) (int, error) {
	now := h.now()
	// Take over the alerts whose lease expired.
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			var err error
			if st, gen, err = h.load(ctx, key); err != nil {
				return 0, err
			}
		}
		var mine []detect.Pending
		changed := false
		for i := range st.Outbox {
			e := &st.Outbox[i]
			if e.Lease != lease && now.Before(e.LeaseUntil) {
				continue // another tick's, or waiting for its retry time
			}
			if e.Lease != lease {
				e.Lease, e.LeaseUntil, changed = lease, now.Add(h.cfg.Lease), true
			}
			mine = append(mine, *e)
		}
		if len(mine) == 0 {
			return 0, nil
		}
		if changed {
			var err error
			gen, err = h.save(ctx, key, st, gen)
			if errors.Is(err, state.ErrPrecondition) && attempt < 5 {
				continue
			}
			if err != nil {
				return 0, err
			}
		}
		return h.send(ctx, key, lease, mine, st, gen)
	}
}

// send delivers the alerts and records the outcome.
func (h *Handler) send(ctx context.Context, key, lease string, mine []detect.Pending, st *detect.State, gen int64) (int, error) {
	// A channel's failure is not the tick's: it is logged, kept in the outbox and retried by a
	// later tick, so the tick itself is not redelivered for it.
	failed := make(map[string][]string, len(mine))
	for _, e := range mine {
		f, err := h.dispatcher.Deliver(ctx, e.Alert, e.Channels)
		failed[e.Alert.ID] = f
		if err != nil {
			h.log.Error().Err(err).Str("alert", e.Alert.ID).Strs("failed", f).Msg("alert not delivered to every channel")
		}
	}
	delivered := 0
	for attempt := 0; ; attempt++ {
		now := h.now()
		if attempt > 0 {
			var err error
			if st, gen, err = h.load(ctx, key); err != nil {
				return 0, err
			}
		}
		delivered = 0
		st.Outbox = slices.DeleteFunc(st.Outbox, func(e detect.Pending) bool {
			f, ours := failed[e.Alert.ID]
			if !ours || e.Lease != lease {
				return false
			}
			if len(f) == 0 {
				delivered++
				return true
			}
			// Aged from its detection, not from the event: a run found failed hours after it
			// ended (the monitor was down) still gets MaxDeliveryAge of retries. Records
			// written before DetectedAt existed age from the event.
			if now.Sub(cmp.Or(e.Alert.DetectedAt, e.Alert.Time)) > h.cfg.MaxDeliveryAge {
				h.log.Error().Str("alert", e.Alert.ID).Strs("channels", f).Msg("alert dropped: no delivery for too long")
				return true
			}
			return false
		})
		for i := range st.Outbox {
			e := &st.Outbox[i]
			if f, ours := failed[e.Alert.ID]; ours && e.Lease == lease {
				e.Channels, e.Attempts = f, e.Attempts+1
				e.Lease, e.LeaseUntil = "", now.Add(retryBackoff(e.Attempts))
			}
		}
		if len(st.Outbox) == 0 {
			st.Outbox = nil
		}
		_, err := h.save(ctx, key, st, gen)
		if errors.Is(err, state.ErrPrecondition) && attempt < 10 {
			continue
		}
		if err != nil {
			return 0, err
		}
		return delivered, nil
	}
}

// retryBackoff is how long an undelivered alert waits before its next attempt: one minute,
// doubling, at most an hour.
func retryBackoff(attempts int) time.Duration {
	d := time.Minute << min(max(attempts-1, 0), 6)
	return min(d, time.Hour)
}
