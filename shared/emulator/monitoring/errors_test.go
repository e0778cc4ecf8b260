package monitoring

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestBadFilters checks that filters the emulator can't honour are refused with InvalidArgument
// (NotFound for an unknown metric) and the position of the offending text.
func TestBadFilters(t *testing.T) {
	e := newEnv(t, 0)
	e.record(fixture...)
	e.clock.Set(at("11:00"))
	count := fmt.Sprintf("metric.type = %q", CompletedExecutionCount)
	tests := []struct {
		name   string
		filter string
		want   codes.Code
		at     string // the error names the position of the first occurrence of this text
		pos    int    // or this position (1-based), when at is empty
		msg    string // and contains this
	}{
		{name: "empty", filter: "", want: codes.InvalidArgument, msg: "filter is required"},
		{name: "no metric type", filter: `resource.type = "cloud_run_job"`, want: codes.InvalidArgument, pos: 1, msg: "must name one metric type"},
		{name: "OR", filter: count + ` OR resource.type = "cloud_run_job"`, want: codes.InvalidArgument, at: "OR", msg: "OR is not supported"},
		{name: "NOT", filter: count + ` AND NOT resource.label.job_name = "a"`, want: codes.InvalidArgument, at: "NOT", msg: "NOT is not supported"},
		{name: "parentheses", filter: count + ` AND (resource.label.job_name = "a")`, want: codes.InvalidArgument, at: "(", msg: "parentheses"},
		{name: "has operator", filter: count + ` AND resource.label.job_name : "a"`, want: codes.InvalidArgument, at: ":", msg: "expected = or !="},
		{name: "juxtaposition", filter: count + ` resource.type = "cloud_run_job"`, want: codes.InvalidArgument, at: "resource.type", msg: "expected AND"},
		{name: "dangling AND", filter: count + ` AND `, want: codes.InvalidArgument, pos: len(count) + 6, msg: "found the end of the filter"},
		{name: "unterminated string", filter: `metric.type = "run.googleapis.com/job/completed_execution_count`, want: codes.InvalidArgument, at: `"`, msg: "unterminated string"},
		{name: "unknown selector", filter: count + ` AND resource.zone = "a"`, want: codes.InvalidArgument, at: "resource.zone", msg: "unknown selector"},
		{name: "unknown resource label", filter: count + ` AND resource.label.zone = "a"`, want: codes.InvalidArgument, at: "resource.label.zone", msg: `has no label "zone"`},
		{name: "label the metric lacks", filter: fmt.Sprintf("metric.type = %q AND metric.label.result = \"failed\"", RunningExecutions), want: codes.InvalidArgument, at: "metric.label.result", msg: "it has none"},
		{name: "unknown function", filter: count + ` AND resource.label.job_name = starts("a")`, want: codes.InvalidArgument, at: "starts", msg: "unknown function"},
		{name: "function with two arguments", filter: count + ` AND resource.label.job_name = starts_with("a", "b")`, want: codes.InvalidArgument, at: "starts_with", msg: "exactly one argument"},
		{name: "bad regex", filter: count + ` AND resource.label.job_name = monitoring.regex.full_match("a(")`, want: codes.InvalidArgument, at: "monitoring.regex", msg: "missing closing )"},
		{name: "unquoted value", filter: count + ` AND resource.label.job_name = backup`, want: codes.InvalidArgument, at: "backup", msg: "unknown function"},
		{name: "metric type twice", filter: count + " AND " + count, want: codes.InvalidArgument, pos: len(count) + 6, msg: "twice"},
		{name: "metric type by prefix", filter: `metric.type = starts_with("run.googleapis.com/")`, want: codes.InvalidArgument, pos: 1, msg: "compared with ="},
		{name: "unknown metric", filter: `metric.type = "run.googleapis.com/job/nothing"`, want: codes.NotFound, msg: "Cannot find metric"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.list(context.Background(), &monitoringpb.ListTimeSeriesRequest{
				Name: "projects/proj", Filter: tt.filter, Interval: interval("10:00", "11:00"),
			})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
			}
			msg := status.Convert(err).Message()
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q does not contain %q", msg, tt.msg)
			}
			pos := tt.pos
			if tt.at != "" {
				pos = strings.Index(tt.filter, tt.at) + 1
			}
			if pos > 0 && !strings.Contains(msg, fmt.Sprintf("position %d:", pos)) {
				t.Errorf("message %q does not give position %d", msg, pos)
			}
		})
	}
}

