package monitor

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

const benchProject = "runway-bench-proj"

var benchRegions = []string{"us-east1", "europe-west1", "asia-east1"}

// benchSchedules is the mix of the benchmark's jobs: from every minute to monthly.
var benchSchedules = []string{"*/5 * * * *", "0 * * * *", "17 * * * *", "30 2 * * *", "0 9 * * 1", "0 0 1 * *", "*/15 * * * *", "", "* * * * *", "45 */6 * * *"}

// benchEnv is the emulator with n Runway jobs in one project across three regions.
type benchEnv struct {
	clock   *clock.ManualClock
	clients *allclients.Clients
	inv     *inventory.Inventory
	jobs    []string // job ids, index i in region benchRegions[i%3]
}

func newBenchEnv(b *testing.B, n int, start time.Time) *benchEnv {
	clk := clock.NewManual(start)
	e := emulatortest.Start(b, emulator.Options{Clock: clk, OpDelay: time.Millisecond})
	ctx := context.Background()
	clients, err := allclients.Dial(ctx, emulatortest.Config(e, benchProject), gcp.All)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { clients.Close() })
	var inv strings.Builder
	inv.WriteString("inventory:\n")
	env := &benchEnv{clock: clk, clients: clients}
	for i := range n {
		env.jobs = append(env.jobs, fmt.Sprintf("job-%05d", i))
	}
	// The monitor watches every Runway job of the inventory's (project, region) pairs: three
	// workloads name the regions (an inventory of 10,000 entries is over its 1 MiB limit).
	for i, r := range benchRegions {
		fmt.Fprintf(&inv, "  - {name: job-%05d, type: job, project_id: 1, gcp_project: %s, regions: [%s], artifact_repository: us-east1-docker.pkg.dev/%s/job}\n",
			i, benchProject, r, benchProject)
	}
	env.inv, err = inventory.Parse("inventory.yml", []byte(inv.String()))
	if err != nil {
		b.Fatal(err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range env.jobs {
		g.Go(func() error {
			s := platform.Settings{Workload: id, Schedule: benchSchedules[i%len(benchSchedules)], ConcurrencyPolicy: "Forbid", CreatedAt: start.Add(-24 * time.Hour),
				Timeout: 10 * time.Minute, MaxRetries: 3,
				Monitoring: platform.Monitoring{Enabled: true, Grace: 10 * time.Minute, FailureThreshold: 1, RecoveryThreshold: 1, AlertOnFlaky: true},
				Owner:      platform.Owner{EmailHandle: "owner-" + id}}
			_, err := clients.Jobs.CreateJob(gctx, &runpb.CreateJobRequest{
				Parent: "projects/" + benchProject + "/locations/" + benchRegions[i%len(benchRegions)], JobId: id,
				Job: &runpb.Job{
					Labels:      map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: id},
					Annotations: map[string]string{platform.AnnotationSettings: s.Encode()},
					Template:    &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{Image: "example/job", Command: []string{"true"}}}}},
				},
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return env
}

// writeMinute loads, through the official client, the metrics of the minute ending at end: the
// jobs whose index is minute mod 60 completed an execution (every sixth failed, every fourth
// succeeded after a failed attempt), and every hundredth job runs.
func (e *benchEnv) writeMinute(b *testing.B, minute int, end time.Time) {
	var series []*monitoringpb.TimeSeries
	point := func(typ string, labels map[string]string, i int, gauge bool, v int64) {
		iv := &monitoringpb.TimeInterval{StartTime: timestamppb.New(end.Add(-time.Minute)), EndTime: timestamppb.New(end)}
		if gauge {
			iv.StartTime = nil
		}
		series = append(series, &monitoringpb.TimeSeries{
			Metric:   &metric.Metric{Type: typ, Labels: labels},
			Resource: &monitoredres.MonitoredResource{Type: "cloud_run_job", Labels: map[string]string{"project_id": benchProject, "location": benchRegions[i%len(benchRegions)], "job_name": e.jobs[i]}},
			Points:   []*monitoringpb.Point{{Interval: iv, Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}}}},
		})
	}
	for i := range e.jobs {
		if i%60 == minute%60 {
			result := "succeeded"
			if i%6 == 0 {
				result = "failed"
			}
			point(metricCompletedExecutions, map[string]string{"result": result}, i, false, 1)
			if i%4 == 0 {
				point(metricCompletedAttempts, map[string]string{"result": "failed", "attempt": "0"}, i, false, 1)
			}
		}
		if i%100 == 7 {
			point(metricRunningExecutions, nil, i, true, 1)
		}
	}
	ctx := context.Background()
	for chunk := range slices.Chunk(series, 200) {
		if err := e.clients.Metrics.CreateTimeSeries(ctx, &monitoringpb.CreateTimeSeriesRequest{Name: "projects/" + benchProject, TimeSeries: chunk}); err != nil {
			b.Fatal(err)
		}
	}
}

