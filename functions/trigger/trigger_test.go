package trigger

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestRegisteredAndNotHandled drives the function through the functions framework as Eventarc
// would (a binary-mode Pub/Sub CloudEvent) and checks the clear "not handled yet" answer.
func TestRegisteredAndNotHandled(t *testing.T) {
	url := serve(t)
	body := `{"message":{"data":"e30=","messageId":"1","publishTime":"2026-11-26T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", "1")
	req.Header.Set("ce-type", "google.cloud.pubsub.topic.v1.messagePublished")
	req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/p/topics/t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status = %d, want %d (redeliver until handled)", resp.StatusCode, http.StatusInternalServerError)
	}
}

func TestErrorNamesEvent(t *testing.T) {
	e := newEvent("abc")
	err := Trigger(context.Background(), e)
	if !errors.Is(err, ErrNotHandled) {
		t.Fatalf("Trigger() = %v, want ErrNotHandled", err)
	}
	if !strings.Contains(err.Error(), "abc") {
		t.Errorf("error %q does not name the event", err)
	}
}
