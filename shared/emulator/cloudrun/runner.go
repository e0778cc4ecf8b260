package cloudrun

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"runwayjobs.dev/shared/emulator/clock"
)

// drainTimeout bounds how long an attempt's output is read after its process group was killed
// (a process that left the group may still hold the pipe).
const drainTimeout = 2 * time.Second

// prepareProcess fixes the program, environment and limits of every attempt from the
// execution's container.
func (e *execState) prepareProcess(c *runpb.Container) {
	switch {
	case len(c.Command) > 0:
		e.argv = append(slices.Clone(c.Command), c.Args...)
	case len(c.Args) > 0:
		e.argv = slices.Clone(c.Args)
	default:
		e.startErr = fmt.Sprintf("container %q has neither command nor args: the emulator runs containers[0].command + args on the host and does not pull image %s", c.Name, c.Image)
	}
	if c.WorkingDir != "" {
		if fi, err := os.Stat(c.WorkingDir); err == nil && fi.IsDir() {
			e.workDir = c.WorkingDir
		} else {
			e.notes = append(e.notes, fmt.Sprintf("working_dir %s does not exist on the host: running in the emulator's directory", c.WorkingDir))
		}
	}
	e.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, v := range c.Env {
		if _, ok := v.Values.(*runpb.EnvVar_ValueSource); ok {
			e.notes = append(e.notes, fmt.Sprintf("environment variable %s references a secret: not set by the emulator", v.Name))
			continue
		}
		e.env = append(e.env, v.Name+"="+v.GetValue())
	}
	e.env = append(e.env,
		"CLOUD_RUN_JOB="+e.job.job,
		"CLOUD_RUN_EXECUTION="+e.id,
		"CLOUD_RUN_TASK_COUNT="+strconv.Itoa(int(e.exec.TaskCount)),
	)
}

// runExecution runs the tasks of e, parallelism at a time, then records the outcome.
func (s *Service) runExecution(e *execState) {
	defer s.wg.Done()
	defer e.cancel()
	defer e.markStarted() // no attempt started (cancelled first, or no process to start)
	s.mu.Lock()
	now := s.now()
	e.exec.StartTime = ts(now)
	setCondition(&e.exec.Conditions, condition("ResourcesAvailable", runpb.Condition_CONDITION_SUCCEEDED, "Provisioned resources.", now))
	setCondition(&e.exec.Conditions, condition("Started", runpb.Condition_CONDITION_SUCCEEDED, "Started execution.", now))
	if !e.cancelling {
		setCondition(&e.exec.Conditions, condition("Completed", runpb.Condition_CONDITION_RECONCILING, "Running.", now))
	}
	s.touch(e)
	workers := int(e.exec.Parallelism)
	s.mu.Unlock()
	if len(e.argv) > 0 {
		// Found on the PATH once per execution, not at every attempt; a program that is not
		// found is looked up again by each attempt, which then fails with exec's own error.
		e.path = e.argv[0]
		if p, err := exec.LookPath(e.argv[0]); err == nil {
			e.path = p
		}
	}

	if workers <= 1 {
		// One task at a time: run them on this goroutine, without hand-offs.
		for i := range e.tasks {
			if e.ctx.Err() != nil {
				break
			}
			s.runTask(e, i)
		}
		s.finishExecution(e)
		return
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s.runTask(e, i)
			}
		}()
	}
