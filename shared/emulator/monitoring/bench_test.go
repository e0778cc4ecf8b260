package monitoring

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// BenchmarkListTimeSeries10kJobs is the monitor's one call for a project of 10,000 jobs, each
// with one to six completions in the last day (every sixth a failure), through the official
// client, paging to the end. Target: under 100 ms per call. It reports the median call time
// (median-ms) besides the mean (ns/op). "in process" calls the Service without gRPC: the
// emulator's own share of the time, the rest being transport and the client decoding ~16,000
// series.
func BenchmarkListTimeSeries10kJobs(b *testing.B) {
	e := newEnv(b, 0)
	now := at("10:00").Add(24 * time.Hour)
	locations := []string{"europe-west1", "us-central1", "asia-east1"}
	n := 0
	for i := range 10_000 {
		job, loc := fmt.Sprintf("job-%05d", i), locations[i%len(locations)]
		runs := i%6 + 1
		for r := range runs {
			start := now.Add(-24 * time.Hour).Add(time.Duration(r*4*60+i%240) * time.Minute)
			result := "succeeded"
			if n%6 == 5 {
				result = "failed"
			}
			n++
			e.store.ExecutionStarted("proj", loc, job, start)
			e.store.TaskAttemptCompleted("proj", loc, job, result, 0, start.Add(90*time.Second))
			e.store.ExecutionCompleted("proj", loc, job, result, start.Add(2*time.Minute))
		}
	}
	e.clock.Set(now)
	ctx := context.Background()
	for _, bc := range []struct {
		name      string
		pageSize  int32
		inProcess bool // call the Service directly: the emulator's own share, without gRPC and decoding
	}{
		{name: "default page size"},
		{name: "pages of 1000", pageSize: 1000},
		{name: "in process", inProcess: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := &monitoringpb.ListTimeSeriesRequest{
				Name:        "projects/proj",
				Filter:      metricFilter(CompletedExecutionCount, `resource.type = "cloud_run_job"`),
				Interval:    &monitoringpb.TimeInterval{StartTime: timestamppb.New(now.Add(-24 * time.Hour)), EndTime: timestamppb.New(now)},
				Aggregation: monitorAggregation(24 * time.Hour),
				PageSize:    bc.pageSize,
			}
			var times []time.Duration
			series := 0
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				if bc.inProcess {
					resp, err := e.svc.ListTimeSeries(ctx, req)
					if err != nil {
						b.Fatal(err)
					}
					times = append(times, time.Since(t0))
					series = len(resp.ProtoReflect().GetUnknown()) // bytes here: the series are encoded
					continue
				}
				all, err := e.list(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
				series = len(all)
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			if bc.inProcess {
				b.ReportMetric(float64(series), "bytes")
			} else {
				b.ReportMetric(float64(series), "series")
			}
		})
	}
}
