// Package notify delivers Runway Jobs alerts to their channels: Slack incoming webhooks, e-mail
// over SMTP, generic webhooks signed with HMAC-SHA256, PagerDuty Events API v2 and a Pub/Sub
// alerts topic.
//
// The monitor function calls it: it builds the channels once from the platform's channel
// configuration (LoadConfig, Build), then hands every alert to Dispatcher.Deliver with the
// names of the channels the job routes to. A channel that fails is retried with backoff and
// does not stop the others; Deliver says which channels did not take the alert, so the caller
// can keep it and try those again later.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Kind is what an alert is about.
type Kind string

// Alert kinds.
const (
	KindFailed    Kind = "failed"    // executions failed (failure_threshold in a row)
	KindMissed    Kind = "missed"    // a scheduled slot got no execution
	KindSkipped   Kind = "skipped"   // a slot was skipped by the trigger (Forbid, starting deadline)
	KindLate      Kind = "late"      // an execution runs past expected runtime + grace
	KindHung      Kind = "hung"      // an execution runs past the longest its timeout and retries allow
	KindFlaky     Kind = "flaky"     // an execution succeeded only after failed task attempts
	KindRecovered Kind = "recovered" // the job succeeded again (recovery_threshold in a row)
	KindUnknown   Kind = "unknown"   // the monitor cannot see the job metrics
	KindFlapping  Kind = "flapping"  // the job alternates between success and failure: its incident is held open
	KindGone      Kind = "gone"      // the job was deleted or its monitoring disabled: its incident is closed
)

// Action is the change the alert reports, as PagerDuty and the webhook receivers read it.
type Action string

// Alert actions.
const (
	ActionOpen    Action = "open"    // an incident opened
	ActionRealert Action = "realert" // an incident is still open after the re-alert interval
	ActionResolve Action = "resolve" // an incident closed
	ActionWarn    Action = "warn"    // a warning: flaky, or an open incident now flapping
)

// Severity of an alert.
type Severity string

// Severities, with PagerDuty's names.
const (
	SeverityCritical Severity = "critical"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// Alert is one notification.
type Alert struct {
	// ID is unique per notification: receivers may deduplicate on it.
	ID string `json:"id"`
	// IncidentKey is the same for the open, re-alert and resolve of one incident (PagerDuty's
	// dedup_key).
	IncidentKey string   `json:"incident_key"`
	Kind        Kind     `json:"kind"`
	Action      Action   `json:"action"`
	Severity    Severity `json:"severity"`
	Workload    string   `json:"workload,omitempty"`
	Project     string   `json:"project,omitempty"`
	Location    string   `json:"location,omitempty"`
	Job         string   `json:"job,omitempty"` // full Cloud Run job name
	// Summary is one line: what happened, to what.
	Summary string `json:"summary"`
	// Detail is a sentence or two more.
	Detail    string    `json:"detail,omitempty"`
	Execution string    `json:"execution,omitempty"` // full name of the execution concerned
	Slot      time.Time `json:"slot,omitzero"`       // the scheduled slot concerned
	Since     time.Time `json:"since,omitzero"`      // when the problem started
	// Duration is how long the incident lasted (resolve) or has lasted (re-alert).
	Duration time.Duration `json:"duration,omitempty"`
	LogURL   string        `json:"log_url,omitempty"`
	// Links are more places to look: for a slot, the Cloud Scheduler job and a Cloud Logging
	// query of its attempts (the emulator's pages locally).
	Links []Link `json:"links,omitempty"`
	// Owner is the owner's e-mail handle (the part before @), for receivers to route on: the
	// e-mail channel sends to its configured recipients, not to it.
	Owner string `json:"owner,omitempty"`
	// Team is the owner's department (group, product category), for routing by receivers.
	Team string `json:"team,omitempty"`
	// Time is when the event happened: the completion, the slot's deadline, the run's expected
	// end (the same however the monitor's ticks fall).
	Time time.Time `json:"time"`
	// DetectedAt is when the monitor's tick decided the alert (its wall clock): DetectedAt −
	// Time is the detection delay (the metrics' ingest lag and the tick interval at least).
	DetectedAt time.Time `json:"detected_at,omitzero"`
}

// Link is a labelled URL of an alert.
type Link struct {
	Text string `json:"text"`
	Href string `json:"href"`
}

// Channel delivers alerts to one destination.
type Channel interface {
	// Send delivers a once. An error wrapping ErrPermanent is not retried.
	Send(ctx context.Context, a Alert) error
}

// ErrPermanent marks a delivery error that retrying cannot fix (a 4xx answer, a bad address).
var ErrPermanent = errors.New("permanent delivery error")

// ErrUnknownChannel is returned for a channel name the configuration does not define.
var ErrUnknownChannel = errors.New("unknown channel")

// Dispatcher sends alerts to named channels, retrying each independently.
type Dispatcher struct {
	channels map[string]Channel
	// Attempts per channel and delivery (default 3); Backoff before the second (doubling).
	Attempts int
	Backoff  time.Duration
	// Sleep waits between attempts (default: a timer that honours ctx); tests make it instant.
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewDispatcher returns a Dispatcher over the named channels.
func NewDispatcher(channels map[string]Channel) *Dispatcher {
	return &Dispatcher{channels: channels, Attempts: 3, Backoff: 500 * time.Millisecond, Sleep: sleep}
}

// Deliver sends a to every named channel at once and returns, joined, the error of each that
// did not take it after its retries, and the names of those channels (so the caller can try
// them again later). An unknown name fails with ErrUnknownChannel, and is never worth retrying.
func (d *Dispatcher) Deliver(ctx context.Context, a Alert, names []string) (failed []string, err error) {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, name := range names {
		ch, ok := d.channels[name]
		if !ok {
			mu.Lock()
			errs = append(errs, fmt.Errorf("channel %s: %w", name, ErrUnknownChannel))
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			if err := d.retry(ctx, ch, a); err != nil {
				mu.Lock()
				failed = append(failed, name)
				errs = append(errs, fmt.Errorf("channel %s: %w", name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed, errors.Join(errs...)
}

func (d *Dispatcher) retry(ctx context.Context, ch Channel, a Alert) error {
	attempts, backoff := max(d.Attempts, 1), d.Backoff
	var err error
	for i := range attempts {
		if i > 0 {
			if serr := d.Sleep(ctx, backoff); serr != nil {
				return errors.Join(err, serr)
			}
			backoff *= 2
		}
		if err = ch.Send(ctx, a); err == nil || errors.Is(err, ErrPermanent) {
			return err
		}
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// statusError classifies an HTTP answer: 2xx is nil; 429 and 5xx are retried; other codes
// (3xx included: redirects are not followed) are permanent. The error quotes the start of the
// answer's body, with secrets scrubbed first (a server may echo the request).
func statusError(resp *http.Response, body []byte, secrets []string) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err := fmt.Errorf("HTTP %d", resp.StatusCode)
	if msg := scrub(string(body), secrets, maxErrorText); msg != "" {
		err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return err
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}
