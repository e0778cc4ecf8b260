// Package detect is the monitor's pure evaluation: given what the monitor remembers about each
// job (State), what it observed this tick (jobs, metric activity, executions, the trigger's slot
// records) and the time evaluated up to, it returns the new state and the alerts to send.
//
// The monitor function (package monitor) calls it once per tick and project, between reading
// Cloud Run and Cloud Monitoring and writing the state back; runwayctl's console reads the
// State the monitor stores, and the expected runtimes, through it (it lives in shared so that
// both use one definition); replay tests call it through the
// function over a month of simulated history. It never reads the clock or does I/O, and the
// outcome does not depend on how the time is cut into ticks: every finding is dated by the event
// that caused it (a completion, a slot's deadline, a run's expected end), not by the tick. Only
// what the tick itself adds depends on it: Alert.DetectedAt (Config.Now), the Scheduler job's
// state quoted in a missed slot's detail, and the closing time of a job found gone.
package detect

import (
	"fmt"
	"slices"
	"time"

	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
)

// Key identifies a Cloud Run job.
type Key struct {
	Project  string `json:"project"`
	Location string `json:"location"`
	Job      string `json:"job"` // the job id (the workload name for Runway jobs)
}

// Name is the job's full resource name.
func (k Key) Name() string { return platform.JobName(k.Project, k.Location, k.Job) }

// String is project/location/job, the key of the job in State.Jobs.
func (k Key) String() string { return k.Project + "/" + k.Location + "/" + k.Job }

// State is what the monitor remembers about one project between ticks. It is stored as one
// object, so that a tick's findings, its alerts (Outbox) and the watermark change together.
type State struct {
	// Watermark is the time evaluated up to: the next tick reads from here.
	Watermark time.Time `json:"watermark,omitzero"`
	// Jobs by Key.String().
	Jobs map[string]*JobState `json:"jobs,omitempty"`
	// Blind is set while the monitor cannot see the metrics.
	Blind *Blind `json:"blind,omitempty"`
	// Outbox holds alerts decided but not yet handed to every channel.
	Outbox []Pending `json:"outbox,omitempty"`
}

// JobState is what the monitor remembers about one job.
type JobState struct {
	Workload string `json:"workload,omitempty"`
	// EvaluatedTo: the job's completions and deadlines up to here were applied.
	EvaluatedTo time.Time `json:"evaluated_to"`
	// SlotsFrom: slots after it are still to be checked; slots up to it were.
	SlotsFrom time.Time `json:"slots_from"`
	// Schedule is the schedule, zone and suspension the slots were checked against.
	Schedule string `json:"schedule,omitempty"`
	// NextSlot caches the first slot after SlotsFrom (zero: not computed).
	NextSlot time.Time `json:"next_slot,omitzero"`
	// Served are the slots after SlotsFrom known to be served by an execution (Unix seconds).
	Served []int64 `json:"served,omitempty"`

	Failures int `json:"failures,omitempty"` // consecutive failures (missed and skipped slots count)
	// Changes are the latest times an incident of the job opened or resolved (at most
	// Config.FlapChanges of them), for flap damping.
	Changes     []time.Time `json:"changes,omitempty"`
	Successes   int         `json:"successes,omitempty"` // consecutive successes
	StreakSince time.Time   `json:"streak_since,omitzero"`
	Incident    *Incident   `json:"incident,omitempty"`
	LastFlaky   time.Time   `json:"last_flaky,omitzero"`
	// LastSuccess is the completion of the last successful execution; Resolved the span of the
	// last incident resolved (a slot found missed after a later run succeeded is only a
	// warning, or nothing if it falls in that span).
	LastSuccess time.Time `json:"last_success,omitzero"`
	Resolved    *Span     `json:"resolved,omitempty"`

	// Executions as of the last read: the ones still running and those of them already
	// reported late or hung.
	Running     map[string]Run `json:"running,omitempty"`
	LateAlerted []string       `json:"late_alerted,omitempty"`
	// ReadAt is the evaluated time of the last read of the job's executions; LatestName and
	// LatestDone the job's latest_created_execution then.
	ReadAt     time.Time `json:"read_at,omitzero"`
	LatestName string    `json:"latest_name,omitempty"`
	LatestDone bool      `json:"latest_done,omitempty"`
}

