// Package eventarc delivers the emulator's Pub/Sub messages to HTTP functions the way Eventarc
// does: as CloudEvents in binary content mode, with Pub/Sub's retry, backoff and dead-letter
// rules. The emulator (runwayjobs.dev/shared/emulator, behind `runwayctl emulator` and
// `make dev`) starts one Deliverer next to its pstest server, so that the deploy, trigger and
// monitor functions receive their events locally exactly as they do from an Eventarc trigger.
//
// A trigger is configured the way Eventarc configures one: as a Pub/Sub push subscription,
// created with the official client. push_config.push_endpoint is the function's URL;
// ack_deadline_seconds bounds each request; retry_policy {minimum_backoff, maximum_backoff}
// spaces redeliveries; dead_letter_policy {dead_letter_topic, max_delivery_attempts} ends
// them. pstest stores push subscriptions but never pushes; the Deliverer pulls them in-process
// (calling pstest's GServer directly, so the emulator's injected gRPC faults do not hit it) and
// pushes.
//
// What one delivery looks like (as observed from Eventarc, see googleapis/google-cloudevents#151):
//
//	POST {push_endpoint}
//	Content-Type: application/json
//	Accept: application/json
//	From: noreply@google.com
//	User-Agent: APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)
//	Ce-Specversion: 1.0
//	Ce-Id: {messageId}
//	Ce-Source: //pubsub.googleapis.com/projects/{p}/topics/{t}
//	Ce-Type: google.cloud.pubsub.topic.v1.messagePublished
//	Ce-Time: {publishTime}
//
//	{"message":{"attributes":{…},"data":"<base64>","messageId":"…","message_id":"…",
//	  "publishTime":"…","publish_time":"…"},"subscription":"projects/{p}/subscriptions/{s}"}
//
// Eventarc sets no ce-subject for Pub/Sub events, and the snake_case duplicates are really
// there. Empty attributes, data and ordering key are left out, as protobuf JSON does.
//
// Outcomes follow Pub/Sub push: 200, 201, 202 and 204 acknowledge; any other status, a
// connection error or no answer within the ack deadline is a nack. A nacked message is
// redelivered after minimum_backoff·2^(attempt-1), capped at maximum_backoff (10s and 600s when
// the subscription has no retry_policy, as Eventarc's subscriptions have); after
// max_delivery_attempts failed attempts it is published to the dead-letter topic with the
// attributes Pub/Sub adds (CloudPubSubDeadLetterSourceDeliveryCount, …SourceSubscription,
// …SourceSubscriptionProject, …SourceTopicPublishTime) and the original is acknowledged.
// Up to 8 deliveries per subscription are in flight at once. A published message reaches its
// endpoint within about 5ms (push subscriptions are pulled every 5ms, which costs about 2% of
// a core while any exist); new, changed and deleted push subscriptions are noticed within
// Options.PollInterval.
//
// Fidelity limits, beyond pstest's own:
//   - Every push subscription is treated as an Eventarc trigger. There is no OIDC token
//     (no Authorization header), push_config.attributes and no_wrapper are ignored, and the
//     body carries no deliveryAttempt.
//   - The push concurrency is a fixed 8 per subscription, not Pub/Sub's adaptive window.
//   - Backoff is exact doubling without jitter, timed on Options.Clock: with a manual clock a
//     nacked message waits until the clock is advanced past its backoff. Request deadlines
//     (the ack deadline, less 50ms so the lease is still ours when the failure is recorded)
//     are real time.
//   - CloudPubSubDeadLetterSourceDeliveryErrorMessage is not set (its wording is unknown).
//     Redirects are not followed (a 3xx is a nack; unverified against Pub/Sub).
//   - A message's first attempt number comes from pstest, which counts deliveries per message
//     across all subscriptions of a topic (with several subscriptions on one topic it can start
//     above 1); the Deliverer counts the retries itself, pushing them while the message stays
//     leased (see retry). pstest also treats max_delivery_attempts 0 as "dead-letter at once"
//     where the service means 5, and does not check the 5–100 range: set it explicitly.
//   - pstest hands out its live subscription protos; reading them races with a concurrent
//     UpdateSubscription or DeleteTopic (the Deliverer reads them every PollInterval).
//   - pstest deletes a message that is not leased and was published more than 10 minutes ago
//     (of its clock). A failing push message stays leased to the Deliverer between attempts, so
//     its retries and dead-lettering run their course (production's policy: 20 attempts over
//     2h20m); a manual clock's jump stops at every Cloud Scheduler slot and every retry due, and
//     waits there until the deliveries it caused were answered (at most 2 s). What pstest still
//     forgets: a message in a pull subscription (a dead-letter hold) left unpulled for 10
//     minutes of the clock.
//   - The Duplicate fault sends a second copy after the first is settled and ignores its answer
//     (an ack that was lost); the Reorder fault holds a message until a later message of the
//     same subscription has been answered, or for at most 500ms.
package eventarc

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/fault"
)

