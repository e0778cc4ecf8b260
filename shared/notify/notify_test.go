package notify

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var sample = Alert{
	ID: "inc-1/open", IncidentKey: "runway/proj/us-east1/nightly/1", Kind: KindFailed, Action: ActionOpen, Severity: SeverityCritical,
	Workload: "nightly", Project: "proj", Location: "us-east1", Job: "projects/proj/locations/us-east1/jobs/nightly",
	Summary: "nightly: execution nightly-abcde failed", Detail: "1 failure in a row (failure_threshold 1).",
	Execution: "projects/proj/locations/us-east1/jobs/nightly/executions/nightly-abcde",
	Slot:      time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), Since: time.Date(2026, 12, 1, 3, 2, 0, 0, time.UTC),
	LogURL: "https://console.cloud.google.com/logs?x=<1>", Owner: "dbre", Team: "Infrastructure", Time: time.Date(2026, 12, 1, 3, 5, 0, 0, time.UTC),
	DetectedAt: time.Date(2026, 12, 1, 3, 9, 30, 0, time.UTC),
	Links:      []Link{{Text: "Scheduler job", Href: "https://console.cloud.google.com/cloudscheduler/jobs/edit/us-east1/nightly?project=proj"}},
}

// recorder is a local HTTP receiver that answers with the given codes in turn (then the last).
type recorder struct {
	mu     sync.Mutex
	codes  []int
	body   string
	reqs   []*http.Request
	bodies [][]byte
}

