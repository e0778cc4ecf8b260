// Package schedule is the cron schedule math of Runway Jobs, with Kubernetes CronJob semantics:
// a 5-field cron expression (or a descriptor such as @daily) evaluated in an IANA time zone.
//
// It is called by the manifest validator (Parse rejects what Kubernetes would reject, and more:
// schedules that can never fire), by the `runwayctl schedule` CLI (NextN, Describe), by the
// trigger function (MostRecent: which slot a scheduled request serves) and by the monitor
// (MostRecent: missed slots).
//
// The package is pure: it never reads the clock; every instant is passed in by the caller.
// Slots are computed by github.com/robfig/cron/v3, the library the Kubernetes CronJob
// controller uses, with the schedule's Location set to the time zone as Kubernetes does.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // zones must resolve on minimal images (Cloud Functions) that lack /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// DefaultTimeZone is the zone Parse uses when none is given.
const DefaultTimeZone = "Etc/UTC"

// starBit is robfig/cron's marker bit for a field written as "*" or "?". It decides whether
// day-of-month and day-of-week combine with AND (one of them is a star) or with OR.
const starBit = 1 << 63

// parser accepts exactly what cron.ParseStandard accepts for 5 fields (names such as MON and
// JAN, "?"), without descriptors and time zone prefixes, which Parse handles itself.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// descriptors maps the supported descriptors to their 5-field form.
var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// fieldNames names the five fields, in order, for error messages.
var fieldNames = [5]string{"minute", "hour", "day-of-month", "month", "day-of-week"}

// reference is the fixed instant from which Parse checks that a schedule fires at all. robfig
// searches five years ahead, so every window from it contains a 29 February.
var reference = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// maxProbes bounds Next's retries when robfig does not move forward (see Next).
const maxProbes = 24 * 60

// LoadLocation returns the IANA time zone name ("" means Etc/UTC), as schedules read it. It
// refuses "Local": time.LoadLocation("Local") is the machine's zone, and robfig treats
// time.Local as "the zone of the time passed in"; neither is a schedule's zone (Kubernetes
// rejects it too).
func LoadLocation(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimeZone
	}
	if strings.EqualFold(name, "Local") {
		return nil, fmt.Errorf("time zone %q is not allowed: name an IANA zone such as Europe/Berlin", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name such as Etc/UTC or Europe/Berlin)", name)
	}
	return loc, nil
}

// Schedule is a parsed 5-field cron schedule in a time zone.
type Schedule struct {
	expr   string
	fields [5]string
	tz     string
	loc    *time.Location
	spec   *cron.SpecSchedule
}

// Parse parses a 5-field cron expression (or a descriptor) in the IANA time zone tz ("" means "Etc/UTC").
func Parse(expr, tz string) (*Schedule, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, errors.New("schedule is empty: want 5 fields (minute hour day-of-month month day-of-week) or a descriptor such as @daily")
	}
	upper := strings.ToUpper(expr)
	if strings.HasPrefix(upper, "TZ=") || strings.HasPrefix(upper, "CRON_TZ=") {
		return nil, fmt.Errorf("schedule %q: time zone prefixes are not supported: use time_zone", expr)
	}

	fields := strings.Fields(expr)
	if strings.HasPrefix(expr, "@") {
		normal, err := descriptor(expr, fields)
		if err != nil {
			return nil, err
		}
		fields = strings.Fields(normal)
	}
	switch n := len(fields); {
	case n == 6:
		return nil, fmt.Errorf("schedule %q has 6 fields: a seconds field is not supported (want 5: minute hour day-of-month month day-of-week)", expr)
	case n != 5:
		return nil, fmt.Errorf("schedule %q has %d field%s, want 5 (minute hour day-of-month month day-of-week)", expr, n, plural(n))
	}
	normal := strings.Join(fields, " ")

	parsed, err := parser.Parse(normal)
	if err != nil {
		return nil, fmt.Errorf("schedule %q is invalid: %w", expr, err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok { // cannot happen without descriptors; guards against a robfig change
		return nil, fmt.Errorf("schedule %q is not a cron schedule", expr)
	}
	// robfig accepts a field made only of commas (","), which matches nothing; Next would then
	// grind through five years of minutes before giving up.
	for i, bits := range [5]uint64{spec.Minute, spec.Hour, spec.Dom, spec.Month, spec.Dow} {
		if bits&^starBit == 0 {
			return nil, fmt.Errorf("schedule %q: %s field %q matches no value", expr, fieldNames[i], fields[i])
		}
	}

	if tz == "" {
		tz = DefaultTimeZone
	}
	loc, err := LoadLocation(tz)
	if err != nil {
		return nil, err
	}
	spec.Location = loc

	if spec.Next(reference).IsZero() {
		return nil, fmt.Errorf("schedule %q can never fire: no such date exists", expr)
	}
	s := &Schedule{expr: normal, tz: tz, loc: loc, spec: spec}
	copy(s.fields[:], fields)
	return s, nil
}

// descriptor returns the 5-field form of a descriptor such as @daily.
func descriptor(expr string, fields []string) (string, error) {
	name := fields[0]
	switch {
	case name == "@every":
		return "", fmt.Errorf("schedule %q: @every intervals are not supported: cron slots are needed (e.g. \"*/15 * * * *\")", expr)
	case name == "@reboot":
		return "", fmt.Errorf("schedule %q: @reboot is not supported: a job has no machine to boot", expr)
	}
	normal, ok := descriptors[name]
	if !ok {
		return "", fmt.Errorf("schedule %q: unknown descriptor %q (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)", expr, name)
	}
	if len(fields) > 1 {
		return "", fmt.Errorf("schedule %q: descriptor %s takes no arguments", expr, name)
	}
	return normal, nil
}

// Expr returns the normalised 5-field expression, fields separated by single spaces.
func (s *Schedule) Expr() string { return s.expr }

// Location returns the time zone the schedule's slots are computed in.
func (s *Schedule) Location() *time.Location { return s.loc }

// TimeZone returns the zone name as given to Parse, or "Etc/UTC" when none was given.
func (s *Schedule) TimeZone() string { return s.tz }

// Next returns the first slot strictly after t, in UTC, or the zero time if there is none within robfig's five-year search.
func (s *Schedule) Next(t time.Time) time.Time {
	// Around a few historical DST changes made just after midnight (America/Moncton on
	// 31 October 1993, America/St_Johns on 25 October 1987) robfig returns a time at or before
	// t, and the same time again when asked for the slot after it. Probing a minute later keeps
	// Next strictly increasing, which NextN and MostRecent rely on. No current zone rule needs it.
	probe := t
	for range maxProbes {
		next := s.spec.Next(probe)
		if next.IsZero() {
			return time.Time{}
		}
		if next.After(t) {
			return next.UTC()
		}
		probe = probe.Add(time.Minute)
	}
	return time.Time{}
}

// NextN returns the next n slots strictly after `after`, in UTC (fewer if Next finds no more).
func (s *Schedule) NextN(after time.Time, n int) []time.Time {
	var slots []time.Time
	for t := after; len(slots) < n; {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		slots = append(slots, t)
	}
	return slots
}

// plural returns "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
