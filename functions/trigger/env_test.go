package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"
	"google.golang.org/api/iterator"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

const (
	testProject = "runway-test"
	region1     = "us-east1"
	region2     = "europe-west1"
)

// testInventory has the jobs the tests run ("nightly" lives in the second of its regions),
// a service and a job of another project.
const testInventory = `inventory:
  - name: nightly
    type: job
    project_id: 1
    gcp_project: runway-test
    artifact_repository: us-east1-docker.pkg.dev/runway-test/nightly
    regions: [us-east1, europe-west1]
  - name: migrate
    type: job
    project_id: 1
    gcp_project: runway-test
    artifact_repository: us-east1-docker.pkg.dev/runway-test/migrate
    regions: [us-east1]
  - name: web
    type: service
    project_id: 1
    gcp_project: runway-test
    regions: [us-east1]
`

// testTiming keeps the protocol's real-time waits short; leases are expired by moving the
// handler's clock, never by sleeping.
var testTiming = Timing{Lease: time.Minute, RunJob: 5 * time.Second, Settle: 5 * time.Second, Wait: 2 * time.Second, Replace: 20 * time.Second, Poll: 5 * time.Millisecond}

// testClock is the real clock plus an offset that tests move forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// env is an emulator, the official clients, a store directory, the inventory and a Handler.
type env struct {
	emu     *emulator.Emulator
	cl      *allclients.Clients
	store   *state.Dir
	inv     *inventory.Inventory
	invPath string
	clock   *testClock
	h       *Handler
	// passing is held (read) by every delivery in flight and (write) while deliver moves the
	// clock: time jumps between deliveries, as a redelivery comes later, never during one
	// (within a delivery only real time passes, which the lease is sized for).
	passing sync.RWMutex
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, emulator.Options{OpDelay: time.Millisecond})
}

