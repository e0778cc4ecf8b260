package gcp

import (
	"context"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantHost string
		wantOpts int
	}{
		{name: "production", env: map[string]string{}, wantHost: "", wantOpts: 0},
		{name: "emulator", env: map[string]string{EmulatorHostEnv: "127.0.0.1:8085"}, wantHost: "127.0.0.1:8085", wantOpts: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ConfigFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, "p")
			if c.EmulatorHost != tt.wantHost || c.Project != "p" {
				t.Errorf("config = %+v, want host %q, project p", c, tt.wantHost)
			}
			if got := len(c.Options()); got != tt.wantOpts {
				t.Errorf("%d options, want %d", got, tt.wantOpts)
			}
		})
	}
}

func TestDialEmulatorNeedsProject(t *testing.T) {
	// Clients connect lazily, so dialing an address nobody listens on succeeds up to Pub/Sub,
	// which needs a project with the emulator.
	_, err := Dial(context.Background(), Config{EmulatorHost: "127.0.0.1:1"})
	if err == nil {
		t.Fatal("Dial without a project succeeded")
	}
	cl, err := Dial(context.Background(), Config{EmulatorHost: "127.0.0.1:1", Project: "p"})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if err := cl.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
