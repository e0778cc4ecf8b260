package storageclient

import (
	"context"
	"testing"

	"runwayjobs.dev/shared/gcp"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		name     string
		config   gcp.Config
		wantOpts int
	}{
		{name: "production: JSON reads only", config: gcp.Config{}, wantOpts: 1},
		{name: "emulator: endpoint, no auth, no telemetry, JSON reads, no metrics", config: gcp.Config{EmulatorHost: "127.0.0.1:8085"}, wantOpts: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(Options(tt.config)); got != tt.wantOpts {
				t.Fatalf("%d options, want %d", got, tt.wantOpts)
			}
		})
	}
}

func TestNewNoNetwork(t *testing.T) {
	// Nobody listens on port 1: building the client must not connect.
	c, err := New(context.Background(), gcp.Config{EmulatorHost: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
