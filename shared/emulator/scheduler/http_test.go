package scheduler

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/gcp"
)

// TestJobPage checks the page the monitor's alerts link to on the emulator: the job as GetJob
// shows it, and its recent attempts with their status, a failed publish among them.
func TestJobPage(t *testing.T) {
	c := clock.NewManual(start)
	pub := &recorder{fail: 1, err: status.Error(codes.NotFound, "Resource not found (resource=ticks).")}
	e := newEnv(t, Options{Clock: c, Publisher: pub})
	e.create(t, pubsubJob("ps", "*/10 * * * *", "projects/p1/topics/ticks", "payload"))
	c.Advance(20 * time.Minute) // two slots: the first publish fails, the second succeeds
	mux := http.NewServeMux()
	e.svc.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name     string
		path     string
		wantCode int
	}{
		{name: "a job", path: jobName("ps"), wantCode: http.StatusOK},
		{name: "no such job", path: jobName("gone"), wantCode: http.StatusNotFound},
		{name: "not a job name", path: "projects/p1/jobs/x", wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + gcp.EmulatorSchedulerPath + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode != http.StatusOK {
				return
			}
			var page struct {
				Job struct {
					Name, State     string
					LastAttemptTime time.Time
				}
				Attempts []attemptRecord
			}
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
				t.Fatal(err)
			}
			if page.Job.Name != jobName("ps") || page.Job.State != "ENABLED" || !page.Job.LastAttemptTime.Equal(start.Add(20*time.Minute)) {
				t.Errorf("job = %+v", page.Job)
			}
			want := []attemptRecord{
				{Time: start.Add(10 * time.Minute), ScheduleTime: start.Add(10 * time.Minute), Code: "NotFound", Message: "Resource not found (resource=ticks)."},
				{Time: start.Add(20 * time.Minute), ScheduleTime: start.Add(20 * time.Minute), Code: "OK"},
			}
			if len(page.Attempts) != 2 || page.Attempts[0] != want[0] || page.Attempts[1] != want[1] {
				t.Errorf("attempts = %+v, want %+v", page.Attempts, want)
			}
		})
	}
}

// TestAttemptsBounded checks that a job keeps only its latest attempts.
func TestAttemptsBounded(t *testing.T) {
	j := &job{}
	for i := range keptAttempts + 5 {
		j.record(start.Add(time.Duration(i)*time.Minute), start, status.New(codes.OK, ""))
	}
	if len(j.attempts) != keptAttempts || !j.attempts[0].Time.Equal(start.Add(5*time.Minute)) {
		t.Errorf("%d attempts from %v, want %d from +5m", len(j.attempts), j.attempts[0].Time, keptAttempts)
	}
}
