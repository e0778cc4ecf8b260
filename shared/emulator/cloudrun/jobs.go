package cloudrun

import (
	"context"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator/iam"
)

// Cloud Run's template defaults and limits.
const (
	defaultTaskCount  = 1
	maxTaskCount      = 10000
	defaultMaxRetries = 3
	maxMaxRetries     = 10
	defaultTimeout    = 600 * time.Second
	maxTimeout        = 168 * time.Hour
	actor             = "emulator" // creator and last_modifier
)

// reservedPrefixes are the label and annotation namespaces Cloud Run v2 rejects.
var reservedPrefixes = []string{"run.googleapis.com/", "cloud.googleapis.com/", "serving.knative.dev/", "autoscaling.knative.dev/"}

// jobState is one stored job.
type jobState struct {
	key     jobKey
	job     *runpb.Job
	seq     int64
	running int // executions not finished
}

func notFoundJob(k jobKey) error {
	return status.Errorf(codes.NotFound, "Resource '%s' of kind 'JOB' in region '%s' in project '%s' does not exist.", k.job, k.location, k.project)
}

func errAborted(name, etag string) error {
	return status.Errorf(codes.Aborted, "etag %s does not match the current version of %s", etag, name)
}

func checkReserved(field string, m map[string]string) error {
	for k := range m {
		for _, p := range reservedPrefixes {
			if strings.HasPrefix(k, p) {
				return status.Errorf(codes.InvalidArgument, "%s: key %q is in the reserved namespace %s, which Cloud Run API v2 does not support", field, k, strings.TrimSuffix(p, "/"))
			}
		}
	}
	return nil
}

func checkTimeout(field string, d *durationpb.Duration) error {
	if err := d.CheckValid(); err != nil {
		return status.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	if v := d.AsDuration(); v <= 0 || v > maxTimeout {
		return status.Errorf(codes.InvalidArgument, "%s %v must be positive and at most %v", field, v, maxTimeout)
	}
	return nil
}

func checkTaskCount(field string, n int32) error {
	if n < 0 || n > maxTaskCount {
		return status.Errorf(codes.InvalidArgument, "%s %d must be between 1 and %d", field, n, maxTaskCount)
	}
	return nil
}

// normalizeJob validates a job as Cloud Run does and returns a copy with the template defaults
// applied (task_count 1, max_retries 3, timeout 600 s).
func normalizeJob(in *runpb.Job) (*runpb.Job, error) {
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "job is required")
	}
	j := proto.Clone(in).(*runpb.Job)
	if err := checkMetadata("", j.Labels, j.Annotations); err != nil {
		return nil, err
	}
	if j.CreateExecution != nil {
		return nil, status.Error(codes.Unimplemented, "start_execution_token and run_execution_token are not supported by the emulator: call RunJob")
	}
	et := j.Template
	if et == nil || et.Template == nil {
		return nil, status.Error(codes.InvalidArgument, "template.template is required")
	}
	if err := checkMetadata("template.", et.Labels, et.Annotations); err != nil {
		return nil, err
	}
	if err := checkTaskCount("template.task_count", et.TaskCount); err != nil {
		return nil, err
	}
	if et.TaskCount == 0 {
		et.TaskCount = defaultTaskCount
	}
	if et.Parallelism < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "template.parallelism %d must not be negative", et.Parallelism)
	}
	tt := et.Template
	if len(tt.Containers) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "template.template.containers: exactly one container is required (the emulator runs no sidecars), got %d", len(tt.Containers))
	}
	c := tt.Containers[0]
	if c.GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "template.template.containers[0].image is required")
	}
	if err := checkContainer("template.template.containers[0]", c); err != nil {
		return nil, err
	}
	if r, ok := tt.Retries.(*runpb.TaskTemplate_MaxRetries); ok {
		if r.MaxRetries < 0 || r.MaxRetries > maxMaxRetries {
			return nil, status.Errorf(codes.InvalidArgument, "template.template.max_retries %d must be between 0 and %d", r.MaxRetries, maxMaxRetries)
		}
	} else {
		tt.Retries = &runpb.TaskTemplate_MaxRetries{MaxRetries: defaultMaxRetries}
	}
	if tt.Timeout == nil {
		tt.Timeout = durationpb.New(defaultTimeout)
	} else if err := checkTimeout("template.template.timeout", tt.Timeout); err != nil {
		return nil, err
	}
	return j, nil
}

