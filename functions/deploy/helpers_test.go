package deploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/googleapis/gax-go/v2"
	"github.com/rs/zerolog"

	run "cloud.google.com/go/run/apiv2"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

const (
	project = "runway-test"
	region  = "us-east1"
	// otherRegion is the second region of workload "moving".
	otherRegion = "europe-west1"
	repo        = "us-east1-docker.pkg.dev/runway-test/jobs"
)

var testInventory = fmt.Sprintf(`inventory:
  - name: svc
    type: service
    project_id: 1
    gcp_project: %[1]s
    regions: [%[2]s]
  - name: nightly
    type: job
    project_id: 1
    gcp_project: %[1]s
    regions: [%[2]s]
    artifact_repository: %[3]s
    notifications:
      channels: [slack-team]
  - name: migrate
    type: job
    project_id: 1
    gcp_project: %[1]s
    regions: [%[2]s]
    artifact_repository: %[3]s
  - name: moving
    type: job
    project_id: 1
    gcp_project: %[1]s
    regions: [%[2]s, %[4]s]
    artifact_repository: %[3]s
`, project, region, repo, otherRegion)

// testEnv is one emulator, the official clients, a store and a handler whose writes are
// recorded.
type testEnv struct {
	emu    *emulator.Emulator
	cl     *gcp.Clients
	store  *state.Dir
	inv    *inventory.Inventory
	h      *Handler
	writes *writeLog
	now    time.Time
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	e := emulatortest.Start(t, emulator.Options{OpDelay: time.Millisecond})
	cl, err := gcp.Dial(context.Background(), emulatortest.Config(e, project), gcp.Jobs|gcp.Scheduler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	store, err := state.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("inventory.yml", []byte(testInventory))
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{emu: e, cl: cl, store: store, inv: inv, writes: &writeLog{}, now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	env.h = newHandler(countingJobs{cl.Jobs, env.writes}, countingScheduler{cl.Scheduler, env.writes}, store, inv,
		func() time.Time { return env.now }, zerolog.New(io.Discard))
	return env
}

// writeLog records the reads and writes the handler makes, as "service.Method name".
type writeLog struct {
	mu     sync.Mutex
	writes []string
	reads  int
}

func (w *writeLog) write(method, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, method+" "+name)
}

func (w *writeLog) read() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
}

// take returns the writes and reads since the last take.
func (w *writeLog) take() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out, n := w.writes, w.reads
	w.writes, w.reads = nil, 0
	return out, n
}

type countingJobs struct {
	jobsAPI
	log *writeLog
}

func (c countingJobs) GetJob(ctx context.Context, r *runpb.GetJobRequest, o ...gax.CallOption) (*runpb.Job, error) {
	c.log.read()
	return c.jobsAPI.GetJob(ctx, r, o...)
}

func (c countingJobs) CreateJob(ctx context.Context, r *runpb.CreateJobRequest, o ...gax.CallOption) (*run.CreateJobOperation, error) {
	c.log.write("run.CreateJob", r.JobId)
	return c.jobsAPI.CreateJob(ctx, r, o...)
}

func (c countingJobs) UpdateJob(ctx context.Context, r *runpb.UpdateJobRequest, o ...gax.CallOption) (*run.UpdateJobOperation, error) {
	c.log.write("run.UpdateJob", last(r.Job.Name))
	return c.jobsAPI.UpdateJob(ctx, r, o...)
}

func (c countingJobs) DeleteJob(ctx context.Context, r *runpb.DeleteJobRequest, o ...gax.CallOption) (*run.DeleteJobOperation, error) {
	c.log.write("run.DeleteJob", last(r.Name))
	return c.jobsAPI.DeleteJob(ctx, r, o...)
}

type countingScheduler struct {
	schedulerAPI
	log *writeLog
}

func (c countingScheduler) GetJob(ctx context.Context, r *schedulerpb.GetJobRequest, o ...gax.CallOption) (*schedulerpb.Job, error) {
	c.log.read()
	return c.schedulerAPI.GetJob(ctx, r, o...)
}

func (c countingScheduler) CreateJob(ctx context.Context, r *schedulerpb.CreateJobRequest, o ...gax.CallOption) (*schedulerpb.Job, error) {
	c.log.write("scheduler.CreateJob", last(r.Job.Name))
	return c.schedulerAPI.CreateJob(ctx, r, o...)
}

func (c countingScheduler) UpdateJob(ctx context.Context, r *schedulerpb.UpdateJobRequest, o ...gax.CallOption) (*schedulerpb.Job, error) {
	c.log.write("scheduler.UpdateJob", last(r.Job.Name))
	return c.schedulerAPI.UpdateJob(ctx, r, o...)
}

func (c countingScheduler) DeleteJob(ctx context.Context, r *schedulerpb.DeleteJobRequest, o ...gax.CallOption) error {
	c.log.write("scheduler.DeleteJob", last(r.Name))
	return c.schedulerAPI.DeleteJob(ctx, r, o...)
}

