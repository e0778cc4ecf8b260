package schedule

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"
)

// bruteSlots lists the slots in [from, to] by testing every whole minute against the
// schedule's fields in its zone, without robfig's Next. At a DST change this counts a
// repeated wall-clock time twice and a skipped one not at all, which is what robfig does.
func bruteSlots(s *Schedule, from, to time.Time) []time.Time {
	var slots []time.Time
	for t := from.Truncate(time.Minute); !t.After(to); t = t.Add(time.Minute) {
		if t.Before(from) {
			continue
		}
		l := t.In(s.loc)
		spec := s.spec
		dom := spec.Dom&(1<<l.Day()) != 0
		dow := spec.Dow&(1<<l.Weekday()) != 0
		day := dom || dow
		if spec.Dom&starBit != 0 || spec.Dow&starBit != 0 {
			day = dom && dow
		}
		if day && spec.Minute&(1<<l.Minute()) != 0 && spec.Hour&(1<<l.Hour()) != 0 && spec.Month&(1<<l.Month()) != 0 {
			slots = append(slots, t.UTC())
		}
	}
	return slots
}

// bruteDue is the expected MostRecent result from a brute-force slot list covering (earliest, now].
type bruteDue struct {
	slot   time.Time
	count  int64
	t1, t2 time.Time // the first two slots after earliest, when they are <= now
}

func bruteMostRecent(slots []time.Time, earliest, now time.Time) bruteDue {
	lo := sort.Search(len(slots), func(i int) bool { return slots[i].After(earliest) })
	hi := sort.Search(len(slots), func(i int) bool { return slots[i].After(now) })
	var d bruteDue
	if hi > lo {
		d.slot, d.count, d.t1 = slots[hi-1], int64(hi-lo), slots[lo]
		if hi-lo > 1 {
			d.t2 = slots[lo+1]
		}
	}
	return d
}

// kubernetesEstimate is the controller's count: (now-t1)/(t2-t1)+1 in whole seconds.
func kubernetesEstimate(t1, t2, now time.Time) int64 {
	return int64(now.Sub(t1).Seconds())/int64(t2.Sub(t1).Round(time.Second).Seconds()) + 1
}

// checkDue compares MostRecent with the brute-force expectation.
func checkDue(t *testing.T, s *Schedule, earliest, now time.Time, want bruteDue) {
	t.Helper()
	got, err := s.MostRecent(earliest, now)
	if err != nil {
		t.Fatalf("MostRecent(%v, %v): %v", earliest, now, err)
	}
	if !got.Slot.Equal(want.slot) || (!got.Slot.IsZero() && got.Slot.Location() != time.UTC) {
		t.Errorf("MostRecent(%v, %v).Slot = %v, want %v (in UTC)", earliest, now, got.Slot, want.slot)
	}
	switch {
	case want.count <= MaxMissed:
		if got.Missed != want.count || got.TooMany {
			t.Errorf("MostRecent(%v, %v) = Missed %d TooMany %v, want exactly %d", earliest, now, got.Missed, got.TooMany, want.count)
		}
	default:
		wantMissed := max(kubernetesEstimate(want.t1, want.t2, now), MaxMissed+1)
		if got.Missed != wantMissed || !got.TooMany {
			t.Errorf("MostRecent(%v, %v) = Missed %d TooMany %v, want estimate %d and TooMany (exact count %d)", earliest, now, got.Missed, got.TooMany, wantMissed, want.count)
		}
	}
}

