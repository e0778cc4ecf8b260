package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"runwayjobs.dev/shared/document"
)

// The examples, as validate prints them at the fixed clock (2026-11-26T16:00:00Z).
const (
	exampleInventory  = "../examples/inventory.yml: inventory: 5 workloads (4 jobs, 1 service)"
	examplePrune      = "../examples/ai-gateway/.runway/runway.yml: ai-gateway-prune: At minute 0 past every hour, every day (0 * * * *); next 2026-11-26T17:00:00Z, 2026-11-26T18:00:00Z, 2026-11-26T19:00:00Z"
	exampleHello      = "../examples/hello/.runway/runway.yml: hello-runway: Every 5 minutes, every day (*/5 * * * *); next 2026-11-26T16:05:00Z, 2026-11-26T16:10:00Z, 2026-11-26T16:15:00Z"
	exampleMigrate    = "../examples/topology-service/.runway/runway.yml: topology-migrate: on demand"
	exampleCompaction = "../examples/topology-service/.runway/topology-compaction/runway.yml: topology-compaction: At 03:15 UTC, every day (15 3 * * *); next 2026-11-27T03:15:00Z, 2026-11-28T03:15:00Z, 2026-11-29T03:15:00Z"
)

var allExampleLines = []string{exampleInventory, examplePrune, exampleHello, exampleMigrate, exampleCompaction}

func TestValidateExamples(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout []string
	}{
		{
			name:       "every example against the inventory",
			args:       []string{"validate", "--inventory", "../examples/inventory.yml", "../examples/..."},
			wantStdout: allExampleLines,
		},
		{
			name:       "every example, the inventory found by the search",
			args:       []string{"validate", "../examples/..."},
			wantStdout: allExampleLines,
		},
		{
			name:       "the inventory given twice is validated once",
			args:       []string{"validate", "--inventory", "../examples/inventory.yml", "../examples/inventory.yml", "../examples/ai-gateway"},
			wantStdout: []string{exampleInventory, examplePrune},
		},
		{
			name:       "a repository: its base file, then its overlays",
			args:       []string{"validate", "../examples/topology-service"},
			wantStdout: []string{exampleMigrate, exampleCompaction},
		},
		{
			name:       "one overlay file, merged over its base",
			args:       []string{"validate", "../examples/topology-service/.runway/topology-compaction/runway.yml"},
			wantStdout: []string{exampleCompaction},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := execute(t, tt.args...)
			if code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			assertLines(t, "stdout", stdout, tt.wantStdout)
			assertLines(t, "stderr", stderr, nil)
		})
	}
}

