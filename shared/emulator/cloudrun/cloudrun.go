// Package cloudrun is an in-process emulator of the Cloud Run Admin API v2 for jobs: the Jobs,
// Executions and Tasks services and google.longrunning.Operations, driven by the official client
// cloud.google.com/go/run/apiv2. The emulator package (`runwayctl emulator` and the e2e tests)
// registers it on its one gRPC server and HTTP mux, and every Runway Jobs function reaches it
// through the same clients it uses against Google (gcp.Config{EmulatorHost: ...}). It also
// serves the REST :run paths a Cloud Scheduler http_target calls, and the executions' logs.
//
// State lives in maps behind one mutex, errors are real gRPC status codes, and executions run
// for real: each task attempt is a process on the host.
//
// What is emulated faithfully: resource names (executions {job}-{5 lowercase letters or
// digits}, tasks {execution}-task{index}); job ids validated like Cloud Run; output-only fields
// (uid, generation, etag, create/update times, creator, observed_generation,
// terminal_condition, reconciling, execution_count, latest_created_execution); reserved label
// and annotation prefixes rejected; the rules of runwayjobs.dev/shared/gcp/runcontract on the
// job and on RunJob's overrides (the container contract's reserved env names, Google Cloud
// label keys and values, at most 64 labels, 1000 env vars per container, 32768-byte names and
// values, 256 KiB of annotations, DNS-label container names), each refused as INVALID_ARGUMENT
// "{field}: {description}" with a google.rpc.BadRequest field violation; template defaults
// (task_count 1, max_retries 3, timeout 600 s) and their limits; validate_only, allow_missing,
// etag checks (Aborted); RunJob overrides (args replace, clear_args, env merged by name,
// task_count and timeout replace); parallelism, per-attempt timeouts on the emulator's clock
// and per-task retries; SIGTERM, then SIGKILL after the 10 s grace, on timeout, cancellation
// and Close; the CLOUD_RUN_* variables; an execution fails when a task exhausts its retries,
// after every task ran; cancellation; executions of one job may overlap (Cloud Run has no
// concurrency policy); lists newest first.
//
// Fidelity limits (where this emulator differs from Cloud Run):
//   - No image is pulled. A task attempt runs containers[0].command + args as a host process
//     (if command is empty, args[0] is the program; if both are empty the attempt fails with a
//     message in its log), found on the host's PATH. working_dir is used when it exists on the
//     host. Resources, volumes, probes, service accounts, VPC access and the sandbox are
//     accepted and ignored; environment variables that reference Secret Manager are not set
//     (the attempt's log says so).
//   - The attempt's environment is the job's env (plus overrides), then CLOUD_RUN_JOB,
//     CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT and CLOUD_RUN_TASK_COUNT
//     (names the job can't set: they are refused), with PATH and HOME from the host unless the
//     job sets them; nothing else of the host's environment leaks in.
//   - A timeout (on Options.Clock: a manual clock must pass it), a cancellation or Close sends
//     SIGTERM to the attempt's process group and SIGKILL after Options.TermGrace (default
//     10 s) of real time, even on a manual clock, so that a cancellation always ends. When the
//     main process exits, whatever it left in its group is killed with SIGKILL at once. A
//     process that leaves the group (setsid) escapes.
//   - The refusals of runcontract's rules word reserved env names as Cloud Run does for PORT
//     and labels as Compute Engine does; the v2 jobs API's exact field paths and the wording of
//     the other limits are unverified.
//   - Exactly one container is allowed (Cloud Run allows sidecars). start_execution_token and
//     run_execution_token are Unimplemented. An empty job_id gets a generated one.
//   - Create, Update and Delete operations finish after Options.OpDelay of real time (default
//     100 ms); they never fail once accepted. A job can be run while its operation is still
//     pending (it runs the latest template).
//   - GetOperation on an unfinished operation is a long poll: it waits up to 1 s (less if the
//     call's deadline is nearer) for the operation to finish, then answers what Google would
//     answer at that moment. The official client sleeps ≥ 1 s between polls, so this keeps
//     op.Wait fast. CancelOperation is Unimplemented; ListOperations ignores its filter.
//     This package owns google.longrunning.Operations on the shared gRPC server.
//   - A failed execution finishes its RunJob operation with a FAILED_PRECONDITION error whose
//     message names the failed task, and the Execution as metadata (Cloud Run sets the error
//     field too; the code is unverified). A cancelled execution finishes it with the Execution
//     as response, as in Cloud Run.
//   - DeleteJob refuses (FAILED_PRECONDITION) while an execution of the job runs: cancel it
//     first. (Refusing is the conservative choice: code written against the emulator then
//     also works if Cloud Run deletes running executions.) Deleting a job deletes its
//     executions at once; the job is gone from Get and List immediately and its operation
//     finishes after OpDelay.
//   - CancelExecution on a finished execution is FAILED_PRECONDITION; so is DeleteExecution on
//     a running one.
//   - The etag changes on every change of the stored resource, status included (an execution
//     starting or finishing changes the job's etag). Generation grows on every UpdateJob, even
//     one that changes nothing. Job.conditions stays empty; only terminal_condition is set.
//   - log_uri points at this emulator ({BaseURL}/emulator/v1/logs/{execution name}, plain
//     text, each attempt bounded by Options.MaxLogBytes; a task's log_uri adds ?task=N), not at
//     Cloud Logging. An attempt's log file is created with its first byte of output: an attempt
//     that printed nothing has none, and the logs show its header line alone.
//   - RunJob answers once the execution's first attempt has started (its process forked, or
//     failed to start), at most 100 ms after the call; Cloud Run answers as soon as the
//     execution is created. The execution in the operation's metadata is the one created.
//   - The v1 path POST /apis/run.googleapis.com/v1/namespaces/{project}/jobs/{job}:run has no
//     region (Google serves it on regional endpoints): it runs the job in the only location of
//     the project that has a job of that id, and answers 400 FAILED_PRECONDITION if several
//     do. It answers a minimal v1 Execution. Options.Faults is checked on the v1 run path as
//     "/http/run.googleapis.com/RunJob" and on the logs as "/http/emulator/Logs" (the v2
//     REST API, package rest, as the gRPC methods it calls).
//   - Parallelism 0 runs at most 100 tasks at once per execution. There are no quotas, IAM
//     beyond the emulator's deny rules (package iam: TestIamPermissions answers from them,
//     Get/SetIamPolicy store a policy that grants nothing), region checks, or project-number normalisation: names
//     echo the project as given. show_deleted is ignored. Page tokens are offsets (default
//     page size 100, at most 1000). Finished operations are kept until Close.
//   - Timestamps and task timeouts come from Options.Clock; OpDelay and the SIGTERM grace use
//     real time. An attempt stopped by a manual jump past its timeout records its completion
//     at the clock's time when it has exited (the jump's target), not at the deadline.
//   - The Recorder reports an attempt killed by a cancellation as "failed".
package cloudrun

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/emulator/iam"
	"runwayjobs.dev/shared/gcp/runcontract"
)

