package iam

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestAllowed(t *testing.T) {
	const job = "projects/p/locations/l/jobs/j"
	tests := []struct {
		name       string
		rules      []Rule
		permission string
		resource   string
		want       bool
	}{
		{name: "no rules", permission: "run.jobs.get", resource: job, want: true},
		{name: "denied exactly", rules: []Rule{{Permissions: []string{"run.jobs.get"}, Resource: job}}, permission: "run.jobs.get", resource: job, want: false},
		{name: "other permission", rules: []Rule{{Permissions: []string{"run.jobs.run"}, Resource: job}}, permission: "run.jobs.get", resource: job, want: true},
		{name: "denied on the project", rules: []Rule{{Permissions: []string{"run.jobs.get"}, Resource: "projects/p"}}, permission: "run.jobs.get", resource: job, want: false},
		{name: "trailing slash on the rule", rules: []Rule{{Permissions: []string{"run.jobs.get"}, Resource: "projects/p/"}}, permission: "run.jobs.get", resource: job, want: false},
		{name: "a sibling is not below", rules: []Rule{{Permissions: []string{"run.jobs.get"}, Resource: "projects/p/locations/l/jobs/jo"}}, permission: "run.jobs.get", resource: job + "b", want: true},
		{name: "below a job", rules: []Rule{{Permissions: []string{"run.executions.get"}, Resource: job}}, permission: "run.executions.get", resource: job + "/executions/x", want: false},
		{name: "every resource", rules: []Rule{{Permissions: []string{"pubsub.topics.publish"}}}, permission: "pubsub.topics.publish", resource: "projects/q/topics/t", want: false},
		{name: "family wildcard", rules: []Rule{{Permissions: []string{"run.jobs.*"}}}, permission: "run.jobs.runWithOverrides", resource: job, want: false},
		{name: "wildcard stays in its family", rules: []Rule{{Permissions: []string{"run.jobs.*"}}}, permission: "run.executions.get", resource: job, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New()
			for _, r := range tt.rules {
				if err := p.Deny(r); err != nil {
					t.Fatal(err)
				}
			}
			if got := p.Allowed(tt.permission, tt.resource); got != tt.want {
				t.Errorf("Allowed(%s, %s) = %v, want %v", tt.permission, tt.resource, got, tt.want)
			}
		})
	}
	var nilPolicy *Policy
	if !nilPolicy.Allowed("run.jobs.get", job) {
		t.Error("a nil policy denies")
	}
}

func TestDenyRefusesBadRules(t *testing.T) {
	for _, r := range []Rule{{}, {Permissions: []string{"run"}}, {Permissions: []string{"run.jobs."}}, {Permissions: []string{"run.*.get"}}, {Permissions: []string{"run.jobs get"}}} {
		if err := New().Deny(r); err == nil {
			t.Errorf("Deny(%+v) accepted", r)
		}
	}
}