// jsonReport mirrors validate --format json.
type jsonReport struct {
	Valid bool `json:"valid"`
	Files []struct {
		File        string      `json:"file"`
		Kind        string      `json:"kind"`
		Valid       bool        `json:"valid"`
		Workload    string      `json:"workload"`
		Schedule    string      `json:"schedule"`
		TimeZone    string      `json:"time_zone"`
		Description string      `json:"description"`
		Next        []time.Time `json:"next"`
		Summary     string      `json:"summary"`
		Problems    []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"problems"`
	} `json:"files"`
}

func decodeReport(t *testing.T, stdout string) jsonReport {
	t.Helper()
	var r jsonReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", stdout)
	}
	return r
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestValidateJSONExamples(t *testing.T) {
	stdout, stderr, code := execute(t, "validate", "--format", "json", "--inventory", "../examples/inventory.yml", "../examples/...")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	r := decodeReport(t, stdout)
	if !r.Valid {
		t.Errorf("valid = false, want true")
	}
	want := []struct {
		file, kind, workload, schedule, timeZone, description, summary string
		next                                                           []time.Time
	}{
		{file: "../examples/inventory.yml", kind: "inventory", summary: "5 workloads (4 jobs, 1 service)"},
		{file: "../examples/ai-gateway/.runway/runway.yml", kind: "RunwayJob", workload: "ai-gateway-prune",
			schedule: "0 * * * *", timeZone: "Etc/UTC", description: "At minute 0 past every hour, every day",
			next: []time.Time{utc("2026-11-26T17:00:00Z"), utc("2026-11-26T18:00:00Z"), utc("2026-11-26T19:00:00Z")}},
		{file: "../examples/hello/.runway/runway.yml", kind: "RunwayJob", workload: "hello-runway",
			schedule: "*/5 * * * *", timeZone: "Etc/UTC", description: "Every 5 minutes, every day",
			next: []time.Time{utc("2026-11-26T16:05:00Z"), utc("2026-11-26T16:10:00Z"), utc("2026-11-26T16:15:00Z")}},
		{file: "../examples/topology-service/.runway/runway.yml", kind: "RunwayJob", workload: "topology-migrate", description: "on demand"},
		{file: "../examples/topology-service/.runway/topology-compaction/runway.yml", kind: "RunwayJob", workload: "topology-compaction",
			schedule: "15 3 * * *", timeZone: "Etc/UTC", description: "At 03:15 UTC, every day",
			next: []time.Time{utc("2026-11-27T03:15:00Z"), utc("2026-11-28T03:15:00Z"), utc("2026-11-29T03:15:00Z")}},
	}
	if len(r.Files) != len(want) {
		t.Fatalf("%d files in the report, want %d:\n%s", len(r.Files), len(want), stdout)
	}
	for i, w := range want {
		f := r.Files[i]
		if f.File != w.file || f.Kind != w.kind || !f.Valid || f.Workload != w.workload || f.Schedule != w.schedule ||
			f.TimeZone != w.timeZone || f.Description != w.description || f.Summary != w.summary || len(f.Problems) != 0 {
			t.Errorf("files[%d] = %+v\nwant %+v", i, f, w)
		}
		if len(f.Next) != len(w.next) {
			t.Errorf("files[%d].next = %v, want %v", i, f.Next, w.next)
			continue
		}
		for j := range w.next {
			if !f.Next[j].Equal(w.next[j]) || f.Next[j].Location() != time.UTC {
				t.Errorf("files[%d].next[%d] = %v, want %v", i, j, f.Next[j], w.next[j])
			}
		}
	}
	// next is written as RFC3339 UTC, as the text output is.
	if !strings.Contains(stdout, `"2026-11-27T03:15:00Z"`) {
		t.Errorf("next times are not written as RFC3339 UTC:\n%s", stdout)
	}
}

func TestValidateJSONProblems(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yml", job(`schedul: "0 3 * * *"`, "time_zone: Europe/Berlinn"))
	good := writeFile(t, dir, "good.yml", job(`schedule: "0 3 * * *"`))
	stdout, stderr, code := execute(t, "validate", "--format", "json", bad, good)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if stderr != "" {
		t.Errorf("stderr = %q; --format json writes everything to stdout", stderr)
	}
	r := decodeReport(t, stdout)
	if r.Valid {
		t.Errorf("valid = true, want false")
	}
	if len(r.Files) != 2 {
		t.Fatalf("%d files in the report, want 2:\n%s", len(r.Files), stdout)
	}
	b, g := r.Files[0], r.Files[1]
	if b.File != bad || b.Valid || b.Workload != "" || len(b.Next) != 0 {
		t.Errorf("files[0] = %+v; want %s, invalid, no workload, no next", b, bad)
	}
	type problem struct {
		File         string
		Line, Column int
		Path         string
		Message      string
	}
	want := []problem{
		{bad, 10, 3, "spec.schedul", `unknown field "spec.schedul"; did you mean "schedule"?`},
		{bad, 11, 14, "spec.time_zone", `spec.time_zone: unknown time zone "Europe/Berlinn" (want an IANA name such as Etc/UTC or Europe/Berlin)`},
	}
	if len(b.Problems) != len(want) {
		t.Fatalf("files[0].problems = %+v, want %+v", b.Problems, want)
	}
	for i, w := range want {
		if got := problem(b.Problems[i]); got != w {
			t.Errorf("files[0].problems[%d] = %+v\nwant %+v", i, got, w)
		}
	}
	if g.File != good || !g.Valid || g.Workload != "nightly-report" || len(g.Next) != 3 || !g.Next[0].Equal(utc("2026-11-27T03:00:00Z")) {
		t.Errorf("files[1] = %+v; want %s valid, nightly-report, next from 2026-11-27T03:00:00Z", g, good)
	}
}

func TestValidateProblems(t *testing.T) {
	// FILE in want stands for the path of the file holding content. Manifests built with job()
	// have their first spec field on line 10, with its value at column 3+len(key)+2.
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		// YAML itself.
		{
			name:    "YAML syntax error: unterminated quote",
			content: job(`schedule: "0 3 * * *`, "timeout: 10m"),
			want:    []string{"FILE:10:13: YAML syntax error: could not find end character of double-quoted text"},
		},
		{
			name:    "YAML syntax error: unclosed flow sequence",
			content: job("command: [/bin/run, --flag"),
			want:    []string{"FILE:10:12: YAML syntax error: sequence end token ']' not found"},
		},
		{
			name:    "YAML syntax error: tab indentation",
			content: header + "spec:\n\ttimeout: 10m\n",
			want:    []string{"FILE:10:1: YAML syntax error: found character '\t' that cannot start any token"},
		},
		{
			name:    "one duplicate key",
			content: job("timeout: 10m", "timeout: 20m"),
			want:    []string{`FILE:11:3: duplicate key "timeout" (first defined at line 10, column 3)`},
		},
		{
			name:    "two duplicate keys are both reported",
			content: job("timeout: 10m", "region: us-east1", "timeout: 20m", "region: us-east4"),
			want: []string{
				`FILE:12:3: duplicate key "timeout" (first defined at line 10, column 3)`,
				`FILE:13:3: duplicate key "region" (first defined at line 11, column 3)`,
			},
		},
		{
			name:    "a duplicate key in metadata",
			content: strings.Replace(job(), "  department: eng\n", "  department: eng\n  department: sales\n", 1),
			want:    []string{`FILE:7:3: duplicate key "department" (first defined at line 6, column 3)`},
		},
		// The file as a whole.
		{
			name:    "empty file",
			content: "",
			want:    []string{"FILE:1:1: file is empty"},
		},
		{
			name:    "whitespace only",
			content: "\n   \n\t\n",
			want:    []string{"FILE:1:1: file is empty"},
		},
		{
			name:    "comments only",
			content: "# yaml-language-server: $schema=runway-job.schema.json\n# TODO: write the job\n",
			want:    []string{"FILE:1:1: file has no YAML document (only comments?)"},
		},
		{
			name:    "a document marker only",
			content: "---\n",
			want:    []string{"FILE:1:1: file has no YAML document (only comments?)"},
		},
		{
			name:    "a list, not a mapping",
			content: "- apiVersion: runway/v1\n",
			want:    []string{"FILE:1:1: a manifest must be a mapping with apiVersion, kind, metadata and spec"},
		},
		{
			// Reported at the first key of the second document, after the --- on line 10.
			name:    "two documents in one file",
			content: job() + "---\n" + job(),
			want:    []string{"FILE:11:1: file holds 2 YAML documents; put one per file"},
		},
		{
			name:    "kind RunwayService",
			content: strings.Replace(job(), "kind: RunwayJob", "kind: RunwayService", 1),
			want:    []string{`FILE:2:7: kind is "RunwayService"; this file must be kind: RunwayJob (services use RunwayService and are not validated here)`},
		},
		{
			// A problem with the document as a whole points at its first key, not at the colon after it.
			name:    "missing apiVersion",
			content: strings.Replace(job(), "apiVersion: runway/v1\n", "", 1),
			want:    []string{`FILE:1:1: missing required field "apiVersion"`},
		},
		{
			name:    "wrong apiVersion",
			content: strings.Replace(job(), "runway/v1", "runway/v2", 1),
			want:    []string{`FILE:1:13: apiVersion: must be "runway/v1"; got "runway/v2"`},
		},
		{
			name:    "missing metadata field",
			content: strings.Replace(job(), "  department: eng\n", "", 1),
			want:    []string{`FILE:3:1: metadata: missing required field "department"`},
		},
		// Types and field names.
		{
			name: "wrong types",
			content: job(
				"task_count: many",
				"suspend: yes please",
				"command: /bin/run",
				"max_retries: 1.5",
				"env:",
				"  HTTP_TIMEOUT: 30",
			),
			want: []string{
				"FILE:10:15: spec.task_count: must be an integer, not a string",
				"FILE:11:12: spec.suspend: must be a boolean, not a string",
				"FILE:12:12: spec.command: must be a list, not a string",
				"FILE:13:16: spec.max_retries: must be an integer, not a number",
				"FILE:15:19: spec.env.HTTP_TIMEOUT: must be a string, not a number",
			},
		},
		{
			name:    "unknown field with did you mean",
			content: job(`schedul: "0 3 * * *"`),
			want:    []string{`FILE:10:3: unknown field "spec.schedul"; did you mean "schedule"?`},
		},
		{
			name:    "unknown nested field with did you mean",
			content: job("resources:", "  limits:", "    memroy: 1Gi"),
			want:    []string{`FILE:12:7: unknown field "spec.resources.limits.memroy"; did you mean "memory"?`},
		},
		{
			name:    "unknown field too far from any to guess",
			content: job("colour: blue"),
			want:    []string{`FILE:10:3: unknown field "spec.colour"`},
		},
		{
			name:    "enum typo with did you mean",
			content: job("concurrency_policy: forbid"),
			want:    []string{`FILE:10:23: spec.concurrency_policy: must be one of "Allow", "Forbid", "Replace"; got "forbid"; did you mean "Forbid"?`},
		},
		// Names Cloud Run would refuse as a job ID.
		{
			name:    "uppercase name",
			content: withName("Nightly-Report"),
			want:    []string{`FILE:4:9: metadata.name: "Nightly-Report": a workload name is lowercase letters, digits and hyphens, starts with a letter and does not end with a hyphen`},
		},
		{
			name:    "name longer than 49",
			content: withName(strings.Repeat("a", 50)),
			want:    []string{"FILE:4:9: metadata.name: must be at most 49 characters long; it is 50"},
		},
		{
			name:    "name starting with a digit",
			content: withName("1nightly"),
			want:    []string{`FILE:4:9: metadata.name: "1nightly": a workload name is lowercase letters, digits and hyphens, starts with a letter and does not end with a hyphen`},
		},
		{
			name:    "name ending with a hyphen",
			content: withName("nightly-"),
			want:    []string{`FILE:4:9: metadata.name: "nightly-": a workload name is lowercase letters, digits and hyphens, starts with a letter and does not end with a hyphen`},
		},
		{
			name:    "name with an underscore",
			content: withName("nightly_report"),
			want:    []string{`FILE:4:9: metadata.name: "nightly_report": a workload name is lowercase letters, digits and hyphens, starts with a letter and does not end with a hyphen`},
		},
		// Schedules.
		{
			name:    "CRON_TZ= prefix",
			content: job(`schedule: "CRON_TZ=Europe/Berlin 0 3 * * *"`),
			want:    []string{`FILE:10:13: spec.schedule: schedule "CRON_TZ=Europe/Berlin 0 3 * * *": time zone prefixes are not supported: use time_zone`},
		},
		{
			name:    "TZ= prefix",
			content: job(`schedule: "TZ=UTC 0 3 * * *"`),
			want:    []string{`FILE:10:13: spec.schedule: schedule "TZ=UTC 0 3 * * *": time zone prefixes are not supported: use time_zone`},
		},
		{
			name:    "@every",
			content: job(`schedule: "@every 5m"`),
			want:    []string{`FILE:10:13: spec.schedule: schedule "@every 5m": @every intervals are not supported: cron slots are needed (e.g. "*/15 * * * *")`},
		},
		{
			name:    "@reboot",
			content: job(`schedule: "@reboot"`),
			want:    []string{`FILE:10:13: spec.schedule: schedule "@reboot": @reboot is not supported: a job has no machine to boot`},
		},
		{
			name:    "seconds field",
			content: job(`schedule: "0 0 3 * * *"`),
			want:    []string{`FILE:10:13: spec.schedule: schedule "0 0 3 * * *" has 6 fields: a seconds field is not supported (want 5: minute hour day-of-month month day-of-week)`},
		},
		{
			name:    "four fields",
			content: job(`schedule: "0 3 * *"`),
			want:    []string{`FILE:10:13: spec.schedule: schedule "0 3 * *" has 4 fields, want 5 (minute hour day-of-month month day-of-week)`},
		},
		{
			name:    "hour out of range",
			content: job(`schedule: "0 25 * * *"`),
			want:    []string{`FILE:10:13: spec.schedule: schedule "0 25 * * *" is invalid: end of range (25) above maximum (23): 25`},
		},
		{
			name:    "impossible schedule",
			content: job(`schedule: "0 0 30 2 *"`),
			want:    []string{`FILE:10:13: spec.schedule: schedule "0 0 30 2 *" can never fire: no such date exists`},
		},
		{
			name:    "unknown time zone",
			content: job(`schedule: "0 3 * * *"`, "time_zone: Europe/Berlinn"),
			want:    []string{`FILE:11:14: spec.time_zone: unknown time zone "Europe/Berlinn" (want an IANA name such as Etc/UTC or Europe/Berlin)`},
		},
		{
			name:    "the machine's Local zone",
			content: job("time_zone: Local"),
			want:    []string{`FILE:10:14: spec.time_zone: time zone "Local" is not allowed: name an IANA zone such as Europe/Berlin`},
		},
		// Cloud Run resources.
		{
			name:    "4 CPUs with 1Gi",
			content: job("resources:", "  limits:", "    cpu: 4", "    memory: 1Gi"),
			want:    []string{"FILE:13:15: spec.resources.limits.memory: is 1Gi; 4 CPUs need at least 2Gi"},
		},
		{
			name:    "8Gi with 1 CPU",
			content: job("resources:", "  limits:", "    cpu: 1", "    memory: 8Gi"),
			want:    []string{"FILE:12:12: spec.resources.limits.cpu: memory 8Gi needs at least 2 CPUs; cpu is 1"},
		},
		{
			// The default CPU (1) was not written: the memory is what to change.
			name:    "8Gi with the default CPU",
			content: job("resources:", "  limits:", "    memory: 8Gi"),
			want:    []string{"FILE:12:15: spec.resources.limits.memory: memory 8Gi needs at least 2 CPUs; cpu is 1"},
		},
		{
			name:    "3 CPUs",
			content: job("resources:", "  limits:", "    cpu: 3"),
			want:    []string{`FILE:12:12: spec.resources.limits.cpu: is "3"; Cloud Run jobs take 1, 2, 4, 6 or 8 CPUs`},
		},
		{
			name:    "fractional CPU",
			content: job("resources:", "  limits:", `    cpu: "500m"`),
			want:    []string{`FILE:12:12: spec.resources.limits.cpu: is "500m"; Cloud Run jobs take 1, 2, 4, 6 or 8 CPUs`},
		},
		{
			name:    "memory above 32Gi",
			content: job("resources:", "  limits:", "    cpu: 8", "    memory: 64Gi"),
			want:    []string{"FILE:13:15: spec.resources.limits.memory: is 64Gi; Cloud Run allows at most 32Gi"},
		},
		// Environment.
		{
			name:    "reserved env names",
			content: job("env:", `  PORT: "8080"`, `  CLOUD_RUN_TASK_INDEX: "1"`, "  RUNWAY_REGION: us-east1", "  1BAD: x"),
			want: []string{
				`FILE:11:5: spec.env.PORT: "PORT" is reserved by Cloud Run`,
				`FILE:12:5: spec.env.CLOUD_RUN_TASK_INDEX: "CLOUD_RUN_TASK_INDEX" is reserved: CLOUD_RUN_* and RUNWAY_* are set by the platform`,
				`FILE:13:5: spec.env.RUNWAY_REGION: "RUNWAY_REGION" is reserved: CLOUD_RUN_* and RUNWAY_* are set by the platform`,
				`FILE:14:5: spec.env.1BAD: "1BAD" is not a valid environment variable name (letters, digits and _, not starting with a digit)`,
			},
		},
		{
			name:    "secret value in env",
			content: job("env:", "  DB_PASSWORD: hunter2"),
			want:    []string{`FILE:11:5: spec.env.DB_PASSWORD: "DB_PASSWORD" looks like a secret; reference it under spec.secrets instead of writing its value here`},
		},
		{
			// Paths are written the same way whichever check finds the problem: spec.secrets[1].name.
			name: "a secret set twice",
			content: job(
				"secrets:",
				"  - name: DB_PASS",
				"    secret: db",
				"  - name: DB_PASS",
				"    secret: db-2",
			),
			want: []string{`FILE:13:13: spec.secrets[1].name: "DB_PASS" is already set by spec.secrets[0]`},
		},
		// Other checks beyond the schema.
		{
			name:    "timeouts and parallelism",
			content: job("task_count: 2", "parallelism: 4", "timeout: 200h", "starting_deadline: 30s"),
			want: []string{
				"FILE:11:16: spec.parallelism: is 4, more than task_count (2)",
				"FILE:12:12: spec.timeout: is 200h; it must be between 1s and 168h",
				"FILE:13:22: spec.starting_deadline: is 30s; it must be at least 1m, or scheduled runs are skipped before they can start",
			},
		},
		// A value the schema refused is reported once, and not compared with others as if it
		// had been left out (and defaulted).
		{
			name:    "a refused task_count is not compared with parallelism",
			content: job("task_count: many", "parallelism: 4"),
			want:    []string{"FILE:10:15: spec.task_count: must be an integer, not a string"},
		},
		{
			name:    "a refused cpu is not compared with memory",
			content: job("resources:", "  limits:", "    cpu: true", "    memory: 8Gi"),
			want:    []string{"FILE:12:12: spec.resources.limits.cpu: must be an integer or a string, not a boolean"},
		},
		{
			name:    "a refused memory is not compared with cpu",
			content: job("resources:", "  limits:", "    cpu: 4", "    memory: 8GB"),
			want:    []string{`FILE:13:15: spec.resources.limits.memory: "8GB" does not match the pattern ^[1-9][0-9]*(Mi|Gi)$`},
		},
		// Everything at once: every problem is reported, in file order, not just the first.
		{
			name: "several errors in one file",
			content: `apiVersion: runway/v2
kind: RunwayJob
metadata:
  name: Nightly
  owner_email_handle: data-team
  department: eng
  department_group: eng-data
spec:
  schedule: "@every 1h"
  timeout: 10m
  timeout: 20m
  taks_count: 3
  time_zone: Mars/Olympus
  env:
    RUNWAY_X: y
  resources:
    limits:
      cpu: 3
`,
			want: []string{
				`FILE:1:13: apiVersion: must be "runway/v1"; got "runway/v2"`,
				`FILE:3:1: metadata: missing required field "product_category"`,
				`FILE:4:9: metadata.name: "Nightly": a workload name is lowercase letters, digits and hyphens, starts with a letter and does not end with a hyphen`,
				`FILE:9:13: spec.schedule: schedule "@every 1h": @every intervals are not supported: cron slots are needed (e.g. "*/15 * * * *")`,
				`FILE:11:3: duplicate key "timeout" (first defined at line 10, column 3)`,
				`FILE:12:3: unknown field "spec.taks_count"; did you mean "task_count"?`,
				`FILE:13:14: spec.time_zone: unknown time zone "Mars/Olympus" (want an IANA name such as Etc/UTC or Europe/Berlin)`,
				`FILE:15:5: spec.env.RUNWAY_X: "RUNWAY_X" is reserved: CLOUD_RUN_* and RUNWAY_* are set by the platform`,
				`FILE:18:12: spec.resources.limits.cpu: is "3"; Cloud Run jobs take 1, 2, 4, 6 or 8 CPUs`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, t.TempDir(), "manifest.yml", tt.content)
			stdout, stderr, code := execute(t, "validate", path)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			assertLines(t, "stdout", stdout, nil)
			assertLines(t, "stderr", stderr, append(replaceFile(tt.want, path), "1 of 1 files invalid"))
		})
	}
}

