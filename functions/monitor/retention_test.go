package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// TestPrune fills a directory store with records on either side of the retention horizon and
// prunes it with two instances at once, a few keys a tick: the expired records go, the others
// stay, and no tick looks at more than its batch.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	store, err := state.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 2, 1, 12, 0, 0, 0, time.UTC)
	retention := 10 * 24 * time.Hour
	old, fresh := now.Add(-retention-time.Hour), now.Add(-retention+time.Hour)
	put := func(key string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := store.Put(ctx, key, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(at time.Time) platform.RunRecord {
		return platform.RunRecord{RequestID: "r", Outcome: platform.RunStarted, Time: at}
	}
	var expired, kept []string
	for i := range 6 {
		k := platform.SlotRecordKey("minutely", old.Add(-time.Duration(i)*time.Minute))
		put(k, rec(now)) // a slot's claim expires by its slot, whatever its time says
		expired = append(expired, k)
		k = platform.SlotRecordKey("minutely", fresh.Add(time.Duration(i)*time.Minute))
		put(k, rec(old))
		kept = append(kept, k)
	}
	for i, at := range []time.Time{old, fresh, old} {
		k := platform.RunRecordKey("ondemand", "pipeline-"+string(rune('a'+i)))
		put(k, rec(at))
		if at.Equal(old) {
			expired = append(expired, k)
		} else {
			kept = append(kept, k)
		}
	}
	put(platform.DeployRecordKey("ondemand", "p-1"), platform.DeployRecord{Outcome: platform.DeployApplied, Time: old})
	expired = append(expired, platform.DeployRecordKey("ondemand", "p-1"))
	put(platform.DeployRecordKey("ondemand", "p-2"), platform.DeployRecord{Outcome: platform.DeployApplied, Time: fresh})
	kept = append(kept, platform.DeployRecordKey("ondemand", "p-2"))
	put(platform.RunRecordKey("ondemand", "no-time"), map[string]string{"outcome": "started"})
	kept = append(kept, platform.RunRecordKey("ondemand", "no-time"))
	put(platform.MonitorStateKey("runway-proj"), map[string]string{}) // not a record: never looked at
	kept = append(kept, platform.MonitorStateKey("runway-proj"))

	cfg := Config{RecordRetention: retention, PruneBatch: 3, PruneReads: 1}
	clock := func() time.Time { return now }
	h1 := newHandler(cfg, nil, store, nil, notify.NewDispatcher(nil), nil, clock, zerolog.Nop())
	h2 := newHandler(cfg, nil, store, nil, notify.NewDispatcher(nil), nil, clock, zerolog.Nop())
	var mu sync.Mutex
	deleted := 0
	for range 20 {
		var wg sync.WaitGroup
		for _, h := range []*Handler{h1, h2} {
			wg.Go(func() {
				st, err := h.prune(ctx)
				if err != nil {
					t.Error(err)
				}
				if st.Listed > cfg.PruneBatch || st.Read > cfg.PruneReads {
					t.Errorf("a tick listed %d keys and read %d records; at most %d and %d", st.Listed, st.Read, cfg.PruneBatch, cfg.PruneReads)
				}
				mu.Lock()
				deleted += st.Deleted
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	left, err := store.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range expired {
		if slices.Contains(left, k) {
			t.Errorf("expired record %s is still there", k)
		}
	}
	for _, k := range kept {
		if !slices.Contains(left, k) {
			t.Errorf("record %s was deleted", k)
		}
	}
	if deleted != len(expired) {
		t.Errorf("ticks report %d deletions, want %d (each record deleted once)", deleted, len(expired))
	}
}

// TestPruneRests runs two instances pruning a directory store every minute for six hours while
// records arrive (a slot claim a minute, a manual run every seven), with a retention of two
// hours and a pass every half hour: nothing younger than the retention is ever deleted, nothing
// outlives retention + interval + a pass, and a tick between passes reads the cursor and
// nothing else.
func TestPruneRests(t *testing.T) {
	ctx := context.Background()
	dir, err := state.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := start
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg := Config{RecordRetention: 2 * time.Hour, PruneInterval: 30 * time.Minute, PruneBatch: 40, PruneReads: 5}
	const passSlack = 10 * time.Minute // a pass here takes a few ticks: 150 records / 40 a page
	var stores [2]*countingStore
	var hs [2]*Handler
	for i := range hs {
		stores[i] = &countingStore{Store: dir}
		hs[i] = newHandler(cfg, nil, stores[i], nil, notify.NewDispatcher(nil), nil, clock, zerolog.Nop())
	}
	written := map[string]time.Time{}
	put := func(key string, v any, at time.Time) {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := dir.Put(ctx, key, b, 0); err != nil {
			t.Fatal(err)
		}
		written[key] = at
	}
	resting, pruning := 0, 0
	for m := range 6 * 60 {
		at := start.Add(time.Duration(m) * time.Minute)
		mu.Lock()
		now = at
		mu.Unlock()
		put(platform.SlotRecordKey("minutely", at), platform.RunRecord{RequestID: "s", Outcome: platform.RunStarted, Time: at}, at)
		if m%7 == 0 {
			put(platform.RunRecordKey("ondemand", fmt.Sprintf("run-%04d", m)), platform.RunRecord{RequestID: "r", Outcome: platform.RunStarted, Time: at}, at)
		}
		var wg sync.WaitGroup
		for i, h := range hs {
			wg.Go(func() {
				before := stores[i].gets.Load() + stores[i].lists.Load() + stores[i].puts.Load() + stores[i].deletes.Load()
				lists := stores[i].lists.Load()
				if _, err := h.prune(ctx); err != nil {
					t.Error(err)
				}
				calls := stores[i].gets.Load() + stores[i].lists.Load() + stores[i].puts.Load() + stores[i].deletes.Load() - before
				mu.Lock()
				defer mu.Unlock()
				if stores[i].lists.Load() == lists {
					resting++
					if calls != 1 {
						t.Errorf("at %s a tick between passes made %d store calls, want 1 (the cursor)", at, calls)
					}
				} else {
					pruning++
				}
			})
		}
		wg.Wait()
		left, err := dir.List(ctx, "runs/")
		if err != nil {
			t.Fatal(err)
		}
		present := map[string]bool{}
		for _, k := range left {
			present[k] = true
			if age := at.Sub(written[k]); age > cfg.RecordRetention+cfg.PruneInterval+passSlack {
				t.Errorf("at %s record %s is %s old, want pruned by %s", at, k, age, cfg.RecordRetention+cfg.PruneInterval+passSlack)
			}
		}
		for k, w := range written {
			if !present[k] && !w.Before(at.Add(-cfg.RecordRetention)) {
				t.Errorf("at %s record %s of %s was deleted, younger than the retention", at, k, w)
			}
		}
	}
	if resting <= 3*pruning {
		t.Errorf("%d ticks rested and %d pruned; want most at rest", resting, pruning)
	}
	t.Logf("%d ticks rested, %d pruned", resting, pruning)
}

// TestCursorResting: a pass under way never rests, a finished one rests for the interval from
// when it began, and a cursor from a clock ahead does not hold pruning off.
func TestCursorResting(t *testing.T) {
	now := time.Date(2027, 2, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		cur  retentionCursor
		want bool
	}{
		{name: "no pass yet", cur: retentionCursor{}, want: false},
		{name: "pass under way", cur: retentionCursor{Prefix: 1, After: "runs/a/x", Began: now.Add(-time.Hour)}, want: false},
		{name: "pass under way in its first prefix", cur: retentionCursor{After: "deploys/a/x", Began: now.Add(-time.Hour)}, want: false},
		{name: "finished an hour after it began", cur: retentionCursor{Began: now.Add(-time.Hour)}, want: true},
		{name: "finished, interval over", cur: retentionCursor{Began: now.Add(-24 * time.Hour)}, want: false},
		{name: "began in the future", cur: retentionCursor{Began: now.Add(time.Minute)}, want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cur.resting(now, 24*time.Hour); got != tt.want {
				t.Errorf("resting(%+v) = %v, want %v", tt.cur, got, tt.want)
			}
		})
	}
}
