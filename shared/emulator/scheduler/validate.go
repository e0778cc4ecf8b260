package scheduler

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"runwayjobs.dev/shared/schedule"
)

// Limits and defaults from the Cloud Scheduler v1 protos and quotas.
const (
	maxJobIDLen            = 500
	maxDescriptionLen      = 500
	maxURILen              = 2083
	maxHeaderBytes         = 80 << 10
	maxJobBytes            = 1 << 20
	maxRetryCount          = 5
	maxPageSize            = 500
	maxJobsPerLocation     = 5000
	defaultAttemptDeadline = 3 * time.Minute
	minAttemptDeadline     = 15 * time.Second
	maxAttemptDeadline     = 30 * time.Minute
	defaultMinBackoff      = 5 * time.Second
	defaultMaxBackoff      = time.Hour
	defaultMaxDoublings    = 5
)

var (
	// parentRE matches projects/{project}/locations/{location}; project IDs may hold colons and
	// periods (domain-scoped projects).
	parentRE = regexp.MustCompile(`^projects/([A-Za-z0-9:.\-]+)/locations/([A-Za-z0-9\-]+)$`)
	jobIDRE  = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)
	topicRE  = regexp.MustCompile(`^projects/([A-Za-z0-9:.\-]+)/topics/[^/]+$`)
)

// invalid returns an InvalidArgument error.
func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// parseParent checks projects/{p}/locations/{l} and returns the project.
func parseParent(parent string) (string, error) {
	m := parentRE.FindStringSubmatch(parent)
	if m == nil {
		return "", invalid("parent %q is not of the form projects/PROJECT_ID/locations/LOCATION_ID", parent)
	}
	return m[1], nil
}

// parseName checks projects/{p}/locations/{l}/jobs/{id} and returns the parent and the project.
func parseName(name string) (parent, project string, err error) {
	i := strings.LastIndex(name, "/jobs/")
	if i < 0 {
		return "", "", invalid("job name %q is not of the form projects/PROJECT_ID/locations/LOCATION_ID/jobs/JOB_ID", name)
	}
	parent, id := name[:i], name[i+len("/jobs/"):]
	if project, err = parseParent(parent); err != nil {
		return "", "", invalid("job name %q is not of the form projects/PROJECT_ID/locations/LOCATION_ID/jobs/JOB_ID", name)
	}
	if !jobIDRE.MatchString(id) || len(id) > maxJobIDLen {
		return "", "", invalid("job ID %q: only letters, digits, hyphens and underscores are allowed, at most %d characters", id, maxJobIDLen)
	}
	return parent, project, nil
}

// jobID returns the last element of a job name.
func jobID(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// normalize validates the user-settable fields of j (in place) and fills in the defaults Cloud
// Scheduler shows, returning the parsed schedule. project is the job's project.
func normalize(j *schedulerpb.Job, project string) (*schedule.Schedule, error) {
	if n := len([]rune(j.GetDescription())); n > maxDescriptionLen {
		return nil, invalid("description has %d characters, at most %d are allowed", n, maxDescriptionLen)
	}
	if strings.TrimSpace(j.GetSchedule()) == "" {
		return nil, invalid("schedule is required")
	}
	tz := j.GetTimeZone()
	if strings.EqualFold(tz, "utc") {
		tz = "UTC" // the proto's own spelling, "utc", is not a tz database file name
	}
	expr := j.GetSchedule()
	if isAppEngineSchedule(expr) {
		cron, err := appEngineCron(expr)
		if err != nil {
			return nil, invalid("%s %v", invalidSchedule, err)
		}
		expr = cron // the job keeps its schedule as written
	}
	sched, err := schedule.Parse(expr, tz)
	if err != nil {
		return nil, invalid("%s %v", invalidSchedule, err)
	}

	switch t := j.GetTarget().(type) {
	case nil:
		return nil, invalid("a target is required: one of pubsub_target, http_target, app_engine_http_target")
	case *schedulerpb.Job_AppEngineHttpTarget:
		return nil, invalid("app_engine_http_target is not implemented in the emulator")
	case *schedulerpb.Job_PubsubTarget:
		if err := checkPubsub(t.PubsubTarget, project); err != nil {
			return nil, err
		}
	case *schedulerpb.Job_HttpTarget:
		if err := checkHTTP(t.HttpTarget); err != nil {
			return nil, err
		}
		if j.AttemptDeadline == nil {
			j.AttemptDeadline = durationpb.New(defaultAttemptDeadline)
		}
		d, err := duration("attempt_deadline", j.AttemptDeadline)
		if err != nil {
			return nil, err
		}
		if d < minAttemptDeadline || d > maxAttemptDeadline {
			return nil, invalid("attempt_deadline %s: must be between %s and %s for HTTP targets", d, minAttemptDeadline, maxAttemptDeadline)
		}
	}

	if err := checkRetry(j); err != nil {
		return nil, err
	}
	if n := proto.Size(j); n > maxJobBytes {
		return nil, invalid("job is %d bytes, at most %d are allowed", n, maxJobBytes)
	}
	return sched, nil
}

// checkPubsub validates a Pub/Sub target.
func checkPubsub(t *schedulerpb.PubsubTarget, project string) error {
	m := topicRE.FindStringSubmatch(t.GetTopicName())
	if m == nil {
		return invalid("pubsub_target.topic_name %q is not of the form projects/PROJECT_ID/topics/TOPIC_ID", t.GetTopicName())
	}
	if m[1] != project {
		return invalid("pubsub_target.topic_name %q must be in the job's project %q", t.GetTopicName(), project)
	}
	if len(t.GetData()) == 0 && len(t.GetAttributes()) == 0 {
		return invalid("pubsub_target must have non-empty data or at least one attribute")
	}
	return nil
}

// checkHTTP validates an HTTP target and sets its default method.
func checkHTTP(t *schedulerpb.HttpTarget) error {
	uri := t.GetUri()
	if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") {
		return invalid("http_target.uri %q must begin with http:// or https://", uri)
	}
	if len(uri) > maxURILen {
		return invalid("http_target.uri has %d characters, at most %d are allowed", len(uri), maxURILen)
	}
	if t.HttpMethod == schedulerpb.HttpMethod_HTTP_METHOD_UNSPECIFIED {
		t.HttpMethod = schedulerpb.HttpMethod_POST
	}
	if _, ok := schedulerpb.HttpMethod_name[int32(t.HttpMethod)]; !ok {
		return invalid("http_target.http_method %d is not a known method", t.HttpMethod)
	}
	switch t.HttpMethod {
	case schedulerpb.HttpMethod_POST, schedulerpb.HttpMethod_PUT, schedulerpb.HttpMethod_PATCH:
	default:
		if len(t.GetBody()) > 0 {
			return invalid("http_target.body is only allowed with POST, PUT or PATCH, not %s", t.HttpMethod)
		}
	}
	size := 0
	for k, v := range t.GetHeaders() {
		size += len(k) + len(v)
	}
	if size >= maxHeaderBytes {
		return invalid("http_target.headers total %d bytes, they must be less than %d", size, maxHeaderBytes)
	}
	return nil
}