// Span is a time range.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Run is an execution that was running at the last read.
type Run struct {
	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	LogURI  string    `json:"log_uri,omitempty"`
}

// Incident is an open problem of a job: it was alerted once and is resolved by recovery.
type Incident struct {
	Key       string      `json:"key"` // notify.Alert.IncidentKey
	Kind      notify.Kind `json:"kind"`
	Since     time.Time   `json:"since"`
	LastAlert time.Time   `json:"last_alert"`
	Execution string      `json:"execution,omitempty"`
	Slot      time.Time   `json:"slot,omitzero"`
	LogURL    string      `json:"log_url,omitempty"`
	// Links and Channels of the alert that opened it: the re-alerts carry the links, and the
	// incident of a job that disappears is closed on those channels.
	Links    []notify.Link `json:"links,omitempty"`
	Channels []string      `json:"channels,omitempty"`
	// Flapping is set once the job flapped while the incident was open: it is held open
	// until the job runs without failure for Config.FlapWindow.
	Flapping bool `json:"flapping,omitempty"`
}

// Blind records that the metrics could not be read (or read empty while jobs ran).
type Blind struct {
	Since   time.Time `json:"since"`
	Reason  string    `json:"reason"`
	Alerted bool      `json:"alerted,omitempty"`
	Key     string    `json:"key,omitempty"`
}

