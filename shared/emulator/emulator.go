// Package emulator is the embedded local Google Cloud of Runway Jobs: Cloud Run Admin v2 (jobs,
// executions, tasks, operations), Cloud Scheduler v1, Cloud Monitoring v3 (the Cloud Run job
// metrics), Cloud Storage (a JSON API subset, for the durable state) and Pub/Sub
// (google-cloud-go's pstest) with Eventarc-style push delivery, all served on one address —
// gRPC (with server reflection), REST for Cloud Run, Scheduler and Monitoring (package rest)
// and plain HTTP side by side — so that the functions and runwayctl run end to end on one
// machine through the official clients (RUNWAY_EMULATOR_HOST=host:port).
//
// `runwayctl emulator` runs it as a process; tests start it in-process with Start (or
// emulatortest.Start) on a free loopback port.
//
// Fidelity limits (what differs from Google Cloud), in short; each service's package doc has
// the details, and docs/emulator.md the whole list:
//   - No authentication. IAM grants every permission to every caller unless a deny rule
//     (POST /emulator/v1/iam/deny, package iam) takes it away; then the RPCs it guards answer
//     PermissionDenied as Google does and TestIamPermissions (Cloud Run jobs, Pub/Sub topics
//     and subscriptions, Cloud Storage buckets) leaves it out.
//   - Cloud Run task attempts run the container's command as a host process: images are not
//     pulled, the filesystem and network are the host's.
//   - Operations answer GetOperation with a short long-poll (up to 1 s) so that op.Wait returns
//     as soon as the work is done.
//   - Monitoring accepts CreateTimeSeries for the run.googleapis.com job metrics (Google
//     refuses writes to them) so that tests can load data through the official client.
//   - gRPC and HTTP share one port: a connection that opens with the HTTP/2 preface is gRPC,
//     so the HTTP routes are served over HTTP/1.1 (or an h2c upgrade), not prior-knowledge
//     HTTP/2.
//   - Pub/Sub is pstest, with its own limits; push subscriptions are delivered as Eventarc
//     delivers to functions (CloudEvents, binary mode), not as plain Pub/Sub push.
package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/cloudrun"
	"runwayjobs.dev/shared/emulator/eventarc"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/emulator/iam"
	"runwayjobs.dev/shared/emulator/monitoring"
	"runwayjobs.dev/shared/emulator/rest"
	"runwayjobs.dev/shared/emulator/scheduler"
	"runwayjobs.dev/shared/emulator/storage"
)

// Options configure an emulator. The zero value serves on a free loopback port with the real
// clock.
type Options struct {
	// Addr is the host:port to listen on; "" means 127.0.0.1 on a free port.
	Addr string
	// Clock is the emulator's time; nil means the real clock.
	Clock clock.Clock
	// OpDelay is how long Cloud Run create/update/delete operations take (default 100ms).
	OpDelay time.Duration
	// IngestDelay is how long Monitoring points take to become visible (default 0).
	IngestDelay time.Duration
	// LogDir keeps task attempt output; "" means a temporary directory removed on Close.
	LogDir string
	// FaultSeed seeds the fault injector's random choices (default 1).
	FaultSeed uint64
}

// Emulator is a running emulator.
type Emulator struct {
	addr     string
	clock    clock.Clock
	faults   *fault.Injector
	iam      *iam.Policy
	listener net.Listener
	http     *http.Server
	grpc     *grpc.Server
	inproc   *bufconn.Listener // e.grpc's in-memory listener, for the REST transcoder
	restConn *grpc.ClientConn  // the transcoder's connection to it
	pubsub   *pstest.Server
	run      *cloudrun.Service
	sched    *scheduler.Service
	deliver  *eventarc.Deliverer
	cancel   context.CancelFunc
	done     chan struct{}
	closeMu  sync.Once
	closeErr error
}

