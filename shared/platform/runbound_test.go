package platform

import (
	"encoding/json"
	"testing"
	"time"
)

func TestRunShapeMaxRun(t *testing.T) {
	per := func(timeout time.Duration) time.Duration { return timeout + AttemptSlack }
	tests := []struct {
		name  string
		shape RunShape
		want  time.Duration
	}{
		{name: "Cloud Run's defaults", shape: RunShape{MaxRetries: DefaultMaxRetries}, want: 4 * per(DefaultTaskTimeout)},
		{name: "no retries", shape: RunShape{Timeout: time.Minute}, want: per(time.Minute)},
		{name: "waves rounded up", shape: RunShape{Timeout: time.Minute, TaskCount: 5, Parallelism: 2}, want: 3 * per(time.Minute)},
		{name: "parallelism above the task count", shape: RunShape{Timeout: time.Minute, TaskCount: 3, Parallelism: 10}, want: per(time.Minute)},
		{name: "parallelism 0 is one at a time", shape: RunShape{Timeout: time.Minute, TaskCount: 3, MaxRetries: 1}, want: 6 * per(time.Minute)},
		{name: "delayed start", shape: RunShape{Timeout: time.Minute, Delayed: true}, want: per(time.Minute) + DelayedStart},
		{name: "capped far beyond any execution", shape: RunShape{Timeout: 168 * time.Hour, TaskCount: 10000, MaxRetries: 10, Delayed: true}, want: maxRun},
		{name: "negative retries count as none", shape: RunShape{Timeout: time.Minute, MaxRetries: -2}, want: per(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.shape.MaxRun(); got != tt.want {
				t.Errorf("MaxRun() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRunningSince(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	tmpl := RunShape{Timeout: 10 * time.Minute} // 15 min with the slack
	tmplSince := now.Add(-tmpl.MaxRun() - ClockSkew)
	win := func(fromAgo, untilIn time.Duration) RunWindow {
		return RunWindow{From: now.Add(-fromAgo), Until: now.Add(untilIn)}
	}
	tests := []struct {
		name    string
		windows []RunWindow
		want    time.Time
	}{
		{name: "template only", want: tmplSince},
		{name: "an override still running reaches back to its start", windows: []RunWindow{win(6*time.Hour, 2*time.Hour)}, want: now.Add(-6*time.Hour - ClockSkew)},
		{name: "an override near its end still reaches back to its start", windows: []RunWindow{win(10*time.Hour, time.Minute)}, want: now.Add(-10*time.Hour - ClockSkew)},
		{name: "an override ended within the skew still counts", windows: []RunWindow{win(10*time.Hour, -ClockSkew/2)}, want: now.Add(-10*time.Hour - ClockSkew)},
		{name: "an override ended longer ago than the skew no longer counts", windows: []RunWindow{win(10*time.Hour, -ClockSkew-time.Second)}, want: tmplSince},
		{name: "a window inside the template's bound changes nothing", windows: []RunWindow{win(time.Minute, 5*time.Minute)}, want: tmplSince},
		{name: "the earliest live window wins", windows: []RunWindow{win(3*time.Hour, time.Hour), win(9*time.Hour, -time.Hour), win(5*time.Hour, time.Minute)}, want: now.Add(-5*time.Hour - ClockSkew)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RunningSince(now, tmpl, RunWindows{Windows: tt.windows}); !got.Equal(tt.want) {
				t.Errorf("RunningSince = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRunWindowsAdd(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	tests := []struct {
		name string
		have []RunWindow
		add  RunWindow
		now  time.Time
		want []RunWindow
	}{
		{name: "first window", add: RunWindow{at(0), at(1)}, now: at(0), want: []RunWindow{{at(0), at(1)}}},
		{name: "ended windows are dropped", have: []RunWindow{{at(0), at(1)}}, add: RunWindow{at(5), at(6)}, now: at(5), want: []RunWindow{{at(5), at(6)}}},
		{name: "a covered window is dropped", have: []RunWindow{{at(0), at(10)}}, add: RunWindow{at(1), at(2)}, now: at(1), want: []RunWindow{{at(0), at(10)}}},
		{name: "overlapping windows are both kept", have: []RunWindow{{at(0), at(2)}}, add: RunWindow{at(1), at(3)}, now: at(1), want: []RunWindow{{at(0), at(2)}, {at(1), at(3)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RunWindows{Windows: tt.have}
			r.Add(tt.add, tt.now)
			got, _ := json.Marshal(r.Windows)
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Errorf("Add = %s, want %s", got, want)
			}
		})
	}
}

// TestRunWindowsBounded adds a window a minute for two days, each live for an hour: more than
// MaxRunWindows are live at once, none covers another. The record keeps at most
// MaxRunWindows, always reaches back to the oldest live one, and not much further.
func TestRunWindowsBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	var r RunWindows
	merged := false
	for i := range 2 * 24 * 60 {
		now := t0.Add(time.Duration(i) * time.Minute)
		r.Add(RunWindow{From: now, Until: now.Add(time.Hour)}, now)
		if len(r.Windows) > MaxRunWindows {
			t.Fatalf("minute %d: %d windows, want at most %d", i, len(r.Windows), MaxRunWindows)
		}
		merged = merged || len(r.Windows) == MaxRunWindows
		if err := r.Validate(); err != nil {
			t.Fatalf("minute %d: %v", i, err)
		}
		// Window j is live while j + 60 min > now - skew.
		oldest := t0.Add(time.Duration(max(0, i-60-int(ClockSkew/time.Minute)+1)) * time.Minute)
		from, ok := r.Earliest(now)
		if !ok || from.After(oldest) {
			t.Fatalf("minute %d: earliest %s (%v), want at or before %s", i, from, ok, oldest)
		}
		if now.Sub(from) > 3*time.Hour {
			t.Fatalf("minute %d: earliest %s reaches back %s: merges made the record sticky", i, from, now.Sub(from))
		}
	}
	if !merged {
		t.Error("the record never filled up: no merge was tested")
	}
}

// FuzzRunWindowsAdd adds windows of any shape: every window added that is still live stays
// covered (a kept window starts no later and ends no sooner), and the record stays bounded.
func FuzzRunWindowsAdd(f *testing.F) {
	f.Add([]byte{0, 10, 1, 5, 2, 30, 3, 1})
	f.Add([]byte{5, 5, 5, 5, 5, 5})
	f.Fuzz(func(t *testing.T, steps []byte) {
		t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		var r RunWindows
		var added []RunWindow
		now := t0
		for i := 0; i+1 < len(steps); i += 2 {
			now = now.Add(time.Duration(steps[i]) * time.Minute)
			w := RunWindow{From: now, Until: now.Add(time.Duration(steps[i+1]) * time.Minute)}
			r.Add(w, now)
			added = append(added, w)
			if len(r.Windows) > MaxRunWindows {
				t.Fatalf("%d windows", len(r.Windows))
			}
			for _, a := range added {
				if !a.live(now) {
					continue
				}
				covered := false
				for _, k := range r.Windows {
					covered = covered || !k.From.After(a.From) && !k.Until.Before(a.Until)
				}
				if !covered {
					t.Fatalf("window %v is live at %s but no kept window covers it: %v", a, now, r.Windows)
				}
			}
		}
	})
}
