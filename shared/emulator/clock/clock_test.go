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

func TestManualTimer(t *testing.T) {
	start := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	c := NewManual(start)
	var seen []time.Time
	c.OnAdvance(func(now time.Time) { seen = append(seen, now) })
	fired := func(tm *Timer) (time.Time, bool) {
		select {
		case at := <-tm.C:
			return at, true
		default:
			return time.Time{}, false
		}
	}
	ten := NewTimer(c, 10*time.Minute)
	stopped := NewTimer(c, 5*time.Minute)
	now := NewTimer(c, 0)
	if _, ok := fired(now); !ok {
		t.Error("a timer of 0 did not fire at once")
	}
	if !stopped.Stop() {
		t.Error("Stop of a pending timer = false")
	}
	c.Advance(9 * time.Minute)
	if _, ok := fired(ten); ok {
		t.Fatal("fired 1 minute early")
	}
	c.Advance(time.Hour)
	at, ok := fired(ten)
	if !ok || !at.Equal(start.Add(10*time.Minute)) {
		t.Errorf("timer fired %v at %v, want at its deadline %v", ok, at, start.Add(10*time.Minute))
	}
	if _, ok := fired(stopped); ok {
		t.Error("a stopped timer fired")
	}
	if ten.Stop() {
		t.Error("Stop of a fired timer = true")
	}
	// The jump stopped at the deadline on its way, so listeners saw it.
	want := []time.Time{start.Add(9 * time.Minute), start.Add(10 * time.Minute), start.Add(69 * time.Minute)}
	if len(seen) != len(want) {
		t.Fatalf("listeners saw %v, want %v", seen, want)
	}
	for i := range want {
		if !seen[i].Equal(want[i]) {
			t.Errorf("stop %d at %v, want %v", i, seen[i], want[i])
		}
	}
	real := NewTimer(Real{}, time.Millisecond)
	if at := <-real.C; at.IsZero() {
		t.Error("the real timer sent a zero time")
	}
}
