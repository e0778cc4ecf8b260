// Package manifest reads and validates RunwayJob manifests (.runway/runway.yml and the
// per-workload overlays .runway/<workload>/runway.yml) into typed, defaulted Jobs.
//
// runwayctl calls it to validate files for service owners and CI; the deploy function calls it
// on every deploy request, so both see exactly the same rules and messages. Validation runs the
// embedded JSON Schema (the one `runwayctl schema` prints) and then the checks a schema can't
// express (cron, Cloud Run resource combinations, reserved names); every problem carries its
// FILE:LINE:COL.
package manifest

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/schedule"
)

// Kind is the manifest kind this package reads.
const Kind = "RunwayJob"

// APIVersion is the manifest format version this package reads.
const APIVersion = "runway/v1"

//go:embed schema.json
var schemaJSON []byte

// SchemaJSON returns the JSON Schema (draft 2020-12) that Parse validates against.
func SchemaJSON() []byte { return append([]byte(nil), schemaJSON...) }

var compiled = sync.OnceValues(func() (*document.Schema, error) {
	return document.CompileSchema("https://runwayjobs.dev/schemas/runway-job.json", schemaJSON)
})

// Job is a validated RunwayJob manifest with every default applied.
type Job struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	// Files the job was read from: the base file first, then the overlay, if any.
	Files []string `json:"-"`
	// Schedule is the parsed schedule, nil for an on-demand job.
	Schedule *schedule.Schedule `json:"-"`

	doc *document.Document
}

// Pos returns where the value at the JSON pointer (e.g. /spec/image) was written, so callers
// with checks of their own (against the inventory, say) report positions too.
func (j *Job) Pos(pointer string) document.Pos {
	if j.doc == nil {
		return document.Pos{}
	}
	return j.doc.Pos(pointer)
}

// Metadata names the workload and its owners.
type Metadata struct {
	Name             string `json:"name"`
	OwnerEmailHandle string `json:"owner_email_handle"`
	Department       string `json:"department"`
	DepartmentGroup  string `json:"department_group"`
	ProductCategory  string `json:"product_category"`
}

// Spec is what the job runs, when, and how it is watched.
type Spec struct {
	Image             string            `json:"image,omitempty"`
	Command           []string          `json:"command,omitempty"`
	Args              []string          `json:"args,omitempty"`
	Env               map[string]string `json:"env,omitempty"`
	Secrets           []Secret          `json:"secrets,omitempty"`
	Schedule          string            `json:"schedule,omitempty"`
	TimeZone          string            `json:"time_zone"`
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrency_policy"`
	StartingDeadline  Duration          `json:"starting_deadline,omitempty"`
	Suspend           bool              `json:"suspend"`
	TaskCount         int               `json:"task_count"`
	Parallelism       int               `json:"parallelism"`
	MaxRetries        *int              `json:"max_retries"`
	Timeout           Duration          `json:"timeout"`
	Resources         Resources         `json:"resources"`
	Region            string            `json:"region,omitempty"`
	Monitoring        Monitoring        `json:"monitoring"`
	Notifications     Notifications     `json:"notifications"`
}

// Secret is an environment variable read from Secret Manager.
type Secret struct {
	Name    string `json:"name"`
	Secret  string `json:"secret"`
	Version string `json:"version"`
}

// ConcurrencyPolicy says what a scheduled run does while an earlier one is still running.
type ConcurrencyPolicy string

// The concurrency policies, as in Kubernetes CronJob.
const (
	Allow   ConcurrencyPolicy = "Allow"
	Forbid  ConcurrencyPolicy = "Forbid"
	Replace ConcurrencyPolicy = "Replace"
)

// Resources holds the per-task limits.
type Resources struct {
	Limits Limits `json:"limits"`
}

// Limits are the CPU and memory limits of each task.
type Limits struct {
	CPU    Quantity `json:"cpu"`
	Memory string   `json:"memory"`
}

// Monitoring holds the thresholds the monitor applies to this job.
type Monitoring struct {
	Enabled           *bool    `json:"enabled"`
	Grace             Duration `json:"grace"`
	ExpectedRuntime   Duration `json:"expected_runtime,omitempty"`
	FailureThreshold  int      `json:"failure_threshold"`
	RecoveryThreshold int      `json:"recovery_threshold"`
	AlertOnFlaky      *bool    `json:"alert_on_flaky"`
}

