package deploy

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/platform"
)

const nightlyManifest = `apiVersion: runway/v1
kind: RunwayJob
metadata:
  name: nightly
  owner_email_handle: team
  department: eng-infra
  department_group: eng-infra-tenant-scale
  product_category: cells
spec:
  image: ` + repo + `/nightly:v1
  command: ["/bin/compact"]
  args: ["--vacuum"]
  env:
    LOG_FORMAT: json
  schedule: "15 3 * * *"
  timeout: 2h
`

const migrateManifest = `apiVersion: runway/v1
kind: RunwayJob
metadata:
  name: migrate
  owner_email_handle: team
  department: eng-infra
  department_group: eng-infra-tenant-scale
  product_category: cells
spec:
  command: ["/bin/migrate"]
  args: ["up"]
`

var movingManifest = edit(nightlyManifest, "name: nightly", "name: moving")

// countNoChange counts the printed lines of resources a plan leaves alone.
func countNoChange(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.HasSuffix(l, ": no change") || strings.HasSuffix(l, ": none (on demand only)") {
			n++
		}
	}
	return n
}

func apply(id, workload, content string, pipeline int64) platform.DeployRequest {
	return platform.DeployRequest{RequestID: id, Workload: workload, Manifest: platform.File{Path: ".runway/runway.yml", Content: content},
		Source: platform.Source{CommitSHA: "abc123", PipelineID: pipeline, PipelineURL: "https://gitlab.example/p/-/pipelines/1", Ref: "main"}}
}

func withImage(r platform.DeployRequest, image string) platform.DeployRequest {
	r.Image = image
	return r
}

func edit(s, old, new string) string { return strings.Replace(s, old, new, 1) }

