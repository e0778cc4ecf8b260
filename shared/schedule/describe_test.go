package schedule

import "testing"

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		expr string
		tz   string
		want string
	}{
		{name: "daily", expr: "0 3 * * *", want: "At 03:00 UTC, every day"},
		{name: "daily UTC alias", expr: "0 3 * * *", tz: "UTC", want: "At 03:00 UTC, every day"},
		{name: "daily Berlin", expr: "0 3 * * *", tz: "Europe/Berlin", want: "At 03:00 Europe/Berlin, every day"},
		{name: "hourly", expr: "0 * * * *", want: "At minute 0 past every hour, every day"},
		{name: "hourly names a non-UTC zone", expr: "0 * * * *", tz: "Asia/Kolkata", want: "At minute 0 past every hour, every day (Asia/Kolkata)"},
		{name: "every 15 minutes", expr: "*/15 * * * *", want: "Every 15 minutes, every day"},
		{name: "every 15 minutes as a list", expr: "0,15,30,45 * * * *", want: "Every 15 minutes, every day"},
		{name: "every minute", expr: "* * * * *", want: "Every minute, every day"},
		{name: "step that does not divide the hour", expr: "*/7 * * * *", want: "At every 7th minute past every hour, every day"},
		{name: "step with a start", expr: "5/15 * * * *", want: "At every 15th minute from 5 through 59 past every hour, every day"},
		{name: "minute range and value", expr: "0-10,30 * * * *", want: "At every minute from 0 through 10 and minute 30 past every hour, every day"},
		{name: "irregular weekdays", expr: "30 6-16/4 * * 1-5", want: "At minute 30 past every 4th hour from 06 through 16 UTC, Monday through Friday"},
		{name: "first of the month", expr: "0 0 1 * *", want: "At 00:00 UTC, on day 1 of the month"},
		{name: "Sunday", expr: "0 0 * * 0", want: "At 00:00 UTC, on Sunday"},
		{name: "weekly descriptor", expr: "@weekly", want: "At 00:00 UTC, on Sunday"},
		{name: "yearly descriptor", expr: "@yearly", want: "At 00:00 UTC, on day 1 of the month, in January"},
		{name: "day of month OR day of week", expr: "0 0 1,15 * 1", want: "At 00:00 UTC, on day 1 and 15 of the month or on Monday"},
		{name: "step day of month OR day of week", expr: "0 12 */2 * 1", want: "At 12:00 UTC, on every 2nd day of the month or on Monday"},
		{name: "OR with every day of the month", expr: "0 0 1-31 * 1", want: "At 00:00 UTC, every day"},
		{name: "AND with every day of the week", expr: "0 12 * * SUN-SAT", want: "At 12:00 UTC, every day"},
		{name: "question mark", expr: "0 0 ? * *", want: "At 00:00 UTC, every day"},
		{name: "months list", expr: "0 0 * 1,7 *", want: "At 00:00 UTC, in January and July"},
		{name: "month range by name", expr: "0 9 * JAN-MAR *", want: "At 09:00 UTC, from January through March"},
		{name: "month step", expr: "0 0,12 1 */3 *", want: "At 00:00 and 12:00 UTC, on day 1 of the month, in every 3rd month"},
		{name: "leap day", expr: "0 0 29 2 *", want: "At 00:00 UTC, on day 29 of the month, in February"},
		{name: "two hours", expr: "0 6,18 * * *", want: "At 06:00 and 18:00 UTC, every day"},
		{name: "two minutes", expr: "0,30 9 * * *", want: "At 09:00 and 09:30 UTC, every day"},
		{name: "too many times to list", expr: "0,1,2,3,4,5,6,7,8 1 * * *", want: "At minute 0, 1, 2, 3, 4, 5, 6, 7 and 8 past hour 01 UTC, every day"},
		{name: "minutes past an hour range", expr: "0,30 9-17 * * MON-FRI", tz: "America/New_York", want: "At minute 0 and 30 past every hour from 09 through 17 America/New_York, Monday through Friday"},
		{name: "every minute of one hour", expr: "* 9 * * *", want: "At every minute past hour 09 UTC, every day"},
		{name: "minute step in one hour", expr: "*/10 9 * * *", want: "At every 10th minute past hour 09 UTC, every day"},
		{name: "weekday names", expr: "0 9 * * MON,wed,Fri", want: "At 09:00 UTC, on Monday, Wednesday and Friday"},
		{name: "weekday step", expr: "0 0 * * */2", want: "At 00:00 UTC, on every 2nd day of the week"},
		{name: "minutes on a weekday names UTC", expr: "15 * * * 1", want: "At minute 15 past every hour, on Monday (UTC)"},
		{name: "robfig reads *-5 as a star", expr: "*-5 ?-3 * * *", want: "Every minute, every day"},
		{name: "repeated values", expr: "5,5 1,1 * * *", want: "At 01:05 UTC, every day"},
		{name: "step larger than the range", expr: "0 0 5/40 * *", want: "At 00:00 UTC, on day 5 of the month"},
		{name: "ordinal step over the whole range", expr: "0 0 1-31/21 * *", want: "At 00:00 UTC, on every 21st day of the month"},
		{name: "ordinal 12th", expr: "*/12 0 * * *", want: "At every 12th minute past hour 00 UTC, every day"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr, tt.tz)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Describe(); got != tt.want {
				t.Errorf("Describe(%q) =\n %q\nwant\n %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestOrdinal(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{{1, "1st"}, {2, "2nd"}, {3, "3rd"}, {4, "4th"}, {11, "11th"}, {12, "12th"}, {13, "13th"}, {21, "21st"}, {22, "22nd"}, {23, "23rd"}, {101, "101st"}, {111, "111th"}}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := ordinal(tt.n); got != tt.want {
				t.Errorf("ordinal(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}