func readyCondition(state runpb.Condition_State, msg string, at time.Time) *runpb.Condition {
	return &runpb.Condition{Type: "Ready", State: state, Message: msg, LastTransitionTime: ts(at)}
}

// reconcileJob marks a job as being brought to its new generation. s.mu held.
func reconcileJob(j *runpb.Job, now time.Time) {
	j.Reconciling = true
	j.TerminalCondition = readyCondition(runpb.Condition_CONDITION_RECONCILING, "Waiting for the operation to finish.", now)
	j.Etag = newEtag()
}

// startJobOp returns the operation for a create or update of js, which marks the job ready
// after OpDelay if nothing replaced it meanwhile. s.mu held, service open.
func (s *Service) startJobOp(js *jobState) *longrunningpb.Operation {
	name, gen := js.key.name(), js.job.Generation
	o := s.newOp(js.key.parent(), js.job)
	o.jobName = name
	s.finishLater(func() {
		if cur, ok := s.jobs[name]; ok && cur == js && js.job.Generation == gen && js.job.Reconciling {
			js.job.Reconciling = false
			js.job.ObservedGeneration = gen
			js.job.TerminalCondition = readyCondition(runpb.Condition_CONDITION_SUCCEEDED, "", s.now())
			js.job.Etag = newEtag()
		}
		s.finishOp(o, js.job, nil)
	})
	return proto.Clone(o.op).(*longrunningpb.Operation)
}

// newJob returns the stored form of a validated job. s.mu held.
func (s *Service) newJob(k jobKey, j *runpb.Job) *jobState {
	now := s.now()
	j.Name = k.name()
	j.Uid = newUUID()
	j.Generation = 1
	j.CreateTime, j.UpdateTime = ts(now), ts(now)
	j.DeleteTime, j.ExpireTime = nil, nil
	j.Creator, j.LastModifier = actor, actor
	j.ObservedGeneration = 0
	j.Conditions = nil
	j.ExecutionCount = 0
	j.LatestCreatedExecution = nil
	j.SatisfiesPzs = false
	reconcileJob(j, now)
	return &jobState{key: k, job: j, seq: s.nextSeq()}
}

func (s *Service) checkOpen() error {
	if s.closed {
		return status.Error(codes.Unavailable, "the Cloud Run emulator is closed")
	}
	return nil
}

// jobsServer implements google.cloud.run.v2.Jobs.
type jobsServer struct {
	runpb.UnimplementedJobsServer
	s   *Service
	iam *iam.Server // the jobs' IAM methods
}

// CreateJob validates the job and creates it; the operation finishes after OpDelay.
func (js *jobsServer) CreateJob(_ context.Context, req *runpb.CreateJobRequest) (*longrunningpb.Operation, error) {
	s := js.s
	project, location, err := parseParent(req.GetParent())
	if err != nil {
		return nil, err
	}
	id := req.GetJobId()
	if id == "" {
		id = "job-" + randomSuffix(8)
	}
	if err := validJobID(id); err != nil {
		return nil, err
	}
	k := jobKey{project, location, id}
	if n := req.GetJob().GetName(); n != "" && n != k.name() {
		return nil, status.Errorf(codes.InvalidArgument, "job.name %q does not match %q", n, k.name())
	}
	j, err := normalizeJob(req.GetJob())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if _, ok := s.jobs[k.name()]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Resource '%s' already exists.", id)
	}
	st := s.newJob(k, j)
	if req.GetValidateOnly() {
		return s.doneOp(k.parent(), st.job), nil
	}
	s.jobs[k.name()] = st
	return s.startJobOp(st), nil
}

// GetJob returns a job.
func (js *jobsServer) GetJob(_ context.Context, req *runpb.GetJobRequest) (*runpb.Job, error) {
	k, err := parseJobName(req.GetName())
	if err != nil {
		return nil, err
	}
	js.s.mu.Lock()
	defer js.s.mu.Unlock()
	st, ok := js.s.jobs[k.name()]
	if !ok {
		return nil, notFoundJob(k)
	}
	return proto.Clone(st.job).(*runpb.Job), nil
}

