package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"

	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
)

// TestEmulatorCommand starts `runwayctl emulator` as a user would, reads the ready line, runs
// a job through the official clients with RUNWAY_EMULATOR_HOST's address, and stops it with
// Ctrl-C (SIGINT), expecting a clean exit.
func TestEmulatorCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "emulator", "--addr", "127.0.0.1:0", "--op-delay", "10ms", "--log-dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the ready line: %v", err)
	}
	m := regexp.MustCompile(`^runway emulator ready on (127\.0\.0\.1:\d+) \(export RUNWAY_EMULATOR_HOST=127\.0\.0\.1:\d+\)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("ready line = %q", line)
	}
	cl, err := allclients.Dial(ctx, gcp.ConfigFromEnv(func(k string) (string, bool) {
		return map[string]string{gcp.EmulatorHostEnv: m[1]}[k], k == gcp.EmulatorHostEnv
	}, "e2e"), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	op, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/e2e/locations/us-east1", JobId: "hello", Job: &runpb.Job{
		Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{Image: "img", Command: []string{"true"}}}}},
	}})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job, err := op.Wait(ctx)
	if err != nil {
		t.Fatalf("CreateJob wait: %v", err)
	}
	run, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: job.Name})
	if err != nil {
		t.Fatalf("RunJob: %v", err)
	}
	exec, err := run.Wait(ctx)
	if err != nil || exec.SucceededCount != 1 {
		t.Fatalf("execution = %v, %v; want succeeded", exec, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("runwayctl emulator after Ctrl-C: %v, want exit 0", err)
	}
}