// newEnvWith is newEnv on an emulator with opts. With opts.Clock set, the Handler tells
// Google Cloud's time by it (as on the local platform); leases stay on the test clock.
func newEnvWith(t testing.TB, opts emulator.Options) *env {
	t.Helper()
	emu := emulatortest.Start(t, opts)
	cl, err := allclients.Dial(context.Background(), emulatortest.Config(emu, testProject), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	dir := t.TempDir()
	store, err := state.NewDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join(dir, "inventory.yml")
	if err := os.WriteFile(invPath, []byte(testInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	c := &testClock{}
	now := c.Now
	if opts.Clock != nil {
		now = opts.Clock.Now
	}
	h := newHandler(cl.Clients, store, inv, now, zerolog.New(io.Discard)).WithTiming(testTiming)
	h.leaseNow = c.Now
	return &env{emu: emu, cl: cl, store: store, inv: inv, invPath: invPath, clock: c, h: h}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createJob creates a Runway-managed job of workload in region running `sh -c script`.
func (e *env) createJob(t testing.TB, workload, region string, s platform.Settings, script string) *runpb.Job {
	t.Helper()
	s.Workload = workload
	return e.createRawJob(t, workload, region, map[string]string{
		platform.LabelManagedBy: platform.ManagedByValue,
		platform.LabelWorkload:  workload,
	}, map[string]string{platform.AnnotationSettings: s.Encode()}, script)
}

func (e *env) createRawJob(t testing.TB, id, region string, labels, annotations map[string]string, script string) *runpb.Job {
	t.Helper()
	ctx := ctxT(t)
	op, err := e.cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{
		Parent: "projects/" + testProject + "/locations/" + region,
		JobId:  id,
		Job: &runpb.Job{
			Labels:      labels,
			Annotations: annotations,
			Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{
				Containers: []*runpb.Container{{
					Name:    "job",
					Image:   "us-east1-docker.pkg.dev/runway-test/" + id + "/app:1",
					Command: []string{"sh", "-c", script},
					Env:     []*runpb.EnvVar{plainEnv("FROM_JOB", "job"), plainEnv("SHARED", "job")},
				}},
				Retries: &runpb.TaskTemplate_MaxRetries{MaxRetries: 0},
			}},
		},
	})
	if err != nil {
		t.Fatalf("CreateJob %s: %v", id, err)
	}
	job, err := op.Wait(ctx)
	if err != nil {
		t.Fatalf("CreateJob %s: Wait: %v", id, err)
	}
	return job
}

// executions lists the job's executions, oldest first.
func (e *env) executions(t testing.TB, job string) []*runpb.Execution {
	t.Helper()
	var out []*runpb.Execution
	it := e.cl.Executions.ListExecutions(ctxT(t), &runpb.ListExecutionsRequest{Parent: job})
	for {
		x, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("ListExecutions %s: %v", job, err)
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreateTime.AsTime().Before(out[j].CreateTime.AsTime()) })
	return out
}

// record reads the RunRecord at key as runwayctl and the monitor do.
func (e *env) record(t testing.TB, key string) (platform.RunRecord, bool) {
	t.Helper()
	obj, err := e.store.Get(context.Background(), key)
	if errors.Is(err, state.ErrNotFound) {
		return platform.RunRecord{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var r platform.RunRecord
	if err := json.Unmarshal(obj.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r, true
}

// waitCompleted polls the execution until it has completed.
func (e *env) waitCompleted(t testing.TB, name string) *runpb.Execution {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		x, err := e.cl.Executions.GetExecution(ctxT(t), &runpb.GetExecutionRequest{Name: name})
		if err != nil {
			t.Fatalf("GetExecution %s: %v", name, err)
		}
		if x.CompletionTime != nil {
			return x
		}
	}
	t.Fatalf("execution %s did not complete", name)
	return nil
}

// pubsubEvent is the CloudEvent Eventarc delivers for a message on topic.
func pubsubEvent(t testing.TB, topic, msgID string, data []byte, attrs map[string]string, published time.Time) cloudevent.Event {
	t.Helper()
	type message struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes,omitempty"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
	}
	body, err := json.Marshal(map[string]any{
		"message":      message{Data: data, Attributes: attrs, MessageID: msgID, PublishTime: published},
		"subscription": "projects/" + testProject + "/subscriptions/eventarc-trigger",
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := cloudevent.New()
	ev.SetID(msgID)
	ev.SetType(event.PubSubType)
	ev.SetSource("//pubsub.googleapis.com/" + platform.TopicPath(testProject, topic))
	ev.SetTime(published)
	if err := ev.SetData("application/json", body); err != nil {
		t.Fatal(err)
	}
	return ev
}

// runEvent is the delivery of a run request on the workload's trigger topic.
func runEvent(t testing.TB, workload string, req platform.RunRequest) cloudevent.Event {
	t.Helper()
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return pubsubEvent(t, platform.TriggerTopic(workload), "m-"+req.RequestID, data, map[string]string{platform.AttrKind: platform.KindRun}, time.Now())
}

// scheduledEvent is the delivery of a Cloud Scheduler firing published at published.
func scheduledEvent(t testing.TB, workload, msgID string, published time.Time) cloudevent.Event {
	t.Helper()
	data := []byte(fmt.Sprintf(`{"workload":%q}`, workload))
	return pubsubEvent(t, platform.TriggerTopic(workload), msgID, data, map[string]string{platform.AttrKind: platform.KindScheduled}, published)
}

// deliver hands ev to the handler as Pub/Sub does: again and again while it answers with a
// transient error, moving the handler's clock past the lease between attempts (a redelivery
// comes later). It returns the final answer and the number of deliveries.
func (e *env) deliver(t testing.TB, ev cloudevent.Event, max int) (error, int) {
	t.Helper()
	var err error
	for n := 1; n <= max; n++ {
		e.passing.RLock()
		err = e.h.Handle(ctxT(t), ev)
		e.passing.RUnlock()
		if err == nil || event.IsPermanent(err) {
			return err, n
		}
		e.passing.Lock()
		e.clock.Advance(e.h.t.Lease + time.Second)
		e.passing.Unlock()
	}
	return err, max
}

// addFault activates a fault rule through the emulator's admin endpoint.
func (e *env) addFault(t testing.TB, rule string) {
	t.Helper()
	resp, err := http.Post("http://"+e.emu.Addr()+"/emulator/v1/faults", "application/json", strings.NewReader(rule))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST faults %s: %s %s", rule, resp.Status, b)
	}
}

// clearFaults removes every fault rule.
func (e *env) clearFaults(t testing.TB) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, "http://"+e.emu.Addr()+"/emulator/v1/faults", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
