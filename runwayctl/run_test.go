package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/run/apiv2/runpb"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

const runProject = "runway-test"

const runInventory = `inventory:
  - name: nightly
    type: job
    project_id: 1
    gcp_project: runway-test
    regions: [us-east1]
    artifact_repository: us-east1-docker.pkg.dev/runway-test/nightly
  - name: web
    type: service
    project_id: 1
    gcp_project: runway-test
    regions: [us-east1]
`

// runEnv is a local platform without the trigger function: the test plays the function's
// part (it receives the request, runs the job with the official client and records the
// outcome), so runwayctl run is tested on its own.
type runEnv struct {
	cl    *allclients.Clients
	store *state.Dir
	job   string

	mu       sync.Mutex
	received []*pubsub.Message
}

func newRunEnv(t *testing.T, script string) *runEnv {
	t.Helper()
	emu := emulatortest.Start(t, emulator.Options{OpDelay: time.Millisecond})
	ctx := context.Background()
	cl, err := allclients.Dial(ctx, emulatortest.Config(emu, runProject), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	dir := t.TempDir()
	store, err := state.NewDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	inv := writeFile(t, dir, "inventory.yml", runInventory)
	for k, v := range map[string]string{gcp.EmulatorHostEnv: emu.Addr(), state.EnvVar: store.Root(), platform.EnvInventory: inv,
		"CI_PIPELINE_ID": "", "CI_JOB_ID": "", "CI_JOB_URL": "", "GITLAB_USER_LOGIN": "", "USER": "dev"} {
		t.Setenv(k, v)
	}
	op, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{
		Parent: "projects/" + runProject + "/locations/us-east1", JobId: "nightly",
		Job: &runpb.Job{
			Labels: map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "nightly"},
			Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{
				Containers: []*runpb.Container{{Image: "img", Command: []string{"sh", "-c", script}}},
				Retries:    &runpb.TaskTemplate_MaxRetries{MaxRetries: 0},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	job, err := op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	topic := platform.TopicPath(runProject, platform.TriggerTopic("nightly"))
	if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	sub := "projects/" + runProject + "/subscriptions/trigger-nightly"
	if _, err := cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 30}); err != nil {
		t.Fatal(err)
	}
	return &runEnv{cl: cl, store: store, job: job.Name}
}

// serve plays the trigger function: for each request it records outcome with reason; a
// started outcome runs the job with the request's task count first.
func (e *runEnv) serve(t *testing.T, outcome, reason string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		err := e.cl.PubSub.Subscriber("trigger-nightly").Receive(ctx, func(ctx context.Context, m *pubsub.Message) {
			defer m.Ack()
			e.mu.Lock()
			e.received = append(e.received, m)
			e.mu.Unlock()
			var req platform.RunRequest
			if err := json.Unmarshal(m.Data, &req); err != nil {
				t.Errorf("request body: %v", err)
				return
			}
			rec := platform.RunRecord{RequestID: req.RequestID, Workload: req.Workload, Trigger: platform.TriggerManual, Outcome: outcome, Reason: reason, Attempts: 1, Time: time.Now()}
			if outcome == platform.RunStarted {
				op, err := e.cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: e.job, Overrides: &runpb.RunJobRequest_Overrides{TaskCount: int32(req.TaskCount)}})
				if err != nil {
					t.Errorf("RunJob: %v", err)
					return
				}
				x, err := op.Metadata()
				if err != nil {
					t.Errorf("RunJob metadata: %v", err)
					return
				}
				rec.Execution, rec.LogURI = x.Name, x.LogUri
			}
			b, _ := json.Marshal(rec)
			if _, err := e.store.Put(ctx, platform.RunRecordKey(req.Workload, req.RequestID), b, 0); err != nil {
				t.Errorf("record: %v", err)
			}
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("Receive: %v", err)
		}
	}()
}

func (e *runEnv) waitReceived(t *testing.T, n int) []*pubsub.Message {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		e.mu.Lock()
		got := append([]*pubsub.Message(nil), e.received...)
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
	}
	t.Fatalf("the trigger topic received fewer than %d messages", n)
	return nil
}