func TestValidateFileSize(t *testing.T) {
	valid := job(`schedule: "0 3 * * *"`)
	// padded returns valid followed by a comment line, size bytes in all.
	padded := func(size int) string {
		return valid + "#" + strings.Repeat("x", size-len(valid)-2) + "\n"
	}
	tests := []struct {
		name       string
		content    string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{
			name:       "exactly 1 MiB is read",
			content:    padded(document.MaxSize),
			wantStdout: []string{"FILE: nightly-report: At 03:00 UTC, every day (0 3 * * *); next 2026-11-27T03:00:00Z, 2026-11-28T03:00:00Z, 2026-11-29T03:00:00Z"},
		},
		{
			name:       "one byte over 1 MiB is refused",
			content:    padded(document.MaxSize + 1),
			wantCode:   1,
			wantStderr: []string{"FILE:1:1: file is 1048577 bytes; the limit is 1048576 (1 MiB)", "1 of 1 files invalid"},
		},
		{
			name:       "a 4 MiB file is refused",
			content:    strings.Repeat("[", 4<<20),
			wantCode:   1,
			wantStderr: []string{"FILE:1:1: file is 4194304 bytes; the limit is 1048576 (1 MiB)", "1 of 1 files invalid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if len(tt.content) < document.MaxSize {
				t.Fatalf("test content is only %d bytes", len(tt.content))
			}
			path := writeFile(t, t.TempDir(), "manifest.yml", tt.content)
			stdout, stderr, code := execute(t, "validate", path)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			assertLines(t, "stdout", stdout, replaceFile(tt.wantStdout, path))
			assertLines(t, "stderr", stderr, replaceFile(tt.wantStderr, path))
		})
	}
}

