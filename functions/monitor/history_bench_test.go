package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// countingStore counts the calls made to a store.
type countingStore struct {
	state.Store
	gets, lists, puts, deletes atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string) (state.Object, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, data []byte, ifGen int64) (int64, error) {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, data, ifGen)
}

func (c *countingStore) Delete(ctx context.Context, key string, ifGen int64) error {
	c.deletes.Add(1)
	return c.Store.Delete(ctx, key, ifGen)
}

func (c *countingStore) List(ctx context.Context, prefix string) ([]string, error) {
	c.lists.Add(1)
	return c.Store.List(ctx, prefix)
}

func (c *countingStore) ListPage(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	c.lists.Add(1)
	return c.Store.ListPage(ctx, prefix, after, limit)
}

func (c *countingStore) reads() int64 { return c.gets.Load() + c.lists.Load() }

// BenchmarkTickHistory replays 30 simulated days of the replay's 15 jobs (the trigger's claim
// of every scheduled run written to a directory store as the days pass, about 1,600 a day) and
// compares an hour of one-minute ticks on day 1 with the same hour on day 30: the tick's time,
// its allocations and its store calls (target: day 30 at most 1.2x day 1; the store calls are
// asserted). Between the two hours the monitor ticks every 30 minutes, pruning as it goes. On
// the directory store a pruning page reads the whole directory it falls in (a minutely job's
// holds up to RecordRetention of claims), which the day-30 time and allocations show; Cloud
// Storage lists from startOffset.
func BenchmarkTickHistory(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		day1, day30 := replayHistory(b)
		b.StartTimer()
		b.ReportMetric(day1.ms, "day1-tick-ms")
		b.ReportMetric(day30.ms, "day30-tick-ms")
		b.ReportMetric(day1.allocs, "day1-allocs/tick")
		b.ReportMetric(day30.allocs, "day30-allocs/tick")
		b.ReportMetric(day1.reads, "day1-store-reads/tick")
		b.ReportMetric(day30.reads, "day30-store-reads/tick")
		b.ReportMetric(day1.objects, "day1-objects")
		b.ReportMetric(day30.objects, "day30-objects")
		b.ReportMetric(day30.ms/day1.ms, "time-ratio")
		b.ReportMetric(day30.reads/day1.reads, "reads-ratio")
		if r := day30.reads / day1.reads; r > 1.2 {
			b.Errorf("day 30 reads %.2fx the store reads of day 1 per tick, want at most 1.2x", r)
		}
	}
}

// hourStats is what an hour of ticks cost, per tick (ms the median).
type hourStats struct{ ms, allocs, reads, objects float64 }

func replayHistory(b *testing.B) (day1, day30 hourStats) {
	root := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		// tmpfs: the replay's thousands of writes measure the store, not the disk's fsync.
		dir, err := os.MkdirTemp("/dev/shm", "runway-history-")
		if err == nil {
			root = dir
			b.Cleanup(func() { os.RemoveAll(dir) })
		}
	}
	if root == "" {
		root = b.TempDir()
	}
	dir, err := state.NewDir(root)
	if err != nil {
		b.Fatal(err)
	}
	r := newReplay(b)
	r.w.metricsFail, r.w.metricsEmpty = nil, nil
	ctx := context.Background()
	store := &countingStore{Store: dir}
	for _, k := range must(r.store.List(ctx, "runs/")) { // the replay's skipped and missed slots
		o, _ := r.store.Get(ctx, k)
		if _, err := dir.Put(ctx, k, o.Data, 0); err != nil {
			b.Fatal(err)
		}
	}
	// The trigger's claims of the scheduled runs, written when each run is created.
	var runs []*simExec
	for _, j := range r.w.jobs {
		for _, x := range j.execs {
			if !x.scheduled.IsZero() {
				runs = append(runs, x)
			}
		}
	}
	sort.Slice(runs, func(i, k int) bool { return runs[i].created.Before(runs[k].created) })
	workload := map[*simExec]string{}
	for _, j := range r.w.jobs {
		for _, x := range j.execs {
			workload[x] = j.key.Job
		}
	}
	written := 0
	claim := func(now time.Time) {
		for ; written < len(runs) && !runs[written].created.After(now); written++ {
			x := runs[written]
			key := platform.SlotRecordKey(workload[x], x.scheduled)
			rec, _ := json.Marshal(platform.RunRecord{RequestID: key, Workload: workload[x], Trigger: platform.TriggerSchedule,
				ScheduledTime: x.scheduled, Outcome: platform.RunStarted, Execution: x.name, Attempts: 1, Time: x.created})
			if _, err := dir.Put(ctx, key, rec, 0); err != nil && !isPrecondition(err) {
				b.Fatal(err)
			}
		}
	}
	h := r.handler(1, 0)
	h.store = store
	tick := func(now time.Time) {
		claim(now)
		r.w.setNow(now)
		if _, err := h.tick(ctx); err != nil {
			b.Fatalf("tick at %s: %v", now, err)
		}
	}
	hour := func(from time.Time) hourStats {
		objects := len(must(dir.List(ctx, "")))
		var times []time.Duration
		var before, after runtime.MemStats
		reads := store.reads()
		runtime.ReadMemStats(&before)
		for i := range 60 {
			now := from.Add(time.Duration(i) * time.Minute)
			claim(now)
			r.w.setNow(now)
			t0 := time.Now()
			if _, err := h.tick(ctx); err != nil {
				b.Fatalf("tick at %s: %v", now, err)
			}
			times = append(times, time.Since(t0))
		}
		runtime.ReadMemStats(&after)
		slices.Sort(times)
		return hourStats{
			ms:      float64(times[len(times)/2].Microseconds()) / 1000,
			allocs:  float64(after.Mallocs-before.Mallocs) / 60, // includes the claims written meanwhile
			reads:   float64(store.reads()-reads) / 60,
			objects: float64(objects),
		}
	}
	start := created.Add(24 * time.Hour).Truncate(24 * time.Hour).Add(30 * time.Second) // day 1, 00:00:30
	for now := created.Add(30 * time.Second); now.Before(start); now = now.Add(30 * time.Minute) {
		tick(now)
	}
	day1 = hour(start)
	end := start.Add(29 * 24 * time.Hour) // day 30, the same hour
	for now := start.Add(time.Hour); now.Before(end); now = now.Add(30 * time.Minute) {
		tick(now)
	}
	day30 = hour(end)
	return day1, day30
}

func isPrecondition(err error) bool { return errors.Is(err, state.ErrPrecondition) }
