// Package console is runwayctl console's read-only web console: server-rendered pages
// (html/template, no JavaScript) over a Source, which runwayctl implements with the same
// official clients and state store as runwayctl status. The package decides what a page shows
// (the history strip's slot outcomes, times in the job's zone and UTC) and renders it; it does
// no I/O of its own.
package console

import (
	"context"
	"errors"
	"time"

	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
)

// ErrNotFound is what a Source returns for a workload or execution that does not exist; the
// server answers 404.
var ErrNotFound = errors.New("not found")

// Source is where the console reads the platform: the inventory, Cloud Run, Cloud Scheduler
// and the durable store. Every method is a read.
type Source interface {
	// Now is the platform's clock (the emulator's on the local platform).
	Now() time.Time
	// Workloads returns every job workload of the inventory, in its order.
	Workloads(ctx context.Context) ([]Summary, error)
	// Workload returns one workload with its executions created at or after from.
	Workload(ctx context.Context, name string, from time.Time) (*Workload, error)
	// Execution returns one execution of a workload with its tasks and their logs.
	Execution(ctx context.Context, workload, id string) (*ExecutionDetail, error)
}

// Summary is one line of the overview.
type Summary struct {
	Name      string
	Deployed  bool
	Schedule  string // cron expression, "" for on demand
	TimeZone  string
	Describe  string // the schedule in words
	Suspended bool
	Next      []time.Time
	// Last is the newest execution (nil: none yet).
	Last *Execution
	// Incident is the monitor's open incident of the workload (nil: none).
	Incident *Incident
}

// Execution is one execution, as runwayctl status lists it.
type Execution struct {
	ID        string // the execution id (the last part of its name)
	Trigger   string // platform.TriggerSchedule | platform.TriggerManual
	Slot      *time.Time
	Result    string // running | succeeded | failed | cancelled
	Started   time.Time
	Duration  string
	LogURI    string
	TaskCount int32
	Retried   int32
}

// Incident is an incident the monitor opened.
type Incident struct {
	Kind      string
	Since     time.Time
	LastAlert time.Time
	Execution string // execution id, "" if none
	Slot      time.Time
	LogURL    string
}

// Span is a resolved incident's time range.
type Span struct{ From, To time.Time }

// SentAlert is an alert handed to a channel.
type SentAlert struct {
	Channel string
	Alert   notify.Alert
}

// Manifest is what the deploy function recorded on the Cloud Run job: the manifest as
// deployed.
type Manifest struct {
	Image        string // as the job runs it (by digest after a deploy)
	ImageTag     string // the reference the manifest names
	Commit       string
	PipelineID   string
	PipelineURL  string
	Ref          string
	ManifestHash string
	Settings     platform.Settings
}

// Workload is everything the workload page shows.
type Workload struct {
	Summary
	Job     string // full Cloud Run job name of the home copy
	Project string
	Region  string
	// Manifest as deployed (zero when not deployed).
	Manifest Manifest
	// Executions created in the window, newest first.
	Executions []Execution
	// Records are the trigger's records of slots and requests that got no execution
	// (skipped, missed, refused).
	Records []platform.RunRecord
	// Deadline is how long after its slot a slot with no execution and no record counts as
	// missed: the monitor's expected runtime plus grace.
	Deadline time.Duration
	// Resolved is the last incident the monitor resolved (nil: none remembered).
	Resolved *Span
	// Alerts are the alerts sent about the workload, oldest first (when the alert log is
	// readable); Pending those decided but not yet delivered.
	Alerts  []SentAlert
	Pending []notify.Alert
	// AlertLog says where Alerts were read from ("" when no alert log is configured).
	AlertLog string
}

// ExecutionDetail is an execution with its tasks.
type ExecutionDetail struct {
	Workload string
	TimeZone string
	Name     string // full resource name
	Execution
	Tasks []Task
}

// Task is one task of an execution and what it wrote.
type Task struct {
	Index     int32
	Result    string // succeeded | failed | running | pending | cancelled
	ExitCode  int32
	Retried   int32
	Started   time.Time
	Completed time.Time
	LogURI    string
	// Log is the task's output when the platform serves it (the local platform); on Google
	// Cloud it is empty and LogURI links to Cloud Logging.
	Log       string
	Truncated bool
}
