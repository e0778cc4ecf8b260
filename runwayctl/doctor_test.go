package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/googleapi"
	storagev1 "google.golang.org/api/storage/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/emulator/iam"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

const doctorInventory = `inventory:
  - name: nightly-report
    type: job
    project_id: 7
    gcp_project: runway-test
    regions: [us-east1]
    artifact_repository: us-east1-docker.pkg.dev/runway-test/nightly-report
  - name: web
    type: service
    project_id: 7
    gcp_project: runway-test
    regions: [us-east1]
`

// doctorWorld is a local platform as runwayctl dev sets it up for one workload (its deploy
// and trigger topics), with the durable store in a Cloud Storage bucket as in production.
type doctorWorld struct {
	emu *emulator.Emulator
	cl  *allclients.Clients
	dir string
}

func newDoctorWorld(t *testing.T) *doctorWorld {
	t.Helper()
	ctx := context.Background()
	emu := emulatortest.Start(t, emulator.Options{OpDelay: time.Millisecond})
	cl, err := allclients.Dial(ctx, emulatortest.Config(emu, runProject), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	for _, topic := range []string{platform.DeployTopic("nightly-report"), platform.TriggerTopic("nightly-report")} {
		if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: platform.TopicPath(runProject, topic)}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := gcp.NewStorageAPI(ctx, emulatortest.Config(emu, runProject))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Buckets.Insert(runProject, &storagev1.Bucket{Name: "runway-state"}).Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for k, v := range map[string]string{gcp.EmulatorHostEnv: emu.Addr(), state.EnvVar: "gs://runway-state/runway",
		platform.EnvInventory: writeFile(t, dir, "inventory.yml", doctorInventory), "GOOGLE_APPLICATION_CREDENTIALS": ""} {
		t.Setenv(k, v)
	}
	return &doctorWorld{emu: emu, cl: cl, dir: dir}
}

// deployJob creates the workload's Cloud Run job as the deploy function would.
func (w *doctorWorld) deployJob(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	op, err := w.cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{
		Parent: "projects/" + runProject + "/locations/us-east1", JobId: "nightly-report",
		Job: &runpb.Job{
			Labels: map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "nightly-report"},
			Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{
				Containers: []*runpb.Container{{Image: "us-east1-docker.pkg.dev/runway-test/nightly-report/app:1", Command: []string{"true"}}},
			}},
		},
	})
	if err == nil {
		_, err = op.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return platform.JobName(runProject, "us-east1", "nightly-report")
}

func (w *doctorWorld) deny(t *testing.T, resource string, perms ...string) {
	t.Helper()
	if err := w.emu.IAM().Deny(iam.Rule{Permissions: perms, Resource: resource}); err != nil {
		t.Fatal(err)
	}
}

