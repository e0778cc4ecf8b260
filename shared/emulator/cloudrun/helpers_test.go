package cloudrun

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator/rest"
	"runwayjobs.dev/shared/gcp"
)

const (
	testProject  = "p"
	testLocation = "us-central1"
	testParent   = "projects/" + testProject + "/locations/" + testLocation
)

// env is a running emulator with the official clients pointed at it.
type env struct {
	svc   *Service
	rec   *fakeRecorder
	jobs  *run.JobsClient
	execs *run.ExecutionsClient
	tasks *run.TasksClient
	ops   longrunningpb.OperationsClient // for what JobsClient does not expose (CancelOperation)
	url   string                         // http://127.0.0.1:port of the HTTP routes
}

// newEnv starts a Service on a gRPC server and an HTTP server on 127.0.0.1:0. opts.Recorder
// and opts.BaseURL are filled in.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{rec: &fakeRecorder{}, url: "http://" + hlis.Addr().String()}
	if opts.Recorder == nil {
		opts.Recorder = e.rec
	}
	opts.BaseURL = func() string { return e.url }
	e.svc = New(opts)
	var gopts []grpc.ServerOption
	if opts.Faults != nil { // as the emulator chains it, so that REST calls meet it too
		gopts = append(gopts, grpc.UnaryInterceptor(opts.Faults.UnaryInterceptor()))
	}
	g := grpc.NewServer(gopts...)
	mux := http.NewServeMux()
	e.svc.Register(g, mux)
	hs := &http.Server{Handler: mux}
	go func() { _ = g.Serve(glis) }()
	go func() { _ = hs.Serve(hlis) }()
	conn, err := grpc.NewClient(glis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.ops = longrunningpb.NewOperationsClient(conn)
	rh, err := rest.New(rest.Options{Conn: conn, Services: RESTServices, Rules: HTTPRules})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rh.Prefixes() {
		mux.Handle(p, rh)
	}
	ctx := context.Background()
	t.Logf("transport %s", transport)
	newJobs, newExecs, newTasks := run.NewJobsClient, run.NewExecutionsClient, run.NewTasksClient
	co := gcp.Config{EmulatorHost: glis.Addr().String()}.Options()
	if transport == "rest" {
		newJobs, newExecs, newTasks = run.NewJobsRESTClient, run.NewExecutionsRESTClient, run.NewTasksRESTClient
		co = rest.ClientOptions(hlis.Addr().String())
	}
	if e.jobs, err = newJobs(ctx, co...); err != nil {
		t.Fatal(err)
	}
	if e.execs, err = newExecs(ctx, co...); err != nil {
		t.Fatal(err)
	}
	if e.tasks, err = newTasks(ctx, co...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		e.jobs.Close()
		e.execs.Close()
		e.tasks.Close()
		if err := e.svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		g.Stop()
		hs.Close()
	})
	return e
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// jobSpec returns a job whose container runs command.
func jobSpec(command ...string) *runpb.Job {
	return &runpb.Job{
		Template: &runpb.ExecutionTemplate{
			Template: &runpb.TaskTemplate{
				Containers: []*runpb.Container{{Image: "us-docker.pkg.dev/p/r/img:1", Command: command}},
			},
		},
	}
}

func withRetries(j *runpb.Job, n int32) *runpb.Job {
	j.Template.Template.Retries = &runpb.TaskTemplate_MaxRetries{MaxRetries: n}
	return j
}

func withTasks(j *runpb.Job, count, parallelism int32) *runpb.Job {
	j.Template.TaskCount, j.Template.Parallelism = count, parallelism
	return j
}

func withTimeout(j *runpb.Job, d time.Duration) *runpb.Job {
	j.Template.Template.Timeout = durationpb.New(d)
	return j
}

// createJob creates a job and waits for its operation.
func (e *env) createJob(t testing.TB, id string, j *runpb.Job) *runpb.Job {
	t.Helper()
	ctx := ctxT(t)
	op, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: testParent, JobId: id, Job: j})
	if err != nil {
		t.Fatalf("CreateJob %s: %v", id, err)
	}
	got, err := op.Wait(ctx)
	if err != nil {
		t.Fatalf("CreateJob %s: Wait: %v", id, err)
	}
	return got
}