// Notifications routes alerts to named channels.
type Notifications struct {
	Channels []string `json:"channels,omitempty"`
}

// Defaults, mirrored by the "default" keywords of schema.json (a test keeps them equal).
const (
	DefaultTimeZone          = "Etc/UTC"
	DefaultConcurrencyPolicy = Forbid
	DefaultTaskCount         = 1
	DefaultMaxRetries        = 3
	DefaultTimeout           = 10 * time.Minute
	DefaultCPU               = "1"
	DefaultMemory            = "512Mi"
	DefaultGrace             = 10 * time.Minute
	DefaultSecretVersion     = "latest"
)

// Limits Cloud Run and this platform put on jobs.
const (
	MaxTimeout          = 168 * time.Hour
	MinTimeout          = time.Second
	MinStartingDeadline = time.Minute // Cloud Scheduler fires with ~1 minute granularity
)

// Duration is a time.Duration written as a Go duration string ("90s", "2h").
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Quantity is a CPU amount written as a string ("2", "2000m") or an integer (2).
type Quantity string

// UnmarshalJSON accepts a string or a number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*q = Quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("quantity: %w", err)
	}
	*q = Quantity(n.String())
	return nil
}

// Hash is a stable digest of the effective manifest (after overlays and defaults); the deploy
// function records it on the Cloud Run job to tell what is deployed.
func (j *Job) Hash() string {
	b, _ := json.Marshal(j) // maps marshal in key order, so equal jobs hash equally
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Retries returns max_retries with its default applied.
func (s *Spec) Retries() int {
	if s.MaxRetries == nil {
		return DefaultMaxRetries
	}
	return *s.MaxRetries
}

// ExpectedRuntime returns monitoring.expected_runtime, defaulting to timeout × (max_retries+1).
func (s *Spec) ExpectedRuntime() time.Duration {
	if s.Monitoring.ExpectedRuntime > 0 {
		return s.Monitoring.ExpectedRuntime.D()
	}
	return s.Timeout.D() * time.Duration(s.Retries()+1)
}

// CPUs returns the CPU limit as a whole number of CPUs (0 if it is not one).
func (l Limits) CPUs() int {
	s := string(l.CPU)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.Atoi(m)
		if err != nil || n%1000 != 0 {
			return 0
		}
		return n / 1000
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

// MemoryMiB returns the memory limit in MiB (0 if unreadable).
func (l Limits) MemoryMiB() int64 {
	unit := int64(1)
	s := l.Memory
	switch {
	case strings.HasSuffix(s, "Gi"):
		unit, s = 1024, strings.TrimSuffix(s, "Gi")
	case strings.HasSuffix(s, "Mi"):
		s = strings.TrimSuffix(s, "Mi")
	default:
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > 1<<40 {
		return 0
	}
	return n * unit
}

// applyDefaults fills in what the manifest left out; has tells whether a field was written, so
// that an explicit zero ("0s") is kept and checked rather than replaced.
func (j *Job) applyDefaults(has func(pointer string) bool) {
	s := &j.Spec
	if s.TimeZone == "" {
		s.TimeZone = DefaultTimeZone
	}
	if s.ConcurrencyPolicy == "" {
		s.ConcurrencyPolicy = DefaultConcurrencyPolicy
	}
	if s.TaskCount == 0 {
		s.TaskCount = DefaultTaskCount
	}
	if s.MaxRetries == nil {
		n := DefaultMaxRetries
		s.MaxRetries = &n
	}
	if !has("/spec/timeout") {
		s.Timeout = Duration(DefaultTimeout)
	}
	if s.Resources.Limits.CPU == "" {
		s.Resources.Limits.CPU = DefaultCPU
	}
	if s.Resources.Limits.Memory == "" {
		s.Resources.Limits.Memory = DefaultMemory
	}
	for i := range s.Secrets {
		if s.Secrets[i].Version == "" {
			s.Secrets[i].Version = DefaultSecretVersion
		}
	}
	m := &s.Monitoring
	if m.Enabled == nil {
		t := true
		m.Enabled = &t
	}
	if !has("/spec/monitoring/grace") {
		m.Grace = Duration(DefaultGrace)
	}
	if m.FailureThreshold == 0 {
		m.FailureThreshold = 1
	}
	if m.RecoveryThreshold == 0 {
		m.RecoveryThreshold = 1
	}
	if m.AlertOnFlaky == nil {
		t := true
		m.AlertOnFlaky = &t
	}
}
