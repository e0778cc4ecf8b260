package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// clock is the fixed "now" of every in-process run: Thursday 26 November 2026, 16:00 UTC.
var clock = time.Date(2026, time.November, 26, 16, 0, 0, 0, time.UTC)

// execute runs runwayctl in-process with args, the process environment and the fixed clock,
// and returns what it wrote and the exit status main would use (exitCode, which prints
// "runwayctl: " and an unreported error as main does).
func execute(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return executeWith(t, os.Getenv, args...)
}

// executeWith is execute with getenv as the environment.
func executeWith(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := newCmdEnv(&out, &errOut, getenv, func() time.Time { return clock })
	root := newRoot(e)
	root.SetArgs(args)
	err := root.Execute()
	if cerr := e.Close(); cerr != nil {
		t.Errorf("closing the command's clients: %v", cerr)
	}
	code = exitCode(&errOut, err)
	return out.String(), errOut.String(), code
}

// lines splits output into its lines, without the final newline; nil for no output.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// assertLines fails unless got holds exactly the lines want, in order.
func assertLines(t *testing.T, what, got string, want []string) {
	t.Helper()
	if g := lines(got); !slices.Equal(g, want) {
		t.Errorf("%s:\n got: %s\nwant: %s", what, quoteLines(g), quoteLines(want))
	}
}

func quoteLines(ls []string) string {
	if len(ls) == 0 {
		return "(nothing)"
	}
	return "\n  " + strings.Join(ls, "\n  ")
}

// writeFile writes content to dir/name, creating directories as needed, and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// header is lines 1-8 of a manifest for the workload nightly-report: apiVersion, kind and a
// complete metadata block. A manifest written as header + "spec:\n" + ... has spec: on line 9
// and its first field on line 10.
const header = `apiVersion: runway/v1
kind: RunwayJob
metadata:
  name: nightly-report
  owner_email_handle: data-team
  department: eng
  department_group: eng-data
  product_category: analytics
`

// job returns a manifest for nightly-report whose spec holds specLines (each indented by two
// spaces, so the first is on line 10).
func job(specLines ...string) string {
	if len(specLines) == 0 {
		return header + "spec: {}\n"
	}
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("spec:\n")
	for _, l := range specLines {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// withName returns a manifest whose metadata.name (line 4, value at column 9) is name.
func withName(name string) string {
	return strings.Replace(job(), "name: nightly-report", "name: "+name, 1)
}

func TestHelpListsCommands(t *testing.T) {
	stdout, stderr, code := execute(t, "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("--help: exit %d, stderr %q", code, stderr)
	}
	for _, cmd := range []string{"validate", "schema", "schedule"} {
		if !strings.Contains(stdout, "\n  "+cmd+" ") {
			t.Errorf("--help does not list %s:\n%s", cmd, stdout)
		}
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	stdout, stderr, code := execute(t, "deploi")
	if code != 2 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want exit 2 and no output", code, stdout)
	}
	if !strings.Contains(stderr, `unknown command "deploi"`) {
		t.Errorf("stderr %q does not name the unknown command", stderr)
	}
}
