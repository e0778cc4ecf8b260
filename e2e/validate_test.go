package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"runwayjobs.dev/shared/manifest"
)

// binary is the runwayctl built once by TestMain; repoRoot is the repository's top directory.
var binary, repoRoot string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "runwayctl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "runwayctl")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir = filepath.Join(repoRoot, "runwayctl")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build runwayctl: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// runwayctl runs the binary in dir with args and returns its output and exit status.
func runwayctl(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runwayctlWith(t, dir, nil, args...)
}

// runwayctlWith runs the binary in dir with env (nil: the test's own environment).
func runwayctlWith(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("runwayctl %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestHelpListsCommands(t *testing.T) {
	stdout, stderr, code := runwayctl(t, repoRoot, "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, cmd := range []string{"validate", "schema", "schedule"} {
		if !regexp.MustCompile(`(?m)^  ` + cmd + ` +\S`).MatchString(stdout) {
			t.Errorf("--help does not list %s:\n%s", cmd, stdout)
		}
	}
}

// next matches the three run times validate prints after "next".
const next = `next (\d{4}-\d\d-\d\dT\d\d:\d\d:00Z), (\d{4}-\d\d-\d\dT\d\d:\d\d:00Z), (\d{4}-\d\d-\d\dT\d\d:\d\d:00Z)$`

// TestValidateExamples runs the README's first command from the repository root.
func TestValidateExamples(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Minute)
	stdout, stderr, code := runwayctl(t, repoRoot, "validate", "--inventory", "examples/inventory.yml", "examples/...")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^examples/inventory\.yml: inventory: 5 workloads \(4 jobs, 1 service\)$`),
		regexp.MustCompile(`^examples/ai-gateway/\.runway/runway\.yml: ai-gateway-prune: .+ \(0 \* \* \* \*\); ` + next),
		regexp.MustCompile(`^examples/hello/\.runway/runway\.yml: hello-runway: Every 5 minutes, every day \(\*/5 \* \* \* \*\); ` + next),
		regexp.MustCompile(`^examples/topology-service/\.runway/runway\.yml: topology-migrate: on demand$`),
		regexp.MustCompile(`^examples/topology-service/\.runway/topology-compaction/runway\.yml: topology-compaction: At 03:15 UTC, every day \(15 3 \* \* \*\); ` + next),
	}
	got := lines(stdout)
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), stdout)
	}
	for i, re := range want {
		m := re.FindStringSubmatch(got[i])
		if m == nil {
			t.Errorf("line %d = %q\nwant it to match %s", i+1, got[i], re)
			continue
		}
		// The run times are in the future, in order.
		prev := start
		for _, s := range m[1:] {
			at, err := time.Parse(time.RFC3339, s)
			if err != nil || !at.After(prev) {
				t.Errorf("line %d: run time %s is not after %s", i+1, s, prev.Format(time.RFC3339))
			}
			prev = at
		}
	}
}

// TestValidateDefaultsToTheCurrentRepository runs validate with no argument inside an example.
func TestValidateDefaultsToTheCurrentRepository(t *testing.T) {
	stdout, stderr, code := runwayctl(t, filepath.Join(repoRoot, "examples", "topology-service"), "validate")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	got := lines(stdout)
	if len(got) != 2 || got[0] != ".runway/runway.yml: topology-migrate: on demand" ||
		!strings.HasPrefix(got[1], ".runway/topology-compaction/runway.yml: topology-compaction: ") {
		t.Errorf("stdout:\n%s\nwant the base file (topology-migrate), then the topology-compaction overlay", stdout)
	}
}

// TestValidateBrokenManifest breaks a copy of an example the way a user might and checks that
// every mistake is reported as FILE:LINE:COL, with exit status 1.
func TestValidateBrokenManifest(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(repoRoot, "examples", "ai-gateway", ".runway", "runway.yml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := string(example)
	for _, r := range []struct{ old, new string }{
		{`  schedule: "@hourly"`, `  schedule: "@every 1h"`},               // line 21
		{"  concurrency_policy: Replace", "  concurrency_policy: replace"}, // line 22
	} {
		if !strings.Contains(broken, r.old) {
			t.Fatalf("examples/ai-gateway/.runway/runway.yml no longer holds %q; update this test", r.old)
		}
		broken = strings.Replace(broken, r.old, r.new, 1)
	}
	repo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repo, ".runway"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, ".runway", "runway.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	inventory := filepath.Join(repoRoot, "examples", "inventory.yml")

	tests := []struct {
		name       string
		args       []string
		wantStdout []string
		wantStderr []string
	}{
		{
			name: "from inside the repository",
			args: []string{"validate"},
			wantStderr: []string{
				`.runway/runway.yml:21:13: spec.schedule: schedule "@every 1h": @every intervals are not supported: cron slots are needed (e.g. "*/15 * * * *")`,
				`.runway/runway.yml:22:23: spec.concurrency_policy: must be one of "Allow", "Forbid", "Replace"; got "replace"; did you mean "Replace"?`,
				`1 of 1 files invalid`,
			},
		},
		{
			name:       "against the inventory",
			args:       []string{"validate", "--inventory", inventory, ".runway/runway.yml"},
			wantStdout: []string{inventory + ": inventory: 5 workloads (4 jobs, 1 service)"},
			wantStderr: []string{
				`.runway/runway.yml:21:13: spec.schedule: schedule "@every 1h": @every intervals are not supported: cron slots are needed (e.g. "*/15 * * * *")`,
				`.runway/runway.yml:22:23: spec.concurrency_policy: must be one of "Allow", "Forbid", "Replace"; got "replace"; did you mean "Replace"?`,
				`1 of 2 files invalid`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runwayctl(t, repo, tt.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if got := lines(stdout); !slices.Equal(got, tt.wantStdout) {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, strings.Join(tt.wantStdout, "\n"))
			}
			if got := lines(stderr); !slices.Equal(got, tt.wantStderr) {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(tt.wantStderr, "\n"))
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	stdout, stderr, code := runwayctl(t, repoRoot, "schedule", "@daily", "--after", "2026-01-01T00:00:00Z", "--count", "2")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want := "At 00:00 UTC, every day\n2026-01-02T00:00:00Z\n2026-01-03T00:00:00Z\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

// TestExitStatus checks main's exit codes: 1 for invalid input, 2 for a usage error.
func TestExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "invalid schedule", args: []string{"schedule", "0 0 30 2 *"}, wantCode: 1,
			wantStderr: "schedule \"0 0 30 2 *\" can never fire: no such date exists\n"},
		{name: "bad --count", args: []string{"schedule", "@daily", "--count", "0"}, wantCode: 2,
			wantStderr: "runwayctl: --count must be between 1 and 1000, not 0\n"},
		{name: "bad --after", args: []string{"schedule", "@daily", "--after", "tomorrow"}, wantCode: 2,
			wantStderr: "runwayctl: --after \"tomorrow\": want an RFC3339 time such as 2026-11-26T15:04:05Z\n"},
		{name: "unknown command", args: []string{"deploi"}, wantCode: 2,
			wantStderr: "runwayctl: unknown command \"deploi\" for \"runwayctl\"\n\nDid you mean this?\n\tdeploy\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runwayctl(t, repoRoot, tt.args...)
			if code != tt.wantCode || stdout != "" || stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit %d, no stdout, stderr %q", code, stdout, stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}

// TestSchemaForEditors saves the schema as the manifest reference suggests and checks it is
// the one validation uses.
func TestSchemaForEditors(t *testing.T) {
	stdout, stderr, code := runwayctl(t, repoRoot, "schema")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stdout != string(manifest.SchemaJSON()) {
		t.Errorf("runwayctl schema differs from the schema in runwayjobs.dev/shared/manifest")
	}
}
