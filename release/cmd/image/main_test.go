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
		{name: "unknown flag", args: []string{"-arch", "s390x"}, want: "flag provided but not defined"},
		{name: "unknown platform", args: []string{"-o", out, "-platform", "linux/s390x"}, want: `-platform "linux/s390x": not a platform of the image (linux/amd64,linux/arm64/v8)`},
		{name: "arm64 without its variant", args: []string{"-o", out, "-platform", "linux/amd64,linux/arm64"}, want: `"linux/arm64": not a platform`},
		{name: "some platforms pushed", args: []string{"-push", "example.com/p/r/runwayctl", "-platform", "linux/amd64"}, want: "a pushed image has every platform"},
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

// TestParsePlatforms: -platform keeps the image's order and refuses what the image has not.
func TestParsePlatforms(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    string // platformList of the result; "" for nil
		wantErr bool
	}{
		{name: "all by default", value: ""},
		{name: "one", value: "linux/arm64/v8", want: "linux/arm64/v8"},
		{name: "image order, duplicates once", value: "linux/arm64/v8,linux/amd64,linux/amd64", want: "linux/amd64,linux/arm64/v8"},
		{name: "empty element", value: "linux/amd64,", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := parsePlatforms(tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parsePlatforms(%q) error = %v, want error %v", tt.value, err, tt.wantErr)
			}
			if got := platformList(ps); !tt.wantErr && got != tt.want {
				t.Errorf("parsePlatforms(%q) = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}