func TestMostRecent(t *testing.T) {
	tests := []struct {
		name      string
		expr, tz  string
		earliest  string
		now       string
		wantSlot  string // "" means nothing due
		wantCount int64
		tooMany   bool
	}{
		{name: "nothing due", expr: "0 9 * * 1", earliest: "2025-01-06T09:00:00Z", now: "2025-01-13T08:59:59Z"},
		{name: "now before earliest", expr: "* * * * *", earliest: "2025-01-06T09:00:00Z", now: "2025-01-06T08:00:00Z"},
		{name: "now exactly on a slot is inclusive", expr: "0 9 * * 1", earliest: "2025-01-06T09:00:00Z", now: "2025-01-13T09:00:00Z", wantSlot: "2025-01-13T09:00:00Z", wantCount: 1},
		{name: "earliest exactly on a slot is exclusive", expr: "0 9 * * 1", earliest: "2025-01-13T09:00:00Z", now: "2025-01-13T09:00:00Z"},
		{name: "earliest just before a slot", expr: "0 9 * * 1", earliest: "2025-01-13T08:59:59.999Z", now: "2025-01-13T09:00:00Z", wantSlot: "2025-01-13T09:00:00Z", wantCount: 1},
		{name: "exactly one due", expr: "0 9 * * 1", earliest: "2025-01-06T09:00:00Z", now: "2025-01-15T00:00:00Z", wantSlot: "2025-01-13T09:00:00Z", wantCount: 1},
		{name: "monthly", expr: "0 0 1 * *", earliest: "2025-01-01T00:00:00Z", now: "2025-06-15T00:00:00Z", wantSlot: "2025-06-01T00:00:00Z", wantCount: 5},
		{name: "every 7 minutes across the hour", expr: "*/7 * * * *", earliest: "2025-01-01T00:00:00Z", now: "2025-01-01T01:00:00Z", wantSlot: "2025-01-01T01:00:00Z", wantCount: 9},
		{
			// Kubernetes' walk starts at Saturday 06:30 here and reports nothing due.
			name: "irregular over a weekend", expr: "30 6-16/4 * * 1-5", earliest: "2025-01-06T06:30:00Z", now: "2025-01-11T12:00:00Z",
			wantSlot: "2025-01-10T14:30:00Z", wantCount: 14,
		},
		{name: "in a zone", expr: "0 9 * * *", tz: "Europe/Berlin", earliest: "2025-06-01T00:00:00Z", now: "2025-06-03T07:30:00+02:00", wantSlot: "2025-06-02T07:00:00Z", wantCount: 2},
		{name: "100 missed is exact", expr: "* * * * *", earliest: "2025-01-01T00:00:00Z", now: "2025-01-01T01:40:59Z", wantSlot: "2025-01-01T01:40:00Z", wantCount: 100},
		{name: "101 missed is too many", expr: "* * * * *", earliest: "2025-01-01T00:00:00Z", now: "2025-01-01T01:41:00Z", wantSlot: "2025-01-01T01:41:00Z", wantCount: 101, tooMany: true},
		{name: "a day of minutes", expr: "* * * * *", earliest: "2025-01-01T00:00:00Z", now: "2025-01-02T00:00:30Z", wantSlot: "2025-01-02T00:00:00Z", wantCount: 1440, tooMany: true},
		{
			// t2-t1 is 4h, so Kubernetes estimates (1297.5h / 4h) + 1 = 325; the true count is 120.
			name: "irregular many missed", expr: "30 6-16/4 * * 1-5", earliest: "2025-01-06T06:30:00Z", now: "2025-03-01T12:00:00Z",
			wantSlot: "2025-02-28T14:30:00Z", wantCount: 325, tooMany: true,
		},
		{
			// t2-t1 is 23h59m, so Kubernetes estimates 55; the true count is 110. Missed is raised to 101.
			name: "estimate below 101 is raised", expr: "0,1 0 * * *", earliest: "2025-01-01T00:00:00Z", now: "2025-02-25T00:00:30Z",
			wantSlot: "2025-02-25T00:00:00Z", wantCount: 101, tooMany: true,
		},
		{
			// t2-t1 is 1 minute, so Kubernetes estimates 79201 (the true count is 111).
			name: "irregular estimate far above the count", expr: "0,1 0 * * *", earliest: "2024-12-31T23:59:30Z", now: "2025-02-25T00:00:30Z",
			wantSlot: "2025-02-25T00:00:00Z", wantCount: 79201, tooMany: true,
		},
		{
			// Kubernetes would estimate about 71000 and warn; the exact count is 100.
			name: "irregular exact 100 despite a large estimate", expr: "0,1 0 * * *", earliest: "2024-12-31T23:59:30Z", now: "2025-02-19T12:00:00Z",
			wantSlot: "2025-02-19T00:01:00Z", wantCount: 100,
		},
		{name: "decades missed", expr: "0 0 1 1 *", earliest: "1900-01-01T00:00:00Z", now: "2025-06-01T00:00:00Z", wantSlot: "2025-01-01T00:00:00Z", wantCount: 125, tooMany: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr, tt.tz)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.MostRecent(utc(t, tt.earliest), utc(t, tt.now))
			if err != nil {
				t.Fatal(err)
			}
			var want Due
			if tt.wantSlot != "" {
				want = Due{Slot: utc(t, tt.wantSlot), Missed: tt.wantCount, TooMany: tt.tooMany}
			}
			if !got.Slot.Equal(want.Slot) || got.Missed != want.Missed || got.TooMany != want.TooMany {
				t.Errorf("MostRecent = %+v, want %+v", got, want)
			}
			if !got.Slot.IsZero() && got.Slot.Location() != time.UTC {
				t.Errorf("Slot %v is not in UTC", got.Slot)
			}
		})
	}
}

