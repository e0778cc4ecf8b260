package monitor

import (
	"context"
	"encoding/json"
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
