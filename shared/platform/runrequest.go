package platform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/gcp/runcontract"
	"runwayjobs.dev/shared/manifest"
)

// Bounds of a run request. Cloud Run's own limits (task_count, timeout) come first; the others
// keep a request far below Pub/Sub's and Cloud Run's request sizes and keep records readable.
const (
	MaxTaskCount   = 10000                        // Cloud Run: tasks per execution
	MaxEnv         = 100                          // environment overrides per request
	MaxEnvValue    = runcontract.MaxEnvValueBytes // Cloud Run: bytes of a variable's value
	MaxArgs        = 256
	MaxArg         = 4 << 10
	MaxOverrides   = 64 << 10 // bytes of args and env together
	MaxRequestID   = 256
	MaxReason      = 1024
	MaxRequestedBy = 256
	// MaxRunRequestBody bounds the JSON body before it is decoded (size, depth and counts are
	// checked by document.ScanJSON): every field at its limit, escaped, fits well within it.
	MaxRunRequestBody = 256 << 10
)

// runPolicies are the concurrency policies a request may ask for.
var runPolicies = []manifest.ConcurrencyPolicy{manifest.Allow, manifest.Forbid, manifest.Replace}

// ErrNoRequestID is a run request that cannot be recorded: without an id there is no key.
var ErrNoRequestID = errors.New("run request: request_id is missing")

// runRequestFields are RunRequest's JSON field names, in declaration order.
var runRequestFields = func() []string {
	t := reflect.TypeFor[RunRequest]()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}()

// DecodeRunRequest reads a run request body, as the trigger function receives it from Pub/Sub.
// A body that is not a RunRequest at all (too large, not JSON, a wrong type) returns an error;
// a RunRequest that breaks a rule returns the request and every problem, each saying exactly
// why (CheckRunRequest; an unknown field is one problem, and the request is still read so the
// refusal can be recorded under its id). runwayctl run decodes the body it is about to publish
// with it, so both sides refuse a request in the same words.
func DecodeRunRequest(data []byte) (RunRequest, []string, error) {
	var req RunRequest
	if err := document.ScanJSON(data, MaxRunRequestBody); err != nil {
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
			var loose RunRequest
			if json.Unmarshal(data, &loose) == nil {
				return loose, []string{unknownFieldProblem(field)}, nil
			}
		}
		return req, nil, fmt.Errorf("run request body: %w", err)
	}
	return req, CheckRunRequest(req), nil
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
	return fmt.Sprintf("%s: unknown field (known: %s)", field, strings.Join(runRequestFields, ", "))
}

// CheckRunRequest returns every rule req breaks, in field order; none for a valid request.
// The workload is checked by the trigger function, against the topic the request came on.
func CheckRunRequest(req RunRequest) []string {
	var ps []string
	fail := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }

	if len(req.RequestID) > MaxRequestID {
		fail("request_id: is %d bytes long; at most %d", len(req.RequestID), MaxRequestID)
	} else if strings.ContainsFunc(req.RequestID, isControl) || !utf8.ValidString(req.RequestID) {
		fail("request_id: %q contains control characters or invalid UTF-8", req.RequestID)
	} else if strings.HasPrefix(req.RequestID, RunRecordPrefix) {
		// A scheduled run's RUNWAY_REQUEST_ID is its slot's claim key: a request named so could
		// be taken for that run when the trigger looks for the execution a request started.
		fail("request_id: %q begins with %s, which names scheduled runs (their slot's key)", req.RequestID, RunRecordPrefix)
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
	names := make([]string, 0, len(req.Env))
	for name := range req.Env {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
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
	if p := req.ConcurrencyPolicy; p != "" && !slices.Contains(runPolicies, manifest.ConcurrencyPolicy(p)) {
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

// RunRefusal is the reason a run request breaking problems is refused with: what the trigger
// function records and runwayctl run prints.
func RunRefusal(problems []string) string { return strings.Join(problems, "; ") }

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