// replaceFile returns lines with their first FILE replaced by path.
func replaceFile(lines []string, path string) []string {
	var out []string
	for _, l := range lines {
		out = append(out, strings.Replace(l, "FILE", path, 1))
	}
	return out
}

func TestValidateSeveralFiles(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", job(`schedule: "30 6 * * 1-5"`, "time_zone: Europe/Berlin"))
	demand := writeFile(t, dir, "on-demand.yml", job())
	bad1 := writeFile(t, dir, "bad1.yml", job(`schedule: "0 0 30 2 *"`))
	bad2 := writeFile(t, dir, "bad2.yml", "")
	missing := filepath.Join(dir, "missing.yml")
	stdout, stderr, code := execute(t, "validate", bad1, good, missing, demand, bad2)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	assertLines(t, "stdout", stdout, []string{
		good + ": nightly-report: At 06:30 Europe/Berlin, Monday through Friday (30 6 * * 1-5); next 2026-11-27T05:30:00Z, 2026-11-30T05:30:00Z, 2026-12-01T05:30:00Z",
		demand + ": nightly-report: on demand",
	})
	assertLines(t, "stderr", stderr, []string{
		bad1 + `:10:13: spec.schedule: schedule "0 0 30 2 *" can never fire: no such date exists`,
		missing + ":1:1: cannot read: no such file or directory",
		bad2 + ":1:1: file is empty",
		"3 of 5 files invalid",
	})
}

func TestValidateValidEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // stdout after "FILE: "
	}{
		{
			name:    "name of exactly 49 characters",
			content: withName(strings.Repeat("a", 49)),
			want:    strings.Repeat("a", 49) + ": on demand",
		},
		{
			name:    "descriptor normalised to 5 fields",
			content: job(`schedule: "@weekly"`),
			want:    "nightly-report: At 00:00 UTC, on Sunday (0 0 * * 0); next 2026-11-29T00:00:00Z, 2026-12-06T00:00:00Z, 2026-12-13T00:00:00Z",
		},
		{
			name:    "29 February fires in leap years",
			content: job(`schedule: "0 0 29 2 *"`),
			want:    "nightly-report: At 00:00 UTC, on day 29 of the month, in February (0 0 29 2 *); next 2028-02-29T00:00:00Z, 2032-02-29T00:00:00Z, 2036-02-29T00:00:00Z",
		},
		{
			name:    "the largest resources",
			content: job("resources:", "  limits:", `    cpu: "8000m"`, "    memory: 32Gi"),
			want:    "nightly-report: on demand",
		},
		{
			name:    "an empty secret-like env value is not a secret",
			content: job("env:", `  DB_PASSWORD: ""`),
			want:    "nightly-report: on demand",
		},
		{
			name:    "an anchor reused through an alias",
			content: job("command: &cmd [/bin/report]", "args: *cmd"),
			want:    "nightly-report: on demand",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, t.TempDir(), "manifest.yml", tt.content)
			stdout, stderr, code := execute(t, "validate", path)
			if code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			assertLines(t, "stdout", stdout, []string{path + ": " + tt.want})
			assertLines(t, "stderr", stderr, nil)
		})
	}
}