const (
	defaultPollInterval = 100 * time.Millisecond
	// pullInterval is how often every push subscription is pulled: the delivery latency.
	pullInterval = 5 * time.Millisecond
	// maxInFlight bounds the concurrent deliveries of one subscription.
	maxInFlight = 8
	// maxHold bounds how long the Reorder fault holds a message back.
	maxHold = 500 * time.Millisecond
)

// Options configures a Deliverer.
type Options struct {
	// PubSub is the fake whose push subscriptions are delivered. Required.
	PubSub *pstest.Server
	// Clock times retry backoff; nil means clock.Real{}.
	Clock clock.Clock
	// Faults duplicates and reorders deliveries; nil injects nothing.
	Faults *fault.Injector
	// HTTPClient sends the requests; nil means a client of the Deliverer's own. Each request's
	// deadline is the subscription's ack deadline whatever the client's timeout.
	HTTPClient *http.Client
	// PollInterval is how soon new, changed and deleted push subscriptions are noticed
	// (default 100ms).
	PollInterval time.Duration
}

// Deliverer pushes the messages of every push subscription of a pstest server to its endpoint.
type Deliverer struct {
	ps        *pstest.GServer
	clock     clock.Clock
	faults    *fault.Injector
	client    *http.Client
	ownClient *http.Transport // closed by Close when the Deliverer built the client
	poll      time.Duration

	done      chan struct{} // closed when the pull loop has returned
	deliverWG sync.WaitGroup
	closeOnce sync.Once

	mu      sync.Mutex // guards started, closed, cancel and retries
	started bool
	closed  bool
	cancel  context.CancelFunc
	retries []retry // failed messages holding their lease until their backoff ends

	subs map[string]*subscription // owned by the pull loop

	// kick asks the pull loop for an immediate cycle and is answered when it is done (a
	// manual clock's jump); active counts deliveries in flight across subscriptions.
	kick   chan chan struct{}
	active atomic.Int64
}

// retry is a failed delivery whose next attempt waits until due (on the Clock). The message
// stays leased to us meanwhile and we push it again ourselves: pstest deletes a message that is
// not leased and was published more than 10 minutes ago, so handing it back to pstest for
// redelivery ended every retry sequence longer than that (production's 10 s to 600 s backoff
// reaches 20 attempts after about two hours).
type retry struct {
	sub, ackID string
	due        time.Time
	m          *delivery
}

// New returns a Deliverer for opts.PubSub; it delivers nothing until Start.
func New(opts Options) *Deliverer {
	d := &Deliverer{
		ps:     &opts.PubSub.GServer,
		clock:  opts.Clock,
		faults: opts.Faults,
		client: opts.HTTPClient,
		poll:   opts.PollInterval,
		done:   make(chan struct{}),
		subs:   map[string]*subscription{},
		kick:   make(chan chan struct{}),
	}
	if d.clock == nil {
		d.clock = clock.Real{}
	}
	if d.poll <= 0 {
		d.poll = defaultPollInterval
	}
	if d.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = maxInFlight
		d.client, d.ownClient = &http.Client{Transport: t}, t
	} else {
		c := *d.client
		d.client = &c
	}
	// A redirect is an answer like any other non-success status: a nack. (Pub/Sub push is
	// not known to follow redirects; unverified.)
	d.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return d
}

