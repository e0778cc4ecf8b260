package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// maxTimes is the most times of day Describe lists one by one ("At 06:00 and 18:00").
const maxTimes = 8

// unit describes one cron field for Describe.
type unit struct {
	min, max int
	noun     string           // "minute", "hour", ...
	named    bool             // values are names (Monday, January) and need no noun
	names    map[string]int   // the names robfig accepts, lower case
	format   func(int) string // how a value is written
}

var (
	minuteUnit = unit{min: 0, max: 59, noun: "minute", format: strconv.Itoa}
	hourUnit   = unit{min: 0, max: 23, noun: "hour", format: twoDigits}
	domUnit    = unit{min: 1, max: 31, noun: "day", format: strconv.Itoa}
	monthUnit  = unit{min: 1, max: 12, noun: "month", named: true, names: lowerNames(1, 12, monthName), format: monthName}
	dowUnit    = unit{min: 0, max: 6, noun: "day of the week", named: true, names: lowerNames(0, 6, weekdayName), format: weekdayName}
)

// monthName writes a month as January; weekdayName a day of the week as Monday.
func monthName(i int) string   { return time.Month(i).String() }
func weekdayName(i int) string { return time.Weekday(i).String() }

// lowerNames maps the first three letters of each name, lower case, to its value, as robfig
// does ("mon", "jan").
func lowerNames(min, max int, name func(int) string) map[string]int {
	m := map[string]int{}
	for i := min; i <= max; i++ {
		m[strings.ToLower(name(i)[:3])] = i
	}
	return m
}

// item is one comma-separated part of a field: start-end/step, a single value when start == end.
type item struct{ start, end, step int }

// Describe returns an English description of the schedule, including its time zone.
func (s *Schedule) Describe() string {
	spec := s.spec
	zone := s.tz
	if zone == "Etc/UTC" || zone == "UTC" {
		zone = "UTC"
	}

	days := s.dayPhrase()
	var months string
	if !isFull(spec.Month, monthUnit) {
		months = monthUnit.describeField(s.fields[3], spec.Month)
		if ms := s.items(3, monthUnit); len(ms) == 1 && ms[0].step == 1 && ms[0].start != ms[0].end {
			months = "from " + months
		} else {
			months = "in " + months
		}
	}

	var parts []string
	hourAll := isFull(spec.Hour, hourUnit)
	switch {
	case hourAll:
		parts = append(parts, minutesPastEveryHour(s.fields[0], spec.Minute))
	case isSingles(s.items(0, minuteUnit)) && isSingles(s.items(1, hourUnit)) &&
		bits.OnesCount64(spec.Minute&^starBit)*bits.OnesCount64(spec.Hour&^starBit) <= maxTimes:
		var times []string
		for _, h := range values(spec.Hour, hourUnit) {
			for _, m := range values(spec.Minute, minuteUnit) {
				times = append(times, fmt.Sprintf("%02d:%02d", h, m))
			}
		}
		parts = append(parts, "At "+join(times)+" "+zone)
	default:
		minutes := "every minute"
		if !isFull(spec.Minute, minuteUnit) {
			minutes = minuteUnit.describeField(s.fields[0], spec.Minute)
		}
		parts = append(parts, "At "+minutes+" past "+hourUnit.describeField(s.fields[1], spec.Hour)+" "+zone)
	}
	switch {
	case days != "":
		parts = append(parts, days)
	case months == "":
		parts = append(parts, "every day")
	}
	if months != "" {
		parts = append(parts, months)
	}
	out := strings.Join(parts, ", ")
	// The zone has not been named when the hour is unrestricted; it matters as soon as the
	// days are restricted (a Monday in Tokyo is not a Monday in UTC) and, with half-hour
	// offsets, even for minutes.
	if hourAll && (zone != "UTC" || days != "" || months != "") {
		out += " (" + zone + ")"
	}
	return out
}

// minutesPastEveryHour describes the minute field when every hour is allowed.
func minutesPastEveryHour(field string, mask uint64) string {
	if isFull(mask, minuteUnit) {
		return "Every minute"
	}
	if step := evenStep(values(mask, minuteUnit)); step > 0 {
		return fmt.Sprintf("Every %d minutes", step)
	}
	return "At " + minuteUnit.describeField(field, mask) + " past every hour"
}

// evenStep returns n if the minutes are exactly 0, n, 2n, ... and n divides the hour, else 0.
func evenStep(minutes []int) int {
	if len(minutes) < 2 || minutes[0] != 0 {
		return 0
	}
	step := minutes[1]
	if 60%step != 0 || len(minutes) != 60/step {
		return 0
	}
	for i, m := range minutes {
		if m != i*step {
			return 0
		}
	}
	return step
}