func TestDoctorPassesOnAFreshPlatform(t *testing.T) {
	w := newDoctorWorld(t)
	stdout, stderr, code := execute(t, "doctor", "nightly-report")
	if code != 0 || stderr != "" {
		t.Fatalf("doctor on a fresh platform: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	trigger := platform.TopicPath(runProject, platform.TriggerTopic("nightly-report"))
	assertLines(t, "doctor before the first deploy", stdout, []string{
		"nightly-report",
		"  ✓ ok    inventory           nightly-report is a job of project runway-test, regions us-east1",
		"  ✓ ok    Cloud Run API       answers in runway-test",
		"  ✓ ok    Cloud Scheduler API answers in runway-test",
		"  ✓ ok    deploy topic        " + platform.TopicPath(runProject, platform.DeployTopic("nightly-report")) + ": exists, pubsub.topics.publish granted",
		"  ✓ ok    trigger topic       " + trigger + ": exists, pubsub.topics.publish granted",
		"  ✓ ok    state               gs://runway-state/runway: nightly-report's records may be read (deploys/nightly-report/, runs/nightly-report/) and listed (runs/nightly-report/)",
		"  - skip  Cloud Run job       nightly-report is not deployed yet: run.executions.get, run.executions.list are tested on the job after its first deploy (Cloud Run has no location-level TestIamPermissions); run.jobs.get is granted (GetJob answered NotFound)",
		"  ✓ ok    Scheduler job       cloudscheduler.jobs.get granted (no Scheduler job yet: on demand, or not deployed)",
		"  ✓ ok    image repository    us-east1-docker.pkg.dev/runway-test/nightly-report: well formed (the local platform pulls no image: not contacted)",
		"doctor: 8 ok, 0 failed, 1 skipped",
	})

	job := w.deployJob(t)
	stdout, _, code = execute(t, "doctor", "nightly-report")
	if code != 0 || !strings.Contains(stdout, "  ✓ ok    Cloud Run job       "+job+": run.jobs.get, run.executions.get, run.executions.list granted\n") {
		t.Errorf("doctor after the deploy: exit %d\n%s", code, stdout)
	}

	// Without a workload: every job of the inventory (the service is left out).
	stdout, _, code = execute(t, "doctor", "--format", "json")
	var results []checkResult
	if err := json.Unmarshal([]byte(stdout), &results); err != nil || code != 0 {
		t.Fatalf("--format json: exit %d, %v\n%s", code, err, stdout)
	}
	if len(results) != 9 || results[0].Workload != "nightly-report" || results[4].Check != "trigger topic" || results[4].Status != checkOK {
		t.Errorf("--format json: %+v", results)
	}
}

func TestDoctorNamesWhatIsMissing(t *testing.T) {
	trigger := platform.TopicPath(runProject, platform.TriggerTopic("nightly-report"))
	job := platform.JobName(runProject, "us-east1", "nightly-report")
	tests := []struct {
		name     string
		setup    func(t *testing.T, w *doctorWorld)
		args     []string
		wantCode int
		want     []string // lines (or parts of lines) of the output, in order; {dir} is the world's directory
	}{
		{
			name:     "publish denied on the trigger topic",
			setup:    func(t *testing.T, w *doctorWorld) { w.deny(t, trigger, "pubsub.topics.publish") },
			wantCode: 1,
			want: []string{
				"  ✓ ok    deploy topic ",
				"  ✗ FAIL  trigger topic       pubsub.topics.publish not granted on " + trigger + " (runwayctl run needs it)",
				"          fix: gcloud pubsub topics add-iam-policy-binding " + platform.TriggerTopic("nightly-report") + " --project runway-test --role roles/pubsub.publisher --member PRINCIPAL",
				"doctor: 7 ok, 1 failed, 1 skipped",
			},
		},
		{
			name: "publish denied in a pipeline of an unprotected ref",
			setup: func(t *testing.T, w *doctorWorld) {
				w.deny(t, trigger, "pubsub.topics.publish")
				t.Setenv("CI_COMMIT_REF_PROTECTED", "false")
			},
			wantCode: 0,
			want: []string{
				"  - skip  trigger topic       pubsub.topics.publish not granted on " + trigger + ": expected on this unprotected ref",
				"doctor: 7 ok, 0 failed, 2 skipped",
			},
		},
		{
			name: "the trigger topic does not exist",
			setup: func(t *testing.T, w *doctorWorld) {
				if err := w.cl.PubSub.TopicAdminClient.DeleteTopic(context.Background(), &pubsubpb.DeleteTopicRequest{Topic: trigger}); err != nil {
					t.Fatal(err)
				}
			},
			wantCode: 1,
			want:     []string{"  ✗ FAIL  trigger topic       " + trigger + " does not exist", "          fix: the platform creates it when it onboards nightly-report"},
		},
		{
			name: "records may not be listed",
			setup: func(t *testing.T, w *doctorWorld) {
				w.deny(t, "projects/_/buckets/runway-state", "storage.objects.list")
			},
			wantCode: 1,
			want: []string{"  ✗ FAIL  state               gs://runway-state/runway: not granted: storage.objects.list of runs/nightly-report/ (status)",
				"          fix: gcloud storage buckets add-iam-policy-binding gs://runway-state --role roles/storage.objectViewer --member PRINCIPAL"},
		},
		{
			name: "deploy records may not be read",
			setup: func(t *testing.T, w *doctorWorld) {
				w.deny(t, "projects/_/buckets/runway-state/objects/runway/deploys/nightly-report", "storage.objects.get")
			},
			wantCode: 1,
			want:     []string{"  ✗ FAIL  state               gs://runway-state/runway: not granted: storage.objects.get on deploys/nightly-report/ (deploy --wait)\n"},
		},
		{
			name: "another workload's records may not be read",
			setup: func(t *testing.T, w *doctorWorld) {
				w.deny(t, "projects/_/buckets/runway-state/objects/runway/deploys/other", "storage.objects.get")
			},
			wantCode: 0,
			want:     []string{"  ✓ ok    state               gs://runway-state/runway: nightly-report's records may be read"},
		},
		{
			name:     "no state bucket",
			setup:    func(t *testing.T, w *doctorWorld) { t.Setenv(state.EnvVar, "gs://no-such-bucket/runway") },
			wantCode: 1,
			want:     []string{"  ✗ FAIL  state               bucket gs://no-such-bucket does not exist"},
		},
		{
			name:     "no state configured",
			setup:    func(t *testing.T, w *doctorWorld) { t.Setenv(state.EnvVar, "") },
			wantCode: 1,
			want:     []string{"  ✗ FAIL  state               RUNWAY_STATE is not set"},
		},
		{
			name:     "a local store",
			setup:    func(t *testing.T, w *doctorWorld) { t.Setenv(state.EnvVar, w.dir) },
			wantCode: 0,
			want:     []string{"  ✓ ok    state               local store {dir}: nightly-report's records may be read"},
		},
		{
			name: "executions may not be listed",
			setup: func(t *testing.T, w *doctorWorld) {
				w.deployJob(t)
				w.deny(t, job, "run.executions.list")
			},
			wantCode: 1,
			want:     []string{"  ✗ FAIL  Cloud Run job       run.executions.list not granted on " + job, "          fix: gcloud projects add-iam-policy-binding runway-test --role projects/runway-test/roles/runwayJobsCIStatus --member PRINCIPAL"},
		},
		{
			name: "executions may not be listed on an unprotected ref",
			setup: func(t *testing.T, w *doctorWorld) {
				w.deployJob(t)
				w.deny(t, job, "run.executions.list", "run.executions.get")
				t.Setenv("CI_COMMIT_REF_PROTECTED", "false")
			},
			wantCode: 0,
			want:     []string{"  - skip  Cloud Run job       run.executions.get, run.executions.list not granted on " + job + ": expected on this unprotected ref"},
		},
		{
			name:     "jobs may not be read",
			setup:    func(t *testing.T, w *doctorWorld) { w.deny(t, "projects/runway-test", "run.jobs.get") },
			wantCode: 1,
			want:     []string{"  ✗ FAIL  Cloud Run job       run.jobs.get denied on " + job},
		},
		{
			name:     "Scheduler jobs may not be read",
			setup:    func(t *testing.T, w *doctorWorld) { w.deny(t, "projects/runway-test", "cloudscheduler.jobs.get") },
			wantCode: 1,
			want:     []string{"  ✗ FAIL  Scheduler job       cloudscheduler.jobs.get denied on " + job, "          fix: gcloud projects add-iam-policy-binding runway-test --role projects/runway-test/roles/runwayJobsCIPlan --member PRINCIPAL"},
		},
		{
			name:     "not a job of the inventory",
			args:     []string{"web"},
			wantCode: 1,
			want:     []string{"web", `  ✗ FAIL  inventory           workload "web" is a service, not a job (`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newDoctorWorld(t)
			if tt.setup != nil {
				tt.setup(t, w)
			}
			args := tt.args
			if args == nil {
				args = []string{"nightly-report"}
			}
			stdout, stderr, code := execute(t, append([]string{"doctor"}, args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			rest := stdout
			for _, want := range tt.want {
				want = strings.ReplaceAll(want, "{dir}", w.dir)
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", want, stdout)
				}
				rest = rest[i+len(want):]
			}
		})
	}
}

// TestPlanNamesTheMissingPermission: an identity that may not create jobs gets the permission
// and the resource named, from Cloud Run's own answer to validate_only.
func TestPlanNamesTheMissingPermission(t *testing.T) {
	w := newDoctorWorld(t)
	w.deny(t, "projects/runway-test", "run.jobs.create")
	dir := t.TempDir()
	file := writeFile(t, dir, ".runway/runway.yml", job("image: us-east1-docker.pkg.dev/runway-test/nightly-report/app@sha256:"+strings.Repeat("a", 64)))
	stdout, stderr, code := execute(t, "plan", file)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, stdout, stderr)
	}
	want := "  (not checked by Cloud Run: this identity lacks run.jobs.create on projects/runway-test/locations/us-east1; the deploy function validates the job when it applies it)"
	if !strings.Contains(stdout, "Cloud Run job "+platform.JobName(runProject, "us-east1", "nightly-report")+": create\n"+want+"\n") {
		t.Errorf("plan output:\n%s\nwant the create line followed by\n%s", stdout, want)
	}
}

// TestImageRepositoryProbe: on Google Cloud the registry of artifact_repository must answer;
// a local TLS server stands in for it.
func TestImageRepositoryProbe(t *testing.T) {
	var asked []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.Host+r.URL.Path)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	toServer := srv.Client()
	tr := toServer.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	tr.TLSClientConfig.InsecureSkipVerify = true // the test server's certificate names 127.0.0.1, not the registry
	tests := []struct {
		name       string
		repo       string
		client     *http.Client
		wantStatus string
		wantDetail string
	}{
		{name: "answers", repo: "us-east1-docker.pkg.dev/proj-a/repo", client: &http.Client{Transport: tr}, wantStatus: checkOK, wantDetail: "registry us-east1-docker.pkg.dev answers (401 Unauthorized to an anonymous probe)"},
		{name: "does not answer", repo: "us-east1-docker.pkg.dev/proj-a/repo", client: &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no route")
		}}}, wantStatus: checkFail, wantDetail: "registry us-east1-docker.pkg.dev does not answer"},
		{name: "malformed", repo: "docker.io/library", wantStatus: checkFail, wantDetail: "is not HOST-docker.pkg.dev/PROJECT/REPOSITORY"},
		{name: "missing", repo: "", wantStatus: checkFail, wantDetail: "names no artifact_repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &doctor{e: newCmdEnv(io.Discard, io.Discard, func(string) string { return "" }, time.Now), http: tt.client}
			d.w.Name, d.w.ArtifactRepository = "w", tt.repo
			d.checkImageRepository(context.Background())
			if len(d.results) != 1 || d.results[0].Status != tt.wantStatus || !strings.Contains(d.results[0].Detail, tt.wantDetail) {
				t.Errorf("results %+v; want %s with %q", d.results, tt.wantStatus, tt.wantDetail)
			}
		})
	}
	if len(asked) != 1 || asked[0] != "us-east1-docker.pkg.dev/v2/" {
		t.Errorf("registry asked for %q, want us-east1-docker.pkg.dev/v2/ once", asked)
	}
}

