package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
	"runwayjobs.dev/shared/state"
)

// getCounter counts the reads a store serves.
type getCounter struct {
	state.Store
	gets int
}

func (c *getCounter) Get(ctx context.Context, key string) (state.Object, error) {
	c.gets++
	return c.Store.Get(ctx, key)
}

// Status reads the records of the newest slots and every run request, not the whole history: a
// minutely job with a day of slot claims costs the same reads as one with an hour of them.
func TestNotRunRecordsReadsRecentSlots(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 12, 0, 30, 0, time.UTC)
	sched, err := schedule.Parse("* * * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		days int
	}{
		{name: "an hour of history", days: 0},
		{name: "a day of history", days: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := state.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			put := func(key string, r platform.RunRecord) {
				b, _ := json.Marshal(r)
				if _, err := dir.Put(ctx, key, b, 0); err != nil {
					t.Fatal(err)
				}
			}
			minutes := 60 + tc.days*24*60
			for m := range minutes {
				slot := now.Truncate(time.Minute).Add(-time.Duration(m) * time.Minute)
				outcome := platform.RunStarted
				if m == 5 || m == minutes-1 { // a recent skip, and the oldest slot
					outcome = platform.RunSkipped
				}
				put(platform.SlotRecordKey("w", slot), platform.RunRecord{Workload: "w", Trigger: platform.TriggerSchedule, ScheduledTime: slot, Outcome: outcome})
			}
			// Run requests whose keys sort before and after the slots.
			put(platform.RunRecordKey("w", "100-1"), platform.RunRecord{RequestID: "100-1", Outcome: platform.RunRefused})
			put(platform.RunRecordKey("w", "zz-2"), platform.RunRecord{RequestID: "zz-2", Outcome: platform.RunRefused})
			put(platform.RunRecordKey("w", "zz-3"), platform.RunRecord{RequestID: "zz-3", Outcome: platform.RunStarted})
			// Another workload's slots are not read.
			put(platform.SlotRecordKey("w2", now), platform.RunRecord{Workload: "w2", Outcome: platform.RunSkipped})

			store := &getCounter{Store: dir}
			got, err := notRunRecords(ctx, store, "w", sched, now)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				if r.RequestID != "" {
					ids = append(ids, r.RequestID)
				} else {
					ids = append(ids, r.ScheduledTime.Format("15:04"))
				}
			}
			want := []string{"100-1", "11:55", "zz-2"}
			if tc.days == 0 {
				want = []string{"100-1", "11:01", "11:55", "zz-2"} // the oldest skip is among the newest 100
			}
			if len(ids) != len(want) {
				t.Fatalf("not run %v, want %v", ids, want)
			}
			for i := range want {
				if ids[i] != want[i] {
					t.Fatalf("not run %v, want %v", ids, want)
				}
			}
			if max := statusSlots + 3; store.gets > max {
				t.Errorf("%d reads for %d slot records, want at most %d", store.gets, minutes, max)
			}
		})
	}
}
