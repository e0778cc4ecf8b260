package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// post sends body as JSON to target and classifies the answer. Every error it returns names op
// and the host only, with secrets (and target's path and query, which may be one) scrubbed from
// whatever the client or the server put in it. Redirects are not followed: a 3xx is an error.
func post(ctx context.Context, client *http.Client, op, target string, body []byte, header http.Header, secrets []string) error {
	secrets = append(urlSecrets(target), secrets...)
	host := hostOf(target)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		// url.Parse's errors quote pieces of the URL: say no more than that it is not one.
		return redact(op, host, fmt.Errorf("%w: invalid URL", ErrPermanent), nil)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "runway-monitor")
	for k, v := range header {
		req.Header[k] = v
	}
	if client == nil {
		client = http.DefaultClient
	}
	c := *client // the same transport, without redirects
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return redact(op, host, err, secrets)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return redact(op, host, statusError(resp, b, secrets), nil)
}

// Slack posts to a Slack incoming webhook.
type Slack struct {
	URL    string // the webhook URL: a secret
	Client *http.Client
}

var _ Channel = (*Slack)(nil)

// SlackMessage is the body posted to the webhook.
type SlackMessage struct {
	Text   string       `json:"text"` // the fallback for notifications
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is a Block Kit block (header, section, context).
type SlackBlock struct {
	Type   string      `json:"type"`
	Text   *SlackText  `json:"text,omitempty"`
	Fields []SlackText `json:"fields,omitempty"`
}

// SlackText is a Block Kit text object.
type SlackText struct {
	Type string `json:"type"` // mrkdwn | plain_text
	Text string `json:"text"`
}

// SlackMessageOf renders a as a Slack message.
func SlackMessageOf(a Alert) SlackMessage {
	title := a.emoji() + " *" + slackEscape(a.Title()) + "*"
	blocks := []SlackBlock{{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: title}}}
	if a.Detail != "" {
		blocks = append(blocks, SlackBlock{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: slackEscape(a.Detail)}})
	}
	var fields []SlackText
	for _, f := range a.Fields() {
		v := slackEscape(f.Value)
		if f.Link {
			v = "<" + slackLink(f.Value) + "|" + slackEscape(strings.ToLower(f.Label)) + ">"
		}
		fields = append(fields, SlackText{Type: "mrkdwn", Text: "*" + slackEscape(f.Label) + "*\n" + v})
	}
	for len(fields) > 0 { // Slack allows 10 fields per section
		n := min(len(fields), 10)
		blocks = append(blocks, SlackBlock{Type: "section", Fields: fields[:n]})
		fields = fields[n:]
	}
	return SlackMessage{Text: a.Title(), Blocks: blocks}
}

// slackLink makes a URL safe inside <url|text>: Slack reads "|" and ">" as the link's ends.
func slackLink(u string) string {
	return strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(u)
}

func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Send posts a; Slack answers 200 "ok".
func (s *Slack) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(SlackMessageOf(a))
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	return post(ctx, s.Client, "slack webhook", s.URL, body, nil, nil)
}

// Webhook posts the alert as JSON to any URL, signed so the receiver can check where it comes
// from and that it is fresh.
//
// Headers: X-Runway-Timestamp is the Unix time of the request in seconds; X-Runway-Signature is
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)). Receivers recompute it, compare
// in constant time and refuse timestamps more than a few minutes old.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client
	Now    func() time.Time // default time.Now
}

var _ Channel = (*Webhook)(nil)

// Signature headers of Webhook.
const (
	HeaderTimestamp = "X-Runway-Timestamp"
	HeaderSignature = "X-Runway-Signature"
	HeaderAlertID   = "X-Runway-Alert-Id"
)

// Sign returns the X-Runway-Signature value of body sent at timestamp ts (Unix seconds).
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send posts a.
func (w *Webhook) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	h := http.Header{}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Sign(w.Secret, ts, body))
	h.Set(HeaderAlertID, a.ID)
	return post(ctx, w.Client, "webhook", w.URL, body, h, []string{string(w.Secret), h.Get(HeaderSignature)})
}

// PagerDuty sends Events API v2 events: open and re-alert trigger, resolve resolves, all with
// the incident's dedup key so PagerDuty keeps one incident.
type PagerDuty struct {
	RoutingKey string
	URL        string // default DefaultPagerDutyURL
	Client     *http.Client
}

var _ Channel = (*PagerDuty)(nil)

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDutyEvent is an Events API v2 event.
type PagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"` // trigger | resolve
	DedupKey    string            `json:"dedup_key"`
	Payload     *PagerDutyPayload `json:"payload,omitempty"`
	Links       []PagerDutyLink   `json:"links,omitempty"`
}

// PagerDutyPayload is the event's payload.
type PagerDutyPayload struct {
	Summary       string            `json:"summary"`
	Source        string            `json:"source"`
	Severity      string            `json:"severity"`
	Timestamp     string            `json:"timestamp,omitempty"`
	Component     string            `json:"component,omitempty"`
	Group         string            `json:"group,omitempty"`
	Class         string            `json:"class,omitempty"`
	CustomDetails map[string]string `json:"custom_details,omitempty"`
}

// PagerDutyLink is a link shown on the incident.
type PagerDutyLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// PagerDutyEventOf renders a as an event (dedup keys are at most 255 bytes, summaries 1024).
func PagerDutyEventOf(routingKey string, a Alert) PagerDutyEvent {
	ev := PagerDutyEvent{RoutingKey: routingKey, EventAction: "trigger", DedupKey: truncate(a.IncidentKey, 255)}
	if ev.DedupKey == "" {
		ev.DedupKey = truncate(a.ID, 255)
	}
	if a.Action == ActionResolve {
		ev.EventAction = "resolve"
		return ev
	}
	details := map[string]string{}
	for _, f := range a.Fields() {
		details[strings.ToLower(strings.ReplaceAll(f.Label, " ", "_"))] = f.Value
	}
	if a.Detail != "" {
		details["detail"] = a.Detail
	}
	source := a.Job
	if source == "" {
		source = "runway-monitor"
	}
	sev := string(a.Severity)
	if sev == "" {
		sev = string(SeverityCritical)
	}
	ev.Payload = &PagerDutyPayload{
		Summary: truncate(a.Title(), 1024), Source: source, Severity: sev,
		Timestamp: a.Time.UTC().Format(time.RFC3339), Component: a.Workload, Group: a.Team, Class: string(a.Kind),
		CustomDetails: details,
	}
	if a.LogURL != "" {
		ev.Links = []PagerDutyLink{{Href: a.LogURL, Text: "Execution logs"}}
	}
	for _, l := range a.Links {
		if l.Href != "" {
			ev.Links = append(ev.Links, PagerDutyLink{Href: l.Href, Text: l.Text})
		}
	}
	return ev
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Send enqueues the event; PagerDuty answers 202, and 429 or 5xx when it should be retried.
func (p *PagerDuty) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(PagerDutyEventOf(p.RoutingKey, a))
	if err != nil {
		return fmt.Errorf("pagerduty: %w", err)
	}
	url := p.URL
	if url == "" {
		url = DefaultPagerDutyURL
	}
	return post(ctx, p.Client, "pagerduty enqueue", url, body, nil, []string{p.RoutingKey})
}