func TestDeniedPermission(t *testing.T) {
	withInfo, _ := status.New(codes.PermissionDenied, "denied").WithDetails(&errdetails.ErrorInfo{Reason: "IAM_PERMISSION_DENIED", Metadata: map[string]string{"permission": "run.jobs.update", "resource": "projects/p/locations/l/jobs/j"}})
	tests := []struct {
		name           string
		err            error
		wantPermission string
		wantResource   string
	}{
		{name: "error info", err: withInfo.Err(), wantPermission: "run.jobs.update", wantResource: "projects/p/locations/l/jobs/j"},
		{name: "message", err: status.Error(codes.PermissionDenied, "Permission 'run.jobs.create' denied on resource 'projects/p/locations/l/jobs/j' (or resource may not exist)."), wantPermission: "run.jobs.create", wantResource: "projects/p/locations/l/jobs/j"},
		{name: "unnamed", err: status.Error(codes.PermissionDenied, "The caller does not have permission")},
		{name: "not a status", err: errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perm, res := deniedPermission(tt.err)
			if perm != tt.wantPermission || res != tt.wantResource {
				t.Errorf("deniedPermission = %q, %q; want %q, %q", perm, res, tt.wantPermission, tt.wantResource)
			}
		})
	}
	if got := notCheckedNote(status.Error(codes.PermissionDenied, "The caller does not have permission")); !strings.Contains(got, "may not validate jobs: PermissionDenied: The caller does not have permission") {
		t.Errorf("note without a named permission: %q", got)
	}
}

