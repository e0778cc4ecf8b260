// Package platform is the contract between runwayctl and the three Runway Jobs functions: the
// names of the per-workload Pub/Sub topics, the request bodies published on them, the labels
// and annotations the deploy function writes on Cloud Run jobs (which trigger and monitor read
// back), the environment every execution gets, and the records the functions leave in the
// durable store for `runwayctl deploy --wait` and `runwayctl run --wait`.
//
// Everything that crosses a process boundary is defined here once, so the writer and the
// reader cannot drift.
package platform

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"runwayjobs.dev/shared/state"
)

// Topic names. Per-workload topics live in the workload's GCP project.
const (
	// ArtifactTopic is the Artifact Registry notification topic of a project.
	ArtifactTopic = "gcr"
	// MonitorTickTopic carries the monitor's periodic tick.
	MonitorTickTopic = "runway-monitor-tick"
	// AlertsTopic carries every alert, for integrations other than the built-in channels.
	AlertsTopic = "runway-alerts"

	deployTopicPrefix  = "runway-deploy-"
	triggerTopicPrefix = "runway-trigger-"
)

// The delivery policy of every function's push subscription (infra/modules/function-subscription,
// which infra's tests hold to these values), which `runwayctl dev` gives its subscriptions too.
const (
	PushMinBackoff      = 10 * time.Second  // retry_policy.minimum_backoff
	PushMaxBackoff      = 600 * time.Second // retry_policy.maximum_backoff
	PushAckDeadline     = 600 * time.Second // ack_deadline_seconds: at least a function's timeout
	MaxDeliveryAttempts = 20                // dead_letter_policy.max_delivery_attempts
	// TickMaxDeliveryAttempts is the monitor tick's (a late tick is worth little: the next
	// one evaluates up to its own now).
	TickMaxDeliveryAttempts = 5
)

// DeadLetterTopic names a function's dead-letter topic ("deploy" → runway-deploy-dead-letter),
// in the platform project.
func DeadLetterTopic(function string) string { return "runway-" + function + "-dead-letter" }

// DeadLetterHoldSubscription names the pull subscription that keeps a function's dead letters.
func DeadLetterHoldSubscription(function string) string { return DeadLetterTopic(function) + "-hold" }

// DeployTopic is the topic runwayctl deploy publishes the workload's deploy requests on.
func DeployTopic(workload string) string { return deployTopicPrefix + workload }

// TriggerTopic is the topic run requests and scheduled-run requests of the workload go to.
func TriggerTopic(workload string) string { return triggerTopicPrefix + workload }

// TopicPath is the full Pub/Sub name of topic in project.
func TopicPath(project, topic string) string {
	return "projects/" + project + "/topics/" + topic
}

