package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
)

const (
	project  = "runway-test"
	location = "us-east1"
	parent   = "projects/" + project + "/locations/" + location
)

func dial(t *testing.T, e *emulator.Emulator) *allclients.Clients {
	t.Helper()
	cl, err := allclients.Dial(context.Background(), emulatortest.Config(e, project), gcp.All)
	if err != nil {
		t.Fatalf("gcp.Dial: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createJob(t *testing.T, cl *allclients.Clients, id string, command ...string) *runpb.Job {
	t.Helper()
	ctx := ctxT(t)
	op, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: id, Job: &runpb.Job{
		Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{
			Containers: []*runpb.Container{{Image: "us-docker.pkg.dev/p/r/img:1", Command: command[:1], Args: command[1:],
				Env: []*runpb.EnvVar{{Name: "GREETING", Values: &runpb.EnvVar_Value{Value: "hello"}}}}},
		}},
	}})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job, err := op.Wait(ctx)
	if err != nil {
		t.Fatalf("CreateJob wait: %v", err)
	}
	return job
}

// TestCloudRunThroughOnePort runs a job with overrides through the official clients on the
// emulator's single address, then reads the attempt's output from log_uri on the same address.
func TestCloudRunThroughOnePort(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{OpDelay: 10 * time.Millisecond})
	cl := dial(t, e)
	job := createJob(t, cl, "greeter", "sh", "-c", `echo "$GREETING $NAME from $CLOUD_RUN_JOB task $CLOUD_RUN_TASK_INDEX"`)
	ctx := ctxT(t)
	op, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: job.Name, Overrides: &runpb.RunJobRequest_Overrides{
		ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Env: []*runpb.EnvVar{{Name: "NAME", Values: &runpb.EnvVar_Value{Value: "runway"}}}}},
	}})
	if err != nil {
		t.Fatalf("RunJob: %v", err)
	}
	exec, err := op.Wait(ctx)
	if err != nil {
		t.Fatalf("RunJob wait: %v", err)
	}
	if exec.SucceededCount != 1 || exec.CompletionTime == nil {
		t.Fatalf("execution = %v, want one succeeded task", exec)
	}
	resp, err := http.Get(exec.LogUri)
	if err != nil {
		t.Fatalf("GET log_uri: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "hello runway from greeter task 0") {
		t.Errorf("log %s = %q, want the attempt's output with the merged env", exec.LogUri, body)
	}
	if !strings.HasPrefix(exec.LogUri, "http://"+e.Addr()+"/") {
		t.Errorf("log_uri %s is not on the emulator's address %s", exec.LogUri, e.Addr())
	}
}

// TestScheduleToFunction wires what the deploy function will: a Cloud Scheduler job publishing
// to a topic, and an Eventarc trigger (a push subscription) delivering it to an HTTP function
// as a CloudEvent. A manual clock makes the slot come at once.
func TestScheduleToFunction(t *testing.T) {
	start := time.Date(2026, 11, 26, 9, 59, 30, 0, time.UTC)
	mc := clock.NewManual(start)
	e := emulatortest.Start(t, emulator.Options{Clock: mc})
	cl := dial(t, e)
	ctx := ctxT(t)

	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 10)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
	}))
	defer fn.Close()

	topic := "projects/" + project + "/topics/trigger-nightly"
	if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if _, err := cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + project + "/subscriptions/eventarc-trigger", Topic: topic,
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: fn.URL},
	}); err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	if _, err := cl.Scheduler.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: parent, Job: &schedulerpb.Job{
		Name: parent + "/jobs/runway-nightly", Schedule: "0 10 * * *", TimeZone: "Etc/UTC",
		Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{TopicName: topic, Data: []byte(`{"workload":"nightly"}`)}},
	}}); err != nil {
		t.Fatalf("scheduler CreateJob: %v", err)
	}
	mc.Advance(time.Minute) // past 10:00

	select {
	case d := <-got:
		if d.header.Get("Ce-Type") != "google.cloud.pubsub.topic.v1.messagePublished" || d.header.Get("Ce-Source") != "//pubsub.googleapis.com/"+topic {
			t.Errorf("CloudEvent headers = %v", d.header)
		}
		var ev struct {
			Message struct {
				Data []byte `json:"data"`
			} `json:"message"`
		}
		if err := json.Unmarshal(d.body, &ev); err != nil || string(ev.Message.Data) != `{"workload":"nightly"}` {
			t.Errorf("CloudEvent body = %s (%v), want the scheduler's data", d.body, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduled message never reached the function")
	}
	job, err := cl.Scheduler.GetJob(ctx, &schedulerpb.GetJobRequest{Name: parent + "/jobs/runway-nightly"})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC); !job.ScheduleTime.AsTime().Equal(want) {
		t.Errorf("schedule_time = %v, want %v", job.ScheduleTime.AsTime(), want)
	}
}