func TestAPIProblem(t *testing.T) {
	disabled, _ := status.New(codes.PermissionDenied, "Cloud Run Admin API has not been used in project 12 before or it is disabled.").WithDetails(&errdetails.ErrorInfo{Reason: "SERVICE_DISABLED", Domain: "googleapis.com"})
	tests := []struct {
		name       string
		err        error
		wantDetail string // a part of the detail; "" means the API answered
		wantFix    string
	}{
		{name: "answered", err: nil},
		{name: "not found answers", err: status.Error(codes.NotFound, "no job")},
		{name: "permission denied answers", err: status.Error(codes.PermissionDenied, "Permission 'run.jobs.list' denied")},
		{name: "service disabled", err: disabled.Err(), wantDetail: "run.googleapis.com is not enabled in p", wantFix: "gcloud services enable run.googleapis.com --project p"},
		{name: "service disabled, message only", err: status.Error(codes.PermissionDenied, "SERVICE_DISABLED: it is disabled"), wantDetail: "is not enabled", wantFix: "gcloud services enable"},
		{name: "storage 403 answers", err: &googleapi.Error{Code: 403, Message: "no"}},
		{name: "storage disabled", err: &googleapi.Error{Code: 403, Message: "Cloud Storage JSON API has not been used in project 12 before or it is disabled"}, wantDetail: "is not enabled", wantFix: "gcloud services enable"},
		{name: "unauthenticated", err: status.Error(codes.Unauthenticated, "no token"), wantDetail: "not authenticated", wantFix: "Application Default Credentials"},
		{name: "refused", err: status.Error(codes.InvalidArgument, "bad location"), wantDetail: "run.googleapis.com refused the request", wantFix: "check gcp_project and regions"},
		{name: "unreachable", err: status.Error(codes.Unavailable, "connection refused"), wantDetail: "cannot reach run.googleapis.com", wantFix: "check the network"},
	}
	d := &doctor{}
	d.w.GCPProject = "p"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			detail, fix := d.apiProblem(tt.err, "run.googleapis.com")
			if tt.wantDetail == "" && (detail != "" || fix != "") || !strings.Contains(detail, tt.wantDetail) || !strings.Contains(fix, tt.wantFix) {
				t.Errorf("apiProblem(%v) = %q, %q; want %q, %q", tt.err, detail, fix, tt.wantDetail, tt.wantFix)
			}
		})
	}
}

