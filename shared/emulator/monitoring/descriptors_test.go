package monitoring

import (
	"context"
	"errors"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/iterator"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func (e *env) metricTypes(t *testing.T, req *monitoringpb.ListMetricDescriptorsRequest) []string {
	t.Helper()
	var out []string
	it := e.client.ListMetricDescriptors(context.Background(), req)
	for {
		d, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.GetType())
	}
}

func TestMetricDescriptors(t *testing.T) {
	e := newEnv(t, 3*time.Minute)
	ctx := context.Background()
	e.store.ExecutionStarted("active", "l", "j", at("09:59"))
	e.store.ExecutionCompleted("active", "l", "j", "succeeded", at("10:00"))
	e.clock.Set(at("11:00"))
	if _, err := e.client.CreateMetricDescriptor(ctx, &monitoringpb.CreateMetricDescriptorRequest{
		Name: "projects/proj",
		MetricDescriptor: &metric.MetricDescriptor{
			Type: "custom.googleapis.com/runway/lag", MetricKind: metric.MetricDescriptor_GAUGE, ValueType: metric.MetricDescriptor_DOUBLE,
		},
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		req  *monitoringpb.ListMetricDescriptorsRequest
		want []string
	}{
		{name: "all", req: &monitoringpb.ListMetricDescriptorsRequest{Name: "projects/proj"},
			want: []string{"custom.googleapis.com/runway/lag", CompletedExecutionCount, CompletedTaskAttemptCount, RunningExecutions}},
		{name: "paged", req: &monitoringpb.ListMetricDescriptorsRequest{Name: "projects/proj", PageSize: 1},
			want: []string{"custom.googleapis.com/runway/lag", CompletedExecutionCount, CompletedTaskAttemptCount, RunningExecutions}},
		{name: "by prefix", req: &monitoringpb.ListMetricDescriptorsRequest{Name: "projects/proj", Filter: `metric.type = starts_with("run.googleapis.com/job/completed")`},
			want: []string{CompletedExecutionCount, CompletedTaskAttemptCount}},
		{name: "other project has no custom metric", req: &monitoringpb.ListMetricDescriptorsRequest{Name: "projects/other"},
			want: []string{CompletedExecutionCount, CompletedTaskAttemptCount, RunningExecutions}},
		{name: "active only", req: &monitoringpb.ListMetricDescriptorsRequest{Name: "projects/active", ActiveOnly: true},
			want: []string{CompletedExecutionCount, RunningExecutions}},
		{name: "active only, no data", req: &monitoringpb.ListMetricDescriptorsRequest{Name: "projects/proj", ActiveOnly: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, e.metricTypes(t, tt.req)); diff != "" {
				t.Errorf("types (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("get", func(t *testing.T) {
		d, err := e.client.GetMetricDescriptor(ctx, &monitoringpb.GetMetricDescriptorRequest{Name: "projects/proj/metricDescriptors/" + CompletedTaskAttemptCount})
		if err != nil {
			t.Fatal(err)
		}
		var labels []string
		for _, l := range d.GetLabels() {
			labels = append(labels, l.GetKey())
		}
		if d.GetMetricKind() != metric.MetricDescriptor_DELTA || d.GetValueType() != metric.MetricDescriptor_INT64 ||
			!cmp.Equal(labels, []string{"result", "attempt"}) || !cmp.Equal(d.GetMonitoredResourceTypes(), []string{ResourceType}) ||
			d.GetMetadata().GetIngestDelay().AsDuration() != 3*time.Minute || d.GetMetadata().GetSamplePeriod().AsDuration() != time.Minute ||
			d.GetName() != "projects/proj/metricDescriptors/"+CompletedTaskAttemptCount {
			t.Errorf("descriptor = %v", d)
		}
	})
	t.Run("get unknown", func(t *testing.T) {
		_, err := e.client.GetMetricDescriptor(ctx, &monitoringpb.GetMetricDescriptorRequest{Name: "projects/proj/metricDescriptors/run.googleapis.com/job/nothing"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("err = %v, want NotFound", err)
		}
	})
	t.Run("custom metric has no series", func(t *testing.T) {
		all, err := e.list(ctx, &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: `metric.type = "custom.googleapis.com/runway/lag"`, Interval: interval("10:00", "11:00")})
		if err != nil || len(all) != 0 {
			t.Errorf("ListTimeSeries = %v, %v; want nothing", all, err)
		}
	})
	t.Run("custom metric aggregated", func(t *testing.T) {
		_, err := e.list(ctx, &monitoringpb.ListTimeSeriesRequest{
			Name: "projects/proj", Filter: `metric.type = "custom.googleapis.com/runway/lag"`, Interval: interval("10:00", "11:00"),
			Aggregation: &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(time.Hour), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_DELTA},
		})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("ALIGN_DELTA on a custom GAUGE: err = %v, want InvalidArgument", err)
		}
	})
	t.Run("create outside user-defined prefixes", func(t *testing.T) {
		_, err := e.client.CreateMetricDescriptor(ctx, &monitoringpb.CreateMetricDescriptorRequest{Name: "projects/proj", MetricDescriptor: &metric.MetricDescriptor{
			Type: "run.googleapis.com/job/mine", MetricKind: metric.MetricDescriptor_GAUGE, ValueType: metric.MetricDescriptor_INT64,
		}})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("err = %v, want InvalidArgument", err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := e.client.DeleteMetricDescriptor(ctx, &monitoringpb.DeleteMetricDescriptorRequest{Name: "projects/proj/metricDescriptors/" + CompletedExecutionCount}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("deleting a built-in metric: err = %v, want InvalidArgument", err)
		}
		if err := e.client.DeleteMetricDescriptor(ctx, &monitoringpb.DeleteMetricDescriptorRequest{Name: "projects/proj/metricDescriptors/custom.googleapis.com/runway/lag"}); err != nil {
			t.Fatal(err)
		}
		if err := e.client.DeleteMetricDescriptor(ctx, &monitoringpb.DeleteMetricDescriptorRequest{Name: "projects/proj/metricDescriptors/custom.googleapis.com/runway/lag"}); status.Code(err) != codes.NotFound {
			t.Errorf("deleting twice: err = %v, want NotFound", err)
		}
		if got := e.metricTypes(t, &monitoringpb.ListMetricDescriptorsRequest{Name: "projects/proj"}); len(got) != 3 {
			t.Errorf("after delete: %v", got)
		}
	})
}

func TestMonitoredResourceDescriptors(t *testing.T) {
	e := newEnv(t, 0)
	ctx := context.Background()
	tests := []struct {
		name   string
		filter string
		want   []string
		code   codes.Code
	}{
		{name: "all", want: []string{ResourceType}},
		{name: "by type", filter: `resource.type = "cloud_run_job"`, want: []string{ResourceType}},
		{name: "other type", filter: `resource.type = starts_with("gce_")`},
		{name: "label filter refused", filter: `resource.label.job_name = "x"`, code: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var types []string
			it := e.client.ListMonitoredResourceDescriptors(ctx, &monitoringpb.ListMonitoredResourceDescriptorsRequest{Name: "projects/proj", Filter: tt.filter})
			for {
				d, err := it.Next()
				if errors.Is(err, iterator.Done) {
					break
				}
				if status.Code(err) != tt.code {
					t.Fatalf("err = %v, want %v", err, tt.code)
				}
				if err != nil {
					return
				}
				types = append(types, d.GetType())
			}
			if diff := cmp.Diff(tt.want, types); diff != "" {
				t.Errorf("types (-want +got):\n%s", diff)
			}
		})
	}
	d, err := e.client.GetMonitoredResourceDescriptor(ctx, &monitoringpb.GetMonitoredResourceDescriptorRequest{Name: "projects/proj/monitoredResourceDescriptors/cloud_run_job"})
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, l := range d.GetLabels() {
		labels = append(labels, l.GetKey())
	}
	if diff := cmp.Diff([]string{"project_id", "location", "job_name"}, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if _, err := e.client.GetMonitoredResourceDescriptor(ctx, &monitoringpb.GetMonitoredResourceDescriptorRequest{Name: "projects/proj/monitoredResourceDescriptors/gce_instance"}); status.Code(err) != codes.NotFound {
		t.Errorf("gce_instance: err = %v, want NotFound", err)
	}
}

func TestUnimplemented(t *testing.T) {
	e := newEnv(t, 0)
	err := e.client.CreateServiceTimeSeries(context.Background(), &monitoringpb.CreateTimeSeriesRequest{Name: "projects/proj"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("CreateServiceTimeSeries: err = %v, want Unimplemented", err)
	}
}
