package cloudrun

import (
	"context"
	"sort"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// tasksServer implements google.cloud.run.v2.Tasks.
type tasksServer struct {
	runpb.UnimplementedTasksServer
	s *Service
}

// GetTask returns a task.
func (ts *tasksServer) GetTask(_ context.Context, req *runpb.GetTaskRequest) (*runpb.Task, error) {
	execName, err := parseTaskName(req.GetName())
	if err != nil {
		return nil, err
	}
	ts.s.mu.Lock()
	defer ts.s.mu.Unlock()
	if e, ok := ts.s.execs[execName]; ok {
		for _, t := range e.tasks {
			if t.task.Name == req.GetName() {
				return proto.Clone(t.task).(*runpb.Task), nil
			}
		}
	}
	return nil, status.Errorf(codes.NotFound, "task %q not found", req.GetName())
}

// ListTasks lists the tasks of an execution by index. The job and the execution may be "-";
// then the executions are taken newest first.
func (ts *tasksServer) ListTasks(_ context.Context, req *runpb.ListTasksRequest) (*runpb.ListTasksResponse, error) {
	k, execID, err := parseExecutionName(req.GetParent())
	if err != nil {
		return nil, err
	}
	s := ts.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if execID != "-" && k.job != "-" && k.location != "-" {
		if _, ok := s.execs[req.GetParent()]; !ok {
			return nil, notFoundExecution(req.GetParent())
		}
	}
	var execs []*execState
	for _, e := range s.execs {
		if e.job.project == k.project && matches(k.location, e.job.location) && matches(k.job, e.job.job) && matches(execID, e.id) {
			execs = append(execs, e)
		}
	}
	sort.Slice(execs, func(a, b int) bool {
		return newer(execs[a].exec.CreateTime.AsTime(), execs[a].seq, execs[b].exec.CreateTime.AsTime(), execs[b].seq)
	})
	var all []*runpb.Task
	for _, e := range execs {
		for _, t := range e.tasks {
			all = append(all, t.task)
		}
	}
	items, next, err := page(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &runpb.ListTasksResponse{NextPageToken: next}
	for _, t := range items {
		resp.Tasks = append(resp.Tasks, proto.Clone(t).(*runpb.Task))
	}
	return resp, nil
}
