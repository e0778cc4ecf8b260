package cloudrun

import (
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
)

// BenchmarkRunJobTrue measures RunJob of `true` through the official client, op.Wait included,
// until the execution has succeeded.
func BenchmarkRunJobTrue(b *testing.B) {
	e := newEnv(b, Options{OpDelay: time.Millisecond})
	j := e.createJob(b, "bench", jobSpec("true"))
	ctx := ctxT(b)
	b.ResetTimer()
	for range b.N {
		op, err := e.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: j.Name})
		if err != nil {
			b.Fatal(err)
		}
		x, err := op.Wait(ctx)
		if err != nil || x.SucceededCount != 1 {
			b.Fatalf("execution: %v, %v", x, err)
		}
	}
}

// BenchmarkCreateGetJob measures CreateJob (without waiting for its operation) and GetJob.
func BenchmarkCreateGetJob(b *testing.B) {
	e := newEnv(b, Options{OpDelay: time.Millisecond})
	ctx := ctxT(b)
	spec := jobSpec("true")
	b.ResetTimer()
	for i := range b.N {
		id := "job-" + strconv.Itoa(i)
		if _, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: testParent, JobId: id, Job: spec}); err != nil {
			b.Fatal(err)
		}
		if _, err := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: testParent + "/jobs/" + id}); err != nil {
			b.Fatal(err)
		}
	}
}
