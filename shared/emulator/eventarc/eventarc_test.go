package eventarc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/gcp"
)

const project = "p"

// env is a pstest server, the official client connected to it and a Deliverer.
type env struct {
	srv    *pstest.Server
	client *pubsub.Client
	d      *Deliverer
}

// newEnv starts everything; opts.PubSub is filled in and PollInterval defaults to 20ms.
// The Deliverer is not started.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	client, err := pubsub.NewClient(context.Background(), project,
		gcp.Config{EmulatorHost: srv.Addr, Project: project}.Options()...)
	if err != nil {
		t.Fatalf("pubsub.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	opts.PubSub = srv
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	d := New(opts)
	t.Cleanup(func() { _ = d.Close() })
	return &env{srv: srv, client: client, d: d}
}

func (e *env) start(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e.d.Start(ctx)
}

func (e *env) topic(t testing.TB, id string) string {
	t.Helper()
	name := "projects/" + project + "/topics/" + id
	if _, err := e.client.TopicAdminClient.CreateTopic(context.Background(), &pb.Topic{Name: name}); err != nil {
		t.Fatalf("CreateTopic %s: %v", name, err)
	}
	return name
}

// subscribe creates a subscription to topic; a non-empty endpoint makes it a push
// subscription (an Eventarc trigger). edit may set the policies.
func (e *env) subscribe(t testing.TB, id, topic, endpoint string, edit func(*pb.Subscription)) string {
	t.Helper()
	s := &pb.Subscription{Name: "projects/" + project + "/subscriptions/" + id, Topic: topic}
	if endpoint != "" {
		s.PushConfig = &pb.PushConfig{PushEndpoint: endpoint}
	}
	if edit != nil {
		edit(s)
	}
	if _, err := e.client.SubscriptionAdminClient.CreateSubscription(context.Background(), s); err != nil {
		t.Fatalf("CreateSubscription %s: %v", s.Name, err)
	}
	return s.Name
}

func (e *env) publish(t testing.TB, topic string, data []byte, attrs map[string]string) string {
	t.Helper()
	res, err := e.client.TopicAdminClient.Publish(context.Background(), &pb.PublishRequest{
		Topic: topic, Messages: []*pb.PubsubMessage{{Data: data, Attributes: attrs}},
	})
	if err != nil {
		t.Fatalf("Publish %s: %v", topic, err)
	}
	return res.MessageIds[0]
}

// pullOne pulls one message from a pull subscription with the official client.
func (e *env) pullOne(t testing.TB, sub string, timeout time.Duration) *pb.ReceivedMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		res, err := e.client.SubscriptionAdminClient.Pull(context.Background(), &pb.PullRequest{Subscription: sub, MaxMessages: 1})
		if err != nil {
			t.Fatalf("Pull %s: %v", sub, err)
		}
		if len(res.ReceivedMessages) > 0 {
			return res.ReceivedMessages[0]
		}
	}
	t.Fatalf("nothing to pull from %s after %v", sub, timeout)
	return nil
}

func retryPolicy(minimum, maximum time.Duration) func(*pb.Subscription) {
	return func(s *pb.Subscription) {
		s.RetryPolicy = &pb.RetryPolicy{MinimumBackoff: durationpb.New(minimum), MaximumBackoff: durationpb.New(maximum)}
	}
}

// request is what an endpoint received.
type request struct {
	at     time.Time
	header http.Header
	body   []byte
}

// endpoint is a function URL that records requests and answers with status(n) for the n-th
// request (1-based); handle, if set, runs first (to block or sleep).
type endpoint struct {
	URL string

	mu       sync.Mutex
	reqs     []request
	inFlight int
	peak     int
	status   func(n int) int
	handle   func(r *http.Request)
}

func newEndpoint(t testing.TB, status func(n int) int) *endpoint {
	ep := &endpoint{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ep.mu.Lock()
		ep.reqs = append(ep.reqs, request{at: time.Now(), header: r.Header.Clone(), body: body})
		n := len(ep.reqs)
		ep.inFlight++
		ep.peak = max(ep.peak, ep.inFlight)
		handle, status := ep.handle, ep.status
		ep.mu.Unlock()
		if handle != nil {
			handle(r)
		}
		code := http.StatusOK
		if status != nil {
			code = status(n)
		}
		ep.mu.Lock()
		ep.inFlight--
		ep.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	ep.URL = srv.URL + "/fn"
	return ep
}

func (ep *endpoint) requests() []request {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]request(nil), ep.reqs...)
}