func (c countingScheduler) PauseJob(ctx context.Context, r *schedulerpb.PauseJobRequest, o ...gax.CallOption) (*schedulerpb.Job, error) {
	c.log.write("scheduler.PauseJob", last(r.Name))
	return c.schedulerAPI.PauseJob(ctx, r, o...)
}

func (c countingScheduler) ResumeJob(ctx context.Context, r *schedulerpb.ResumeJobRequest, o ...gax.CallOption) (*schedulerpb.Job, error) {
	c.log.write("scheduler.ResumeJob", last(r.Name))
	return c.schedulerAPI.ResumeJob(ctx, r, o...)
}

func last(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// pubsubEvent is what Eventarc delivers for a message published on topic.
func pubsubEvent(t testing.TB, id, topic string, data []byte) cloudevent.Event {
	t.Helper()
	e := cloudevent.New()
	e.SetID(id)
	e.SetType(event.PubSubType)
	e.SetSource("//pubsub.googleapis.com/" + platform.TopicPath(project, topic))
	body, _ := json.Marshal(map[string]any{
		"message":      map[string]any{"data": base64.StdEncoding.EncodeToString(data), "messageId": id, "publishTime": "2026-12-01T10:00:00Z"},
		"subscription": "projects/" + project + "/subscriptions/eventarc-" + topic,
	})
	if err := e.SetData("application/json", body); err != nil {
		t.Fatal(err)
	}
	return e
}

func requestEvent(t testing.TB, topicWorkload string, req platform.DeployRequest) cloudevent.Event {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return pubsubEvent(t, "ev-"+req.RequestID, platform.DeployTopic(topicWorkload), b)
}

func (e *testEnv) getJob(t testing.TB, workload string) *runpb.Job {
	t.Helper()
	return e.getJobIn(t, region, workload)
}

func (e *testEnv) getJobIn(t testing.TB, region, workload string) *runpb.Job {
	t.Helper()
	j, err := e.cl.Jobs.GetJob(context.Background(), &runpb.GetJobRequest{Name: platform.JobName(project, region, workload)})
	if err != nil {
		t.Fatalf("GetJob %s: %v", workload, err)
	}
	return j
}

func (e *testEnv) record(t testing.TB, workload, id string) platform.DeployRecord {
	t.Helper()
	o, err := e.store.Get(context.Background(), platform.DeployRecordKey(workload, id))
	if err != nil {
		t.Fatalf("deploy record %s/%s: %v", workload, id, err)
	}
	var r platform.DeployRecord
	if err := json.Unmarshal(o.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// plan is what runwayctl plan computes and prints for req, from the same clock as the
// handler's: nil when the request is refused before a plan (topic, inventory, manifest).
func (e *testEnv) plan(t testing.TB, topic string, req platform.DeployRequest) (*desired.Plan, error) {
	t.Helper()
	w, ok := e.inv.Lookup(topic)
	if !ok || w.Type != inventory.Job || req.Action == platform.ActionDelete || (req.Workload != "" && req.Workload != topic) {
		return nil, nil
	}
	job, err := parseManifest(w.Name, &req)
	if err != nil {
		return nil, nil
	}
	obs, err := desired.Observe(context.Background(), e.cl.Jobs, e.cl.Scheduler, w)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	p, err := desired.PlanFor(desired.RequestInput(job, w, &req, e.now), obs)
	return &p, err
}

// writesOf lists a plan's steps as the writeLog records the calls that make them.
func writesOf(p *desired.Plan) []string {
	method := map[desired.Action]string{
		desired.CreateJob: "run.CreateJob", desired.UpdateJob: "run.UpdateJob", desired.DeleteStrayJob: "run.DeleteJob",
		desired.CreateScheduler: "scheduler.CreateJob", desired.UpdateScheduler: "scheduler.UpdateJob",
		desired.DeleteScheduler: "scheduler.DeleteJob", desired.DeleteStrayScheduler: "scheduler.DeleteJob",
		desired.PauseScheduler: "scheduler.PauseJob", desired.ResumeScheduler: "scheduler.ResumeJob",
	}
	var out []string
	for _, s := range p.Steps {
		m, ok := method[s.Action]
		if !ok {
			m = fmt.Sprintf("action %d", s.Action)
		}
		out = append(out, m+" "+last(s.Name))
	}
	return out
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// serve starts the functions framework on a free loopback port, as the Cloud Functions runtime
// would with FUNCTION_TARGET set, and returns its URL. The framework has no shutdown: the
// server lives until the test binary exits.
func serve(t *testing.T) string {
	t.Helper()
	t.Setenv("FUNCTION_TARGET", FunctionName)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	go funcframework.StartHostPort("127.0.0.1", fmt.Sprint(addr.Port))
	url := fmt.Sprintf("http://%s/", addr)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr.String()); err == nil {
			c.Close()
			return url
		}
	}
	t.Fatalf("functions framework did not listen on %s", addr)
	return ""
}
