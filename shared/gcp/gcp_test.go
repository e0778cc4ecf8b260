package gcp

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
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

func TestDialBuildsWhatIsAskedFor(t *testing.T) {
	tests := []struct {
		name    string
		want    Service
		wantErr bool
		check   func(*Clients) bool
	}{
		{name: "jobs and scheduler", want: Jobs | Scheduler, check: func(c *Clients) bool {
			return c.Jobs != nil && c.Scheduler != nil && c.Executions == nil && c.Tasks == nil
		}},
		{name: "control", want: Control, check: func(c *Clients) bool {
			return c.Jobs != nil && c.Executions != nil && c.Tasks != nil && c.Scheduler != nil
		}},
		{name: "metrics refused", want: Jobs | Metrics, wantErr: true},
		{name: "pubsub refused", want: PubSub, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Clients connect lazily: dialing an address nobody listens on succeeds.
			cl, err := Dial(context.Background(), Config{EmulatorHost: "127.0.0.1:1"}, tt.want)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial(%b) error = %v, want error %v", tt.want, err, tt.wantErr)
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

func TestDialSharesTheRunConnection(t *testing.T) {
	tests := []struct {
		name string
		want Service
		// conns are the connections of the Cloud Run clients asked for.
		conns func(*Clients) []*grpc.ClientConn
	}{
		{name: "jobs, executions and tasks", want: Control, conns: func(c *Clients) []*grpc.ClientConn {
			return []*grpc.ClientConn{c.Jobs.Connection(), c.Executions.Connection(), c.Tasks.Connection()}
		}},
		{name: "executions and tasks", want: Executions | Tasks, conns: func(c *Clients) []*grpc.ClientConn {
			return []*grpc.ClientConn{c.Executions.Connection(), c.Tasks.Connection()}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := Dial(context.Background(), Config{EmulatorHost: "127.0.0.1:1"}, tt.want)
			if err != nil {
				t.Fatal(err)
			}
			conns := tt.conns(cl)
			for _, c := range conns[1:] {
				if c != conns[0] {
					t.Errorf("Cloud Run clients on connections %p and %p, want one", conns[0], c)
				}
			}
			if err := cl.Close(); err != nil {
				t.Errorf("Close: %v", err) // a connection closed twice would say so
			}
			if s := conns[0].GetState(); s != connectivity.Shutdown {
				t.Errorf("after Close the connection is %v, want %v", s, connectivity.Shutdown)
			}
		})
	}
}
