package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/gcp"
)

// newGCS returns a store on the emulator e through the official client, in bucket under
// prefix; the client is closed when t ends.
func newGCS(t testing.TB, e *emulator.Emulator, bucket, prefix string) *GCS {
	t.Helper()
	client, err := gcp.NewStorageAPI(context.Background(), emulatortest.Config(e, "runway-test"))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGCS(client, bucket, prefix)
	t.Cleanup(func() { g.Close() })
	return g
}

func TestConformanceGCS(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	var n atomic.Int64
	testConformance(t, func(t *testing.T) opener {
		bucket := fmt.Sprintf("runway-state-%d", n.Add(1))
		return func(t *testing.T) Store { return newGCS(t, e, bucket, "jobs/prod") }
	})
}

// TestGCSPrefix checks that stores under two prefixes of one bucket don't see each other.
func TestGCSPrefix(t *testing.T) {
	ctx := context.Background()
	e := emulatortest.Start(t, emulator.Options{})
	a, b, whole := newGCS(t, e, "shared", "a"), newGCS(t, e, "shared", "b/"), newGCS(t, e, "shared", "")
	if _, err := a.Put(ctx, "runs/1", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "runs/1", []byte("b"), 0); err != nil {
		t.Fatalf("the same key under another prefix: %v", err)
	}
	if got, _ := a.List(ctx, ""); !slices.Equal(got, []string{"runs/1"}) {
		t.Errorf("a.List = %v, want [runs/1]", got)
	}
	if got, _ := whole.List(ctx, ""); !slices.Equal(got, []string{"a/runs/1", "b/runs/1"}) {
		t.Errorf("whole bucket List = %v, want the object names a/runs/1, b/runs/1", got)
	}
	if o, err := whole.Get(ctx, "b/runs/1"); err != nil || string(o.Data) != "b" {
		t.Errorf("Get b/runs/1 = %q, %v", o.Data, err)
	}
}

// TestGCSFaults checks that server errors are neither ErrPrecondition nor ErrNotFound, and
// that the client retries idempotent reads.
func TestGCSFaults(t *testing.T) {
	ctx := context.Background()
	e := emulatortest.Start(t, emulator.Options{})
	s := newGCS(t, e, "faults", "")
	if _, err := s.Put(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		method  string
		times   int
		call    func() error
		wantErr bool
	}{
		{name: "write refused", method: "/http/storage.googleapis.com/objects.insert", times: 1, wantErr: true,
			call: func() error { _, err := s.Put(ctx, "k2", []byte("v"), 0); return err }},
		{name: "read retried", method: "/http/storage.googleapis.com/objects.get", times: 1,
			call: func() error { _, err := s.Get(ctx, "k"); return err }},
		{name: "list retried", method: "/http/storage.googleapis.com/objects.list", times: 1,
			call: func() error { _, err := s.List(ctx, ""); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(e.Faults().Clear)
			if err := e.Faults().Add(fault.Rule{Method: tt.method, Code: codes.Unavailable, Times: tt.times}); err != nil {
				t.Fatal(err)
			}
			err := tt.call()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrPrecondition) || errors.Is(err, ErrNotFound) {
				t.Fatalf("a 503 read as %v", err)
			}
		})
	}
	// The refused write left nothing behind: the key can still be claimed.
	if _, err := s.Put(ctx, "k2", []byte("v"), 0); err != nil {
		t.Fatalf("claim after a refused write: %v", err)
	}
}

func TestOpenGCS(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	tests := []struct {
		name       string
		url        string
		wantBucket string
		wantPrefix string
		wantErr    bool
	}{
		{name: "bucket and prefix", url: "gs://runway-state/prod", wantBucket: "runway-state", wantPrefix: "prod/"},
		{name: "nested prefix", url: "gs://runway-state/env/prod/", wantBucket: "runway-state", wantPrefix: "env/prod/"},
		{name: "whole bucket", url: "gs://runway-state", wantBucket: "runway-state"},
		{name: "no bucket", url: "gs:///prod", wantErr: true},
		{name: "bad prefix", url: "gs://b/../x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := OpenGCS(context.Background(), tt.url, emulatortest.Config(e, ""))
			if (err != nil) != tt.wantErr {
				t.Fatalf("OpenGCS(%q) = %v, wantErr %v", tt.url, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer g.Close()
			if g.name != tt.wantBucket || g.prefix != tt.wantPrefix {
				t.Fatalf("bucket %q prefix %q, want %q %q", g.name, g.prefix, tt.wantBucket, tt.wantPrefix)
			}
			if _, err := g.Put(context.Background(), "k", nil, 0); err != nil {
				t.Fatalf("Put through the opened store: %v", err)
			}
		})
	}
}

// TestOpenWithConfig opens gs:// as the functions do, with the emulator's address in their config
// (RUNWAY_EMULATOR_HOST, read by platform.FunctionConfigFromEnv).
func TestOpenWithConfig(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	s, err := Open(context.Background(), "gs://runway-state/env", gcp.ConfigFromEnv(func(k string) (string, bool) {
		if k == gcp.EmulatorHostEnv {
			return e.Addr(), true
		}
		return "", false
	}, "runway"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.(*GCS).Close()
	ctx := context.Background()
	if _, err := s.Put(ctx, "runs/x", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "runs/x", []byte("v"), 0); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("second claim = %v, want ErrPrecondition", err)
	}
}
