package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{state.EnvVar: "/tmp/state", platform.EnvInventory: "inventory.yml"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    func(Config) bool
		wantErr string
	}{
		{name: "defaults", env: base, want: func(c Config) bool {
			return c.IngestLag == 3*time.Minute && c.ReAlert == 0 && c.BlindAfter == 15*time.Minute && c.Workers == 8 && c.Lease == 5*time.Minute && c.MaxWindow == 24*time.Hour &&
				c.FlapWindow == 6*time.Hour && c.FlapChanges == 4
		}},
		{name: "flap damping set", env: with(EnvFlapWindow, "2h", EnvFlapChanges, "6"), want: func(c Config) bool { return c.FlapWindow == 2*time.Hour && c.FlapChanges == 6 }},
		{name: "flap damping off", env: with(EnvFlapWindow, "0"), want: func(c Config) bool { return c.FlapWindow < 0 }},
		{name: "bad flap window", env: with(EnvFlapWindow, "-1h"), wantErr: EnvFlapWindow},
		{name: "bad flap changes", env: with(EnvFlapChanges, "1"), wantErr: EnvFlapChanges},
		{name: "set", env: with(EnvIngestLag, "90s", EnvReAlert, "4h", EnvBlindAfter, "30m", EnvWorkers, "16", EnvChannels, "/etc/runway/channels.yml", "RUNWAY_EMULATOR_HOST", "127.0.0.1:8085"),
			want: func(c Config) bool {
				return c.IngestLag == 90*time.Second && c.ReAlert == 4*time.Hour && c.BlindAfter == 30*time.Minute && c.Workers == 16 &&
					c.ChannelsPath == "/etc/runway/channels.yml" && c.GCP.EmulatorHost == "127.0.0.1:8085"
			}},
		{name: "bad duration", env: with(EnvIngestLag, "3"), wantErr: EnvIngestLag},
		{name: "negative duration", env: with(EnvReAlert, "-1h"), wantErr: EnvReAlert},
		{name: "bad workers", env: with(EnvWorkers, "0"), wantErr: EnvWorkers},
		{name: "no store", env: map[string]string{platform.EnvInventory: "i"}, wantErr: state.EnvVar},
		{name: "no inventory", env: map[string]string{state.EnvVar: "s"}, wantErr: platform.EnvInventory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.want(c) {
				t.Fatalf("ConfigFromEnv = %+v, %v", c, err)
			}
		})
	}
}

func TestExecutionOf(t *testing.T) {
	slot := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	created := timestamppb.New(slot.Add(time.Second))
	env := func(trigger, scheduled string) *runpb.TaskTemplate {
		e := []*runpb.EnvVar{{Name: "OTHER", Values: &runpb.EnvVar_Value{Value: "x"}}, {Name: platform.EnvTrigger, Values: &runpb.EnvVar_Value{Value: trigger}}}
		if scheduled != "" {
			e = append(e, &runpb.EnvVar{Name: platform.EnvScheduledTime, Values: &runpb.EnvVar_Value{Value: scheduled}})
		}
		return &runpb.TaskTemplate{Containers: []*runpb.Container{{Env: e}}}
	}
	done := timestamppb.New(slot.Add(time.Minute))
	tests := []struct {
		name string
		x    *runpb.Execution
		want detect.Execution
	}{
		{name: "scheduled, succeeded",
			x:    &runpb.Execution{Name: "e1", CreateTime: created, StartTime: created, CompletionTime: done, TaskCount: 2, SucceededCount: 2, Template: env("schedule", slot.Format(time.RFC3339)), LogUri: "l"},
			want: detect.Execution{Name: "e1", Created: created.AsTime(), Started: created.AsTime(), Completed: done.AsTime(), Result: detect.Succeeded, Trigger: "schedule", Scheduled: slot, LogURI: "l"}},
		{name: "flaky",
			x:    &runpb.Execution{Name: "e2", CreateTime: created, CompletionTime: done, TaskCount: 1, SucceededCount: 1, RetriedCount: 2, Template: env("schedule", slot.Format(time.RFC3339))},
			want: detect.Execution{Name: "e2", Created: created.AsTime(), Completed: done.AsTime(), Result: detect.Succeeded, Retried: 2, Trigger: "schedule", Scheduled: slot}},
		{name: "failed",
			x:    &runpb.Execution{Name: "e3", CreateTime: created, CompletionTime: done, TaskCount: 2, SucceededCount: 1, FailedCount: 1, Template: env("schedule", "")},
			want: detect.Execution{Name: "e3", Created: created.AsTime(), Completed: done.AsTime(), Result: detect.Failed, Trigger: "schedule"}},
		{name: "cancelled",
			x:    &runpb.Execution{Name: "e4", CreateTime: created, CompletionTime: done, TaskCount: 1, CancelledCount: 1},
			want: detect.Execution{Name: "e4", Created: created.AsTime(), Completed: done.AsTime(), Result: detect.Cancelled}},
		{name: "running",
			x:    &runpb.Execution{Name: "e5", CreateTime: created, StartTime: created, TaskCount: 1, RunningCount: 1},
			want: detect.Execution{Name: "e5", Created: created.AsTime(), Started: created.AsTime()}},
		{name: "a manual run serves no slot, whatever its env says",
			x:    &runpb.Execution{Name: "e6", CreateTime: created, Template: env("manual", slot.Format(time.RFC3339))},
			want: detect.Execution{Name: "e6", Created: created.AsTime(), Trigger: "manual"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, executionOf(tt.x)); d != "" {
				t.Errorf("executionOf (-want +got):\n%s", d)
			}
		})
	}
}