// Start begins delivering, until ctx ends or Close is called. Push subscriptions that exist
// already are served at once. Later calls do nothing.
func (d *Deliverer) Start(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started || d.closed {
		return
	}
	d.started = true
	ctx, d.cancel = context.WithCancel(ctx)
	d.discover(ctx)
	go d.run(ctx)
	if d.clock.Manual() {
		d.clock.OnWake(d.nextRetry) // a jump stops where a retry is due, before its lease ends
		d.clock.OnAdvance(func(time.Time) { d.settleJump(ctx) })
	}
}

// settleTimeout bounds how long (real time) a manual clock's jump waits at each stop for the
// deliveries it caused.
const settleTimeout = 2 * time.Second

// settleJump is the manual clock's listener: at each stop of a jump it has every push subscription
// pulled at once and waits (up to settleTimeout) until those deliveries have been answered, so
// that what was published at a stop is delivered at that time. Without it, pstest could drop a
// message the jump left undelivered for more than 10 minutes of its clock.
func (d *Deliverer) settleJump(ctx context.Context) {
	done := make(chan struct{})
	select {
	case d.kick <- done:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
		return
	}
	deadline := time.Now().Add(settleTimeout)
	for d.active.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}

// Close stops delivering and waits for the deliveries in flight, which are cancelled. Messages
// in flight or waiting for a retry are made available again at once, so that nothing stays
// leased to a Deliverer that is gone. It always returns nil.
func (d *Deliverer) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		started, cancel := d.started, d.cancel
		d.mu.Unlock()
		if started {
			cancel()
			<-d.done
		}
		d.deliverWG.Wait()
		d.mu.Lock()
		retries := d.retries
		d.retries = nil
		d.mu.Unlock()
		for _, r := range retries {
			d.nack(r.sub, r.ackID)
		}
		if d.ownClient != nil {
			d.ownClient.CloseIdleConnections()
		}
	})
	return nil
}

// run is the pull loop: it notices subscriptions every PollInterval, redelivers messages
// whose backoff has ended and pulls every push subscription every pullInterval.
func (d *Deliverer) run(ctx context.Context) {
	defer close(d.done)
	defer func() {
		for _, s := range d.subs {
			d.drop(s)
		}
	}()
	nextPoll := time.Now().Add(d.poll)
	wake := time.NewTimer(pullInterval)
	defer wake.Stop()
	for {
		var kicked chan struct{}
		select {
		case <-ctx.Done():
			return
		case <-wake.C:
		case kicked = <-d.kick:
			nextPoll = time.Now() // notice subscriptions created just before the jump
		}
		now := time.Now()
		if !now.Before(nextPoll) {
			d.discover(ctx)
			nextPoll = now.Add(d.poll)
		}
		d.retryDue(ctx)
		for _, s := range d.subs {
			d.pull(ctx, s, now)
		}
		if kicked != nil {
			close(kicked)
		}
		if len(d.subs) > 0 {
			wake.Reset(pullInterval)
		} else {
			wake.Reset(time.Until(nextPoll)) // nothing to pull: sleep until the next poll
		}
	}
}

// discover brings the set of served subscriptions in line with pstest's push subscriptions.
// It runs in the pull loop (or in Start, before the loop exists).
func (d *Deliverer) discover(ctx context.Context) {
	// An empty project matches every project in pstest.
	res, err := d.ps.ListSubscriptions(ctx, &pb.ListSubscriptionsRequest{})
	if err != nil {
		return // the server is closing; nothing to serve
	}
	seen := make(map[string]bool, len(res.Subscriptions))
	for _, ps := range res.Subscriptions {
		cfg := configOf(ps)
		if cfg == nil {
			continue
		}
		seen[cfg.name] = true
		if s := d.subs[cfg.name]; s != nil {
			s.cfg = cfg
			continue
		}
		d.subs[cfg.name] = &subscription{cfg: cfg, attempts: map[string]int{}}
	}
	for name, s := range d.subs {
		if !seen[name] {
			delete(d.subs, name)
			d.drop(s)
		}
	}
}

