package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
)

func benchClients(b *testing.B) (*allclients.Clients, *runpb.Job) {
	b.Helper()
	e := emulatortest.Start(b, emulator.Options{OpDelay: time.Millisecond})
	cl, err := allclients.Dial(context.Background(), emulatortest.Config(e, project), gcp.All)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	ctx := context.Background()
	op, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: "bench", Job: &runpb.Job{
		Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{Image: "img", Command: []string{"true"}}}}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	job, err := op.Wait(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return cl, job
}

// BenchmarkRunJobTrue measures what a user of the emulator waits for: RunJob of `true` through
// the official client on the emulator's one port, op.Wait until the execution has succeeded.
// The fork_exec_true baseline, run in the same process, is the cost of starting `true` at all.
func BenchmarkRunJobTrue(b *testing.B) {
	b.Run("emulator", func(b *testing.B) {
		cl, job := benchClients(b)
		ctx := context.Background()
		for b.Loop() {
			op, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: job.Name})
			if err != nil {
				b.Fatal(err)
			}
			exec, err := op.Wait(ctx)
			if err != nil || exec.SucceededCount != 1 {
				b.Fatalf("execution %v, %v", exec, err)
			}
		}
	})
	b.Run("fork_exec_true", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Benchmark100Executions starts 100 executions at once and waits until every one has succeeded.
func Benchmark100Executions(b *testing.B) {
	cl, job := benchClients(b)
	ctx := context.Background()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for range 100 {
			wg.Go(func() {
				op, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: job.Name})
				if err == nil {
					_, err = op.Wait(ctx)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkListTimeSeries10kJobs is the monitor's one Cloud Monitoring call over 10,000 jobs
// (3 locations; one success each, every sixth job also a failure: 11,666 series) through the
// official client on the emulator's one port, interceptors and all, paged to the end. The
// monitoring package's benchmark of the same name measures the service on a bare gRPC server.
// It reports the median call (median-ms) besides the mean.
func BenchmarkListTimeSeries10kJobs(b *testing.B) {
	e := emulatortest.Start(b, emulator.Options{})
	cl, err := allclients.Dial(context.Background(), emulatortest.Config(e, project), gcp.Metrics)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	ctx := context.Background()
	end := time.Now().Truncate(time.Minute).Add(-time.Hour)
	iv := &monitoringpb.TimeInterval{StartTime: timestamppb.New(end.Add(-time.Minute)), EndTime: timestamppb.New(end)}
	locations := []string{"europe-west1", "us-central1", "asia-east1"}
	var batch []*monitoringpb.TimeSeries
	flush := func() {
		if err := cl.Metrics.CreateTimeSeries(ctx, &monitoringpb.CreateTimeSeriesRequest{Name: "projects/" + project, TimeSeries: batch}); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range 10_000 {
		results := []string{"succeeded"}
		if i%6 == 5 {
			results = append(results, "failed")
		}
		for _, r := range results {
			batch = append(batch, &monitoringpb.TimeSeries{
				Metric: &metric.Metric{Type: "run.googleapis.com/job/completed_execution_count", Labels: map[string]string{"result": r}},
				Resource: &monitoredres.MonitoredResource{Type: "cloud_run_job", Labels: map[string]string{
					"project_id": project, "location": locations[i%len(locations)], "job_name": fmt.Sprintf("job-%05d", i),
				}},
				Points: []*monitoringpb.Point{{Interval: iv, Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: 1}}}},
			})
			if len(batch) == 200 {
				flush()
			}
		}
	}
	if len(batch) > 0 {
		flush()
	}
	req := &monitoringpb.ListTimeSeriesRequest{
		Name:     "projects/" + project,
		Filter:   `metric.type = "run.googleapis.com/job/completed_execution_count" AND resource.type = "cloud_run_job"`,
		Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(end.Add(-24 * time.Hour)), EndTime: timestamppb.New(end)},
		Aggregation: &monitoringpb.Aggregation{
			AlignmentPeriod:    durationpb.New(24 * time.Hour),
			PerSeriesAligner:   monitoringpb.Aggregation_ALIGN_SUM,
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM,
			GroupByFields:      []string{"resource.label.job_name", "resource.label.location", "metric.label.result"},
		},
	}
	var times []time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		it := cl.Metrics.ListTimeSeries(ctx, req)
		n = 0
		for {
			_, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		times = append(times, time.Since(t0))
	}
	if n != 11_666 {
		b.Fatalf("%d series, want 11,666", n)
	}
	b.ReportMetric(float64(median(times).Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(n), "series")
}
