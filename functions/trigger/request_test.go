package trigger

import (
	"slices"
	"strings"
	"testing"

	"runwayjobs.dev/shared/platform"
)

func TestCheckRunRequest(t *testing.T) {
	tests := []struct {
		name string
		req  platform.RunRequest
		want []string
	}{
		{name: "minimal", req: platform.RunRequest{RequestID: "ci-1-2", Workload: "nightly"}},
		{
			name: "every override",
			req: platform.RunRequest{RequestID: "ci-1-2", Workload: "nightly", Args: []string{"--dry-run"}, Env: map[string]string{"LEVEL": "debug", "_X1": ""},
				TaskCount: 10000, Timeout: "168h", ConcurrencyPolicy: "Replace", Reason: "backfill", RequestedBy: "alice"},
		},
		{
			name: "reserved and invalid env names",
			req:  platform.RunRequest{Env: map[string]string{"RUNWAY_TRIGGER": "manual", "CLOUD_RUN_TASK_INDEX": "0", "1X": "a", "A-B": "b", "PORT": "80"}},
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
			req:  platform.RunRequest{TaskCount: 10001},
			want: []string{"task_count: is 10001; it must be between 1 and 10000 (Cloud Run's limit)"},
		},
		{
			name: "negative task count",
			req:  platform.RunRequest{TaskCount: -1},
			want: []string{"task_count: is -1; it must be between 1 and 10000 (Cloud Run's limit)"},
		},
		{
			name: "timeout too long",
			req:  platform.RunRequest{Timeout: "169h"},
			want: []string{"timeout: is 169h0m0s; it must be between 1s and 168h0m0s (Cloud Run's limits)"},
		},
		{
			name: "timeout not a duration",
			req:  platform.RunRequest{Timeout: "10 minutes"},
			want: []string{`timeout: "10 minutes" is not a duration such as 90s or 2h`},
		},
		{
			name: "timeout fraction of a second",
			req:  platform.RunRequest{Timeout: "1.5s"},
			want: []string{"timeout: is 1.5s; Cloud Run takes whole seconds"},
		},
		{
			name: "clear_args with args",
			req:  platform.RunRequest{Args: []string{"x"}, ClearArgs: true},
			want: []string{"args: clear_args and args are mutually exclusive (clear_args runs the job without its args)"},
		},
		{
			name: "unknown policy",
			req:  platform.RunRequest{ConcurrencyPolicy: "forbid"},
			want: []string{`concurrency_policy: "forbid" is not one of Allow, Forbid, Replace`},
		},
		{
			name: "too many args",
			req:  platform.RunRequest{Args: make([]string, MaxArgs+1)},
			want: []string{"args: 257 arguments; at most 256"},
		},
		{
			name: "oversized value",
			req:  platform.RunRequest{Env: map[string]string{"BIG": strings.Repeat("x", MaxEnvValue+1)}},
			want: []string{"env: BIG is 32769 bytes long; at most 32768"},
		},
		{
			name: "overrides too large together",
			req:  platform.RunRequest{Args: slices.Repeat([]string{strings.Repeat("a", MaxArg)}, 17)},
			want: []string{"args and env: 69632 bytes together; at most 65536"},
		},
		{
			name: "control characters in the request id",
			req:  platform.RunRequest{RequestID: "a\nb"},
			want: []string{`request_id: "a\nb" contains control characters or invalid UTF-8`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkRunRequest(tt.req); !slices.Equal(got, tt.want) {
				t.Errorf("checkRunRequest:\n got %q\nwant %q", got, tt.want)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, problems, err := decodeRunRequest([]byte(tt.body))
			if (err != nil) != tt.wantFail {
				t.Fatalf("decodeRunRequest error = %v, want failure %v", err, tt.wantFail)
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
