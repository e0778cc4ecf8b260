package scheduler

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	scheduler "cloud.google.com/go/scheduler/apiv1"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/rest"
	"runwayjobs.dev/shared/gcp"
)

const (
	testParent  = "projects/p1/locations/europe-west1"
	testProject = "p1"
)

// env is a Service served on 127.0.0.1:0 by a real gRPC server and driven by the official client.
type env struct {
	svc    *Service
	client *scheduler.CloudSchedulerClient
}

// newEnv starts the service (Start included) with opts and returns the official client for it.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	svc := New(opts)
	g := grpc.NewServer()
	svc.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	t.Logf("transport %s", transport)
	var client *scheduler.CloudSchedulerClient
	var conn *grpc.ClientConn
	if transport == "rest" {
		var hs *httptest.Server
		conn, hs = restServer(t, lis.Addr().String())
		client, err = scheduler.NewCloudSchedulerRESTClient(context.Background(), rest.ClientOptions(hs.Listener.Addr().String())...)
	} else {
		client, err = scheduler.NewCloudSchedulerClient(context.Background(), gcp.Config{EmulatorHost: lis.Addr().String()}.Options()...)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		if conn != nil {
			conn.Close()
		}
		g.Stop()
		cancel()
		if err := svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &env{svc: svc, client: client}
}

// create creates j (its name relative to testParent when it has no slash) and fails the test on error.
func (e *env) create(t testing.TB, j *schedulerpb.Job) *schedulerpb.Job {
	t.Helper()
	got, err := e.client.CreateJob(context.Background(), &schedulerpb.CreateJobRequest{Parent: testParent, Job: j})
	if err != nil {
		t.Fatalf("CreateJob %s: %v", j.GetName(), err)
	}
	return got
}

// get returns a job and fails the test on error.
func (e *env) get(t testing.TB, name string) *schedulerpb.Job {
	t.Helper()
	got, err := e.client.GetJob(context.Background(), &schedulerpb.GetJobRequest{Name: name})
	if err != nil {
		t.Fatalf("GetJob %s: %v", name, err)
	}
	return got
}

// jobName returns the full name of a job id under testParent.
func jobName(id string) string { return testParent + "/jobs/" + id }

// httpJob returns a job posting to uri on schedule.
func httpJob(id, sched, uri string) *schedulerpb.Job {
	return &schedulerpb.Job{
		Name:     jobName(id),
		Schedule: sched,
		Target:   &schedulerpb.Job_HttpTarget{HttpTarget: &schedulerpb.HttpTarget{Uri: uri}},
	}
}

// pubsubJob returns a job publishing data to topic on schedule.
func pubsubJob(id, sched, topic string, data string) *schedulerpb.Job {
	return &schedulerpb.Job{
		Name:     jobName(id),
		Schedule: sched,
		Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{
			TopicName: topic, Data: []byte(data), Attributes: map[string]string{"k": "v"},
		}},
	}
}

// restServer serves the REST transcoder of the CloudScheduler service on an HTTP server,
// calling the gRPC server at addr.
func restServer(t testing.TB, addr string) (*grpc.ClientConn, *httptest.Server) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := rest.New(rest.Options{Conn: conn, Services: []string{schedulerpb.CloudScheduler_ServiceDesc.ServiceName}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return conn, hs
}

// code returns the gRPC code of err, over either transport.
func code(err error) codes.Code { return rest.StatusOf(err).Code() }

// badName is the code of a call on a malformed resource name: the service's InvalidArgument
// over gRPC; over REST no URL template matches the name, so the front end answers NotFound
// before any service sees the call, as Google's does.
func badName() codes.Code {
	if transport == "rest" {
		return codes.NotFound
	}
	return codes.InvalidArgument
}

// transport is how the official client reaches the service in this run of the tests: "grpc"
// or "rest" (TestMain runs every test once with each, or with -transport's one).
var transport = "grpc"

var transportFlag = flag.String("transport", "", `run the tests over this transport only ("grpc" or "rest"); empty means both`)

func TestMain(m *testing.M) {
	flag.Parse()
	exit := 0
	for _, tr := range []string{"grpc", "rest"} {
		if *transportFlag != "" && *transportFlag != tr || tr == "rest" && flag.Lookup("test.fuzz").Value.String() != "" {
			continue
		}
		transport = tr
		fmt.Printf("=== transport %s\n", tr)
		if c := m.Run(); c != 0 {
			exit = c
		}
	}
	os.Exit(exit)
}

// message is one message the recorder received.
type message struct {
	topic string
	data  string
	attrs map[string]string
}

// recorder is the Publisher of the tests: a stateful in-memory fake (not a call-expectation
// mock) that keeps every message it is given, in order, and fails the first `fail` calls with
// err. It is safe for concurrent use.
type recorder struct {
	mu   sync.Mutex
	msgs []message
	fail int
	err  error
}

// Publish records the message or fails, and returns a sequential message ID.
func (r *recorder) Publish(_ context.Context, topic string, data []byte, attrs map[string]string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return "", r.err
	}
	cp := map[string]string{}
	for k, v := range attrs {
		cp[k] = v
	}
	r.msgs = append(r.msgs, message{topic: topic, data: string(data), attrs: cp})
	return strconv.Itoa(len(r.msgs)), nil
}

// messages returns a copy of what was published.
func (r *recorder) messages() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message(nil), r.msgs...)
}

var _ Publisher = (*recorder)(nil)

// hit is one request an HTTP target received.
type hit struct {
	method string
	path   string
	header http.Header
	body   string
	at     time.Time // on the target's clock
	real   time.Time // wall time, for backoff intervals
}

// target is an httptest.Server standing for a job's HTTP endpoint: it records every request
// and answers with respond(n) for the n-th (from 0), 200 when respond is nil.
type target struct {
	*httptest.Server
	clock   clock.Clock
	respond func(n int) int

	mu   sync.Mutex
	hits []hit
}

// newTarget starts a target whose arrival times are read on c.
func newTarget(t testing.TB, c clock.Clock, respond func(n int) int) *target {
	tg := &target{clock: c, respond: respond}
	tg.Server = httptest.NewServer(http.HandlerFunc(tg.serve))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := hit{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: string(body), at: tg.clock.Now(), real: time.Now()}
	tg.mu.Lock()
	n := len(tg.hits)
	tg.hits = append(tg.hits, h)
	tg.mu.Unlock()
	code := http.StatusOK
	if tg.respond != nil {
		code = tg.respond(n)
	}
	w.WriteHeader(code)
}

// got returns a copy of the requests received so far.
func (tg *target) got() []hit {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]hit(nil), tg.hits...)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// offsetClock is a real (non-manual) clock that reads time.Now shifted by an offset, so a test can
// put the next minute a moment away and exercise the real-clock firing loop without waiting for it.
type offsetClock struct{ off atomic.Int64 }

// setNextMinuteIn shifts the clock so that the next whole minute is d away, and returns that minute.
func (c *offsetClock) setNextMinuteIn(d time.Duration) time.Time {
	now := time.Now()
	slot := now.Truncate(time.Minute).Add(2 * time.Minute)
	c.off.Store(int64(slot.Add(-d).Sub(now)))
	return slot.UTC()
}

func (c *offsetClock) Now() time.Time                  { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) OnAdvance(fn func(time.Time))    {}
func (c *offsetClock) OnWake(func() (time.Time, bool)) {}
func (c *offsetClock) Manual() bool                    { return false }

var _ clock.Clock = (*offsetClock)(nil)
