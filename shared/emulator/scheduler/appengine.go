package scheduler

import (
	"fmt"
	"strconv"
	"strings"
)

// invalidSchedule is Cloud Scheduler's refusal of a schedule it can't read, which the
// emulator follows with its reason.
const invalidSchedule = "Schedule or time zone is invalid."

// maxScheduleLen bounds the schedule text read (the job's 1 MiB bound comes later).
const maxScheduleLen = 500

// appEngineDays are the day names of the App Engine cron syntax (full and three letters), as
// cron day-of-week numbers.
var appEngineDays = map[string]int{
	"sunday": 0, "sun": 0, "monday": 1, "mon": 1, "tuesday": 2, "tue": 2, "wednesday": 3, "wed": 3,
	"thursday": 4, "thu": 4, "friday": 5, "fri": 5, "saturday": 6, "sat": 6,
}

// isAppEngineSchedule reports whether expr is written in the legacy App Engine cron syntax
// ("every 5 minutes", "every monday 09:00", "1st monday of month 09:00"), which Cloud
// Scheduler still accepts, rather than unix-cron.
func isAppEngineSchedule(expr string) bool {
	f := strings.Fields(strings.ToLower(expr))
	return len(f) > 0 && (f[0] == "every" || strings.Contains(" "+strings.Join(f, " ")+" ", " of "))
}

// appEngineCron translates the App Engine schedules that have an exact unix-cron equivalent:
//
//	every N minutes|mins [synchronized]   N dividing 60: "*/N * * * *"
//	every N hours [synchronized]          N dividing 24: "0 */N * * *"
//	every day HH:MM                       "MM HH * * *"
//	every DAY[,DAY...] HH:MM              days by name (monday or mon): "MM HH * * D,D"
//
// An interval is aligned to the hour or to midnight, with or without "synchronized" (App
// Engine starts an unsynchronized interval from the previous run). Other forms (ordinals,
// months, "from HH:MM to HH:MM", intervals that don't divide the hour or the day) are refused
// with the reason.
func appEngineCron(expr string) (string, error) {
	if len(expr) > maxScheduleLen {
		return "", fmt.Errorf("the schedule is %d bytes, longer than %d", len(expr), maxScheduleLen)
	}
	f := strings.Fields(strings.ToLower(expr))
	unsupported := fmt.Errorf("the emulator reads only these App Engine schedules: every N minutes|hours [synchronized] (N dividing the hour or the day), every day HH:MM, every DAY[,DAY] HH:MM; write %q as unix-cron", expr)
	if len(f) < 2 || f[0] != "every" {
		return "", unsupported
	}
	if n, err := strconv.Atoi(f[1]); err == nil && (len(f) == 3 || len(f) == 4 && f[3] == "synchronized") {
		switch f[2] {
		case "minute", "minutes", "min", "mins":
			if n <= 0 || 60%n != 0 {
				return "", fmt.Errorf("every %d minutes: the emulator aligns intervals to the hour, so N must divide 60", n)
			}
			if n == 1 {
				return "* * * * *", nil
			}
			return fmt.Sprintf("*/%d * * * *", n), nil
		case "hour", "hours":
			if n <= 0 || 24%n != 0 {
				return "", fmt.Errorf("every %d hours: the emulator aligns intervals to midnight, so N must divide 24", n)
			}
			if n == 1 {
				return "0 * * * *", nil
			}
			return fmt.Sprintf("0 */%d * * *", n), nil
		}
		return "", unsupported
	}
	if len(f) != 3 {
		return "", unsupported
	}
	hh, mm, ok := clockTime(f[2])
	if !ok {
		return "", fmt.Errorf("%q is not a time of day HH:MM (00:00 to 23:59)", f[2])
	}
	if f[1] == "day" {
		return fmt.Sprintf("%d %d * * *", mm, hh), nil
	}
	var days []string
	seen := map[int]bool{}
	for _, d := range strings.Split(f[1], ",") {
		n, ok := appEngineDays[d]
		if !ok {
			return "", unsupported
		}
		if !seen[n] {
			seen[n] = true
			days = append(days, strconv.Itoa(n))
		}
	}
	return fmt.Sprintf("%d %d * * %s", mm, hh, strings.Join(days, ",")), nil
}

// clockTime reads HH:MM.
func clockTime(s string) (hh, mm int, ok bool) {
	h, m, found := strings.Cut(s, ":")
	if !found || len(h) != 2 || len(m) != 2 {
		return 0, 0, false
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, 0, false
	}
	return hh, mm, true
}