func (r *recorder) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.reqs)
		r.reqs, r.bodies = append(r.reqs, req), append(r.bodies, b)
		code := http.StatusOK
		if len(r.codes) > 0 {
			code = r.codes[min(n, len(r.codes)-1)]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, r.body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func instant(d *Dispatcher) *Dispatcher {
	d.Sleep = func(context.Context, time.Duration) error { return nil }
	return d
}

func TestSlackPayload(t *testing.T) {
	rec := &recorder{body: "ok"}
	url := rec.start(t)
	if err := (&Slack{URL: url}).Send(context.Background(), sample); err != nil {
		t.Fatal(err)
	}
	var got SlackMessage
	if err := json.Unmarshal(rec.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Text != "[FAILED] nightly: execution nightly-abcde failed" {
		t.Errorf("text = %q", got.Text)
	}
	if got.Blocks[0].Text.Text != ":rotating_light: *[FAILED] nightly: execution nightly-abcde failed*" {
		t.Errorf("title block = %q", got.Blocks[0].Text.Text)
	}
	fields := map[string]string{}
	for _, b := range got.Blocks[2:] {
		if len(b.Fields) > 10 {
			t.Errorf("a section has %d fields: Slack allows 10", len(b.Fields))
		}
		for _, f := range b.Fields {
			k, v, _ := strings.Cut(f.Text, "\n")
			fields[k] = v
		}
	}
	want := map[string]string{
		"*Workload*": "nightly", "*Job*": sample.Job, "*Execution*": sample.Execution, "*Slot*": "2026-12-01T03:00:00Z",
		"*Since*": "2026-12-01T03:02:00Z", "*Logs*": "<https://console.cloud.google.com/logs?x=%3C1%3E|logs>", "*Owner*": "dbre", "*Team*": "Infrastructure",
		"*At*": "2026-12-01T03:05:00Z", "*Detected*": "2026-12-01T03:09:30Z", "*Scheduler job*": "<" + sample.Links[0].Href + "|scheduler job>",
	}
	if d := cmp.Diff(want, fields); d != "" {
		t.Errorf("fields (-want +got):\n%s", d)
	}
	if ct := rec.reqs[0].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
}

func TestWebhookSignature(t *testing.T) {
	rec := &recorder{codes: []int{http.StatusNoContent}}
	url := rec.start(t)
	now := time.Unix(1_780_000_000, 0)
	w := &Webhook{URL: url, Secret: []byte("s3cret"), Now: func() time.Time { return now }}
	if err := w.Send(context.Background(), sample); err != nil {
		t.Fatal(err)
	}
	h := rec.reqs[0].Header
	if h.Get(HeaderTimestamp) != "1780000000" {
		t.Errorf("timestamp %q", h.Get(HeaderTimestamp))
	}
	if got, want := h.Get(HeaderSignature), Sign([]byte("s3cret"), "1780000000", rec.bodies[0]); got != want || !strings.HasPrefix(got, "sha256=") {
		t.Errorf("signature %q, want %q", got, want)
	}
	if Sign([]byte("other"), "1780000000", rec.bodies[0]) == h.Get(HeaderSignature) {
		t.Error("signature does not depend on the secret")
	}
	if Sign([]byte("s3cret"), "1780000001", rec.bodies[0]) == h.Get(HeaderSignature) {
		t.Error("signature does not depend on the timestamp")
	}
	var got Alert
	if err := json.Unmarshal(rec.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(sample, got); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if h.Get(HeaderAlertID) != sample.ID {
		t.Errorf("alert id header %q", h.Get(HeaderAlertID))
	}
	// The documented schema (docs/monitor.md): both times, and the links as {text, href}.
	var raw map[string]any
	if err := json.Unmarshal(rec.bodies[0], &raw); err != nil {
		t.Fatal(err)
	}
	if raw["time"] != "2026-12-01T03:05:00Z" || raw["detected_at"] != "2026-12-01T03:09:30Z" {
		t.Errorf("time %v detected_at %v", raw["time"], raw["detected_at"])
	}
	if d := cmp.Diff([]any{map[string]any{"text": "Scheduler job", "href": sample.Links[0].Href}}, raw["links"]); d != "" {
		t.Errorf("links (-want +got):\n%s", d)
	}
}

func TestPagerDuty(t *testing.T) {
	tests := []struct {
		name       string
		alert      Alert
		codes      []int
		wantErr    bool
		wantPosts  int
		wantAction string
	}{
		{name: "trigger", alert: sample, codes: []int{http.StatusAccepted}, wantPosts: 1, wantAction: "trigger"},
		{name: "resolve", alert: Alert{ID: "inc-1/resolve", IncidentKey: sample.IncidentKey, Kind: KindRecovered, Action: ActionResolve},
			codes: []int{http.StatusAccepted}, wantPosts: 1, wantAction: "resolve"},
		{name: "retried on 429 and 5xx", alert: sample, codes: []int{429, 502, 202}, wantPosts: 3, wantAction: "trigger"},
		{name: "not retried on 400", alert: sample, codes: []int{400}, wantPosts: 1, wantErr: true, wantAction: "trigger"},
		{name: "gives up", alert: sample, codes: []int{503}, wantPosts: 3, wantErr: true, wantAction: "trigger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{codes: tt.codes, body: `{"status":"success"}`}
			url := rec.start(t)
			d := instant(NewDispatcher(map[string]Channel{"pd": &PagerDuty{RoutingKey: "R0UT1NG", URL: url}}))
			failed, err := d.Deliver(context.Background(), tt.alert, []string{"pd"})
			if (err != nil) != tt.wantErr || (len(failed) > 0) != tt.wantErr {
				t.Fatalf("Deliver = %v, %v; want error %v", failed, err, tt.wantErr)
			}
			if len(rec.bodies) != tt.wantPosts {
				t.Fatalf("%d posts, want %d", len(rec.bodies), tt.wantPosts)
			}
			var ev PagerDutyEvent
			if err := json.Unmarshal(rec.bodies[0], &ev); err != nil {
				t.Fatal(err)
			}
			if ev.RoutingKey != "R0UT1NG" || ev.EventAction != tt.wantAction || ev.DedupKey != sample.IncidentKey {
				t.Errorf("event = %+v", ev)
			}
			if tt.wantAction == "trigger" {
				if ev.Payload == nil || ev.Payload.Summary != sample.Title() || ev.Payload.Severity != "critical" || ev.Payload.Source != sample.Job ||
					ev.Payload.CustomDetails["execution"] != sample.Execution || ev.Payload.CustomDetails["detected"] != "2026-12-01T03:09:30Z" ||
					ev.Payload.Timestamp != "2026-12-01T03:05:00Z" || len(ev.Links) != 2 || ev.Links[1].Href != sample.Links[0].Href {
					t.Errorf("payload = %+v, links %v", ev.Payload, ev.Links)
				}
			} else if ev.Payload != nil {
				t.Errorf("resolve carries a payload: %+v", ev.Payload)
			}
		})
	}
	long := sample
	long.IncidentKey = strings.Repeat("k", 300)
	long.Summary = strings.Repeat("s", 2000)
	ev := PagerDutyEventOf("r", long)
	if len(ev.DedupKey) != 255 || len(ev.Payload.Summary) != 1024 {
		t.Errorf("dedup key %d bytes, summary %d: want 255 and 1024", len(ev.DedupKey), len(ev.Payload.Summary))
	}
}

type failing struct{ calls atomic.Int32 }

func (f *failing) Send(context.Context, Alert) error {
	f.calls.Add(1)
	return errors.New("connection refused")
}

func TestDispatcherIsolatesChannels(t *testing.T) {
	rec := &recorder{body: "ok"}
	url := rec.start(t)
	bad := &failing{}
	d := instant(NewDispatcher(map[string]Channel{"slack": &Slack{URL: url}, "broken": bad}))
	failed, err := d.Deliver(context.Background(), sample, []string{"broken", "slack", "nowhere"})
	if d := cmp.Diff([]string{"broken"}, failed); d != "" {
		t.Errorf("failed (-want +got):\n%s", d)
	}
	if !errors.Is(err, ErrUnknownChannel) || !strings.Contains(err.Error(), "channel broken") {
		t.Errorf("err = %v", err)
	}
	if bad.calls.Load() != 3 {
		t.Errorf("broken channel tried %d times, want 3", bad.calls.Load())
	}
	if len(rec.bodies) != 1 {
		t.Errorf("slack got %d posts, want 1", len(rec.bodies))
	}
}

// smtpServer is a minimal SMTP receiver: it accepts one message per session and records it.
type smtpServer struct {
	mu   sync.Mutex
	from string
	to   []string
	data string
	code string // answer to RCPT, "250" by default
}

func (s *smtpServer) start(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.session(c)
		}
	}()
	return l.Addr().String()
}

