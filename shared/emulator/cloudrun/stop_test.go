package cloudrun

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"

	"runwayjobs.dev/shared/emulator/clock"
)

// waitFile waits (real time, bounded) until path exists: the attempt is ready for signals.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared: the attempt did not start", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTimeoutFollowsTheManualClock checks that a task timeout is measured on the emulator's
// clock: a hung attempt runs on while the manual clock stands still, and is stopped (SIGTERM,
// then SIGKILL after the grace if it ignores SIGTERM) once the clock passes its timeout.
func TestTimeoutFollowsTheManualClock(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	start := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		script     string // runs after the ready file is written; $1 is the ready file
		wantSignal syscall.Signal
		wantExit   int32
		wantLog    []string
		minTook    time.Duration // real time from the jump to the end
	}{
		{name: "dies on SIGTERM", script: `exec sleep 60`, wantSignal: syscall.SIGTERM,
			wantLog: []string{"timed out after 1m0s: SIGTERM sent to the process group, which exited"}},
		{name: "cleans up on SIGTERM", script: `trap 'echo cleaning up; exit 3' TERM; while :; do sleep 0.02; done`, wantExit: 3,
			wantLog: []string{"cleaning up", "which exited"}},
		{name: "ignores SIGTERM", script: `trap 'echo ignoring TERM' TERM; while :; do sleep 0.02; done`, wantSignal: syscall.SIGKILL,
			wantLog: []string{"ignoring TERM", "SIGKILL 300ms later"}, minTook: grace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := clock.NewManual(start)
			e := newEnv(t, Options{Clock: c, OpDelay: time.Millisecond, TermGrace: grace})
			ready := filepath.Join(t.TempDir(), "ready")
			j := e.createJob(t, "hung", withTimeout(withRetries(jobSpec("sh", "-c", `: > "$0"; `+tt.script, ready), 0), time.Minute))
			ctx := ctxT(t)
			op, err := e.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: j.Name})
			if err != nil {
				t.Fatal(err)
			}
			waitFile(t, ready)
			// Real time passes, the emulator's clock does not: the attempt must still run.
			time.Sleep(50 * time.Millisecond)
			c.Advance(59 * time.Second)
			time.Sleep(50 * time.Millisecond)
			meta, err := op.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			x, err := e.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: meta.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			if x.RunningCount != 1 || x.CompletionTime != nil {
				t.Fatalf("before the timeout on the emulator's clock: running %d, completed %v", x.RunningCount, x.CompletionTime)
			}
			jumped := time.Now()
			c.Advance(2 * time.Second)
			_, werr := op.Wait(ctx)
			took := time.Since(jumped)
			if codeOf(werr) != codes.FailedPrecondition {
				t.Fatalf("RunJob = %v, want a failed execution", werr)
			}
			if took < tt.minTook {
				t.Errorf("stopped %v after the jump, before the %v grace", took, tt.minTook)
			}
			tk := e.listTasks(t, x.Name)[0]
			r := tk.LastAttemptResult
			if r.GetStatus().GetCode() != int32(codes.DeadlineExceeded) || r.GetTermSignal() != int32(tt.wantSignal) || r.GetExitCode() != tt.wantExit {
				t.Errorf("last attempt result = %v, want DeadlineExceeded, signal %d, exit code %d", r, tt.wantSignal, tt.wantExit)
			}
			log := e.logs(t, x.LogUri)
			for _, want := range tt.wantLog {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}

// TestCancelSendsSIGTERMFirst checks that CancelExecution gives the attempt the grace to exit.
func TestCancelSendsSIGTERMFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond, TermGrace: 5 * time.Second})
	ready := filepath.Join(t.TempDir(), "ready")
	j := e.createJob(t, "graceful", jobSpec("sh", "-c", `trap 'echo flushed; exit 0' TERM; : > "$0"; while :; do sleep 0.02; done`, ready))
	ctx := ctxT(t)
	op, err := e.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: j.Name})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := op.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, ready)
	began := time.Now()
	cop, err := e.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: meta.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	x, err := cop.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 4*time.Second {
		t.Errorf("the cancellation took %v: the attempt was not sent SIGTERM", took)
	}
	if got := e.logs(t, x.LogUri); !strings.Contains(got, "flushed") || !strings.Contains(got, "cancelled: SIGTERM sent") {
		t.Errorf("log = %q, want the attempt's SIGTERM handler to have run", got)
	}
}