// Start starts an emulator and returns once it accepts connections.
func Start(ctx context.Context, opts Options) (*Emulator, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator listen %s: %w", addr, err)
	}
	e := &Emulator{addr: l.Addr().String(), clock: opts.Clock, listener: l, done: make(chan struct{})}
	if e.clock == nil {
		e.clock = clock.Real{}
	}
	seed := opts.FaultSeed
	if seed == 0 {
		seed = 1
	}
	e.faults = fault.New(seed)
	e.iam = iam.New()
	e.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(e.faults.UnaryInterceptor(), e.iam.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(e.faults.StreamInterceptor()),
	)
	mux := http.NewServeMux()

	// Pub/Sub: pstest's service, registered on our server. pstest also listens on a port of its
	// own, which nothing uses.
	e.pubsub = pstest.NewServer()
	e.pubsub.SetTimeNowFunc(e.clock.Now)
	pubsubpb.RegisterPublisherServer(e.grpc, &e.pubsub.GServer)
	pubsubpb.RegisterSubscriberServer(e.grpc, &e.pubsub.GServer)
	pubsubpb.RegisterSchemaServiceServer(e.grpc, &e.pubsub.GServer)
	// google.iam.v1.IAMPolicy, which pstest does not serve: the Pub/Sub clients' topic and
	// subscription IAM calls. Cloud Run answers its jobs' IAM methods on its own service.
	iampb.RegisterIAMPolicyServer(e.grpc, e.iam.NewServer(
		iam.Kind{Match: nameOf("topics"), Permissions: []string{"pubsub.topics."}, Exists: func(ctx context.Context, name string) bool {
			_, err := e.pubsub.GServer.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name})
			return err == nil
		}},
		iam.Kind{Match: nameOf("subscriptions"), Permissions: []string{"pubsub.subscriptions."}, Exists: func(ctx context.Context, name string) bool {
			_, err := e.pubsub.GServer.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: name})
			return err == nil
		}},
	))

	store := monitoring.NewStore(e.clock)
	monitoring.New(monitoring.Options{Clock: e.clock, Store: store, IngestDelay: opts.IngestDelay}).Register(e.grpc)

	e.run = cloudrun.New(cloudrun.Options{
		Clock:    e.clock,
		OpDelay:  opts.OpDelay,
		Recorder: store,
		LogDir:   opts.LogDir,
		BaseURL:  func() string { return "http://" + e.addr },
		Faults:   e.faults,
		IAM:      e.iam,
	})
	e.run.Register(e.grpc, mux)

	httpClient := &http.Client{Timeout: 5 * time.Minute}
	e.sched = scheduler.New(scheduler.Options{Clock: e.clock, Publisher: publisher{e.pubsub}, HTTPClient: httpClient})
	e.sched.Register(e.grpc)
	e.sched.RegisterHTTP(mux)

	storage.New(storage.Options{Clock: e.clock, Faults: e.faults, IAM: e.iam}).Register(mux)

	e.deliver = eventarc.New(eventarc.Options{PubSub: e.pubsub, Clock: e.clock, Faults: e.faults, HTTPClient: httpClient})

	// Server reflection, so that grpcurl needs no proto files.
	reflection.Register(e.grpc)

	// REST (HTTP/JSON) for Cloud Run Admin v2, Cloud Scheduler v1 and Cloud Monitoring v3:
	// transcoded from the protos' google.api.http annotations and sent to e.grpc over an
	// in-memory connection, so that the interceptors apply as they do to gRPC.
	e.inproc = bufconn.Listen(1 << 20)
	go func() { _ = e.grpc.Serve(e.inproc) }()
	e.restConn, err = grpc.NewClient("passthrough:///emulator",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return e.inproc.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("emulator in-process gRPC connection: %w", err)
	}
	restHandler, err := rest.New(rest.Options{
		Conn:     e.restConn,
		Services: append(slices.Clone(cloudrun.RESTServices), schedulerpb.CloudScheduler_ServiceDesc.ServiceName, monitoringpb.MetricService_ServiceDesc.ServiceName),
		Rules:    cloudrun.HTTPRules,
	})
	if err != nil {
		l.Close()
		e.restConn.Close()
		return nil, fmt.Errorf("emulator REST routes: %w", err)
	}
	for _, p := range restHandler.Prefixes() {
		mux.Handle(p, restHandler)
	}

	mux.Handle("/emulator/v1/faults", e.faults.Handler())
	mux.Handle("/emulator/v1/faults/", e.faults.Handler())
	mux.Handle("/emulator/v1/iam/deny", e.iam.Handler())
	mux.HandleFunc("GET /emulator/v1/clock", e.serveClock)
	mux.HandleFunc("POST /emulator/v1/clock:advance", e.serveAdvance)
	mux.HandleFunc("GET /emulator/v1/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	// gRPC and HTTP/1.1 on one port: a connection that opens with the HTTP/2 preface (what gRPC
	// clients speak without TLS) goes to the gRPC server's own transport (splitListener); the
	// others to the HTTP server, where an h2c upgrade still reaches gRPC through ServeHTTP.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			e.grpc.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	e.http = &http.Server{Handler: h2c.NewHandler(handler, &http2.Server{}), ReadHeaderTimeout: 10 * time.Second}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.sched.Start(runCtx)
	e.deliver.Start(runCtx)
	split := newSplitListener(l)
	go split.serve()
	go func() {
		// Stop closes the listener before Serve returns: nothing to report.
		_ = e.grpc.Serve(split.grpc)
	}()
	go func() {
		defer close(e.done)
		if err := e.http.Serve(split.http); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.closeErr = err
		}
	}()
	return e, nil
}

