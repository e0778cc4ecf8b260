package image

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Fallbacks when neither the environment nor git knows.
const (
	DevVersion    = "dev"
	UnknownCommit = "unknown"
)

var (
	// versionRE is a registry tag's grammar: the version is also the image's tag.
	versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	commitRE  = regexp.MustCompile(`^([0-9a-f]{7,64}|` + UnknownCommit + `)$`)
)

// Check reports a version that is not a tag or a commit that is not a hex object name: both
// go into -ldflags and labels unquoted.
func (m Meta) Check() error {
	if !versionRE.MatchString(m.Version) {
		return fmt.Errorf("version %q: want a registry tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128)", m.Version)
	}
	if !commitRE.MatchString(m.Commit) {
		return fmt.Errorf("commit %q: want a hex object name or %q", m.Commit, UnknownCommit)
	}
	return nil
}

// Describe returns the Meta of the tree at repo: the version from RUNWAY_VERSION, else `git
// describe --tags --always --dirty`, else "dev"; the commit from RUNWAY_COMMIT, else `git
// rev-parse HEAD`, else "unknown"; the time from SOURCE_DATE_EPOCH, else the commit's time,
// else the Unix epoch. Never the clock: two builds of one commit must agree.
func Describe(ctx context.Context, repo string, getenv func(string) string) (Meta, error) {
	m := Meta{Version: getenv("RUNWAY_VERSION"), Commit: getenv("RUNWAY_COMMIT"), Source: DefaultSource}
	if s := getenv("RUNWAY_SOURCE"); s != "" {
		m.Source = s
	}
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if m.Version == "" {
		m.Version = git("describe", "--tags", "--always", "--dirty")
	}
	if m.Version == "" {
		m.Version = DevVersion
	}
	if m.Commit == "" {
		m.Commit = git("rev-parse", "HEAD")
	}
	if m.Commit == "" {
		m.Commit = UnknownCommit
	}
	epoch := getenv("SOURCE_DATE_EPOCH")
	if epoch == "" && m.Commit != UnknownCommit {
		epoch = git("log", "-1", "--format=%ct", m.Commit)
	}
	if epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return Meta{}, fmt.Errorf("describe %s: SOURCE_DATE_EPOCH %q: %w", repo, epoch, err)
		}
		m.Created = time.Unix(sec, 0).UTC()
	} else {
		m.Created = time.Unix(0, 0).UTC()
	}
	if err := m.Check(); err != nil {
		return Meta{}, fmt.Errorf("describe %s: %w", repo, err)
	}
	return m, nil
}
