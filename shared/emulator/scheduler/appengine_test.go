package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/schedule"
)

// TestAppEngineSchedules: the App Engine schedules with an exact cron equivalent fire at its
// slots and are kept as written; the others are refused with Cloud Scheduler's message.
func TestAppEngineSchedules(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 1, 0, 0, time.UTC) // a Wednesday
	tests := []struct {
		name, sched, tz string
		want            time.Time // the job's schedule_time
		wantErr         string    // refused with this after Google's message
	}{
		{name: "every 5 minutes", sched: "every 5 minutes", want: at.Add(4 * time.Minute)},
		{name: "synchronized", sched: "every 15 mins synchronized", want: at.Add(14 * time.Minute)},
		{name: "every minute", sched: "every 1 minutes", want: at.Add(time.Minute)},
		{name: "every 2 hours", sched: "every 2 hours", want: time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)},
		{name: "every day", sched: "every day 09:30", want: time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)},
		{name: "every monday in a zone", sched: "every monday 09:00", tz: "Europe/Berlin", want: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)},
		{name: "days by short names", sched: "Every Wed,fri 13:00", want: time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)},
		{name: "interval not dividing the hour", sched: "every 7 minutes", wantErr: "N must divide 60"},
		{name: "ordinal", sched: "1st monday of month 09:00", wantErr: "write \"1st monday of month 09:00\" as unix-cron"},
		{name: "from to", sched: "every 5 minutes from 10:00 to 14:00", wantErr: "the emulator reads only these App Engine schedules"},
		{name: "bad time", sched: "every day 25:00", wantErr: "not a time of day"},
		{name: "unknown day", sched: "every someday 09:00", wantErr: "the emulator reads only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Clock: clock.NewManual(at)})
			j := httpJob("ae", tt.sched, "http://example.invalid/")
			j.TimeZone = tt.tz
			got, err := e.client.CreateJob(context.Background(), &schedulerpb.CreateJobRequest{Parent: testParent, Job: j})
			if tt.wantErr != "" {
				st, _ := status.FromError(err)
				if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "Schedule or time zone is invalid. ") || !strings.Contains(st.Message(), tt.wantErr) {
					t.Errorf("CreateJob(%q) = %v, want Schedule or time zone is invalid. … %s", tt.sched, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateJob(%q) = %v", tt.sched, err)
			}
			if st := got.GetScheduleTime().AsTime(); !st.Equal(tt.want) {
				t.Errorf("%q: schedule_time = %v, want %v", tt.sched, st, tt.want)
			}
			if got.GetSchedule() != tt.sched {
				t.Errorf("schedule = %q, want it kept as written %q", got.GetSchedule(), tt.sched)
			}
		})
	}
}

// FuzzAppEngineCron: the translator never panics, and what it accepts is a valid cron
// expression of the schedule package.
func FuzzAppEngineCron(f *testing.F) {
	for _, s := range []string{"every 5 minutes", "every 24 hours synchronized", "every mon,tue 00:00", "every day 23:59", "every 0 minutes", "every -5 hours", "every day 9:00", "1st mon of jan 09:00", "every"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cron, err := appEngineCron(s)
		if err != nil {
			if len(err.Error()) > 2*maxScheduleLen+300 {
				t.Errorf("refusal of %d bytes", len(err.Error()))
			}
			return
		}
		if _, err := schedule.Parse(cron, "UTC"); err != nil {
			t.Errorf("appEngineCron(%q) = %q, which does not parse: %v", s, cron, err)
		}
	})
}