// TestReconcile is the knative-style table: the world before (built by earlier requests, or
// directly with the official clients), one request, the writes expected. Every row runs twice:
// the second delivery must write nothing.
func TestReconcile(t *testing.T) {
	tests := []struct {
		name        string
		before      []platform.DeployRequest // applied first, through the handler
		unmanaged   bool                     // a Cloud Run job "nightly" exists that Runway does not manage
		foreign     string                   // a Cloud Run job of this workload exists in us-east1 that Runway does not manage
		topic       string                   // the workload whose deploy topic the request arrives on
		req         platform.DeployRequest
		wantWrites  []string
		wantOutcome string
		wantProblem string // a substring of the recorded problems
		check       func(t *testing.T, e *testEnv)
	}{
		{
			name:        "scheduled job from nothing",
			topic:       "nightly",
			req:         apply("r1", "nightly", nightlyManifest, 10),
			wantWrites:  []string{"run.CreateJob nightly", "scheduler.CreateJob nightly"},
			wantOutcome: platform.DeployApplied,
			check: func(t *testing.T, e *testEnv) {
				j := e.getJob(t, "nightly")
				c := j.Template.Template.Containers[0]
				if c.Image != repo+"/nightly:v1" || c.Args[0] != "--vacuum" || j.Template.Template.ServiceAccount != "crun-nightly@runway-test.iam.gserviceaccount.com" {
					t.Errorf("job = %v", j)
				}
				if j.Labels[platform.LabelManagedBy] != "runway" || j.Annotations[platform.AnnotationPipelineID] != "10" || j.Annotations[platform.AnnotationImageTag] != repo+"/nightly:v1" {
					t.Errorf("labels %v annotations %v", j.Labels, j.Annotations)
				}
				s, err := platform.SettingsOf(j.Annotations)
				if err != nil || s.Schedule != "15 3 * * *" || s.ConcurrencyPolicy != "Forbid" || s.Channels[0] != "slack-team" {
					t.Errorf("settings = %+v, %v", s, err)
				}
				sj, err := e.cl.Scheduler.GetJob(context.Background(), &schedulerpb.GetJobRequest{Name: platform.JobName(project, region, "nightly")})
				if err != nil || sj.Schedule != "15 3 * * *" || sj.TimeZone != "Etc/UTC" || sj.GetPubsubTarget().TopicName != platform.TopicPath(project, "runway-trigger-nightly") ||
					sj.GetPubsubTarget().Attributes[platform.AttrKind] != platform.KindScheduled || sj.State != schedulerpb.Job_ENABLED {
					t.Errorf("scheduler job = %v, %v", sj, err)
				}
			},
		},
		{
			name:        "on-demand job with the image from CI",
			topic:       "migrate",
			req:         withImage(apply("r1", "migrate", migrateManifest, 10), repo+"/migrate@sha256:"+strings.Repeat("a", 64)),
			wantWrites:  []string{"run.CreateJob migrate"},
			wantOutcome: platform.DeployApplied,
		},
		{
			name:        "suspended schedule is paused",
			topic:       "nightly",
			req:         apply("r1", "nightly", nightlyManifest+"  suspend: true\n", 10),
			wantWrites:  []string{"run.CreateJob nightly", "scheduler.CreateJob nightly", "scheduler.PauseJob nightly"},
			wantOutcome: platform.DeployApplied,
		},
		{
			name:        "changed args update only the Cloud Run job",
			before:      []platform.DeployRequest{apply("r0", "nightly", nightlyManifest, 10)},
			topic:       "nightly",
			req:         apply("r1", "nightly", edit(nightlyManifest, "--vacuum", "--full"), 11),
			wantWrites:  []string{"run.UpdateJob nightly"},
			wantOutcome: platform.DeployApplied,
			check: func(t *testing.T, e *testEnv) {
				if got := e.record(t, "nightly", "r1").Changes; len(got) != 1 || !strings.Contains(got[0], "args") {
					t.Errorf("changes = %v, want args named", got)
				}
			},
		},
		{
			name:        "changed schedule updates the scheduler job with a field mask",
			before:      []platform.DeployRequest{apply("r0", "nightly", nightlyManifest, 10)},
			topic:       "nightly",
			req:         apply("r1", "nightly", edit(nightlyManifest, "15 3 * * *", "@hourly"), 11),
			wantWrites:  []string{"run.UpdateJob nightly", "scheduler.UpdateJob nightly"},
			wantOutcome: platform.DeployApplied,
		},
		{
			name:        "removed schedule deletes the scheduler job",
			before:      []platform.DeployRequest{apply("r0", "nightly", nightlyManifest, 10)},
			topic:       "nightly",
			req:         apply("r1", "nightly", edit(nightlyManifest, "  schedule: \"15 3 * * *\"\n", ""), 11),
			wantWrites:  []string{"run.UpdateJob nightly", "scheduler.DeleteJob nightly"},
			wantOutcome: platform.DeployApplied,
		},
		{
			name:        "resumed after suspend",
			before:      []platform.DeployRequest{apply("r0", "nightly", nightlyManifest+"  suspend: true\n", 10)},
			topic:       "nightly",
			req:         apply("r1", "nightly", nightlyManifest, 11),
			wantWrites:  []string{"run.UpdateJob nightly", "scheduler.ResumeJob nightly"},
			wantOutcome: platform.DeployApplied,
		},
		{
			name:        "a new pipeline with the same manifest records its source",
			before:      []platform.DeployRequest{apply("r0", "nightly", nightlyManifest, 10)},
			topic:       "nightly",
			req:         apply("r1", "nightly", nightlyManifest, 11),
			wantWrites:  []string{"run.UpdateJob nightly"},
			wantOutcome: platform.DeployApplied,
		},
		{
			name:        "the same pipeline again writes nothing",
			before:      []platform.DeployRequest{apply("r0", "nightly", nightlyManifest, 10)},
			topic:       "nightly",
			req:         apply("r1", "nightly", nightlyManifest, 10),
			wantOutcome: platform.DeployUnchanged,
		},
		{
			name:        "an older pipeline never rolls back",
			before:      []platform.DeployRequest{apply("r0", "nightly", edit(nightlyManifest, "--vacuum", "--new"), 12)},
			topic:       "nightly",
			req:         apply("r1", "nightly", nightlyManifest, 11),
			wantOutcome: platform.DeployStale,
			check: func(t *testing.T, e *testEnv) {
				if a := e.getJob(t, "nightly").Template.Template.Containers[0].Args[0]; a != "--new" {
					t.Errorf("args[0] = %q, want the newer pipeline's --new", a)
				}
			},
		},
		{
			name:   "a region move applies the new home, then deletes the old region's scheduler and job",
			before: []platform.DeployRequest{apply("r0", "moving", movingManifest, 10)},
			topic:  "moving",
			req:    apply("r1", "moving", movingManifest+"  region: "+otherRegion+"\n", 11),
			wantWrites: []string{"run.CreateJob moving", "scheduler.CreateJob moving",
				"scheduler.DeleteJob moving", "run.DeleteJob moving"},
			wantOutcome: platform.DeployApplied,
			check: func(t *testing.T, e *testEnv) {
				ctx := context.Background()
				w, _ := e.inv.Lookup("moving")
				for _, r := range w.Regions {
					name := platform.JobName(project, r, "moving")
					_, jerr := e.cl.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
					_, serr := e.cl.Scheduler.GetJob(ctx, &schedulerpb.GetJobRequest{Name: name})
					if exists := r == otherRegion; (jerr == nil) != exists || (serr == nil) != exists {
						t.Errorf("%s: job %v, scheduler %v; want them only in %s", r, jerr, serr, otherRegion)
					}
				}
				if p, err := desired.Locate(ctx, e.cl.Jobs, w); err != nil || p.Home == nil || desired.RegionOf(p.Home.Name) != otherRegion || len(p.Strays) != 0 {
					t.Errorf("Locate = %+v, %v; want the home in %s and no stray", p, err, otherRegion)
				}
				if got := e.record(t, "moving", "r1").Changes; !slices.Contains(got, "job: deleted "+platform.JobName(project, region, "moving")+" (moved to "+otherRegion+")") {
					t.Errorf("changes = %q, want the old job's deletion named", got)
				}
			},
		},
		{
			name:        "a region move leaves a job Runway does not manage alone",
			foreign:     "moving",
			topic:       "moving",
			req:         apply("r1", "moving", movingManifest+"  region: "+otherRegion+"\n", 11),
			wantWrites:  []string{"run.CreateJob moving", "scheduler.CreateJob moving"},
			wantOutcome: platform.DeployApplied,
			check: func(t *testing.T, e *testEnv) {
				if img := e.getJob(t, "moving").Template.Template.Containers[0].Image; img != "hand-made" {
					t.Errorf("the unmanaged job was changed: image %q", img)
				}
				w, _ := e.inv.Lookup("moving")
				if p, err := desired.Locate(context.Background(), e.cl.Jobs, w); err != nil || p.Home == nil || desired.RegionOf(p.Home.Name) != otherRegion || len(p.Foreign) != 1 {
					t.Errorf("Locate = %+v, %v; want the home in %s and the foreign job apart", p, err, otherRegion)
				}
			},
		},
		{
			name:        "delete removes the scheduler job, then the Cloud Run job",
			before:      []platform.DeployRequest{apply("r0", "nightly", nightlyManifest, 10)},
			topic:       "nightly",
			req:         platform.DeployRequest{RequestID: "r1", Workload: "nightly", Action: platform.ActionDelete},
			wantWrites:  []string{"scheduler.DeleteJob nightly", "run.DeleteJob nightly"},
			wantOutcome: platform.DeployDeleted,
		},
		{
			name:        "invalid manifest is refused with its position",
			topic:       "nightly",
			req:         apply("r1", "nightly", edit(nightlyManifest, "timeout: 2h", "timeout: 2h\n  schedul: x"), 10),
			wantOutcome: platform.DeployRefused,
			wantProblem: `.runway/runway.yml:17:3: unknown field "spec.schedul"; did you mean "schedule"?`,
		},
		{
			name:        "a body naming another workload is refused",
			topic:       "nightly",
			req:         apply("r1", "migrate", migrateManifest, 10),
			wantOutcome: platform.DeployRefused,
			wantProblem: `request names workload "migrate" but arrived on the deploy topic of "nightly"`,
		},
		{
			name:        "a manifest for another workload is refused",
			topic:       "migrate",
			req:         apply("r1", "", nightlyManifest, 10),
			wantOutcome: platform.DeployRefused,
			wantProblem: `metadata.name is "nightly", but the request is for workload "migrate"`,
		},
		{
			name:        "an image from another repository is refused",
			topic:       "migrate",
			req:         withImage(apply("r1", "migrate", migrateManifest, 10), "docker.io/evil/migrate:latest"),
			wantOutcome: platform.DeployRefused,
			wantProblem: "is not in the workload's artifact repository",
		},
		{
			name:        "a service workload is refused",
			topic:       "svc",
			req:         apply("r1", "svc", edit(migrateManifest, "name: migrate", "name: svc"), 10),
			wantOutcome: platform.DeployRefused,
			wantProblem: `workload "svc" is a service, not a job`,
		},
		{
			name:        "an unknown workload is refused",
			topic:       "ghost",
			req:         apply("r1", "ghost", migrateManifest, 10),
			wantOutcome: platform.DeployRefused,
			wantProblem: `workload "ghost" is not in the inventory`,
		},
		{
			name:        "no image anywhere is refused",
			topic:       "migrate",
			req:         apply("r1", "migrate", migrateManifest, 10),
			wantOutcome: platform.DeployRefused,
			wantProblem: "no image",
		},
		{
			name:        "a job Runway does not manage is left alone",
			unmanaged:   true,
			topic:       "nightly",
			req:         apply("r1", "nightly", nightlyManifest, 10),
			wantOutcome: platform.DeployRefused,
			wantProblem: "is not managed by Runway",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if tt.unmanaged {
				tt.foreign = "nightly"
			}
			if tt.foreign != "" {
				op, err := e.cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/" + project + "/locations/" + region, JobId: tt.foreign,
					Job: &runpb.Job{Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{Image: "hand-made"}}}}}})
				if err == nil {
					_, err = op.Wait(ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range tt.before {
				if err := e.h.Handle(ctx, requestEvent(t, b.Workload, b)); err != nil {
					t.Fatalf("before %s: %v", b.RequestID, err)
				}
			}
			e.writes.take()
			// What runwayctl plan prints for the request, before deploy executes it.
			planned, planErr := e.plan(t, tt.topic, tt.req)
			for run := 1; run <= 2; run++ {
				err := e.h.Handle(ctx, requestEvent(t, tt.topic, tt.req))
				if tt.wantOutcome == platform.DeployRefused {
					if !event.IsPermanent(err) {
						t.Fatalf("run %d: Handle = %v, want a permanent error", run, err)
					}
				} else if err != nil {
					t.Fatalf("run %d: Handle = %v", run, err)
				}
				writes, _ := e.writes.take()
				want := tt.wantWrites
				if run == 2 {
					want = nil
				}
				if d := cmp.Diff(want, writes); d != "" {
					t.Errorf("run %d writes (-want +got):\n%s", run, d)
				}
				if run == 1 && planned != nil {
					if d := cmp.Diff(writesOf(planned), writes); d != "" {
						t.Errorf("the plan is not what deploy wrote (-plan +written):\n%s", d)
					}
				}
			}
			rec := e.record(t, tt.topic, tt.req.RequestID)
			switch {
			case planErr != nil:
				if rec.Outcome != platform.DeployRefused || !strings.Contains(strings.Join(rec.Problems, "\n"), planErr.Error()) {
					t.Errorf("plan refused with %v, deploy recorded %s %q", planErr, rec.Outcome, rec.Problems)
				}
			case planned != nil:
				if d := cmp.Diff(planned.Changes(), rec.Changes, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("the plan's changes are not the record's (-plan +record):\n%s", d)
				}
				printed := planned.Lines()
				for _, s := range planned.Steps {
					if !slices.Contains(printed, s.Line(planned.Want)) {
						t.Errorf("plan prints %q, without the write %q", printed, s.Line(planned.Want))
					}
				}
				if n := len(printed) - countNoChange(printed); n != len(rec.Changes) && rec.Outcome != platform.DeployStale {
					t.Errorf("plan prints %d writes %q, deploy made %d %q", n, printed, len(rec.Changes), rec.Changes)
				}
			}
			if planned == nil && planErr == nil && tt.wantOutcome != platform.DeployRefused && tt.req.Action != platform.ActionDelete {
				t.Errorf("no plan for a request deploy applies")
			}
			if rec.Outcome != tt.wantOutcome {
				t.Errorf("outcome = %q (%v %v), want %q", rec.Outcome, rec.Changes, rec.Problems, tt.wantOutcome)
			}
			if tt.wantProblem != "" && !strings.Contains(strings.Join(rec.Problems, "\n"), tt.wantProblem) {
				t.Errorf("problems = %q, want one containing %q", rec.Problems, tt.wantProblem)
			}
			if tt.unmanaged {
				if img := e.getJob(t, "nightly").Template.Template.Containers[0].Image; img != "hand-made" {
					t.Errorf("the unmanaged job was changed: image %q", img)
				}
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

// TestArtifactPush: a push of the tag the manifest names moves the job to the pushed digest;
// other tags, other images, DELETE actions and payloads without a digest change nothing.
func TestArtifactPush(t *testing.T) {
	digest := repo + "/nightly@sha256:" + strings.Repeat("b", 64)
	tests := []struct {
		name       string
		push       ArtifactPush
		wantWrites []string
		wantImage  string
	}{
		{name: "tracked tag", push: ArtifactPush{Action: "INSERT", Digest: digest, Tag: repo + "/nightly:v1"}, wantWrites: []string{"run.UpdateJob nightly"}, wantImage: digest},
		{name: "other tag", push: ArtifactPush{Action: "INSERT", Digest: digest, Tag: repo + "/nightly:v2"}},
		{name: "other image", push: ArtifactPush{Action: "INSERT", Digest: repo + "/other@sha256:" + strings.Repeat("c", 64), Tag: repo + "/other:v1"}},
		{name: "delete", push: ArtifactPush{Action: "DELETE", Tag: repo + "/nightly:v1"}},
		{name: "untagged push", push: ArtifactPush{Action: "INSERT", Digest: digest}},
		{name: "no digest", push: ArtifactPush{Action: "INSERT", Tag: repo + "/nightly:v1"}},
		{name: "digest of another image", push: ArtifactPush{Action: "INSERT", Digest: repo + "/other@sha256:" + strings.Repeat("c", 64), Tag: repo + "/nightly:v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if err := e.h.Handle(ctx, requestEvent(t, "nightly", apply("r0", "nightly", nightlyManifest, 10))); err != nil {
				t.Fatal(err)
			}
			e.writes.take()
			body, _ := json.Marshal(tt.push)
			for run := 1; run <= 2; run++ {
				if err := e.h.Handle(ctx, pubsubEvent(t, "push-1", platform.ArtifactTopic, body)); err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				writes, _ := e.writes.take()
				want := tt.wantWrites
				if run == 2 {
					want = nil
				}
				if d := cmp.Diff(want, writes); d != "" {
					t.Errorf("run %d writes (-want +got):\n%s", run, d)
				}
			}
			wantImage := tt.wantImage
			if wantImage == "" {
				wantImage = repo + "/nightly:v1"
			}
			if got := e.getJob(t, "nightly").Template.Template.Containers[0].Image; got != wantImage {
				t.Errorf("image = %q, want %q", got, wantImage)
			}
			// A later deploy of the same manifest keeps the tag: the pushed digest is replaced
			// only by what the manifest or CI names.
		})
	}
}

// TestRedeliveryCost: a redelivered request makes no write and at most 2 reads.
func TestRedeliveryCost(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ev := requestEvent(t, "nightly", apply("r1", "nightly", nightlyManifest, 10))
	if err := e.h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	e.writes.take()
	if err := e.h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	writes, reads := e.writes.take()
	if len(writes) != 0 || reads > 2 {
		t.Fatalf("redelivery: %d writes %v, %d reads; want 0 writes, at most 2 reads", len(writes), writes, reads)
	}
}

// TestRacingRequests: requests of two pipelines racing on one workload converge on the newer
// one, whatever the interleaving (etag conflicts are re-read and retried).
func TestRacingRequests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			pipeline := int64(10 + i%2)
			arg := "--old"
			if pipeline == 11 {
				arg = "--new"
			}
			req := apply("r"+string(rune('a'+i)), "nightly", edit(nightlyManifest, "--vacuum", arg), pipeline)
			errs <- e.h.Handle(ctx, requestEvent(t, "nightly", req))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !strings.Contains(err.Error(), "Aborted") && !strings.Contains(err.Error(), "AlreadyExists") {
			t.Errorf("Handle = %v", err)
		}
	}
	// Redeliver everything once more, as Pub/Sub would for any that failed.
	for i := range 8 {
		pipeline := int64(10 + i%2)
		arg := "--old"
		if pipeline == 11 {
			arg = "--new"
		}
		if err := e.h.Handle(ctx, requestEvent(t, "nightly", apply("r"+string(rune('a'+i)), "nightly", edit(nightlyManifest, "--vacuum", arg), pipeline))); err != nil {
			t.Fatalf("redelivery %d: %v", i, err)
		}
	}
	j := e.getJob(t, "nightly")
	if a := j.Template.Template.Containers[0].Args[0]; a != "--new" || j.Annotations[platform.AnnotationPipelineID] != "11" {
		t.Fatalf("args[0] = %q pipeline %s, want --new from pipeline 11", a, j.Annotations[platform.AnnotationPipelineID])
	}
}

