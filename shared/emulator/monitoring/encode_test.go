package monitoring

import (
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestEncoding holds the wire encoder to the TimeSeries messages the renderer builds: decoding
// the encoded page must give the same messages.
func TestEncoding(t *testing.T) {
	e := newEnv(t, 0)
	e.record(fixture...)
	e.store.TaskAttemptCompleted("proj", "europe-west1", "backup", "failed", 2, at("10:31:00"))
	e.clock.Set(at("11:00"))
	period := func(d time.Duration, al monitoringpb.Aggregation_Aligner, red monitoringpb.Aggregation_Reducer, by ...string) *monitoringpb.Aggregation {
		return &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(d), PerSeriesAligner: al, CrossSeriesReducer: red, GroupByFields: by}
	}
	tests := []struct {
		name     string
		metric   string
		agg      *monitoringpb.Aggregation
		view     monitoringpb.ListTimeSeriesRequest_TimeSeriesView
		pageSize int
		from     [2]int // row, point
	}{
		{name: "raw counts", metric: CompletedExecutionCount},
		{name: "raw gauge", metric: RunningExecutions},
		{name: "raw, two labels", metric: CompletedTaskAttemptCount},
		{name: "headers", metric: CompletedExecutionCount, view: monitoringpb.ListTimeSeriesRequest_HEADERS},
		{name: "part of a page", metric: RunningExecutions, pageSize: 3, from: [2]int{1, 4}},
		{name: "aligned", metric: CompletedExecutionCount, agg: period(20*time.Minute, monitoringpb.Aggregation_ALIGN_SUM, monitoringpb.Aggregation_REDUCE_NONE)},
		{name: "monitor", metric: CompletedExecutionCount, agg: monitorAggregation(time.Hour)},
		{name: "grouped", metric: CompletedTaskAttemptCount, agg: period(time.Hour, monitoringpb.Aggregation_ALIGN_SUM, monitoringpb.Aggregation_REDUCE_SUM, "metric.label.attempt", "resource.type", "resource.label.project_id")},
		{name: "one series", metric: CompletedExecutionCount, agg: period(time.Hour, monitoringpb.Aggregation_ALIGN_SUM, monitoringpb.Aggregation_REDUCE_SUM)},
		{name: "double", metric: RunningExecutions, agg: period(10*time.Minute, monitoringpb.Aggregation_ALIGN_MEAN, monitoringpb.Aggregation_REDUCE_MEAN, "resource.label.location")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := e.svc.parseQuery(&monitoringpb.ListTimeSeriesRequest{
				Name: "projects/proj", Filter: metricFilter(tt.metric), Interval: interval("10:00", "11:00"), Aggregation: tt.agg, View: tt.view,
			})
			if err != nil {
				t.Fatal(err)
			}
			rows := e.store.list(q, at("11:00").UnixNano())
			size := tt.pageSize
			if size == 0 {
				size = maxTimeSeriesPage
			}
			r := renderer{q: q}
			want, wsi, wpi, wdone := r.page(rows, tt.from[0], tt.from[1], size)
			enc := encoder{q: q}
			b, si, pi, done := enc.page(nil, rows, tt.from[0], tt.from[1], size)
			var got monitoringpb.ListTimeSeriesResponse
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatal("the case renders nothing")
			}
			if diff := cmp.Diff(&monitoringpb.ListTimeSeriesResponse{TimeSeries: want}, &got, protocmp.Transform()); diff != "" {
				t.Errorf("decoded series differ from the rendered ones (-want +got):\n%s", diff)
			}
			if [3]any{si, pi, done} != [3]any{wsi, wpi, wdone} {
				t.Errorf("encoder stops at %d, %d, %v; renderer at %d, %d, %v", si, pi, done, wsi, wpi, wdone)
			}
		})
	}
}

func TestSplitNanos(t *testing.T) {
	for _, tt := range []struct {
		name string
		n    int64
		sec  int64
		ns   int32
	}{
		{name: "zero", n: 0},
		{name: "positive", n: 1_500_000_000, sec: 1, ns: 500_000_000},
		{name: "negative", n: -1_500_000_000, sec: -2, ns: 500_000_000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if sec, ns := splitNanos(tt.n); sec != tt.sec || ns != tt.ns {
				t.Errorf("splitNanos(%d) = %d, %d; want %d, %d", tt.n, sec, ns, tt.sec, tt.ns)
			}
		})
	}
}
