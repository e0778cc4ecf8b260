package main

import "testing"

func TestSchedule(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{
			name: "weekday slots in UTC",
			args: []string{"schedule", "30 6-16/4 * * 1-5", "--after", "2026-11-27T00:00:00Z", "--count", "4"},
			wantStdout: []string{
				"At minute 30 past every 4th hour from 06 through 16 UTC, Monday through Friday",
				"2026-11-27T06:30:00Z",
				"2026-11-27T10:30:00Z",
				"2026-11-27T14:30:00Z",
				"2026-11-30T06:30:00Z",
			},
		},
		{
			name: "read in Europe/Berlin, printed in UTC",
			args: []string{"schedule", "30 6-16/4 * * 1-5", "--time-zone", "Europe/Berlin", "--after", "2026-11-27T00:00:00Z", "--count", "4"},
			wantStdout: []string{
				"At minute 30 past every 4th hour from 06 through 16 Europe/Berlin, Monday through Friday",
				"2026-11-27T05:30:00Z",
				"2026-11-27T09:30:00Z",
				"2026-11-27T13:30:00Z",
				"2026-11-30T05:30:00Z",
			},
		},
		{
			name: "across the end of summer time in Europe/Berlin",
			args: []string{"schedule", "30 6 * * *", "--time-zone", "Europe/Berlin", "--after", "2026-10-23T12:00:00Z", "--count", "3"},
			wantStdout: []string{
				"At 06:30 Europe/Berlin, every day",
				"2026-10-24T04:30:00Z",
				"2026-10-25T05:30:00Z",
				"2026-10-26T05:30:00Z",
			},
		},
		{
			// 02:30 does not exist in Berlin on 29 March 2026; Kubernetes (robfig/cron) skips it.
			name: "a local time skipped by the start of summer time",
			args: []string{"schedule", "30 2 * * *", "--time-zone", "Europe/Berlin", "--after", "2026-03-27T12:00:00Z", "--count", "3"},
			wantStdout: []string{
				"At 02:30 Europe/Berlin, every day",
				"2026-03-28T01:30:00Z",
				"2026-03-30T00:30:00Z",
				"2026-03-31T00:30:00Z",
			},
		},
		{
			name: "a half-hour zone",
			args: []string{"schedule", "0 9 * * mon", "--time-zone", "Asia/Kolkata", "--after", "2026-11-27T00:00:00Z", "--count", "2"},
			wantStdout: []string{
				"At 09:00 Asia/Kolkata, on Monday",
				"2026-11-30T03:30:00Z",
				"2026-12-07T03:30:00Z",
			},
		},
		{
			name:       "strictly after --after",
			args:       []string{"schedule", "0 3 * * *", "--after", "2026-11-27T03:00:00Z", "--count", "1"},
			wantStdout: []string{"At 03:00 UTC, every day", "2026-11-28T03:00:00Z"},
		},
		{
			name:       "--after with an offset",
			args:       []string{"schedule", "0 3 * * *", "--after", "2026-11-27T04:00:00+01:00", "--count", "1"},
			wantStdout: []string{"At 03:00 UTC, every day", "2026-11-28T03:00:00Z"},
		},
		{
			name: "default: five slots after now",
			args: []string{"schedule", "*/15 * * * *"},
			wantStdout: []string{
				"Every 15 minutes, every day",
				"2026-11-26T16:15:00Z",
				"2026-11-26T16:30:00Z",
				"2026-11-26T16:45:00Z",
				"2026-11-26T17:00:00Z",
				"2026-11-26T17:15:00Z",
			},
		},
		{
			name:       "a descriptor",
			args:       []string{"schedule", "@daily", "--after", "2026-01-01T00:00:00Z", "--count", "2"},
			wantStdout: []string{"At 00:00 UTC, every day", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"},
		},
		// Invalid schedules: exit 1, the reason on stderr, nothing on stdout.
		{
			name:       "impossible date",
			args:       []string{"schedule", "0 0 30 2 *"},
			wantCode:   1,
			wantStderr: []string{`schedule "0 0 30 2 *" can never fire: no such date exists`},
		},
		{
			name:       "out of range",
			args:       []string{"schedule", "61 * * * *"},
			wantCode:   1,
			wantStderr: []string{`schedule "61 * * * *" is invalid: end of range (61) above maximum (59): 61`},
		},
		{
			name:       "seconds field",
			args:       []string{"schedule", "0 0 3 * * *"},
			wantCode:   1,
			wantStderr: []string{`schedule "0 0 3 * * *" has 6 fields: a seconds field is not supported (want 5: minute hour day-of-month month day-of-week)`},
		},
		{
			name:       "@every",
			args:       []string{"schedule", "@every 1h"},
			wantCode:   1,
			wantStderr: []string{`schedule "@every 1h": @every intervals are not supported: cron slots are needed (e.g. "*/15 * * * *")`},
		},
		{
			name:       "CRON_TZ= prefix",
			args:       []string{"schedule", "CRON_TZ=UTC 0 3 * * *"},
			wantCode:   1,
			wantStderr: []string{`schedule "CRON_TZ=UTC 0 3 * * *": time zone prefixes are not supported: use time_zone`},
		},
		{
			name:       "unknown time zone",
			args:       []string{"schedule", "0 3 * * *", "--time-zone", "Mars/Olympus"},
			wantCode:   1,
			wantStderr: []string{`unknown time zone "Mars/Olympus" (want an IANA name such as Etc/UTC or Europe/Berlin)`},
		},
		{
			name:       "the machine's Local zone",
			args:       []string{"schedule", "0 3 * * *", "--time-zone", "Local"},
			wantCode:   1,
			wantStderr: []string{`time zone "Local" is not allowed: name an IANA zone such as Europe/Berlin`},
		},
		// Usage errors: exit 2.
		{
			name:       "--after not RFC3339",
			args:       []string{"schedule", "0 3 * * *", "--after", "2026-11-27 00:00"},
			wantCode:   2,
			wantStderr: []string{`runwayctl: --after "2026-11-27 00:00": want an RFC3339 time such as 2026-11-26T15:04:05Z`},
		},
		{
			name:       "--count 0",
			args:       []string{"schedule", "0 3 * * *", "--count", "0"},
			wantCode:   2,
			wantStderr: []string{"runwayctl: --count must be between 1 and 1000, not 0"},
		},
		{
			name:       "--count 1001",
			args:       []string{"schedule", "0 3 * * *", "--count", "1001"},
			wantCode:   2,
			wantStderr: []string{"runwayctl: --count must be between 1 and 1000, not 1001"},
		},
		{
			name:       "--count not a number",
			args:       []string{"schedule", "0 3 * * *", "--count", "many"},
			wantCode:   2,
			wantStderr: []string{`runwayctl: invalid argument "many" for "--count" flag: strconv.ParseInt: parsing "many": invalid syntax`},
		},
		{
			name:       "no expression",
			args:       []string{"schedule"},
			wantCode:   2,
			wantStderr: []string{"runwayctl: accepts 1 arg(s), received 0"},
		},
		{
			name:       "an unquoted expression",
			args:       []string{"schedule", "0", "3", "*", "*", "*"},
			wantCode:   2,
			wantStderr: []string{"runwayctl: accepts 1 arg(s), received 5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := execute(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			assertLines(t, "stdout", stdout, tt.wantStdout)
			assertLines(t, "stderr", stderr, tt.wantStderr)
		})
	}
}

func TestScheduleCountLimit(t *testing.T) {
	stdout, stderr, code := execute(t, "schedule", "* * * * *", "--after", "2026-11-26T00:00:00Z", "--count", "1000")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	got := lines(stdout)
	if len(got) != 1001 {
		t.Fatalf("got %d lines, want a description and 1000 slots", len(got))
	}
	if got[0] != "Every minute, every day" || got[1] != "2026-11-26T00:01:00Z" || got[1000] != "2026-11-26T16:40:00Z" {
		t.Errorf("got %q, then %q to %q; want every minute from 00:01 to 16:40", got[0], got[1], got[1000])
	}
}
