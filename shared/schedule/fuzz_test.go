package schedule

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// itemsMask is the bitmask of the values parseItems reads from a field.
func itemsMask(items []item) uint64 {
	var mask uint64
	for _, it := range items {
		for v := it.start; v <= it.end; v += it.step {
			mask |= 1 << v
		}
	}
	return mask
}

func FuzzParse(f *testing.F) {
	seeds := []struct{ expr, tz string }{
		{"0 3 * * *", ""},
		{"30 6-16/4 * * 1-5", "Europe/Berlin"},
		{"*/15 * * * *", "America/New_York"},
		{"0 0 1,15 * 1", "Asia/Kolkata"},
		{"0 9 * JAN-MAR MON-FRI", "UTC"},
		{"0 0 ? jul sun", ""},
		{"0 0 29 2 *", ""},
		{"0 0 30 2 1", ""},
		{"0 0 30 2 *", ""},
		{"@daily", ""},
		{"@every 1h", ""},
		{"@reboot", ""},
		{"CRON_TZ=UTC 0 3 * * *", ""},
		{"0 0 3 * * *", ""},
		{"0 3 * *", ""},
		{", * * * *", ""},
		{"*-5 ?-3 * * *", ""},
		{"5/15 1-5/2 */31 1/12 0-6/7", ""},
		{"0 3 * * *", "Mars/Olympus"},
		{"0 3 * * *", "Local"},
		{"", ""},
	}
	for _, s := range seeds {
		f.Add(s.expr, s.tz)
	}
	from := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	units := [5]unit{minuteUnit, hourUnit, domUnit, monthUnit, dowUnit}
	f.Fuzz(func(t *testing.T, expr, tz string) {
		s, err := Parse(expr, tz)
		if err != nil {
			return
		}
		again, err := Parse(s.Expr(), s.TimeZone())
		if err != nil {
			t.Fatalf("Expr() %q of %q does not parse again: %v", s.Expr(), expr, err)
		}
		if again.Expr() != s.Expr() {
			t.Fatalf("Expr() is not stable: %q then %q", s.Expr(), again.Expr())
		}
		masks := func(s *Schedule) [5]uint64 {
			return [5]uint64{s.spec.Minute, s.spec.Hour, s.spec.Dom, s.spec.Month, s.spec.Dow}
		}
		if diff := cmp.Diff(masks(s), masks(again)); diff != "" {
			t.Fatalf("re-parsed %q differs (-first +again):\n%s", s.Expr(), diff)
		}
		// Describe reads the fields itself; it must read them as robfig did.
		for i, m := range masks(s) {
			items, ok := parseItems(s.fields[i], units[i])
			if !ok || itemsMask(items) != m&^starBit {
				t.Fatalf("field %q: Describe reads %v (ok %v), robfig %b", s.fields[i], items, ok, m&^starBit)
			}
		}
		if s.Describe() == "" {
			t.Fatalf("Describe(%q) is empty", expr)
		}
		slots := s.NextN(from, 3)
		if diff := cmp.Diff(slots, again.NextN(from, 3)); diff != "" {
			t.Fatalf("re-parsed %q has other slots (-first +again):\n%s", s.Expr(), diff)
		}
		if len(slots) == 0 {
			t.Fatalf("%q has no slot after %v though Parse accepted it", expr, from)
		}
		for i := range slots {
			if !slots[i].After(from) || (i > 0 && !slots[i].After(slots[i-1])) {
				t.Fatalf("NextN(%q) is not strictly increasing after %v: %v", expr, from, slots)
			}
		}
	})
}