// TestBadRequests checks the validation of the rest of ListTimeSeries.
func TestBadRequests(t *testing.T) {
	e := newEnv(t, 0)
	e.clock.Set(at("11:00"))
	valid := &monitoringpb.ListTimeSeriesRequest{
		Name: "projects/proj", Filter: metricFilter(CompletedExecutionCount), Interval: interval("10:00", "11:00"),
		Aggregation: monitorAggregation(time.Hour),
	}
	agg := func(f func(a *monitoringpb.Aggregation)) func(r *monitoringpb.ListTimeSeriesRequest) {
		return func(r *monitoringpb.ListTimeSeriesRequest) { f(r.Aggregation) }
	}
	tests := []struct {
		name   string
		mutate func(r *monitoringpb.ListTimeSeriesRequest)
		want   codes.Code
		msg    string
	}{
		{name: "valid", mutate: func(r *monitoringpb.ListTimeSeriesRequest) {}, want: codes.OK},
		{name: "organization", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.Name = "organizations/1" }, want: codes.InvalidArgument, msg: "projects only"},
		{name: "bad name", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.Name = "proj" }, want: badName(), msg: badNameMsg("projects/PROJECT_ID")},
		{name: "no interval", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.Interval = nil }, want: codes.InvalidArgument, msg: "end_time is required"},
		{name: "start after end", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.Interval = interval("11:00", "10:00") }, want: codes.InvalidArgument, msg: "later than"},
		{name: "aligner without period", mutate: agg(func(a *monitoringpb.Aggregation) { a.AlignmentPeriod = nil }), want: codes.InvalidArgument, msg: "alignment_period is required"},
		{name: "period under a minute", mutate: agg(func(a *monitoringpb.Aggregation) { a.AlignmentPeriod = durationpb.New(30 * time.Second) }), want: codes.InvalidArgument, msg: "between 60s"},
		{name: "reducer without aligner", mutate: agg(func(a *monitoringpb.Aggregation) { a.PerSeriesAligner = monitoringpb.Aggregation_ALIGN_NONE }), want: codes.InvalidArgument, msg: "needs a per_series_aligner"},
		{name: "unsupported aligner", mutate: agg(func(a *monitoringpb.Aggregation) { a.PerSeriesAligner = monitoringpb.Aggregation_ALIGN_RATE }), want: codes.Unimplemented, msg: "ALIGN_RATE"},
		{name: "unsupported reducer", mutate: agg(func(a *monitoringpb.Aggregation) {
			a.CrossSeriesReducer = monitoringpb.Aggregation_REDUCE_PERCENTILE_99
		}), want: codes.Unimplemented, msg: "REDUCE_PERCENTILE_99"},
		{name: "ALIGN_DELTA on a gauge", mutate: func(r *monitoringpb.ListTimeSeriesRequest) {
			r.Filter = metricFilter(RunningExecutions)
			r.Aggregation.PerSeriesAligner = monitoringpb.Aggregation_ALIGN_DELTA
			r.Aggregation.GroupByFields = nil
		}, want: codes.InvalidArgument, msg: "not valid for GAUGE"},
		{name: "unknown group by field", mutate: agg(func(a *monitoringpb.Aggregation) { a.GroupByFields = []string{"resource.label.zone"} }), want: codes.InvalidArgument, msg: "group_by_fields[0]"},
		{name: "group by metric type", mutate: agg(func(a *monitoringpb.Aggregation) { a.GroupByFields = []string{"metric.type"} }), want: codes.InvalidArgument, msg: "group_by_fields[0]"},
		{name: "order_by", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.OrderBy = "time" }, want: codes.InvalidArgument, msg: "order_by"},
		{name: "secondary aggregation", mutate: func(r *monitoringpb.ListTimeSeriesRequest) {
			r.SecondaryAggregation = &monitoringpb.Aggregation{PerSeriesAligner: monitoringpb.Aggregation_ALIGN_SUM}
		}, want: codes.Unimplemented, msg: "secondary_aggregation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := proto.CloneOf(valid)
			tt.mutate(r)
			_, err := e.list(context.Background(), r)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q does not contain %q", msg, tt.msg)
			}
		})
	}
}

