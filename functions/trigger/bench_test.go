package trigger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// BenchmarkRunRequest measures run requests against the in-process emulator through the
// official clients: "runjob" is from the delivery to RunJob issued (the execution's
// create_time: GetJob, the claim, under Forbid the policy lock and ListExecutions), "request"
// the whole delivery (plus the recorded outcome and the lock's release). It reports medians and
// 90th percentiles; ns/op is the mean of the whole delivery.
func BenchmarkRunRequest(b *testing.B) {
	for _, policy := range []string{"Allow", "Forbid"} {
		b.Run(policy, func(b *testing.B) {
			e := newEnv(b)
			e.createJob(b, "nightly", region2, platform.Settings{ConcurrencyPolicy: policy}, "true")
			ctx := context.Background()
			took := make([]time.Duration, 0, b.N)
			issued := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				ev := runEvent(b, "nightly", platform.RunRequest{RequestID: fmt.Sprint("bench-", i), Workload: "nightly"})
				start := time.Now()
				if err := e.h.Handle(ctx, ev); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				b.StopTimer()
				rec, _ := e.record(b, platform.RunRecordKey("nightly", fmt.Sprint("bench-", i)))
				if rec.Outcome != platform.RunStarted {
					b.Fatalf("request %d: %+v", i, rec)
				}
				x, err := e.cl.Executions.GetExecution(ctx, &runpb.GetExecutionRequest{Name: rec.Execution})
				if err != nil {
					b.Fatal(err)
				}
				issued = append(issued, x.CreateTime.AsTime().Sub(start))
				if policy == "Forbid" {
					e.waitCompleted(b, rec.Execution) // the next request must not be skipped
				}
				b.StartTimer()
			}
			b.StopTimer()
			reportPercentiles(b, "runjob", issued)
			reportPercentiles(b, "request", took)
		})
	}
}

func reportPercentiles(b *testing.B, what string, took []time.Duration) {
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(took[len(took)/2]), "ms-median/"+what)
	b.ReportMetric(ms(took[len(took)*9/10]), "ms-p90/"+what)
}

// BenchmarkClaim measures the claim itself on the local directory store: a Put of a new key
// with generation 0 (the winning delivery), and the same Put on a key that exists (what a
// duplicate delivery pays to learn it lost).
func BenchmarkClaim(b *testing.B) {
	store, err := state.NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	data := []byte(`{"request_id":"ci-1-2","workload":"nightly","trigger":"manual","outcome":"claimed","attempts":1}`)
	round := 0
	b.Run("new", func(b *testing.B) {
		round++ // the framework runs this function more than once: fresh keys each time
		for i := range b.N {
			if _, err := store.Put(ctx, platform.RunRecordKey("nightly", fmt.Sprintf("new-%d-%d", round, i)), data, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("taken", func(b *testing.B) {
		key := platform.RunRecordKey("nightly", "taken")
		if _, err := store.Put(ctx, key, data, 0); err != nil && !errors.Is(err, state.ErrPrecondition) {
			b.Fatal(err)
		}
		for range b.N {
			if _, err := store.Put(ctx, key, data, 0); !errors.Is(err, state.ErrPrecondition) {
				b.Fatalf("Put of a taken key = %v, want ErrPrecondition", err)
			}
		}
	})
}

// BenchmarkForbidHistory measures a Forbid request (from the delivery to the recorded
// outcome: GetJob, the claim, the policy lock, the run windows, ListExecutions, RunJob) on a job
// with 30 and with 3,000 past executions (started outside Runway, from the template), one
// every 10 minutes of the emulator's manual clock, in process. pages/op is the ListExecutions calls the emulator served per request: the look
// stops at the job's bound (platform.RunningSince), so neither figure grows with the history.
func BenchmarkForbidHistory(b *testing.B) {
	const step = 10 * time.Minute
	sizes := []int{30, 3000}
	envs := map[int]*env{}
	clocks := map[int]interface{ Advance(time.Duration) time.Time }{}
	jobs := map[int]*runpb.Job{}
	for _, n := range sizes { // set up once, on the parent benchmark
		e, clk, job := newHistoryEnv(b, "Forbid", listPage)
		for range n { // template runs (sleep 0), each over before the next step
			clk.Advance(step)
			if _, err := e.cl.Jobs.RunJob(context.Background(), &runpb.RunJobRequest{Name: job.Name}); err != nil {
				b.Fatal(err)
			}
		}
		for _, x := range e.executions(b, job.Name) {
			e.waitCompleted(b, x.Name)
		}
		envs[n], clocks[n], jobs[n] = e, clk, job
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("past=%d", n), func(b *testing.B) {
			e, clk := envs[n], clocks[n]
			ctx := context.Background()
			pages := e.listCalls(b)
			round := fmt.Sprint(time.Now().UnixNano()) // the framework may call this more than once
			b.ResetTimer()
			for i := range b.N {
				clk.Advance(step)
				id := fmt.Sprint("bench-", round, "-", i)
				if err := e.h.Handle(ctx, runEvent(b, "nightly", platform.RunRequest{RequestID: id, Workload: "nightly"})); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rec, _ := e.record(b, platform.RunRecordKey("nightly", id))
				if rec.Outcome != platform.RunStarted {
					b.Fatalf("request %d: %+v", i, rec)
				}
				e.waitCompleted(b, rec.Execution)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(pages())/float64(b.N), "pages/op")
		})
	}
	// Both sizes in turn, request after request, so that both see the same load on the machine:
	// the medians and their ratio (the goal: at most 1.2).
	b.Run("interleaved", func(b *testing.B) {
		ctx := context.Background()
		took := map[int][]time.Duration{}
		round := fmt.Sprint(time.Now().UnixNano())
		for i := range b.N {
			for _, n := range sizes {
				e := envs[n]
				clocks[n].Advance(step)
				id := fmt.Sprint("mix-", round, "-", i)
				start := time.Now()
				if err := e.h.Handle(ctx, runEvent(b, "nightly", platform.RunRequest{RequestID: id, Workload: "nightly"})); err != nil {
					b.Fatal(err)
				}
				took[n] = append(took[n], time.Since(start))
				b.StopTimer()
				rec, _ := e.record(b, platform.RunRecordKey("nightly", id))
				if rec.Outcome != platform.RunStarted {
					b.Fatalf("request %d: %+v", i, rec)
				}
				e.waitCompleted(b, rec.Execution)
				b.StartTimer()
			}
		}
		b.StopTimer()
		median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
		m30, m3000 := median(took[sizes[0]]), median(took[sizes[1]])
		b.ReportMetric(float64(m30)/float64(time.Millisecond), fmt.Sprintf("ms-median/past=%d", sizes[0]))
		b.ReportMetric(float64(m3000)/float64(time.Millisecond), fmt.Sprintf("ms-median/past=%d", sizes[1]))
		b.ReportMetric(float64(m3000)/float64(m30), "ratio")
	})
	// The look alone (the run windows and ListExecutions), the part that grew with history.
	for _, n := range sizes {
		b.Run(fmt.Sprintf("look/past=%d", n), func(b *testing.B) {
			e := envs[n]
			ctx := context.Background()
			pages := e.listCalls(b)
			b.ResetTimer()
			for range b.N {
				active, _, err := e.h.active(ctx, jobs[n], "nightly")
				if err != nil || len(active) != 0 {
					b.Fatalf("active = %v, %v; want none", active, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(pages())/float64(b.N), "pages/op")
		})
	}
}
