package monitor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// TestMissedSlotSaysWhy runs a scheduled job on the emulator whose slot gets no execution, with
// its Cloud Scheduler job in several states made through the official client: the missed
// alert on the owner's signed webhook says why, links to the Scheduler job's page (which the
// emulator serves), and carries both the slot's deadline and the detection time.
func TestMissedSlotSaysWhy(t *testing.T) {
	const schedName = "projects/" + emuProject + "/locations/" + emuRegion + "/jobs/nightly"
	tests := []struct {
		name string
		// scheduler makes the Scheduler job (nil: none)
		scheduler func(ctx context.Context, t *testing.T, c *allclients.Clients)
		want      string
	}{
		{name: "deleted outside Runway", want: "The Cloud Scheduler job " + schedName + " does not exist: it was deleted outside Runway"},
		{name: "paused outside Runway", scheduler: func(ctx context.Context, t *testing.T, c *allclients.Clients) {
			createSchedulerJob(ctx, t, c, "projects/"+emuProject+"/topics/runway-trigger-nightly")
			if _, err := c.Scheduler.PauseJob(ctx, &schedulerpb.PauseJobRequest{Name: schedName}); err != nil {
				t.Fatal(err)
			}
		}, want: "The Cloud Scheduler job is PAUSED, but the manifest does not suspend the job: it was paused outside Runway"},
		{name: "its publish fails", scheduler: func(ctx context.Context, t *testing.T, c *allclients.Clients) {
			createSchedulerJob(ctx, t, c, "projects/"+emuProject+"/topics/no-such-topic") // publish answers NOT_FOUND
		}, want: "Its last attempt, at 2026-12-01 10:05 UTC, failed: NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
			clk := clock.NewManual(start)
			e := emulatortest.Start(t, emulator.Options{Clock: clk, OpDelay: time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			clients, err := allclients.Dial(ctx, emulatortest.Config(e, emuProject), gcp.All)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { clients.Close() })
			recv := &hookReceiver{t: t, secret: []byte("hook-secret")}
			srv := httptest.NewServer(recv)
			t.Cleanup(srv.Close)
			slack := &slackReceiver{}
			slackSrv := httptest.NewServer(slack)
			t.Cleanup(slackSrv.Close)
			h := emuMonitor(ctx, t, e, clients, srv.URL, slackSrv.URL+"/services/T0/B0/s3cr3t", clk)

			s := platform.Settings{Workload: "nightly", Schedule: "*/5 * * * *", ConcurrencyPolicy: "Forbid", CreatedAt: start.Add(-time.Hour),
				Timeout: time.Minute, Monitoring: platform.Monitoring{Enabled: true, Grace: time.Minute, ExpectedRuntime: time.Minute, FailureThreshold: 1, RecoveryThreshold: 1},
				Owner: platform.Owner{EmailHandle: "nightly-owner"}, Channels: []string{"owner-hook", "owner-slack"}}
			op, err := clients.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/" + emuProject + "/locations/" + emuRegion, JobId: "nightly", Job: &runpb.Job{
				Labels:      map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "nightly"},
				Annotations: map[string]string{platform.AnnotationSettings: s.Encode()},
				Template:    &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{Image: "example/nightly"}}}},
			}})
			if err == nil {
				_, err = op.Wait(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.scheduler != nil {
				tt.scheduler(ctx, t, clients)
			}
			tick := func(at time.Time) {
				t.Helper()
				clk.Set(at) // the Scheduler fires the slots up to at
				if _, err := h.tick(ctx); err != nil {
					t.Fatalf("tick at %s: %v", at, err)
				}
			}
			slot := time.Date(2026, 12, 1, 10, 5, 0, 0, time.UTC)
			tick(start)
			tick(slot.Add(3*time.Minute + 20*time.Second)) // the deadline: slot + 1m + 1m

			got := recv.alerts()
			if len(got) != 1 || got[0].Kind != notify.KindMissed || !got[0].Slot.Equal(slot) {
				t.Fatalf("alerts = %+v, want one missed for %s", got, slot)
			}
			a := got[0]
			if !strings.Contains(a.Detail, tt.want) {
				t.Errorf("detail %q\nwant it to say %q", a.Detail, tt.want)
			}
			if !a.Time.Equal(slot.Add(2*time.Minute)) || !a.DetectedAt.Equal(slot.Add(3*time.Minute+20*time.Second)) {
				t.Errorf("time %s detected %s, want the deadline %s and the tick %s", a.Time, a.DetectedAt, slot.Add(2*time.Minute), slot.Add(3*time.Minute+20*time.Second))
			}
			if len(a.Links) != 1 || a.Links[0].Href != "http://"+e.Addr()+gcp.EmulatorSchedulerPath+schedName {
				t.Fatalf("links = %+v, want the emulator's page of %s", a.Links, schedName)
			}
			// Slack gets the same: the reason in the detail block, the link as a link.
			msgs := slack.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d Slack messages, want 1", len(msgs))
			}
			var text strings.Builder
			for _, b := range msgs[0].Blocks {
				if b.Text != nil {
					text.WriteString(b.Text.Text + "\n")
				}
				for _, f := range b.Fields {
					text.WriteString(f.Text + "\n")
				}
			}
			for _, want := range []string{tt.want, "*Scheduler job*\n<" + a.Links[0].Href + "|scheduler job>", "*Detected*\n2026-12-01T10:08:20Z", "*At*\n2026-12-01T10:07:00Z"} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("Slack message lacks %q:\n%s", want, text.String())
				}
			}
			resp, err := http.Get(a.Links[0].Href)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			wantCode := http.StatusOK
			if tt.scheduler == nil {
				wantCode = http.StatusNotFound
			}
			var page struct {
				Job struct{ State string }
			}
			if resp.StatusCode != wantCode || wantCode == http.StatusOK && (json.NewDecoder(resp.Body).Decode(&page) != nil || page.Job.State == "") {
				t.Errorf("the link answers %d (job %+v), want %d", resp.StatusCode, page.Job, wantCode)
			}
		})
	}
}