// peakHeap samples the heap in use until stop is called and returns the most seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkTick10kJobs is one steady-state tick of the monitor over 10,000 jobs in one project
// and three regions, against the emulator through the official clients: each minute about 170
// jobs completed an execution (a sixth of them failed) and 100 run. It reports the Cloud
// Monitoring calls and pages per tick (target: at most 4 calls), the execution reads, the
// time of the whole tick and of the pure evaluation (target: under 500 ms) and the peak heap
// in use during the ticks (target: under 200 MiB; the in-process emulator's 10,000 jobs
// included, heap-before-MiB is its share and the client's), with GOMEMLIMIT at 190 MiB.
func BenchmarkTick10kJobs(b *testing.B) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	env := newBenchEnv(b, 10_000, start)
	dir := b.TempDir()
	store, err := state.NewDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	counted := &counting{cloud: gcpCloud{env.clients}}
	h := newHandler(Config{IngestLag: 0}, counted, store, env.inv, notify.NewDispatcher(nil), nil, env.clock.Now, zerolog.Nop())
	h.log = zerolog.Nop()
	ctx := context.Background()
	env.clock.Set(start.Add(30 * time.Second))
	if _, err := h.tick(ctx); err != nil { // the first tick starts watching
		b.Fatal(err)
	}
	counted.metricCalls.Store(0)
	counted.metricPages.Store(0)
	counted.executionLists.Store(0)
	counted.schedulerReads.Store(0)
	var evalTime, tickTime time.Duration
	var peak uint64
	minute := 0
	// As the function runs it: GOMEMLIMIT a little under the instance's memory (here 200 MiB
	// for the monitor and the in-process emulator together).
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(190 << 20))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		minute++
		end := start.Add(time.Duration(minute) * time.Minute)
		env.writeMinute(b, minute, end)
		env.clock.Set(end.Add(30 * time.Second))
		stop := peakHeap()
		b.StartTimer()
		t0 := time.Now()
		st, err := h.tick(ctx)
		tickTime += time.Since(t0)
		b.StopTimer()
		peak = max(peak, stop())
		if err != nil {
			b.Fatal(err)
		}
		if st.Jobs != 10_000 {
			b.Fatalf("tick saw %d jobs, want 10000", st.Jobs)
		}
		evalTime += st.Evaluate
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(counted.metricCalls.Load())/n, "monitoring-calls/op")
	b.ReportMetric(float64(counted.metricPages.Load())/n, "monitoring-pages/op")
	b.ReportMetric(float64(counted.executionLists.Load())/n, "execution-reads/op")
	b.ReportMetric(float64(counted.schedulerReads.Load())/n, "scheduler-reads/op")
	b.ReportMetric(float64(tickTime.Microseconds())/1000/n, "tick-ms")
	b.ReportMetric(float64(evalTime.Microseconds())/1000/n, "evaluate-ms")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(base.HeapInuse)/(1<<20), "heap-before-MiB") // the emulator and its 10,000 jobs, mostly
	if calls := float64(counted.metricCalls.Load()) / n; calls > 4 {
		b.Errorf("%.1f Monitoring calls per tick, want at most 4", calls)
	}
}

// counting counts the calls made through a cloud, for the benchmarks.
type counting struct {
	cloud
	jobLists, executionLists, metricCalls, metricPages, schedulerReads atomic.Int64
}

func (c *counting) getSchedulerJob(ctx context.Context, name string) (*schedulerpb.Job, error) {
	c.schedulerReads.Add(1)
	return c.cloud.getSchedulerJob(ctx, name)
}

func (c *counting) listJobs(ctx context.Context, project, region string) ([]*runpb.Job, error) {
	c.jobLists.Add(1)
	return c.cloud.listJobs(ctx, project, region)
}

func (c *counting) listExecutions(ctx context.Context, job string, after time.Time) ([]*runpb.Execution, error) {
	c.executionLists.Add(1)
	return c.cloud.listExecutions(ctx, job, after)
}

func (c *counting) listTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) ([]*monitoringpb.TimeSeries, int, error) {
	c.metricCalls.Add(1)
	s, pages, err := c.cloud.listTimeSeries(ctx, req)
	c.metricPages.Add(int64(pages))
	return s, pages, err
}