// SplitEventSource parses an Eventarc Pub/Sub CloudEvent source,
// //pubsub.googleapis.com/projects/{project}/topics/{topic}.
func SplitEventSource(source string) (project, topic string, err error) {
	rest, ok := strings.CutPrefix(source, "//pubsub.googleapis.com/")
	if !ok {
		return "", "", fmt.Errorf("event source %q is not a Pub/Sub topic", source)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[2] != "topics" || parts[1] == "" || parts[3] == "" {
		return "", "", fmt.Errorf("event source %q is not //pubsub.googleapis.com/projects/P/topics/T", source)
	}
	return parts[1], parts[3], nil
}

// WorkloadOfTopic returns the workload a deploy or trigger topic is bound to, by name.
func WorkloadOfTopic(topic string) (workload string, ok bool) {
	for _, p := range []string{deployTopicPrefix, triggerTopicPrefix} {
		if w, found := strings.CutPrefix(topic, p); found && w != "" {
			return w, true
		}
	}
	return "", false
}

// Labels on every Runway-managed Cloud Run job (and its Cloud Scheduler job's description).
// A resource without LabelManagedBy=ManagedByValue is never modified or deleted.
const (
	LabelManagedBy       = "managed-by"
	ManagedByValue       = "runway"
	LabelWorkload        = "runway-workload"
	LabelOwner           = "runway-owner"
	LabelDepartment      = "runway-department"
	LabelDepartmentGroup = "runway-department-group"
	LabelProductCategory = "runway-product-category"
)

// Annotations the deploy function writes on the Cloud Run job. Trigger and monitor read the
// job's settings back from them, so the Cloud Run job is the only source of truth.
const (
	annotationPrefix = "runway.gitlab.com/"
	// AnnotationManifestHash is the hash of the validated manifest.
	AnnotationManifestHash = annotationPrefix + "manifest-hash"
	// AnnotationCommit is the source commit SHA of the applied request.
	AnnotationCommit = annotationPrefix + "commit-sha"
	// AnnotationPipelineID is the CI pipeline id of the applied request (decimal).
	AnnotationPipelineID = annotationPrefix + "pipeline-id"
	// AnnotationPipelineURL is the CI pipeline URL of the applied request.
	AnnotationPipelineURL = annotationPrefix + "pipeline-url"
	// AnnotationRef is the git ref of the applied request.
	AnnotationRef = annotationPrefix + "ref"
	// AnnotationImageTag is the image reference the manifest names (the tag an artifact push
	// of which moves the job to the pushed digest).
	AnnotationImageTag = annotationPrefix + "image-tag"
	// AnnotationSettings is the JSON of Settings.
	AnnotationSettings = annotationPrefix + "settings"
	// AnnotationPlacement counts the workload's placements (decimal): a job created in a region
	// that is not yet the workload's home gets one more than any copy has, so of several copies
	// the highest is the home (desired.Place).
	AnnotationPlacement = annotationPrefix + "placement"
)

// AnnotationPrefix begins every annotation Runway writes: Runway owns the keys under it.
const AnnotationPrefix = annotationPrefix

// Settings is what trigger and monitor need to know about a job beyond its Cloud Run
// template. Deploy writes it as the AnnotationSettings annotation.
type Settings struct {
	Workload          string        `json:"workload"`
	Schedule          string        `json:"schedule,omitempty"` // 5-field cron, "" for on-demand
	TimeZone          string        `json:"time_zone,omitempty"`
	ConcurrencyPolicy string        `json:"concurrency_policy"` // Allow | Forbid | Replace
	StartingDeadline  time.Duration `json:"starting_deadline,omitempty"`
	Suspend           bool          `json:"suspend,omitempty"`
	// CreatedAt is when the schedule first applied (slots before it are never expected).
	CreatedAt time.Time `json:"created_at"`
	// Timeout and MaxRetries mirror the task template (for the monitor's expected runtime).
	Timeout    time.Duration `json:"timeout"`
	MaxRetries int           `json:"max_retries"`
	Monitoring Monitoring    `json:"monitoring"`
	Owner      Owner         `json:"owner"`
	// Channels are the names of the alert channels, from the manifest or the inventory.
	Channels []string `json:"channels,omitempty"`
}

// Monitoring holds the monitor's thresholds for one job, defaults applied.
type Monitoring struct {
	Enabled           bool          `json:"enabled"`
	Grace             time.Duration `json:"grace"`
	ExpectedRuntime   time.Duration `json:"expected_runtime"`
	FailureThreshold  int           `json:"failure_threshold"`
	RecoveryThreshold int           `json:"recovery_threshold"`
	AlertOnFlaky      bool          `json:"alert_on_flaky"`
}

// Owner is the manifest's owner metadata.
type Owner struct {
	EmailHandle     string `json:"owner_email_handle,omitempty"`
	Department      string `json:"department,omitempty"`
	DepartmentGroup string `json:"department_group,omitempty"`
	ProductCategory string `json:"product_category,omitempty"`
}

// Encode returns the annotation value of s.
func (s Settings) Encode() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("platform.Settings.Encode: %v", err)) // only plain types: cannot fail
	}
	return string(b)
}

