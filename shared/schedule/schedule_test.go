package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// utc parses an RFC 3339 time for tests.
func utc(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		expr     string
		tz       string
		wantExpr string
		wantTZ   string
		wantErr  string // substring of the error; "" means Parse must succeed
	}{
		{name: "plain", expr: "0 3 * * *", wantExpr: "0 3 * * *", wantTZ: "Etc/UTC"},
		{name: "spaces and tabs normalised", expr: "  0   3\t* *  * ", wantExpr: "0 3 * * *", wantTZ: "Etc/UTC"},
		{name: "zone kept as given", expr: "0 3 * * *", tz: "Europe/Berlin", wantExpr: "0 3 * * *", wantTZ: "Europe/Berlin"},
		{name: "UTC zone", expr: "0 3 * * *", tz: "UTC", wantExpr: "0 3 * * *", wantTZ: "UTC"},
		{name: "yearly", expr: "@yearly", wantExpr: "0 0 1 1 *", wantTZ: "Etc/UTC"},
		{name: "annually", expr: "@annually", wantExpr: "0 0 1 1 *", wantTZ: "Etc/UTC"},
		{name: "monthly", expr: "@monthly", wantExpr: "0 0 1 * *", wantTZ: "Etc/UTC"},
		{name: "weekly", expr: "@weekly", wantExpr: "0 0 * * 0", wantTZ: "Etc/UTC"},
		{name: "daily", expr: " @daily ", wantExpr: "0 0 * * *", wantTZ: "Etc/UTC"},
		{name: "midnight", expr: "@midnight", wantExpr: "0 0 * * *", wantTZ: "Etc/UTC"},
		{name: "hourly", expr: "@hourly", wantExpr: "0 * * * *", wantTZ: "Etc/UTC"},
		{name: "names", expr: "0 9 * JAN-MAR MON-FRI", wantExpr: "0 9 * JAN-MAR MON-FRI", wantTZ: "Etc/UTC"},
		{name: "lower-case names and question mark", expr: "0 0 ? jul sun", wantExpr: "0 0 ? jul sun", wantTZ: "Etc/UTC"},
		{name: "steps ranges lists", expr: "*/15 6-16/4 1,15 */2 1-5", wantExpr: "*/15 6-16/4 1,15 */2 1-5", wantTZ: "Etc/UTC"},
		{name: "leap day is valid", expr: "0 0 29 2 *", wantExpr: "0 0 29 2 *", wantTZ: "Etc/UTC"},
		{name: "impossible day OR a weekday is valid", expr: "0 0 30 2 1", wantExpr: "0 0 30 2 1", wantTZ: "Etc/UTC"},

		{name: "empty", expr: "", wantErr: "schedule is empty"},
		{name: "blank", expr: " \t ", wantErr: "schedule is empty"},
		{name: "CRON_TZ prefix", expr: "CRON_TZ=Europe/Berlin 0 3 * * *", wantErr: "time zone prefixes are not supported: use time_zone"},
		{name: "TZ prefix", expr: "TZ=UTC 0 3 * * *", wantErr: "time zone prefixes are not supported: use time_zone"},
		{name: "every", expr: "@every 1h", wantErr: "@every intervals are not supported"},
		{name: "reboot", expr: "@reboot", wantErr: "@reboot is not supported"},
		{name: "unknown descriptor", expr: "@fortnightly", wantErr: `unknown descriptor "@fortnightly"`},
		{name: "descriptors are case-sensitive like robfig", expr: "@Daily", wantErr: `unknown descriptor "@Daily"`},
		{name: "descriptor with arguments", expr: "@daily 5", wantErr: "descriptor @daily takes no arguments"},
		{name: "seconds field", expr: "0 0 3 * * *", wantErr: "has 6 fields: a seconds field is not supported"},
		{name: "4 fields", expr: "0 3 * *", wantErr: "has 4 fields, want 5"},
		{name: "1 field", expr: "5", wantErr: "has 1 field, want 5"},
		{name: "7 fields", expr: "0 0 3 * * * 2025", wantErr: "has 7 fields, want 5"},
		{name: "30 February", expr: "0 0 30 2 *", wantErr: `schedule "0 0 30 2 *" can never fire`},
		{name: "31 February", expr: "59 23 31 2 *", wantErr: "can never fire"},
		{name: "31 in short months", expr: "0 0 31 4,6,9,11 *", wantErr: "can never fire"},
		{name: "minute out of range", expr: "60 * * * *", wantErr: "above maximum"},
		{name: "day-of-week 7 is rejected by robfig", expr: "0 0 * * 7", wantErr: "above maximum"},
		{name: "day 0", expr: "0 0 0 * *", wantErr: "below minimum"},
		{name: "zero step", expr: "*/0 * * * *", wantErr: "step of range should be a positive number"},
		{name: "unknown name", expr: "0 0 * * FOO", wantErr: "failed to parse int from FOO"},
		{name: "field of commas", expr: ", * * * *", wantErr: `minute field "," matches no value`},
		{name: "unknown zone", expr: "0 3 * * *", tz: "Mars/Olympus", wantErr: `unknown time zone "Mars/Olympus"`},
		{name: "Local zone", expr: "0 3 * * *", tz: "Local", wantErr: `time zone "Local" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr, tt.tz)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q, %q) error = %v, want it to contain %q", tt.expr, tt.tz, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q, %q): %v", tt.expr, tt.tz, err)
			}
			if got := s.Expr(); got != tt.wantExpr {
				t.Errorf("Expr() = %q, want %q", got, tt.wantExpr)
			}
			if got := s.TimeZone(); got != tt.wantTZ {
				t.Errorf("TimeZone() = %q, want %q", got, tt.wantTZ)
			}
			if got := s.Location().String(); got != tt.wantTZ {
				t.Errorf("Location() = %q, want %q", got, tt.wantTZ)
			}
		})
	}
}

func TestParseErrorMessages(t *testing.T) {
	tests := []struct {
		name, expr, tz, want string
	}{
		{name: "never fires", expr: "0 0 30 2 *", want: `schedule "0 0 30 2 *" can never fire: no such date exists`},
		{name: "seconds", expr: "0 0 3 * * *", want: `schedule "0 0 3 * * *" has 6 fields: a seconds field is not supported (want 5: minute hour day-of-month month day-of-week)`},
		{name: "robfig error wrapped", expr: "0 24 * * *", want: `schedule "0 24 * * *" is invalid: end of range (24) above maximum (23): 24`},
		{name: "zone", expr: "0 3 * * *", tz: "Europe/Berlim", want: `unknown time zone "Europe/Berlim" (want an IANA name such as Etc/UTC or Europe/Berlin)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.expr, tt.tz)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse(%q, %q) error = %v, want %q", tt.expr, tt.tz, err, tt.want)
			}
		})
	}
}

