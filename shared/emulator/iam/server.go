package iam

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Kind is a kind of resource a Server answers the IAM methods for.
type Kind struct {
	// Match reports whether a resource name is of this kind.
	Match func(name string) bool
	// Permissions are the prefixes of the permissions that apply to it ("pubsub.topics.").
	Permissions []string
	// Exists reports whether the resource exists.
	Exists func(ctx context.Context, name string) bool
}

// Server answers google.iam.v1.IAMPolicy (GetIamPolicy, SetIamPolicy, TestIamPermissions)
// for the kinds it is given, from the deny rules of its Policy. Services whose API has these
// methods of its own (Cloud Run's Jobs) delegate to one.
type Server struct {
	iampb.UnimplementedIAMPolicyServer
	policy *Policy
	kinds  []Kind

	mu     sync.Mutex
	stored map[string]*iampb.Policy
	seq    int
}

// NewServer returns a Server for kinds, denying what p denies.
func (p *Policy) NewServer(kinds ...Kind) *Server {
	return &Server{policy: p, kinds: kinds, stored: map[string]*iampb.Policy{}}
}

func (s *Server) kind(resource string) (Kind, error) {
	for _, k := range s.kinds {
		if k.Match(resource) {
			return k, nil
		}
	}
	return Kind{}, status.Errorf(codes.InvalidArgument, "Invalid resource name '%s': the emulator has no IAM for it.", resource)
}

// TestIamPermissions answers the subset of the permissions granted on the resource; none when
// it does not exist, as Google answers.
func (s *Server) TestIamPermissions(ctx context.Context, req *iampb.TestIamPermissionsRequest) (*iampb.TestIamPermissionsResponse, error) {
	k, err := s.kind(req.GetResource())
	if err != nil {
		return nil, err
	}
	for _, perm := range req.GetPermissions() {
		if !applies(k, perm) {
			return nil, status.Errorf(codes.InvalidArgument, "Permission %s is not valid for resource '%s'.", perm, req.GetResource())
		}
	}
	if !k.Exists(ctx, req.GetResource()) {
		return &iampb.TestIamPermissionsResponse{}, nil
	}
	return &iampb.TestIamPermissionsResponse{Permissions: s.policy.Granted(req.GetResource(), req.GetPermissions())}, nil
}

func applies(k Kind, perm string) bool {
	for _, p := range k.Permissions {
		if strings.HasPrefix(perm, p) {
			return true
		}
	}
	return false
}

// GetIamPolicy returns the policy last set on the resource, or an empty one.
func (s *Server) GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	if err := s.exists(ctx, req.GetResource()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.stored[req.GetResource()]; ok {
		return proto.Clone(p).(*iampb.Policy), nil
	}
	return &iampb.Policy{Version: 1, Etag: []byte("ACAB")}, nil
}

// SetIamPolicy stores the policy (it grants and denies nothing: only deny rules do). An etag
// that is not the stored policy's is Aborted, as Google answers a concurrent change.
func (s *Server) SetIamPolicy(ctx context.Context, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	if err := s.exists(ctx, req.GetResource()); err != nil {
		return nil, err
	}
	if req.GetPolicy() == nil {
		return nil, status.Error(codes.InvalidArgument, "policy is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := []byte("ACAB")
	if p, ok := s.stored[req.GetResource()]; ok {
		cur = p.Etag
	}
	if e := req.GetPolicy().GetEtag(); len(e) > 0 && !bytes.Equal(e, cur) {
		return nil, status.Error(codes.Aborted, "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.")
	}
	p := proto.Clone(req.GetPolicy()).(*iampb.Policy)
	s.seq++
	p.Etag = fmt.Appendf(nil, "emu-%d", s.seq)
	s.stored[req.GetResource()] = p
	return proto.Clone(p).(*iampb.Policy), nil
}

func (s *Server) exists(ctx context.Context, resource string) error {
	k, err := s.kind(resource)
	if err != nil {
		return err
	}
	if !k.Exists(ctx, resource) {
		return status.Errorf(codes.NotFound, "Resource not found (resource=%s).", resource)
	}
	return nil
}