func TestJobOf(t *testing.T) {
	s := platform.Settings{Workload: "nightly", Schedule: "0 3 * * *", Monitoring: platform.Monitoring{Enabled: true}}
	managed := map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "nightly"}
	var cache settingsCache
	j, ok, err := jobOf(&runpb.Job{Name: "projects/p/locations/l/jobs/nightly", Labels: managed, Annotations: map[string]string{platform.AnnotationSettings: s.Encode()},
		LatestCreatedExecution: &runpb.ExecutionReference{Name: "x", CreateTime: timestamppb.New(time.Unix(100, 0))}}, &cache)
	if err != nil || !ok || j.Key != (detect.Key{Project: "p", Location: "l", Job: "nightly"}) || j.Settings.Schedule != s.Schedule || j.Latest.Name != "x" || !j.Latest.Completed.IsZero() {
		t.Errorf("jobOf = %+v, %v, %v", j, ok, err)
	}
	if _, ok, err := jobOf(&runpb.Job{Name: "projects/p/locations/l/jobs/other"}, &cache); ok || err != nil {
		t.Errorf("unmanaged job: ok %v, err %v", ok, err)
	}
	if _, _, err := jobOf(&runpb.Job{Name: "projects/p/locations/l/jobs/bad", Labels: managed}, &cache); err == nil {
		t.Error("a managed job without settings is not an error")
	}
	if _, _, err := jobOf(&runpb.Job{Name: "p/l/nightly", Labels: managed, Annotations: map[string]string{platform.AnnotationSettings: s.Encode()}}, &cache); err == nil {
		t.Error("a malformed name is not an error")
	}
}

func TestMetricRequests(t *testing.T) {
	w := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	reqs := metricRequests("p", w, w.Add(time.Minute))
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (at most 4 per tick and project)", len(reqs))
	}
	for _, r := range reqs {
		a := r.GetAggregation()
		if r.GetName() != "projects/p" || a.GetAlignmentPeriod().AsDuration() != time.Minute || a.GetCrossSeriesReducer().String() != "REDUCE_SUM" ||
			!strings.Contains(r.GetFilter(), `resource.type = "cloud_run_job"`) || a.GetGroupByFields()[0] != "resource.label.job_name" {
			t.Errorf("request %v", r)
		}
	}
	if r := metricRequests("p", w, w.Add(90*time.Minute))[0]; r.GetAggregation().GetAlignmentPeriod().AsDuration() != 90*time.Minute {
		t.Errorf("one point per series over the window: period %v", r.GetAggregation().GetAlignmentPeriod())
	}
}

