package emulator_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"

	"runwayjobs.dev/shared/gcp"
)

// PeerEmulatorEnv names the environment variable that points BenchmarkRunJobVsPeer at a built
// binary of the public Cloud Run Jobs emulator (github.com/matthewmarion/cloud-run-jobs-emulator).
const PeerEmulatorEnv = "RUNWAY_PEER_EMULATOR"

// BenchmarkRunJobVsPeer runs, interleaved in one process, RunJob of a `true` job through the
// official client and polls GetExecution until the execution has completed, against this
// emulator (in process) and against the public peer (a subprocess with EXECUTOR=subprocess).
// Each iteration is one run on each, in alternating order; it reports both medians and their
// ratio. Run it with -benchtime 40x. Without RUNWAY_PEER_EMULATOR it is skipped.
func BenchmarkRunJobVsPeer(b *testing.B) {
	bin := os.Getenv(PeerEmulatorEnv)
	if bin == "" {
		b.Skipf("%s is not set: point it at a built binary of github.com/matthewmarion/cloud-run-jobs-emulator to compare (docs/benchmarks.md)", PeerEmulatorEnv)
	}
	ctx := context.Background()
	ours, ourJob := benchClients(b)
	peer, peerJob := startPeer(b, bin)
	type target struct {
		cl      *gcp.Clients
		job     string
		samples []time.Duration
	}
	targets := []*target{{cl: ours.Clients, job: ourJob.Name}, {cl: peer, job: peerJob}}
	for _, t := range targets { // warm both up: connections, first fork
		for range 3 {
			if _, err := runAndPoll(ctx, t.cl, t.job); err != nil {
				b.Fatal(err)
			}
		}
	}
	i := 0
	for b.Loop() {
		for k := range targets {
			t := targets[(i+k)%2]
			d, err := runAndPoll(ctx, t.cl, t.job)
			if err != nil {
				b.Fatal(err)
			}
			t.samples = append(t.samples, d)
		}
		i++
	}
	om, pm := median(targets[0].samples), median(targets[1].samples)
	b.ReportMetric(om.Seconds()*1e3, "ours-ms")
	b.ReportMetric(pm.Seconds()*1e3, "peer-ms")
	b.ReportMetric(om.Seconds()/pm.Seconds(), "ours/peer")
}

// runAndPoll runs job and polls GetExecution until the execution has completed; it fails
// unless the execution succeeded.
func runAndPoll(ctx context.Context, cl *gcp.Clients, job string) (time.Duration, error) {
	start := time.Now()
	op, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: job})
	if err != nil {
		return 0, fmt.Errorf("RunJob %s: %w", job, err)
	}
	meta, err := op.Metadata()
	if err != nil || meta.GetName() == "" {
		return 0, fmt.Errorf("RunJob %s: no execution in the operation's metadata (%v)", job, err)
	}
	for {
		x, err := cl.Executions.GetExecution(ctx, &runpb.GetExecutionRequest{Name: meta.GetName()})
		if err != nil {
			return 0, fmt.Errorf("GetExecution %s: %w", meta.GetName(), err)
		}
		if x.GetCompletionTime() != nil {
			d := time.Since(start)
			if x.GetSucceededCount() != 1 {
				return 0, fmt.Errorf("execution %s did not succeed: %v", x.GetName(), x)
			}
			return d, nil
		}
		if time.Since(start) > 30*time.Second {
			return 0, fmt.Errorf("execution %s did not complete in 30 s", meta.GetName())
		}
	}
}

// startPeer starts the peer emulator on a free loopback port and returns clients and a job.
func startPeer(b *testing.B, bin string) (*gcp.Clients, string) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "EXECUTOR=subprocess", "LOG_LEVEL=error",
		"PROJECT_ID="+project, "REGION="+location, "JOBS_CONFIG="+filepath.Join(b.TempDir(), "none.yaml"))
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the peer emulator %s: %v", bin, err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	cl, err := gcp.Dial(context.Background(), gcp.Config{EmulatorHost: "127.0.0.1:" + strconv.Itoa(port), Project: project}, gcp.Jobs|gcp.Executions)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	spec := &runpb.Job{Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{
		Containers: []*runpb.Container{{Image: "img", Command: []string{"true"}}},
	}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		op, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: "bench", Job: spec})
		if err == nil {
			_, err = op.Wait(ctx)
		}
		cancel()
		if err == nil {
			return cl, parent + "/jobs/bench"
		}
		if time.Now().After(deadline) {
			b.Fatalf("the peer emulator did not answer CreateJob on port %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
