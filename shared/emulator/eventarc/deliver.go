package eventarc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Pub/Sub's push identity, as seen by Eventarc destinations.
const (
	userAgent = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
	from      = "noreply@google.com"
	eventType = "google.cloud.pubsub.topic.v1.messagePublished"
	// leaseMargin ends a request that long before pstest's lease, so that a timed-out
	// delivery is settled by us rather than redelivered by pstest without backoff.
	leaseMargin = 50 * time.Millisecond
	// maxLeaseSeconds is the longest ack deadline Pub/Sub allows; a nacked message holds its
	// lease this long (at most) while its backoff runs.
	maxLeaseSeconds = 600
	// maxDrain is how much of a response body is read so the connection can be reused.
	maxDrain = 64 << 10
)

// The attributes Pub/Sub adds to a message it forwards to a dead-letter topic.
const (
	attrDeliveryCount    = "CloudPubSubDeadLetterSourceDeliveryCount"
	attrSubscription     = "CloudPubSubDeadLetterSourceSubscription"
	attrSubscriptionProj = "CloudPubSubDeadLetterSourceSubscriptionProject"
	attrTopicPublishTime = "CloudPubSubDeadLetterSourceTopicPublishTime"
)

// delivery is one pulled message, copied out of pstest.
type delivery struct {
	ackID       string
	id          string
	data        []byte
	attrs       map[string]string
	orderingKey string
	publishTime time.Time
	pulledAt    time.Time // real time; the lease (and so the request deadline) runs from here
	attempt     int
	duplicate   bool // the Duplicate fault: send a second copy
}

// deliver pushes m, settles it (ack, dead-letter or nack with backoff), then sends the
// Duplicate fault's copy. after are messages the Reorder fault held back behind m.
func (d *Deliverer) deliver(ctx context.Context, s *subscription, cfg *subConfig, m *delivery, after []*delivery) {
	defer d.deliverWG.Done()
	defer d.active.Add(-1)
	defer s.inFlight.Add(-1)
	ok := d.push(ctx, cfg, m, m.pulledAt.Add(cfg.ackDeadline-leaseMargin))
	for _, h := range after {
		d.deliverWG.Add(1)
		go d.deliver(ctx, s, cfg, h, nil)
	}
	d.settle(ctx, s, cfg, m, ok)
	if m.duplicate && ctx.Err() == nil {
		// The copy's answer is ignored, as if the first answer had been lost.
		d.push(ctx, cfg, m, time.Now().Add(cfg.ackDeadline-leaseMargin))
	}
}

// settle acts on the outcome of one delivery attempt.
func (d *Deliverer) settle(ctx context.Context, s *subscription, cfg *subConfig, m *delivery, ok bool) {
	bg := context.Background() // pstest's methods ignore their context; Close must still settle
	switch {
	case ok:
		_, _ = d.ps.Acknowledge(bg, &pb.AcknowledgeRequest{Subscription: cfg.name, AckIds: []string{m.ackID}})
		s.forget(m.id)
		return
	case ctx.Err() != nil:
		// Closing: the endpoint did not fail, so no backoff; make the message available again.
		d.nack(cfg.name, m.ackID)
		return
	case cfg.deadLetterTopic != "" && m.attempt >= cfg.maxAttempts:
		if d.deadLetter(bg, cfg, m) == nil {
			_, _ = d.ps.Acknowledge(bg, &pb.AcknowledgeRequest{Subscription: cfg.name, AckIds: []string{m.ackID}})
			s.forget(m.id)
			return
		}
		// The dead-letter topic is gone: keep retrying, as Pub/Sub does.
	}
	wait := cfg.backoff(m.attempt)
	if wait <= 0 {
		d.nack(cfg.name, m.ackID)
		return
	}
	// Hold the lease through the backoff, so pstest neither redelivers early nor deletes the
	// message, then push it again at the due time (retryDue). The backoff runs on the Clock;
	// the lease on pstest's clock.
	_, _ = d.ps.ModifyAckDeadline(bg, &pb.ModifyAckDeadlineRequest{
		Subscription: cfg.name, AckIds: []string{m.ackID}, AckDeadlineSeconds: maxLeaseSeconds,
	})
	d.mu.Lock()
	d.retries = append(d.retries, retry{sub: cfg.name, ackID: m.ackID, due: d.clock.Now().Add(wait), m: m})
	d.mu.Unlock()
}

