package platform

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckRunRequest(t *testing.T) {
	tests := []struct {
		name string
		req  RunRequest
		want []string
	}{
		{name: "minimal", req: RunRequest{RequestID: "ci-1-2", Workload: "nightly"}},
		{
			name: "every override",
			req: RunRequest{RequestID: "ci-1-2", Workload: "nightly", Args: []string{"--dry-run"}, Env: map[string]string{"LEVEL": "debug", "_X1": ""},
				TaskCount: 10000, Timeout: "168h", ConcurrencyPolicy: "Replace", Reason: "backfill", RequestedBy: "alice"},
		},
		{
			name: "reserved and invalid env names",
			req:  RunRequest{Env: map[string]string{"RUNWAY_TRIGGER": "manual", "CLOUD_RUN_TASK_INDEX": "0", "1X": "a", "A-B": "b", "PORT": "80"}},
			want: []string{
				`env: "1X" is not a valid environment variable name (letters, digits and _, not starting with a digit)`,
				`env: "A-B" is not a valid environment variable name (letters, digits and _, not starting with a digit)`,
				`env: "CLOUD_RUN_TASK_INDEX" is reserved: CLOUD_RUN_* and RUNWAY_* are set by the platform`,
				`env: "PORT" is reserved by Cloud Run`,
				`env: "RUNWAY_TRIGGER" is reserved: CLOUD_RUN_* and RUNWAY_* are set by the platform`,
			},
		},
		{
			name: "task count out of range",
			req:  RunRequest{TaskCount: 10001},
			want: []string{"task_count: is 10001; it must be between 1 and 10000 (Cloud Run's limit)"},
		},
		{
			name: "negative task count",
			req:  RunRequest{TaskCount: -1},
			want: []string{"task_count: is -1; it must be between 1 and 10000 (Cloud Run's limit)"},
		},
		{
			name: "timeout too long",
			req:  RunRequest{Timeout: "169h"},
			want: []string{"timeout: is 169h0m0s; it must be between 1s and 168h0m0s (Cloud Run's limits)"},
		},
		{
			name: "timeout not a duration",
			req:  RunRequest{Timeout: "10 minutes"},
			want: []string{`timeout: "10 minutes" is not a duration such as 90s or 2h`},
		},
		{
			name: "timeout fraction of a second",
			req:  RunRequest{Timeout: "1.5s"},
			want: []string{"timeout: is 1.5s; Cloud Run takes whole seconds"},
		},
		{
			name: "clear_args with args",
			req:  RunRequest{Args: []string{"x"}, ClearArgs: true},
			want: []string{"args: clear_args and args are mutually exclusive (clear_args runs the job without its args)"},
		},
		{
			name: "unknown policy",
			req:  RunRequest{ConcurrencyPolicy: "forbid"},
			want: []string{`concurrency_policy: "forbid" is not one of Allow, Forbid, Replace`},
		},
		{
			name: "too many args",
			req:  RunRequest{Args: make([]string, MaxArgs+1)},
			want: []string{"args: 257 arguments; at most 256"},
		},
		{
			name: "oversized value",
			req:  RunRequest{Env: map[string]string{"BIG": strings.Repeat("x", MaxEnvValue+1)}},
			want: []string{"env: BIG is 32769 bytes long; at most 32768"},
		},
		{
			name: "overrides too large together",
			req:  RunRequest{Args: slices.Repeat([]string{strings.Repeat("a", MaxArg)}, 17)},
			want: []string{"args and env: 69632 bytes together; at most 65536"},
		},
		{
			name: "control characters in the request id",
			req:  RunRequest{RequestID: "a\nb"},
			want: []string{`request_id: "a\nb" contains control characters or invalid UTF-8`},
		},
		{
			name: "a scheduled run's request id",
			req:  RunRequest{RequestID: SlotRecordKey("nightly", time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))},
			want: []string{`request_id: "runs/nightly/slot-29934900" begins with runs/, which names scheduled runs (their slot's key)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckRunRequest(tt.req); !slices.Equal(got, tt.want) {
				t.Errorf("CheckRunRequest:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDecodeRunRequest(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantID   string
		want     []string
		wantFail bool
	}{
		{name: "valid", body: `{"request_id":"r1","workload":"nightly","args":["a"]}`, wantID: "r1"},
		{name: "image override", body: `{"request_id":"r1","workload":"nightly","image":"evil:latest"}`, wantID: "r1",
			want: []string{"image: there is no image override (Cloud Run overrides only args, env, task_count and timeout); deploy a new version of the job instead"}},
		{name: "command override", body: `{"request_id":"r1","command":["sh"]}`, wantID: "r1",
			want: []string{"command: there is no command override (Cloud Run overrides only args, env, task_count and timeout); deploy a new version of the job instead"}},
		{name: "unknown field", body: `{"request_id":"r1","parallelism":3}`, wantID: "r1",
			want: []string{"parallelism: unknown field (known: request_id, workload, args, clear_args, env, task_count, timeout, concurrency_policy, reason, requested_by)"}},
		{name: "not JSON", body: `run it`, wantFail: true},
		{name: "wrong type", body: `{"request_id":"r1","task_count":"3"}`, wantFail: true},
		{name: "trailing data", body: `{"request_id":"r1"} {}`, wantFail: true},
		{name: "body over the limit", body: `{"request_id":"r1","reason":"` + strings.Repeat("x", MaxRunRequestBody) + `"}`, wantFail: true},
		{name: "broken rules", body: `{"request_id":"r1","task_count":-1,"timeout":"ten"}`, wantID: "r1",
			want: []string{"task_count: is -1; it must be between 1 and 10000 (Cloud Run's limit)", `timeout: "ten" is not a duration such as 90s or 2h`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, problems, err := DecodeRunRequest([]byte(tt.body))
			if (err != nil) != tt.wantFail {
				t.Fatalf("DecodeRunRequest error = %v, want failure %v", err, tt.wantFail)
			}
			if err != nil {
				return
			}
			if req.RequestID != tt.wantID {
				t.Errorf("request id = %q, want %q", req.RequestID, tt.wantID)
			}
			if !slices.Equal(problems, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", problems, tt.want)
			}
		})
	}
}

// TestKnownFieldsAreRunRequests: the known fields an unknown field's problem lists are
// exactly RunRequest's, in order, so a new field can't be left out of the message.
func TestKnownFieldsAreRunRequests(t *testing.T) {
	b, err := json.Marshal(RunRequest{RequestID: "r", Workload: "w", Args: []string{"a"}, ClearArgs: true, Env: map[string]string{"A": "1"},
		TaskCount: 1, Timeout: "1s", ConcurrencyPolicy: "Allow", Reason: "r", RequestedBy: "u"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != len(runRequestFields) {
		t.Fatalf("a full RunRequest has fields %v, the known list is %v", m, runRequestFields)
	}
	for _, f := range runRequestFields {
		if _, ok := m[f]; !ok {
			t.Errorf("known field %q is not a RunRequest field", f)
		}
	}
	want := "request_id, workload, args, clear_args, env, task_count, timeout, concurrency_policy, reason, requested_by"
	if got := strings.Join(runRequestFields, ", "); got != want {
		t.Errorf("known fields = %s, want %s", got, want)
	}
}

// FuzzDecodeRunRequest: any body decodes to an error or a request; a request without problems
// passes CheckRunRequest's bounds, and encodes back to a body that decodes to itself.
func FuzzDecodeRunRequest(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"r1","workload":"nightly","args":["a"],"env":{"A":"1"},"task_count":3,"timeout":"30m"}`,
		`{"request_id":"r1","image":"x"}`, `{"request_id":"a\nb"}`, `{"timeout":"1.5s","clear_args":true,"args":["x"]}`,
		`{"env":{"RUNWAY_X":"1","1A":"\u0000"}}`, `[]`, `{"request_id":"r1"} {}`, `{"task_count":1e9}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, problems, err := DecodeRunRequest(data)
		if err != nil {
			if problems != nil {
				t.Fatalf("an error (%v) with problems %q", err, problems)
			}
			return
		}
		if len(problems) > 0 {
			for _, p := range problems {
				if p == "" {
					t.Fatalf("an empty problem in %q", problems)
				}
			}
			return
		}
		if len(req.RequestID) > MaxRequestID || len(req.Args) > MaxArgs || len(req.Env) > MaxEnv || req.TaskCount < 0 || req.TaskCount > MaxTaskCount {
			t.Fatalf("a request out of bounds passed: %+v", req)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, problems, err := DecodeRunRequest(b)
		if err != nil || len(problems) > 0 {
			t.Fatalf("the re-encoded request %s: %v, %q", b, err, problems)
		}
		if !slices.Equal(again.Args, req.Args) || again.RequestID != req.RequestID || again.Timeout != req.Timeout || len(again.Env) != len(req.Env) {
			t.Fatalf("round trip: %+v, want %+v", again, req)
		}
	})
}
