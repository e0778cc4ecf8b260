package emulator_test

import (
	"context"
	"os/exec"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"

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