// Recorder receives job metrics as Cloud Monitoring would count them (monitoring.Store
// implements it). It may be called with the Service's lock held, so it must not call back
// into the Service.
type Recorder interface {
	ExecutionStarted(project, location, job string, at time.Time)
	// ExecutionCompleted reports result "succeeded", "failed" or "cancelled".
	ExecutionCompleted(project, location, job, result string, at time.Time)
	// TaskAttemptCompleted reports result "succeeded" or "failed" (an attempt killed by a
	// cancellation counts as failed) and the attempt index (0 for the first).
	TaskAttemptCompleted(project, location, job, result string, attempt int, at time.Time)
}

// Options configures a Service.
type Options struct {
	// Clock stamps every timestamp (default clock.Real{}).
	Clock clock.Clock
	// OpDelay is how long Create, Update and Delete operations take (default 100ms).
	OpDelay time.Duration
	// Recorder, if not nil, is told about executions and task attempts.
	Recorder Recorder
	// LogDir holds the attempts' output; "" means a temporary directory removed by Close.
	LogDir string
	// MaxLogBytes bounds the output kept per attempt (default 1 MiB).
	MaxLogBytes int64
	// TermGrace is how long an attempt that timed out or was cancelled has, after SIGTERM,
	// before SIGKILL (default runcontract.TerminationGrace, Cloud Run's 10 s).
	TermGrace time.Duration
	// BaseURL returns "http://host:port" of the emulator, for log_uri (nil: log_uri is a path).
	BaseURL func() string
	// Faults, if not nil, is checked on the HTTP routes.
	Faults *fault.Injector
	// IAM answers the jobs' TestIamPermissions (nil: everything is granted). The emulator's
	// gRPC interceptor, not this package, denies the guarded RPCs.
	IAM *iam.Policy
}