// SettingsOf reads the Settings from a Cloud Run job's annotations.
func SettingsOf(annotations map[string]string) (Settings, error) {
	v, ok := annotations[AnnotationSettings]
	if !ok {
		return Settings{}, fmt.Errorf("annotation %s is missing", AnnotationSettings)
	}
	var s Settings
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return Settings{}, fmt.Errorf("annotation %s: %w", AnnotationSettings, err)
	}
	return s, nil
}

// IsManaged reports whether labels mark a resource as Runway-managed.
func IsManaged(labels map[string]string) bool { return labels[LabelManagedBy] == ManagedByValue }

// Environment every execution started by the trigger function gets.
const (
	EnvTrigger       = "RUNWAY_TRIGGER"        // TriggerSchedule | TriggerManual
	EnvRequestID     = "RUNWAY_REQUEST_ID"     // the run request id, or the slot's claim key
	EnvScheduledTime = "RUNWAY_SCHEDULED_TIME" // RFC3339, scheduled runs only
	TriggerSchedule  = "schedule"
	TriggerManual    = "manual"
)

// Source says where a deploy request comes from.
type Source struct {
	CommitSHA   string `json:"commit_sha,omitempty"`
	PipelineID  int64  `json:"pipeline_id,omitempty"`
	PipelineURL string `json:"pipeline_url,omitempty"`
	Ref         string `json:"ref,omitempty"`
}

// File is a manifest file as read from the service project.
type File struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// Deploy actions.
const (
	ActionApply  = "apply"
	ActionDelete = "delete"
)

// DeployRequest is what runwayctl deploy publishes on DeployTopic(workload).
type DeployRequest struct {
	RequestID   string `json:"request_id"`
	Workload    string `json:"workload"`
	Environment string `json:"environment,omitempty"`
	Action      string `json:"action,omitempty"` // ActionApply (default) | ActionDelete
	// Manifest is the base file, Overlay the workload's overlay if the repository has one.
	Manifest File   `json:"manifest"`
	Overlay  *File  `json:"overlay,omitempty"`
	Image    string `json:"image,omitempty"` // by digest; overrides spec.image
	Source   Source `json:"source"`
}

