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

func (c *countingStore) calls() int64 {
	return c.gets.Load() + c.lists.Load() + c.puts.Load() + c.deletes.Load()
}

// BenchmarkTickHistory replays 30 simulated days of the replay's 15 jobs (the trigger's claim
// of every scheduled run written to a directory store as the days pass, about 1,600 a day) and
// compares a day of one-minute ticks on day 1 with the same day on day 30 (target: day 30 at
// most 1.2x day 1). Two replays are built, one brought to day 1 and one to day 30 (ticking
// every 30 minutes on the way), and their days are then ticked in turn, a minute of one and the
// same minute of the other, so that the machine's load weighs on both alike. Each tick is
// measured on its own: its time, its allocations and its store calls (Get, List, Put, Delete);
// the figures are the median over the day, the median over the ticks of the day's pruning
// passes, and the worst tick (on day 30, a tick of a pruning pass). The medians of the store calls and of the allocations are asserted, and so is the worst tick's
// store calls, which no history raises. On the directory store a pruning page reads the whole
// directory it falls in (a minutely job's holds up to RecordRetention + PruneInterval of
// claims), which the worst tick's time shows; Cloud Storage lists from startOffset.
func BenchmarkTickHistory(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		start := created.Add(24 * time.Hour).Truncate(24 * time.Hour).Add(30 * time.Second) // day 1, 00:00:30
		h1, h30 := newHistory(b), newHistory(b)
		h1.fill(start)
		h30.fill(start.Add(29 * 24 * time.Hour)) // day 30, the same time
		const ticks = 24 * 60
		for i := range ticks {
			h1.measure(start.Add(time.Duration(i) * time.Minute))
			h30.measure(start.Add(29*24*time.Hour + time.Duration(i)*time.Minute))
		}
		day1, day30 := h1.stats(), h30.stats()
		b.StartTimer()
		for _, d := range []struct {
			name string
			s    dayStats
		}{{"day1", day1}, {"day30", day30}} {
			b.ReportMetric(d.s.ms, d.name+"-tick-ms")
			b.ReportMetric(d.s.worstMs, d.name+"-worst-ms")
			b.ReportMetric(d.s.pruneMs, d.name+"-pruning-tick-ms")
			b.ReportMetric(d.s.allocs, d.name+"-allocs/tick")
			b.ReportMetric(d.s.worstAllocs, d.name+"-worst-allocs")
			b.ReportMetric(d.s.calls, d.name+"-store-calls/tick")
			b.ReportMetric(d.s.worstCalls, d.name+"-worst-store-calls")
			b.ReportMetric(d.s.pruning, d.name+"-pruning-ticks")
			b.ReportMetric(d.s.objects, d.name+"-objects")
		}
		b.ReportMetric(day30.ms/day1.ms, "time-ratio")
		b.ReportMetric(day30.allocs/day1.allocs, "allocs-ratio")
		b.ReportMetric(day30.calls/day1.calls, "calls-ratio")
		if r := day30.calls / day1.calls; r > 1.2 {
			b.Errorf("day 30's median tick makes %.2fx the store calls of day 1's, want at most 1.2x", r)
		}
		if r := day30.allocs / day1.allocs; r > 1.2 {
			b.Errorf("day 30's median tick allocates %.2fx what day 1's does, want at most 1.2x", r)
		}
		// The worst tick prunes: its calls are those of a tick between passes plus the page, a
		// read of at most PruneReads records, a delete of at most PruneBatch and the cursor's Put.
		cfg := h30.h.cfg
		if bound := day30.calls + float64(1+cfg.PruneReads+cfg.PruneBatch+1); day30.worstCalls > bound {
			b.Errorf("day 30's worst tick made %.0f store calls, want at most %.0f", day30.worstCalls, bound)
		}
		if day30.pruning == 0 || day30.pruning > ticks/2 {
			b.Errorf("%0.f of day 30's %d ticks pruned, want some and fewer than half", day30.pruning, ticks)
		}
	}
}

// dayStats is what a day of one-minute ticks cost, per tick: the median, the worst and the
// median of the ticks that pruned.
type dayStats struct {
	ms, allocs, calls                float64
	worstMs, worstAllocs, worstCalls float64
	pruneMs, pruning, objects        float64
}

