package state

import (
	"context"
	"testing"

	"runwayjobs.dev/shared/gcp"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr bool
	}{
		{name: "directory", url: t.TempDir()},
		{name: "file url", url: "file://" + t.TempDir()},
		{name: "empty", url: "", wantErr: true},
		{name: "unknown scheme", url: "s3://bucket", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.url, gcp.Config{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open(%q) error = %v, wantErr %v", tt.url, err, tt.wantErr)
			}
		})
	}
}
