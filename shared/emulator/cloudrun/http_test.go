package cloudrun

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"runwayjobs.dev/shared/emulator/fault"
)

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestRESTRun(t *testing.T) {
	t.Parallel()
	faults := fault.New(1)
	e := newEnv(t, Options{Faults: faults})
	j := e.createJob(t, "rest", jobSpec("sh", "-c", `echo "args=$* X=$X"`, "sh"))
	// The same job id in two locations of another project makes the v1 path ambiguous.
	for _, loc := range []string{"us-east1", "europe-west1"} {
		op, err := e.jobs.CreateJob(ctxT(t), &runpb.CreateJobRequest{Parent: "projects/q/locations/" + loc, JobId: "twice", Job: jobSpec("true")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.Wait(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	v2 := e.url + "/v2/" + j.Name + ":run"
	v1 := e.url + "/apis/run.googleapis.com/v1/namespaces/p/jobs/rest:run"
	tests := []struct {
		name     string
		url      string
		body     string
		wantCode int
		wantLog  string // in the execution's log, for a started execution
		wantErr  string // the Google error status
	}{
		{name: "v2 empty body", url: v2, wantCode: 200, wantLog: "args= X=\n"},
		{name: "v2 empty object", url: v2, body: `{}`, wantCode: 200, wantLog: "args= X=\n"},
		{name: "v2 overrides", url: v2, body: `{"overrides":{"containerOverrides":[{"args":["a","b"],"env":[{"name":"X","value":"1"}]}],"taskCount":2}}`, wantCode: 200, wantLog: "args=a b X=1\n"},
		{name: "v2 name in body", url: v2, body: `{"name":"` + j.Name + `"}`, wantCode: 200, wantLog: "args= X=\n"},
		{name: "v2 other name in body", url: v2, body: `{"name":"projects/p/locations/x/jobs/y"}`, wantCode: 400, wantErr: "INVALID_ARGUMENT"},
		{name: "v2 bad json", url: v2, body: `{`, wantCode: 400, wantErr: "INVALID_ARGUMENT"},
		{name: "v2 missing job", url: e.url + "/v2/" + testParent + "/jobs/absent:run", wantCode: 404, wantErr: "NOT_FOUND"},
		{name: "v2 no verb", url: e.url + "/v2/" + j.Name, wantCode: 404, wantErr: "NOT_FOUND"},
		{name: "v2 bad override", url: v2, body: `{"overrides":{"taskCount":20000}}`, wantCode: 400, wantErr: "INVALID_ARGUMENT"},
		{name: "v1 empty body", url: v1, wantCode: 200, wantLog: "args= X=\n"},
		{name: "v1 overrides", url: v1, body: `{"overrides":{"containerOverrides":[{"args":["c"],"env":[{"name":"X","value":"2"}]}],"timeoutSeconds":"30"}}`, wantCode: 200, wantLog: "args=c X=2\n"},
		{name: "v1 numeric timeout", url: v1, body: `{"overrides":{"timeoutSeconds":30}}`, wantCode: 200, wantLog: "args= X=\n"},
		{name: "v1 missing job", url: e.url + "/apis/run.googleapis.com/v1/namespaces/p/jobs/absent:run", wantCode: 404, wantErr: "NOT_FOUND"},
		{name: "v1 ambiguous location", url: e.url + "/apis/run.googleapis.com/v1/namespaces/q/jobs/twice:run", wantCode: 400, wantErr: "FAILED_PRECONDITION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, tt.url, tt.body)
			if code != tt.wantCode {
				t.Fatalf("POST = %d %s, want %d", code, body, tt.wantCode)
			}
			if tt.wantErr != "" {
				var ge struct {
					Error struct {
						Code   int    `json:"code"`
						Status string `json:"status"`
					} `json:"error"`
				}
				if err := json.Unmarshal(body, &ge); err != nil || ge.Error.Status != tt.wantErr || ge.Error.Code != tt.wantCode {
					t.Errorf("error body %s, want status %s", body, tt.wantErr)
				}
				return
			}
			var name string
			if strings.Contains(tt.url, "/v2/") {
				op := &longrunningpb.Operation{}
				if err := protojson.Unmarshal(body, op); err != nil {
					t.Fatalf("Operation JSON: %v\n%s", err, body)
				}
				x := &runpb.Execution{}
				if err := op.GetMetadata().UnmarshalTo(x); err != nil {
					t.Fatalf("metadata: %v", err)
				}
				if !strings.HasPrefix(op.Name, testParent+"/operations/") {
					t.Errorf("operation name %q", op.Name)
				}
				name = x.Name
			} else {
				var v1x struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name      string `json:"name"`
						Namespace string `json:"namespace"`
					} `json:"metadata"`
				}
				if err := json.Unmarshal(body, &v1x); err != nil || v1x.Kind != "Execution" || v1x.Metadata.Namespace != "p" {
					t.Fatalf("v1 execution %s (%v)", body, err)
				}
				name = j.Name + "/executions/" + v1x.Metadata.Name
			}
			x := e.waitExecution(t, name)
			if x.SucceededCount != x.TaskCount {
				t.Errorf("execution %v did not succeed", x)
			}
			if got := e.logs(t, x.LogUri); !strings.Contains(got, tt.wantLog) {
				t.Errorf("log = %q, want %q", got, tt.wantLog)
			}
		})
	}

	// The v2 REST path is the gRPC method to the fault injector; the v1 path a pseudo-method.
	for _, f := range []struct{ method, url string }{
		{method: "/google.cloud.run.v2.Jobs/RunJob", url: v2},
		{method: "/http/run.googleapis.com/RunJob", url: v1},
	} {
		if err := faults.Add(fault.Rule{Method: f.method, Code: codes.Unavailable, Times: 1}); err != nil {
			t.Fatal(err)
		}
		if code, body := post(t, f.url, ""); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "UNAVAILABLE") {
			t.Errorf("POST %s with a fault on %s: %d %s, want 503 UNAVAILABLE", f.url, f.method, code, body)
		}
		if code, body := post(t, f.url, ""); code != http.StatusOK {
			t.Errorf("POST %s after the fault: %d %s, want 200", f.url, code, body)
		}
	}
}

// waitExecution waits for an execution's end through its RunJob operation's twin: polling
// GetExecution.
func (e *env) waitExecution(t *testing.T, name string) *runpb.Execution {
	t.Helper()
	ctx := ctxT(t)
	for {
		x, err := e.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: name})
		if err != nil {
			t.Fatalf("GetExecution %s: %v", name, err)
		}
		if x.CompletionTime != nil {
			return x
		}
		select {
		case <-ctx.Done():
			t.Fatalf("execution %s never completed", name)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
