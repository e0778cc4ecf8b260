package allclients

import (
	"context"
	"testing"

	"runwayjobs.dev/shared/gcp"
)

func TestDial(t *testing.T) {
	tests := []struct {
		name    string
		cfg     gcp.Config
		want    gcp.Service
		wantErr bool
		check   func(*Clients) bool
	}{
		// Clients connect lazily: dialing an address nobody listens on succeeds.
		{name: "pubsub needs a project with the emulator", cfg: gcp.Config{EmulatorHost: "127.0.0.1:1"}, want: gcp.All, wantErr: true},
		{name: "all", cfg: gcp.Config{EmulatorHost: "127.0.0.1:1", Project: "p"}, want: gcp.All, check: func(c *Clients) bool {
			return c.Jobs != nil && c.Executions != nil && c.Tasks != nil && c.Scheduler != nil && c.Metrics != nil && c.PubSub != nil
		}},
		{name: "metrics only, no project needed", cfg: gcp.Config{EmulatorHost: "127.0.0.1:1"}, want: gcp.Metrics, check: func(c *Clients) bool {
			return c.Metrics != nil && c.PubSub == nil && c.Jobs == nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := Dial(context.Background(), tt.cfg, tt.want)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !tt.check(cl) {
				t.Errorf("Dial(%b) = %+v", tt.want, cl)
			}
			if err := cl.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
