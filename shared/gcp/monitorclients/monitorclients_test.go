package monitorclients

import (
	"context"
	"testing"

	"runwayjobs.dev/shared/gcp"
)

func TestDial(t *testing.T) {
	tests := []struct {
		name    string
		want    gcp.Service
		wantErr bool
		check   func(*Clients) bool
	}{
		// Clients connect lazily: dialing an address nobody listens on succeeds.
		{name: "pubsub is refused", want: gcp.All, wantErr: true},
		{name: "the monitor's", want: gcp.Jobs | gcp.Executions | gcp.Metrics | gcp.Scheduler, check: func(c *Clients) bool {
			return c.Jobs != nil && c.Executions != nil && c.Tasks == nil && c.Scheduler != nil && c.Metrics != nil
		}},
		{name: "metrics only", want: gcp.Metrics, check: func(c *Clients) bool { return c.Metrics != nil && c.Jobs == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := Dial(context.Background(), gcp.Config{EmulatorHost: "127.0.0.1:1"}, tt.want)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !tt.check(cl) || cl.MonitorClients() != cl {
				t.Errorf("Dial(%b) = %+v", tt.want, cl)
			}
			if err := cl.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
