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
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// deployFlags are the flags deploy and plan share.
type deployFlags struct {
	workload string
	image    string
}

func (f *deployFlags) register(e *cmdEnv, cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.workload, "workload", "", "the workload (default: the manifest's metadata.name)")
	cmd.Flags().StringVar(&f.image, "image", "", "the image to run, by digest (default: spec.image, or what is deployed)")
	e.addInventoryFlag(cmd)
}

// deployTarget is a validated manifest, its workload and the request that deploys it.
type deployTarget struct {
	job      *manifest.Job
	workload inventory.Workload
	request  platform.DeployRequest
}

// loadDeployTarget validates the manifest at file (with the workload's overlay, if any) and
// binds it to its inventory entry. Manifest problems are printed as runwayctl validate prints
// them and returned as exit status 1, as is a workload that is not a job of the inventory.
func loadDeployTarget(ctx context.Context, e *cmdEnv, file string, f deployFlags) (*deployTarget, error) {
	stderr, lookup := e.errOut, e.getenv
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
			return nil, exitError{code: exitFailed}
		}
		return nil, err
	}
	name := job.Metadata.Name
	if f.workload != "" && f.workload != name {
		fmt.Fprintf(stderr, "%s: metadata.name is %q, not the workload %q\n", job.Pos("/metadata/name"), name, f.workload)
		return nil, exitError{code: exitFailed}
	}
	w, err := e.job(ctx, name, exitFailed)
	if err != nil {
		return nil, err
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

// deployOptions are the options of runwayctl deploy.
type deployOptions struct {
	deployFlags
	file          string
	wait          bool
	delete        bool
	answerTimeout time.Duration
}

func newDeployCmd(e *cmdEnv) *cobra.Command {
	var o deployOptions
	cmd := &cobra.Command{
		Use:   "deploy [FILE] --workload W [--image IMG] [--wait] | deploy --workload W --delete [--wait]",
		Short: "Deploy a RunwayJob manifest (publish a deploy request for the workload)",
		Long: `Validate the manifest (default .runway/runway.yml, merged with .runway/<workload>/runway.yml
when the repository has that overlay) and publish a deploy request on the workload's deploy
topic. The deploy function reconciles it into the Cloud Run job and, when scheduled, its Cloud
Scheduler job.

With --wait, follow the request until it is reconciled and print what changed, or every problem
as FILE:LINE:COL: message; exit status 1 when the request was refused. In GitLab CI the request
carries the commit, pipeline and ref; a request from an older pipeline never rolls back a newer
one. --delete removes the workload's Scheduler job, then its Cloud Run job: it needs only
--workload and the inventory, no manifest (offboarding may have removed it).

Exit status: 0 published (or, with --wait, applied, unchanged or deleted), 1 the manifest is
invalid, the workload is not a job of the inventory or the request was refused, 2 runwayctl
could not publish or follow the request.

Environment: RUNWAY_INVENTORY, RUNWAY_STATE (for --wait), RUNWAY_EMULATOR_HOST (local platform).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.file = args[0]
			}
			if cmd.Flags().Changed("timeout") {
				fmt.Fprintln(e.errOut, "runwayctl: deploy --timeout is deprecated: use --answer-timeout (--timeout is the job's timeout in runwayctl run)")
			}
			return runDeploy(cmd.Context(), e, o)
		},
	}
	o.register(e, cmd)
	fl := cmd.Flags()
	fl.BoolVar(&o.wait, "wait", false, "wait until the request is reconciled; exit 1 if it was refused")
	fl.BoolVar(&o.delete, "delete", false, "delete the workload's jobs (needs --workload, reads no manifest)")
	fl.DurationVar(&o.answerTimeout, "answer-timeout", 5*time.Minute, "with --wait: how long to wait for the deploy function's answer")
	// --timeout was deploy's name for --answer-timeout; in run it is the job's timeout. Hidden
	// rather than MarkDeprecated: cobra drops pflag's deprecation notice.
	fl.DurationVar(&o.answerTimeout, "timeout", 5*time.Minute, "deprecated: use --answer-timeout")
	_ = fl.MarkHidden("timeout")
	return cmd
}

// runDeploy publishes the deploy (or delete) request o describes, and with --wait follows it.
func runDeploy(ctx context.Context, e *cmdEnv, o deployOptions) error {
	var (
		w   inventory.Workload
		req platform.DeployRequest
	)
	if o.delete {
		if o.workload == "" || o.file != "" || o.image != "" {
			return errors.New("--delete takes the workload (--workload W) and no manifest or --image")
		}
		var err error
		if w, err = e.job(ctx, o.workload, exitFailed); err != nil {
			return err
		}
		req = platform.DeployRequest{RequestID: requestID(e.getenv), Workload: w.Name, Source: sourceFromCI(e.getenv), Action: platform.ActionDelete}
	} else {
		t, err := loadDeployTarget(ctx, e, o.file, o.deployFlags)
		if err != nil {
			return err
		}
		w, req = t.workload, t.request
	}
	var store state.Store
	if o.wait {
		var err error
		if store, err = e.openStore(ctx); err != nil {
			return fmt.Errorf("--wait reads the outcome from the state store: %w", err)
		}
	}
	cl, err := e.gcpClients(ctx, w.GCPProject)
	if err != nil {
		return err
	}
	if err := publishDeploy(ctx, cl, w.GCPProject, &req); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "deploy request %s published for %s\n", req.RequestID, w.Name)
	if !o.wait {
		return nil
	}
	rec, err := waitDeployRecord(ctx, e.errOut, store, w.Name, req.RequestID, o.answerTimeout)
	if err != nil {
		return err
	}
	return printDeployRecord(e.out, e.errOut, rec)
}

func publishDeploy(ctx context.Context, cl *allclients.Clients, project string, req *platform.DeployRequest) error {
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
		return exitError{code: exitFailed}
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

func newPlanCmd(e *cmdEnv) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "plan [FILE] --workload W [--image IMG]",
		Short: "Show what deploying the manifest would change, without changing anything",
		Long: `Render the manifest as the deploy function would, compare it field by field with the
deployed Cloud Run job and Cloud Scheduler job, and print the differences. The Cloud Run job is
also sent with validate_only, so Cloud Run checks it too. Nothing is applied.

Exit status: 0 the plan is printed, 1 the manifest is invalid or the workload is not a job of
the inventory, 2 runwayctl could not read what is deployed, or Cloud Run refuses the job.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := ""
			if len(args) == 1 {
				file = args[0]
			}
			return runPlan(cmd.Context(), e, file, f)
		},
	}
	f.register(e, cmd)
	return cmd
}

