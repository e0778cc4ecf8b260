// Package event decodes the CloudEvents that Eventarc delivers from Pub/Sub to the Runway Jobs
// functions, and classifies the functions' errors once: Permanent errors are acknowledged (the
// request can never succeed; the owner is told), every other error is returned to the
// functions framework so that Pub/Sub redelivers the message.
//
// The deploy, trigger and monitor functions call it at their CloudEvent entry points.
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/platform"
)

// MaxBody is the largest CloudEvent body Decode reads (4 MiB): a deploy request carries two
// files of at most document.MaxSize, base64-encoded in the Pub/Sub envelope.
const MaxBody = 4 << 20

// MaxData bounds the JSON of a decoded message (Message.Data) where no smaller limit applies:
// the two files of a deploy request and their JSON escaping.
const MaxData = 3 << 20

// PubSubType is the CloudEvent type of a Pub/Sub message delivered by Eventarc.
const PubSubType = "google.cloud.pubsub.topic.v1.messagePublished"

// Message is one Pub/Sub message and where it was published.
type Message struct {
	ID           string
	Data         []byte
	Attributes   map[string]string
	PublishTime  time.Time
	Subscription string
	// Project and Topic come from the event source: the topic the message was published on
	// (which decides the workload a request may touch).
	Project string
	Topic   string
}

type envelope struct {
	Message struct {
		Data        []byte            `json:"data"` // base64 in JSON
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		ID          string            `json:"message_id"`
		PublishTime time.Time         `json:"publishTime"`
		PublishAlt  time.Time         `json:"publish_time"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// Decode reads the Pub/Sub message of e. A malformed event is a Permanent error.
func Decode(e cloudevent.Event) (Message, error) {
	if e.Type() != PubSubType {
		return Message{}, Permanent(fmt.Errorf("event %s: type %q, want %q", e.ID(), e.Type(), PubSubType))
	}
	project, topic, err := platform.SplitEventSource(e.Source())
	if err != nil {
		return Message{}, Permanent(fmt.Errorf("event %s: %w", e.ID(), err))
	}
	if err := document.ScanJSON(e.Data(), MaxBody); err != nil {
		return Message{}, Permanent(fmt.Errorf("event %s: body: %w", e.ID(), err))
	}
	var env envelope
	if err := json.Unmarshal(e.Data(), &env); err != nil {
		return Message{}, Permanent(fmt.Errorf("event %s: body is not a Pub/Sub push envelope: %w", e.ID(), err))
	}
	m := Message{
		ID:           env.Message.MessageID,
		Data:         env.Message.Data,
		Attributes:   env.Message.Attributes,
		PublishTime:  env.Message.PublishTime,
		Subscription: env.Subscription,
		Project:      project,
		Topic:        topic,
	}
	if m.ID == "" {
		m.ID = env.Message.ID
	}
	if m.PublishTime.IsZero() {
		m.PublishTime = env.Message.PublishAlt
	}
	if m.PublishTime.IsZero() {
		m.PublishTime = e.Time()
	}
	if m.ID == "" {
		m.ID = e.ID()
	}
	return m, nil
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that redelivery cannot fix.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return permanent{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Result maps a handler's error to the functions framework's answer: nil (acknowledge) for
// success and Permanent errors, the error itself (HTTP 500, redelivery) otherwise.
func Result(err error) error {
	if err == nil || IsPermanent(err) {
		return nil
	}
	return err
}
