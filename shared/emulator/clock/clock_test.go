package clock

import (
	"testing"
	"time"
)

func TestManual(t *testing.T) {
	start := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	c := NewManual(start)
	var seen []time.Time
	c.OnAdvance(func(now time.Time) { seen = append(seen, now) })
	c.Advance(time.Hour)
	c.Set(start.Add(30 * time.Minute)) // backward: ignored, listeners still told the time
	c.Advance(-time.Hour)              // negative: ignored
	c.Set(start.Add(3 * time.Hour))
	want := []time.Time{start.Add(time.Hour), start.Add(time.Hour), start.Add(time.Hour), start.Add(3 * time.Hour)}
	if len(seen) != len(want) {
		t.Fatalf("listener saw %v, want %v", seen, want)
	}
	for i := range want {
		if !seen[i].Equal(want[i]) {
			t.Errorf("jump %d: listener saw %v, want %v", i, seen[i], want[i])
		}
	}
	if !c.Now().Equal(start.Add(3*time.Hour)) || !c.Manual() {
		t.Errorf("Now = %v, Manual = %v", c.Now(), c.Manual())
	}
	if (Real{}).Manual() {
		t.Error("Real is manual")
	}
}