// checkRetry validates retry_config and fills in its defaults.
func checkRetry(j *schedulerpb.Job) error {
	if j.RetryConfig == nil {
		j.RetryConfig = &schedulerpb.RetryConfig{}
	}
	rc := j.RetryConfig
	if rc.RetryCount < 0 || rc.RetryCount > maxRetryCount {
		return invalid("retry_config.retry_count %d: must be between 0 and %d", rc.RetryCount, maxRetryCount)
	}
	if rc.MaxDoublings < 0 {
		return invalid("retry_config.max_doublings %d: must not be negative", rc.MaxDoublings)
	}
	if rc.MaxDoublings == 0 {
		rc.MaxDoublings = defaultMaxDoublings
	}
	if rc.MaxRetryDuration == nil {
		rc.MaxRetryDuration = durationpb.New(0)
	}
	if rc.MinBackoffDuration == nil {
		rc.MinBackoffDuration = durationpb.New(defaultMinBackoff)
	}
	if rc.MaxBackoffDuration == nil {
		rc.MaxBackoffDuration = durationpb.New(defaultMaxBackoff)
	}
	if _, err := duration("retry_config.max_retry_duration", rc.MaxRetryDuration); err != nil {
		return err
	}
	minB, err := duration("retry_config.min_backoff_duration", rc.MinBackoffDuration)
	if err != nil {
		return err
	}
	maxB, err := duration("retry_config.max_backoff_duration", rc.MaxBackoffDuration)
	if err != nil {
		return err
	}
	if minB > maxB {
		return invalid("retry_config.min_backoff_duration %s is greater than max_backoff_duration %s", minB, maxB)
	}
	return nil
}

// duration checks that d is a valid, non-negative duration.
func duration(field string, d *durationpb.Duration) (time.Duration, error) {
	if err := d.CheckValid(); err != nil {
		return 0, invalid("%s: %v", field, err)
	}
	if d.AsDuration() < 0 {
		return 0, invalid("%s %s: must not be negative", field, d.AsDuration())
	}
	return d.AsDuration(), nil
}

// updatable lists the Job fields UpdateJob may change; the rest are output only or the name.
var updatable = map[protoreflect.Name]bool{
	"description":            true,
	"schedule":               true,
	"time_zone":              true,
	"pubsub_target":          true,
	"app_engine_http_target": true,
	"http_target":            true,
	"retry_config":           true,
	"attempt_deadline":       true,
}

// applyUpdate copies the fields of src named by mask into dst. An empty mask copies every
// updatable field that src sets (so UpdateJob needs no schedule, as the proto says).
func applyUpdate(dst, src *schedulerpb.Job, mask *fieldmaskpb.FieldMask) error {
	d, sm := dst.ProtoReflect(), src.ProtoReflect()
	fields := d.Descriptor().Fields()
	if len(mask.GetPaths()) == 0 {
		for i := range fields.Len() {
			fd := fields.Get(i)
			if updatable[fd.Name()] && sm.Has(fd) {
				d.Set(fd, sm.Get(fd))
			}
		}
		return nil
	}
	if _, err := fieldmaskpb.New(src, mask.GetPaths()...); err != nil {
		return invalid("update_mask: %v", err)
	}
	for _, p := range mask.GetPaths() {
		path := strings.Split(p, ".")
		if !updatable[protoreflect.Name(path[0])] {
			return invalid("update_mask: field %q cannot be updated", p)
		}
	}
	for _, p := range mask.GetPaths() {
		copyPath(d, sm, strings.Split(p, "."))
	}
	return nil
}

// copyPath sets the field at path in dst to its value in src, or clears it when src leaves it unset.
func copyPath(dst, src protoreflect.Message, path []string) {
	fd := dst.Descriptor().Fields().ByName(protoreflect.Name(path[0]))
	if len(path) == 1 {
		if src.Has(fd) {
			dst.Set(fd, src.Get(fd))
		} else {
			dst.Clear(fd)
		}
		return
	}
	if !src.Has(fd) && !dst.Has(fd) {
		return // nothing to clear; don't switch a oneof to an empty message
	}
	copyPath(dst.Mutable(fd).Message(), src.Get(fd).Message(), path[1:])
}

// describe names a job for error messages.
func describe(name string) string { return fmt.Sprintf("job %q", name) }