// Addr returns the host:port the emulator serves on (for RUNWAY_EMULATOR_HOST).
func (e *Emulator) Addr() string { return e.addr }

// Faults returns the fault injector, to make calls fail or slow down on purpose.
func (e *Emulator) Faults() *fault.Injector { return e.faults }

// IAM returns the deny rules, to take permissions away on purpose.
func (e *Emulator) IAM() *iam.Policy { return e.iam }

// Clock returns the emulator's clock.
func (e *Emulator) Clock() clock.Clock { return e.clock }

// Close stops delivery, scheduling and running executions, then the server.
func (e *Emulator) Close() error {
	e.closeMu.Do(func() {
		e.cancel()
		errs := []error{e.deliver.Close(), e.sched.Close(), e.run.Close()}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.http.Shutdown(ctx); err != nil {
			errs = append(errs, e.http.Close())
		}
		errs = append(errs, e.restConn.Close())
		e.grpc.Stop()
		// Last, so that neither server saw its listener close before being told to stop.
		if err := e.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		<-e.done
		errs = append(errs, e.pubsub.Close(), e.closeErr)
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

func (e *Emulator) serveClock(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"now": e.clock.Now().UTC().Format(time.RFC3339Nano), "manual": e.clock.Manual()})
}

// serveAdvance moves a manual clock: POST /emulator/v1/clock:advance {"duration": "1h"} or
// {"to": "2026-12-01T00:00:00Z"}.
func (e *Emulator) serveAdvance(w http.ResponseWriter, r *http.Request) {
	m, ok := e.clock.(*clock.ManualClock)
	if !ok {
		http.Error(w, "the emulator runs on the real clock; start it with a manual clock to advance time", http.StatusFailedDependency)
		return
	}
	var req struct {
		Duration string    `json:"duration"`
		To       time.Time `json:"to"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&req); err != nil {
		http.Error(w, "clock:advance: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case req.Duration != "":
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d < 0 {
			http.Error(w, fmt.Sprintf("clock:advance: duration %q is not a positive Go duration", req.Duration), http.StatusBadRequest)
			return
		}
		m.Advance(d)
	case !req.To.IsZero():
		m.Set(req.To)
	default:
		http.Error(w, `clock:advance: give "duration" or "to"`, http.StatusBadRequest)
		return
	}
	e.serveClock(w, r)
}

// nameOf matches the Pub/Sub resource names projects/P/<collection>/ID.
func nameOf(collection string) func(string) bool {
	return func(name string) bool {
		parts := strings.Split(name, "/")
		return len(parts) == 4 && parts[0] == "projects" && parts[1] != "" && parts[2] == collection && parts[3] != ""
	}
}

// publisher publishes Cloud Scheduler's pubsub_target messages into pstest, refusing topics
// that don't exist as Pub/Sub does (pstest's own Publish helper would create them).
type publisher struct{ srv *pstest.Server }

func (p publisher) Publish(ctx context.Context, topic string, data []byte, attrs map[string]string) (string, error) {
	res, err := p.srv.GServer.Publish(ctx, &pubsubpb.PublishRequest{
		Topic:    topic,
		Messages: []*pubsubpb.PubsubMessage{{Data: data, Attributes: attrs}},
	})
	if err != nil {
		return "", fmt.Errorf("pubsub.Publish %s: %w", topic, err)
	}
	return res.MessageIds[0], nil
}