// dayPhrase describes the day-of-month and day-of-week fields, with robfig's rule: they
// combine with AND when either is a star ("*" or "?"), and with OR otherwise. It is "" when
// every day matches.
func (s *Schedule) dayPhrase() string {
	spec := s.spec
	domStar, dowStar := spec.Dom&starBit != 0, spec.Dow&starBit != 0
	domAll, dowAll := isFull(spec.Dom, domUnit), isFull(spec.Dow, dowUnit)
	dom := func() string { return "on " + domUnit.describeField(s.fields[2], spec.Dom) + " of the month" }
	dow := func() string {
		if ds := s.items(4, dowUnit); len(ds) == 1 && ds[0].step == 1 && ds[0].start != ds[0].end {
			return dowUnit.describeField(s.fields[4], spec.Dow) // "Monday through Friday"
		}
		return "on " + dowUnit.describeField(s.fields[4], spec.Dow)
	}
	switch {
	case domStar && dowStar:
		return ""
	case domStar: // AND with every day of the month
		if dowAll {
			return ""
		}
		return dow()
	case dowStar:
		if domAll {
			return ""
		}
		return dom()
	case domAll || dowAll: // OR with a field that matches every day
		return ""
	default:
		return dom() + " or " + dow()
	}
}

// describeField describes a restricted field: "minute 0 and 30", "every 4th hour from 06 through 16".
func (u unit) describeField(field string, mask uint64) string {
	items, ok := parseItems(field, u)
	if !ok || isSingles(items) {
		// The bitmask lists the values sorted and without repeats; it is also the fallback
		// should this package ever read a field differently from robfig.
		var vs []string
		for _, v := range values(mask, u) {
			vs = append(vs, u.format(v))
		}
		if u.named {
			return join(vs)
		}
		return u.noun + " " + join(vs)
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = u.describeItem(it)
	}
	return join(parts)
}

// describeItem describes one item of a field.
func (u unit) describeItem(it item) string {
	from := " from " + u.format(it.start) + " through " + u.format(it.end)
	switch {
	case it.single() && u.named:
		return u.format(it.start)
	case it.single():
		return u.noun + " " + u.format(it.start)
	case it.step == 1 && it.start == u.min && it.end == u.max:
		return "every " + u.noun
	case it.step == 1 && u.named:
		return u.format(it.start) + " through " + u.format(it.end)
	case it.step == 1:
		return "every " + u.noun + from
	case it.start == u.min && it.end == u.max:
		return "every " + ordinal(it.step) + " " + u.noun
	default:
		return "every " + ordinal(it.step) + " " + u.noun + from
	}
}

// items returns the items of field i, or nil if it cannot be read.
func (s *Schedule) items(i int, u unit) []item {
	items, _ := parseItems(s.fields[i], u)
	return items
}

// parseItems reads a field the way robfig's getField does; robfig has already accepted it.
// Like robfig, it skips empty parts (",5,"), reads "*" and "?" whatever follows before a "/"
// ("*-3" is a star), and reads "N/step" as "N-max/step".
func parseItems(field string, u unit) ([]item, bool) {
	var items []item
	for _, part := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' }) {
		rangeAndStep := strings.Split(part, "/")
		lowHigh := strings.Split(rangeAndStep[0], "-")
		it := item{step: 1}
		var ok bool
		switch {
		case lowHigh[0] == "*" || lowHigh[0] == "?":
			it.start, it.end = u.min, u.max
		case len(lowHigh) == 1:
			it.start, ok = u.value(lowHigh[0])
			if !ok {
				return nil, false
			}
			it.end = it.start
		case len(lowHigh) == 2:
			var ok2 bool
			it.start, ok = u.value(lowHigh[0])
			it.end, ok2 = u.value(lowHigh[1])
			if !ok || !ok2 {
				return nil, false
			}
		default:
			return nil, false
		}
		switch len(rangeAndStep) {
		case 1:
		case 2:
			step, err := strconv.Atoi(rangeAndStep[1])
			if err != nil || step < 1 {
				return nil, false
			}
			it.step = step
			if len(lowHigh) == 1 {
				it.end = u.max
			}
		default:
			return nil, false
		}
		if it.start < u.min || it.end > u.max || it.start > it.end {
			return nil, false
		}
		items = append(items, it)
	}
	return items, len(items) > 0
}

// value reads a number or, for months and days of the week, a name.
func (u unit) value(s string) (int, bool) {
	if v, ok := u.names[strings.ToLower(s)]; ok {
		return v, true
	}
	v, err := strconv.Atoi(s)
	return v, err == nil && v >= 0
}

// single reports whether the item matches a single value (a step can exceed the range).
func (it item) single() bool { return it.start == it.end || it.step > it.end-it.start }

// isSingles reports whether every item is a single value.
func isSingles(items []item) bool {
	for _, it := range items {
		if !it.single() {
			return false
		}
	}
	return len(items) > 0
}

// isFull reports whether the mask allows every value of the unit.
func isFull(mask uint64, u unit) bool {
	full := uint64(1)<<(u.max+1) - uint64(1)<<u.min
	return mask&full == full
}

// values lists the values a mask allows, in increasing order.
func values(mask uint64, u unit) []int {
	var vs []int
	for v := u.min; v <= u.max; v++ {
		if mask&(1<<v) != 0 {
			vs = append(vs, v)
		}
	}
	return vs
}

// join joins phrases as English does: "a", "a and b", "a, b and c".
func join(parts []string) string {
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// ordinal writes 1st, 2nd, 3rd, 4th, 11th, 21st, ...
func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}

// twoDigits writes an hour as 06.
func twoDigits(n int) string { return fmt.Sprintf("%02d", n) }
