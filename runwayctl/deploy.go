package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// deployFlags are the flags deploy and plan share.
type deployFlags struct {
	workload  string
	image     string
	inventory string
}

func (f *deployFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.workload, "workload", "", "the workload (default: the manifest's metadata.name)")
	cmd.Flags().StringVar(&f.image, "image", "", "the image to run, by digest (default: spec.image, or what is deployed)")
	cmd.Flags().StringVar(&f.inventory, "inventory", os.Getenv(platform.EnvInventory), "inventory.yml (default $"+platform.EnvInventory+")")
}

// deployTarget is a validated manifest, its workload and the request that deploys it.
type deployTarget struct {
	job      *manifest.Job
	workload inventory.Workload
	request  platform.DeployRequest
}

// loadDeployTarget validates the manifest at file (with the workload's overlay, if any) and
// binds it to its inventory entry. Manifest problems are printed as runwayctl validate prints
// them and returned as exit status 1.
func loadDeployTarget(stderr io.Writer, file string, f deployFlags, lookup func(string) string) (*deployTarget, error) {
	if file == "" {
		file = filepath.Join(".runway", "runway.yml")
	}
	base, overlay := file, ""
	if f.workload != "" && filepath.Base(filepath.Dir(file)) == ".runway" {
		if o := filepath.Join(filepath.Dir(file), f.workload, "runway.yml"); fileExists(o) {
			overlay = o
		}
	} else if dir := filepath.Dir(file); filepath.Base(filepath.Dir(dir)) == ".runway" {
		base, overlay = filepath.Join(filepath.Dir(dir), "runway.yml"), file
	}
	path := base
	if overlay != "" {
		path = overlay
	}
	job, err := manifest.Load(path)
	if err != nil {
		var ps document.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(stderr, p)
			}
			return nil, exitError{code: 1}
		}
		return nil, err
	}
	name := job.Metadata.Name
	if f.workload != "" && f.workload != name {
		fmt.Fprintf(stderr, "%s: metadata.name is %q, not the workload %q\n", job.Pos("/metadata/name"), name, f.workload)
		return nil, exitError{code: 1}
	}
	if f.inventory == "" {
		return nil, fmt.Errorf("no inventory: pass --inventory or set %s", platform.EnvInventory)
	}
	inv, err := inventory.Load(f.inventory)
	if err != nil {
		return nil, err
	}
	w, ok := inv.Lookup(name)
	if !ok || w.Type != inventory.Job {
		return nil, fmt.Errorf("workload %q is not a job in %s", name, f.inventory)
	}
	req := platform.DeployRequest{
		RequestID: requestID(lookup),
		Workload:  name,
		Image:     f.image,
		Source:    sourceFromCI(lookup),
	}
	if req.Manifest, err = readManifestFile(base); err != nil {
		return nil, err
	}
	if overlay != "" {
		o, err := readManifestFile(overlay)
		if err != nil {
			return nil, err
		}
		req.Overlay = &o
	}
	return &deployTarget{job: job, workload: w, request: req}, nil
}

func readManifestFile(path string) (platform.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return platform.File{}, err
	}
	return platform.File{Path: filepath.ToSlash(path), Content: string(b)}, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// requestID is the CI's pipeline and job ids when run from GitLab CI, random otherwise.