// TestRunPublishes checks the request runwayctl run publishes from GitLab CI.
func TestRunPublishes(t *testing.T) {
	e := newRunEnv(t, "true")
	e.serve(t, platform.RunSkipped, "previous run still active")
	t.Setenv("CI_PIPELINE_ID", "77")
	t.Setenv("CI_JOB_ID", "1001")
	t.Setenv("GITLAB_USER_LOGIN", "alice")
	t.Setenv("CI_JOB_URL", "https://gitlab.example.com/g/p/-/jobs/1001")
	stdout, stderr, code := execute(t, "run", "nightly", "--env", "LEVEL=debug", "--env", "EMPTY=", "--args", "migrate", "--task-count", "3",
		"--timeout", "30m", "--reason", "schema 42", "--concurrency-policy", "Allow", "--", "up", "--to=42")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	assertLines(t, "stdout", stdout, []string{"run request ci-77-1001 published for nightly"})
	m := e.waitReceived(t, 1)[0]
	if m.Attributes[platform.AttrKind] != platform.KindRun {
		t.Errorf("attributes %v, want %s=%s", m.Attributes, platform.AttrKind, platform.KindRun)
	}
	var got platform.RunRequest
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	want := platform.RunRequest{RequestID: "ci-77-1001", Workload: "nightly", Args: []string{"migrate", "up", "--to=42"},
		Env: map[string]string{"LEVEL": "debug", "EMPTY": ""}, TaskCount: 3, Timeout: "30m", ConcurrencyPolicy: "Allow",
		Reason: "schema 42", RequestedBy: "alice https://gitlab.example.com/g/p/-/jobs/1001"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request:\n got %+v\nwant %+v", got, want)
	}
}

// TestRunWait follows each outcome to its exit status.
func TestRunWait(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		outcome    string
		reason     string
		args       []string
		wantCode   int
		wantOut    []string // substrings of stdout
		wantStderr string
	}{
		{name: "succeeded", script: "true", outcome: platform.RunStarted, args: []string{"--task-count", "2"}, wantCode: 0,
			wantOut: []string{"execution nightly-", " started\n", "  logs: http://", "tasks: 0 running, 2 succeeded, 0 failed, 0 retried (of 2)", "succeeded in"}},
		{name: "failed", script: "exit 3", outcome: platform.RunStarted, wantCode: 1,
			wantOut: []string{"execution nightly-", "tasks: 0 running, 0 succeeded, 1 failed, 0 retried (of 1)"}, wantStderr: "failed after"},
		{name: "refused", script: "true", outcome: platform.RunRefused, reason: `env: "RUNWAY_X" is reserved`, wantCode: 2,
			wantStderr: `refused: env: "RUNWAY_X" is reserved`},
		{name: "skipped", script: "true", outcome: platform.RunSkipped, reason: "previous run still active: nightly-abcde", wantCode: 2,
			wantStderr: "skipped: previous run still active: nightly-abcde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRunEnv(t, tt.script)
			e.serve(t, tt.outcome, tt.reason)
			args := append([]string{"run", "nightly", "--wait", "--poll-interval", "20ms", "--request-id", "r-" + tt.name}, tt.args...)
			stdout, stderr, code := execute(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if !strings.HasPrefix(stdout, "run request r-"+tt.name+" published for nightly\n") {
				t.Errorf("stdout %q does not start with the publication", stdout)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout does not contain %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

// TestRunRefusesBadFlags checks what runwayctl run refuses before publishing anything.
func TestRunRefusesBadFlags(t *testing.T) {
	e := newRunEnv(t, "true")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "env without a value", args: []string{"run", "nightly", "--env", "LEVEL"}, want: `--env "LEVEL": want NAME=VALUE`},
		{name: "env twice", args: []string{"run", "nightly", "--env", "A=1", "--env", "A=2"}, want: "--env A is given twice"},
		{name: "bad timeout", args: []string{"run", "nightly", "--timeout", "ten"}, want: `runwayctl: run request refused: timeout: "ten" is not a duration such as 90s or 2h`},
		{name: "every broken rule", args: []string{"run", "nightly", "--timeout", "1.5s", "--task-count", "-1", "--env", "RUNWAY_X=1", "--concurrency-policy", "forbid"},
			want: `runwayctl: run request refused: env: "RUNWAY_X" is reserved: CLOUD_RUN_* and RUNWAY_* are set by the platform; task_count: is -1; it must be between 1 and 10000 (Cloud Run's limit); timeout: is 1.5s; Cloud Run takes whole seconds; concurrency_policy: "forbid" is not one of Allow, Forbid, Replace`},
		{name: "clear args with args", args: []string{"run", "nightly", "--clear-args", "--", "x"}, want: "args: clear_args and args are mutually exclusive"},
		{name: "a service", args: []string{"run", "web"}, want: `runwayctl: workload "web" is a service, not a job (`},
		{name: "unknown workload", args: []string{"run", "ghost"}, want: `runwayctl: workload "ghost" is not in the inventory (`},
		{name: "no inventory", args: []string{"run", "nightly", "--inventory", ""}, want: "no inventory: pass --inventory or set RUNWAY_INVENTORY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := execute(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.received) != 0 {
		t.Errorf("%d requests published, want none", len(e.received))
	}
}