func TestIdentityOf(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{name: "service account key", file: `{"type":"service_account","client_email":"ci@p.iam.gserviceaccount.com","private_key":"SECRET"}`, want: "serviceAccount:ci@p.iam.gserviceaccount.com"},
		{name: "impersonating external account", file: `{"type":"external_account","service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/ci@p.iam.gserviceaccount.com:generateAccessToken"}`, want: "serviceAccount:ci@p.iam.gserviceaccount.com"},
		{name: "direct workload identity", file: `{"type":"external_account","audience":"//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/g"}`, want: ""},
		{name: "user credentials", file: `{"type":"authorized_user","client_id":"x"}`, want: ""},
		{name: "odd email", file: `{"type":"service_account","client_email":"a b@c --role owner"}`, want: ""},
		{name: "not JSON", file: `nope`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := identityOf(strings.NewReader(tt.file)); got != tt.want {
				t.Errorf("identityOf = %q, want %q", got, tt.want)
			}
		})
	}
	path := writeFile(t, t.TempDir(), "creds.json", tests[0].file)
	if got := identityFromCredentials(path); got != tests[0].want {
		t.Errorf("identityFromCredentials(%s) = %q", path, got)
	}
	if got := identityFromCredentials(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("missing file: %q", got)
	}
}

// FuzzIdentityOf: any credentials file gives "" or a principal with no space (the fixes paste
// it into a gcloud command line) and nothing of the key.
func FuzzIdentityOf(f *testing.F) {
	f.Add(`{"type":"service_account","client_email":"ci@p.iam.gserviceaccount.com","private_key":"SECRET"}`)
	f.Add(`{"type":"external_account","service_account_impersonation_url":"https://x/serviceAccounts/a@b:generateAccessToken"}`)
	f.Fuzz(func(t *testing.T, file string) {
		got := identityOf(strings.NewReader(file))
		if got != "" && (!strings.HasPrefix(got, "serviceAccount:") || strings.ContainsAny(got, " \t\n'\"") || strings.Contains(got, "SECRET")) {
			t.Fatalf("identityOf(%q) = %q", file, got)
		}
	})
}

// FuzzDeniedPermission: any message is read without panicking, and a named permission is
// exactly what the message quotes.
func FuzzDeniedPermission(f *testing.F) {
	f.Add("Permission 'run.jobs.create' denied on resource 'projects/p/locations/l' (or it may not exist).")
	f.Add("Permission '' denied on resource ''")
	f.Fuzz(func(t *testing.T, msg string) {
		perm, _ := deniedPermission(status.Error(codes.PermissionDenied, msg))
		if perm != "" && !strings.Contains(msg, fmt.Sprintf("Permission '%s' denied", perm)) {
			t.Fatalf("deniedPermission(%q) = %q", msg, perm)
		}
	})
}