// TestSchedulerHTTPTargetRunsJob checks that a Cloud Scheduler http_target aimed at the Cloud
// Run REST :run path, on the emulator's own address, starts an execution.
func TestSchedulerHTTPTargetRunsJob(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{OpDelay: 10 * time.Millisecond})
	cl := dial(t, e)
	ctx := ctxT(t)
	job := createJob(t, cl, "direct", "true")
	if _, err := cl.Scheduler.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: parent, Job: &schedulerpb.Job{
		Name: parent + "/jobs/direct-run", Schedule: "0 0 1 1 *",
		Target: &schedulerpb.Job_HttpTarget{HttpTarget: &schedulerpb.HttpTarget{
			Uri: "http://" + e.Addr() + "/v2/" + job.Name + ":run", HttpMethod: schedulerpb.HttpMethod_POST,
		}},
	}}); err != nil {
		t.Fatalf("scheduler CreateJob: %v", err)
	}
	if _, err := cl.Scheduler.RunJob(ctx, &schedulerpb.RunJobRequest{Name: parent + "/jobs/direct-run"}); err != nil {
		t.Fatalf("scheduler RunJob: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		it := cl.Executions.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: job.Name})
		exec, err := it.Next()
		if err == nil && exec.CompletionTime != nil {
			if exec.SucceededCount != 1 {
				t.Errorf("execution = %v, want succeeded", exec)
			}
			return
		}
		if err != nil && err != iterator.Done {
			t.Fatalf("ListExecutions: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no completed execution after the scheduler fired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsFromExecutions checks that completed executions show up in Cloud Monitoring as
// the monitor will query them: one aggregated call for every job.
func TestMetricsFromExecutions(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 0, 5, 0, time.UTC)
	mc := clock.NewManual(start)
	e := emulatortest.Start(t, emulator.Options{Clock: mc, OpDelay: 10 * time.Millisecond})
	cl := dial(t, e)
	ctx := ctxT(t)
	for _, tc := range []struct {
		id      string
		command []string
	}{{"ok-job", []string{"true"}}, {"bad-job", []string{"false"}}} {
		job := createJob(t, cl, tc.id, tc.command...)
		op, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: job.Name, Overrides: &runpb.RunJobRequest_Overrides{}})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = op.Wait(ctx) // the failing job's operation ends in an error; the metric is what matters
	}
	mc.Advance(2 * time.Minute)
	it := cl.Metrics.ListTimeSeries(ctx, &monitoringpb.ListTimeSeriesRequest{
		Name:   "projects/" + project,
		Filter: `metric.type = "run.googleapis.com/job/completed_execution_count" AND resource.type = "cloud_run_job"`,
		Interval: &monitoringpb.TimeInterval{
			StartTime: timestamppb.New(start.Add(-time.Hour)), EndTime: timestamppb.New(mc.Now()),
		},
		Aggregation: &monitoringpb.Aggregation{
			AlignmentPeriod:    durationSeconds(3900),
			PerSeriesAligner:   monitoringpb.Aggregation_ALIGN_SUM,
			CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM,
			GroupByFields:      []string{"resource.label.job_name", "resource.label.location", "metric.label.result"},
		},
	})
	got := map[string]int64{}
	for {
		ts, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatalf("ListTimeSeries: %v", err)
		}
		var sum int64
		for _, p := range ts.Points {
			sum += p.Value.GetInt64Value()
		}
		got[ts.Resource.Labels["job_name"]+"/"+ts.Metric.Labels["result"]] += sum
	}
	want := map[string]int64{"ok-job/succeeded": 1, "bad-job/failed": 1}
	if len(got) != len(want) || got["ok-job/succeeded"] != 1 || got["bad-job/failed"] != 1 {
		t.Errorf("completed executions by job/result = %v, want %v", got, want)
	}
}