func createSchedulerJob(ctx context.Context, t *testing.T, c *allclients.Clients, topic string) {
	t.Helper()
	_, err := c.Scheduler.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: "projects/" + emuProject + "/locations/" + emuRegion, Job: &schedulerpb.Job{
		Name: "projects/" + emuProject + "/locations/" + emuRegion + "/jobs/nightly", Schedule: "*/5 * * * *", TimeZone: "Etc/UTC",
		Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{TopicName: topic, Data: []byte(`{"workload":"nightly"}`)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// slackReceiver is a local Slack incoming webhook: it keeps the messages and answers "ok".
type slackReceiver struct {
	mu   sync.Mutex
	msgs []notify.SlackMessage
}

func (s *slackReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m notify.SlackMessage
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

func (s *slackReceiver) messages() []notify.SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notify.SlackMessage(nil), s.msgs...)
}

// emuMonitor is a monitor Handler on the emulator e, with a signed webhook channel owner-hook
// posting to hook, a Slack channel owner-slack posting to slack, and the inventory of one job
// workload, nightly.
func emuMonitor(ctx context.Context, t *testing.T, e *emulator.Emulator, clients *allclients.Clients, hook, slack string, clk *clock.ManualClock) *Handler {
	t.Helper()
	dir := t.TempDir()
	channels := filepath.Join(dir, "channels.yml")
	if err := os.WriteFile(channels, []byte("channels:\n  owner-hook:\n    type: webhook\n    url: "+hook+"\n    secret: {env: OWNER_HOOK_SECRET}\n"+
		"  owner-slack:\n    type: slack\n    webhook: {env: OWNER_SLACK_WEBHOOK}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("inventory.yml", []byte(`inventory:
  - name: nightly
    type: job
    project_id: 7
    gcp_project: `+emuProject+`
    regions: [`+emuRegion+`]
    artifact_repository: us-east1-docker.pkg.dev/`+emuProject+`/nightly
`))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{gcp.EmulatorHostEnv: e.Addr(), state.EnvVar: filepath.Join(dir, "state"), platform.EnvInventory: "inventory.yml",
		EnvChannels: channels, EnvIngestLag: "0s", "OWNER_HOOK_SECRET": "hook-secret", "OWNER_SLACK_WEBHOOK": slack}
	cfg, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(context.Background(), cfg.State, cfg.GCP)
	if err != nil {
		t.Fatal(err)
	}
	h, err := assemble(ctx, cfg, clients, store, inv, clk.Now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return h
}