func (s *smtpServer) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) { _, _ = io.WriteString(c, line+"\r\n") }
	say("220 localhost ESMTP test")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-localhost")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			s.mu.Lock()
			s.from, _, _ = strings.Cut(strings.TrimLeft(line[len("MAIL FROM:"):], "< "), ">")
			s.mu.Unlock()
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			s.mu.Lock()
			s.to = append(s.to, strings.Trim(line[len("RCPT TO:"):], "<> "))
			code := s.code
			s.mu.Unlock()
			if code == "" {
				code = "250"
			}
			say(code + " rcpt")
		case cmd == "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.data = b.String()
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func TestEmail(t *testing.T) {
	srv := &smtpServer{}
	addr := srv.start(t)
	e := &Email{Addr: addr, From: "runway@example.com", To: []string{"dbre@example.com", "oncall@example.com"}}
	if err := e.Send(context.Background(), sample); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	if srv.from != "runway@example.com" || !cmp.Equal(srv.to, e.To) {
		t.Errorf("envelope from %q to %v", srv.from, srv.to)
	}
	for _, want := range []string{
		"Subject: [FAILED] nightly: execution nightly-abcde failed\r\n",
		"To: dbre@example.com, oncall@example.com\r\n",
		"Content-Type: text/plain; charset=utf-8\r\n",
		"Message-Id: <inc-1-open@runway-monitor>\r\n",
		"\r\n\r\n[FAILED] nightly: execution nightly-abcde failed\r\n\r\n1 failure in a row (failure_threshold 1).\r\n",
		"Execution: projects/proj/locations/us-east1/jobs/nightly/executions/nightly-abcde\r\n",
		"Logs:      https://console.cloud.google.com/logs?x=<1>\r\n",
		"At:        2026-12-01T03:05:00Z\r\nDetected:  2026-12-01T03:09:30Z\r\n",
		"Scheduler job: " + sample.Links[0].Href + "\r\n",
		"Date: Tue, 01 Dec 2026 03:09:30 +0000\r\n",
		"Owner:     dbre\r\n",
	} {
		if !strings.Contains(srv.data, want) {
			t.Errorf("message lacks %q:\n%s", want, srv.data)
		}
	}

	srv.code = "550"
	srv.mu.Unlock()
	if err := e.Send(context.Background(), sample); !errors.Is(err, ErrPermanent) {
		t.Errorf("rejected recipient: err = %v, want ErrPermanent", err)
	}
}

