// Package scheduler is the Cloud Scheduler v1 part of the Runway Jobs emulator: an in-process
// google.cloud.scheduler.v1.CloudScheduler gRPC service that keeps jobs in memory and fires
// them on their unix-cron (or App Engine-style) schedule, on the real clock or on a manual one.
//
// The emulator package (`runwayctl emulator` and the end-to-end tests) registers it on its one
// gRPC server; the deploy code and runwayctl reach it with the official client
// (cloud.google.com/go/scheduler/apiv1) through runwayjobs.dev/shared/gcp, exactly as they
// reach Google Cloud. Jobs deliver to Pub/Sub through a Publisher (the emulator's Pub/Sub) and
// to HTTP targets through an *http.Client.
//
// What matches Cloud Scheduler:
//   - RPCs CreateJob, GetJob, ListJobs (page_size ≤ 500, opaque page tokens), UpdateJob (update
//     masks, nested paths such as "retry_config.retry_count"), DeleteJob, PauseJob (a job must
//     be ENABLED), ResumeJob (a job must be PAUSED), RunJob (dispatches now, whatever the state,
//     even while an attempt is running), with the gRPC codes the service returns: InvalidArgument
//     for malformed names, schedules, time zones, targets and retry settings, NotFound,
//     AlreadyExists, FailedPrecondition, ResourceExhausted past 5,000 jobs per location.
//   - Output fields: state, schedule_time (the next slot in UTC, computed in the job's
//     time_zone, default UTC; "utc" is accepted as the proto says), last_attempt_time, status
//     (the google.rpc.Status of the last attempt; OK is an empty status), user_update_time.
//     Defaults are filled in as the service shows them: http_method POST, attempt_deadline 180s
//     for HTTP targets, retry_config {min_backoff 5s, max_backoff 1h, max_doublings 5,
//     max_retry_duration 0s}.
//   - Firing: an ENABLED job fires each slot of its schedule. With the real clock one goroutine
//     sleeps on a timer set to the earliest next slot of all jobs and is re-armed on every change;
//     slots fire within milliseconds. With a manual clock (clock.Clock.Manual) the service listens
//     to OnAdvance and, synchronously, fires every slot in (previous time, new time] in time order
//     with that slot's schedule time, so a month of an hourly schedule replays in one Advance and
//     each slot fires exactly once; the first attempt of each slot has finished when Advance
//     returns. An execution never overlaps the next scheduled one: a slot that comes due while
//     an attempt of the job is in flight is delayed until it ends (on the real clock only the
//     latest such slot is kept).
//   - HTTP targets get the job's headers plus User-Agent: Google-Cloud-Scheduler,
//     X-CloudScheduler: true, X-CloudScheduler-JobName: the job id, X-CloudScheduler-ScheduleTime:
//     the slot in RFC 3339 (UTC), and Content-Type: application/octet-stream for a body without
//     one. A 2xx response (after redirects) is success; other codes map to the google.rpc codes
//     of the HTTP mapping (500 INTERNAL, 404 NOT_FOUND, ...), a missed attempt_deadline to
//     DEADLINE_EXCEEDED, a failed connection to UNAVAILABLE.
//   - Pub/Sub targets publish topic_name, data and attributes through Options.Publisher; its
//     error is the attempt's status.
//   - retry_config: a failed attempt is retried up to retry_count times, waiting
//     min_backoff_duration, doubled max_doublings times, then growing linearly by that doubled
//     step, capped at max_backoff_duration; retries stop at the next scheduled execution, or
//     when the next retry would start more than max_retry_duration (if > 0) after the first
//     attempt.
//
// The emulator's own: RegisterHTTP serves each job's page (GET /emulator/v1/scheduler/{job
// name}: the job and its latest 20 attempts with their status), which the monitor's alerts link
// to where on Google Cloud they link to the Cloud Console and Cloud Logging.
//
// Fidelity limits:
//   - Retry backoffs, attempt deadlines and Pub/Sub publish timeouts (1 minute) run on real
//     time, even with a manual clock; with a manual clock only the first attempt of a slot is
//     synchronous. A retry is attempted with the schedule time of its slot.
//   - schedule_time always shows the next cron slot, never a pending retry; PAUSED jobs show none.
//   - On the real clock, slots missed while the process was stopped (a laptop asleep) are not
//     replayed: only the latest missed slot fires. The manual clock fires every slot.
//   - oauth_token and oidc_token are accepted and stored, but no token is attached: the request
//     carries no Authorization header (an Authorization given in headers is dropped, since the
//     service would override it with the token).
//   - app_engine_http_target is refused with InvalidArgument. Job names are required (the service
//     would generate one). Schedules are parsed by runwayjobs.dev/shared/schedule, which also
//     accepts descriptors such as @daily. Of the legacy App Engine cron syntax, the forms with an
//     exact cron equivalent are read ("every N minutes|hours [synchronized]" with N dividing the
//     hour or the day, aligned to it even without "synchronized"; "every day HH:MM"; "every
//     monday[,fri] HH:MM"); the others (ordinals, months, "from … to …") are refused with
//     Cloud Scheduler's "Schedule or time zone is invalid." and the reason.
//   - max_doublings 0 reads as unset (proto3 cannot tell) and becomes the default 5.
//   - States DISABLED and UPDATE_FAILED never occur: a refused UpdateJob leaves the job as it was.
//   - The Locations mixin (GetLocation, ListLocations) and IAM are not served; nothing is
//     authorised or persisted, and delivery is at most once per attempt (Cloud Scheduler's
//     at-least-once duplicates are not simulated).
package scheduler

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/schedule"
)