// TestFaultsOverHTTP makes a call fail on purpose through the admin endpoint, as a user of
// `runwayctl emulator` would.
func TestFaultsOverHTTP(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	cl := dial(t, e)
	rule := `{"method": "GetJob", "code": 7, "times": 1}`
	resp, err := http.Post("http://"+e.Addr()+"/emulator/v1/faults", "application/json", bytes.NewBufferString(rule))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST fault: %v %v", resp, err)
	}
	resp.Body.Close()
	_, err = cl.Jobs.GetJob(ctxT(t), &runpb.GetJobRequest{Name: parent + "/jobs/nope"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("GetJob with an injected fault = %v, want PermissionDenied", err)
	}
	_, err = cl.Jobs.GetJob(ctxT(t), &runpb.GetJobRequest{Name: parent + "/jobs/nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetJob after the fault was used up = %v, want NotFound", err)
	}
}

func TestClockEndpoint(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := emulatortest.Start(t, emulator.Options{Clock: clock.NewManual(start)})
	resp, err := http.Post("http://"+e.Addr()+"/emulator/v1/clock:advance", "application/json", strings.NewReader(`{"duration":"36h"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Now    time.Time `json:"now"`
		Manual bool      `json:"manual"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !got.Manual || !got.Now.Equal(start.Add(36*time.Hour)) || !e.Clock().Now().Equal(got.Now) {
		t.Errorf("clock after advance = %+v, want %v", got, start.Add(36*time.Hour))
	}
	real := emulatortest.Start(t, emulator.Options{})
	resp2, err := http.Post("http://"+real.Addr()+"/emulator/v1/clock:advance", "application/json", strings.NewReader(`{"duration":"1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusFailedDependency {
		t.Errorf("advancing the real clock: status %d, want %d", resp2.StatusCode, http.StatusFailedDependency)
	}
}

// TestManyExecutionsAtOnce starts 100 executions concurrently; all must finish.
func TestManyExecutionsAtOnce(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{OpDelay: 10 * time.Millisecond})
	cl := dial(t, e)
	job := createJob(t, cl, "burst", "true")
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: job.Name})
			if err == nil {
				var exec *runpb.Execution
				if exec, err = op.Wait(ctx); err == nil && exec.SucceededCount != 1 {
					err = status.Errorf(codes.Internal, "execution %s did not succeed", exec.Name)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	j, err := cl.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: job.Name})
	if err != nil || j.ExecutionCount != 100 {
		t.Errorf("job after 100 runs: execution_count %d, %v", j.GetExecutionCount(), err)
	}
}

func durationSeconds(s int64) *durationpb.Duration { return &durationpb.Duration{Seconds: s} }

// TestManualJumpFiresEachSlotAtItsTime: one jump of the manual clock across an hour of a */5
// job delivers twelve messages to the push endpoint, each with its slot as publish_time (as
// Cloud Scheduler publishes at the slot), none lost to pstest's 10-minute limit on undelivered
// messages.
func TestManualJumpFiresEachSlotAtItsTime(t *testing.T) {
	start := time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC)
	mc := clock.NewManual(start)
	e := emulatortest.Start(t, emulator.Options{Clock: mc})
	cl := dial(t, e)
	ctx := ctxT(t)
	var mu sync.Mutex
	var got []string
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Message struct {
				PublishTime time.Time `json:"publishTime"`
			} `json:"message"`
		}
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		got = append(got, ev.Message.PublishTime.Format("15:04:05"))
		mu.Unlock()
	}))
	defer fn.Close()
	topic := "projects/" + project + "/topics/ticks"
	if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + project + "/subscriptions/ticks", Topic: topic, PushConfig: &pubsubpb.PushConfig{PushEndpoint: fn.URL},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Scheduler.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: parent, Job: &schedulerpb.Job{
		Name: parent + "/jobs/every-5", Schedule: "*/5 * * * *",
		Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{TopicName: topic, Data: []byte("x")}},
	}}); err != nil {
		t.Fatal(err)
	}
	mc.Advance(time.Hour)
	var want []string
	for m := 5; m <= 60; m += 5 {
		want = append(want, start.Truncate(time.Hour).Add(time.Duration(m)*time.Minute).Format("15:04:05"))
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("publish times delivered = %v, want %v", got, want)
	}
	if now := mc.Now(); !now.Equal(start.Add(time.Hour)) {
		t.Fatalf("clock = %v after the jump, want %v", now, start.Add(time.Hour))
	}
}