// kubernetesMostRecent is the controller's algorithm (pkg/controller/cronjob/utils.go),
// kept here to show where it differs.
func kubernetesMostRecent(s *Schedule, earliest, now time.Time) (time.Time, int64) {
	t1 := s.Next(earliest)
	t2 := s.Next(t1)
	if now.Before(t1) {
		return time.Time{}, 0
	}
	if now.Before(t2) {
		return t1, 1
	}
	between := int64(t2.Sub(t1).Round(time.Second).Seconds())
	missed := int64(now.Sub(t1).Seconds())/between + 1
	var recent time.Time
	for t := s.Next(t1.Add(time.Duration((missed-2)*between) * time.Second)); !t.After(now); t = s.Next(t) {
		recent = t
	}
	return recent, missed
}

func TestMostRecentWhereKubernetesOvershoots(t *testing.T) {
	s, err := Parse("30 6-16/4 * * 1-5", "")
	if err != nil {
		t.Fatal(err)
	}
	earliest, now := utc(t, "2025-01-06T06:30:00Z"), utc(t, "2025-01-11T12:00:00Z")
	want := utc(t, "2025-01-10T14:30:00Z")
	if k8s, _ := kubernetesMostRecent(s, earliest, now); !k8s.IsZero() {
		t.Fatalf("the Kubernetes walk found %v; this case no longer shows its overshoot", k8s)
	}
	got, err := s.MostRecent(earliest, now)
	if err != nil || !got.Slot.Equal(want) {
		t.Errorf("MostRecent = %+v, %v; want Slot %v", got, err, want)
	}
}

// TestMostRecentMatchesBruteForce checks MostRecent (and NextN) on random (earliest, now)
// pairs against slots found minute by minute, including across DST changes.
func TestMostRecentMatchesBruteForce(t *testing.T) {
	exprs := []string{"30 6-16/4 * * 1-5", "0 9 * * 1", "0 0 1 * *", "*/7 * * * *", "0,1 0 * * *", "30 1,2 * * *", "0 0 30 2 1", "15 */3 1-7 * MON"}
	spring := [2]string{"2024-02-15T00:00:00Z", "2024-04-15T00:00:00Z"} // US 10 March, EU 31 March
	fall := [2]string{"2024-10-01T00:00:00Z", "2024-11-30T00:00:00Z"}   // EU 27 October, US 3 November
	cases := []struct {
		tz     string
		window [2]string
	}{
		{"", spring},
		{"Asia/Kolkata", fall}, // +05:30, no DST
		{"America/New_York", spring},
		{"America/New_York", fall},
		{"Europe/Berlin", spring},
		{"Europe/Berlin", fall},
	}
	pairs := 100
	if testing.Short() {
		pairs = 30
	}
	rng := rand.New(rand.NewSource(1))
	var few, many int // pairs with 1..100 and with more than 100 slots due
	for _, expr := range exprs {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s/%s", expr, c.tz, c.window[0][:7]), func(t *testing.T) {
				s, err := Parse(expr, c.tz)
				if err != nil {
					t.Fatal(err)
				}
				from, to := utc(t, c.window[0]), utc(t, c.window[1])
				slots := bruteSlots(s, from, to)
				if len(slots) == 0 { // "0 0 30 2 1" fires in February only
					return
				}
				if got := s.NextN(from.Add(-time.Second), len(slots)); !equalTimes(got, slots) {
					t.Fatalf("NextN disagrees with the brute force:\n got %v\nwant %v", got, slots)
				}
				span := int64(to.Sub(from) / time.Second)
				random := func() time.Time {
					if rng.Intn(4) == 0 { // exactly on a slot
						return slots[rng.Intn(len(slots))]
					}
					return from.Add(time.Duration(rng.Int63n(span)) * time.Second)
				}
				for range pairs {
					earliest, now := random(), random()
					if now.Before(earliest) && rng.Intn(4) != 0 { // keep some now < earliest
						earliest, now = now, earliest
					}
					want := bruteMostRecent(slots, earliest, now)
					checkDue(t, s, earliest, now, want)
					switch {
					case want.count > MaxMissed:
						many++
					case want.count > 0:
						few++
					}
				}
			})
		}
	}
	if few < 10*pairs || many < 2*pairs {
		t.Errorf("only %d pairs with 1..100 slots due and %d with more: the test no longer covers both paths", few, many)
	}
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
