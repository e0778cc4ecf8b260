package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefuses: the argument and metadata errors that stop a build before it compiles.
func TestRunRefuses(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.oci.tar")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "no output", args: []string{"-repo", "../../.."}, want: "nothing to do"},
		{name: "unknown flag", args: []string{"-platform", "linux/s390x"}, want: "flag provided but not defined"},
		{name: "version not a tag", args: []string{"-o", out, "-version", "v1 beta"}, want: `version "v1 beta"`},
		{name: "commit not hex", args: []string{"-o", out, "-commit", "HEAD"}, want: `commit "HEAD"`},
		{name: "bad epoch", args: []string{"-o", out}, env: map[string]string{"SOURCE_DATE_EPOCH": "now"}, want: "SOURCE_DATE_EPOCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr, func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