// Service is the emulated Cloud Run Admin API.
type Service struct {
	opts      Options
	logDir    string
	ownLogDir bool

	ctx    context.Context // cancelled by Close: kills every attempt
	cancel context.CancelFunc
	wg     sync.WaitGroup // executions and operation timers

	mu     sync.Mutex
	closed bool
	seq    int64 // creation order, to sort resources created at the same clock time
	jobs   map[string]*jobState
	execs  map[string]*execState
	byJob  map[string][]*execState // each job's executions by job name, newest first (ListExecutions' order)
	ops    map[string]*opState

	devNull *os.File // every attempt's stdin, opened once (nil: exec opens its own); s.mu
}

// New returns a Service. It starts nothing until RPCs arrive.
func New(opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.OpDelay <= 0 {
		opts.OpDelay = 100 * time.Millisecond
	}
	if opts.MaxLogBytes <= 0 {
		opts.MaxLogBytes = 1 << 20
	}
	if opts.TermGrace <= 0 {
		opts.TermGrace = runcontract.TerminationGrace
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		opts:   opts,
		logDir: opts.LogDir,
		ctx:    ctx,
		cancel: cancel,
		jobs:   map[string]*jobState{},
		execs:  map[string]*execState{},
		byJob:  map[string][]*execState{},
		ops:    map[string]*opState{},
	}
}

// Register adds the Jobs, Executions, Tasks and google.longrunning.Operations services to g,
// and the HTTP routes (the v1 :run path and the execution logs) to mux (which may be nil).
func (s *Service) Register(g *grpc.Server, mux *http.ServeMux) {
	runpb.RegisterJobsServer(g, &jobsServer{s: s, iam: s.opts.IAM.NewServer(iam.Kind{
		Match:       func(name string) bool { _, err := parseJobName(name); return err == nil },
		Permissions: []string{"run.jobs.", "run.executions.", "run.tasks."},
		Exists:      s.jobExists,
	})})
	runpb.RegisterExecutionsServer(g, &executionsServer{s: s})
	runpb.RegisterTasksServer(g, &tasksServer{s: s})
	longrunningpb.RegisterOperationsServer(g, &operationsServer{s: s})
	if mux != nil {
		s.registerHTTP(mux)
	}
}

// Close cancels every running attempt (SIGTERM to its process group, SIGKILL after TermGrace),
// waits for the executions to finish, and removes the temporary log directory. It is safe to
// call more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.devNull != nil {
		_ = s.devNull.Close()
		s.devNull = nil
	}
	if s.ownLogDir && s.logDir != "" {
		if err := os.RemoveAll(s.logDir); err != nil {
			return fmt.Errorf("cloudrun.Close: %w", err)
		}
	}
	return nil
}

// stdin returns the file every attempt reads as its stdin, /dev/null opened once rather than by
// each attempt's exec; nil if it cannot be opened. s.mu held.
func (s *Service) stdin() *os.File {
	if s.devNull == nil {
		if f, err := os.Open(os.DevNull); err == nil {
			s.devNull = f
		}
	}
	return s.devNull
}

// ensureLogDir returns the log directory, creating the temporary one on first use. s.mu held.
func (s *Service) ensureLogDir() (string, error) {
	if s.logDir != "" {
		return s.logDir, nil
	}
	dir, err := os.MkdirTemp("", "cloudrun-emulator-logs-")
	if err != nil {
		return "", fmt.Errorf("log directory: %w", err)
	}
	s.logDir, s.ownLogDir = dir, true
	return dir, nil
}

func (s *Service) now() time.Time { return s.opts.Clock.Now() }

func (s *Service) nextSeq() int64 {
	s.seq++
	return s.seq
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	hex.Encode(out[9:13], b[4:6])
	hex.Encode(out[14:18], b[6:8])
	hex.Encode(out[19:23], b[8:10])
	hex.Encode(out[24:36], b[10:16])
	out[8], out[13], out[18], out[23] = '-', '-', '-', '-'
	return string(out[:])
}

// newEtag returns a fresh quoted etag, like Cloud Run's.
func newEtag() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return `"` + base64.RawURLEncoding.EncodeToString(b[:]) + `"`
}

// etagMatches reports whether a request's etag (empty means "any") names the current version.
// Surrounding quotes and a weak prefix are ignored on both sides.
func etagMatches(req, current string) bool {
	if req == "" {
		return true
	}
	return bareEtag(req) == bareEtag(current)
}

func bareEtag(e string) string {
	if len(e) >= 2 && e[:2] == "W/" {
		e = e[2:]
	}
	if len(e) >= 2 && e[0] == '"' && e[len(e)-1] == '"' {
		e = e[1 : len(e)-1]
	}
	return e
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomSuffix returns n random lowercase letters and digits.
func randomSuffix(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = suffixAlphabet[mrand.IntN(len(suffixAlphabet))]
	}
	return string(b)
}
