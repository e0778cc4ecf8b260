package cloudrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator/clock"
)

func TestRunJobSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	ctx := ctxT(t)
	j := e.createJob(t, "ok", jobSpec("true"))
	x, err := e.runJob(t, j.Name, nil)
	if err != nil {
		t.Fatalf("RunJob: %v", err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"name", regexp.MustCompile(`^` + j.Name + `/executions/ok-[a-z0-9]{5}$`).MatchString(x.Name)},
		{"job", x.Job == "ok"},
		{"counts", x.TaskCount == 1 && x.SucceededCount == 1 && x.FailedCount == 0 && x.RunningCount == 0 && x.CancelledCount == 0},
		{"times", x.CreateTime != nil && x.StartTime != nil && x.CompletionTime != nil},
		{"not reconciling", !x.Reconciling},
		{"completed", condOf(x.Conditions, "Completed").GetState() == runpb.Condition_CONDITION_SUCCEEDED},
		{"started", condOf(x.Conditions, "Started").GetState() == runpb.Condition_CONDITION_SUCCEEDED},
		{"resources", condOf(x.Conditions, "ResourcesAvailable").GetState() == runpb.Condition_CONDITION_SUCCEEDED},
		{"log_uri", x.LogUri == e.url+"/emulator/v1/logs/"+x.Name},
		{"template", x.Template.GetContainers()[0].GetCommand()[0] == "true"},
		{"etag", strings.HasPrefix(x.Etag, `"`)},
		{"parallelism", x.Parallelism == 1},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: wrong in %v", c.name, x)
		}
	}
	got, err := e.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: x.Name})
	if err != nil || got.Etag != x.Etag {
		t.Errorf("GetExecution = %v, %v; want the operation's response", got, err)
	}
	after, _ := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: j.Name})
	ref := after.LatestCreatedExecution
	if after.ExecutionCount != 1 || ref.GetName() != x.Name || ref.GetCompletionStatus() != runpb.ExecutionReference_EXECUTION_SUCCEEDED || ref.GetCompletionTime() == nil {
		t.Errorf("job after the run: execution_count %d, latest %v", after.ExecutionCount, ref)
	}
	if after.Etag == j.Etag {
		t.Error("the job's etag did not change with its execution")
	}
	tasks := e.listTasks(t, x.Name)
	if len(tasks) != 1 {
		t.Fatalf("%d tasks, want 1", len(tasks))
	}
	tk := tasks[0]
	if tk.Name != x.Name+"/tasks/"+filepath.Base(x.Name)+"-task0" || tk.Index != 0 || tk.Retried != 0 ||
		tk.Job != "ok" || tk.Execution != filepath.Base(x.Name) || tk.StartTime == nil || tk.CompletionTime == nil ||
		tk.LastAttemptResult.GetExitCode() != 0 || tk.LastAttemptResult.GetStatus().GetCode() != 0 ||
		condOf(tk.Conditions, "Completed").GetState() != runpb.Condition_CONDITION_SUCCEEDED || tk.MaxRetries != 3 {
		t.Errorf("task = %v", tk)
	}
	if got, err := e.tasks.GetTask(ctx, &runpb.GetTaskRequest{Name: tk.Name}); err != nil || got.Uid != tk.Uid {
		t.Errorf("GetTask = %v, %v", got, err)
	}
	if _, err := e.tasks.GetTask(ctx, &runpb.GetTaskRequest{Name: x.Name + "/tasks/nope"}); codeOf(err) != codes.NotFound {
		t.Errorf("GetTask of a missing task = %v, want NotFound", err)
	}
	want := []string{"started p/us-central1/ok", "attempt p/us-central1/ok succeeded 0", "completed p/us-central1/ok succeeded"}
	if got := e.rec.forJob("ok"); !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
}

func TestRunJobErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	j := e.createJob(t, "errs", jobSpec("true"))
	tests := []struct {
		name string
		req  *runpb.RunJobRequest
		want codes.Code
	}{
		{name: "missing job", req: &runpb.RunJobRequest{Name: testParent + "/jobs/absent"}, want: codes.NotFound},
		{name: "bad name", req: &runpb.RunJobRequest{Name: "absent"}, want: badName()},
		{name: "stale etag", req: &runpb.RunJobRequest{Name: j.Name, Etag: `"old"`}, want: codes.Aborted},
		{name: "task_count too big", req: &runpb.RunJobRequest{Name: j.Name, Overrides: &runpb.RunJobRequest_Overrides{TaskCount: 10001}}, want: codes.InvalidArgument},
		{name: "negative timeout", req: &runpb.RunJobRequest{Name: j.Name, Overrides: &runpb.RunJobRequest_Overrides{Timeout: durationpb.New(-time.Second)}}, want: codes.InvalidArgument},
		{name: "args and clear_args", req: &runpb.RunJobRequest{Name: j.Name, Overrides: &runpb.RunJobRequest_Overrides{
			ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Args: []string{"a"}, ClearArgs: true}},
		}}, want: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.jobs.RunJob(ctxT(t), tt.req); codeOf(err) != tt.want {
				t.Errorf("RunJob = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	tests := []struct {
		name        string
		job         *runpb.Job
		wantErr     bool
		wantCounts  [3]int32 // succeeded, failed, retried
		wantRetried []int32  // per task
		wantEvents  []string
	}{
		{
			name:        "fails on attempt 0, succeeds on attempt 1",
			job:         jobSpec("sh", "-c", `test "$CLOUD_RUN_TASK_ATTEMPT" -ge 1`),
			wantCounts:  [3]int32{1, 0, 1},
			wantRetried: []int32{1},
			wantEvents:  []string{"started", "attempt failed 0", "attempt succeeded 1", "completed succeeded"},
		},
		{
			name:        "exhausts its retries",
			job:         withRetries(jobSpec("false"), 2),
			wantErr:     true,
			wantCounts:  [3]int32{0, 1, 1},
			wantRetried: []int32{2},
			wantEvents:  []string{"started", "attempt failed 0", "attempt failed 1", "attempt failed 2", "completed failed"},
		},
		{
			name:        "no retries",
			job:         withRetries(jobSpec("false"), 0),
			wantErr:     true,
			wantCounts:  [3]int32{0, 1, 0},
			wantRetried: []int32{0},
			wantEvents:  []string{"started", "attempt failed 0", "completed failed"},
		},
		{
			name:        "one task of three fails, the others still run",
			job:         withTasks(withRetries(jobSpec("sh", "-c", `test "$CLOUD_RUN_TASK_INDEX" -ne 0`), 0), 3, 1),
			wantErr:     true,
			wantCounts:  [3]int32{2, 1, 0},
			wantRetried: []int32{0, 0, 0},
			wantEvents:  []string{"started", "attempt failed 0", "attempt succeeded 0", "attempt succeeded 0", "completed failed"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "retry-" + strconv.Itoa(i)
			j := e.createJob(t, id, tt.job)
			x, err := e.runJob(t, j.Name, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("RunJob: %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && codeOf(err) != codes.FailedPrecondition {
				t.Errorf("failed execution's operation error = %v, want FailedPrecondition", err)
			}
			if got := [3]int32{x.SucceededCount, x.FailedCount, x.RetriedCount}; got != tt.wantCounts {
				t.Errorf("succeeded, failed, retried = %v, want %v", got, tt.wantCounts)
			}
			var retried []int32
			for _, tk := range e.listTasks(t, x.Name) {
				retried = append(retried, tk.Retried)
			}
			if !slices.Equal(retried, tt.wantRetried) {
				t.Errorf("tasks retried %v, want %v", retried, tt.wantRetried)
			}
			completed := condOf(x.Conditions, "Completed")
			after, _ := e.jobs.GetJob(ctxT(t), &runpb.GetJobRequest{Name: j.Name})
			if tt.wantErr {
				if completed.GetState() != runpb.Condition_CONDITION_FAILED || !strings.Contains(completed.GetMessage(), "-task0 failed") {
					t.Errorf("Completed condition = %v", completed)
				}
				if after.LatestCreatedExecution.GetCompletionStatus() != runpb.ExecutionReference_EXECUTION_FAILED {
					t.Errorf("job's latest execution = %v, want failed", after.LatestCreatedExecution)
				}
			}
			var events []string
			for _, ev := range e.rec.forJob(id) {
				events = append(events, strings.Replace(ev, " p/us-central1/"+id, "", 1))
			}
			if !slices.Equal(events, tt.wantEvents) {
				t.Errorf("recorded %q, want %q", events, tt.wantEvents)
			}
		})
	}
}

// processGone reports whether pid no longer runs (a zombie counts as gone).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	j := e.createJob(t, "slow", withTimeout(withRetries(jobSpec("sh", "-c", `sleep 30 & echo $! > `+pidFile+`; wait`), 0), time.Second))
	began := time.Now()
	x, err := e.runJob(t, j.Name, nil)
	if codeOf(err) != codes.FailedPrecondition {
		t.Fatalf("RunJob = %v, want a failed execution", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the execution took %v; the timeout is 1s", took)
	}
	tk := e.listTasks(t, x.Name)[0]
	if r := tk.LastAttemptResult; r.GetStatus().GetCode() != int32(codes.DeadlineExceeded) || r.GetTermSignal() != int32(syscall.SIGTERM) {
		t.Errorf("last attempt result = %v, want DeadlineExceeded and SIGTERM", r)
	}
	if !strings.Contains(condOf(x.Conditions, "Completed").GetMessage(), "timeout") {
		t.Errorf("Completed condition = %v, want the timeout", condOf(x.Conditions, "Completed"))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the child sleep (pid %d) survived the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.logs(t, x.LogUri); !strings.Contains(got, "timed out") {
		t.Errorf("log = %q, want the timeout noted", got)
	}
}

func TestLeftoverChildrenDieWithTheMainProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The main process exits at once, leaving a child that holds the output pipe.
	j := e.createJob(t, "orphan", jobSpec("sh", "-c", `sleep 30 & echo $! > `+pidFile+`; echo done`))
	began := time.Now()
	x, err := e.runJob(t, j.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the execution took %v: the leftover child held it", took)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for pid > 0 && !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the leftover sleep (pid %d) survived", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.logs(t, x.LogUri); !strings.Contains(got, "done") {
		t.Errorf("log = %q", got)
	}
}

func TestParallelism(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	tests := []struct {
		name        string
		tasks       int32
		parallelism int32
		want        int
	}{
		{name: "4 tasks, parallelism 2", tasks: 4, parallelism: 2, want: 2},
		{name: "4 tasks, parallelism 0 (all)", tasks: 4, parallelism: 0, want: 4},
		{name: "3 tasks, parallelism 1", tasks: 3, parallelism: 1, want: 1},
		{name: "2 tasks, parallelism 5", tasks: 2, parallelism: 5, want: 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// Each task marks itself running, counts the running tasks, and stays a while.
			script := `cd "$DIR" && touch run.$CLOUD_RUN_TASK_INDEX && ls | grep -c '^run\.' > seen.$CLOUD_RUN_TASK_INDEX && sleep 0.6 && rm run.$CLOUD_RUN_TASK_INDEX`
			spec := withTasks(jobSpec("sh", "-c", script), tt.tasks, tt.parallelism)
			spec.Template.Template.Containers[0].Env = []*runpb.EnvVar{{Name: "DIR", Values: &runpb.EnvVar_Value{Value: dir}}}
			j := e.createJob(t, "par-"+strconv.Itoa(i), spec)
			x, err := e.runJob(t, j.Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantPar := min(tt.tasks, tt.parallelism)
			if tt.parallelism == 0 {
				wantPar = tt.tasks
			}
			if x.Parallelism != wantPar || x.SucceededCount != tt.tasks {
				t.Errorf("parallelism %d, succeeded %d; want %d, %d", x.Parallelism, x.SucceededCount, wantPar, tt.tasks)
			}
			most := 0
			for k := range int(tt.tasks) {
				b, err := os.ReadFile(filepath.Join(dir, "seen."+strconv.Itoa(k)))
				if err != nil {
					t.Fatal(err)
				}
				n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				most = max(most, n)
			}
			if most != tt.want {
				t.Errorf("at most %d tasks ran at once, want %d", most, tt.want)
			}
		})
	}
}

func TestCancelExecution(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	ctx := ctxT(t)
	j := e.createJob(t, "cancel", withTasks(jobSpec("sleep", "30"), 3, 1))
	runOp, err := e.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: j.Name})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := runOp.Metadata()
	if err != nil || meta == nil {
		t.Fatalf("RunJob metadata = %v, %v", meta, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		x, err := e.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: meta.Name})
		if err != nil {
			t.Fatal(err)
		}
		if x.RunningCount == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the execution never ran a task")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := e.execs.DeleteExecution(ctx, &runpb.DeleteExecutionRequest{Name: meta.Name}); codeOf(err) != codes.FailedPrecondition {
		t.Errorf("DeleteExecution while running = %v, want FailedPrecondition", err)
	}
	if _, err := e.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: meta.Name, Etag: `"old"`}); codeOf(err) != codes.Aborted {
		t.Errorf("CancelExecution with a stale etag = %v, want Aborted", err)
	}
	began := time.Now()
	cop, err := e.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: meta.Name})
	if err != nil {
		t.Fatal(err)
	}
	x, err := cop.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("cancelling took %v", took)
	}
	completed := condOf(x.Conditions, "Completed")
	if x.CancelledCount != 3 || x.SucceededCount != 0 || x.RunningCount != 0 || x.CompletionTime == nil ||
		completed.GetState() != runpb.Condition_CONDITION_FAILED || completed.GetExecutionReason() != runpb.Condition_CANCELLED {
		t.Errorf("cancelled execution = %v", x)
	}
	// RunJob's operation ends with the cancelled execution, not an error.
	rx, err := runOp.Wait(ctx)
	if err != nil || rx.CancelledCount != 3 {
		t.Errorf("RunJob operation after cancel = %v, %v", rx, err)
	}
	after, _ := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: j.Name})
	if after.LatestCreatedExecution.GetCompletionStatus() != runpb.ExecutionReference_EXECUTION_CANCELLED {
		t.Errorf("job's latest execution = %v, want cancelled", after.LatestCreatedExecution)
	}
	for _, tk := range e.listTasks(t, x.Name) {
		if condOf(tk.Conditions, "Completed").GetExecutionReason() != runpb.Condition_CANCELLED {
			t.Errorf("task %d conditions = %v", tk.Index, tk.Conditions)
		}
	}
	if _, err := e.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: meta.Name}); codeOf(err) != codes.FailedPrecondition {
		t.Errorf("cancelling again = %v, want FailedPrecondition", err)
	}
	want := []string{"started p/us-central1/cancel", "attempt p/us-central1/cancel failed 0", "completed p/us-central1/cancel cancelled"}
	if got := e.rec.forJob("cancel"); !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	dop, err := e.execs.DeleteExecution(ctx, &runpb.DeleteExecutionRequest{Name: meta.Name, Etag: x.Etag})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := dop.Wait(ctx); err != nil || d.DeleteTime == nil {
		t.Errorf("DeleteExecution = %v, %v", d, err)
	}
	if _, err := e.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: meta.Name}); codeOf(err) != codes.NotFound {
		t.Errorf("GetExecution after delete = %v, want NotFound", err)
	}
}

func TestOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	j := jobSpec("sh", "-c", `echo "args=$* A=$A B=$B C=$C"`, "sh")
	j.Template.Template.Containers[0].Args = []string{"x", "y"}
	j.Template.Template.Containers[0].Env = []*runpb.EnvVar{
		{Name: "A", Values: &runpb.EnvVar_Value{Value: "1"}},
		{Name: "B", Values: &runpb.EnvVar_Value{Value: "2"}},
	}
	j = e.createJob(t, "over", j)
	co := func(c *runpb.RunJobRequest_Overrides_ContainerOverride) *runpb.RunJobRequest_Overrides {
		return &runpb.RunJobRequest_Overrides{ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{c}}
	}
	tests := []struct {
		name        string
		ov          *runpb.RunJobRequest_Overrides
		wantLog     string
		wantTasks   int32
		wantTimeout time.Duration
	}{
		{name: "none", ov: nil, wantLog: "args=x y A=1 B=2 C=", wantTasks: 1, wantTimeout: 600 * time.Second},
		{name: "args replace", ov: co(&runpb.RunJobRequest_Overrides_ContainerOverride{Args: []string{"z"}}), wantLog: "args=z A=1 B=2 C=", wantTasks: 1, wantTimeout: 600 * time.Second},
		{name: "clear_args", ov: co(&runpb.RunJobRequest_Overrides_ContainerOverride{ClearArgs: true}), wantLog: "args= A=1 B=2 C=", wantTasks: 1, wantTimeout: 600 * time.Second},
		{name: "env merged", ov: co(&runpb.RunJobRequest_Overrides_ContainerOverride{Env: []*runpb.EnvVar{
			{Name: "A", Values: &runpb.EnvVar_Value{Value: "9"}},
			{Name: "C", Values: &runpb.EnvVar_Value{Value: "3"}},
		}}), wantLog: "args=x y A=9 B=2 C=3", wantTasks: 1, wantTimeout: 600 * time.Second},
		{name: "task_count and timeout", ov: &runpb.RunJobRequest_Overrides{TaskCount: 3, Timeout: durationpb.New(30 * time.Second)}, wantLog: "args=x y A=1 B=2 C=", wantTasks: 3, wantTimeout: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := e.runJob(t, j.Name, tt.ov)
			if err != nil {
				t.Fatal(err)
			}
			if x.TaskCount != tt.wantTasks || x.SucceededCount != tt.wantTasks || len(e.listTasks(t, x.Name)) != int(tt.wantTasks) {
				t.Errorf("task_count %d, succeeded %d, want %d", x.TaskCount, x.SucceededCount, tt.wantTasks)
			}
			if got := x.Template.Timeout.AsDuration(); got != tt.wantTimeout {
				t.Errorf("timeout %v, want %v", got, tt.wantTimeout)
			}
			if got := e.logs(t, x.LogUri); strings.Count(got, tt.wantLog+"\n") != int(tt.wantTasks) {
				t.Errorf("log = %q, want %q in each task", got, tt.wantLog)
			}
		})
	}
	after, _ := e.jobs.GetJob(ctxT(t), &runpb.GetJobRequest{Name: j.Name})
	if args := after.Template.Template.Containers[0].Args; !slices.Equal(args, []string{"x", "y"}) || len(after.Template.Template.Containers[0].Env) != 2 {
		t.Errorf("overrides changed the job: %v", after.Template.Template.Containers[0])
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	j := withTasks(jobSpec("sh", "-c", "env | sort"), 2, 1)
	j.Template.Template.Containers[0].Env = []*runpb.EnvVar{
		{Name: "MINE", Values: &runpb.EnvVar_Value{Value: "yes"}},
		{Name: "SECRET", Values: &runpb.EnvVar_ValueSource{ValueSource: &runpb.EnvVarSource{SecretKeyRef: &runpb.SecretKeySelector{Secret: "s", Version: "1"}}}},
	}
	j = e.createJob(t, "envjob", j)
	x, err := e.runJob(t, j.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	exec := filepath.Base(x.Name)
	for i := range 2 {
		got := e.logs(t, x.LogUri+"?task="+strconv.Itoa(i))
		for _, want := range []string{
			"CLOUD_RUN_JOB=envjob\n", "CLOUD_RUN_EXECUTION=" + exec + "\n", "CLOUD_RUN_TASK_INDEX=" + strconv.Itoa(i) + "\n",
			"CLOUD_RUN_TASK_ATTEMPT=0\n", "CLOUD_RUN_TASK_COUNT=2\n", "MINE=yes\n", "PATH=", "HOME=", "references a secret",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("task %d environment lacks %q:\n%s", i, want, got)
			}
		}
		if strings.Contains(got, "SECRET=") {
			t.Errorf("task %d: the secret variable is set", i)
		}
		if strings.Count(got, "=== ") != 1 {
			t.Errorf("?task=%d served %d attempts", i, strings.Count(got, "=== "))
		}
	}
}

func TestNoCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	j := e.createJob(t, "nocmd", withRetries(jobSpec(), 0))
	x, err := e.runJob(t, j.Name, nil)
	if codeOf(err) != codes.FailedPrecondition {
		t.Fatalf("RunJob = %v, want a failed execution", err)
	}
	if got := e.logs(t, x.LogUri); !strings.Contains(got, "neither command nor args") {
		t.Errorf("log = %q, want the reason", got)
	}
	// args alone: args[0] is the program.
	j2 := jobSpec()
	j2.Template.Template.Containers[0].Args = []string{"sh", "-c", "echo from-args"}
	j2 = e.createJob(t, "argsonly", j2)
	x, err = e.runJob(t, j2.Name, nil)
	if err != nil || !strings.Contains(e.logs(t, x.LogUri), "from-args") {
		t.Errorf("args-only job: %v", err)
	}
	// A program that does not exist fails the attempt.
	j3 := e.createJob(t, "missing", withRetries(jobSpec("/nonexistent/program"), 0))
	x, err = e.runJob(t, j3.Name, nil)
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(e.logs(t, x.LogUri), "cannot start") {
		t.Errorf("missing program: %v", err)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond, MaxLogBytes: 64})
	j := e.createJob(t, "logs", jobSpec("sh", "-c", `echo "attempt $CLOUD_RUN_TASK_ATTEMPT"; head -c 1000 /dev/zero | tr '\0' x; test "$CLOUD_RUN_TASK_ATTEMPT" -ge 1`))
	x, err := e.runJob(t, j.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := e.logs(t, x.LogUri)
	task := filepath.Base(x.Name) + "-task0"
	for _, want := range []string{"=== " + task + " attempt 0 ===\nattempt 0\n", "=== " + task + " attempt 1 ===\nattempt 1\n", "output truncated"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "x"); n > 2*64 {
		t.Errorf("%d bytes of output kept, want at most MaxLogBytes per attempt", n)
	}
	for _, tt := range []struct {
		name string
		path string
		want int
	}{
		{name: "unknown execution", path: "/emulator/v1/logs/" + j.Name + "/executions/nope", want: 404},
		{name: "bad task", path: "/emulator/v1/logs/" + x.Name + "?task=x", want: 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := httpGet(e.url + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if resp != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.path, resp, tt.want)
			}
		})
	}
}

func TestListExecutionsPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	ctx := ctxT(t)
	a := e.createJob(t, "list-a", jobSpec("true"))
	b := e.createJob(t, "list-b", jobSpec("true"))
	var want []string
	for range 5 {
		x, err := e.runJob(t, a.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{x.Name}, want...)
	}
	if _, err := e.runJob(t, b.Name, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		parent   string
		pageSize int
		wantLen  int
		want     codes.Code
	}{
		{name: "one job, pages of 2", parent: a.Name, pageSize: 2, wantLen: 5},
		{name: "every job", parent: testParent + "/jobs/-", pageSize: 4, wantLen: 6},
		{name: "missing job", parent: testParent + "/jobs/absent", pageSize: 2, want: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			pager := iterator.NewPager(e.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: tt.parent}), tt.pageSize, "")
			for {
				var page []*runpb.Execution
				next, err := pager.NextPage(&page)
				if codeOf(err) != tt.want {
					t.Fatalf("ListExecutions = %v, want %v", err, tt.want)
				}
				if err != nil {
					return
				}
				if len(page) > tt.pageSize {
					t.Errorf("page of %d, want at most %d", len(page), tt.pageSize)
				}
				for _, x := range page {
					names = append(names, x.Name)
				}
				if next == "" {
					break
				}
			}
			if len(names) != tt.wantLen {
				t.Errorf("%d executions, want %d", len(names), tt.wantLen)
			}
			if tt.parent == a.Name && !slices.Equal(names, want) {
				t.Errorf("order %v, want newest first %v", names, want)
			}
		})
	}
	// Tasks across every execution of a job.
	it := e.tasks.ListTasks(ctx, &runpb.ListTasksRequest{Parent: a.Name + "/executions/-"})
	n := 0
	for {
		_, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Errorf("%d tasks across the job's executions, want 5", n)
	}
}

func TestManyExecutionsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	j := e.createJob(t, "many", jobSpec("true"))
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := ctxT(t)
			op, err := e.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: j.Name})
			if err != nil {
				errs <- err
				return
			}
			x, err := op.Wait(ctx)
			if err == nil && x.SucceededCount != 1 {
				err = fmt.Errorf("execution %s: succeeded %d", x.Name, x.SucceededCount)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	after, _ := e.jobs.GetJob(ctxT(t), &runpb.GetJobRequest{Name: j.Name})
	if after.ExecutionCount != n {
		t.Errorf("execution_count %d, want %d", after.ExecutionCount, n)
	}
	started, completed := 0, 0
	for _, ev := range e.rec.forJob("many") {
		switch {
		case strings.HasPrefix(ev, "started"):
			started++
		case strings.HasPrefix(ev, "completed") && strings.HasSuffix(ev, "succeeded"):
			completed++
		}
	}
	if started != n || completed != n {
		t.Errorf("recorded %d started, %d succeeded; want %d each", started, completed, n)
	}
}

func TestCloseKillsRunningAttempts(t *testing.T) {
	t.Parallel()
	svc := New(Options{})
	pidFile := filepath.Join(t.TempDir(), "pid")
	k := jobKey{"p", "l", "close"}
	j, err := normalizeJob(jobSpec("sh", "-c", `sleep 30 & echo $! > `+pidFile+`; wait`))
	if err != nil {
		t.Fatal(err)
	}
	svc.mu.Lock()
	svc.jobs[k.name()] = svc.newJob(k, j)
	svc.mu.Unlock()
	if _, err := svc.runJob(&runpb.RunJobRequest{Name: k.name()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the attempt never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	logDir := svc.logDir
	began := time.Now()
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Close took %v", took)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("pid %d survived Close", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(logDir); !os.IsNotExist(err) {
		t.Errorf("the temporary log directory %s is still there (%v)", logDir, err)
	}
	if _, err := svc.runJob(&runpb.RunJobRequest{Name: k.name()}); codeOf(err) != codes.Unavailable {
		t.Errorf("RunJob after Close = %v, want Unavailable", err)
	}
}

func TestManualClockTimestamps(t *testing.T) {
	t.Parallel()
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	e := newEnv(t, Options{Clock: clock.NewManual(at), OpDelay: time.Millisecond})
	j := e.createJob(t, "clocked", jobSpec("sleep", "0.2"))
	x, err := e.runJob(t, j.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	tk := e.listTasks(t, x.Name)[0]
	for name, got := range map[string]time.Time{
		"execution create_time":     x.CreateTime.AsTime(),
		"execution start_time":      x.StartTime.AsTime(),
		"execution completion_time": x.CompletionTime.AsTime(),
		"task start_time":           tk.StartTime.AsTime(),
		"task completion_time":      tk.CompletionTime.AsTime(),
		"Completed transition":      condOf(x.Conditions, "Completed").LastTransitionTime.AsTime(),
	} {
		if !got.Equal(at) {
			t.Errorf("%s = %v, want the manual clock's %v", name, got, at)
		}
	}
}

func TestSilentAttemptHasNoLogFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, Options{OpDelay: time.Millisecond, LogDir: dir})
	j := e.createJob(t, "silent", jobSpec("true"))
	x, err := e.runJob(t, j.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "=== " + filepath.Base(x.Name) + "-task0 attempt 0 ===\n"
	if got := e.logs(t, x.LogUri); got != want {
		t.Errorf("logs of a silent attempt: %q, want %q", got, want)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*"))
	if err != nil || len(files) != 0 {
		t.Errorf("a silent attempt left log files %v (%v)", files, err)
	}
	// An attempt with output still gets its file.
	j = e.createJob(t, "loud", jobSpec("echo", "hello"))
	if x, err = e.runJob(t, j.Name, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.logs(t, x.LogUri); !strings.HasSuffix(got, "===\nhello\n") {
		t.Errorf("logs: %q, want the attempt's output", got)
	}
}

func TestRunJobAnswersAfterTheFirstStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	j := e.createJob(t, "started", jobSpec("sleep", "30"))
	ctx := ctxT(t)
	// The service's own RunJob, so that nothing between its answer and the check below gives
	// the runner time to catch up.
	op, err := e.svc.runJob(&runpb.RunJobRequest{Name: j.Name})
	if err != nil {
		t.Fatal(err)
	}
	meta := &runpb.Execution{}
	if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
		t.Fatal(err)
	}
	e.svc.mu.Lock()
	phase, running := e.svc.execs[meta.Name].tasks[0].phase, e.svc.execs[meta.Name].exec.RunningCount
	e.svc.mu.Unlock()
	if phase != taskRunning || running != 1 {
		t.Errorf("right after RunJob: task phase %v, running_count %d; want running, 1", phase, running)
	}
	cop, err := e.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: meta.Name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cop.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}
