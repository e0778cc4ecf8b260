package main

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestServerCheck(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantErr   bool
		wantLines int
	}{
		{name: "accepted", err: nil, wantLines: 1},
		{name: "no permission to validate", err: status.Error(codes.PermissionDenied, "run.jobs.create"), wantLines: 2},
		{name: "refused", err: status.Error(codes.InvalidArgument, "bad memory"), wantErr: true, wantLines: 1},
		{name: "unavailable", err: errors.New("connection refused"), wantErr: true, wantLines: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := serverCheck([]string{"Cloud Run job x: create"}, tt.err, "Cloud Run refuses the job")
			if (err != nil) != tt.wantErr || len(lines) != tt.wantLines {
				t.Fatalf("serverCheck = %q, %v; want %d lines, error %v", lines, err, tt.wantLines, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "Cloud Run refuses the job: ") {
				t.Errorf("error %q does not say what refused", err)
			}
		})
	}
}

func TestRequestIDAndSource(t *testing.T) {
	ci := map[string]string{"CI_PIPELINE_ID": "77", "CI_JOB_ID": "1001", "CI_COMMIT_SHA": "abc", "CI_PIPELINE_URL": "https://gitlab.example/p/-/pipelines/77", "CI_COMMIT_REF_NAME": "main"}
	lookup := func(k string) string { return ci[k] }
	if id := requestID(lookup); id != "ci-77-1001" {
		t.Errorf("requestID in CI = %q, want ci-77-1001", id)
	}
	if s := sourceFromCI(lookup); s.PipelineID != 77 || s.CommitSHA != "abc" || s.Ref != "main" || s.PipelineURL == "" {
		t.Errorf("sourceFromCI = %+v", s)
	}
	none := func(string) string { return "" }
	a, b := requestID(none), requestID(none)
	if !strings.HasPrefix(a, "cli-") || a == b {
		t.Errorf("requestID outside CI = %q, %q: want distinct random ids", a, b)
	}
}
