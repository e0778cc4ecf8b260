// Package iam is the emulator's IAM: every permission is granted to every caller unless a deny
// rule takes it away, so tests can see what production does when a role is missing. Denied
// permissions fail both the real RPCs they guard (PermissionDenied, with Google's message and
// an ErrorInfo naming the permission) and TestIamPermissions, which answers the granted subset
// as Google does.
//
// Resource names are the API's own: Cloud Run "projects/P/locations/L/jobs/J" (executions and
// tasks below it), Scheduler "projects/P/locations/L/jobs/J", Pub/Sub "projects/P/topics/T"
// and "projects/P/subscriptions/S", Cloud Storage "projects/_/buckets/B" and
// "projects/_/buckets/B/objects/O". A rule's resource matches that name and every name below
// it ("projects/p" denies in the whole project); "" matches every resource.
//
// Fidelity limits: there is no authentication, so there is no principal: a rule applies to
// every caller (the functions too). Policies set with SetIamPolicy are stored and returned but
// never grant or deny anything; only the deny rules do.
package iam

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Rule denies permissions on a resource and everything below it.
type Rule struct {
	// Permissions are the denied permissions, such as "run.jobs.runWithOverrides"; a trailing
	// ".*" denies a whole family ("run.jobs.*"). At least one is required.
	Permissions []string `json:"permissions"`
	// Resource is a resource name or the name of a parent ("projects/p"); "" is every resource.
	Resource string `json:"resource,omitempty"`
}

// Policy holds the deny rules. The zero value and a nil *Policy grant everything; it is safe
// for concurrent use.
type Policy struct {
	mu    sync.Mutex
	rules []Rule
}

// New returns a policy that grants everything.
func New() *Policy { return &Policy{} }

// Deny adds r.
func (p *Policy) Deny(r Rule) error {
	if len(r.Permissions) == 0 {
		return fmt.Errorf("iam deny rule: permissions is required")
	}
	for _, perm := range r.Permissions {
		if !validPermission(perm) {
			return fmt.Errorf("iam deny rule: %q is not a permission (service.resource.verb, or service.resource.*)", perm)
		}
	}
	r.Resource = strings.TrimSuffix(r.Resource, "/")
	r.Permissions = slices.Clone(r.Permissions)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	return nil
}

// validPermission accepts service.resource.verb (dots separating at least three non-empty
// parts of letters and digits), the verb possibly "*".
func validPermission(perm string) bool {
	parts := strings.Split(perm, ".")
	if len(parts) < 3 || len(perm) > 256 {
		return false
	}
	for i, part := range parts {
		if part == "*" && i == len(parts)-1 {
			continue
		}
		if part == "" || strings.IndexFunc(part, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) >= 0 {
			return false
		}
	}
	return true
}

// Rules returns the deny rules.
func (p *Policy) Rules() []Rule {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rules)
}

// Clear removes every deny rule.
func (p *Policy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Allowed reports whether permission is granted on resource.
func (p *Policy) Allowed(permission, resource string) bool {
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if !under(resource, r.Resource) {
			continue
		}
		for _, d := range r.Permissions {
			if d == permission || strings.HasSuffix(d, ".*") && strings.HasPrefix(permission, strings.TrimSuffix(d, "*")) {
				return false
			}
		}
	}
	return true
}

// under reports whether name is parent or below it.
func under(name, parent string) bool {
	return parent == "" || name == parent || strings.HasPrefix(name, parent+"/")
}

// Granted returns the permissions of perms granted on resource, in their order: what
// TestIamPermissions answers.
func (p *Policy) Granted(resource string, perms []string) []string {
	out := []string{}
	for _, perm := range perms {
		if p.Allowed(perm, resource) && !slices.Contains(out, perm) {
			out = append(out, perm)
		}
	}
	return out
}

// Check returns nil if permission is granted on resource, else Google's PermissionDenied.
func (p *Policy) Check(permission, resource string) error {
	if p.Allowed(permission, resource) {
		return nil
	}
	return Denied(permission, resource)
}

// Denied is the PermissionDenied Google answers when permission is missing on resource: its
// message, and an ErrorInfo (reason IAM_PERMISSION_DENIED) whose metadata names the permission
// and the resource.
func Denied(permission, resource string) error {
	st := status.New(codes.PermissionDenied, DeniedMessage(permission, resource))
	if d, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   "IAM_PERMISSION_DENIED",
		Domain:   "iam.googleapis.com",
		Metadata: map[string]string{"permission": permission, "resource": resource},
	}); err == nil {
		st = d
	}
	return st.Err()
}

// DeniedMessage is Google's message for a missing permission.
func DeniedMessage(permission, resource string) string {
	return fmt.Sprintf("Permission '%s' denied on resource '%s' (or it may not exist).", permission, resource)
}

// Handler serves the policy over HTTP:
//
//	GET    /emulator/v1/iam/deny   the deny rules
//	POST   /emulator/v1/iam/deny   add a Rule (JSON)
//	DELETE /emulator/v1/iam/deny   remove every rule (grant everything again)
func (p *Policy) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /emulator/v1/iam/deny", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		rules := p.Rules()
		if rules == nil {
			rules = []Rule{}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"rules": rules})
	})
	mux.HandleFunc("POST /emulator/v1/iam/deny", func(w http.ResponseWriter, r *http.Request) {
		var rule Rule
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rule); err != nil {
			http.Error(w, "iam deny rule: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := p.Deny(rule); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("DELETE /emulator/v1/iam/deny", func(w http.ResponseWriter, _ *http.Request) {
		p.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
