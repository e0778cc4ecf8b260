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