func requestID(lookup func(string) string) string {
	if p, j := lookup("CI_PIPELINE_ID"), lookup("CI_JOB_ID"); p != "" && j != "" {
		return "ci-" + p + "-" + j
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "cli-" + hex.EncodeToString(b)
}

// sourceFromCI reads the GitLab CI predefined variables.
func sourceFromCI(lookup func(string) string) platform.Source {
	id, _ := strconv.ParseInt(lookup("CI_PIPELINE_ID"), 10, 64)
	return platform.Source{
		CommitSHA:   lookup("CI_COMMIT_SHA"),
		PipelineID:  id,
		PipelineURL: lookup("CI_PIPELINE_URL"),
		Ref:         lookup("CI_COMMIT_REF_NAME"),
	}
}

func newDeployCmd() *cobra.Command {
	var (
		f       deployFlags
		wait    bool
		del     bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deploy [FILE] --workload W [--image IMG] [--wait]",
		Short: "Deploy a RunwayJob manifest (publish a deploy request for the workload)",
		Long: `Validate the manifest (default .runway/runway.yml, merged with .runway/<workload>/runway.yml
when the repository has that overlay) and publish a deploy request on the workload's deploy
topic. The deploy function reconciles it into the Cloud Run job and, when scheduled, its Cloud
Scheduler job.

With --wait, follow the request until it is reconciled and print what changed, or every problem
as FILE:LINE:COL: message; exit status 1 when the request was refused. In GitLab CI the request
carries the commit, pipeline and ref; a request from an older pipeline never rolls back a newer
one. --delete removes the workload's Scheduler job, then its Cloud Run job.

Environment: RUNWAY_INVENTORY, RUNWAY_STATE (for --wait), RUNWAY_EMULATOR_HOST (local platform).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			lookup := os.Getenv
			t, err := loadDeployTarget(cmd.ErrOrStderr(), file, f, lookup)
			if err != nil {
				return err
			}
			if del {
				t.request.Action = platform.ActionDelete
			}
			var store state.Store
			if wait {
				if store, err = state.Open(lookup(state.EnvVar)); err != nil {
					return fmt.Errorf("--wait reads the outcome from the state store: %w", err)
				}
			}
			ctx := cmd.Context()
			if err := publishDeploy(ctx, t.workload.GCPProject, &t.request); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "deploy request %s published for %s\n", t.request.RequestID, t.workload.Name)
			if !wait {
				return nil
			}
			rec, err := waitDeployRecord(ctx, cmd.ErrOrStderr(), store, t.workload.Name, t.request.RequestID, timeout)
			if err != nil {
				return err
			}
			return printDeployRecord(out, cmd.ErrOrStderr(), rec)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the request is reconciled; exit 1 if it was refused")
	cmd.Flags().BoolVar(&del, "delete", false, "delete the workload's jobs instead of applying the manifest")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait: how long to wait")
	return cmd
}

func publishDeploy(ctx context.Context, project string, req *platform.DeployRequest) error {
	cl, err := gcp.Dial(ctx, gcp.FromEnv(project))
	if err != nil {
		return err
	}
	defer cl.Close()
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	pub := cl.PubSub.Publisher(platform.DeployTopic(req.Workload))
	defer pub.Stop()
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx); err != nil {
		return fmt.Errorf("publish to %s: %w", platform.TopicPath(project, platform.DeployTopic(req.Workload)), err)
	}
	return nil
}

// waitDeployRecord polls the store until the deploy function records the request's outcome.
func waitDeployRecord(ctx context.Context, progress io.Writer, store state.Store, workload, id string, timeout time.Duration) (platform.DeployRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := platform.DeployRecordKey(workload, id)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	start, said := time.Now(), time.Now()
	for {
		o, err := store.Get(ctx, key)
		if err == nil {
			var r platform.DeployRecord
			if err := json.Unmarshal(o.Data, &r); err != nil {
				return r, fmt.Errorf("deploy record %s: %w", key, err)
			}
			return r, nil
		}
		if !errors.Is(err, state.ErrNotFound) {
			return platform.DeployRecord{}, err
		}
		if time.Since(said) >= 5*time.Second {
			fmt.Fprintf(progress, "waiting for the deploy function (%s)\n", time.Since(start).Round(time.Second))
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			return platform.DeployRecord{}, fmt.Errorf("deploy request %s: no outcome after %s (is the deploy function running?)", id, timeout)
		case <-tick.C:
		}
	}
}

func printDeployRecord(out, stderr io.Writer, r platform.DeployRecord) error {
	switch r.Outcome {
	case platform.DeployRefused:
		fmt.Fprintf(stderr, "deploy of %s refused:\n", r.Workload)
		for _, p := range r.Problems {
			fmt.Fprintln(stderr, p)
		}
		return exitError{code: 1}
	case platform.DeployUnchanged:
		fmt.Fprintf(out, "%s: up to date, nothing changed\n", r.Workload)
	default:
		fmt.Fprintf(out, "%s: %s\n", r.Workload, r.Outcome)
		for _, c := range r.Changes {
			fmt.Fprintf(out, "  %s\n", c)
		}
	}
	if r.Job != "" {
		fmt.Fprintf(out, "  Cloud Run job: %s\n", r.Job)
	}
	if r.Scheduler != "" {
		fmt.Fprintf(out, "  Scheduler job: %s\n", r.Scheduler)
	}
	return nil
}

func newPlanCmd() *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "plan [FILE] --workload W [--image IMG]",
		Short: "Show what deploying the manifest would change, without changing anything",
		Long: `Render the manifest as the deploy function would, compare it field by field with the
deployed Cloud Run job and Cloud Scheduler job, and print the differences. The Cloud Run job is
also sent with validate_only, so Cloud Run checks it too. Nothing is applied.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			t, err := loadDeployTarget(cmd.ErrOrStderr(), file, f, os.Getenv)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cl, err := gcp.Dial(ctx, gcp.FromEnv(t.workload.GCPProject))
			if err != nil {
				return err
			}
			defer cl.Close()
			lines, err := plan(ctx, cl, t)
			for _, l := range lines {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			return err
		},
	}
	f.register(cmd)
	return cmd
}

// plan lists what a deploy of t would write.
func plan(ctx context.Context, cl *gcp.Clients, t *deployTarget) ([]string, error) {
	region := desired.Region(t.job, t.workload)
	name := platform.JobName(t.workload.GCPProject, region, t.workload.Name)
	got, err := cl.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		got, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run.GetJob %s: %w", name, err)
	}
	if got != nil && !platform.IsManaged(got.Labels) {
		return nil, fmt.Errorf("Cloud Run job %s exists and is not managed by Runway: deploy would refuse it", name)
	}
	in := desired.Input{Job: t.job, Workload: t.workload, Image: t.request.Image, ScheduleSince: time.Now()}
	in.Inherit(got)
	want, err := desired.Render(in)
	if err != nil {
		return nil, err
	}
	var lines []string
	if got == nil {
		lines = append(lines, "Cloud Run job "+name+": create")
		j := proto.Clone(want.Job).(*runpb.Job)
		j.Name = ""
		_, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/" + want.Project + "/locations/" + region, JobId: want.Workload, Job: j, ValidateOnly: true})
		if lines, err = serverCheck(lines, err, "Cloud Run refuses the job"); err != nil {
			return lines, err
		}
	} else {
		// Source annotations change with every pipeline; plan shows the manifest's changes.
		var changes []string
		for _, c := range desired.JobChanges(want.Job, got) {
			if !strings.HasPrefix(c, "annotations.") {
				changes = append(changes, c)
			}
		}
		if len(changes) == 0 {
			lines = append(lines, "Cloud Run job "+name+": no change")
		} else {
			lines = append(lines, "Cloud Run job "+name+": update "+strings.Join(changes, ", "))
			j := proto.Clone(want.Job).(*runpb.Job)
			j.Etag = got.Etag
			_, err := cl.Jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: j, ValidateOnly: true})
			if lines, err = serverCheck(lines, err, "Cloud Run refuses the update"); err != nil {
				return lines, err
			}
		}
	}
	sj, err := cl.Scheduler.GetJob(ctx, &schedulerpb.GetJobRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		sj, err = nil, nil
	}
	if err != nil {
		return lines, fmt.Errorf("scheduler.GetJob %s: %w", name, err)
	}
	switch {
	case want.Scheduler == nil && sj == nil:
		lines = append(lines, "Scheduler job: none (on demand only)")
	case want.Scheduler == nil:
		lines = append(lines, "Scheduler job "+name+": delete")
	case sj == nil:
		lines = append(lines, fmt.Sprintf("Scheduler job %s: create (%s, %s)", name, want.Scheduler.Schedule, want.Scheduler.TimeZone))
	default:
		mask := desired.SchedulerChanges(want.Scheduler, sj)
		switch {
		case len(mask) > 0:
			lines = append(lines, "Scheduler job "+name+": update "+strings.Join(mask, ", "))
		default:
			lines = append(lines, "Scheduler job "+name+": no change")
		}
	}
	if want.Scheduler != nil {
		switch paused := desired.Paused(sj); {
		case want.Paused && !paused:
			lines = append(lines, "Scheduler job: pause (suspend: true)")
		case !want.Paused && paused:
			lines = append(lines, "Scheduler job: resume")
		}
	}
	return lines, nil
}

// serverCheck reads the answer to a validate_only call. CI identities may not write jobs (only
// the deploy function may), so PermissionDenied means Cloud Run's check was not made: say so
// and go on; any other error is Cloud Run refusing the job.
func serverCheck(lines []string, err error, refusal string) ([]string, error) {
	switch {
	case err == nil:
		return lines, nil
	case status.Code(err) == codes.PermissionDenied:
		return append(lines, "  (not checked by Cloud Run: this identity may not validate jobs)"), nil
	}
	return lines, fmt.Errorf("%s: %w", refusal, err)
}
