package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestConsoleSlots(t *testing.T) {
	hourly, err := schedule.Parse("0 * * * *", "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	slot := func(s string) *time.Time { v := at(s); return &v }
	tests := []struct {
		name     string
		from, to time.Time
		created  time.Time
		execs    []Execution
		records  []platform.RunRecord
		deadline time.Duration
		want     []string // "15:00 outcome execution"
	}{
		{
			name: "each outcome", from: at("2026-11-26T10:30:00Z"), to: at("2026-11-26T16:20:00Z"), deadline: 30 * time.Minute,
			execs: []Execution{
				{ID: "a", Slot: slot("2026-11-26T11:00:00Z"), Result: "succeeded"},
				{ID: "b", Slot: slot("2026-11-26T12:00:00Z"), Result: "failed"},
				{ID: "m", Result: "succeeded"}, // manual: serves no slot
				{ID: "r", Slot: slot("2026-11-26T16:00:00Z"), Result: "running"},
			},
			records: []platform.RunRecord{
				{ScheduledTime: at("2026-11-26T13:00:00Z"), Outcome: platform.RunSkipped, Reason: "previous run still active"},
				{ScheduledTime: at("2026-11-26T14:00:00Z"), Outcome: platform.RunMissed, Reason: "past the starting deadline"},
			},
			want: []string{"11:00 succeeded a", "12:00 failed b", "13:00 skipped ", "14:00 missed ", "15:00 missed ", "16:00 running r"},
		},
		{
			name: "not yet past its deadline is due", from: at("2026-11-26T14:30:00Z"), to: at("2026-11-26T16:20:00Z"), deadline: 30 * time.Minute,
			want: []string{"15:00 missed ", "16:00 due "},
		},
		{
			name: "a retried slot shows its newest execution", from: at("2026-11-26T10:30:00Z"), to: at("2026-11-26T11:50:00Z"),
			execs: []Execution{
				{ID: "new", Slot: slot("2026-11-26T11:00:00Z"), Result: "succeeded", Started: at("2026-11-26T11:10:00Z")},
				{ID: "old", Slot: slot("2026-11-26T11:00:00Z"), Result: "failed", Started: at("2026-11-26T11:00:00Z")},
			},
			want: []string{"11:00 succeeded new"},
		},
		{
			name: "slots before the schedule applied are not expected", from: at("2026-11-26T10:30:00Z"), to: at("2026-11-26T13:30:00Z"),
			created: at("2026-11-26T12:00:00Z"), want: []string{"12:00 missed ", "13:00 missed "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range Slots(hourly, tt.from, tt.to, tt.created, tt.execs, tt.records, tt.deadline) {
				got = append(got, s.Time.UTC().Format("15:04")+" "+s.Outcome+" "+s.Execution)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Slots:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestConsoleStampShowsTheZoneAndUTC(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		name string
		loc  *time.Location
		want stamp
	}{
		{name: "a zone west of UTC", loc: ny, want: stamp{ISO: "2026-11-26T15:00:00Z", Local: "2026-11-26 10:00 EST", UTC: "2026-11-26 15:00 UTC"}},
		{name: "UTC alone", loc: time.UTC, want: stamp{ISO: "2026-11-26T15:00:00Z", Local: "2026-11-26 15:00 UTC"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stampOf(at("2026-11-26T15:00:00Z"), tt.loc); got != tt.want {
				t.Errorf("stampOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// memorySource is a Source over fixed data: what runwayctl reads from the platform, already
// read (the platform itself is exercised by runwayctl's TestConsoleInBrowser).
type memorySource struct {
	now       time.Time
	workloads map[string]*Workload
}

func (m memorySource) Now() time.Time { return m.now }
func (m memorySource) Workloads(context.Context) ([]Summary, error) {
	var out []Summary
	for _, w := range m.workloads {
		out = append(out, w.Summary)
	}
	return out, nil
}
func (m memorySource) Workload(_ context.Context, name string, _ time.Time) (*Workload, error) {
	if w, ok := m.workloads[name]; ok {
		return w, nil
	}
	return nil, fmt.Errorf("workload %q: %w", name, ErrNotFound)
}
func (m memorySource) Execution(_ context.Context, workload, id string) (*ExecutionDetail, error) {
	return nil, fmt.Errorf("execution %s: %w", id, ErrNotFound)
}

// fiveMinuteJob is 30 days of a job every five minutes in Europe/Berlin: 8,640 slots, one
// execution for nearly each, a failure a day, a skipped and a missed slot a day.
func fiveMinuteJob(now time.Time) *Workload {
	w := &Workload{Summary: Summary{Name: "every-5", Deployed: true, Schedule: "*/5 * * * *", TimeZone: "Europe/Berlin", Describe: "Every 5 minutes"},
		Deadline: 10 * time.Minute, Manifest: Manifest{Image: "r/i@sha256:00", Settings: platform.Settings{CreatedAt: now.Add(-40 * 24 * time.Hour)}}}
	sched, _ := schedule.Parse(w.Schedule, w.TimeZone)
	i := 0
	for t := sched.Next(now.Add(-Window)); t.Before(now.Add(-10 * time.Minute)); t = sched.Next(t) {
		i++
		switch i % 288 {
		case 7:
			w.Records = append(w.Records, platform.RunRecord{ScheduledTime: t, Outcome: platform.RunSkipped, Reason: "previous run still active"})
			continue
		case 9:
			continue // missed
		}
		slot, result := t, "succeeded"
		if i%288 == 5 {
			result = "failed"
		}
		w.Executions = append(w.Executions, Execution{ID: fmt.Sprintf("every-5-%05d", i), Trigger: platform.TriggerSchedule, Slot: &slot,
			Result: result, Started: t.Add(2 * time.Second), Duration: "41s", TaskCount: 1})
	}
	for l, r := 0, len(w.Executions)-1; l < r; l, r = l+1, r-1 {
		w.Executions[l], w.Executions[r] = w.Executions[r], w.Executions[l]
	}
	w.Last = &w.Executions[0]
	return w
}

func TestConsoleServer(t *testing.T) {
	now := at("2026-11-26T16:00:00Z")
	src := memorySource{now: now, workloads: map[string]*Workload{"every-5": fiveMinuteJob(now)}}
	srv := httptest.NewServer(New(src, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	tests := []struct {
		name, method, path string
		code               int
		contains           []string
	}{
		{name: "overview", method: "GET", path: "/", code: 200, contains: []string{`<a href="/workloads/every-5">every-5</a>`, "Every 5 minutes", "Europe/Berlin"}},
		{name: "workload", method: "GET", path: "/workloads/every-5", code: 200, contains: []string{
			"288 slots: 285 succeeded, 1 failed, 1 skipped, 1 missed", "Wed 28 Oct 2026", "show all 8577</a>", "runwayctl run every-5", `title="17:00 CET (16:00 UTC): due"`, `class="c r-skipped" title="17:35 CET (16:35 UTC): skipped: previous run still active"`}},
		{name: "unknown workload", method: "GET", path: "/workloads/nope", code: 404, contains: []string{`workload &#34;nope&#34;: not found`}},
		{name: "unknown page", method: "GET", path: "/runs", code: 404},
		{name: "no writes", method: "POST", path: "/workloads/every-5", code: 405, contains: []string{"read-only"}},
		{name: "stylesheet", method: "GET", path: "/console.css", code: 200, contains: []string{".r-failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Errorf("%s %s: %d, want %d:\n%.500s", tt.method, tt.path, resp.StatusCode, tt.code, body)
			}
			for _, want := range tt.contains {
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("%s %s lacks %q", tt.method, tt.path, want)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
		})
	}
}

// BenchmarkConsoleWorkloadPage renders the workload page of 30 days of a 5-minute job (8,640
// slots): the strip, the newest executions, the slots that did not run. Target: < 100 ms.
func BenchmarkConsoleWorkloadPage(b *testing.B) {
	now := at("2026-11-26T16:00:00Z")
	w := fiveMinuteJob(now)
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := RenderWorkload(&out, w, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len())/1024, "KiB/page")
}