// runJob runs a job and waits for the execution's end. err is the operation's error (a failed
// execution); the execution is returned either way.
func (e *env) runJob(t testing.TB, jobName string, ov *runpb.RunJobRequest_Overrides) (*runpb.Execution, error) {
	t.Helper()
	ctx := ctxT(t)
	op, err := e.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobName, Overrides: ov})
	if err != nil {
		t.Fatalf("RunJob %s: %v", jobName, err)
	}
	x, werr := op.Wait(ctx)
	if werr != nil {
		meta, err := op.Metadata()
		if err != nil || meta == nil {
			t.Fatalf("RunJob %s: Wait: %v; no metadata (%v)", jobName, werr, err)
		}
		x = meta
	}
	return x, werr
}

func (e *env) listTasks(t testing.TB, execName string) []*runpb.Task {
	t.Helper()
	var out []*runpb.Task
	it := e.tasks.ListTasks(ctxT(t), &runpb.ListTasksRequest{Parent: execName})
	for {
		tk, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatalf("ListTasks: %v", err)
		}
		out = append(out, tk)
	}
}

// logs fetches an execution's log_uri.
func (e *env) logs(t testing.TB, uri string) string {
	t.Helper()
	resp, err := http.Get(uri)
	if err != nil {
		t.Fatalf("GET %s: %v", uri, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", uri, resp.Status, b)
	}
	return string(b)
}

// codeOf is the gRPC code of a client's error, over either transport.
func codeOf(err error) codes.Code { return rest.StatusOf(err).Code() }

// badName is the code of a call on a malformed resource name: the service's InvalidArgument
// over gRPC; over REST no URL template matches the name, so the front end answers NotFound
// before any service sees the call, as Google's does.
func badName() codes.Code {
	if transport == "rest" {
		return codes.NotFound
	}
	return codes.InvalidArgument
}

// transport is how the official clients reach the service in this run of the tests: "grpc"
// or "rest" (TestMain runs every test once with each, or with -transport's one).
var transport = "grpc"

var transportFlag = flag.String("transport", "", `run the tests over this transport only ("grpc" or "rest"); empty means both`)

func TestMain(m *testing.M) {
	flag.Parse()
	code := 0
	for _, tr := range []string{"grpc", "rest"} {
		if *transportFlag != "" && *transportFlag != tr || tr == "rest" && flag.Lookup("test.fuzz").Value.String() != "" {
			continue
		}
		transport = tr
		fmt.Printf("=== transport %s\n", tr)
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	os.Exit(code)
}

// fakeRecorder records the Recorder calls as lines.
type fakeRecorder struct {
	mu     sync.Mutex
	events []string
}

func (f *fakeRecorder) add(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, s)
}

func (f *fakeRecorder) ExecutionStarted(project, location, job string, _ time.Time) {
	f.add(fmt.Sprintf("started %s/%s/%s", project, location, job))
}

func (f *fakeRecorder) ExecutionCompleted(project, location, job, result string, _ time.Time) {
	f.add(fmt.Sprintf("completed %s/%s/%s %s", project, location, job, result))
}

func (f *fakeRecorder) TaskAttemptCompleted(project, location, job, result string, attempt int, _ time.Time) {
	f.add(fmt.Sprintf("attempt %s/%s/%s %s %d", project, location, job, result, attempt))
}

// forJob returns the events about job, in order.
func (f *fakeRecorder) forJob(job string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, ev := range f.events {
		if strings.Contains(ev, "/"+job+" ") || strings.HasSuffix(ev, "/"+job) {
			out = append(out, ev)
		}
	}
	return out
}

func condOf(cs []*runpb.Condition, typ string) *runpb.Condition {
	for _, c := range cs {
		if c.Type == typ {
			return c
		}
	}
	return nil
}
