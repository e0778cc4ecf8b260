package monitoring

import (
	"time"

	"google.golang.org/genproto/googleapis/api"
	"google.golang.org/genproto/googleapis/api/label"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The metric and resource types the emulator serves.
const (
	// CompletedExecutionCount counts finished executions per minute (DELTA INT64, label result).
	CompletedExecutionCount = "run.googleapis.com/job/completed_execution_count"
	// CompletedTaskAttemptCount counts finished task attempts per minute (DELTA INT64, labels
	// result and attempt).
	CompletedTaskAttemptCount = "run.googleapis.com/job/completed_task_attempt_count"
	// RunningExecutions is the number of executions running (GAUGE INT64).
	RunningExecutions = "run.googleapis.com/job/running_executions"
	// ResourceType is the monitored resource of the metrics, labelled project_id, location and
	// job_name.
	ResourceType = "cloud_run_job"
)

// metricID indexes the built-in metrics.
type metricID int

const (
	completedExecutions metricID = iota
	completedTaskAttempts
	runningExecutions
	numMetrics
)

// metricInfo describes a built-in metric.
type metricInfo struct {
	id          metricID
	typ         string
	kind        metric.MetricDescriptor_MetricKind
	labels      []labelInfo
	displayName string
	description string
}

type labelInfo struct{ key, description string }

var resultLabel = labelInfo{"result", "Result of the execution or attempt: succeeded, failed or cancelled."}

var metrics = [numMetrics]*metricInfo{
	{
		id: completedExecutions, typ: CompletedExecutionCount, kind: metric.MetricDescriptor_DELTA,
		labels:      []labelInfo{resultLabel},
		displayName: "Completed execution count",
		description: "Number of job executions that completed, by result.",
	},
	{
		id: completedTaskAttempts, typ: CompletedTaskAttemptCount, kind: metric.MetricDescriptor_DELTA,
		labels:      []labelInfo{resultLabel, {"attempt", "Attempt number of the task (0 for the first attempt)."}},
		displayName: "Completed task attempt count",
		description: "Number of task attempts that completed, by result and attempt number.",
	},
	{
		id: runningExecutions, typ: RunningExecutions, kind: metric.MetricDescriptor_GAUGE,
		displayName: "Running executions",
		description: "Number of job executions running.",
	},
}

// metricByType finds a built-in metric.
func metricByType(typ string) *metricInfo {
	for _, m := range metrics {
		if m.typ == typ {
			return m
		}
	}
	return nil
}

// hasLabel reports whether the metric has a label named key.
func (m *metricInfo) hasLabel(key string) bool {
	for _, l := range m.labels {
		if l.key == key {
			return true
		}
	}
	return false
}

// descriptor renders the metric's descriptor as seen from project.
func (m *metricInfo) descriptor(project string, ingestDelay time.Duration) *metric.MetricDescriptor {
	d := &metric.MetricDescriptor{
		Name:        "projects/" + project + "/metricDescriptors/" + m.typ,
		Type:        m.typ,
		MetricKind:  m.kind,
		ValueType:   metric.MetricDescriptor_INT64,
		Unit:        "1",
		Description: m.description,
		DisplayName: m.displayName,
		Metadata: &metric.MetricDescriptor_MetricDescriptorMetadata{
			LaunchStage:  api.LaunchStage_GA,
			SamplePeriod: durationpb.New(time.Minute),
			IngestDelay:  durationpb.New(ingestDelay),
		},
		LaunchStage:            api.LaunchStage_GA,
		MonitoredResourceTypes: []string{ResourceType},
	}
	for _, l := range m.labels {
		d.Labels = append(d.Labels, &label.LabelDescriptor{Key: l.key, ValueType: label.LabelDescriptor_STRING, Description: l.description})
	}
	return d
}

// resourceLabels are the labels of cloud_run_job, in order.
var resourceLabels = []labelInfo{
	{"project_id", "The identifier of the Google Cloud project associated with this resource."},
	{"location", "Region where the job runs."},
	{"job_name", "Name of the Cloud Run job."},
}

// resourceDescriptor renders the cloud_run_job descriptor as seen from project.
func resourceDescriptor(project string) *monitoredres.MonitoredResourceDescriptor {
	d := &monitoredres.MonitoredResourceDescriptor{
		Name:        "projects/" + project + "/monitoredResourceDescriptors/" + ResourceType,
		Type:        ResourceType,
		DisplayName: "Cloud Run Job",
		Description: "A Cloud Run job.",
		LaunchStage: api.LaunchStage_GA,
	}
	for _, l := range resourceLabels {
		d.Labels = append(d.Labels, &label.LabelDescriptor{Key: l.key, ValueType: label.LabelDescriptor_STRING, Description: l.description})
	}
	return d
}