func TestPubSub(t *testing.T) {
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	client, err := pubsub.NewTopicAdminClient(ctx, option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if _, err := client.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/plat/topics/runway-alerts"}); err != nil {
		t.Fatal(err)
	}
	if err := (&PubSub{Publisher: client, Topic: "projects/plat/topics/runway-alerts"}).Send(ctx, sample); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	var got Alert
	if err := json.Unmarshal(msgs[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(sample, got); d != "" {
		t.Errorf("alert (-want +got):\n%s", d)
	}
	if want := map[string]string{"alert_id": sample.ID, "kind": "failed", "action": "open", "severity": "critical", "workload": "nightly"}; !cmp.Equal(want, msgs[0].Attributes) {
		t.Errorf("attributes = %v", msgs[0].Attributes)
	}
	if err := (&PubSub{Publisher: client, Topic: "projects/plat/topics/missing"}).Send(ctx, sample); err == nil {
		t.Error("publishing on a missing topic succeeded")
	}
}

func TestTopicName(t *testing.T) {
	tests := []struct {
		name, project, topic, want string
	}{
		{name: "an ID is in the channel's project", project: "plat", topic: "runway-alerts", want: "projects/plat/topics/runway-alerts"},
		{name: "a full name is kept", project: "plat", topic: "projects/other/topics/alerts", want: "projects/other/topics/alerts"},
		{name: "anything else is an ID, as the library has it", project: "plat", topic: "a/b", want: "projects/plat/topics/a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := topicName(tt.project, tt.topic); got != tt.want {
				t.Errorf("topicName(%q, %q) = %q, want %q", tt.project, tt.topic, got, tt.want)
			}
		})
	}
}

func TestText(t *testing.T) {
	resolved := Alert{Kind: KindRecovered, Action: ActionResolve, Summary: "nightly recovered", Workload: "nightly", Duration: 90*time.Minute + 400*time.Millisecond}
	want := "[RECOVERED] nightly recovered\n\nWorkload:  nightly\nLasted:    1h30m0s\n"
	if got := resolved.Text(); got != want {
		t.Errorf("Text() =\n%q\nwant\n%q", got, want)
	}
	re := sample
	re.Action = ActionRealert
	if got := re.Tag(); got != "STILL FAILED" {
		t.Errorf("Tag() = %q", got)
	}
}

func TestSecretManager(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/projects/p/secrets/hook/versions/3:access" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"name":"projects/p/secrets/hook/versions/3","payload":{"data":"`+base64.StdEncoding.EncodeToString([]byte("hunter2"))+`"}}`)
	}))
	t.Cleanup(srv.Close)
	s := Secrets{Lookup: func(k string) (string, bool) { return map[string]string{"HOOK": "from-env"}[k], k == "HOOK" },
		SecretManager: &SecretManager{Client: srv.Client(), BaseURL: srv.URL}}
	ctx := context.Background()
	tests := []struct {
		name    string
		ref     *SecretRef
		want    string
		wantErr bool
	}{
		{name: "env", ref: &SecretRef{Env: "HOOK"}, want: "from-env"},
		{name: "env unset", ref: &SecretRef{Env: "NOPE"}, wantErr: true},
		{name: "secret manager", ref: &SecretRef{SecretManager: "projects/p/secrets/hook/versions/3"}, want: "hunter2"},
		{name: "secret manager missing", ref: &SecretRef{SecretManager: "projects/p/secrets/other/versions/1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Resolve(ctx, tt.ref)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Resolve = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
