package scheduler

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// outputOnly clears the fields a caller may send but the service ignores.
func outputOnly(j *schedulerpb.Job) {
	j.UserUpdateTime, j.State, j.Status, j.ScheduleTime, j.LastAttemptTime = nil, 0, nil, nil, nil
}

// ListJobs lists the jobs of a location, ordered by name.
func (s *Service) ListJobs(_ context.Context, req *schedulerpb.ListJobsRequest) (*schedulerpb.ListJobsResponse, error) {
	if _, err := parseParent(req.GetParent()); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, invalid("page_size %d must not be negative", size)
	case size == 0 || size > maxPageSize:
		size = maxPageSize
	}
	after := ""
	if tok := req.GetPageToken(); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		parent, last, ok := strings.Cut(string(b), "\x00")
		if err != nil || !ok || parent != req.GetParent() {
			return nil, invalid("invalid page_token %q", tok)
		}
		after = last
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := req.GetParent() + "/jobs/"
	var names []string
	for name := range s.jobs {
		if strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	resp := &schedulerpb.ListJobsResponse{}
	for i, name := range names {
		if i == size {
			last := names[i-1]
			resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(req.GetParent() + "\x00" + last))
			break
		}
		resp.Jobs = append(resp.Jobs, proto.Clone(s.jobs[name].pb).(*schedulerpb.Job))
	}
	return resp, nil
}

// GetJob returns a job.
func (s *Service) GetJob(_ context.Context, req *schedulerpb.GetJobRequest) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.lookupLocked(req.GetName())
	if err != nil {
		return nil, err
	}
	return proto.Clone(j.pb).(*schedulerpb.Job), nil
}

// CreateJob adds an ENABLED job under parent; its name is required.
func (s *Service) CreateJob(_ context.Context, req *schedulerpb.CreateJobRequest) (*schedulerpb.Job, error) {
	project, err := parseParent(req.GetParent())
	if err != nil {
		return nil, err
	}
	if req.GetJob() == nil {
		return nil, invalid("job is required")
	}
	pb := proto.Clone(req.GetJob()).(*schedulerpb.Job)
	if pb.GetName() == "" {
		return nil, invalid("job.name is required in the emulator (format %s/jobs/JOB_ID)", req.GetParent())
	}
	parent, _, err := parseName(pb.GetName())
	if err != nil {
		return nil, err
	}
	if parent != req.GetParent() {
		return nil, invalid("job name %q is not under parent %q", pb.GetName(), req.GetParent())
	}
	outputOnly(pb)
	sched, err := normalize(pb, project)
	if err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[pb.GetName()]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "%s already exists", describe(pb.GetName()))
	}
	n := 0
	for name := range s.jobs {
		if strings.HasPrefix(name, parent+"/jobs/") {
			n++
		}
	}
	if n >= maxJobsPerLocation {
		return nil, status.Errorf(codes.ResourceExhausted, "quota exceeded: at most %d jobs per location", maxJobsPerLocation)
	}
	now := s.clock.Now()
	pb.State = schedulerpb.Job_ENABLED
	pb.UserUpdateTime = timestamppb.New(now)
	j := &job{pb: pb, sched: sched}
	j.arm(now)
	s.jobs[pb.GetName()] = j
	s.notify()
	return proto.Clone(pb).(*schedulerpb.Job), nil
}

// UpdateJob changes the fields named by update_mask (all updatable fields the request sets when
// the mask is empty). A refused update leaves the job unchanged.
func (s *Service) UpdateJob(_ context.Context, req *schedulerpb.UpdateJobRequest) (*schedulerpb.Job, error) {
	if req.GetJob() == nil {
		return nil, invalid("job is required")
	}
	_, project, err := parseName(req.GetJob().GetName())
	if err != nil {
		return nil, err
	}
	src := proto.Clone(req.GetJob()).(*schedulerpb.Job)

	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.lookupLocked(src.GetName())
	if err != nil {
		return nil, err
	}
	pb := proto.Clone(j.pb).(*schedulerpb.Job)
	if err := applyUpdate(pb, src, req.GetUpdateMask()); err != nil {
		return nil, err
	}
	sched, err := normalize(pb, project)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	pb.UserUpdateTime = timestamppb.New(now)
	j.pb, j.sched = pb, sched
	j.exec++ // retries of the old configuration stop
	j.arm(now)
	s.notify()
	return proto.Clone(pb).(*schedulerpb.Job), nil
}

// DeleteJob removes a job; its pending retries stop and an attempt in flight is not recorded.
func (s *Service) DeleteJob(_ context.Context, req *schedulerpb.DeleteJobRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.lookupLocked(req.GetName())
	if err != nil {
		return nil, err
	}
	j.exec++
	j.next = time.Time{}
	delete(s.jobs, req.GetName())
	s.notify()
	return &emptypb.Empty{}, nil
}

// PauseJob stops an ENABLED job from firing.
func (s *Service) PauseJob(_ context.Context, req *schedulerpb.PauseJobRequest) (*schedulerpb.Job, error) {
	return s.setState(req.GetName(), schedulerpb.Job_ENABLED, schedulerpb.Job_PAUSED)
}

// ResumeJob makes a PAUSED job fire again from its next slot; slots missed while paused don't fire.
func (s *Service) ResumeJob(_ context.Context, req *schedulerpb.ResumeJobRequest) (*schedulerpb.Job, error) {
	return s.setState(req.GetName(), schedulerpb.Job_PAUSED, schedulerpb.Job_ENABLED)
}

// setState moves a job from state from to state to, or fails with FailedPrecondition.
func (s *Service) setState(name string, from, to schedulerpb.Job_State) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.lookupLocked(name)
	if err != nil {
		return nil, err
	}
	if j.pb.GetState() != from {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is %s; it must be %s", describe(name), j.pb.GetState(), from)
	}
	now := s.clock.Now()
	j.pb.State = to
	j.pb.UserUpdateTime = timestamppb.New(now)
	if to == schedulerpb.Job_PAUSED {
		j.exec++ // a paused job does not execute: pending retries stop
		j.held = time.Time{}
	}
	j.arm(now)
	s.notify()
	return proto.Clone(j.pb).(*schedulerpb.Job), nil
}

// RunJob dispatches the job now, whatever its state and even if an attempt is in flight; the
// attempt runs after the call returns, with the current time as its schedule time.
func (s *Service) RunJob(_ context.Context, req *schedulerpb.RunJobRequest) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.lookupLocked(req.GetName())
	if err != nil {
		return nil, err
	}
	if s.closed {
		return nil, status.Error(codes.Unavailable, "emulator closed")
	}
	s.goLocked(func() { s.runNow(j) })
	return proto.Clone(j.pb).(*schedulerpb.Job), nil
}

// lookupLocked validates name and returns its job. s.mu must be held.
func (s *Service) lookupLocked(name string) (*job, error) {
	if _, _, err := parseName(name); err != nil {
		return nil, err
	}
	j, ok := s.jobs[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s not found", describe(name))
	}
	return j, nil
}
