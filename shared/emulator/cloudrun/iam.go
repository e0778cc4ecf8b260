package cloudrun

import (
	"context"

	"cloud.google.com/go/iam/apiv1/iampb"
)

// TestIamPermissions answers the permissions granted on a job (none if it does not exist).
func (js *jobsServer) TestIamPermissions(ctx context.Context, req *iampb.TestIamPermissionsRequest) (*iampb.TestIamPermissionsResponse, error) {
	return js.iam.TestIamPermissions(ctx, req)
}

// GetIamPolicy returns the policy last set on a job, or an empty one.
func (js *jobsServer) GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	return js.iam.GetIamPolicy(ctx, req)
}

// SetIamPolicy stores a job's policy; it grants nothing (only the emulator's deny rules act).
func (js *jobsServer) SetIamPolicy(ctx context.Context, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	return js.iam.SetIamPolicy(ctx, req)
}

// jobExists reports whether the job named name exists.
func (s *Service) jobExists(_ context.Context, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.jobs[name]
	return ok
}
