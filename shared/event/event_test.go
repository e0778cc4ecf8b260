package event

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"
)

func pubsubEvent(t *testing.T, source, body string) cloudevent.Event {
	t.Helper()
	e := cloudevent.New()
	e.SetID("ev-1")
	e.SetType(PubSubType)
	e.SetSource(source)
	if err := e.SetData("application/json", []byte(body)); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDecode(t *testing.T) {
	e := pubsubEvent(t, "//pubsub.googleapis.com/projects/p/topics/runway-trigger-w",
		`{"message":{"data":"aGVsbG8=","attributes":{"k":"v"},"messageId":"42","publishTime":"2026-12-01T03:00:05Z"},"subscription":"projects/p/subscriptions/s"}`)
	m, err := Decode(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "hello" || m.Attributes["k"] != "v" || m.ID != "42" || m.Project != "p" || m.Topic != "runway-trigger-w" ||
		!m.PublishTime.Equal(time.Date(2026, 12, 1, 3, 0, 5, 0, time.UTC)) || m.Subscription != "projects/p/subscriptions/s" {
		t.Fatalf("Decode = %+v", m)
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name, source, body, typ string
	}{
		{name: "not pubsub", typ: "google.cloud.storage.object.v1.finalized", source: "//pubsub.googleapis.com/projects/p/topics/t", body: `{}`},
		{name: "bad source", typ: PubSubType, source: "//storage.googleapis.com/b", body: `{}`},
		{name: "bad body", typ: PubSubType, source: "//pubsub.googleapis.com/projects/p/topics/t", body: `[`},
		{name: "bad base64", typ: PubSubType, source: "//pubsub.googleapis.com/projects/p/topics/t", body: `{"message":{"data":"!!"}}`},
		{name: "deep body", typ: PubSubType, source: "//pubsub.googleapis.com/projects/p/topics/t", body: `{"message":{"attributes":` + strings.Repeat("[", 100000) + `}}`},
		{name: "body over 4 MiB", typ: PubSubType, source: "//pubsub.googleapis.com/projects/p/topics/t", body: `{"message":{"data":"` + strings.Repeat("A", MaxBody) + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := pubsubEvent(t, tt.source, tt.body)
			e.SetType(tt.typ)
			_, err := Decode(e)
			if err == nil || !IsPermanent(err) {
				t.Fatalf("Decode = %v, want a permanent error", err)
			}
		})
	}
}

func TestResult(t *testing.T) {
	transient := errors.New("unavailable")
	if Result(nil) != nil || Result(Permanent(transient)) != nil {
		t.Fatal("success and permanent errors must be acknowledged")
	}
	if err := Result(fmt.Errorf("wrap: %w", transient)); !errors.Is(err, transient) {
		t.Fatalf("Result(transient) = %v, want it returned for redelivery", err)
	}
	if !IsPermanent(fmt.Errorf("outer: %w", Permanent(transient))) {
		t.Fatal("a wrapped permanent error must stay permanent")
	}
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
}
