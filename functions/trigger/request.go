package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
)

// Bounds of a run request. Cloud Run's own limits (task_count, timeout) come first; the others
// keep a request far below Pub/Sub's and Cloud Run's request sizes and keep records readable.
const (
	MaxTaskCount   = 10000 // Cloud Run: tasks per execution
	MaxEnv         = 100   // environment overrides per request
	MaxEnvValue    = 32 << 10
	MaxArgs        = 256
	MaxArg         = 4 << 10
	MaxOverrides   = 64 << 10 // bytes of args and env together
	MaxRequestID   = 256
	MaxReason      = 1024
	MaxRequestedBy = 256
	MaxRequestBody = 256 << 10 // bytes of the JSON body, checked before it is decoded
)

// policies are the concurrency policies a request may ask for.
var policies = []manifest.ConcurrencyPolicy{manifest.Allow, manifest.Forbid, manifest.Replace}

// errNoRequestID is a run request that cannot be recorded: without an id there is no key.
var errNoRequestID = errors.New("run request: request_id is missing")

// decodeRunRequest reads a run request body. A body that is not a RunRequest at all returns an
// error; a RunRequest that breaks a rule returns the request and every problem, each saying
// exactly why.
func decodeRunRequest(data []byte) (platform.RunRequest, []string, error) {
	var req platform.RunRequest
	if err := document.ScanJSON(data, MaxRequestBody); err != nil {
		return req, nil, fmt.Errorf("run request body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the request object")
		}
	}
	if err != nil {
		if field, ok := unknownField(err); ok {
			// Still read the id and workload so the refusal can be recorded.
			var loose platform.RunRequest
			if json.Unmarshal(data, &loose) == nil {
				return loose, []string{unknownFieldProblem(field)}, nil
			}
		}
		return req, nil, fmt.Errorf("run request body: %w", err)
	}
	return req, checkRunRequest(req), nil
}

// unknownField returns the field name of encoding/json's "json: unknown field" error.
func unknownField(err error) (string, bool) {
	f, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	return strings.Trim(f, `"`), ok
}

func unknownFieldProblem(field string) string {
	switch field {
	case "image", "command", "entrypoint":
		return fmt.Sprintf("%s: there is no %s override (Cloud Run overrides only args, env, task_count and timeout); deploy a new version of the job instead", field, field)
	}
	return fmt.Sprintf("%s: unknown field (known: request_id, workload, args, clear_args, env, task_count, timeout, concurrency_policy, reason, requested_by)", field)
}

// checkRunRequest returns every rule req breaks, in field order. The workload is checked by the
// caller, against the topic.
func checkRunRequest(req platform.RunRequest) []string {
	var ps []string
	fail := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }

	if len(req.RequestID) > MaxRequestID {
		fail("request_id: is %d bytes long; at most %d", len(req.RequestID), MaxRequestID)
	} else if strings.ContainsFunc(req.RequestID, isControl) || !utf8.ValidString(req.RequestID) {
		fail("request_id: %q contains control characters or invalid UTF-8", req.RequestID)
	}
	size := 0
	if req.ClearArgs && len(req.Args) > 0 {
		fail("args: clear_args and args are mutually exclusive (clear_args runs the job without its args)")
	}
	if len(req.Args) > MaxArgs {
		fail("args: %d arguments; at most %d", len(req.Args), MaxArgs)
	}
	for i, a := range req.Args {
		size += len(a)
		if len(a) > MaxArg {
			fail("args[%d]: is %d bytes long; at most %d", i, len(a), MaxArg)
		}
		if strings.ContainsRune(a, 0) {
			fail("args[%d]: contains a NUL byte", i)
		}
	}
	if len(req.Env) > MaxEnv {
		fail("env: %d variables; at most %d", len(req.Env), MaxEnv)
	}
	for _, name := range sortedKeys(req.Env) {
		v := req.Env[name]
		size += len(name) + len(v)
		if msg := manifest.EnvNameProblem(name); msg != "" {
			fail("env: %s", msg)
			continue
		}
		if len(v) > MaxEnvValue {
			fail("env: %s is %d bytes long; at most %d", name, len(v), MaxEnvValue)
		}
		if strings.ContainsRune(v, 0) {
			fail("env: %s contains a NUL byte", name)
		}
	}
	if size > MaxOverrides {
		fail("args and env: %d bytes together; at most %d", size, MaxOverrides)
	}
	if req.TaskCount < 0 || req.TaskCount > MaxTaskCount {
		fail("task_count: is %d; it must be between 1 and %d (Cloud Run's limit)", req.TaskCount, MaxTaskCount)
	}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		switch {
		case err != nil:
			fail("timeout: %q is not a duration such as 90s or 2h", req.Timeout)
		case d < manifest.MinTimeout || d > manifest.MaxTimeout:
			fail("timeout: is %s; it must be between %s and %s (Cloud Run's limits)", d, manifest.MinTimeout, manifest.MaxTimeout)
		case d%time.Second != 0:
			fail("timeout: is %s; Cloud Run takes whole seconds", d)
		}
	}
	if p := req.ConcurrencyPolicy; p != "" && !slices.Contains(policies, manifest.ConcurrencyPolicy(p)) {
		fail("concurrency_policy: %q is not one of Allow, Forbid, Replace", p)
	}
	if len(req.Reason) > MaxReason {
		fail("reason: is %d bytes long; at most %d", len(req.Reason), MaxReason)
	}
	if len(req.RequestedBy) > MaxRequestedBy {
		fail("requested_by: is %d bytes long; at most %d", len(req.RequestedBy), MaxRequestedBy)
	}
	return ps
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