// drop nacks the messages the Reorder fault still holds for s.
func (d *Deliverer) drop(s *subscription) {
	for _, m := range s.held {
		d.nack(s.cfg.name, m.ackID)
		s.inFlight.Add(-1)
	}
	s.held = nil
}

// nextRetry is the Deliverer's wake time on a manual clock: the earliest retry due.
func (d *Deliverer) nextRetry() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var next time.Time
	for _, r := range d.retries {
		if next.IsZero() || r.due.Before(next) {
			next = r.due
		}
	}
	return next, !next.IsZero()
}

// retryDue pushes again the messages whose backoff has ended, still leased to us. It runs in
// the pull loop.
func (d *Deliverer) retryDue(ctx context.Context) {
	now := d.clock.Now()
	var due []retry
	d.mu.Lock()
	kept := d.retries[:0]
	for _, r := range d.retries {
		if r.due.After(now) {
			kept = append(kept, r)
		} else {
			due = append(due, r)
		}
	}
	d.retries = kept
	d.mu.Unlock()
	for _, r := range due {
		s := d.subs[r.sub]
		if s == nil {
			d.nack(r.sub, r.ackID) // the subscription is gone
			continue
		}
		// A new lease for the attempt, as a redelivery would have. pstest fails this only for
		// a subscription that is gone, and ignores a stale ack ID: were the lease to lapse
		// first, pstest would redeliver the message too. It does not: the lease (600 s) is
		// at least the backoff (at most 600 s), and a manual clock's jump stops at the due time.
		if _, err := d.ps.ModifyAckDeadline(context.Background(), &pb.ModifyAckDeadlineRequest{
			Subscription: r.sub, AckIds: []string{r.ackID}, AckDeadlineSeconds: int32(s.cfg.ackDeadline / time.Second),
		}); err != nil {
			s.forget(r.m.id)
			continue
		}
		m := *r.m // a copy: the previous attempt's goroutine may still be reading r.m
		m.pulledAt, m.duplicate = time.Now(), false
		m.attempt = s.countAttempt(m.id, 0)
		d.enqueue(ctx, s, &m)
	}
}

// pull takes as many messages of s as it has free delivery slots and starts delivering them.
func (d *Deliverer) pull(ctx context.Context, s *subscription, now time.Time) {
	if free := maxInFlight - s.inFlight.Load(); free > 0 {
		res, err := d.ps.Pull(ctx, &pb.PullRequest{
			Subscription: s.cfg.name,
			MaxMessages:  free,
			// Deprecated in the API, but it is what keeps pstest from waiting 500ms when
			// there is nothing to pull.
			ReturnImmediately: true,
		})
		if err != nil {
			return // deleted since the last poll, or the server is closing
		}
		for _, rm := range res.ReceivedMessages {
			d.dispatch(ctx, s, rm, now)
		}
	}
	// A held message with nothing after it goes out after maxHold.
	if len(s.held) > 0 && now.Sub(s.held[0].pulledAt) >= maxHold {
		held := s.held
		s.held = nil
		for _, m := range held {
			d.start(ctx, s, m, nil)
		}
	}
}

// dispatch starts delivering one pulled message, applying the delivery faults.
func (d *Deliverer) dispatch(ctx context.Context, s *subscription, rm *pb.ReceivedMessage, now time.Time) {
	// Copy everything now: pstest reuses the ReceivedMessage when it hands the message out again.
	pm := rm.GetMessage()
	m := &delivery{
		ackID:       rm.GetAckId(),
		id:          pm.GetMessageId(),
		data:        append([]byte(nil), pm.GetData()...),
		attrs:       cloneMap(pm.GetAttributes()),
		orderingKey: pm.GetOrderingKey(),
		publishTime: pm.GetPublishTime().AsTime(),
		pulledAt:    now,
	}
	m.attempt = s.countAttempt(m.id, rm.GetDeliveryAttempt())
	d.enqueue(ctx, s, m)
}

