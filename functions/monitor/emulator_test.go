package monitor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/durationpb"

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

const (
	emuProject = "runway-emu-proj"
	emuRegion  = "us-east1"
)

// hookReceiver is a webhook endpoint that checks signatures and keeps the alerts.
type hookReceiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	got    []notify.Alert
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if want := notify.Sign(h.secret, r.Header.Get(notify.HeaderTimestamp), body); r.Header.Get(notify.HeaderSignature) != want {
		h.t.Errorf("bad signature %q", r.Header.Get(notify.HeaderSignature))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var a notify.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		h.t.Errorf("alert body: %v", err)
	}
	h.mu.Lock()
	h.got = append(h.got, a)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) alerts() []notify.Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.Alert(nil), h.got...)
}

// TestEmulatorFlow runs the real flow on the emulator, through the official clients: a
// scheduled job whose runs fail (started as the trigger starts them, with the RUNWAY_* env)
// produces one alert on the owner's webhook, and once fixed, one recovery; ticks repeated in
// between send nothing more.
func TestEmulatorFlow(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
	clk := clock.NewManual(start)
	e := emulatortest.Start(t, emulator.Options{Clock: clk, OpDelay: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	clients, err := allclients.Dial(ctx, emulatortest.Config(e, emuProject), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clients.Close() })

	recv := &hookReceiver{t: t, secret: []byte("hook-secret")}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	channels := filepath.Join(dir, "channels.yml")
	if err := os.WriteFile(channels, []byte("channels:\n  owner-hook:\n    type: webhook\n    url: "+srv.URL+"\n    secret: {env: OWNER_HOOK_SECRET}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join(dir, "inventory.yml")
	if err := os.WriteFile(invPath, []byte(`inventory:
  - name: nightly
    type: job
    project_id: 7
    gcp_project: `+emuProject+`
    regions: [`+emuRegion+`]
    artifact_repository: us-east1-docker.pkg.dev/`+emuProject+`/nightly
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		gcp.EmulatorHostEnv:   e.Addr(),
		state.EnvVar:          filepath.Join(dir, "state"),
		platform.EnvInventory: invPath,
		EnvChannels:           channels,
		EnvIngestLag:          "0s",
		"OWNER_HOOK_SECRET":   "hook-secret",
	}
	cfg, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(invPath)
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

	s := platform.Settings{Workload: "nightly", Schedule: "*/5 * * * *", ConcurrencyPolicy: "Forbid", CreatedAt: start.Add(-time.Hour),
		Timeout: time.Minute, MaxRetries: 0,
		Monitoring: platform.Monitoring{Enabled: true, Grace: time.Minute, ExpectedRuntime: time.Minute, FailureThreshold: 1, RecoveryThreshold: 1},
		Owner:      platform.Owner{EmailHandle: "nightly-owner"}, Channels: []string{"owner-hook"}}
	job := &runpb.Job{
		Labels:      map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "nightly"},
		Annotations: map[string]string{platform.AnnotationSettings: s.Encode()},
		Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{
			Containers: []*runpb.Container{{Image: "example/nightly", Command: []string{"sh", "-c", "exit 1"}}},
			Retries:    &runpb.TaskTemplate_MaxRetries{MaxRetries: 0}, Timeout: durationpb.New(time.Minute),
		}},
	}
	op, err := clients.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/" + emuProject + "/locations/" + emuRegion, JobId: "nightly", Job: job})
	if err != nil {
		t.Fatal(err)
	}
	created, err := op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}

	tick := func(at time.Time) {
		t.Helper()
		clk.Set(at)
		if _, err := h.tick(ctx); err != nil {
			t.Fatalf("tick at %s: %v", at, err)
		}
	}
	// runSlot starts the slot's execution as the trigger does and waits for it to end.
	runSlot := func(slot time.Time) string {
		t.Helper()
		clk.Set(slot.Add(time.Second))
		op, err := clients.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: created.GetName(), Overrides: &runpb.RunJobRequest_Overrides{
			ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Env: []*runpb.EnvVar{
				{Name: platform.EnvTrigger, Values: &runpb.EnvVar_Value{Value: platform.TriggerSchedule}},
				{Name: platform.EnvRequestID, Values: &runpb.EnvVar_Value{Value: platform.SlotRecordKey("nightly", slot)}},
				{Name: platform.EnvScheduledTime, Values: &runpb.EnvVar_Value{Value: slot.Format(time.RFC3339)}},
			}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		md, _ := op.Metadata()
		_, _ = op.Wait(ctx) // a failed execution fails the operation
		return md.GetName()
	}
	slot1, slot2 := start.Truncate(time.Minute).Add(5*time.Minute), start.Truncate(time.Minute).Add(10*time.Minute)

	tick(start) // starts watching
	failed := runSlot(slot1)
	tick(slot1.Add(2*time.Minute + 30*time.Second))
	tick(slot1.Add(2*time.Minute + 45*time.Second)) // a duplicate: nothing more
	got := recv.alerts()
	if len(got) != 1 || got[0].Kind != notify.KindFailed || got[0].Action != notify.ActionOpen || got[0].Execution != failed ||
		got[0].Owner != "nightly-owner" || got[0].Job != created.GetName() || !strings.HasPrefix(got[0].LogURL, "http://") {
		t.Fatalf("after a failed run, alerts = %+v; want one failed/open for %s", got, failed)
	}

	// The fix: the job now succeeds.
	job, err = clients.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: created.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	job.Template.Template.Containers[0].Command = []string{"sh", "-c", "exit 0"}
	uop, err := clients.Jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: job})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uop.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	fixed := runSlot(slot2)
	tick(slot2.Add(2*time.Minute + 30*time.Second))
	tick(slot2.Add(20 * time.Minute)) // slots 10:15 and 10:20 passed without runs: both missed, one incident
	got = recv.alerts()
	if len(got) < 2 || got[1].Kind != notify.KindRecovered || got[1].Action != notify.ActionResolve || got[1].Execution != fixed ||
		got[1].IncidentKey != got[0].IncidentKey || got[1].Duration <= 0 {
		t.Fatalf("after the fix, alerts = %+v; want the recovery of %s second", got, fixed)
	}
	if len(got) != 3 || got[2].Kind != notify.KindMissed || !got[2].Slot.Equal(slot2.Add(5*time.Minute)) {
		t.Fatalf("after two slots without runs, alerts = %+v; want one missed/open for %s third", got, slot2.Add(5*time.Minute))
	}
}

// TestSlotOwnerIsTheHome: of the copies a region move left, the monitor expects the
// schedule's slots of the one the trigger runs (desired.Place: the latest placement), and
// watches the other for its executions only.
func TestSlotOwnerIsTheHome(t *testing.T) {
	const other = "europe-west1"
	tests := []struct {
		name       string
		placements map[string]string // region → AnnotationPlacement
		wantOwner  string
	}{
		{name: "moved to the second region", placements: map[string]string{emuRegion: "1", other: "2"}, wantOwner: other},
		{name: "uncounted copies: the first region", placements: map[string]string{}, wantOwner: emuRegion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := emulatortest.Start(t, emulator.Options{OpDelay: time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			clients, err := allclients.Dial(ctx, emulatortest.Config(e, emuProject), gcp.All)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { clients.Close() })
			inv, err := inventory.Parse("inventory.yml", []byte(`inventory:
  - name: nightly
    type: job
    project_id: 7
    gcp_project: `+emuProject+`
    regions: [`+emuRegion+`, `+other+`]
    artifact_repository: us-east1-docker.pkg.dev/`+emuProject+`/nightly
`))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			env := map[string]string{gcp.EmulatorHostEnv: e.Addr(), state.EnvVar: filepath.Join(dir, "state"), EnvIngestLag: "0s", platform.EnvInventory: "inventory.yml"}
			cfg, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			store, err := state.Open(context.Background(), cfg.State, cfg.GCP)
			if err != nil {
				t.Fatal(err)
			}
			h, err := assemble(ctx, cfg, clients, store, inv, time.Now, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			s := platform.Settings{Workload: "nightly", Schedule: "*/5 * * * *", ConcurrencyPolicy: "Forbid", Monitoring: platform.Monitoring{Enabled: true}}
			for _, region := range []string{emuRegion, other} {
				ann := map[string]string{platform.AnnotationSettings: s.Encode()}
				if p := tt.placements[region]; p != "" {
					ann[platform.AnnotationPlacement] = p
				}
				op, err := clients.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/" + emuProject + "/locations/" + region, JobId: "nightly", Job: &runpb.Job{
					Labels:      map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "nightly"},
					Annotations: ann,
					Template:    &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{Image: "example/nightly"}}}},
				}})
				if err == nil {
					_, err = op.Wait(ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			obs, err := h.observeJobs(ctx, projectsOf(inv)[0])
			if err != nil {
				t.Fatal(err)
			}
			var owners []string
			for _, o := range obs {
				if o.Job.SlotOwner {
					owners = append(owners, o.Job.Key.Location)
				}
			}
			if len(obs) != 2 || len(owners) != 1 || owners[0] != tt.wantOwner {
				t.Errorf("%d jobs observed, slot owners %v; want both observed and %s the only owner", len(obs), owners, tt.wantOwner)
			}
		})
	}
}