// median returns the middle of xs and its largest, sorting xs.
func median[T int64 | uint64 | time.Duration](xs []T) (mid, worst T) {
	slices.Sort(xs)
	return xs[len(xs)/2], xs[len(xs)-1]
}

// history is a replay whose trigger claims go to a directory store as its time passes, and the
// monitor ticking it.
type history struct {
	b       *testing.B
	r       *replay
	h       *Handler
	dir     *state.Dir
	store   *countingStore
	runs    []*simExec // the scheduled runs, by creation
	job     map[*simExec]string
	written int // runs claimed
	now     time.Time
	objects int // in the store when the measured day began

	times, pruneTimes []time.Duration
	allocs            []uint64
	calls             []int64
}

func newHistory(b *testing.B) *history {
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
	for _, k := range must(r.store.List(ctx, "runs/")) { // the replay's skipped and missed slots
		o, _ := r.store.Get(ctx, k)
		if _, err := dir.Put(ctx, k, o.Data, 0); err != nil {
			b.Fatal(err)
		}
	}
	x := &history{b: b, r: r, dir: dir, store: &countingStore{Store: dir}, job: map[*simExec]string{}}
	// The trigger's claims of the scheduled runs, written when each run is created.
	for _, j := range r.w.jobs {
		for _, e := range j.execs {
			x.job[e] = j.key.Job
			if !e.scheduled.IsZero() {
				x.runs = append(x.runs, e)
			}
		}
	}
	sort.Slice(x.runs, func(i, k int) bool { return x.runs[i].created.Before(x.runs[k].created) })
	x.h = r.handler(1, 0)
	x.h.store = x.store
	x.now = created.Add(30 * time.Second)
	return x
}

// claim writes the trigger's claims of the runs created by now.
func (x *history) claim(now time.Time) {
	ctx := context.Background()
	for ; x.written < len(x.runs) && !x.runs[x.written].created.After(now); x.written++ {
		e := x.runs[x.written]
		key := platform.SlotRecordKey(x.job[e], e.scheduled)
		rec, _ := json.Marshal(platform.RunRecord{RequestID: key, Workload: x.job[e], Trigger: platform.TriggerSchedule,
			ScheduledTime: e.scheduled, Outcome: platform.RunStarted, Execution: e.name, Attempts: 1, Time: e.created})
		if _, err := x.dir.Put(ctx, key, rec, 0); err != nil && !isPrecondition(err) {
			x.b.Fatal(err)
		}
	}
}

func (x *history) tick(now time.Time) {
	x.claim(now) // the trigger's writes are not the tick's
	x.r.w.setNow(now)
	if _, err := x.h.tick(context.Background()); err != nil {
		x.b.Fatalf("tick at %s: %v", now, err)
	}
}

// fill ticks every 30 minutes up to until.
func (x *history) fill(until time.Time) {
	for ; x.now.Before(until); x.now = x.now.Add(30 * time.Minute) {
		x.tick(x.now)
	}
	x.objects = len(must(x.dir.List(context.Background(), "")))
}

// measure ticks at now and records what the tick cost.
func (x *history) measure(now time.Time) {
	x.claim(now)
	c0, l0 := x.store.calls(), x.store.lists.Load()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	x.tick(now)
	took := time.Since(t0)
	x.times = append(x.times, took)
	x.now = now.Add(time.Minute)
	runtime.ReadMemStats(&after)
	x.allocs = append(x.allocs, after.Mallocs-before.Mallocs)
	x.calls = append(x.calls, x.store.calls()-c0)
	if x.store.lists.Load() > l0 {
		x.pruneTimes = append(x.pruneTimes, took)
	}
}

func (x *history) stats() dayStats {
	ms, worstMs := median(x.times)
	al, worstAl := median(x.allocs)
	cs, worstCs := median(x.calls)
	var pruneMs float64
	if len(x.pruneTimes) > 0 {
		p, _ := median(x.pruneTimes)
		pruneMs = float64(p.Microseconds()) / 1000
	}
	return dayStats{
		ms: float64(ms.Microseconds()) / 1000, worstMs: float64(worstMs.Microseconds()) / 1000,
		allocs: float64(al), worstAllocs: float64(worstAl),
		calls: float64(cs), worstCalls: float64(worstCs),
		pruneMs: pruneMs, pruning: float64(len(x.pruneTimes)), objects: float64(x.objects),
	}
}

func isPrecondition(err error) bool { return errors.Is(err, state.ErrPrecondition) }
