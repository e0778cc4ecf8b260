package state

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
)

// BenchmarkClaim measures one claim (a create-if-absent Put of a fresh key, what the trigger
// does once per request) and one lost claim (the same Put on a taken key: a 412 on GCS), on
// Dir and on GCS through the official client against the in-process emulator.
func BenchmarkClaim(b *testing.B) {
	e := emulatortest.Start(b, emulator.Options{})
	buckets := 0 // a sub-benchmark runs several times: each run gets a bucket of its own
	stores := []struct {
		name string
		open func(b *testing.B) Store
	}{
		{name: "dir", open: func(b *testing.B) Store { return newDirB(b) }},
		{name: "gcs-emulator", open: func(b *testing.B) Store {
			buckets++
			return newGCS(b, e, "bench-"+strconv.Itoa(buckets), "claims")
		}},
	}
	claim := []byte(`{"request":"r-123","execution":"projects/p/locations/l/jobs/j/executions/e-1"}`)
	ctx := context.Background()
	for _, st := range stores {
		b.Run(st.name+"/won", func(b *testing.B) {
			s := st.open(b)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Put(ctx, "runs/w/req-"+strconv.Itoa(i), claim, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(st.name+"/lost", func(b *testing.B) {
			s := st.open(b)
			if _, err := s.Put(ctx, "runs/w/taken", claim, 0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Put(ctx, "runs/w/taken", claim, 0); !errors.Is(err, ErrPrecondition) {
					b.Fatalf("Put on a taken key = %v, want ErrPrecondition", err)
				}
			}
		})
	}
}

func newDirB(b *testing.B) *Dir {
	d, err := NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return d
}
