package image

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestMetaCheck(t *testing.T) {
	tests := []struct {
		name string
		meta Meta
		want string // "" = valid
	}{
		{name: "tag and sha", meta: Meta{Version: "v1.2.3", Commit: "51647d042f91e6d2b3c970685e007d432e78b9c6"}},
		{name: "describe output", meta: Meta{Version: "v1.2.3-4-g51647d0-dirty", Commit: "51647d0"}},
		{name: "no git", meta: Meta{Version: DevVersion, Commit: UnknownCommit}},
		{name: "space in version", meta: Meta{Version: "v1 -X main.x=y", Commit: "abcdef0"}, want: "version"},
		{name: "leading dot", meta: Meta{Version: ".v1", Commit: "abcdef0"}, want: "version"},
		{name: "empty version", meta: Meta{Commit: "abcdef0"}, want: "version"},
		{name: "too long", meta: Meta{Version: strings.Repeat("a", 129), Commit: "abcdef0"}, want: "version"},
		{name: "commit not hex", meta: Meta{Version: "v1", Commit: "main"}, want: "commit"},
		{name: "short commit", meta: Meta{Version: "v1", Commit: "abc"}, want: "commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.meta.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("Check() = %v, want an error about the %s", err, tt.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	noGit := t.TempDir() // not a git repository: git fails there
	tests := []struct {
		name    string
		repo    string
		getenv  func(string) string
		want    Meta
		wantErr string
	}{
		{name: "no git, no environment", repo: noGit, getenv: env(),
			want: Meta{Version: DevVersion, Commit: UnknownCommit, Source: DefaultSource, Created: time.Unix(0, 0).UTC()}},
		{name: "environment", repo: noGit, getenv: env("RUNWAY_VERSION", "v1.4.0", "RUNWAY_COMMIT", "abcdef0123", "SOURCE_DATE_EPOCH", "1764633600", "RUNWAY_SOURCE", "https://example.com/r"),
			want: Meta{Version: "v1.4.0", Commit: "abcdef0123", Source: "https://example.com/r", Created: time.Date(2025, 12, 2, 0, 0, 0, 0, time.UTC)}},
		{name: "bad epoch", repo: noGit, getenv: env("SOURCE_DATE_EPOCH", "yesterday"), wantErr: "SOURCE_DATE_EPOCH"},
		{name: "bad version", repo: noGit, getenv: env("RUNWAY_VERSION", "a b"), wantErr: "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Describe(context.Background(), tt.repo, tt.getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Describe() = %v, want an error about %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Describe() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDescribeGit: in this repository, git gives the commit and its time, not the clock.
func TestDescribeGit(t *testing.T) {
	m, err := Describe(context.Background(), repoRoot, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Commit) != 40 {
		t.Skipf("no git checkout here (commit %q)", m.Commit)
	}
	if m.Created.Unix() == 0 || time.Since(m.Created) < 0 {
		t.Errorf("created %s: want the commit's time", m.Created)
	}
	if m.Version == DevVersion {
		t.Errorf("version %q in a git checkout", m.Version)
	}
}