// Publisher publishes a Pub/Sub message for a job with a pubsub_target and returns its message ID.
type Publisher interface {
	Publish(ctx context.Context, topic string, data []byte, attrs map[string]string) (string, error)
}

// Options configures a Service.
type Options struct {
	// Clock tells the time slots are due against; nil means clock.Real{}.
	Clock clock.Clock
	// Publisher delivers Pub/Sub targets; nil makes their attempts fail with FAILED_PRECONDITION.
	Publisher Publisher
	// HTTPClient delivers HTTP targets; nil means a default client. attempt_deadline bounds
	// each request through its context.
	HTTPClient *http.Client
}

// Service is the emulated Cloud Scheduler: jobs in memory behind one mutex, and the firing of
// their slots.
type Service struct {
	schedulerpb.UnimplementedCloudSchedulerServer

	clock  clock.Clock
	pub    Publisher
	client *http.Client

	ctx    context.Context // cancelled by Close: in-flight attempts and retry waits end
	cancel context.CancelFunc
	wake   chan struct{} // tells the real-clock loop that the earliest slot may have changed
	wg     sync.WaitGroup

	mu      sync.Mutex
	jobs    map[string]*job // by full name
	unwatch func() bool     // stops watching Start's context
	started bool
	stopped bool // Start's context is done: no more slots fire
	closed  bool
}

// job is a stored job and its firing state. All fields are guarded by Service.mu.
type job struct {
	pb    *schedulerpb.Job // what GetJob returns, output fields included
	sched *schedule.Schedule
	next  time.Time // next slot to fire; zero unless ENABLED
	// exec identifies the latest execution. Starting an execution, pausing, updating or
	// deleting the job bumps it, which stops the retries of older executions.
	exec uint64
	// busy is non-nil while an attempt holds the job and is closed when it ends: the next
	// scheduled execution waits for it, so that two are never outstanding at once.
	busy chan struct{}
	held time.Time // real clock: the latest slot that came due while busy
	// attempts are the latest attempts' outcomes, for the job's page (RegisterHTTP).
	attempts []attemptRecord
}

// New returns a Service; call Register to serve it and Start to fire slots.
func New(opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		clock:  opts.Clock,
		pub:    opts.Publisher,
		client: opts.HTTPClient,
		ctx:    ctx,
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		jobs:   map[string]*job{},
	}
}

// Register serves the CloudScheduler service on g.
func (s *Service) Register(g *grpc.Server) { schedulerpb.RegisterCloudSchedulerServer(g, s) }