// Pending is an alert in the outbox and the channels that have not taken it yet.
type Pending struct {
	Alert    notify.Alert `json:"alert"`
	Channels []string     `json:"channels"`
	// Lease: the tick that owns the delivery until LeaseUntil; another tick may deliver it after.
	Lease      string    `json:"lease,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	Attempts   int       `json:"attempts,omitempty"`
}

// Job is a Cloud Run job as ListJobs shows it.
type Job struct {
	Key        Key
	Settings   platform.Settings
	UpdateTime time.Time
	// Latest is the job's latest_created_execution (nil if it never ran).
	Latest *ExecutionRef
	// SlotOwner is whether this job is the one the trigger runs the workload's slots on (the
	// first region of the workload that has a job): only it is checked for missed slots.
	SlotOwner bool
	// Channels are the alert channels of the job: its settings', else the inventory's.
	Channels []string
	// Links are where to look at the job's slots: its Cloud Scheduler job and the logs of its
	// attempts (the monitor fills them for the jobs with unserved slots).
	Links []notify.Link
}

// SchedulerJob is the job's Cloud Scheduler job as the monitor read it this tick, to say why
// a slot got no execution.
type SchedulerJob struct {
	Name string
	// Missing: the Scheduler job does not exist (GetJob answered NOT_FOUND).
	Missing bool
	State   string // ENABLED, PAUSED, DISABLED, UPDATE_FAILED
	// LastAttempt is the time of its last attempt; Code and Message that attempt's
	// google.rpc.Status (Code "OK" or empty: it succeeded).
	LastAttempt time.Time
	Code        string
	Message     string
}

// ExecutionRef is a Job's latest_created_execution.
type ExecutionRef struct {
	Name      string
	Created   time.Time
	Completed time.Time
}

// Result of an execution.
type Result string

// Results.
const (
	Running   Result = ""
	Succeeded Result = "succeeded"
	Failed    Result = "failed"
	Cancelled Result = "cancelled"
)

// Execution is an execution as the monitor reads it.
type Execution struct {
	Name      string // full resource name
	Created   time.Time
	Started   time.Time // zero until started
	Completed time.Time // zero while running
	Result    Result
	// Retried is how many task attempts failed and were retried (retried_count).
	Retried   int
	Trigger   string    // RUNWAY_TRIGGER
	Scheduled time.Time // RUNWAY_SCHEDULED_TIME, scheduled runs only
	LogURI    string
}

// start is when the execution started running, or was created if it has not yet.
func (x Execution) start() time.Time {
	if !x.Started.IsZero() {
		return x.Started
	}
	return x.Created
}

// Activity is a job's metrics over the window.
type Activity struct {
	Succeeded, Failed, Cancelled int64 // completed_execution_count by result
	FailedAttempts               int64 // completed_task_attempt_count, result failed
	Running                      int64 // running_executions, the most in the window
}

// Any reports whether the metrics show the job did anything.
func (a Activity) Any() bool {
	return a.Succeeded+a.Failed+a.Cancelled+a.FailedAttempts+a.Running > 0
}

// SlotRecord is the trigger's record of a slot (platform.SlotRecordKey).
type SlotRecord struct {
	Found   bool
	Outcome string // platform.Run*
	Reason  string
}

// Observation is what the monitor saw of one job this tick.
type Observation struct {
	Job      Job
	Activity Activity
	// Executions were read this tick when Read is set (those created after the horizon
	// NeedsExecutions returned, and every one still running).
	Read       bool
	Executions []Execution
	// Slots are the trigger's records of the slots Unserved returned (by Unix seconds).
	Slots map[int64]SlotRecord
	// Scheduler is the job's Cloud Scheduler job, read when Unserved returned slots (nil: not
	// read, or the read failed).
	Scheduler *SchedulerJob
}

// Config holds the monitor-wide settings the evaluation uses.
type Config struct {
	// ReAlert repeats an open incident's alert this often (0: never).
	ReAlert time.Duration
	// FlakyEvery is the least time between two flaky warnings of a job (default 24h).
	FlakyEvery time.Duration
	// BlindAfter is how long the metrics may stay unreadable before the monitor says so
	// (default 15m).
	BlindAfter time.Duration
	// FirstRead is how far back the first read of a job's executions goes (default 7 days).
	FirstRead time.Duration
	// Schedules caches the parsed schedules (nil: parse each time).
	Schedules *Schedules
	// BlindLinks are the links of the monitor's own alerts (it cannot see the metrics).
	BlindLinks []notify.Link
	// Now is the wall-clock time of the tick, stamped on the alerts as DetectedAt (zero: the
	// time evaluated up to).
	Now time.Time
	// Flap damping: a success does not resolve an incident when that resolve would make
	// FlapChanges (default 4, at least 2) incident opens and resolves within FlapWindow
	// (default 6h; negative: no damping). The job is flapping: one flapping warning is sent
	// and the incident stays open, with no more pages, until a success finds fewer.
	FlapWindow  time.Duration
	FlapChanges int
}

func (c Config) flakyEvery() time.Duration { return cmpOr(c.FlakyEvery, 24*time.Hour) }
func (c Config) blindAfter() time.Duration { return cmpOr(c.BlindAfter, 15*time.Minute) }
func (c Config) firstRead() time.Duration  { return cmpOr(c.FirstRead, 7*24*time.Hour) }

// DefaultFlapWindow and DefaultFlapChanges are the flap damping defaults.
const (
	DefaultFlapWindow  = 6 * time.Hour
	DefaultFlapChanges = 4
)

// flapChanges is how many changes within flapWindow make a job flapping (0: damping is off).
func (c Config) flapChanges() int {
	if c.FlapWindow < 0 {
		return 0
	}
	if c.FlapChanges <= 0 {
		return DefaultFlapChanges
	}
	return max(c.FlapChanges, 2)
}

func (c Config) flapWindow() time.Duration { return cmpOr(c.FlapWindow, DefaultFlapWindow) }

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ExpectedRuntime is how long a run of the job may take: monitoring.expected_runtime, else
// timeout × (max_retries + 1) (the most Cloud Run lets one task take), timeout defaulting to
// Cloud Run's 10 minutes.
func ExpectedRuntime(s platform.Settings) time.Duration {
	if s.Monitoring.ExpectedRuntime > 0 {
		return s.Monitoring.ExpectedRuntime
	}
	return maxRuntime(s)
}

func maxRuntime(s platform.Settings) time.Duration {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	return timeout * time.Duration(max(s.MaxRetries, 0)+1)
}

// scheduleSig names what decides the slots: a change re-bases slot checking.
func scheduleSig(s platform.Settings) string {
	if s.Schedule == "" {
		return ""
	}
	return fmt.Sprintf("%s|%s|suspend=%v", s.Schedule, s.TimeZone, s.Suspend)
}

func (js *JobState) served(slot time.Time) bool {
	_, ok := slices.BinarySearch(js.Served, slot.Unix())
	return ok
}

func (js *JobState) addServed(slot time.Time) {
	u := slot.Unix()
	if i, ok := slices.BinarySearch(js.Served, u); !ok {
		js.Served = slices.Insert(js.Served, i, u)
	}
}