// TestCreateTimeSeriesValidation checks the writes the emulator refuses.
func TestCreateTimeSeriesValidation(t *testing.T) {
	e := newEnv(t, 0)
	point := func(from, to string, v int64) []*monitoringpb.Point {
		iv := &monitoringpb.TimeInterval{EndTime: timestamppb.New(at(to))}
		if from != "" {
			iv.StartTime = timestamppb.New(at(from))
		}
		return []*monitoringpb.Point{{Interval: iv, Value: int64Value(v)}}
	}
	valid := func() *monitoringpb.TimeSeries {
		return &monitoringpb.TimeSeries{
			Metric:   &metric.Metric{Type: CompletedExecutionCount, Labels: lbl("result", "succeeded")},
			Resource: &monitoredres.MonitoredResource{Type: ResourceType, Labels: res("europe-west1", "backup")},
			Points:   point("10:00", "10:01", 2),
		}
	}
	tests := []struct {
		name   string
		series func() []*monitoringpb.TimeSeries
		want   codes.Code
		msg    string
	}{
		{name: "valid", series: func() []*monitoringpb.TimeSeries { return []*monitoringpb.TimeSeries{valid()} }, want: codes.OK},
		{name: "none", series: func() []*monitoringpb.TimeSeries { return nil }, want: codes.InvalidArgument, msg: "between 1 and 200"},
		{name: "too many", series: func() []*monitoringpb.TimeSeries {
			out := make([]*monitoringpb.TimeSeries, 201)
			for i := range out {
				out[i] = valid()
				out[i].Resource.Labels["job_name"] = fmt.Sprint("job-", i)
			}
			return out
		}, want: codes.InvalidArgument, msg: "between 1 and 200"},
		{name: "unknown metric", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.Metric.Type = "custom.googleapis.com/x"
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "time_series[0].metric.type"},
		{name: "other resource", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.Resource.Type = "global"
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "resource.type"},
		{name: "missing job_name", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			delete(ts.Resource.Labels, "job_name")
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "resource.labels.job_name is required"},
		{name: "other project", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.Resource.Labels["project_id"] = "other"
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "differs from the project"},
		{name: "missing result", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.Metric.Labels = nil
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "metric.labels.result is required"},
		{name: "unknown metric label", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.Metric.Labels["attempt"] = "1"
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: `unknown label "attempt"`},
		{name: "two points", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.Points = append(ts.Points, point("10:01", "10:02", 1)...)
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "exactly one"},
		{name: "double value", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.Points[0].Value = &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: 1}}
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "int64_value"},
		{name: "wrong kind", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.MetricKind = metric.MetricDescriptor_GAUGE
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "metric_kind"},
		{name: "DELTA without start", series: func() []*monitoringpb.TimeSeries {
			ts := valid()
			ts.Points = point("", "10:01", 1)
			return []*monitoringpb.TimeSeries{ts}
		}, want: codes.InvalidArgument, msg: "start_time before its end_time"},
		{name: "GAUGE over an interval", series: func() []*monitoringpb.TimeSeries {
			return []*monitoringpb.TimeSeries{{
				Metric:   &metric.Metric{Type: RunningExecutions},
				Resource: &monitoredres.MonitoredResource{Type: ResourceType, Labels: res("europe-west1", "backup")},
				Points:   point("10:00", "10:01", 1),
			}}
		}, want: codes.InvalidArgument, msg: "must equal its end_time"},
		{name: "same series twice", series: func() []*monitoringpb.TimeSeries { return []*monitoringpb.TimeSeries{valid(), valid()} }, want: codes.InvalidArgument, msg: "time_series[1]: the request writes this time series twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.client.CreateTimeSeries(context.Background(), &monitoringpb.CreateTimeSeriesRequest{Name: "projects/proj", TimeSeries: tt.series()})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q does not contain %q", msg, tt.msg)
			}
		})
	}
	// Only the valid write landed (all or nothing for the others): 2 completions.
	e.clock.Set(at("11:00"))
	all, err := e.list(context.Background(), &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: metricFilter(CompletedExecutionCount), Interval: interval("10:00", "11:00")})
	if err != nil {
		t.Fatal(err)
	}
	if got := summarize(all); len(got) != 1 || len(got[0].Points) != 1 || got[0].Points[0] != "10:00-10:01 2" {
		t.Errorf("after the writes: %v, want one point 10:00-10:01 2", got)
	}
}
