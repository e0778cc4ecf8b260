package monitor

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/notify"
)

// emulatedMetrics is the replay's world with Cloud Monitoring replaced by the emulator's, read
// through the official client.
type emulatedMetrics struct {
	*world
	metrics gcpCloud
}

func (e emulatedMetrics) listTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) ([]*monitoringpb.TimeSeries, int, error) {
	return e.metrics.listTimeSeries(ctx, req)
}

// loadMetrics writes the history's job metrics for (from, to] into the emulator with
// CreateTimeSeries, as Cloud Run would have recorded them: per minute, completions by result,
// failed attempts, and the executions running.
func loadMetrics(t *testing.T, client *allclients.Clients, w *world, from, to time.Time) {
	type series struct {
		typ, project, location, job, result string
	}
	minutes := map[int64]map[series]int64{}
	add := func(end time.Time, s series, v int64) {
		m := minutes[end.Unix()]
		if m == nil {
			m = map[series]int64{}
			minutes[end.Unix()] = m
		}
		m[s] += v
	}
	for _, j := range w.jobs {
		for _, x := range j.execs {
			if !x.completed.IsZero() && x.completed.After(from) && !x.completed.After(to) {
				end := x.completed.Truncate(time.Minute).Add(time.Minute)
				add(end, series{metricCompletedExecutions, j.key.Project, j.key.Location, j.key.Job, x.result}, 1)
				if n := int64(x.retried) + map[bool]int64{true: 1}[x.result == "failed"]; n > 0 {
					add(end, series{metricCompletedAttempts, j.key.Project, j.key.Location, j.key.Job, "failed"}, n)
				}
			}
			last := x.completed
			if last.IsZero() || last.After(to) {
				last = to
			}
			first := x.started
			if first.Before(from) {
				first = from
			}
			for m := first.Truncate(time.Minute).Add(time.Minute); !m.After(last.Truncate(time.Minute).Add(time.Minute)) && !m.After(to); m = m.Add(time.Minute) {
				add(m, series{metricRunningExecutions, j.key.Project, j.key.Location, j.key.Job, ""}, 1)
			}
		}
	}
	ctx := context.Background()
	ends := make([]int64, 0, len(minutes))
	for e := range minutes {
		ends = append(ends, e)
	}
	slices.Sort(ends)
	for _, e := range ends {
		end := time.Unix(e, 0)
		byProject := map[string][]*monitoringpb.TimeSeries{}
		for s, v := range minutes[e] {
			iv := &monitoringpb.TimeInterval{StartTime: timestamppb.New(end.Add(-time.Minute)), EndTime: timestamppb.New(end)}
			labels := map[string]string{"result": s.result}
			switch s.typ {
			case metricRunningExecutions:
				iv.StartTime, labels = nil, nil
			case metricCompletedAttempts:
				labels["attempt"] = "0"
			}
			byProject[s.project] = append(byProject[s.project], &monitoringpb.TimeSeries{
				Metric:   &metric.Metric{Type: s.typ, Labels: labels},
				Resource: &monitoredres.MonitoredResource{Type: "cloud_run_job", Labels: map[string]string{"project_id": s.project, "location": s.location, "job_name": s.job}},
				Points:   []*monitoringpb.Point{{Interval: iv, Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}}}},
			})
		}
		for project, ts := range byProject {
			for chunk := range slices.Chunk(ts, 200) {
				if err := client.Metrics.CreateTimeSeries(ctx, &monitoringpb.CreateTimeSeriesRequest{Name: "projects/" + project, TimeSeries: chunk}); err != nil {
					t.Fatalf("CreateTimeSeries at %s: %v", end, err)
				}
			}
		}
	}
}

// TestReplayEmulatedMonitoring replays a day of the month with the job metrics loaded into
// the emulator's Cloud Monitoring and read through the official client, with an ingest delay,
// and Cloud Monitoring made to fail for 40 minutes through the emulator's fault endpoint: the
// same alerts as the month has for those days, each once.
func TestReplayEmulatedMonitoring(t *testing.T) {
	from, to := dec(10, 8, 0, 0), dec(11, 6, 0, 0)
	clk := clock.NewManual(from)
	e := emulatortest.Start(t, emulator.Options{Clock: clk, IngestDelay: 2 * time.Minute})
	ctx := context.Background()
	clients, err := allclients.Dial(ctx, emulatortest.Config(e, "runway-proj"), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clients.Close() })

	r := newReplay(t)
	r.w.metricsFail, r.w.metricsEmpty = nil, nil
	loadMetrics(t, clients, r.w, from.Add(-time.Hour), to)
	h := r.handler(4, 0.2)
	h.cloud = emulatedMetrics{world: r.w, metrics: gcpCloud{clients}}
	h.cfg.CallTimeout = 300 * time.Millisecond // the client retries Unavailable until then

	fault := func(method, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+e.Addr()+"/emulator/v1/faults", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s faults: %s", method, resp.Status)
		}
	}
	cadence := 4 * time.Minute
	if raceEnabled {
		cadence = 6 * time.Minute
	}
	down, up := dec(10, 9, 50, 0), dec(10, 10, 30, 0)
	faulty := false
	for now := from.Add(30 * time.Second); now.Before(to); now = now.Add(cadence) {
		switch {
		case !faulty && !now.Before(down) && now.Before(up):
			fault(http.MethodPost, `{"method":"ListTimeSeries","code":14}`)
			faulty = true
		case faulty && !now.Before(up):
			fault(http.MethodDelete, "")
			faulty = false
		}
		r.w.setNow(now)
		clk.Set(now)
		if _, err := h.tick(ctx); err != nil {
			if _, err := h.tick(ctx); err != nil && !bytes.Contains([]byte(err.Error()), []byte("502")) {
				t.Fatalf("tick at %s: %v", now, err)
			}
		}
	}
	var expected []want
	for _, w := range r.want {
		if w.Kind != notify.KindUnknown && w.At.After(from.Add(10*time.Minute)) && w.At.Before(to.Add(-2*time.Hour)) {
			expected = append(expected, w)
		}
	}
	for _, p := range []string{"runway-proj", "runway-proj2"} {
		for _, a := range []notify.Action{notify.ActionOpen, notify.ActionResolve} {
			expected = append(expected, want{Channel: "platform", Who: p, Kind: notify.KindUnknown, Action: a})
		}
	}
	if len(expected) < 6 { // minutely's failure and recovery, deleted's failure, and the unknowns
		t.Fatalf("the window holds only %d expected alerts: %v", len(expected), expected)
	}
	r.want = expected
	r.check(t)
}
