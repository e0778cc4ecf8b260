package monitoring

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// recorder is cloudrun.Recorder, restated here so that the store is checked against the contract
// without importing the Cloud Run emulator.
type recorder interface {
	ExecutionStarted(project, location, job string, at time.Time)
	ExecutionCompleted(project, location, job, result string, at time.Time)
	TaskAttemptCompleted(project, location, job, result string, attempt int, at time.Time)
}

var _ recorder = (*Store)(nil)

// TestMonitorQuery runs the query the monitor makes: one call per metric for every job of the
// project, summed over the window and grouped by job, location and result.
func TestMonitorQuery(t *testing.T) {
	const count = CompletedExecutionCount
	tests := []struct {
		name   string
		delay  time.Duration
		now    string
		window time.Duration
		filter string
		agg    *monitoringpb.Aggregation // nil: monitorAggregation(window)
		want   []got
	}{
		{
			name: "whole hour", now: "11:00", window: time.Hour,
			filter: metricFilter(count, `resource.type = "cloud_run_job"`),
			want: []got{
				{Resource: map[string]string{"job_name": "backup", "location": "europe-west1"}, Metric: lbl("result", "failed"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 1"}},
				{Resource: map[string]string{"job_name": "backup", "location": "europe-west1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 2"}},
				{Resource: map[string]string{"job_name": "backup", "location": "us-central1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 1"}},
				{Resource: map[string]string{"job_name": "report", "location": "europe-west1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 1"}},
			},
		},
		{
			// Points ending after now-3m are not ingested yet: backup's 10:46 success is missing.
			name: "ingest delay hides the last minutes", delay: 3 * time.Minute, now: "10:48", window: time.Hour,
			filter: metricFilter(count, `resource.type = "cloud_run_job"`),
			want: []got{
				{Resource: map[string]string{"job_name": "backup", "location": "europe-west1"}, Metric: lbl("result", "failed"), Kind: "DELTA INT64", Points: []string{"09:48-10:48 1"}},
				{Resource: map[string]string{"job_name": "backup", "location": "europe-west1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"09:48-10:48 1"}},
				{Resource: map[string]string{"job_name": "backup", "location": "us-central1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"09:48-10:48 1"}},
				{Resource: map[string]string{"job_name": "report", "location": "europe-west1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"09:48-10:48 1"}},
			},
		},
		{
			// The window (10:30, 11:00] holds backup's failure and last success only.
			name: "short window", now: "11:00", window: 30 * time.Minute,
			filter: metricFilter(count),
			want: []got{
				{Resource: map[string]string{"job_name": "backup", "location": "europe-west1"}, Metric: lbl("result", "failed"), Kind: "DELTA INT64", Points: []string{"10:30-11:00 1"}},
				{Resource: map[string]string{"job_name": "backup", "location": "europe-west1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:30-11:00 1"}},
			},
		},
		{
			name: "one job, single quotes, plural labels", now: "11:00", window: time.Hour,
			filter: metricFilter(count, `resource.labels.job_name = 'report'`),
			want: []got{
				{Resource: map[string]string{"job_name": "report", "location": "europe-west1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 1"}},
			},
		},
		{
			name: "failures only", now: "11:00", window: time.Hour,
			filter: metricFilter(count, `metric.label.result = "failed"`),
			want: []got{
				{Resource: map[string]string{"job_name": "backup", "location": "europe-west1"}, Metric: lbl("result", "failed"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 1"}},
			},
		},
		{
			name: "starts_with and one_of", now: "11:00", window: time.Hour,
			filter: metricFilter(count, `resource.label.location = one_of("us-central1", "asia-east1")`, `resource.label.job_name = starts_with("back")`),
			want: []got{
				{Resource: map[string]string{"job_name": "backup", "location": "us-central1"}, Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 1"}},
			},
		},
		{
			name: "other resource type matches nothing", now: "11:00", window: time.Hour,
			filter: metricFilter(count, `resource.type = "cloud_run_revision"`),
		},
		{
			name: "grouped by job only", now: "11:00", window: time.Hour,
			filter: metricFilter(count),
			agg: &monitoringpb.Aggregation{
				AlignmentPeriod: durationpb.New(time.Hour), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_SUM,
				CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM, GroupByFields: []string{"resource.labels.job_name"},
			},
			want: []got{
				{Resource: map[string]string{"job_name": "backup"}, Kind: "DELTA INT64", Points: []string{"10:00-11:00 4"}},
				{Resource: map[string]string{"job_name": "report"}, Kind: "DELTA INT64", Points: []string{"10:00-11:00 1"}},
			},
		},
		{
			name: "no group by: one series", now: "11:00", window: time.Hour,
			filter: metricFilter(count),
			agg: &monitoringpb.Aggregation{
				AlignmentPeriod: durationpb.New(time.Hour), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA,
				CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM,
			},
			want: []got{{Kind: "DELTA INT64", Points: []string{"10:00-11:00 5"}}},
		},
		{
			name: "task attempts by result and attempt", now: "11:00", window: time.Hour,
			filter: metricFilter(CompletedTaskAttemptCount, `resource.label.job_name = "backup"`),
			agg: &monitoringpb.Aggregation{
				AlignmentPeriod: durationpb.New(time.Hour), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_SUM,
				CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM, GroupByFields: []string{"metric.label.result", "metric.labels.attempt"},
			},
			want: []got{
				{Metric: lbl("result", "failed", "attempt", "0"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 2"}},
				{Metric: lbl("result", "failed", "attempt", "1"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 1"}},
				{Metric: lbl("result", "succeeded", "attempt", "0"), Kind: "DELTA INT64", Points: []string{"10:00-11:00 2"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.delay)
			e.record(fixture...)
			// backup in europe-west1: a first attempt fails and is retried, twice.
			for _, a := range []struct {
				result  string
				attempt int
				at      string
			}{{"failed", 0, "10:01:00"}, {"succeeded", 0, "10:02:00"}, {"failed", 0, "10:30:30"}, {"failed", 1, "10:31:00"}, {"succeeded", 0, "10:46:00"}} {
				e.store.TaskAttemptCompleted("proj", "europe-west1", "backup", a.result, a.attempt, at(a.at))
			}
			e.clock.Set(at(tt.now))
			agg := tt.agg
			if agg == nil {
				agg = monitorAggregation(tt.window)
			}
			all, err := e.list(context.Background(), &monitoringpb.ListTimeSeriesRequest{
				Name:        "projects/proj",
				Filter:      tt.filter,
				Interval:    &monitoringpb.TimeInterval{StartTime: timestamppb.New(at(tt.now).Add(-tt.window)), EndTime: timestamppb.New(at(tt.now))},
				Aggregation: agg,
			})
			if err != nil {
				t.Fatal(err)
			}
			// The job that never completed ("idle") has no series at all.
			if diff := cmp.Diff(tt.want, summarize(all)); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRawPoints reads points without aggregation: one per minute with completions, newest first,
// with points loaded through CreateTimeSeries among those the Cloud Run emulator recorded.
func TestRawPoints(t *testing.T) {
	e := newEnv(t, 0)
	e.record(fixture...)
	ctx := context.Background()
	err := e.client.CreateTimeSeries(ctx, &monitoringpb.CreateTimeSeriesRequest{
		Name: "projects/proj",
		TimeSeries: []*monitoringpb.TimeSeries{{
			Metric:   &metric.Metric{Type: CompletedExecutionCount, Labels: lbl("result", "succeeded")},
			Resource: &monitoredres.MonitoredResource{Type: ResourceType, Labels: res("europe-west1", "backup")},
			Points:   []*monitoringpb.Point{{Interval: interval("10:40", "10:41"), Value: int64Value(5)}},
		}, {
			Metric:   &metric.Metric{Type: RunningExecutions},
			Resource: &monitoredres.MonitoredResource{Type: ResourceType, Labels: res("europe-west1", "report")},
			Points:   []*monitoringpb.Point{{Interval: &monitoringpb.TimeInterval{EndTime: timestamppb.New(at("10:55"))}, Value: int64Value(3)}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Set(at("11:00"))

	tests := []struct {
		name     string
		filter   string
		interval *monitoringpb.TimeInterval
		want     []got
	}{
		{
			name:     "counts per minute",
			filter:   metricFilter(CompletedExecutionCount, `resource.label.job_name = "backup"`, `resource.label.location = "europe-west1"`),
			interval: interval("10:00", "11:00"),
			want: []got{
				{Resource: res("europe-west1", "backup"), Metric: lbl("result", "failed"), Kind: "DELTA INT64", Points: []string{"10:31-10:32 1"}},
				{Resource: res("europe-west1", "backup"), Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:46-10:47 1", "10:40-10:41 5", "10:02-10:03 1"}},
			},
		},
		{
			// (10:03, 10:46]: the point ending at 10:03 is out, the one ending at 10:47 too.
			name:     "interval excludes its start",
			filter:   metricFilter(CompletedExecutionCount, `resource.label.job_name = "backup"`, `metric.label.result = "succeeded"`, `resource.label.location = "europe-west1"`),
			interval: interval("10:03", "10:46"),
			want: []got{
				{Resource: res("europe-west1", "backup"), Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:40-10:41 5"}},
			},
		},
		{
			name:     "instant interval",
			filter:   metricFilter(CompletedExecutionCount),
			interval: interval("10:22", "10:22"),
			want: []got{
				{Resource: res("us-central1", "backup"), Metric: lbl("result", "succeeded"), Kind: "DELTA INT64", Points: []string{"10:21-10:22 1"}},
			},
		},
		{
			// A gauge point at the end of each minute with the most executions running in it,
			// dropping to zero once; "idle" is still running, so its points go on to now.
			name:     "running executions",
			filter:   metricFilter(RunningExecutions, `resource.label.location = "europe-west1"`),
			interval: interval("10:00", "11:00"),
			want: []got{
				{Resource: res("europe-west1", "backup"), Kind: "GAUGE INT64", Points: []string{"10:48 0", "10:47 1", "10:46 1", "10:33 0", "10:32 1", "10:31 1", "10:04 0", "10:03 1", "10:02 1", "10:01 1"}},
				{Resource: res("europe-west1", "idle"), Kind: "GAUGE INT64", Points: []string{"11:00 1", "10:59 1", "10:58 1", "10:57 1", "10:56 1", "10:55 1", "10:54 1", "10:53 1", "10:52 1", "10:51 1"}},
				{Resource: res("europe-west1", "report"), Kind: "GAUGE INT64", Points: []string{"10:55 3", "10:12 0", "10:11 1"}},
			},
		},
		{
			name:     "no start time means the instant end",
			filter:   metricFilter(RunningExecutions, `resource.label.job_name = "idle"`),
			interval: &monitoringpb.TimeInterval{EndTime: timestamppb.New(at("10:55"))},
			want:     []got{{Resource: res("europe-west1", "idle"), Kind: "GAUGE INT64", Points: []string{"10:55 1"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, err := e.list(ctx, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: tt.filter, Interval: tt.interval})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarize(all)); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIngestDelay checks when a completion at 10:00:30 (its point ends at 10:01) becomes visible.
func TestIngestDelay(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
		now   string
		want  int64 // completions seen; 0 means no series at all
	}{
		{name: "same minute, no delay", now: "10:00:59"},
		{name: "minute over, no delay", now: "10:01", want: 1},
		{name: "minute over, 2m delay", delay: 2 * time.Minute, now: "10:02:59"},
		{name: "delay over", delay: 2 * time.Minute, now: "10:03", want: 1},
		{name: "negative delay is none", delay: -time.Minute, now: "10:01", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.delay)
			e.store.ExecutionCompleted("proj", "europe-west1", "backup", "succeeded", at("10:00:30"))
			e.clock.Set(at(tt.now))
			all, err := e.list(context.Background(), &monitoringpb.ListTimeSeriesRequest{
				Name:        "projects/proj",
				Filter:      metricFilter(CompletedExecutionCount),
				Interval:    &monitoringpb.TimeInterval{StartTime: timestamppb.New(at("09:00")), EndTime: timestamppb.New(at(tt.now))},
				Aggregation: monitorAggregation(time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			var seen int64
			for _, ts := range all {
				for _, p := range ts.GetPoints() {
					seen += p.GetValue().GetInt64Value()
				}
			}
			if seen != tt.want || (tt.want == 0 && len(all) != 0) {
				t.Errorf("saw %d completions in %d series, want %d", seen, len(all), tt.want)
			}
		})
	}
}

// TestAlignment checks periods aligned to the interval's end and the other aligners and
// reducers.
func TestAlignment(t *testing.T) {
	e := newEnv(t, 0)
	e.record(fixture...)
	e.clock.Set(at("11:00"))
	tests := []struct {
		name     string
		filter   string
		interval *monitoringpb.TimeInterval
		agg      *monitoringpb.Aggregation
		view     monitoringpb.ListTimeSeriesRequest_TimeSeriesView
		want     []got
	}{
		{
			// Periods end at 11:00, 10:40 and 10:20; backup's points end at 10:03, 10:22 (us),
			// 10:32 (failed) and 10:47.
			name:     "20 minute periods",
			filter:   metricFilter(CompletedExecutionCount, `resource.label.job_name = "backup"`),
			interval: interval("10:00", "11:00"),
			agg: &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(20 * time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_SUM,
				CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM, GroupByFields: []string{"resource.label.job_name"}},
			want: []got{{Resource: map[string]string{"job_name": "backup"}, Kind: "DELTA INT64", Points: []string{"10:40-11:00 1", "10:20-10:40 2", "10:00-10:20 1"}}},
		},
		{
			// The last period reaches back before the interval's start to stay whole.
			name:     "period reaching before the start",
			filter:   metricFilter(CompletedExecutionCount, `resource.label.job_name = "backup"`),
			interval: interval("10:05", "11:00"),
			agg: &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(20 * time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_SUM,
				CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM},
			want: []got{{Kind: "DELTA INT64", Points: []string{"10:40-11:00 1", "10:20-10:40 2", "10:00-10:20 1"}}},
		},
		{
			name:     "aligned without reducer keeps every label",
			filter:   metricFilter(CompletedExecutionCount, `resource.label.location = "us-central1"`),
			interval: interval("10:00", "11:00"),
			agg:      &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(time.Hour), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_COUNT},
			want:     []got{{Resource: res("us-central1", "backup"), Metric: lbl("result", "succeeded"), Kind: "GAUGE INT64", Points: []string{"11:00 1"}}},
		},
		{
			name:     "max running per job",
			filter:   metricFilter(RunningExecutions),
			interval: interval("10:00", "11:00"),
			agg: &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(30 * time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_MAX,
				CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_MAX, GroupByFields: []string{"resource.label.job_name"}},
			want: []got{
				{Resource: map[string]string{"job_name": "backup"}, Kind: "GAUGE INT64", Points: []string{"11:00 1", "10:30 1"}},
				{Resource: map[string]string{"job_name": "idle"}, Kind: "GAUGE INT64", Points: []string{"11:00 1"}},
				{Resource: map[string]string{"job_name": "report"}, Kind: "GAUGE INT64", Points: []string{"10:30 1"}},
			},
		},
		{
			// backup/europe-west1 points in (10:30, 11:00]: 10:31 1, 10:32 1, 10:33 0, 10:46 1,
			// 10:47 1, 10:48 0: mean 4/6.
			name:     "mean running",
			filter:   metricFilter(RunningExecutions, `resource.label.job_name = "backup"`, `resource.label.location != "us-central1"`),
			interval: interval("10:30", "11:00"),
			agg:      &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(30 * time.Minute), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_MEAN},
			want:     []got{{Resource: res("europe-west1", "backup"), Kind: "GAUGE DOUBLE", Points: []string{"11:00 0.67"}}},
		},
		{
			name:     "reduce count and mean",
			filter:   metricFilter(CompletedExecutionCount),
			interval: interval("10:00", "11:00"),
			agg: &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(time.Hour), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_SUM,
				CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_MEAN, GroupByFields: []string{"metric.label.result"}},
			want: []got{
				{Metric: lbl("result", "failed"), Kind: "DELTA DOUBLE", Points: []string{"10:00-11:00 1.00"}},
				{Metric: lbl("result", "succeeded"), Kind: "DELTA DOUBLE", Points: []string{"10:00-11:00 1.33"}},
			},
		},
		{
			name:     "headers only",
			filter:   metricFilter(CompletedExecutionCount, `resource.label.job_name = "report"`),
			interval: interval("10:00", "11:00"),
			view:     monitoringpb.ListTimeSeriesRequest_HEADERS,
			want:     []got{{Resource: res("europe-west1", "report"), Metric: lbl("result", "succeeded"), Kind: "DELTA INT64"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, err := e.list(context.Background(), &monitoringpb.ListTimeSeriesRequest{
				Name: "projects/proj", Filter: tt.filter, Interval: tt.interval, Aggregation: tt.agg, View: tt.view,
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarize(all)); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOutOfOrder records events out of time order, as concurrent executions may.
func TestOutOfOrder(t *testing.T) {
	e := newEnv(t, 0)
	e.store.ExecutionStarted("proj", "l", "j", at("10:05:00"))
	e.store.ExecutionCompleted("proj", "l", "j", "succeeded", at("10:07:30"))
	e.store.ExecutionStarted("proj", "l", "j", at("10:01:00"))
	e.store.ExecutionCompleted("proj", "l", "j", "failed", at("10:02:30"))
	e.clock.Set(at("10:30"))
	for _, tt := range []struct {
		name   string
		metric string
		want   []string
	}{
		{name: "running", metric: RunningExecutions, want: []string{"10:09 0", "10:08 1", "10:07 1", "10:06 1", "10:04 0", "10:03 1", "10:02 1"}},
		{name: "completions", metric: CompletedExecutionCount, want: []string{"10:07-10:08 1", "10:02-10:03 1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			all, err := e.list(context.Background(), &monitoringpb.ListTimeSeriesRequest{
				Name: "projects/proj", Filter: metricFilter(tt.metric, `resource.label.job_name = "j"`), Interval: interval("10:00", "10:30"),
			})
			if err != nil {
				t.Fatal(err)
			}
			var pts []string
			for _, g := range summarize(all) {
				pts = append(pts, g.Points...)
			}
			if tt.metric == CompletedExecutionCount {
				slices.SortFunc(pts, func(a, b string) int { return strings.Compare(b, a) })
			}
			if diff := cmp.Diff(tt.want, pts); diff != "" {
				t.Errorf("points (-want +got):\n%s", diff)
			}
		})
	}
}