// Start fires slots until ctx is done or Close is called: with the real clock through a
// goroutine sleeping until the earliest slot, with a manual clock from its OnAdvance listener.
// Only the first call has an effect.
func (s *Service) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	s.unwatch = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.notify()
	})
	if s.clock.Manual() {
		s.clock.OnWake(s.earliest)
		s.clock.OnAdvance(s.advance)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop(ctx)
	}()
}

// Close stops firing, cancels attempts in flight and pending retries, and waits for them.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	unwatch := s.unwatch
	s.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
	s.cancel()
	s.notify()
	s.wg.Wait()
	return nil
}

// notify wakes the real-clock loop to re-arm its timer.
func (s *Service) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// goLocked runs fn on a goroutine that Close waits for, unless the service is closed. s.mu must be held.
func (s *Service) goLocked(fn func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// due is a slot of a job that has come due.
type due struct {
	j    *job
	slot time.Time
}

// loop is the real-clock firing loop: it sleeps until the earliest next slot of all jobs (or a
// change), fires what is due, and sleeps again. It never polls.
func (s *Service) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.closed || s.stopped {
			s.mu.Unlock()
			return
		}
		now := s.clock.Now()
		var fire []due
		var earliest time.Time
		for _, j := range s.jobs {
			if j.next.IsZero() {
				continue
			}
			if !j.next.After(now) {
				// Only the latest due slot fires: after a stall (a machine asleep) the missed
				// slots are skipped rather than replayed in a burst.
				d, err := j.sched.MostRecent(j.next.Add(-time.Second), now)
				slot := d.Slot
				if err != nil || slot.IsZero() {
					slot = j.next
				}
				fire = append(fire, due{j, slot})
				j.setNext(j.sched.Next(now))
			}
			if !j.next.IsZero() && (earliest.IsZero() || j.next.Before(earliest)) {
				earliest = j.next
			}
		}
		sortDue(fire)
		for _, d := range fire {
			s.goLocked(func() { s.fire(d.j, d.slot, false) })
		}
		s.mu.Unlock()

		var alarm <-chan time.Time
		if !earliest.IsZero() {
			timer.Reset(earliest.Sub(s.clock.Now()))
			alarm = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-alarm:
		}
	}
}

// advance is the manual clock's listener: it fires every slot in (last processed, now] of every
// ENABLED job, in time order (ties by job name), each with its own schedule time, and returns
// when the first attempt of each has ended.
func (s *Service) advance(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.stopped {
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	for !s.closed && !s.stopped {
		var next *job
		for _, j := range s.jobs {
			if j.next.IsZero() || j.next.After(now) {
				continue
			}
			if next == nil || j.next.Before(next.next) || (j.next.Equal(next.next) && j.pb.GetName() < next.pb.GetName()) {
				next = j
			}
		}
		if next == nil {
			return
		}
		slot := next.next
		next.setNext(next.sched.Next(slot))
		s.mu.Unlock()
		s.fire(next, slot, true)
		s.mu.Lock()
	}
}

// earliest is the manual clock's waker: the earliest next slot of all jobs, so that a jump
// across several slots fires each with the clock at its slot.
func (s *Service) earliest() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for _, j := range s.jobs {
		if !j.next.IsZero() && (t.IsZero() || j.next.Before(t)) {
			t = j.next
		}
	}
	return t, !t.IsZero()
}

// setNext records the next slot and shows it as schedule_time.
func (j *job) setNext(t time.Time) {
	j.next = t
	if t.IsZero() {
		j.pb.ScheduleTime = nil
		return
	}
	j.pb.ScheduleTime = timestamppb.New(t)
}

// arm sets the next slot after now for an ENABLED job and clears it otherwise.
func (j *job) arm(now time.Time) {
	if j.pb.GetState() != schedulerpb.Job_ENABLED {
		j.setNext(time.Time{})
		return
	}
	j.setNext(j.sched.Next(now))
}

// sortDue orders slots by time, then by job name.
func sortDue(ds []due) {
	slices.SortFunc(ds, func(a, b due) int {
		if c := a.slot.Compare(b.slot); c != 0 {
			return c
		}
		return cmp.Compare(a.j.pb.GetName(), b.j.pb.GetName())
	})
}