feed:
	for i := range e.tasks {
		select {
		case next <- i:
		case <-e.ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	s.finishExecution(e)
}

// runTask runs task i of e until an attempt succeeds, its retries are exhausted, or the
// execution is cancelled.
func (s *Service) runTask(e *execState, i int) {
	tk := e.tasks[i]
	t := tk.task
	for attempt := 0; ; attempt++ {
		if e.ctx.Err() != nil {
			return // left pending: finishExecution marks it cancelled
		}
		logPath := filepath.Join(e.logDir, fmt.Sprintf("task%05d-attempt%02d.log", i, attempt))
		s.mu.Lock()
		now := s.now()
		if attempt == 0 {
			t.ScheduledTime, t.StartTime = ts(now), ts(now)
			setCondition(&t.Conditions, condition("Started", runpb.Condition_CONDITION_SUCCEEDED, "", now))
		} else if attempt == 1 {
			e.exec.RetriedCount++
		}
		t.Retried = int32(attempt)
		setCondition(&t.Conditions, condition("Completed", runpb.Condition_CONDITION_RECONCILING, fmt.Sprintf("Attempt %d is running.", attempt), now))
		touchTask(t, now)
		tk.phase = taskRunning
		tk.attempts = append(tk.attempts, logPath)
		e.exec.RunningCount++
		s.touch(e)
		s.mu.Unlock()

		res := s.runAttempt(e, i, attempt, logPath)
		e.markStarted() // an attempt that could not start

		s.mu.Lock()
		now = s.now()
		e.exec.RunningCount--
		t.LastAttemptResult = res.proto()
		done := true
		switch {
		case res.ok():
			tk.phase = taskSucceeded
			e.exec.SucceededCount++
			setCondition(&t.Conditions, condition("Completed", runpb.Condition_CONDITION_SUCCEEDED, "", now))
		case res.cancelled:
			tk.phase = taskCancelled
			e.exec.CancelledCount++
			setCondition(&t.Conditions, withReason(condition("Completed", runpb.Condition_CONDITION_FAILED, "The task was cancelled.", now), runpb.Condition_CANCELLED, runpb.Condition_INFO))
		case attempt >= e.maxRetries:
			tk.phase = taskFailed
			e.exec.FailedCount++
			setCondition(&t.Conditions, res.failedCondition(now))
		default:
			done = false
			tk.phase = taskPending
			setCondition(&t.Conditions, condition("Completed", runpb.Condition_CONDITION_RECONCILING, fmt.Sprintf("Attempt %d failed: %s Retrying.", attempt, res.message()), now))
		}
		if done {
			t.CompletionTime = ts(now)
			t.Reconciling = false
		}
		touchTask(t, now)
		s.touch(e)
		s.mu.Unlock()

		result := "failed"
		if res.ok() {
			result = "succeeded"
		}
		s.record(func(r Recorder) {
			r.TaskAttemptCompleted(e.job.project, e.job.location, e.job.job, result, attempt, now)
		})
		if done {
			return
		}
	}
}

// finishExecution records the end of e: unstarted tasks are cancelled, the job's reference and
// the operations are completed.
func (s *Service) finishExecution(e *execState) {
	s.mu.Lock()
	now := s.now()
	x := e.exec
	var firstFailed *taskState
	for _, tk := range e.tasks {
		switch tk.phase {
		case taskPending, taskRunning:
			tk.phase = taskCancelled
			x.CancelledCount++
			tk.task.Reconciling = false
			tk.task.CompletionTime = ts(now)
			setCondition(&tk.task.Conditions, withReason(condition("Completed", runpb.Condition_CONDITION_FAILED, "The task was cancelled.", now), runpb.Condition_CANCELLED, runpb.Condition_INFO))
			touchTask(tk.task, now)
		case taskFailed:
			if firstFailed == nil {
				firstFailed = tk
			}
		}
	}
	result, refStatus := "succeeded", runpb.ExecutionReference_EXECUTION_SUCCEEDED
	var completed *runpb.Condition
	var opErr error
	switch {
	case e.cancelling || e.ctx.Err() != nil && x.CancelledCount > 0:
		result, refStatus = "cancelled", runpb.ExecutionReference_EXECUTION_CANCELLED
		completed = withReason(condition("Completed", runpb.Condition_CONDITION_FAILED, "The execution was cancelled.", now), runpb.Condition_CANCELLED, runpb.Condition_INFO)
	case firstFailed != nil:
		result, refStatus = "failed", runpb.ExecutionReference_EXECUTION_FAILED
		taskID := filepath.Base(firstFailed.task.Name)
		msg := fmt.Sprintf("Task %s failed with message: %s", taskID, firstFailed.task.GetLastAttemptResult().GetStatus().GetMessage())
		if x.FailedCount > 1 {
			msg += fmt.Sprintf(" (%d of %d tasks failed)", x.FailedCount, x.TaskCount)
		}
		completed = withReason(condition("Completed", runpb.Condition_CONDITION_FAILED, msg, now), runpb.Condition_NON_ZERO_EXIT_CODE, runpb.Condition_ERROR)
		if firstFailed.task.GetLastAttemptResult().GetExitCode() == 0 {
			completed.Reasons = nil // timeout or signal: no exit code to blame
		}
		opErr = grpcstatus.Error(codes.FailedPrecondition, "The execution failed. "+msg)
	default:
		var took time.Duration
		if x.StartTime != nil {
			took = now.Sub(x.StartTime.AsTime())
		}
		completed = condition("Completed", runpb.Condition_CONDITION_SUCCEEDED, fmt.Sprintf("Execution completed successfully in %s.", took.Round(time.Millisecond)), now)
	}
	setCondition(&x.Conditions, completed)
	x.CompletionTime = ts(now)
	x.Reconciling = false
	x.RunningCount = 0
	s.touch(e)
	e.finished = true

	if js, ok := s.jobs[e.job.name()]; ok {
		js.running--
		if ref := js.job.LatestCreatedExecution; ref != nil && ref.Name == e.name() {
			ref.CompletionTime = ts(now)
			ref.CompletionStatus = refStatus
			js.job.Etag = newEtag()
		}
	}
	// The completion is counted before the operation is done, so a client that sees the
	// operation done also finds it in the metrics (the Recorder takes no lock of ours).
	s.record(func(r Recorder) { r.ExecutionCompleted(e.job.project, e.job.location, e.job.job, result, now) })
	s.finishOp(e.runOp, x, opErr)
	for _, o := range e.cancelOps {
		s.finishOp(o, x, nil)
	}
	s.mu.Unlock()
}

// attemptResult is how one attempt ended.
type attemptResult struct {
	exitCode  int32
	signal    int32
	startErr  string // the process could not start
	timedOut  bool
	cancelled bool
	killed    bool // SIGKILL after the grace: the process ignored SIGTERM
}

func (r attemptResult) ok() bool {
	return r.startErr == "" && !r.timedOut && !r.cancelled && r.signal == 0 && r.exitCode == 0
}

func (r attemptResult) message() string {
	switch {
	case r.ok():
		return ""
	case r.startErr != "":
		return "The container could not start: " + r.startErr
	case r.timedOut:
		return "The configured timeout was reached."
	case r.cancelled:
		return "The task was cancelled."
	case r.signal != 0:
		return fmt.Sprintf("The container was terminated by signal %d.", r.signal)
	}
	return fmt.Sprintf("The container exited with an error (exit code %d).", r.exitCode)
}

func (r attemptResult) code() codes.Code {
	switch {
	case r.ok():
		return codes.OK
	case r.timedOut:
		return codes.DeadlineExceeded
	case r.cancelled:
		return codes.Canceled
	}
	return codes.Unknown
}

func (r attemptResult) proto() *runpb.TaskAttemptResult {
	return &runpb.TaskAttemptResult{
		Status:     &status.Status{Code: int32(r.code()), Message: r.message()},
		ExitCode:   r.exitCode,
		TermSignal: r.signal,
	}
}

func (r attemptResult) failedCondition(now time.Time) *runpb.Condition {
	c := condition("Completed", runpb.Condition_CONDITION_FAILED, r.message(), now)
	if r.exitCode != 0 {
		return withReason(c, runpb.Condition_NON_ZERO_EXIT_CODE, runpb.Condition_ERROR)
	}
	c.Severity = runpb.Condition_ERROR
	return c
}

// runAttempt runs one attempt of task i as a process group, writing its output to logPath.
// The log file (and the execution's log directory) is created on the first byte written to it:
// an attempt that prints nothing costs no file creation, which on a journalled filesystem is
// most of a short attempt's cost. The logs route serves a missing file as an empty log.
func (s *Service) runAttempt(e *execState, i, attempt int, logPath string) attemptResult {
	f := &lazyLog{path: logPath}
	defer f.Close()
	w := &limitedWriter{w: f, left: s.opts.MaxLogBytes}
	for _, n := range e.notes {
		fmt.Fprintf(w, "[emulator] %s\n", n)
	}
	if f.err != nil {
		return attemptResult{startErr: "cannot create the attempt's log: " + f.err.Error()}
	}
	if e.startErr != "" {
		fmt.Fprintf(w, "[emulator] %s\n", e.startErr)
		return attemptResult{startErr: e.startErr}
	}
	cmd := exec.Command(e.path, e.argv[1:]...)
	cmd.Args[0] = e.argv[0] // the program sees the name it was given, not its resolved path
	cmd.Env = append(slices.Clip(e.env), "CLOUD_RUN_TASK_INDEX="+strconv.Itoa(i), "CLOUD_RUN_TASK_ATTEMPT="+strconv.Itoa(attempt))
	cmd.Dir = e.workDir
	if e.stdin != nil {
		cmd.Stdin = e.stdin
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The child writes straight into a pipe we own, so that Wait returns when the main process
	// exits even if a child it left behind still holds the pipe.
	pr, pw, err := os.Pipe()
	if err != nil {
		return attemptResult{startErr: "cannot create a pipe: " + err.Error()}
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	e.markStarted()
	pw.Close()
	if err != nil {
		pr.Close()
		msg := fmt.Sprintf("cannot start %q: %v", e.argv[0], err)
		fmt.Fprintf(w, "[emulator] %s\n", msg)
		return attemptResult{startErr: msg}
	}
	pgid := cmd.Process.Pid
	copied := make(chan struct{})
	go func() {
		copyOutput(w, pr)
		close(copied)
	}()
	// This goroutine waits for the main process, so that an attempt that ends by itself costs no
	// hand-off; the watchdog stops it on a timeout or a cancellation. Its verdict is read only
	// if it fired (fired is set before it touches verdict).
	exited, watched := make(chan struct{}), make(chan struct{})
	var fired atomic.Bool
	var verdict attemptResult
	timer := clock.NewTimer(s.opts.Clock, e.timeout)
	go func() {
		defer close(watched)
		defer timer.Stop()
		select {
		case <-exited:
		case <-timer.C:
			fired.Store(true)
			verdict.timedOut = true
			verdict.killed = s.terminate(pgid, exited)
		case <-e.ctx.Done():
			fired.Store(true)
			verdict.cancelled = true
			verdict.killed = s.terminate(pgid, exited)
		}
	}()
	_ = cmd.Wait()
	close(exited)
	var res attemptResult
	if fired.Load() {
		<-watched
		res = verdict
	}
	// Like a container, the attempt ends with its main process: kill whatever it left behind.
	killGroup(pgid)
	select {
	case <-copied:
	case <-time.After(drainTimeout):
		pr.Close()
		<-copied
	}
	pr.Close()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.signal = int32(ws.Signal())
	} else {
		res.exitCode = int32(cmd.ProcessState.ExitCode())
	}
	if f.err != nil {
		return attemptResult{startErr: "cannot create the attempt's log: " + f.err.Error()}
	}
	// Past the output's bound: these notes always make it to the log.
	how := "SIGTERM sent to the process group, which exited"
	if res.killed {
		how = fmt.Sprintf("SIGTERM sent to the process group, SIGKILL %v later", s.opts.TermGrace)
	}
	if res.timedOut {
		fmt.Fprintf(f, "\n[emulator] attempt %d timed out after %v: %s\n", attempt, e.timeout, how)
	}
	if res.cancelled {
		fmt.Fprintf(f, "\n[emulator] attempt %d cancelled: %s\n", attempt, how)
	}
	return res
}

// copyBufs holds the buffers attempts copy their output through: io.Copy's fresh 32 KiB buffer
// per attempt was a third of what a RunJob of a silent job allocated.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyOutput copies an attempt's output from r to w until r ends.
func copyOutput(w io.Writer, r *os.File) {
	b := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(b)
	// Through a plain io.Reader: *os.File's WriteTo would allocate a buffer of its own.
	_, _ = io.CopyBuffer(w, struct{ io.Reader }{r}, *b)
}

// terminate stops an attempt as Cloud Run does: SIGTERM to its process group, then SIGKILL if
// the main process has not exited after Options.TermGrace of real time (real even on a manual
// clock, so that a cancellation or Close always ends). It returns when the main process has
// exited, and reports whether SIGKILL was needed.
func (s *Service) terminate(pgid int, exited <-chan struct{}) (killed bool) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := time.NewTimer(s.opts.TermGrace)
	defer grace.Stop()
	select {
	case <-exited:
		return false
	case <-grace.C:
		killGroup(pgid)
		<-exited
		return true
	}
}

// lazyLog is an attempt's log file, created (with its directory) on the first Write. After a
// failed creation it discards what it is given, so that the attempt's pipe is still drained,
// and keeps the error.
type lazyLog struct {
	path string
	f    *os.File
	err  error
}

func (l *lazyLog) Write(p []byte) (int, error) {
	if l.f == nil && l.err == nil {
		if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
			l.err = err
		} else if l.f, err = os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644); err != nil {
			l.err = err
		}
	}
	if l.err != nil {
		return len(p), nil
	}
	n, err := l.f.Write(p)
	if err != nil {
		err = fmt.Errorf("write %s: %w", l.path, err)
	}
	return n, err
}

// Close closes the file if it was created.
func (l *lazyLog) Close() error {
	if l.f == nil {
		return nil
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", l.path, err)
	}
	return nil
}

// killGroup sends SIGKILL to every process of the group.
// ESRCH (the group is already empty) is the usual answer after the main process exited.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// limitedWriter keeps the first left bytes and notes the truncation once.
type limitedWriter struct {
	w         io.Writer
	left      int64
	truncated bool
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.left <= 0 {
		if !l.truncated {
			l.truncated = true
			_, _ = io.WriteString(l.w, "\n[emulator] output truncated: the emulator keeps MaxLogBytes per attempt\n")
		}
		return n, nil
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	m, err := l.w.Write(p)
	l.left -= int64(m)
	if err != nil {
		return m, err
	}
	if l.left <= 0 && int64(n) > int64(m) && !l.truncated {
		l.truncated = true
		_, _ = io.WriteString(l.w, "\n[emulator] output truncated: the emulator keeps MaxLogBytes per attempt\n")
	}
	return n, nil
}
