package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"

	"runwayjobs.dev/shared/emulator"
	emuclock "runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

const statusInventory = `inventory:
  - {name: cron-a, type: job, project_id: 1, gcp_project: proj-s, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/proj-s/a}
  - {name: never, type: job, project_id: 1, gcp_project: proj-s, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/proj-s/n}
`

// TestStatusAndLogs builds the world with the official clients (a Runway-managed job, one
// scheduled and one failed manual execution, a skipped slot in the store), then reads it back
// through status and logs. The emulator runs on a manual clock two hours ahead of the host's
// (the test's fixed clock): status's next runs are the platform's.
func TestStatusAndLogs(t *testing.T) {
	ctx := context.Background()
	platformClock := emuclock.NewManual(clock.Add(2 * time.Hour))
	emu := emulatortest.Start(t, emulator.Options{OpDelay: time.Millisecond, Clock: platformClock})
	cl, err := allclients.Dial(ctx, emulatortest.Config(emu, "proj-s"), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yml")
	os.WriteFile(inv, []byte(statusInventory), 0o644)
	store, _ := state.NewDir(filepath.Join(dir, "state"))
	t.Setenv(gcp.EmulatorHostEnv, emu.Addr())
	t.Setenv(state.EnvVar, store.Root())
	t.Setenv(platform.EnvInventory, inv)

	settings := platform.Settings{Workload: "cron-a", Schedule: "*/5 * * * *", TimeZone: "Etc/UTC", ConcurrencyPolicy: "Forbid"}
	op, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/proj-s/locations/us-east1", JobId: "cron-a", Job: &runpb.Job{
		Labels:      map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "cron-a"},
		Annotations: map[string]string{platform.AnnotationSettings: settings.Encode()},
		Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{
			Image: "us-east1-docker.pkg.dev/proj-s/a/a:v1", Command: []string{"sh", "-c", `echo "ran $RUNWAY_TRIGGER"; exit ${CODE:-0}`},
		}}, Retries: &runpb.TaskTemplate_MaxRetries{MaxRetries: 0}}},
	}})
	if err == nil {
		_, err = op.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	run := func(env map[string]string) {
		var ev []*runpb.EnvVar
		for k, v := range env {
			ev = append(ev, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: v}})
		}
		op, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: "projects/proj-s/locations/us-east1/jobs/cron-a",
			Overrides: &runpb.RunJobRequest_Overrides{ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Env: ev}}}})
		if err == nil {
			_, err = op.Wait(ctx)
		}
		if err != nil && !strings.Contains(err.Error(), "failed") {
			t.Fatalf("RunJob: %v", err)
		}
	}
	run(map[string]string{platform.EnvTrigger: platform.TriggerSchedule, platform.EnvScheduledTime: "2026-11-26T15:55:00Z"})
	platformClock.Advance(time.Minute) // distinct creation times, so the order is known
	run(map[string]string{platform.EnvTrigger: platform.TriggerManual, "CODE": "3"})
	rec, _ := json.Marshal(platform.RunRecord{Workload: "cron-a", Trigger: platform.TriggerSchedule, Outcome: platform.RunSkipped,
		Reason: "previous run still active", ScheduledTime: time.Date(2026, 11, 26, 15, 50, 0, 0, time.UTC)})
	store.Put(ctx, platform.SlotRecordKey("cron-a", time.Date(2026, 11, 26, 15, 50, 0, 0, time.UTC)), rec, 0)

	stdout, stderr, code := execute(t, "status", "cron-a")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"schedule   Every 5 minutes, every day (*/5 * * * *, Etc/UTC)",
		"next       2026-11-26T18:05:00Z, 2026-11-26T18:10:00Z, 2026-11-26T18:15:00Z",
		"schedule 2026-11-26T15:55:00Z  succeeded",
		"manual                         failed",
		"slot 2026-11-26T15:50:00Z  skipped: previous run still active",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, stdout)
		}
	}
	if i, j := strings.Index(stdout, "manual "), strings.Index(stdout, "schedule 2026"); i < 0 || j < 0 || i > j {
		t.Errorf("executions are not newest first:\n%s", stdout)
	}

	stdout, _, code = execute(t, "status", "--format", "json")
	var all []workloadStatus
	if err := json.Unmarshal([]byte(stdout), &all); err != nil || code != 0 {
		t.Fatalf("status --format json: %v, exit %d:\n%s", err, code, stdout)
	}
	if len(all) != 2 || !all[0].Deployed || len(all[0].Executions) != 2 || all[1].Deployed || all[1].Workload != "never" {
		t.Errorf("status of every workload = %+v", all)
	}

	stdout, stderr, code = execute(t, "logs", "cron-a")
	if code != 0 || !strings.Contains(stdout, "ran manual") {
		t.Errorf("logs: exit %d, stdout %q, stderr %q; want the latest execution's output", code, stdout, stderr)
	}
	_, stderr, code = execute(t, "logs", "never")
	if code != 2 || !strings.Contains(stderr, "never is not deployed") {
		t.Errorf("logs of an undeployed job: exit %d, %q", code, stderr)
	}
}
