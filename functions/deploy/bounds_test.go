package deploy

import (
	"context"
	"strings"
	"testing"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"

	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/platform"
)

// TestBoundedInput: a deploy request or an Artifact Registry notification over the bounds is
// refused before it is decoded, permanently (no redelivery), the refusal recorded with its
// position, and nothing is written to Cloud Run.
func TestBoundedInput(t *testing.T) {
	deepJSON := []byte(`{"request_id":"r1","manifest":` + strings.Repeat("[", 100000) + `}`)
	tests := []struct {
		name   string
		event  func(t *testing.T) cloudevent.Event
		record string // request id of the refusal record; "" for none
		want   string // fragment of the error and of the recorded problem
	}{
		{name: "deep JSON request", event: func(t *testing.T) cloudevent.Event {
			return pubsubEvent(t, "d1", platform.DeployTopic("nightly"), deepJSON)
		},
			record: "d1", want: "deploy request: JSON is nested more than 64 levels deep"},
		{name: "deep flow manifest", event: func(t *testing.T) cloudevent.Event {
			return requestEvent(t, "nightly", apply("r2", "nightly", "a: "+strings.Repeat("[", 25000)+strings.Repeat("]", 25000)+"\n", 10))
		}, record: "r2", want: ".runway/runway.yml:1:67: document is nested more than 64 levels deep"},
		{name: "many keys manifest", event: func(t *testing.T) cloudevent.Event {
			return requestEvent(t, "nightly", apply("r3", "nightly", strings.Repeat("k: v\n", 600), 10))
		}, record: "r3", want: ".runway/runway.yml:501:1: mapping has more than 500 entries"},
		{name: "deep JSON push", event: func(t *testing.T) cloudevent.Event {
			return pubsubEvent(t, "p1", platform.ArtifactTopic, []byte(`{"tag":`+strings.Repeat("[", 100)+`}`))
		}, want: "artifact notification: JSON is nested more than 64 levels deep"},
		{name: "large push", event: func(t *testing.T) cloudevent.Event { return pubsubEvent(t, "p2", platform.ArtifactTopic, deepJSON) },
			want: "artifact notification: JSON is 100031 bytes; the limit is 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			err := e.h.Handle(context.Background(), tt.event(t))
			if err == nil || !event.IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Handle = %v, want a permanent error containing %q", err, tt.want)
			}
			if writes, _ := e.writes.take(); len(writes) != 0 {
				t.Errorf("writes %v, want none", writes)
			}
			if tt.record != "" {
				r := e.record(t, "nightly", tt.record)
				if r.Outcome != platform.DeployRefused || len(r.Problems) == 0 || !strings.Contains(strings.Join(r.Problems, "\n"), tt.want) {
					t.Errorf("record = %+v, want refused with %q", r, tt.want)
				}
			}
		})
	}
}