// TestOutboxLease checks the crash window between claim and delivery: an alert claimed by a
// tick that died is delivered by a later tick once its lease expired, and not before.
func TestOutboxLease(t *testing.T) {
	r := newReplay(t)
	h := r.handler(1, 0)
	now := dec(3, 12, 0, 30)
	r.w.setNow(now)
	ctx := context.Background()
	key := platform.MonitorStateKey("runway-proj")
	// The state of a tick that claimed an alert and died.
	st := &detect.State{Watermark: now.Add(-3 * time.Minute).Truncate(time.Minute), Outbox: []detect.Pending{{
		Alert:    notify.Alert{ID: "a1", Kind: notify.KindFailed, Action: notify.ActionOpen, Workload: "hourly", Time: now.Add(-time.Minute)},
		Channels: []string{"slack"}, Lease: "dead", LeaseUntil: now.Add(2 * time.Minute),
	}}}
	b, _ := json.Marshal(st)
	if _, err := r.store.Put(ctx, key, b, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(r.channels["slack"].got); n != 0 {
		t.Fatalf("delivered %d alerts while the lease holds", n)
	}
	r.w.setNow(now.Add(3 * time.Minute))
	var wg sync.WaitGroup
	for range 3 { // three ticks race for the expired lease
		wg.Go(func() {
			if _, err := h.tick(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := r.channels["slack"].got; len(got) != 1 || got[0].ID != "a1" {
		t.Fatalf("after the lease expired, slack got %+v; want a1 once", got)
	}
}

// TestTwoInstances runs two monitor instances (each with its own cache of the state) on one
// directory store, ticking at once, over the day of the hourly job's failure: each alert once.
func TestTwoInstances(t *testing.T) {
	r := newReplay(t)
	h1 := r.handler(1, 0)
	store, err := state.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The trigger's records live in the same store.
	for _, k := range must(r.store.List(context.Background(), "runs/")) {
		o, _ := r.store.Get(context.Background(), k)
		if _, err := store.Put(context.Background(), k, o.Data, 0); err != nil {
			t.Fatal(err)
		}
	}
	h1.store = store
	h2 := newHandler(h1.cfg, r.w, store, r.inv, h1.dispatcher, h1.platform, r.w.clock, zerolog.Nop())
	h2.log = h1.log
	ctx := context.Background()
	for now := dec(5, 13, 50, 30); now.Before(dec(5, 16, 20, 0)); now = now.Add(3 * time.Minute) {
		r.w.setNow(now)
		var wg sync.WaitGroup
		for _, h := range []*Handler{h1, h2} {
			wg.Go(func() {
				if _, err := h.tick(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	var got []string
	for _, a := range r.channels["slack"].got {
		got = append(got, a.Workload+" "+string(a.Kind)+" "+a.Time.Format("15:04:05"))
	}
	if d := cmp.Diff([]string{"hourly failed 15:05:03", "hourly recovered 16:05:03"}, got); d != "" {
		t.Errorf("slack (-want +got):\n%s", d)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestRegistered drives the function through the functions framework as Eventarc would: on an
// instance without configuration every event is refused with 500, for redelivery once it is
// configured (as deploy and trigger do).
func TestRegistered(t *testing.T) {
	url := serve(t)
	post := func(ceType string) int {
		body := `{"message":{"data":"e30=","messageId":"1","publishTime":"2026-11-26T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}`
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("ce-specversion", "1.0")
		req.Header.Set("ce-id", "1")
		req.Header.Set("ce-type", ceType)
		req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/p/topics/"+platform.MonitorTickTopic)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Setenv(state.EnvVar, "")
	if code := post("google.cloud.pubsub.topic.v1.messagePublished"); code != http.StatusInternalServerError {
		t.Errorf("unconfigured: status %d, want 500", code)
	}
}

// TestHandleAcknowledgesWhatIsNotATick: an event that is not a Pub/Sub message can never be a
// tick, so it is refused permanently (acknowledged) before anything is read.
func TestHandleAcknowledgesWhatIsNotATick(t *testing.T) {
	h := newHandler(Config{}, nil, nil, nil, notify.NewDispatcher(nil), nil, time.Now, zerolog.Nop())
	e := newEvent("1")
	e.SetType("google.cloud.storage.object.v1.finalized")
	err := h.Handle(context.Background(), e)
	if err == nil || event.Result(err) != nil {
		t.Errorf("Handle = %v (result %v), want a permanent error", err, event.Result(err))
	}
}

// TestOutboxAgesFromDetection: an alert no channel takes is dropped MaxDeliveryAge after the
// tick that detected it, not after the event it reports (a failure found late still gets its
// retries); a record without DetectedAt ages from the event.
func TestOutboxAgesFromDetection(t *testing.T) {
	now := dec(3, 12, 0, 30)
	tests := []struct {
		name       string
		time       time.Time // the event
		detectedAt time.Time
		wantKept   bool
	}{
		{name: "event long ago, detected a minute ago", time: now.Add(-30 * time.Hour), detectedAt: now.Add(-time.Minute), wantKept: true},
		{name: "detected more than a day ago", time: now.Add(-30 * time.Hour), detectedAt: now.Add(-25 * time.Hour)},
		{name: "no DetectedAt, recent event", time: now.Add(-time.Hour), wantKept: true},
		{name: "no DetectedAt, event more than a day ago", time: now.Add(-25 * time.Hour)},
	}
	r := newReplay(t) // one replay for the cases: building it is most of the test's time
	h := r.handler(1, 0)
	slack := r.channels["slack"]
	slack.fail, slack.rng = 1, rand.New(rand.NewPCG(1, 2)) // refuses every delivery
	h.dispatcher.Sleep = func(context.Context, time.Duration) error { return nil }
	r.w.setNow(now)
	ctx := context.Background()
	key := platform.MonitorStateKey("runway-proj")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &detect.State{Watermark: now.Add(-3 * time.Minute).Truncate(time.Minute), Outbox: []detect.Pending{{
				Alert:    notify.Alert{ID: "a1", Kind: notify.KindFailed, Action: notify.ActionOpen, Workload: "hourly", Time: tt.time, DetectedAt: tt.detectedAt},
				Channels: []string{"slack"}, Lease: "dead", LeaseUntil: now.Add(-time.Second),
			}}}
			b, _ := json.Marshal(st)
			if err := r.store.Delete(ctx, key, 0); err != nil && !errors.Is(err, state.ErrNotFound) {
				t.Fatal(err)
			}
			if _, err := r.store.Put(ctx, key, b, 0); err != nil {
				t.Fatal(err)
			}
			refused := slack.fails
			if _, err := h.tick(ctx); err != nil {
				t.Fatal(err)
			}
			if slack.fails == refused {
				t.Fatal("the tick did not try to deliver the alert")
			}
			after, _, err := h.load(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			kept := slices.ContainsFunc(after.Outbox, func(p detect.Pending) bool { return p.Alert.ID == "a1" })
			if kept != tt.wantKept {
				t.Errorf("after a refused delivery the alert is kept: %v, want %v (outbox %+v)", kept, tt.wantKept, after.Outbox)
			}
		})
	}
}
