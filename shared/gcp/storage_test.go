package gcp

import (
	"context"
	"testing"
)

func TestStorageOptions(t *testing.T) {
	tests := []struct {
		name     string
		config   Config
		wantOpts int
	}{
		{name: "production: JSON reads only", config: Config{}, wantOpts: 1},
		{name: "emulator: JSON reads, endpoint, no auth, no telemetry, no metrics", config: Config{EmulatorHost: "127.0.0.1:8085"}, wantOpts: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(tt.config.StorageOptions()); got != tt.wantOpts {
				t.Fatalf("%d options, want %d", got, tt.wantOpts)
			}
		})
	}
}

func TestNewStorageNoNetwork(t *testing.T) {
	// Nobody listens on port 1: building the client must not connect.
	c, err := NewStorage(context.Background(), Config{EmulatorHost: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
