package main

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/google/go-cmp/cmp"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
)

const planManifest = `apiVersion: runway/v1
kind: RunwayJob
metadata:
  name: mover
  owner_email_handle: team
  department: eng-infra
  department_group: eng-infra-tenant-scale
  product_category: cells
spec:
  image: us-east1-docker.pkg.dev/proj-p/m/mover:v1
  args: ["--once"]
  schedule: "15 3 * * *"
`

// TestPlanPrintsDesiredPlan: plan prints desired's Plan of the world it reads — here a region
// move: the new home created, then the old region's scheduler and job deleted — and Cloud Run
// checks the job it would create (validate_only) without anything being written.
func TestPlanPrintsDesiredPlan(t *testing.T) {
	ctx := context.Background()
	emu := emulatortest.Start(t, emulator.Options{OpDelay: time.Millisecond})
	cl, err := allclients.Dial(ctx, emulatortest.Config(emu, "proj-p"), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	inv, err := inventory.Parse("inventory.yml", []byte(`inventory:
  - {name: mover, type: job, project_id: 1, gcp_project: proj-p, regions: [us-east1, europe-west1], artifact_repository: us-east1-docker.pkg.dev/proj-p/m}
`))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := inv.Lookup("mover")
	target := func(src string) *deployTarget {
		j, err := manifest.Parse(".runway/runway.yml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return &deployTarget{job: j, workload: w, request: platform.DeployRequest{RequestID: "r", Workload: "mover"}}
	}
	// The world: the workload deployed in us-east1, as deploy writes it.
	old := target(planManifest)
	p, err := desired.PlanFor(desired.RequestInput(old.job, w, &old.request, time.Now()), desired.Observed{Jobs: make([]*runpb.Job, 2), Schedulers: make([]*schedulerpb.Job, 2)})
	if err != nil {
		t.Fatal(err)
	}
	j := p.Want.Job
	j.Name = ""
	op, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/proj-p/locations/us-east1", JobId: "mover", Job: j})
	if err == nil {
		_, err = op.Wait(ctx)
	}
	if err == nil {
		_, err = cl.Scheduler.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: "projects/proj-p/locations/us-east1", Job: p.Want.Scheduler})
	}
	if err != nil {
		t.Fatal(err)
	}

	unchanged, err := plan(ctx, cl, old, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	home, eu := platform.JobName("proj-p", "us-east1", "mover"), platform.JobName("proj-p", "europe-west1", "mover")
	if d := cmp.Diff([]string{"Cloud Run job " + home + ": no change", "Scheduler job " + home + ": no change"}, unchanged); d != "" {
		t.Errorf("plan of the deployed manifest (-want +got):\n%s", d)
	}

	moved, err := plan(ctx, cl, target(planManifest+"  region: europe-west1\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Cloud Run job " + eu + ": create",
		"Scheduler job " + eu + ": create (15 3 * * *, Etc/UTC)",
		"Scheduler job " + home + ": delete (the workload moves to europe-west1)",
		"Cloud Run job " + home + ": delete (the workload moves to europe-west1)",
	}
	if d := cmp.Diff(want, moved); d != "" {
		t.Errorf("plan of a region move (-want +got):\n%s", d)
	}
	if _, err := cl.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: eu}); err == nil {
		t.Errorf("plan created %s", eu)
	}
	if _, err := cl.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: home}); err != nil {
		t.Errorf("plan changed %s: %v", home, err)
	}

}