func TestCheckHasGooglesShape(t *testing.T) {
	p := New()
	_ = p.Deny(Rule{Permissions: []string{"run.jobs.get"}})
	err := p.Check("run.jobs.get", "projects/p/locations/l/jobs/j")
	st := status.Convert(err)
	if st.Code() != codes.PermissionDenied || st.Message() != "Permission 'run.jobs.get' denied on resource 'projects/p/locations/l/jobs/j' (or it may not exist)." {
		t.Fatalf("Check = %v", err)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.Reason != "IAM_PERMISSION_DENIED" || info.Metadata["permission"] != "run.jobs.get" {
		t.Errorf("details %v: want an ErrorInfo naming the permission", st.Details())
	}
	if got := p.Granted("projects/p/locations/l/jobs/j", []string{"run.jobs.get", "run.jobs.run", "run.jobs.run"}); !slices.Equal(got, []string{"run.jobs.run"}) {
		t.Errorf("Granted = %q", got)
	}
}

func TestGuarded(t *testing.T) {
	tests := []struct {
		name           string
		method         string
		req            any
		wantPermission string
		wantResource   string
		wantOK         bool
	}{
		{name: "get", method: "/google.cloud.run.v2.Jobs/GetJob", req: &runpb.GetJobRequest{Name: "projects/p/locations/l/jobs/j"}, wantPermission: "run.jobs.get", wantResource: "projects/p/locations/l/jobs/j", wantOK: true},
		{name: "nested field", method: "/google.cloud.run.v2.Jobs/UpdateJob", req: &runpb.UpdateJobRequest{Job: &runpb.Job{Name: "projects/p/locations/l/jobs/j"}}, wantPermission: "run.jobs.update", wantResource: "projects/p/locations/l/jobs/j", wantOK: true},
		{name: "nested field unset", method: "/google.cloud.run.v2.Jobs/UpdateJob", req: &runpb.UpdateJobRequest{}, wantPermission: "run.jobs.update", wantResource: "", wantOK: true},
		{name: "run", method: "/google.cloud.run.v2.Jobs/RunJob", req: &runpb.RunJobRequest{Name: "n"}, wantPermission: "run.jobs.run", wantResource: "n", wantOK: true},
		{name: "run with overrides", method: "/google.cloud.run.v2.Jobs/RunJob", req: &runpb.RunJobRequest{Name: "n", Overrides: &runpb.RunJobRequest_Overrides{}}, wantPermission: "run.jobs.runWithOverrides", wantResource: "n", wantOK: true},
		{name: "unguarded", method: "/google.cloud.run.v2.Jobs/TestIamPermissions", req: &runpb.GetJobRequest{}, wantOK: false},
		{name: "not a message", method: "/google.cloud.run.v2.Jobs/GetJob", req: 3, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perm, res, ok := Guarded(tt.method, tt.req)
			if perm != tt.wantPermission || res != tt.wantResource || ok != tt.wantOK {
				t.Errorf("Guarded = %q, %q, %v; want %q, %q, %v", perm, res, ok, tt.wantPermission, tt.wantResource, tt.wantOK)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	p := New()
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	do := func(method, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+"/emulator/v1/iam/deny", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, _ = io.Copy(b, resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := do("POST", `{"permissions":["pubsub.topics.publish"],"resource":"projects/p/topics/t"}`); code != http.StatusCreated {
		t.Fatalf("POST: %d", code)
	}
	if code, body := do("POST", `{"principal":"x","permissions":["a.b.c"]}`); code != http.StatusBadRequest || !strings.Contains(body, "principal") {
		t.Errorf("POST with a principal: %d %s; want 400 naming the field (there are no principals)", code, body)
	}
	if code, _ := do("POST", `{"permissions":[]}`); code != http.StatusBadRequest {
		t.Errorf("POST without permissions: %d", code)
	}
	if code, body := do("GET", ""); code != http.StatusOK || !strings.Contains(body, `"pubsub.topics.publish"`) {
		t.Errorf("GET: %d %s", code, body)
	}
	if p.Allowed("pubsub.topics.publish", "projects/p/topics/t") {
		t.Error("the POSTed rule does not deny")
	}
	if code, _ := do("DELETE", ""); code != http.StatusNoContent || !p.Allowed("pubsub.topics.publish", "projects/p/topics/t") {
		t.Errorf("DELETE: %d, rules left %v", code, p.Rules())
	}
	if code, body := do("GET", ""); code != http.StatusOK || !strings.Contains(body, `"rules":[]`) {
		t.Errorf("GET after DELETE: %d %s", code, body)
	}
}

// FuzzDenyRule feeds the HTTP handler any body: it never panics, and a rule it accepts never
// denies a permission outside its own list.
func FuzzDenyRule(f *testing.F) {
	f.Add(`{"permissions":["run.jobs.*"],"resource":"projects/p"}`)
	f.Add(`{"permissions":["a.b.c"]}`)
	f.Add(`{"permissions":["x"],"resource":""}`)
	f.Fuzz(func(t *testing.T, body string) {
		p := New()
		h := p.Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/emulator/v1/iam/deny", strings.NewReader(body)))
		if rec.Code == http.StatusCreated && len(p.Rules()) != 1 {
			t.Fatalf("accepted, but %d rules", len(p.Rules()))
		}
		for _, r := range p.Rules() {
			for _, perm := range r.Permissions {
				if strings.HasPrefix(perm, "zz.") {
					return
				}
			}
		}
		if !p.Allowed("zz.unlisted.permission", "projects/p/topics/t") {
			t.Fatalf("rules %v deny a permission they do not list", p.Rules())
		}
	})
}