// enqueue starts delivering m (pulled, or due for a retry), applying the delivery faults.
func (d *Deliverer) enqueue(ctx context.Context, s *subscription, m *delivery) {
	s.inFlight.Add(1)
	if d.faults != nil {
		m.duplicate = d.faults.Duplicate()
		if d.faults.Reorder() {
			s.held = append(s.held, m)
			return
		}
	}
	after := s.held
	s.held = nil
	d.start(ctx, s, m, after)
}

// start delivers m in its own goroutine; after (messages held back by the Reorder fault)
// are delivered once m has been answered.
func (d *Deliverer) start(ctx context.Context, s *subscription, m *delivery, after []*delivery) {
	d.active.Add(1)
	d.deliverWG.Add(1)
	go d.deliver(ctx, s, s.cfg, m, after)
}

// nack makes a message available for redelivery now. Errors mean the subscription is gone.
func (d *Deliverer) nack(sub, ackID string) {
	_, _ = d.ps.ModifyAckDeadline(context.Background(), &pb.ModifyAckDeadlineRequest{
		Subscription: sub, AckIds: []string{ackID}, AckDeadlineSeconds: 0,
	})
}

// subscription is the delivery state of one push subscription.
type subscription struct {
	cfg      *subConfig // replaced (never modified) by the pull loop
	inFlight atomic.Int32
	held     []*delivery // held back by the Reorder fault; pull loop only

	mu       sync.Mutex
	attempts map[string]int // delivery attempts by message ID, until settled
}

// countAttempt records one more delivery attempt of message id and returns its number: pstest's
// delivery_attempt when it sets one (subscriptions with a dead-letter policy), else our count.
func (s *subscription) countAttempt(id string, fromServer int32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.attempts[id] + 1
	if fromServer > 0 {
		n = int(fromServer)
	}
	s.attempts[id] = n
	return n
}

// forget drops the attempt count of a settled message.
func (s *subscription) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.attempts, id)
}

// subConfig is what delivery needs of a subscription, copied out of pstest.
type subConfig struct {
	name, project, id      string // projects/{project}/subscriptions/{id}
	topic                  string
	endpoint               string
	ackDeadline            time.Duration
	minBackoff, maxBackoff time.Duration
	deadLetterTopic        string
	maxAttempts            int
}

// configOf returns the delivery configuration of ps, or nil if it is not a push subscription.
func configOf(ps *pb.Subscription) *subConfig {
	endpoint := ps.GetPushConfig().GetPushEndpoint()
	if endpoint == "" {
		return nil
	}
	c := &subConfig{
		name:        ps.GetName(),
		topic:       ps.GetTopic(),
		endpoint:    endpoint,
		ackDeadline: time.Duration(ps.GetAckDeadlineSeconds()) * time.Second,
		minBackoff:  10 * time.Second,
		maxBackoff:  600 * time.Second,
	}
	if parts := strings.Split(c.name, "/"); len(parts) == 4 {
		c.project, c.id = parts[1], parts[3]
	}
	if c.ackDeadline <= 0 {
		c.ackDeadline = 10 * time.Second
	}
	if rp := ps.GetRetryPolicy(); rp != nil {
		if rp.MinimumBackoff != nil {
			c.minBackoff = rp.MinimumBackoff.AsDuration()
		}
		if rp.MaximumBackoff != nil {
			c.maxBackoff = rp.MaximumBackoff.AsDuration()
		}
	}
	c.maxBackoff = min(c.maxBackoff, 600*time.Second)
	c.minBackoff = max(min(c.minBackoff, c.maxBackoff), 0)
	if dl := ps.GetDeadLetterPolicy(); dl != nil && dl.GetDeadLetterTopic() != "" {
		c.deadLetterTopic = dl.GetDeadLetterTopic()
		c.maxAttempts = int(dl.GetMaxDeliveryAttempts())
		if c.maxAttempts <= 0 {
			c.maxAttempts = 5 // the service's default (pstest's own check differs, see the doc)
		}
	}
	return c
}

// backoff returns how long a message waits after its attempt-th failed delivery.
func (c *subConfig) backoff(attempt int) time.Duration {
	d := c.minBackoff
	for i := 1; i < attempt && d < c.maxBackoff; i++ {
		d *= 2
	}
	return min(d, c.maxBackoff)
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