// RunRequest is what runwayctl run publishes on TriggerTopic(workload).
type RunRequest struct {
	RequestID string            `json:"request_id"`
	Workload  string            `json:"workload"`
	Args      []string          `json:"args,omitempty"`
	ClearArgs bool              `json:"clear_args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	TaskCount int               `json:"task_count,omitempty"`
	Timeout   string            `json:"timeout,omitempty"` // Go duration
	// ConcurrencyPolicy, when set, replaces the job's policy for this run only.
	ConcurrencyPolicy string `json:"concurrency_policy,omitempty"`
	Reason            string `json:"reason,omitempty"`
	RequestedBy       string `json:"requested_by,omitempty"`
}

// Message attribute that tells trigger what a message on a trigger topic is.
const (
	AttrKind      = "runway_kind"
	KindRun       = "run"
	KindScheduled = "scheduled"
)

// ScheduledRun is the body the workload's Cloud Scheduler job publishes. The slot is derived
// from the message's publish time and the job's schedule, never from the body, so that a
// repeated firing of one slot claims the same key.
type ScheduledRun struct {
	Workload string `json:"workload"`
}

// Records the functions leave in the durable store, by key prefix.
const (
	DeployRecordPrefix     = "deploys/"           // the deploy function's request outcomes
	DeployIntentPrefix     = "deploy-intents/"    // what a deploy request's first delivery planned
	RunRecordPrefix        = "runs/"              // the trigger's claims of run requests and slots
	TriggerLockPrefix      = "trigger-locks/"     // the trigger's per-workload concurrency locks
	RunWindowsPrefix       = "trigger-windows/"   // the trigger's bounds of its running executions
	MonitorStatePrefix     = "monitor/"           // the monitor's state of a GCP project
	MonitorRetentionPrefix = "monitor-retention/" // the monitor's retention pass cursor
)

// StateGrants is what each function may do in the state store: the one declaration that
// infra/platform/state.tf grants in Cloud Storage IAM (infra's TestStateGrantsMatchCode) and
// that each function's store enforces in process (ScopedStore), so that a key built outside
// it fails the function's tests rather than failing in production with a 403.
var StateGrants = map[string]state.Grant{
	"deploy":  {Write: []string{DeployRecordPrefix, DeployIntentPrefix}},
	"trigger": {Write: []string{RunRecordPrefix, TriggerLockPrefix, RunWindowsPrefix}},
	// The monitor reads the trigger's slot records and prunes the records RecordRetention
	// applies to.
	"monitor": {Write: []string{MonitorStatePrefix, MonitorRetentionPrefix}, Prune: RetainedPrefixes},
}

// ScopedStore returns s restricted to function fn's StateGrants entry; it panics for a
// function that has none (a programming error).
func ScopedStore(fn string, s state.Store) state.Store {
	g, ok := StateGrants[fn]
	if !ok {
		panic("platform.ScopedStore: no state grant for " + fn)
	}
	return state.Scoped(s, fn, g)
}

// MonitorStateKey is the store key of the monitor's state of a GCP project (its incidents and
// undelivered alerts), which the monitor writes and runwayctl console reads.
func MonitorStateKey(project string) string { return MonitorStatePrefix + project }

// DeployRecordKey is the store key of the outcome of a deploy request.
func DeployRecordKey(workload, requestID string) string {
	return DeployRecordPrefix + workload + "/" + keySafe(requestID)
}

// DeployIntentKey is the store key of what the first delivery of a deploy request planned to
// change, written before its first write: a redelivery whose writes landed already (their
// responses lost) records them as this request's changes, not as "unchanged".
func DeployIntentKey(workload, requestID string) string {
	return DeployIntentPrefix + workload + "/" + keySafe(requestID)
}

// RunRecordKey is the store key of the claim of a run request; it is never a SlotRecordKey.
func RunRecordKey(workload, requestID string) string {
	return RunRecordPrefix + workload + "/" + keySafe(requestID, slotName)
}

// SlotRecordKey is the store key of the claim of a scheduled slot: the slot is the lock, as
// Kubernetes names a CronJob's Job after its slot. A workload's slot keys sort by slot (the
// minute has eight digits until 2160).
func SlotRecordKey(workload string, slot time.Time) string {
	return fmt.Sprintf("%s%d", SlotRecordPrefix(workload), slot.Unix()/60)
}

// slotName begins the name of every slot claim, and of no run request's.
const slotName = "slot-"

// SlotRecordPrefix is the prefix of a workload's SlotRecordKeys.
func SlotRecordPrefix(workload string) string { return RunRecordPrefix + workload + "/" + slotName }

// AfterSlotRecords is a key that sorts after every SlotRecordKey of workload and before every
// RunRecordKey that sorts after them: a reader of the request records lists its
// RunRecordPrefix up to SlotRecordPrefix, then on after this, without listing the slots.
func AfterSlotRecords(workload string) string { return SlotRecordPrefix(workload) + "~" }

// RecordRetention is how long the run records (runs/) and deploy outcomes (deploys/) are kept:
// longer than Pub/Sub can hold a message for redelivery (31 days, its longest retention), so a
// redelivered request always finds the record that makes it a duplicate, and far longer than
// any reader looks back (the monitor reads a slot's record within a day of its deadline,
// runwayctl run and deploy --wait within minutes). The monitor deletes older ones.
const RecordRetention = 32 * 24 * time.Hour

// RetainedPrefixes are the store prefixes whose records RecordRetention applies to.
var RetainedPrefixes = []string{DeployRecordPrefix, RunRecordPrefix}

// SlotOfKey returns the slot of a SlotRecordKey (to the minute); ok is false for other keys.
func SlotOfKey(key string) (slot time.Time, ok bool) {
	i := strings.LastIndex(key, "/"+slotName)
	if i < 0 || !strings.HasPrefix(key, RunRecordPrefix) || strings.Count(key, "/") != 2 {
		return time.Time{}, false
	}
	digits := key[i+1+len(slotName):]
	if digits == "" || digits[0] == '0' && digits != "0" || strings.Trim(digits, "0123456789") != "" {
		return time.Time{}, false // not as SlotRecordKey writes it
	}
	m, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || m > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(m*60, 0).UTC(), true
}

// RecordTime returns the time of a stored RunRecord or DeployRecord: when it was last
// written.
func RecordTime(data []byte) (time.Time, error) {
	var r struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return time.Time{}, fmt.Errorf("record time: %w", err)
	}
	if r.Time.IsZero() {
		return time.Time{}, errors.New("record time: the record has no time")
	}
	return r.Time, nil
}

// keySafe keeps ids that are plain (CI ids, UUIDs) readable and hashes anything else, reserved
// names included: the names a hash makes ("h-…") and, past the given prefixes, names that
// other keys of the same folder use (a run request id "slot-29934900" is not allowed to be
// the claim of that slot). Distinct ids thus always get distinct keys.
func keySafe(id string, reserved ...string) string {
	ok := id != "" && len(id) <= 128 && id != "." && id != ".." && !strings.HasPrefix(id, "h-")
	for _, p := range reserved {
		ok = ok && !strings.HasPrefix(id, p)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			ok = false
			break
		}
	}
	if ok {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h-" + hex.EncodeToString(sum[:16])
}

// Deploy outcomes.
const (
	DeployApplied   = "applied"   // the world now matches the request (Changes lists the writes)
	DeployUnchanged = "unchanged" // the world already matched
	DeployStale     = "stale"     // a newer pipeline was already applied: nothing changed
	DeployRefused   = "refused"   // the request can never succeed (Problems says why)
	DeployDeleted   = "deleted"
)

// DeployRecord is the outcome of a deploy request, for runwayctl deploy --wait.
type DeployRecord struct {
	RequestID string    `json:"request_id"`
	Workload  string    `json:"workload"`
	Outcome   string    `json:"outcome"`
	Changes   []string  `json:"changes,omitempty"`
	Problems  []string  `json:"problems,omitempty"` // FILE:LINE:COL: message, as runwayctl validate prints
	Job       string    `json:"job,omitempty"`
	Scheduler string    `json:"scheduler,omitempty"`
	Time      time.Time `json:"time"`
}

// Run outcomes.
const (
	RunClaimed = "claimed" // claimed, RunJob not yet confirmed
	RunStarted = "started"
	RunSkipped = "skipped" // Forbid with an active run, or suspended
	RunMissed  = "missed"  // delivered after slot + starting deadline
	RunRefused = "refused"
)

// RunRecord is the claim of one run request or scheduled slot, and then its outcome.
type RunRecord struct {
	RequestID     string    `json:"request_id"`
	Workload      string    `json:"workload"`
	Trigger       string    `json:"trigger"` // TriggerSchedule | TriggerManual
	ScheduledTime time.Time `json:"scheduled_time,omitzero"`
	Outcome       string    `json:"outcome"`
	Reason        string    `json:"reason,omitempty"`
	Execution     string    `json:"execution,omitempty"` // full resource name
	LogURI        string    `json:"log_uri,omitempty"`
	Attempts      int       `json:"attempts"`
	Time          time.Time `json:"time"`
}

// Settings every function and runwayctl read from the environment (besides
// gcp.EmulatorHostEnv and state.EnvVar).
const (
	// EnvInventory is the path of inventory.yml.
	EnvInventory = "RUNWAY_INVENTORY"
)

// JobName is the Cloud Run job (and Cloud Scheduler job) resource name of a workload.
func JobName(project, region, workload string) string {
	return "projects/" + project + "/locations/" + region + "/jobs/" + workload
}