func TestValidateUsageErrors(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{
			name:       "unknown format",
			args:       []string{"validate", "--format", "yaml", "../examples/..."},
			wantStderr: `runwayctl: invalid argument "yaml" for "--format" flag: must be text or json`,
		},
		{
			name:       "a directory without .runway",
			args:       []string{"validate", empty},
			wantStderr: "runwayctl: " + empty + ": no .runway/runway.yml in this directory (pass a file, or DIR/... to search below it)",
		},
		{
			name:       "nothing to validate below a directory",
			args:       []string{"validate", empty + "/..."},
			wantStderr: "runwayctl: " + empty + "/...: no .runway/runway.yml or inventory.yml below " + empty,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := execute(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			assertLines(t, "stdout", stdout, nil)
			assertLines(t, "stderr", stderr, []string{tt.wantStderr})
		})
	}
}

// base is a valid .runway/runway.yml for the overlay tests: the workload nightly-report.
var base = job(`schedule: "0 3 * * *"`, "env:", "  LOG_FORMAT: json", "timeout: 30m")

func TestValidateOverlays(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string // path in the repository: content
		args       []string          // relative to the repository; nil means no argument
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{
			name: "no argument: the base, then each overlay in name order",
			files: map[string]string{
				".runway/runway.yml":                       base,
				".runway/nightly-compaction/runway.yml":    "spec:\n  schedule: \"15 4 * * *\"\n",
				".runway/adhoc-backfill/runway.yml":        "metadata:\n  name: adhoc-backfill\nspec:\n  args: [backfill]\n",
				".runway/nightly-report-berlin/runway.yml": "spec:\n  time_zone: Europe/Berlin\n",
			},
			wantStdout: []string{
				".runway/runway.yml: nightly-report: At 03:00 UTC, every day (0 3 * * *); next 2026-11-27T03:00:00Z, 2026-11-28T03:00:00Z, 2026-11-29T03:00:00Z",
				".runway/adhoc-backfill/runway.yml: adhoc-backfill: At 03:00 UTC, every day (0 3 * * *); next 2026-11-27T03:00:00Z, 2026-11-28T03:00:00Z, 2026-11-29T03:00:00Z",
				".runway/nightly-compaction/runway.yml: nightly-compaction: At 04:15 UTC, every day (15 4 * * *); next 2026-11-27T04:15:00Z, 2026-11-28T04:15:00Z, 2026-11-29T04:15:00Z",
				".runway/nightly-report-berlin/runway.yml: nightly-report-berlin: At 03:00 Europe/Berlin, every day (0 3 * * *); next 2026-11-27T02:00:00Z, 2026-11-28T02:00:00Z, 2026-11-29T02:00:00Z",
			},
		},
		{
			name: "errors in an overlay point at the overlay",
			files: map[string]string{
				".runway/runway.yml":                    base,
				".runway/nightly-compaction/runway.yml": "# compaction\nspec:\n  schedule: \"@every 1h\"\n  timout: 1h\n",
			},
			wantCode: 1,
			wantStdout: []string{
				".runway/runway.yml: nightly-report: At 03:00 UTC, every day (0 3 * * *); next 2026-11-27T03:00:00Z, 2026-11-28T03:00:00Z, 2026-11-29T03:00:00Z",
			},
			wantStderr: []string{
				`.runway/nightly-compaction/runway.yml:3:13: spec.schedule: schedule "@every 1h": @every intervals are not supported: cron slots are needed (e.g. "*/15 * * * *")`,
				`.runway/nightly-compaction/runway.yml:4:3: unknown field "spec.timout"; did you mean "timeout"?`,
				"1 of 2 files invalid",
			},
		},
		{
			name: "an overlay's metadata.name must be its directory's",
			files: map[string]string{
				".runway/runway.yml":                    base,
				".runway/nightly-compaction/runway.yml": "metadata:\n  name: nightly-compact\n",
			},
			args:     []string{".runway/nightly-compaction/runway.yml"},
			wantCode: 1,
			wantStderr: []string{
				`.runway/nightly-compaction/runway.yml:2:9: metadata.name: is "nightly-compact" but the overlay sits in .runway/nightly-compaction/; they must match`,
				"1 of 1 files invalid",
			},
		},
		{
			name: "a value inherited from the base is reported in the base",
			files: map[string]string{
				".runway/runway.yml":                    job("resources:", "  limits:", "    cpu: 3"),
				".runway/nightly-compaction/runway.yml": "spec:\n  timeout: 1h\n",
			},
			args:     []string{".runway/nightly-compaction/runway.yml"},
			wantCode: 1,
			wantStderr: []string{
				`.runway/runway.yml:12:12: spec.resources.limits.cpu: is "3"; Cloud Run jobs take 1, 2, 4, 6 or 8 CPUs`,
				"1 of 1 files invalid",
			},
		},
		{
			name: "an overlay fixes what it overrides in the base",
			files: map[string]string{
				".runway/runway.yml":                    job("resources:", "  limits:", "    cpu: 3"),
				".runway/nightly-compaction/runway.yml": "spec:\n  resources:\n    limits:\n      cpu: 4\n      memory: 4Gi\n",
			},
			args:       []string{".runway/nightly-compaction/runway.yml"},
			wantStdout: []string{".runway/nightly-compaction/runway.yml: nightly-compaction: on demand"},
		},
		{
			name: "a syntax error in the base is reported for the overlay too",
			files: map[string]string{
				".runway/runway.yml":                    job(`schedule: "0 3 * * *`),
				".runway/nightly-compaction/runway.yml": "spec:\n  timeout: 1h\n",
			},
			args:     []string{".runway/nightly-compaction/runway.yml"},
			wantCode: 1,
			wantStderr: []string{
				".runway/runway.yml:10:13: YAML syntax error: could not find end character of double-quoted text",
				"1 of 1 files invalid",
			},
		},
		{
			name: "an overlay without a base",
			files: map[string]string{
				".runway/nightly-compaction/runway.yml": "spec:\n  timeout: 1h\n",
			},
			args:     []string{".runway/nightly-compaction/runway.yml"},
			wantCode: 1,
			wantStderr: []string{
				".runway/runway.yml:1:1: cannot read: no such file or directory",
				"1 of 1 files invalid",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			t.Chdir(dir)
			stdout, stderr, code := execute(t, append([]string{"validate"}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			assertLines(t, "stdout", stdout, tt.wantStdout)
			assertLines(t, "stderr", stderr, tt.wantStderr)
		})
	}
}

// The overlay's directory name becomes metadata.name, and so the Cloud Run job ID: it must be a
// valid workload name, reported in the overlay file (the exact message is not pinned here).
func TestValidateOverlayDirectoryIsAWorkloadName(t *testing.T) {
	tests := []struct {
		name string
		dir  string
	}{
		{name: "uppercase and underscore", dir: "Nightly_Compaction"},
		{name: "starting with a digit", dir: "1-compaction"},
		{name: "longer than 49", dir: strings.Repeat("c", 50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, ".runway/runway.yml", base)
			overlay := ".runway/" + tt.dir + "/runway.yml"
			writeFile(t, dir, overlay, "spec:\n  timeout: 1h\n")
			t.Chdir(dir)
			stdout, stderr, code := execute(t, "validate", overlay)
			if code != 1 {
				t.Errorf("exit %d, want 1; stdout %q", code, stdout)
			}
			got := lines(stderr)
			if len(got) != 2 || !strings.HasPrefix(got[0], overlay+":") || !strings.Contains(got[0], tt.dir) || got[1] != "1 of 1 files invalid" {
				t.Errorf("stderr:%s\nwant a problem in %s naming %q, then \"1 of 1 files invalid\"", quoteLines(got), overlay, tt.dir)
			}
		})
	}
}