// ListJobs lists the jobs of a location ("-" for all), newest first.
func (js *jobsServer) ListJobs(_ context.Context, req *runpb.ListJobsRequest) (*runpb.ListJobsResponse, error) {
	project, location, err := parseParent(req.GetParent())
	if err != nil {
		return nil, err
	}
	js.s.mu.Lock()
	defer js.s.mu.Unlock()
	var all []*jobState
	for _, st := range js.s.jobs {
		if st.key.project == project && matches(location, st.key.location) {
			all = append(all, st)
		}
	}
	sort.Slice(all, func(a, b int) bool {
		return newer(all[a].job.CreateTime.AsTime(), all[a].seq, all[b].job.CreateTime.AsTime(), all[b].seq)
	})
	items, next, err := page(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &runpb.ListJobsResponse{NextPageToken: next}
	for _, st := range items {
		resp.Jobs = append(resp.Jobs, proto.Clone(st.job).(*runpb.Job))
	}
	return resp, nil
}

// newer orders by creation time, then creation order, newest first.
func newer(t1 time.Time, seq1 int64, t2 time.Time, seq2 int64) bool {
	if !t1.Equal(t2) {
		return t1.After(t2)
	}
	return seq1 > seq2
}

// UpdateJob replaces the job's spec (generation + 1), or creates it with allow_missing.
func (js *jobsServer) UpdateJob(_ context.Context, req *runpb.UpdateJobRequest) (*longrunningpb.Operation, error) {
	s := js.s
	k, err := parseJobName(req.GetJob().GetName())
	if err != nil {
		return nil, err
	}
	j, err := normalizeJob(req.GetJob())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	old, ok := s.jobs[k.name()]
	if !ok {
		if !req.GetAllowMissing() {
			return nil, notFoundJob(k)
		}
		if err := validJobID(k.job); err != nil {
			return nil, err
		}
		st := s.newJob(k, j)
		if req.GetValidateOnly() {
			return s.doneOp(k.parent(), st.job), nil
		}
		s.jobs[k.name()] = st
		return s.startJobOp(st), nil
	}
	if !etagMatches(req.GetJob().GetEtag(), old.job.Etag) {
		return nil, errAborted(k.name(), req.GetJob().GetEtag())
	}
	o := old.job
	j.Name, j.Uid, j.Generation = o.Name, o.Uid, o.Generation+1
	j.CreateTime, j.UpdateTime = o.CreateTime, ts(s.now())
	j.DeleteTime, j.ExpireTime = nil, nil
	j.Creator, j.LastModifier = o.Creator, actor
	j.ObservedGeneration = o.ObservedGeneration
	j.Conditions = o.Conditions
	j.ExecutionCount = o.ExecutionCount
	j.LatestCreatedExecution = o.LatestCreatedExecution
	j.SatisfiesPzs = o.SatisfiesPzs
	reconcileJob(j, s.now())
	if req.GetValidateOnly() {
		return s.doneOp(k.parent(), j), nil
	}
	old.job = j
	return s.startJobOp(old), nil
}

// DeleteJob deletes a job and its executions. It refuses while an execution runs.
func (js *jobsServer) DeleteJob(_ context.Context, req *runpb.DeleteJobRequest) (*longrunningpb.Operation, error) {
	s := js.s
	k, err := parseJobName(req.GetName())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	st, ok := s.jobs[k.name()]
	if !ok {
		return nil, notFoundJob(k)
	}
	if !etagMatches(req.GetEtag(), st.job.Etag) {
		return nil, errAborted(k.name(), req.GetEtag())
	}
	if st.running > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s has %d running execution(s): cancel them before deleting the job", k.name(), st.running)
	}
	deleted := proto.Clone(st.job).(*runpb.Job)
	deleted.DeleteTime = ts(s.now())
	if req.GetValidateOnly() {
		return s.doneOp(k.parent(), deleted), nil
	}
	delete(s.jobs, k.name())
	for name, e := range s.execs {
		if e.job == k {
			s.removeExecution(name, e)
		}
	}
	o := s.newOp(k.parent(), deleted)
	s.finishLater(func() { s.finishOp(o, deleted, nil) })
	return proto.Clone(o.op).(*longrunningpb.Operation), nil
}

// RunJob starts an execution; its operation finishes when the execution does.
func (js *jobsServer) RunJob(_ context.Context, req *runpb.RunJobRequest) (*longrunningpb.Operation, error) {
	return js.s.runJob(req)
}