// runPlan prints what a deploy of the manifest at file would change.
func runPlan(ctx context.Context, e *cmdEnv, file string, f deployFlags) error {
	t, err := loadDeployTarget(ctx, e, file, f)
	if err != nil {
		return err
	}
	cl, err := e.gcpClients(ctx, t.workload.GCPProject)
	if err != nil {
		return err
	}
	lines, err := plan(ctx, cl, t, e.now())
	for _, l := range lines {
		fmt.Fprintln(e.out, l)
	}
	return err
}

// plan lists what a deploy of t would write, now on the platform's clock: desired's Plan, the
// very decision the deploy function executes, printed. The home region's Cloud Run job is also
// sent with validate_only, so Cloud Run checks it too.
func plan(ctx context.Context, cl *allclients.Clients, t *deployTarget, now time.Time) ([]string, error) {
	obs, err := desired.Observe(ctx, cl.Jobs, cl.Scheduler, t.workload)
	if err != nil {
		return nil, err
	}
	p, err := desired.PlanFor(desired.RequestInput(t.job, t.workload, &t.request, now), obs)
	if err != nil {
		return nil, fmt.Errorf("deploy would refuse it: %w", err)
	}
	// Cloud Run's answer follows the home job's line, the first of the plan.
	lines := p.Lines()
	head, rest := lines[:1:1], lines[1:]
	for _, s := range p.Steps {
		var err error
		switch s.Action {
		case desired.CreateJob:
			j := proto.Clone(p.Want.Job).(*runpb.Job)
			j.Name = ""
			_, err = cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/" + p.Want.Project + "/locations/" + p.Want.Region, JobId: p.Want.Workload, Job: j, ValidateOnly: true})
			head, err = serverCheck(head, err, "Cloud Run refuses the job")
		case desired.UpdateJob:
			j := proto.Clone(p.Want.Job).(*runpb.Job)
			j.Etag = s.Etag
			_, err = cl.Jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: j, ValidateOnly: true})
			head, err = serverCheck(head, err, "Cloud Run refuses the update")
		}
		if err != nil {
			return append(head, rest...), err
		}
	}
	return append(head, rest...), nil
}

// serverCheck reads the answer to a validate_only call. CI identities may not write jobs (only
// the deploy function may), so PermissionDenied means Cloud Run's check was not made: say so
// and go on; any other error is Cloud Run refusing the job.
func serverCheck(lines []string, err error, refusal string) ([]string, error) {
	switch {
	case err == nil:
		return lines, nil
	case status.Code(err) == codes.PermissionDenied:
		return append(lines, notCheckedNote(err)), nil
	}
	return lines, fmt.Errorf("%s: %w", refusal, err)
}
