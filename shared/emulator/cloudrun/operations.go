package cloudrun

import (
	"context"
	"sort"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// longPoll is how long GetOperation waits for an unfinished operation before answering.
const longPoll = time.Second

// opState is one long-running operation.
type opState struct {
	op   *longrunningpb.Operation
	done chan struct{} // closed when op.Done is set
	seq  int64
	// While the operation runs, its metadata is the current state of this job or execution.
	jobName, execName string
}

// newOp records a new unfinished operation under parent with meta as metadata. s.mu held.
func (s *Service) newOp(parent string, meta proto.Message) *opState {
	o := &opState{
		op: &longrunningpb.Operation{
			Name:     parent + "/operations/" + newUUID(),
			Metadata: mustAny(meta),
		},
		done: make(chan struct{}),
		seq:  s.nextSeq(),
	}
	s.ops[o.op.Name] = o
	return o
}

// finishOp completes o with resp, or with err if err is not nil. Completing twice does nothing.
// s.mu held.
func (s *Service) finishOp(o *opState, resp proto.Message, err error) {
	if o.op.Done {
		return
	}
	o.op.Done = true
	var a *anypb.Any
	if resp != nil {
		a = mustAny(resp)
		o.op.Metadata = a
	}
	if err != nil {
		o.op.Result = &longrunningpb.Operation_Error{Error: status.Convert(err).Proto()}
	} else {
		if a == nil {
			a = mustAny(resp)
		}
		// The same bytes as the metadata, marshalled once; an Any is replaced, never changed.
		o.op.Result = &longrunningpb.Operation_Response{Response: &anypb.Any{TypeUrl: a.TypeUrl, Value: a.Value}}
	}
	close(o.done)
}

// doneOp records an operation that is already finished (validate_only answers). s.mu held.
func (s *Service) doneOp(parent string, resp proto.Message) *longrunningpb.Operation {
	o := s.newOp(parent, resp)
	s.finishOp(o, resp, nil)
	return proto.Clone(o.op).(*longrunningpb.Operation)
}

// finishLater runs fn under s.mu after OpDelay, unless the service closes first. s.mu held and
// the service not closed (so wg.Add cannot race Close's Wait).
func (s *Service) finishLater(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(s.opts.OpDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		fn()
	}()
}

// opView returns a copy of o to answer with; an unfinished operation's metadata is refreshed
// from the resource it is about. s.mu held.
func (s *Service) opView(o *opState) *longrunningpb.Operation {
	if !o.op.Done {
		if j, ok := s.jobs[o.jobName]; ok && o.jobName != "" {
			o.op.Metadata = mustAny(j.job)
		}
		if e, ok := s.execs[o.execName]; ok && o.execName != "" {
			o.op.Metadata = mustAny(e.exec)
		}
	}
	return proto.Clone(o.op).(*longrunningpb.Operation)
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic("cloudrun: marshal " + string(proto.MessageName(m)) + ": " + err.Error())
	}
	return a
}

// operationsServer implements google.longrunning.Operations for the service's operations.
type operationsServer struct {
	longrunningpb.UnimplementedOperationsServer
	s *Service
}

func (o *operationsServer) lookup(name string) (*opState, error) {
	if _, ok := splitName(name, "projects/*/locations/*/operations/*"); !ok {
		return nil, status.Errorf(codes.InvalidArgument, "operation name %q is not of the form projects/{project}/locations/{location}/operations/{operation}", name)
	}
	op, ok := o.s.ops[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %q not found", name)
	}
	return op, nil
}

// wait returns the operation once it is done or max has passed (max <= 0: no limit other than
// ctx).
func (o *operationsServer) wait(ctx context.Context, name string, max time.Duration) (*longrunningpb.Operation, error) {
	o.s.mu.Lock()
	op, err := o.lookup(name)
	o.s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	max = within(ctx, max)
	var timeout <-chan time.Time
	if max > 0 {
		t := time.NewTimer(max)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-op.done:
	case <-timeout:
	case <-o.s.ctx.Done():
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	return o.s.opView(op), nil
}

// within shortens max (0: no limit) so that the answer reaches a caller that has a deadline
// before the deadline: a long poll must never turn into DEADLINE_EXCEEDED.
func within(ctx context.Context, max time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return max
	}
	left := time.Until(dl)
	left -= min(left/2, 250*time.Millisecond) // room for a loaded machine and the REST hop
	if left <= 0 {
		left = time.Nanosecond // answer at once
	}
	if max <= 0 || left < max {
		return left
	}
	return max
}

// GetOperation answers at once for a finished operation and long-polls (up to 1 s) for an
// unfinished one.
func (o *operationsServer) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	return o.wait(ctx, req.GetName(), longPoll)
}

// WaitOperation waits until the operation finishes, req.timeout passes or the call ends.
func (o *operationsServer) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	var max time.Duration
	if req.GetTimeout() != nil {
		if err := req.GetTimeout().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "timeout: %v", err)
		}
		max = req.GetTimeout().AsDuration()
		if max <= 0 {
			max = time.Nanosecond
		}
	}
	return o.wait(ctx, req.GetName(), max)
}

// ListOperations lists the operations of projects/{p}/locations/{l} (l may be "-") in creation
// order. The filter is ignored.
func (o *operationsServer) ListOperations(_ context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	project, location, err := parseParent(req.GetName())
	if err != nil {
		return nil, err
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	var all []*opState
	for name, op := range o.s.ops {
		v, _ := splitName(name, "projects/*/locations/*/operations/*")
		if v[0] == project && matches(location, v[1]) {
			all = append(all, op)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	items, next, err := page(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &longrunningpb.ListOperationsResponse{NextPageToken: next}
	for _, op := range items {
		resp.Operations = append(resp.Operations, o.s.opView(op))
	}
	return resp, nil
}

// DeleteOperation forgets an operation (it does not cancel it).
func (o *operationsServer) DeleteOperation(_ context.Context, req *longrunningpb.DeleteOperationRequest) (*emptypb.Empty, error) {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	if _, err := o.lookup(req.GetName()); err != nil {
		return nil, err
	}
	delete(o.s.ops, req.GetName())
	return &emptypb.Empty{}, nil
}
