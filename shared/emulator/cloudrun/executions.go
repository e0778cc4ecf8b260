package cloudrun

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/gcp/runcontract"
)

// maxLocalParallelism bounds the tasks one execution runs at once when parallelism is 0.
const maxLocalParallelism = 100

type taskPhase int

const (
	taskPending taskPhase = iota // not started, or waiting for its next attempt
	taskRunning
	taskSucceeded
	taskFailed
	taskCancelled
)

// taskState is one task of an execution.
type taskState struct {
	task     *runpb.Task
	phase    taskPhase
	attempts []string // log file of each attempt, in order
}

// execState is one execution and what its runner needs.
type execState struct {
	job   jobKey
	id    string // short name
	exec  *runpb.Execution
	view  *runpb.Execution // snapshot's copy of exec, dropped by touch
	tasks []*taskState
	seq   int64

	ctx        context.Context // cancelled by CancelExecution or Close
	cancel     context.CancelFunc
	cancelling bool
	finished   bool
	runOp      *opState      // RunJob's operation
	started    chan struct{} // closed by markStarted
	startOnce  sync.Once
	cancelOps  []*opState // CancelExecution operations waiting for the end
	logDir     string

	// Fixed at creation, read by the runner without the lock.
	argv       []string // program and arguments
	path       string   // argv[0] found on the emulator's PATH (argv[0] if not found), set by runExecution before any attempt
	startErr   string   // why no attempt can start (no command and no args)
	env        []string // without CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_ATTEMPT
	notes      []string // written at the top of every attempt's log
	workDir    string
	stdin      *os.File // nil: exec opens /dev/null
	timeout    time.Duration
	maxRetries int
}

func (e *execState) name() string { return e.exec.Name }

func notFoundExecution(name string) error {
	return status.Errorf(codes.NotFound, "execution %q not found", name)
}

// condition returns a condition of the given type.
func condition(typ string, state runpb.Condition_State, msg string, at time.Time) *runpb.Condition {
	return &runpb.Condition{Type: typ, State: state, Message: msg, LastTransitionTime: ts(at)}
}

// setCondition replaces the condition of c's type in list, or appends c. A condition whose
// state does not change keeps its transition time.
func setCondition(list *[]*runpb.Condition, c *runpb.Condition) {
	for i, old := range *list {
		if old.Type == c.Type {
			if old.State == c.State {
				c.LastTransitionTime = old.LastTransitionTime
			}
			(*list)[i] = c
			return
		}
	}
	*list = append(*list, c)
}

func withReason(c *runpb.Condition, r runpb.Condition_ExecutionReason, sev runpb.Condition_Severity) *runpb.Condition {
	c.Reasons = &runpb.Condition_ExecutionReason_{ExecutionReason: r}
	c.Severity = sev
	return c
}

// touch records a change of an execution; every change of e.exec ends with it. s.mu held.
func (s *Service) touch(e *execState) {
	e.exec.UpdateTime = ts(s.now())
	e.exec.Etag = newEtag()
	e.view = nil
}

// snapshot returns a copy of the execution that nothing changes, to answer with outside the
// lock: polls between two changes share one copy. s.mu held.
func (e *execState) snapshot() *runpb.Execution {
	if e.view == nil {
		e.view = proto.Clone(e.exec).(*runpb.Execution)
	}
	return e.view
}

func touchTask(t *runpb.Task, now time.Time) {
	t.UpdateTime = ts(now)
	t.Etag = newEtag()
}

func (s *Service) logURI(execName string) string {
	base := ""
	if s.opts.BaseURL != nil {
		base = s.opts.BaseURL()
	}
	return base + logsPath + execName
}

// applyOverrides returns the task template of an execution: the job's, with RunJob's overrides.
func applyOverrides(tmpl *runpb.TaskTemplate, ov *runpb.RunJobRequest_Overrides) (*runpb.TaskTemplate, error) {
	t := proto.Clone(tmpl).(*runpb.TaskTemplate)
	c := t.Containers[0]
	for i, co := range ov.GetContainerOverrides() {
		field := fmt.Sprintf("overrides.container_overrides[%d]", i)
		if co.GetName() != "" && c.Name != "" && co.GetName() != c.Name {
			return nil, status.Errorf(codes.InvalidArgument, "%s.name: the job has no container named %q", field, co.GetName())
		}
		if co.GetClearArgs() && len(co.GetArgs()) > 0 {
			return nil, status.Errorf(codes.InvalidArgument, "%s: clear_args and args are mutually exclusive", field)
		}
		if err := checkEnv(field+".env", co.GetEnv()); err != nil {
			return nil, err
		}
		switch {
		case co.GetClearArgs():
			c.Args = nil
		case len(co.GetArgs()) > 0:
			c.Args = append([]string(nil), co.GetArgs()...)
		}
		c.Env = mergeEnv(c.Env, co.GetEnv())
	}
	if len(c.Env) > runcontract.MaxEnvVars {
		return nil, badRequest("overrides.container_overrides", fmt.Sprintf("the job's and the overrides' environment variables are %d together; a container can have at most %d.", len(c.Env), runcontract.MaxEnvVars))
	}
	if ov.GetTimeout() != nil {
		if err := checkTimeout("overrides.timeout", ov.GetTimeout()); err != nil {
			return nil, err
		}
		t.Timeout = proto.Clone(ov.GetTimeout()).(*durationpb.Duration)
	}
	return t, nil
}