func TestNextN(t *testing.T) {
	tests := []struct {
		name  string
		expr  string
		tz    string
		after string
		n     int
		want  []string // UTC
	}{
		{
			name: "31st only in long months", expr: "0 0 31 * *", after: "2025-01-01T00:00:00Z", n: 5,
			want: []string{"2025-01-31T00:00:00Z", "2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z", "2025-07-31T00:00:00Z", "2025-08-31T00:00:00Z"},
		},
		{
			name: "leap day", expr: "0 0 29 2 *", after: "2025-01-01T00:00:00Z", n: 2,
			want: []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
		},
		{
			// robfig searches five years ahead: from 2097 the next 29 February (2104) is too far.
			name: "leap day beyond the five-year search", expr: "0 0 29 2 *", after: "2097-01-01T00:00:00Z", n: 2,
			want: nil,
		},
		{
			name: "strictly after a slot", expr: "*/15 * * * *", after: "2025-01-01T10:15:00Z", n: 2,
			want: []string{"2025-01-01T10:30:00Z", "2025-01-01T10:45:00Z"},
		},
		{
			name: "strictly after, sub-second", expr: "* * * * *", after: "2025-01-01T10:00:00.5Z", n: 1,
			want: []string{"2025-01-01T10:01:00Z"},
		},
		{
			name: "zone converted to UTC", expr: "0 9 * * *", tz: "Asia/Kolkata", after: "2025-01-01T00:00:00Z", n: 2,
			want: []string{"2025-01-01T03:30:00Z", "2025-01-02T03:30:00Z"},
		},
		{
			name: "input in another zone", expr: "0 9 * * *", tz: "Europe/Berlin", after: "2025-01-01T09:30:00+09:00", n: 1,
			want: []string{"2025-01-01T08:00:00Z"},
		},
		{
			name: "Berlin local time follows DST", expr: "0 12 * * *", tz: "Europe/Berlin", after: "2025-03-29T00:00:00Z", n: 3,
			want: []string{"2025-03-29T11:00:00Z", "2025-03-30T10:00:00Z", "2025-03-31T10:00:00Z"},
		},
		{
			// 02:30 does not exist on 9 March 2025 in New York (02:00 EST jumps to 03:00 EDT): robfig skips that day.
			name: "New York spring forward skips the missing slot", expr: "30 2 * * *", tz: "America/New_York", after: "2025-03-08T00:00:00Z", n: 3,
			want: []string{"2025-03-08T07:30:00Z", "2025-03-10T06:30:00Z", "2025-03-11T06:30:00Z"},
		},
		{
			// 01:30 happens twice on 2 November 2025 in New York (EDT, then EST): robfig fires at both.
			name: "New York fall back fires twice", expr: "30 1 * * *", tz: "America/New_York", after: "2025-11-01T12:00:00Z", n: 3,
			want: []string{"2025-11-02T05:30:00Z", "2025-11-02T06:30:00Z", "2025-11-03T06:30:00Z"},
		},
		{
			name: "New York hourly stays hourly across fall back", expr: "0 * * * *", tz: "America/New_York", after: "2025-11-02T04:30:00Z", n: 3,
			want: []string{"2025-11-02T05:00:00Z", "2025-11-02T06:00:00Z", "2025-11-02T07:00:00Z"},
		},
		{
			name: "New York hourly has 23 slots on spring forward day", expr: "0 * * * *", tz: "America/New_York", after: "2025-03-09T05:30:00Z", n: 3,
			want: []string{"2025-03-09T06:00:00Z", "2025-03-09T07:00:00Z", "2025-03-09T08:00:00Z"},
		},
		{
			// 02:30 does not exist on 30 March 2025 in Berlin (02:00 CET jumps to 03:00 CEST).
			name: "Berlin spring forward skips the missing slot", expr: "30 2 * * *", tz: "Europe/Berlin", after: "2025-03-29T12:00:00Z", n: 2,
			want: []string{"2025-03-31T00:30:00Z", "2025-04-01T00:30:00Z"},
		},
		{
			// 02:30 happens twice on 26 October 2025 in Berlin (CEST, then CET).
			name: "Berlin fall back fires twice", expr: "30 2 * * *", tz: "Europe/Berlin", after: "2025-10-25T12:00:00Z", n: 3,
			want: []string{"2025-10-26T00:30:00Z", "2025-10-26T01:30:00Z", "2025-10-27T01:30:00Z"},
		},
		{
			name: "Berlin slot after the repeated hour fires once", expr: "0 3 * * *", tz: "Europe/Berlin", after: "2025-10-25T12:00:00Z", n: 2,
			want: []string{"2025-10-26T02:00:00Z", "2025-10-27T02:00:00Z"},
		},
		{
			// At this change (00:01 ADT to 23:01 AST) robfig returns 23:15 AST on Saturday, and
			// returns it again when asked for the slot after it; Next must still move on.
			name: "robfig stuck at a historical DST change", expr: "15 0 * * 0", tz: "America/Moncton", after: "1993-10-29T00:00:00Z", n: 3,
			want: []string{"1993-10-31T03:15:00Z", "1993-10-31T04:15:00Z", "1993-11-07T04:15:00Z"},
		},
		{name: "zero slots", expr: "* * * * *", after: "2025-01-01T00:00:00Z", n: 0, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr, tt.tz)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, slot := range s.NextN(utc(t, tt.after), tt.n) {
				if slot.Location() != time.UTC {
					t.Errorf("slot %v is in %v, want UTC", slot, slot.Location())
				}
				got = append(got, slot.Format(time.RFC3339Nano))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NextN(%s, %d) mismatch (-want +got):\n%s", tt.after, tt.n, diff)
			}
		})
	}
}

func TestNextZero(t *testing.T) {
	s, err := Parse("0 0 29 2 *", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Next(utc(t, "2097-01-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("Next = %v, want the zero time (no 29 February within five years)", got)
	}
	if got, want := s.Next(utc(t, "2095-01-01T00:00:00Z")), utc(t, "2096-02-29T00:00:00Z"); !got.Equal(want) {
		t.Errorf("Next = %v, want %v", got, want)
	}
}