// wait returns the requests once there are at least n, failing the test after timeout.
func (ep *endpoint) wait(t testing.TB, n int, timeout time.Duration) []request {
	t.Helper()
	var got []request
	waitFor(t, timeout, func() bool { got = ep.requests(); return len(got) >= n }, "%d requests", n)
	return got
}

// always answers every request with code.
func always(code int) func(int) int { return func(int) int { return code } }

// sequence answers the n-th request with codes[n-1], then 200.
func sequence(codes ...int) func(int) int {
	return func(n int) int {
		if n <= len(codes) {
			return codes[n-1]
		}
		return http.StatusOK
	}
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for "+what, append([]any{timeout}, args...)...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// acked reports whether pstest received an ack for message id.
func (e *env) acked(id string) bool { return e.srv.Message(id).Acks > 0 }

func TestCloudEvent(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		attrs     map[string]string
		wantAttrs map[string]any // as decoded from the body; nil means the key is absent
		wantData  bool           // whether the body has a "data" key
	}{
		{
			name:      "data and attributes",
			data:      []byte(`{"action":"INSERT","digest":"x@sha256:00"}`),
			attrs:     map[string]string{"workload": "nightly", "origin": "runwayctl"},
			wantAttrs: map[string]any{"workload": "nightly", "origin": "runwayctl"},
			wantData:  true,
		},
		{
			name:     "data only",
			data:     []byte{0, 1, 2, 0xff},
			wantData: true,
		},
		{
			name:      "attributes only",
			attrs:     map[string]string{"tick": "1"},
			wantAttrs: map[string]any{"tick": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			ep := newEndpoint(t, nil)
			topic := e.topic(t, "deploy")
			sub := e.subscribe(t, "trigger-deploy", topic, ep.URL, nil)
			e.start(t)
			id := e.publish(t, topic, tt.data, tt.attrs)
			got := ep.wait(t, 1, 5*time.Second)[0]
			publishTime := timestamp(e.srv.Message(id).PublishTime)

			wantHeader := map[string]string{
				"Content-Type":   "application/json",
				"Ce-Specversion": "1.0",
				"Ce-Id":          id,
				"Ce-Source":      "//pubsub.googleapis.com/projects/p/topics/deploy",
				"Ce-Type":        "google.cloud.pubsub.topic.v1.messagePublished",
				"Ce-Time":        publishTime,
				"Ce-Subject":     "", // Eventarc sets none for Pub/Sub
				"User-Agent":     userAgent,
				"From":           "noreply@google.com",
			}
			for k, want := range wantHeader {
				if v := got.header.Get(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, got.header.Get("Ce-Time")); err != nil {
				t.Errorf("ce-time is not RFC 3339: %v", err)
			}

			var body map[string]any
			if err := json.Unmarshal(got.body, &body); err != nil {
				t.Fatalf("body %s: %v", got.body, err)
			}
			msg, _ := body["message"].(map[string]any)
			wantMsg := map[string]any{
				"messageId":    id,
				"message_id":   id,
				"publishTime":  publishTime,
				"publish_time": publishTime,
			}
			if tt.wantAttrs != nil {
				wantMsg["attributes"] = tt.wantAttrs
			}
			if tt.wantData {
				wantMsg["data"] = base64.StdEncoding.EncodeToString(tt.data)
			}
			wantBody := map[string]any{"message": wantMsg, "subscription": sub}
			if diff := cmp.Diff(wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if tt.wantData {
				data, err := base64.StdEncoding.DecodeString(msg["data"].(string))
				if err != nil || string(data) != string(tt.data) {
					t.Errorf("data decodes to %q (%v), want %q", data, err, tt.data)
				}
			}
			waitFor(t, time.Second, func() bool { return e.acked(id) }, "the ack")
		})
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name         string
		status       func(int) int
		wantRequests int
	}{
		{name: "200 acks", status: always(http.StatusOK), wantRequests: 1},
		{name: "201 acks", status: always(http.StatusCreated), wantRequests: 1},
		{name: "202 acks", status: always(http.StatusAccepted), wantRequests: 1},
		{name: "204 acks", status: always(http.StatusNoContent), wantRequests: 1},
		{name: "203 is not in Pub/Sub's list", status: sequence(http.StatusNonAuthoritativeInfo), wantRequests: 2},
		{name: "302 is not followed", status: sequence(http.StatusFound), wantRequests: 2},
		{name: "400 nacks", status: sequence(http.StatusBadRequest), wantRequests: 2},
		{name: "429 nacks", status: sequence(http.StatusTooManyRequests), wantRequests: 2},
		{name: "500 twice nacks twice", status: sequence(500, 500), wantRequests: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			ep := newEndpoint(t, tt.status)
			topic := e.topic(t, "t")
			e.subscribe(t, "s", topic, ep.URL, retryPolicy(10*time.Millisecond, 20*time.Millisecond))
			e.start(t)
			id := e.publish(t, topic, []byte("x"), nil)
			waitFor(t, 5*time.Second, func() bool { return e.acked(id) }, "the ack")
			time.Sleep(100 * time.Millisecond) // nothing more may come
			if got := len(ep.requests()); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
			if got := e.srv.Message(id).Acks; got != 1 {
				t.Errorf("%d acks, want 1", got)
			}
		})
	}
}

func TestConnectionErrorNacks(t *testing.T) {
	e := newEnv(t, Options{})
	// An endpoint that accepts each connection and closes it at once: every attempt is a
	// connection error, and counted.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	topic := e.topic(t, "t")
	e.subscribe(t, "s", topic, "http://"+l.Addr().String()+"/", retryPolicy(10*time.Millisecond, 20*time.Millisecond))
	e.start(t)
	id := e.publish(t, topic, []byte("x"), nil)
	waitFor(t, 5*time.Second, func() bool { return conns.Load() >= 3 }, "3 attempts")
	if e.acked(id) {
		t.Error("a message that could not be delivered was acked")
	}
}

func TestRedeliveryBackoff(t *testing.T) {
	const minimum, maximum = 80 * time.Millisecond, 250 * time.Millisecond
	tests := []struct {
		name       string
		deadLetter bool // attempts counted by pstest (dead-letter policy) or by the Deliverer
	}{
		{name: "attempts counted by pstest", deadLetter: true},
		{name: "attempts counted by the deliverer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			ep := newEndpoint(t, sequence(500, 500, 500, 500))
			topic := e.topic(t, "t")
			dead := e.topic(t, "dead")
			e.subscribe(t, "s", topic, ep.URL, func(s *pb.Subscription) {
				retryPolicy(minimum, maximum)(s)
				if tt.deadLetter {
					s.DeadLetterPolicy = &pb.DeadLetterPolicy{DeadLetterTopic: dead, MaxDeliveryAttempts: 10}
				}
			})
			e.start(t)
			id := e.publish(t, topic, []byte("x"), nil)
			waitFor(t, 5*time.Second, func() bool { return e.acked(id) }, "the ack")
			reqs := ep.requests()
			if len(reqs) != 5 {
				t.Fatalf("%d requests, want 5", len(reqs))
			}
			// 80ms, 160ms, then capped at 250ms.
			wantGaps := []time.Duration{minimum, 2 * minimum, maximum, maximum}
			for i, want := range wantGaps {
				gap := reqs[i+1].at.Sub(reqs[i].at)
				if gap < want || gap > want+200*time.Millisecond {
					t.Errorf("gap before attempt %d = %v, want %v (+ up to 200ms)", i+2, gap, want)
				}
			}
			// pstest handed the message out once: the Deliverer kept it leased and pushed the
			// retries itself (a released message older than 10 minutes is deleted by pstest).
			if got := e.srv.Message(id).Deliveries; got != 1 {
				t.Errorf("pstest delivered the message %d times, want 1", got)
			}
		})
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int32
	}{
		{name: "minimum of 5", maxAttempts: 5},
		{name: "7 attempts", maxAttempts: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			ep := newEndpoint(t, always(http.StatusInternalServerError))
			topic := e.topic(t, "trigger")
			dead := e.topic(t, "trigger-dead")
			deadPull := e.subscribe(t, "trigger-dead-pull", dead, "", nil)
			e.subscribe(t, "trigger-sub", topic, ep.URL, func(s *pb.Subscription) {
				retryPolicy(5*time.Millisecond, 10*time.Millisecond)(s)
				s.DeadLetterPolicy = &pb.DeadLetterPolicy{DeadLetterTopic: dead, MaxDeliveryAttempts: tt.maxAttempts}
			})
			e.start(t)
			id := e.publish(t, topic, []byte("poison"), map[string]string{"workload": "w"})

			got := e.pullOne(t, deadPull, 5*time.Second)
			time.Sleep(100 * time.Millisecond) // no attempt may follow
			if n := len(ep.requests()); n != int(tt.maxAttempts) {
				t.Errorf("%d delivery attempts, want %d", n, tt.maxAttempts)
			}
			orig := e.srv.Message(id)
			if orig.Acks != 1 {
				t.Errorf("original acked %d times, want 1", orig.Acks)
			}
			if got.Message.MessageId == id {
				t.Errorf("dead-lettered message kept ID %s; Pub/Sub publishes a new message", id)
			}
			if string(got.Message.Data) != "poison" {
				t.Errorf("dead-lettered data %q, want %q", got.Message.Data, "poison")
			}
			wantAttrs := map[string]string{
				"workload": "w",
				"CloudPubSubDeadLetterSourceDeliveryCount":       map[int32]string{5: "5", 7: "7"}[tt.maxAttempts],
				"CloudPubSubDeadLetterSourceSubscription":        "trigger-sub",
				"CloudPubSubDeadLetterSourceSubscriptionProject": "p",
				"CloudPubSubDeadLetterSourceTopicPublishTime":    orig.PublishTime.UTC().Format("2006-01-02T15:04:05.000+00:00"),
			}
			if diff := cmp.Diff(wantAttrs, got.Message.Attributes); diff != "" {
				t.Errorf("dead-letter attributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		faults := fault.New(1)
		faults.SetDelivery(fault.Delivery{DuplicateRate: 1})
		e := newEnv(t, Options{Faults: faults})
		ep := newEndpoint(t, nil)
		topic := e.topic(t, "t")
		e.subscribe(t, "s", topic, ep.URL, nil)
		e.start(t)
		id := e.publish(t, topic, []byte("x"), nil)
		reqs := ep.wait(t, 2, 5*time.Second)
		time.Sleep(100 * time.Millisecond)
		if n := len(ep.requests()); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
		for i, r := range reqs {
			if r.header.Get("Ce-Id") != id {
				t.Errorf("request %d has ce-id %q, want %q", i, r.header.Get("Ce-Id"), id)
			}
		}
		if string(reqs[0].body) != string(reqs[1].body) {
			t.Errorf("the copy differs:\n%s\n%s", reqs[0].body, reqs[1].body)
		}
		if got := e.srv.Message(id).Acks; got != 1 {
			t.Errorf("%d acks, want 1", got)
		}
	})
	t.Run("reorder behind a later message", func(t *testing.T) {
		faults := fault.New(1)
		faults.SetDelivery(fault.Delivery{ReorderRate: 1})
		e := newEnv(t, Options{Faults: faults})
		ep := newEndpoint(t, nil)
		topic := e.topic(t, "t")
		e.subscribe(t, "s", topic, ep.URL, nil)
		e.start(t)
		first := e.publish(t, topic, []byte("1"), nil)
		waitFor(t, time.Second, func() bool { return e.srv.Message(first).Deliveries > 0 }, "the first pull")
		faults.SetDelivery(fault.Delivery{})
		second := e.publish(t, topic, []byte("2"), nil)
		reqs := ep.wait(t, 2, 5*time.Second)
		got := []string{reqs[0].header.Get("Ce-Id"), reqs[1].header.Get("Ce-Id")}
		if diff := cmp.Diff([]string{second, first}, got); diff != "" {
			t.Errorf("delivery order (-want +got):\n%s", diff)
		}
		waitFor(t, time.Second, func() bool { return e.acked(first) && e.acked(second) }, "both acks")
	})
	t.Run("reorder with nothing after", func(t *testing.T) {
		faults := fault.New(1)
		faults.SetDelivery(fault.Delivery{ReorderRate: 1})
		e := newEnv(t, Options{Faults: faults})
		ep := newEndpoint(t, nil)
		topic := e.topic(t, "t")
		e.subscribe(t, "s", topic, ep.URL, nil)
		e.start(t)
		published := time.Now()
		id := e.publish(t, topic, []byte("1"), nil)
		reqs := ep.wait(t, 1, 5*time.Second)
		if held := reqs[0].at.Sub(published); held < maxHold {
			t.Errorf("delivered after %v, want it held for %v", held, maxHold)
		}
		waitFor(t, time.Second, func() bool { return e.acked(id) }, "the ack")
	})
}

func TestSubscriptionCreatedAfterStart(t *testing.T) {
	const poll = 200 * time.Millisecond
	e := newEnv(t, Options{PollInterval: poll})
	ep := newEndpoint(t, nil)
	topic := e.topic(t, "t")
	e.start(t)
	time.Sleep(poll / 2) // Start's own look found nothing
	e.subscribe(t, "late", topic, ep.URL, nil)
	created := time.Now()
	id := e.publish(t, topic, []byte("x"), nil)
	reqs := ep.wait(t, 1, 5*time.Second)
	if reqs[0].header.Get("Ce-Id") != id {
		t.Errorf("delivered %q, want %q", reqs[0].header.Get("Ce-Id"), id)
	}
	if took := reqs[0].at.Sub(created); took > poll+100*time.Millisecond {
		t.Errorf("first delivery %v after the subscription was created, want within the %v PollInterval", took, poll)
	}
}

func TestRecreatedSubscriptionMovesEndpoint(t *testing.T) {
	e := newEnv(t, Options{})
	old, moved := newEndpoint(t, nil), newEndpoint(t, nil)
	topic := e.topic(t, "t")
	sub := e.subscribe(t, "s", topic, old.URL, nil)
	e.start(t)
	e.publish(t, topic, []byte("1"), nil)
	old.wait(t, 1, 5*time.Second)
	if err := e.client.SubscriptionAdminClient.DeleteSubscription(context.Background(), &pb.DeleteSubscriptionRequest{Subscription: sub}); err != nil {
		t.Fatalf("DeleteSubscription: %v", err)
	}
	e.subscribe(t, "s", topic, moved.URL, nil)
	time.Sleep(50 * time.Millisecond) // two PollIntervals
	id := e.publish(t, topic, []byte("2"), nil)
	reqs := moved.wait(t, 1, 5*time.Second)
	if reqs[0].header.Get("Ce-Id") != id {
		t.Errorf("moved endpoint got %q, want %q", reqs[0].header.Get("Ce-Id"), id)
	}
	if n := len(old.requests()); n != 1 {
		t.Errorf("old endpoint got %d requests, want 1", n)
	}
}

func TestPullSubscriptionsAreLeftAlone(t *testing.T) {
	e := newEnv(t, Options{})
	ep := newEndpoint(t, nil)
	topic := e.topic(t, "t")
	e.subscribe(t, "push", topic, ep.URL, nil)
	pull := e.subscribe(t, "pull", topic, "", nil)
	e.start(t)
	id := e.publish(t, topic, []byte("x"), nil)
	ep.wait(t, 1, 5*time.Second)
	if got := e.pullOne(t, pull, 5*time.Second); got.Message.MessageId != id {
		t.Errorf("pulled %q, want %q", got.Message.MessageId, id)
	}
}

func TestAckDeadlineIsTheTimeout(t *testing.T) {
	e := newEnv(t, Options{})
	ep := newEndpoint(t, nil)
	ep.handle = func(r *http.Request) {
		if len(ep.requests()) == 1 {
			<-r.Context().Done() // never answer the first request
		}
	}
	topic := e.topic(t, "t")
	e.subscribe(t, "s", topic, ep.URL, func(s *pb.Subscription) {
		s.AckDeadlineSeconds = 1 // pstest allows 1s; the service's minimum is 10s
		retryPolicy(10*time.Millisecond, 10*time.Millisecond)(s)
	})
	e.start(t)
	id := e.publish(t, topic, []byte("x"), nil)
	waitFor(t, 5*time.Second, func() bool { return e.acked(id) }, "the ack")
	reqs := ep.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 900*time.Millisecond || gap > 1500*time.Millisecond {
		t.Errorf("redelivered %v after the unanswered request, want about the 1s ack deadline", gap)
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	e := newEnv(t, Options{})
	release := make(chan struct{})
	ep := newEndpoint(t, nil)
	ep.handle = func(*http.Request) { <-release }
	topic := e.topic(t, "t")
	e.subscribe(t, "s", topic, ep.URL, nil)
	e.start(t)
	var ids []string
	for i := range 20 {
		ids = append(ids, e.publish(t, topic, []byte{byte(i)}, nil))
	}
	ep.wait(t, maxInFlight, 5*time.Second)
	time.Sleep(100 * time.Millisecond) // give a ninth request every chance to arrive
	ep.mu.Lock()
	peak := ep.peak
	ep.mu.Unlock()
	close(release)
	if peak != maxInFlight {
		t.Errorf("%d requests in flight at most, want %d", peak, maxInFlight)
	}
	waitFor(t, 5*time.Second, func() bool {
		for _, id := range ids {
			if !e.acked(id) {
				return false
			}
		}
		return true
	}, "all acks")
	if n := len(ep.requests()); n != 20 {
		t.Errorf("%d requests, want 20", n)
	}
}

func TestManualClockTimesBackoff(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e := newEnv(t, Options{Clock: clk})
	e.srv.SetTimeNowFunc(clk.Now) // as the emulator does
	ep := newEndpoint(t, sequence(http.StatusServiceUnavailable))
	topic := e.topic(t, "t")
	e.subscribe(t, "s", topic, ep.URL, retryPolicy(time.Minute, 10*time.Minute))
	e.start(t)
	id := e.publish(t, topic, []byte("x"), nil)
	ep.wait(t, 1, 5*time.Second)

	time.Sleep(150 * time.Millisecond)
	clk.Advance(59 * time.Second)
	time.Sleep(150 * time.Millisecond)
	if n := len(ep.requests()); n != 1 {
		t.Fatalf("%d requests before the 1m backoff ended on the clock, want 1", n)
	}
	clk.Advance(time.Second)
	ep.wait(t, 2, 5*time.Second)
	waitFor(t, time.Second, func() bool { return e.acked(id) }, "the ack")
	if got := ep.requests()[1].header.Get("Ce-Time"); got != "2026-03-01T12:00:00Z" {
		t.Errorf("ce-time %q, want the publish time on the manual clock", got)
	}
}

func TestClose(t *testing.T) {
	t.Run("stops delivery", func(t *testing.T) {
		e := newEnv(t, Options{})
		ep := newEndpoint(t, nil)
		topic := e.topic(t, "t")
		e.subscribe(t, "s", topic, ep.URL, nil)
		e.start(t)
		e.publish(t, topic, []byte("before"), nil)
		ep.wait(t, 1, 5*time.Second)
		if err := e.d.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		id := e.publish(t, topic, []byte("after"), nil)
		time.Sleep(150 * time.Millisecond)
		if n := len(ep.requests()); n != 1 {
			t.Errorf("%d requests, want 1 (none after Close)", n)
		}
		if got := e.srv.Message(id).Deliveries; got != 0 {
			t.Errorf("message published after Close was pulled %d times", got)
		}
		if err := e.d.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	t.Run("cancels and releases deliveries in flight and in backoff", func(t *testing.T) {
		e := newEnv(t, Options{})
		blocked := newEndpoint(t, nil)
		blocked.handle = func(r *http.Request) { <-r.Context().Done() }
		failing := newEndpoint(t, always(http.StatusInternalServerError))
		topic := e.topic(t, "t")
		inFlight := e.subscribe(t, "blocked", topic, blocked.URL, nil)
		backoff := e.subscribe(t, "failing", topic, failing.URL, retryPolicy(time.Minute, time.Minute))
		e.start(t)
		e.publish(t, topic, []byte("x"), nil)
		blocked.wait(t, 1, 5*time.Second)
		failing.wait(t, 1, 5*time.Second)
		time.Sleep(50 * time.Millisecond) // the failure is settled into its backoff

		closed := make(chan struct{})
		go func() { _ = e.d.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not return while a delivery was in flight")
		}
		// Both messages are available again at once, not after their lease or backoff.
		for _, sub := range []string{inFlight, backoff} {
			res, err := e.client.SubscriptionAdminClient.Pull(context.Background(), &pb.PullRequest{Subscription: sub, MaxMessages: 1, ReturnImmediately: true})
			if err != nil {
				t.Fatalf("Pull %s: %v", sub, err)
			}
			if len(res.ReceivedMessages) != 1 {
				t.Errorf("%s: message still leased after Close", sub)
			}
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		e := newEnv(t, Options{})
		ep := newEndpoint(t, nil)
		topic := e.topic(t, "t")
		e.subscribe(t, "s", topic, ep.URL, nil)
		ctx, cancel := context.WithCancel(context.Background())
		e.d.Start(ctx)
		cancel()
		time.Sleep(20 * time.Millisecond)
		e.publish(t, topic, []byte("x"), nil)
		time.Sleep(150 * time.Millisecond)
		if n := len(ep.requests()); n != 0 {
			t.Errorf("%d requests after the context ended, want 0", n)
		}
	})
	t.Run("before Start", func(t *testing.T) {
		e := newEnv(t, Options{})
		if err := e.d.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		e.d.Start(context.Background()) // does nothing once closed
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name    string
		policy  *pb.RetryPolicy
		attempt int
		want    time.Duration
	}{
		{name: "default first", attempt: 1, want: 10 * time.Second},
		{name: "default doubles", attempt: 3, want: 40 * time.Second},
		{name: "default cap", attempt: 20, want: 600 * time.Second},
		{name: "policy", policy: &pb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second), MaximumBackoff: durationpb.New(5 * time.Second)}, attempt: 3, want: 4 * time.Second},
		{name: "policy cap", policy: &pb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second), MaximumBackoff: durationpb.New(5 * time.Second)}, attempt: 4, want: 5 * time.Second},
		{name: "only minimum", policy: &pb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second)}, attempt: 11, want: 600 * time.Second},
		{name: "zero minimum is immediate", policy: &pb.RetryPolicy{MinimumBackoff: durationpb.New(0)}, attempt: 5, want: 0},
		{name: "maximum above the service's 600s", policy: &pb.RetryPolicy{MaximumBackoff: durationpb.New(time.Hour)}, attempt: 30, want: 600 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configOf(&pb.Subscription{
				Name:        "projects/p/subscriptions/s",
				PushConfig:  &pb.PushConfig{PushEndpoint: "http://localhost/"},
				RetryPolicy: tt.policy,
			})
			if got := cfg.backoff(tt.attempt); got != tt.want {
				t.Errorf("backoff(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{name: "whole second", in: time.Date(2021, 2, 5, 4, 6, 14, 0, time.UTC), want: "2021-02-05T04:06:14Z"},
		{name: "milliseconds", in: time.Date(2021, 2, 5, 4, 6, 14, 109e6, time.UTC), want: "2021-02-05T04:06:14.109Z"},
		{name: "microseconds", in: time.Date(2021, 2, 5, 4, 6, 14, 109001e3, time.UTC), want: "2021-02-05T04:06:14.109001Z"},
		{name: "nanoseconds", in: time.Date(2021, 2, 5, 4, 6, 14, 109000001, time.UTC), want: "2021-02-05T04:06:14.109000001Z"},
		{name: "not UTC", in: time.Date(2021, 2, 5, 5, 6, 14, 0, time.FixedZone("CET", 3600)), want: "2021-02-05T04:06:14Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := timestamp(tt.in); got != tt.want {
				t.Errorf("timestamp = %q, want %q", got, tt.want)
			}
		})
	}
}

// BenchmarkPublishToDelivery measures the time from a publish call to the endpoint receiving
// the event, one message at a time: ns/op is the latency.
func BenchmarkPublishToDelivery(b *testing.B) {
	for _, bb := range []struct {
		name    string
		publish func(b *testing.B, e *env, topic string) func()
	}{
		{name: "Publish RPC", publish: func(b *testing.B, e *env, topic string) func() {
			return func() { e.publish(b, topic, []byte("x"), nil) }
		}},
		{name: "Publisher default batching", publish: func(b *testing.B, e *env, topic string) func() {
			p := e.client.Publisher(topic)
			b.Cleanup(p.Stop)
			return func() {
				if _, err := p.Publish(context.Background(), &pubsub.Message{Data: []byte("x")}).Get(context.Background()); err != nil {
					b.Fatalf("Publish: %v", err)
				}
			}
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			e := newEnv(b, Options{})
			got := make(chan struct{}, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				got <- struct{}{}
			}))
			b.Cleanup(srv.Close)
			topic := e.topic(b, "t")
			e.subscribe(b, "s", topic, srv.URL, nil)
			e.start(b)
			publish := bb.publish(b, e, topic)
			b.ResetTimer()
			for b.Loop() {
				publish()
				<-got
			}
		})
	}
}