func TestValidateRepositoryPaths(t *testing.T) {
	const (
		reportBase       = "repos/report/.runway/runway.yml: nightly-report: At 03:00 UTC, every day (0 3 * * *); next 2026-11-27T03:00:00Z, 2026-11-28T03:00:00Z, 2026-11-29T03:00:00Z"
		reportCompaction = "repos/report/.runway/nightly-compaction/runway.yml: nightly-compaction: At 04:15 UTC, every day (15 4 * * *); next 2026-11-27T04:15:00Z, 2026-11-28T04:15:00Z, 2026-11-29T04:15:00Z"
	)
	tests := []struct {
		name       string
		files      map[string]string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{
			name: "a repository directory",
			files: map[string]string{
				"repos/report/.runway/runway.yml":                    base,
				"repos/report/.runway/nightly-compaction/runway.yml": "spec:\n  schedule: \"15 4 * * *\"\n",
			},
			args:       []string{"repos/report"},
			wantStdout: []string{reportBase, reportCompaction},
		},
		{
			name: "every repository below, inventories first, skipping .git, node_modules and vendor",
			files: map[string]string{
				"repos/report/.runway/runway.yml":                    base,
				"repos/report/.runway/nightly-compaction/runway.yml": "spec:\n  schedule: \"15 4 * * *\"\n",
				"repos/report/node_modules/x/.runway/runway.yml":     "not: [valid",
				"repos/report/vendor/x/.runway/runway.yml":           "not: [valid",
				"repos/.git/.runway/runway.yml":                      "not: [valid",
				"repos/zz/inventory.yml":                             inventoryYAML,
			},
			args:       []string{"repos/..."},
			wantStdout: []string{"repos/zz/inventory.yml: inventory: 2 workloads (1 job, 1 service)", reportBase, reportCompaction},
		},
		{
			// An overlay whose base is missing (and which uses @every) must not be passed over.
			name: "a repository with overlays but no base",
			files: map[string]string{
				"repos/report/.runway/runway.yml":                base,
				"repos/orphan/.runway/nightly-orphan/runway.yml": "spec:\n  schedule: \"@every 1h\"\n",
			},
			args:       []string{"repos/..."},
			wantCode:   1,
			wantStdout: []string{reportBase},
			wantStderr: []string{"repos/orphan/.runway/runway.yml:1:1: cannot read: no such file or directory", "1 of 2 files invalid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			t.Chdir(dir)
			stdout, stderr, code := execute(t, append([]string{"validate"}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			assertLines(t, "stdout", stdout, tt.wantStdout)
			assertLines(t, "stderr", stderr, tt.wantStderr)
		})
	}
}

// inventoryYAML lists a service and the job nightly-report, in two regions.
const inventoryYAML = `inventory:
  - name: web-frontend
    type: service
    project_id: 1
    gcp_project: gitlab-runway-web
    regions: [us-east1]
  - name: nightly-report
    type: job
    project_id: 2
    gcp_project: gitlab-runway-data
    regions: [us-east1, europe-west1]
    artifact_repository: us-east1-docker.pkg.dev/gitlab-runway-data/nightly-report
`

func TestValidateAgainstInventory(t *testing.T) {
	const repo = "us-east1-docker.pkg.dev/gitlab-runway-data/nightly-report"
	tests := []struct {
		name       string
		inventory  string
		manifest   string
		wantCode   int
		wantStdout string   // after "MANIFEST: "
		wantStderr []string // MANIFEST and INVENTORY stand for the paths
	}{
		{
			name:       "image from the repository, region of the workload",
			manifest:   job("image: "+repo+"/report@sha256:"+strings.Repeat("ab", 32), "region: europe-west1"),
			wantStdout: "nightly-report: on demand",
		},
		{
			name:       "workload missing from the inventory",
			manifest:   withName("weekly-report"),
			wantCode:   1,
			wantStderr: []string{`MANIFEST:4:9: metadata.name: workload "weekly-report" is not in the inventory INVENTORY`},
		},
		{
			name:       "a service entry",
			manifest:   withName("web-frontend"),
			wantCode:   1,
			wantStderr: []string{`MANIFEST:4:9: metadata.name: workload "web-frontend" is a service in the inventory INVENTORY, not a job`},
		},
		{
			name:       "image outside the artifact repository",
			manifest:   job("image: us-east1-docker.pkg.dev/gitlab-runway-data/other/report:1.0"),
			wantCode:   1,
			wantStderr: []string{`MANIFEST:10:10: spec.image: "us-east1-docker.pkg.dev/gitlab-runway-data/other/report:1.0" is not in the workload's artifact repository ` + repo},
		},
		{
			name:       "image in a repository whose name extends the workload's",
			manifest:   job("image: " + repo + "-evil/report:1.0"),
			wantCode:   1,
			wantStderr: []string{`MANIFEST:10:10: spec.image: "` + repo + `-evil/report:1.0" is not in the workload's artifact repository ` + repo},
		},
		{
			name:       "region not in the workload's regions",
			manifest:   job("region: us-central1"),
			wantCode:   1,
			wantStderr: []string{`MANIFEST:10:11: spec.region: "us-central1" is not one of the workload's regions [us-east1 europe-west1]`},
		},
		{
			name:       "an invalid inventory is reported at its positions",
			inventory:  strings.Replace(inventoryYAML, "    artifact_repository: "+repo+"\n", "    owner: data-team\n", 1),
			manifest:   job(),
			wantCode:   1,
			wantStdout: "nightly-report: on demand",
			wantStderr: []string{
				`INVENTORY:7:5: inventory[1]: missing required field "artifact_repository"`,
				`INVENTORY:12:5: unknown field "inventory[1].owner"; did you mean "owners"?`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			inv := tt.inventory
			if inv == "" {
				inv = inventoryYAML
			}
			invPath := writeFile(t, dir, "inventory.yml", inv)
			manifestPath := writeFile(t, dir, "job.yml", tt.manifest)
			stdout, stderr, code := execute(t, "validate", "--inventory", invPath, manifestPath)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			r := strings.NewReplacer("MANIFEST", manifestPath, "INVENTORY", invPath)
			var wantStdout, wantStderr []string
			if tt.inventory == "" {
				wantStdout = append(wantStdout, invPath+": inventory: 2 workloads (1 job, 1 service)")
			}
			if tt.wantStdout != "" {
				wantStdout = append(wantStdout, manifestPath+": "+tt.wantStdout)
			}
			for _, l := range tt.wantStderr {
				wantStderr = append(wantStderr, r.Replace(l))
			}
			if tt.wantCode != 0 {
				wantStderr = append(wantStderr, "1 of 2 files invalid")
			}
			assertLines(t, "stdout", stdout, wantStdout)
			assertLines(t, "stderr", stderr, wantStderr)
		})
	}
}

func TestValidateAgainstInventoryReportsEveryMismatch(t *testing.T) {
	dir := t.TempDir()
	invPath := writeFile(t, dir, "inventory.yml", inventoryYAML)
	manifestPath := writeFile(t, dir, "job.yml", job("image: gcr.io/somewhere/else:1", "region: us-central1"))
	stdout, stderr, code := execute(t, "validate", "--format", "json", "--inventory", invPath, manifestPath)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing", stderr)
	}
	r := decodeReport(t, stdout)
	if len(r.Files) != 2 || r.Files[0].File != invPath || !r.Files[0].Valid || r.Files[1].File != manifestPath || r.Files[1].Valid {
		t.Fatalf("report = %+v; want the valid inventory, then the invalid manifest", r)
	}
	got := map[string]string{}
	for _, p := range r.Files[1].Problems {
		if p.File != manifestPath {
			t.Errorf("problem in %s, want %s", p.File, manifestPath)
		}
		got[p.Path] = fmt.Sprintf("%d:%d", p.Line, p.Column)
	}
	// Compared as a set: the order of these two is not pinned here.
	want := map[string]string{"spec.image": "10:10", "spec.region": "11:11"}
	if len(got) != len(want) || got["spec.image"] != want["spec.image"] || got["spec.region"] != want["spec.region"] {
		t.Errorf("problems at %v, want %v", got, want)
	}
}

func TestValidateNoArgumentOutsideARepository(t *testing.T) {
	t.Chdir(t.TempDir())
	stdout, stderr, code := execute(t, "validate")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	assertLines(t, "stdout", stdout, nil)
	assertLines(t, "stderr", stderr, []string{"runwayctl: .: no .runway/runway.yml in this directory (pass a file, or DIR/... to search below it)"})
}