// deadLetter publishes m to the subscription's dead-letter topic with Pub/Sub's attributes.
func (d *Deliverer) deadLetter(ctx context.Context, cfg *subConfig, m *delivery) error {
	attrs := make(map[string]string, len(m.attrs)+4)
	for k, v := range m.attrs {
		attrs[k] = v
	}
	attrs[attrDeliveryCount] = strconv.Itoa(m.attempt)
	attrs[attrSubscription] = cfg.id
	attrs[attrSubscriptionProj] = cfg.project
	attrs[attrTopicPublishTime] = m.publishTime.UTC().Format("2006-01-02T15:04:05.000-07:00")
	_, err := d.ps.Publish(ctx, &pb.PublishRequest{
		Topic: cfg.deadLetterTopic,
		Messages: []*pb.PubsubMessage{{
			Data: m.data, Attributes: attrs, OrderingKey: m.orderingKey,
		}},
	})
	return err
}

// push sends m to the endpoint as a CloudEvent and reports whether it was acknowledged.
func (d *Deliverer) push(ctx context.Context, cfg *subConfig, m *delivery, deadline time.Time) bool {
	body, err := json.Marshal(event(cfg, m))
	if err != nil {
		return false
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.endpoint, bytes.NewReader(body))
	if err != nil {
		return false // a malformed push endpoint fails every attempt, as it would in Pub/Sub
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("From", from)
	h.Set("User-Agent", userAgent)
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", m.id)
	h.Set("Ce-Source", "//pubsub.googleapis.com/"+cfg.topic)
	h.Set("Ce-Type", eventType)
	h.Set("Ce-Time", timestamp(m.publishTime))
	resp, err := d.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	return acknowledges(resp.StatusCode)
}

// acknowledges reports whether a push endpoint's status acknowledges the message (Pub/Sub's
// list; 102 never reaches a Go client as a final status).
func acknowledges(code int) bool {
	switch code {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent:
		return true
	}
	return false
}

// messagePublished is the CloudEvent data of google.cloud.pubsub.topic.v1.messagePublished as
// Eventarc sends it, snake_case duplicates included.
type messagePublished struct {
	Message      pubsubMessage `json:"message"`
	Subscription string        `json:"subscription"`
}

type pubsubMessage struct {
	Attributes   map[string]string `json:"attributes,omitempty"`
	Data         string            `json:"data,omitempty"`
	MessageID    string            `json:"messageId"`
	MessageID2   string            `json:"message_id"`
	OrderingKey  string            `json:"orderingKey,omitempty"`
	PublishTime  string            `json:"publishTime"`
	PublishTime2 string            `json:"publish_time"`
}

func event(cfg *subConfig, m *delivery) messagePublished {
	t := timestamp(m.publishTime)
	return messagePublished{
		Message: pubsubMessage{
			Attributes:   m.attrs,
			Data:         base64.StdEncoding.EncodeToString(m.data),
			MessageID:    m.id,
			MessageID2:   m.id,
			OrderingKey:  m.orderingKey,
			PublishTime:  t,
			PublishTime2: t,
		},
		Subscription: cfg.name,
	}
}

// timestamp formats t as protobuf JSON does: UTC, with 0, 3, 6 or 9 fractional digits.
func timestamp(t time.Time) string {
	t = t.UTC()
	switch ns := t.Nanosecond(); {
	case ns == 0:
		return t.Format("2006-01-02T15:04:05Z")
	case ns%1e6 == 0:
		return t.Format("2006-01-02T15:04:05.000Z")
	case ns%1e3 == 0:
		return t.Format("2006-01-02T15:04:05.000000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000000Z")
}
