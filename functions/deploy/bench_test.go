package deploy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/state"
)

// BenchmarkRedelivery is one redelivered, already-applied request: it reports the Cloud Run
// and Cloud Scheduler writes (target 0) and reads (target at most 2) it makes.
func BenchmarkRedelivery(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	ev := requestEvent(b, "nightly", apply("r1", "nightly", nightlyManifest, 10))
	if err := e.h.Handle(ctx, ev); err != nil {
		b.Fatal(err)
	}
	e.writes.take()
	for b.Loop() {
		if err := e.h.Handle(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	writes, reads := e.writes.take()
	b.ReportMetric(float64(len(writes))/float64(b.N), "writes/op")
	b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
}

// Benchmark1000Workloads deploys 1,000 scheduled workloads from nothing (a Cloud Run job and
// a Cloud Scheduler job each), then re-applies every request unchanged, as 16 concurrent
// function instances would. Targets: under 10 s from nothing, under 2 s unchanged. Cloud Run
// operations take 1 ms on the emulator here (seconds on Google Cloud).
func Benchmark1000Workloads(b *testing.B) {
	const n, workers = 1000, 16
	var inv strings.Builder
	inv.WriteString("inventory:\n")
	for i := range n {
		fmt.Fprintf(&inv, "  - {name: job-%04d, type: job, project_id: 1, gcp_project: %s, regions: [%s], artifact_repository: %s}\n", i, project, region, repo)
	}
	parsed, err := inventory.Parse("inventory.yml", []byte(inv.String()))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		emu := emulatortest.Start(b, emulator.Options{OpDelay: time.Millisecond})
		cl, err := gcp.Dial(context.Background(), emulatortest.Config(emu, project), gcp.Jobs|gcp.Scheduler)
		if err != nil {
			b.Fatal(err)
		}
		store, err := state.NewDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		h := newHandler(cl.Jobs, cl.Scheduler, store, parsed, time.Now, zerolog.New(io.Discard))
		events := make([]cloudevent.Event, n)
		for i := range n {
			name := fmt.Sprintf("job-%04d", i)
			m := strings.ReplaceAll(nightlyManifest, "nightly", name)
			events[i] = requestEvent(b, name, apply("r-"+name, name, m, 10))
		}
		b.StartTimer()
		first := applyAll(b, h, events, workers)
		again := applyAll(b, h, events, workers)
		b.ReportMetric(first.Seconds(), "s-from-nothing")
		b.ReportMetric(again.Seconds(), "s-unchanged")
		b.StopTimer()
		cl.Close()
		emu.Close()
		b.StartTimer()
	}
}

func applyAll(b *testing.B, h *Handler, events []cloudevent.Event, workers int) time.Duration {
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range work {
				if err := h.Handle(context.Background(), events[i]); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range events {
		work <- i
	}
	close(work)
	wg.Wait()
	return time.Since(start)
}