// mergeEnv returns env with over merged in: a variable of the same name is replaced in place,
// new ones are appended.
func mergeEnv(env, over []*runpb.EnvVar) []*runpb.EnvVar {
	out := env
	for _, o := range over {
		o = proto.Clone(o).(*runpb.EnvVar)
		replaced := false
		for i, e := range out {
			if e.GetName() == o.GetName() {
				out[i], replaced = o, true
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

// runJob creates an execution of a job and starts it.
func (s *Service) runJob(req *runpb.RunJobRequest) (*longrunningpb.Operation, error) {
	k, err := parseJobName(req.GetName())
	if err != nil {
		return nil, err
	}
	ov := req.GetOverrides()
	if err := checkTaskCount("overrides.task_count", ov.GetTaskCount()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if err := s.checkOpen(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	js, ok := s.jobs[k.name()]
	if !ok {
		s.mu.Unlock()
		return nil, notFoundJob(k)
	}
	if !etagMatches(req.GetEtag(), js.job.Etag) {
		s.mu.Unlock()
		return nil, errAborted(k.name(), req.GetEtag())
	}
	e, err := s.newExecution(js, ov)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if req.GetValidateOnly() {
		defer s.mu.Unlock()
		return s.doneOp(k.parent(), e.exec), nil
	}
	dir, err := s.ensureLogDir()
	if err != nil {
		s.mu.Unlock()
		return nil, status.Errorf(codes.Internal, "execution logs: %v", err)
	}
	// Created with the first attempt's log that has output (see lazyLog), off this lock.
	e.logDir = filepath.Join(dir, e.exec.Uid)
	e.stdin = s.stdin()
	now := e.exec.CreateTime.AsTime()
	e.seq = s.nextSeq()
	e.ctx, e.cancel = context.WithCancel(s.ctx)
	s.execs[e.name()] = e
	s.index(e)
	js.running++
	js.job.ExecutionCount++
	js.job.LatestCreatedExecution = &runpb.ExecutionReference{
		Name:             e.name(),
		CreateTime:       e.exec.CreateTime,
		CompletionStatus: runpb.ExecutionReference_EXECUTION_RUNNING,
	}
	js.job.Etag = newEtag()
	e.runOp = s.newOp(k.parent(), e.exec)
	e.runOp.execName = e.name()
	// Not a deep copy: the operation's Metadata is replaced when it changes, never changed.
	resp := &longrunningpb.Operation{Name: e.runOp.op.Name, Metadata: e.runOp.op.Metadata}
	s.wg.Add(1)
	s.mu.Unlock()

	s.record(func(r Recorder) { r.ExecutionStarted(k.project, k.location, k.job, now) })
	e.started = make(chan struct{})
	go s.runExecution(e)
	// Answer once the first attempt's process has started (or could not start): the fork then
	// does not compete for the CPU with a caller that polls the execution at once, and a
	// caller that sees RunJob answered finds the execution started.
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-e.started:
	case <-t.C:
	}
	return resp, nil
}

// startWait bounds how long RunJob waits for the first attempt's process to start.
const startWait = 100 * time.Millisecond

// markStarted tells RunJob that the first attempt has started, failed to start or will not
// start. It may be called more than once.
func (e *execState) markStarted() {
	e.startOnce.Do(func() {
		if e.started != nil {
			close(e.started)
		}
	})
}

// newExecution builds (without storing) an execution of js with overrides. s.mu held.
func (s *Service) newExecution(js *jobState, ov *runpb.RunJobRequest_Overrides) (*execState, error) {
	et := js.job.Template
	tmpl, err := applyOverrides(et.Template, ov)
	if err != nil {
		return nil, err
	}
	n := et.TaskCount
	if ov.GetTaskCount() > 0 {
		n = ov.GetTaskCount()
	}
	p := et.Parallelism
	if p == 0 {
		p = min(n, maxLocalParallelism)
	}
	p = min(p, n)

	id := js.key.job + "-" + randomSuffix(5)
	for s.execs[js.key.name()+"/executions/"+id] != nil {
		id = js.key.job + "-" + randomSuffix(5)
	}
	name := js.key.name() + "/executions/" + id
	now := s.now()
	exec := &runpb.Execution{
		Name:        name,
		Uid:         newUUID(),
		Creator:     actor,
		Generation:  1,
		Labels:      maps.Clone(et.Labels),
		Annotations: maps.Clone(et.Annotations),
		CreateTime:  ts(now),
		UpdateTime:  ts(now),
		LaunchStage: js.job.LaunchStage,
		Job:         js.key.job,
		Parallelism: p,
		TaskCount:   n,
		Template:    tmpl,
		Reconciling: true,
		Conditions: []*runpb.Condition{
			condition("Completed", runpb.Condition_CONDITION_PENDING, "", now),
			condition("ResourcesAvailable", runpb.Condition_CONDITION_PENDING, "", now),
			condition("Started", runpb.Condition_CONDITION_PENDING, "", now),
		},
		ObservedGeneration: 1,
		LogUri:             s.logURI(name),
		Etag:               newEtag(),
	}
	e := &execState{job: js.key, id: id, exec: exec, timeout: tmpl.Timeout.AsDuration(), maxRetries: int(tmpl.GetMaxRetries())}
	e.prepareProcess(tmpl.Containers[0])
	for i := range int(n) {
		taskID := id + "-task" + strconv.Itoa(i)
		t := &runpb.Task{
			Name:                 name + "/tasks/" + taskID,
			Uid:                  newUUID(),
			Generation:           1,
			Labels:               maps.Clone(et.Labels),
			Annotations:          maps.Clone(et.Annotations),
			CreateTime:           ts(now),
			UpdateTime:           ts(now),
			Job:                  js.key.job,
			Execution:            id,
			Containers:           cloneContainers(tmpl.Containers),
			Volumes:              tmpl.Volumes,
			MaxRetries:           tmpl.GetMaxRetries(),
			Timeout:              tmpl.Timeout,
			ServiceAccount:       tmpl.ServiceAccount,
			ExecutionEnvironment: tmpl.ExecutionEnvironment,
			Reconciling:          true,
			Conditions: []*runpb.Condition{
				condition("Started", runpb.Condition_CONDITION_PENDING, "", now),
				condition("Completed", runpb.Condition_CONDITION_PENDING, "", now),
			},
			ObservedGeneration: 1,
			Index:              int32(i),
			EncryptionKey:      tmpl.EncryptionKey,
			VpcAccess:          tmpl.VpcAccess,
			LogUri:             exec.LogUri + "?task=" + strconv.Itoa(i),
			Etag:               newEtag(),
		}
		e.tasks = append(e.tasks, &taskState{task: t})
	}
	return e, nil
}

func cloneContainers(cs []*runpb.Container) []*runpb.Container {
	out := make([]*runpb.Container, len(cs))
	for i, c := range cs {
		out[i] = proto.Clone(c).(*runpb.Container)
	}
	return out
}

// index adds a stored execution to its job's list, in ListExecutions' order. s.mu held.
func (s *Service) index(e *execState) {
	k := e.job.name()
	list := s.byJob[k]
	i := sort.Search(len(list), func(i int) bool { return olderThan(list[i], e) })
	s.byJob[k] = slices.Insert(list, i, e)
}

// unindex removes an execution from its job's list. s.mu held.
func (s *Service) unindex(e *execState) {
	k := e.job.name()
	list := s.byJob[k]
	i := sort.Search(len(list), func(i int) bool { return !olderThan(e, list[i]) })
	if i == len(list) || list[i] != e {
		i = slices.Index(list, e) // not where its order says: look everywhere
	}
	if i < 0 {
		return
	}
	if list = slices.Delete(list, i, i+1); len(list) == 0 {
		delete(s.byJob, k)
		return
	}
	s.byJob[k] = list
}

// olderThan reports whether a comes after b in ListExecutions' order (newest first).
func olderThan(a, b *execState) bool {
	return newer(b.exec.CreateTime.AsTime(), b.seq, a.exec.CreateTime.AsTime(), a.seq)
}

// removeExecution forgets a finished execution and its logs. s.mu held.
func (s *Service) removeExecution(name string, e *execState) {
	delete(s.execs, name)
	s.unindex(e)
	if e.logDir != "" {
		_ = os.RemoveAll(e.logDir)
	}
}

func (s *Service) record(fn func(Recorder)) {
	if s.opts.Recorder != nil {
		fn(s.opts.Recorder)
	}
}

// executionsServer implements google.cloud.run.v2.Executions.
type executionsServer struct {
	runpb.UnimplementedExecutionsServer
	s *Service
}

// lookup returns the execution with the given name. s.mu held.
func (s *Service) lookupExecution(name string) (*execState, error) {
	if _, _, err := parseExecutionName(name); err != nil {
		return nil, err
	}
	e, ok := s.execs[name]
	if !ok {
		return nil, notFoundExecution(name)
	}
	return e, nil
}

// GetExecution returns an execution.
func (es *executionsServer) GetExecution(_ context.Context, req *runpb.GetExecutionRequest) (*runpb.Execution, error) {
	if _, _, err := parseExecutionName(req.GetName()); err != nil { // before the lock
		return nil, err
	}
	es.s.mu.Lock()
	defer es.s.mu.Unlock()
	e, ok := es.s.execs[req.GetName()]
	if !ok {
		return nil, notFoundExecution(req.GetName())
	}
	return e.snapshot(), nil
}

// ListExecutions lists the executions of a job ("-" for every job), newest first. A job's page
// is read from its index; "-" merges the indexes of the jobs it matches.
func (es *executionsServer) ListExecutions(_ context.Context, req *runpb.ListExecutionsRequest) (*runpb.ListExecutionsResponse, error) {
	k, err := parseJobName(req.GetParent())
	if err != nil {
		return nil, err
	}
	es.s.mu.Lock()
	defer es.s.mu.Unlock()
	var all []*execState
	if k.job != "-" && k.location != "-" {
		if _, ok := es.s.jobs[k.name()]; !ok {
			return nil, notFoundJob(k)
		}
		all = es.s.byJob[k.name()]
	} else {
		for _, list := range es.s.byJob {
			if j := list[0].job; j.project == k.project && matches(k.location, j.location) && matches(k.job, j.job) {
				all = append(all, list...)
			}
		}
		sort.Slice(all, func(a, b int) bool { return olderThan(all[b], all[a]) })
	}
	items, next, err := page(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &runpb.ListExecutionsResponse{NextPageToken: next}
	for _, e := range items {
		resp.Executions = append(resp.Executions, e.snapshot())
	}
	return resp, nil
}

// DeleteExecution deletes a finished execution; the operation finishes after OpDelay.
func (es *executionsServer) DeleteExecution(_ context.Context, req *runpb.DeleteExecutionRequest) (*longrunningpb.Operation, error) {
	s := es.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	e, err := s.lookupExecution(req.GetName())
	if err != nil {
		return nil, err
	}
	if !etagMatches(req.GetEtag(), e.exec.Etag) {
		return nil, errAborted(e.name(), req.GetEtag())
	}
	if !e.finished {
		return nil, status.Errorf(codes.FailedPrecondition, "execution %s is still running: cancel it before deleting it", e.name())
	}
	deleted := proto.Clone(e.exec).(*runpb.Execution)
	deleted.DeleteTime = ts(s.now())
	if req.GetValidateOnly() {
		return s.doneOp(e.job.parent(), deleted), nil
	}
	s.removeExecution(e.name(), e)
	o := s.newOp(e.job.parent(), deleted)
	s.finishLater(func() { s.finishOp(o, deleted, nil) })
	return proto.Clone(o.op).(*longrunningpb.Operation), nil
}

// CancelExecution kills a running execution's attempts; the operation finishes when the
// execution has ended (cancelled).
func (es *executionsServer) CancelExecution(_ context.Context, req *runpb.CancelExecutionRequest) (*longrunningpb.Operation, error) {
	s := es.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	e, err := s.lookupExecution(req.GetName())
	if err != nil {
		return nil, err
	}
	if !etagMatches(req.GetEtag(), e.exec.Etag) {
		return nil, errAborted(e.name(), req.GetEtag())
	}
	if e.finished {
		return nil, status.Errorf(codes.FailedPrecondition, "execution %s has already completed", e.name())
	}
	if req.GetValidateOnly() {
		return s.doneOp(e.job.parent(), e.exec), nil
	}
	if !e.cancelling {
		e.cancelling = true
		setCondition(&e.exec.Conditions, withReason(
			condition("Completed", runpb.Condition_CONDITION_RECONCILING, "The execution is being cancelled.", s.now()),
			runpb.Condition_CANCELLING, runpb.Condition_INFO))
		s.touch(e)
		e.cancel()
	}
	o := s.newOp(e.job.parent(), e.exec)
	o.execName = e.name()
	e.cancelOps = append(e.cancelOps, o)
	return proto.Clone(o.op).(*longrunningpb.Operation), nil
}
