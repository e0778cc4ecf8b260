package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/spf13/cobra"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	storagev1 "google.golang.org/api/storage/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// Outcomes of a doctor check.
const (
	checkOK   = "ok"
	checkFail = "fail"
	checkSkip = "skip" // could not be checked yet (said why); not a failure
)

// checkResult is one line of runwayctl doctor.
type checkResult struct {
	Workload string `json:"workload,omitempty"`
	Check    string `json:"check"`
	Status   string `json:"status"`
	Detail   string `json:"detail"`
	Fix      string `json:"fix,omitempty"`
}

// doctorOptions are the flags and argument of runwayctl doctor.
type doctorOptions struct {
	workload string
	format   *formatFlag
	http     *http.Client // for the image registry; nil: a 10 s client (tests inject one)
}

func newDoctorCmd(e *cmdEnv) *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor [WORKLOAD]",
		Short: "Check, with the current credentials, everything a workload's pipeline needs",
		Long: `Check, with the credentials runwayctl runs with (in CI: the pipeline's), that the workload
is in the inventory; that the Cloud Run, Cloud Scheduler, Pub/Sub and Cloud Storage APIs answer;
that its deploy and trigger topics exist and may be published to (deploy, run); that the state
bucket exists and the workload's records may be read (deploy --wait, run --wait, status); that
its Cloud Run job, executions and Scheduler job may be read (plan, status, logs, run --wait);
and that its image repository is well formed and answers. Each check prints one line, ✓ ok,
✗ FAIL or - skip, and every failure a fix. Without a workload, every job of the inventory is
checked. In a pipeline of an unprotected ref (CI_COMMIT_REF_PROTECTED=false), which may not
publish, a missing publish right is a skip, not a failure.

Exit status: 0 every check passed (or was skipped), 1 a check failed, 2 a usage error.

Environment: RUNWAY_INVENTORY, RUNWAY_STATE, RUNWAY_EMULATOR_HOST (local platform),
GOOGLE_APPLICATION_CREDENTIALS (named in the fixes when it is a service account's),
CI_COMMIT_REF_PROTECTED.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.workload = args[0]
			}
			return runDoctorCmd(cmd.Context(), e, o)
		},
	}
	e.addInventoryFlag(cmd)
	o.format = addFormatFlag(cmd, "output format: text or json", "text", "json")
	return cmd
}

// runDoctorCmd runs the checks, prints them and returns exit status 1 if one failed.
func runDoctorCmd(ctx context.Context, e *cmdEnv, o doctorOptions) error {
	results := runDoctor(ctx, e, o)
	if err := printDoctor(e.out, o.format.value, results); err != nil {
		return err
	}
	for _, r := range results {
		if r.Status == checkFail {
			return exitError{code: exitFailed}
		}
	}
	return nil
}

// runDoctor runs every check of o.workload ("" for every job of the inventory) in order.
func runDoctor(ctx context.Context, e *cmdEnv, o doctorOptions) []checkResult {
	inv, err := e.loadInventory(ctx)
	if err != nil {
		return []checkResult{{Check: "inventory", Status: checkFail, Detail: err.Error(), Fix: "pass --inventory or set " + platform.EnvInventory + " to the platform's inventory (the runway-jobs component's inventory input)"}}
	}
	workloads := inv.Jobs()
	if o.workload != "" {
		w, err := inv.Job(o.workload)
		if err != nil {
			return []checkResult{{Workload: o.workload, Check: "inventory", Status: checkFail, Detail: fmt.Sprintf("%v (%s)", err, inv.File),
				Fix: "ask the platform team to add it to the inventory as a job (type: job), or fix the workload name (the component's runway_service_id input, RUNWAY_SERVICE_ID)"}}
		}
		workloads = []inventory.Workload{w}
	}
	if len(workloads) == 0 {
		return []checkResult{{Check: "inventory", Status: checkFail, Detail: inv.File + " lists no job workloads", Fix: "give the workload to check"}}
	}
	var out []checkResult
	for _, w := range workloads {
		d := &doctor{e: e, w: w, http: o.http,
			identity:       identityFromCredentials(e.getenv("GOOGLE_APPLICATION_CREDENTIALS")),
			unprotectedRef: e.getenv("CI_COMMIT_REF_PROTECTED") == "false"}
		d.run(ctx)
		out = append(out, d.results...)
	}
	return out
}

// doctor checks one workload, with the command environment's clients and store.
type doctor struct {
	e        *cmdEnv
	w        inventory.Workload
	http     *http.Client
	identity string // who the checks run as, for the fixes ("" when unknown)
	// unprotectedRef is true in a GitLab pipeline of an unprotected ref (a merge request's
	// branch), which may not publish: there a missing publish right is expected.
	unprotectedRef bool
	cl             *allclients.Clients
	results        []checkResult
}

func (d *doctor) add(check, st, detail, fix string) {
	d.results = append(d.results, checkResult{Workload: d.w.Name, Check: check, Status: st, Detail: detail, Fix: fix})
}

// who names the principal the fixes grant to: the credentials' service account, or
// PRINCIPAL, which whoNote explains.
func (d *doctor) who() string {
	if d.identity != "" {
		return d.identity
	}
	return "PRINCIPAL"
}

// whoNote says what PRINCIPAL stands for, when the fix names it: in CI the GitLab project's
// Workload Identity principal set, by attribute (protected_project_id for what only protected
// refs may do, project_id for reads).
func (d *doctor) whoNote(attribute string) string {
	if d.identity != "" {
		return ""
	}
	return fmt.Sprintf("; PRINCIPAL is who runs this: in CI principalSet://iam.googleapis.com/POOL/attribute.%s/%d", attribute, d.w.ProjectID)
}

func (d *doctor) emulated() bool { return d.e.gcpConfig(d.w.GCPProject).EmulatorHost != "" }

func (d *doctor) run(ctx context.Context) {
	w := d.w
	d.add("inventory", checkOK, fmt.Sprintf("%s is a job of project %s, regions %s", w.Name, w.GCPProject, strings.Join(w.Regions, ", ")), "")
	cl, err := d.e.gcpClients(ctx, w.GCPProject)
	if err != nil {
		d.add("credentials", checkFail, err.Error(), "set up Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS; in CI the runway-jobs component's credentials step does it)")
		return
	}
	d.cl = cl
	st, err := gcp.NewStorageAPI(ctx, d.e.gcpConfig(w.GCPProject))
	if err != nil {
		d.add("credentials", checkFail, err.Error(), "set up Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)")
		return
	}

	runUp := d.checkRunAPI(ctx)
	schedUp := d.checkSchedulerAPI(ctx)
	d.checkTopic(ctx, "deploy topic", platform.DeployTopic(w.Name), "runwayctl deploy")
	d.checkTopic(ctx, "trigger topic", platform.TriggerTopic(w.Name), "runwayctl run")
	d.checkState(ctx, st)
	if runUp {
		d.checkJob(ctx)
	}
	if schedUp {
		d.checkSchedulerJob(ctx)
	}
	d.checkImageRepository(ctx)
}

// apiProblem classifies an error of a call that should have reached api: ("", "") when the
// API answered (an answer about the resource or the caller's rights means it is enabled),
// else what is wrong and its fix.
func (d *doctor) apiProblem(err error, api string) (detail, fix string) {
	if err == nil || errors.Is(err, iterator.Done) {
		return "", ""
	}
	enable := fmt.Sprintf("gcloud services enable %s --project %s", api, d.w.GCPProject)
	if serviceDisabled(err) {
		return api + " is not enabled in " + d.w.GCPProject + ": " + shortError(err), enable
	}
	code := status.Code(err)
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case http.StatusNotFound, http.StatusForbidden:
			return "", ""
		case http.StatusUnauthorized:
			code = codes.Unauthenticated
		}
	}
	switch code {
	case codes.NotFound, codes.PermissionDenied:
		return "", ""
	case codes.Unauthenticated:
		return "not authenticated: " + shortError(err), "set up Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS; in CI the runway-jobs component's credentials step does it)"
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return api + " refused the request: " + shortError(err), "check gcp_project and regions of " + d.w.Name + " in the inventory"
	}
	return "cannot reach " + api + ": " + shortError(err), "check the network and " + enable
}

// serviceDisabled reports Google's answer for a disabled API: an ErrorInfo with reason
// SERVICE_DISABLED, or its message.
func serviceDisabled(err error) bool {
	if st, ok := status.FromError(err); ok {
		for _, det := range st.Details() {
			if info, ok := det.(*errdetails.ErrorInfo); ok && info.Reason == "SERVICE_DISABLED" {
				return true
			}
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "SERVICE_DISABLED") || strings.Contains(msg, "has not been used in project")
}

// shortError is the message of err without the client's wrapping.
func shortError(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Code().String() + ": " + st.Message()
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Message != "" {
		return fmt.Sprintf("%d: %s", ge.Code, ge.Message)
	}
	return err.Error()
}

func (d *doctor) checkRunAPI(ctx context.Context) bool {
	parent := "projects/" + d.w.GCPProject + "/locations/" + d.w.DefaultRegion()
	_, err := d.cl.Jobs.ListJobs(ctx, &runpb.ListJobsRequest{Parent: parent, PageSize: 1}).Next()
	if detail, fix := d.apiProblem(err, "run.googleapis.com"); detail != "" {
		d.add("Cloud Run API", checkFail, detail, fix)
		return false
	}
	d.add("Cloud Run API", checkOK, "answers in "+d.w.GCPProject, "")
	return true
}

func (d *doctor) checkSchedulerAPI(ctx context.Context) bool {
	parent := "projects/" + d.w.GCPProject + "/locations/" + d.w.DefaultRegion()
	_, err := d.cl.Scheduler.ListJobs(ctx, &schedulerpb.ListJobsRequest{Parent: parent, PageSize: 1}).Next()
	if detail, fix := d.apiProblem(err, "cloudscheduler.googleapis.com"); detail != "" {
		d.add("Cloud Scheduler API", checkFail, detail, fix)
		return false
	}
	d.add("Cloud Scheduler API", checkOK, "answers in "+d.w.GCPProject, "")
	return true
}

// checkTopic checks that topic exists and may be published to. TestIamPermissions needs no
// permission of its own; it grants nothing on a topic that does not exist, which GetTopic
// then tells apart (when the caller may get topics: publishers may not).
func (d *doctor) checkTopic(ctx context.Context, check, topic, usedBy string) {
	name := platform.TopicPath(d.w.GCPProject, topic)
	const perm = "pubsub.topics.publish"
	r, err := d.cl.PubSub.TopicAdminClient.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: name, Permissions: []string{perm}})
	if err == nil && len(r.Permissions) == 1 {
		d.add(check, checkOK, name+": exists, "+perm+" granted", "")
		return
	}
	if detail, fix := d.apiProblem(err, "pubsub.googleapis.com"); detail != "" {
		d.add(check, checkFail, detail, fix)
		return
	}
	if status.Code(err) == codes.NotFound {
		d.add(check, checkFail, name+" does not exist", "the platform creates it when it onboards "+d.w.Name+" (infra/modules/job-workload): ask the platform team to apply it")
		return
	}
	_, gerr := d.cl.PubSub.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name})
	if status.Code(gerr) == codes.NotFound {
		d.add(check, checkFail, name+" does not exist", "the platform creates it when it onboards "+d.w.Name+" (infra/modules/job-workload): ask the platform team to apply it")
		return
	}
	if d.unprotectedRef {
		d.add(check, checkSkip, fmt.Sprintf("%s not granted on %s: expected on this unprotected ref (the platform grants publish to pipelines of protected refs only; %s runs there)", perm, name, usedBy), "")
		return
	}
	d.add(check, checkFail, fmt.Sprintf("%s not granted on %s (%s needs it)", perm, name, usedBy),
		fmt.Sprintf("gcloud pubsub topics add-iam-policy-binding %s --project %s --role roles/pubsub.publisher --member %s (the platform grants it to pipelines of protected refs only: is this ref protected?)%s", topic, d.w.GCPProject, d.who(), d.whoNote("protected_project_id")))
}

// checkState checks the durable store deploy --wait, run --wait and status read, by making
// their reads: the workload's records (a probe key under deploys/W/ and runs/W/: not found
// means the read was allowed) and the list of its run records. Bucket-level
// TestIamPermissions would not do: the platform grants the reads with a condition on the
// records' names, which a test on the bucket does not meet.
func (d *doctor) checkState(ctx context.Context, st *storagev1.Service) {
	const check = "state"
	url := d.e.getenv(state.EnvVar)
	var store state.Store
	where := url
	switch {
	case url == "":
		d.add(check, checkFail, state.EnvVar+" is not set: deploy --wait, run --wait and status read their outcomes from it",
			"set "+state.EnvVar+" to the platform's store (gs://BUCKET/PREFIX: terraform output state_url; the runway-jobs component's state input)")
		return
	case strings.HasPrefix(url, "gs://"):
		bucket, _, _ := strings.Cut(strings.TrimPrefix(url, "gs://"), "/")
		// TestPermissions needs no permission: a 404 says the bucket does not exist.
		_, err := st.Buckets.TestIamPermissions(bucket, []string{"storage.objects.get"}).Context(ctx).Do()
		var ge *googleapi.Error
		switch {
		case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
			d.add(check, checkFail, "bucket gs://"+bucket+" does not exist", "check "+state.EnvVar+" (terraform output state_url)")
			return
		case err != nil:
			detail, fix := d.apiProblem(err, "storage.googleapis.com")
			if detail == "" {
				detail, fix = "gs://"+bucket+": "+shortError(err), "check "+state.EnvVar+" (terraform output state_url)"
			}
			d.add(check, checkFail, detail, fix)
			return
		}
		if store, err = d.e.openStore(ctx); err != nil {
			d.add(check, checkFail, err.Error(), "check "+state.EnvVar+" (terraform output state_url)")
			return
		}
	default:
		dir := strings.TrimPrefix(url, "file://")
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			d.add(check, checkFail, "local store "+dir+" is not a directory", "start the local platform (runwayctl dev) and export the "+state.EnvVar+" it prints")
			return
		}
		var err error
		if store, err = d.e.openStore(ctx); err != nil {
			d.add(check, checkFail, err.Error(), "start the local platform (runwayctl dev) and export the "+state.EnvVar+" it prints")
			return
		}
		where = "local store " + dir
	}
	const probe = "runway-doctor-probe"
	reads := []struct{ key, usedBy string }{
		{platform.DeployRecordKey(d.w.Name, probe), "deploy --wait"},
		{platform.RunRecordKey(d.w.Name, probe), "run --wait and status"},
	}
	var denied []string
	for _, r := range reads {
		if _, err := store.Get(ctx, r.key); err != nil && !errors.Is(err, state.ErrNotFound) {
			if !forbidden(err) {
				d.add(check, checkFail, "read "+r.key+" in "+where+": "+shortError(err), "check the network and "+state.EnvVar)
				return
			}
			denied = append(denied, fmt.Sprintf("storage.objects.get on %s (%s)", path.Dir(r.key)+"/", r.usedBy))
		}
	}
	runs := platform.RunRecordPrefix + d.w.Name + "/"
	if _, err := store.ListPage(ctx, runs, "", 1); err != nil { // the right to list, not the history
		if !forbidden(err) {
			d.add(check, checkFail, "list "+runs+" in "+where+": "+shortError(err), "check the network and "+state.EnvVar)
			return
		}
		denied = append(denied, "storage.objects.list of "+runs+" (status)")
	}
	if len(denied) > 0 {
		bucket, _, _ := strings.Cut(strings.TrimPrefix(url, "gs://"), "/")
		d.add(check, checkFail, where+": not granted: "+strings.Join(denied, ", "),
			fmt.Sprintf("gcloud storage buckets add-iam-policy-binding gs://%s --role roles/storage.objectViewer --member %s (infra/modules/job-workload grants it with a condition on the names of %s's records and on the prefix a list asks for, which must admit these reads)%s", bucket, d.who(), d.w.Name, d.whoNote("project_id")))
		return
	}
	d.add(check, checkOK, where+": "+d.w.Name+"'s records may be read (deploys/"+d.w.Name+"/, runs/"+d.w.Name+"/) and listed ("+runs+")", "")
}

// forbidden reports Cloud Storage's answer to a missing permission.
func forbidden(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusForbidden
}

// missingFrom returns the elements of want not in got.
func missingFrom(want, got []string) []string {
	var out []string
	for _, p := range want {
		if !slices.Contains(got, p) {
			out = append(out, p)
		}
	}
	return out
}

// checkJob checks what plan, status, logs and run --wait read of the Cloud Run job: the job
// and its executions, with TestIamPermissions on the job once it exists.
func (d *doctor) checkJob(ctx context.Context) {
	const check = "Cloud Run job"
	perms := []string{"run.jobs.get", "run.executions.get", "run.executions.list"}
	for _, region := range d.w.Regions {
		name := platform.JobName(d.w.GCPProject, region, d.w.Name)
		_, err := d.cl.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
		switch status.Code(err) {
		case codes.NotFound:
			continue
		case codes.PermissionDenied:
			d.add(check, checkFail, "run.jobs.get denied on "+name+" (plan, status and logs read the job)", d.grantPlan())
			return
		case codes.OK:
		default:
			d.add(check, checkFail, "read "+name+": "+shortError(err), "check the network and the Cloud Run API")
			return
		}
		r, err := d.cl.Jobs.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: name, Permissions: perms})
		if err != nil {
			d.add(check, checkFail, "TestIamPermissions on "+name+": "+shortError(err), "check the Cloud Run API")
			return
		}
		missing := missingFrom(perms, r.Permissions)
		switch {
		case len(missing) == 0:
			d.add(check, checkOK, name+": "+strings.Join(perms, ", ")+" granted", "")
		case slices.Contains(missing, "run.jobs.get"):
			d.add(check, checkFail, fmt.Sprintf("%s not granted on %s (plan, status and logs read the job)", strings.Join(missing, ", "), name), d.grantPlan())
		case d.unprotectedRef:
			d.add(check, checkSkip, fmt.Sprintf("%s not granted on %s: expected on this unprotected ref (the platform lets pipelines of protected refs only read executions: run --wait, status)", strings.Join(missing, ", "), name), "")
		default:
			d.add(check, checkFail, fmt.Sprintf("%s not granted on %s (status, logs and run --wait read executions)", strings.Join(missing, ", "), name),
				fmt.Sprintf("gcloud projects add-iam-policy-binding %s --role projects/%s/roles/runwayJobsCIStatus --member %s (infra/modules/job-project grants it to pipelines of protected refs only: is this ref protected?)%s", d.w.GCPProject, d.w.GCPProject, d.who(), d.whoNote("protected_project_id")))
		}
		return
	}
	d.add(check, checkSkip, fmt.Sprintf("%s is not deployed yet: %s are tested on the job after its first deploy (Cloud Run has no location-level TestIamPermissions); run.jobs.get is granted (GetJob answered NotFound)", d.w.Name, strings.Join(perms[1:], ", ")), "")
}

// grantPlan is the fix for a missing run.jobs.get or cloudscheduler.jobs.get: the platform's
// runwayJobsCIPlan role, which every pipeline of the workload's project gets.
func (d *doctor) grantPlan() string {
	return fmt.Sprintf("gcloud projects add-iam-policy-binding %s --role projects/%s/roles/runwayJobsCIPlan --member %s (infra/modules/job-project grants it to every pipeline of the workloads' GitLab projects)%s", d.w.GCPProject, d.w.GCPProject, d.who(), d.whoNote("project_id"))
}

// checkSchedulerJob checks cloudscheduler.jobs.get, which plan and status need (Scheduler has
// no TestIamPermissions: the Get itself is the test; NotFound means it was allowed).
func (d *doctor) checkSchedulerJob(ctx context.Context) {
	const check = "Scheduler job"
	name := platform.JobName(d.w.GCPProject, d.w.DefaultRegion(), d.w.Name)
	_, err := d.cl.Scheduler.GetJob(ctx, &schedulerpb.GetJobRequest{Name: name})
	switch status.Code(err) {
	case codes.OK:
		d.add(check, checkOK, name+": cloudscheduler.jobs.get granted", "")
	case codes.NotFound:
		d.add(check, checkOK, "cloudscheduler.jobs.get granted (no Scheduler job yet: on demand, or not deployed)", "")
	case codes.PermissionDenied:
		d.add(check, checkFail, "cloudscheduler.jobs.get denied on "+name+" (plan and status read it)", d.grantPlan())
	default:
		d.add(check, checkFail, "read "+name+": "+shortError(err), "check the network and the Cloud Scheduler API")
	}
}

// checkImageRepository checks the inventory's artifact_repository: its shape (the inventory
// schema's rule, checked again here as doctor may read an inventory from elsewhere) and, on
// Google Cloud, that the registry answers. Read rights on the repository are not tested:
// that needs the Artifact Registry API, which runwayctl does not use.
func (d *doctor) checkImageRepository(ctx context.Context) {
	const check = "image repository"
	repo := d.w.ArtifactRepository
	if repo == "" {
		d.add(check, checkFail, "the inventory names no artifact_repository: deploy refuses every image", "ask the platform team to set artifact_repository for "+d.w.Name)
		return
	}
	if !artifactRepository.MatchString(repo) {
		d.add(check, checkFail, repo+" is not HOST-docker.pkg.dev/PROJECT/REPOSITORY", "fix artifact_repository in the inventory")
		return
	}
	if d.emulated() {
		d.add(check, checkOK, repo+": well formed (the local platform pulls no image: not contacted)", "")
		return
	}
	host, _, _ := strings.Cut(repo, "/")
	hc := d.http
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/", nil)
	if err != nil {
		d.add(check, checkFail, err.Error(), "fix artifact_repository in the inventory")
		return
	}
	resp, err := hc.Do(req)
	if err != nil {
		d.add(check, checkFail, "registry "+host+" does not answer: "+err.Error(), "check the network (and artifact_repository's region)")
		return
	}
	resp.Body.Close()
	d.add(check, checkOK, fmt.Sprintf("%s: registry %s answers (%s to an anonymous probe); read rights on the repository are not tested", repo, host, resp.Status), "")
}

// artifactRepository is the inventory schema's shape of artifact_repository.
var artifactRepository = regexp.MustCompile(`^[a-z0-9-]+-docker\.pkg\.dev/[a-z][a-z0-9-]{4,28}[a-z0-9]/[a-z0-9][a-z0-9._-]*$`)

// printDoctor writes the results as text lines (a mark and a word, so colour is never the
// only signal) or as JSON.
func printDoctor(out io.Writer, format string, results []checkResult) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	var ok, failed, skipped int
	last := ""
	for _, r := range results {
		if r.Workload != last {
			fmt.Fprintln(out, r.Workload)
			last = r.Workload
		}
		mark := "✓ ok  "
		switch r.Status {
		case checkFail:
			mark, failed = "✗ FAIL", failed+1
		case checkSkip:
			mark, skipped = "- skip", skipped+1
		default:
			ok++
		}
		fmt.Fprintf(out, "  %s  %-19s %s\n", mark, r.Check, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(out, "          fix: %s\n", r.Fix)
		}
	}
	fmt.Fprintf(out, "doctor: %d ok, %d failed, %d skipped\n", ok, failed, skipped)
	return nil
}

// identityFromCredentials names the principal of the credentials file at path for the fixes
// ("" when unknown); see identityOf.
func identityFromCredentials(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return identityOf(f)
}

// identityOf reads a credentials file: the service account of a key, or the one an external
// account impersonates; "" otherwise. At most 64 KiB are read and only these fields are kept
// (nothing secret is printed).
func identityOf(r io.Reader) string {
	var c struct {
		Type          string `json:"type"`
		ClientEmail   string `json:"client_email"`
		Impersonation string `json:"service_account_impersonation_url"`
	}
	if json.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&c) != nil {
		return ""
	}
	if c.Type == "service_account" && serviceAccountEmail.MatchString(c.ClientEmail) {
		return "serviceAccount:" + c.ClientEmail
	}
	if m := impersonated.FindStringSubmatch(c.Impersonation); m != nil && c.Type == "external_account" {
		return "serviceAccount:" + m[1]
	}
	return ""
}

var serviceAccountEmail = regexp.MustCompile(`^[a-z0-9-]{1,100}@[a-z0-9.-]{1,200}$`)

var impersonated = regexp.MustCompile(`/serviceAccounts/([a-z0-9-]{1,100}@[a-z0-9.-]{1,200}):generateAccessToken$`)

// deniedPermission reads the permission and resource Google names in a PermissionDenied: its
// ErrorInfo's metadata, else its message ("Permission 'P' denied on resource 'R' …").
func deniedPermission(err error) (permission, resource string) {
	st, ok := status.FromError(err)
	if !ok {
		return "", ""
	}
	for _, det := range st.Details() {
		if info, ok := det.(*errdetails.ErrorInfo); ok && info.Metadata["permission"] != "" {
			return info.Metadata["permission"], info.Metadata["resource"]
		}
	}
	if m := deniedMessage.FindStringSubmatch(st.Message()); m != nil {
		return m[1], m[2]
	}
	return "", ""
}

var deniedMessage = regexp.MustCompile(`Permission '([^']+)' denied on resource '([^']*)'`)

// notCheckedNote is plan's note when Cloud Run refused a validate_only call for lack of a
// permission: which one, on what, and that the deploy function will validate the job.
func notCheckedNote(err error) string {
	perm, res := deniedPermission(err)
	if perm == "" {
		return "  (not checked by Cloud Run: this identity may not validate jobs: " + shortError(err) + ")"
	}
	on := ""
	if res != "" {
		on = " on " + res
	}
	return "  (not checked by Cloud Run: this identity lacks " + perm + on + "; the deploy function validates the job when it applies it)"
}