// TestFaults: with the emulator failing Cloud Run and Scheduler writes half of the time, the
// function returns transient errors until redelivery converges; nothing is half-applied in
// the end and the record says applied.
func TestFaults(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	setFault(t, e, `{"method":"*","code":14,"rate":0.5}`)
	ev := requestEvent(t, "nightly", apply("r1", "nightly", nightlyManifest, 10))
	var err error
	attempts := 0
	for attempts = 1; attempts <= 50; attempts++ {
		if err = e.h.Handle(ctx, ev); err == nil {
			break
		}
		if event.IsPermanent(err) {
			t.Fatalf("attempt %d: a transient fault was classified permanent: %v", attempts, err)
		}
	}
	if err != nil {
		t.Fatalf("no convergence after %d deliveries: %v", attempts, err)
	}
	clearFaults(t, e)
	e.writes.take()
	if err := e.h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if writes, _ := e.writes.take(); len(writes) != 0 {
		t.Fatalf("after convergence a redelivery wrote %v", writes)
	}
	if _, err := e.cl.Scheduler.GetJob(ctx, &schedulerpb.GetJobRequest{Name: platform.JobName(project, region, "nightly")}); err != nil {
		t.Fatalf("scheduler job: %v", err)
	}
	if rec := e.record(t, "nightly", "r1"); rec.Outcome != platform.DeployApplied {
		t.Fatalf("record = %+v", rec)
	}
	t.Logf("converged after %d deliveries", attempts)
}

func setFault(t *testing.T, e *testEnv, rule string) {
	t.Helper()
	resp, err := http.Post("http://"+e.emu.Addr()+"/emulator/v1/faults", "application/json", strings.NewReader(rule))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST faults: %s", resp.Status)
	}
}

func clearFaults(t *testing.T, e *testEnv) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+e.emu.Addr()+"/emulator/v1/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestServedByFramework drives the registered function through the functions framework, as
// Eventarc does: a malformed event is acknowledged (2xx), never retried forever.
func TestServedByFramework(t *testing.T) {
	t.Setenv(platform.EnvInventory, "")
	url := serve(t)
	body := `{"message":{"data":"e30=","messageId":"1","publishTime":"2026-11-26T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", "1")
	req.Header.Set("ce-type", "google.cloud.pubsub.topic.v1.messagePublished")
	req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/p/topics/t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Without RUNWAY_INVENTORY the function is misconfigured: it must keep the message (500)
	// rather than acknowledge work it did not do.
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500 while misconfigured", resp.StatusCode)
	}
}

// TestLostResponses: a write that succeeds but whose response is lost (the emulator's
// lose_response fault), or whose operation cannot be polled, is a change this request made:
// the redelivery (or the re-read of the job) records it as applied, with what was written,
// never as "unchanged", and nothing is written twice.
func TestLostResponses(t *testing.T) {
	tests := []struct {
		name        string
		before      *platform.DeployRequest
		fault       string
		req         platform.DeployRequest
		wantChanges []string // each must be in the record
		wantWrites  int      // calls to the faulty method, over every delivery
		method      string
		deliveries  int // how many deliveries it takes; 0: any
	}{
		{
			name:        "Cloud Run CreateJob lost",
			fault:       `{"method":"/google.cloud.run.v2.Jobs/CreateJob","code":4,"lose_response":true,"times":1}`,
			req:         apply("r1", "nightly", nightlyManifest, 10),
			wantChanges: []string{"job: created", "schedule: created"},
			method:      "run.CreateJob nightly", wantWrites: 1,
		},
		{
			name:        "the create operation cannot be polled",
			fault:       `{"method":"/google.longrunning.Operations/GetOperation","code":4}`,
			req:         apply("r1", "nightly", nightlyManifest, 10),
			wantChanges: []string{"job: created", "schedule: created"},
			method:      "run.CreateJob nightly", wantWrites: 1,
			deliveries: 1, // the job is read again: no redelivery needed
		},
		{
			name:        "Cloud Run UpdateJob lost",
			before:      &platform.DeployRequest{},
			fault:       `{"method":"/google.cloud.run.v2.Jobs/UpdateJob","code":14,"lose_response":true,"times":1}`,
			req:         apply("r1", "nightly", edit(nightlyManifest, "--vacuum", "--full"), 11),
			wantChanges: []string{"job: updated annotations.manifest-hash, annotations.pipeline-id, args"},
			method:      "run.UpdateJob nightly", wantWrites: 1,
		},
		{
			name:        "Cloud Scheduler CreateJob lost",
			fault:       `{"method":"/google.cloud.scheduler.v1.CloudScheduler/CreateJob","code":4,"lose_response":true,"times":1}`,
			req:         apply("r1", "nightly", nightlyManifest, 10),
			wantChanges: []string{"job: created", "schedule: created"},
			method:      "scheduler.CreateJob nightly", wantWrites: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if tt.before != nil {
				if err := e.h.Handle(ctx, requestEvent(t, "nightly", apply("r0", "nightly", nightlyManifest, 10))); err != nil {
					t.Fatal(err)
				}
			}
			e.writes.take()
			setFault(t, e, tt.fault)
			ev := requestEvent(t, "nightly", tt.req)
			var all []string
			var err error
			attempt := 1
			for ; attempt <= 5; attempt++ {
				err = e.h.Handle(ctx, ev)
				w, _ := e.writes.take()
				all = append(all, w...)
				if err == nil {
					break
				}
				if event.IsPermanent(err) {
					t.Fatalf("attempt %d: permanent %v", attempt, err)
				}
			}
			if err != nil {
				t.Fatalf("no convergence: %v", err)
			}
			if tt.deliveries != 0 && attempt != tt.deliveries {
				t.Errorf("converged after %d deliveries, want %d", attempt, tt.deliveries)
			}
			if n := count(all, tt.method); n != tt.wantWrites {
				t.Errorf("%s written %d times (%v), want %d", tt.method, n, all, tt.wantWrites)
			}
			rec := e.record(t, "nightly", "r1")
			if rec.Outcome != platform.DeployApplied {
				t.Errorf("outcome = %s %q, want applied", rec.Outcome, rec.Changes)
			}
			for _, c := range tt.wantChanges {
				if !slices.Contains(rec.Changes, c) {
					t.Errorf("changes = %q, want %q among them", rec.Changes, c)
				}
			}
			if _, err := e.store.Get(ctx, platform.DeployIntentKey("nightly", "r1")); err == nil {
				t.Errorf("the intent outlived the record")
			}
		})
	}
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
