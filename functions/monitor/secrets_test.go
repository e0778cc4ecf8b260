package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/logging"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// The channel secrets of TestMonitorLogsNoSecret.
const (
	slackToken   = "SLACKTOKEN0xc0ffee15dead"
	hookToken    = "HOOKTOKEN0xbadc0ffee000"
	hookSecret   = "HMACSECRET0x0ddba11cafe"
	pdKey        = "PDROUTINGKEY0xfeedfacecafebeef"
	smtpPassword = "SMTPPASSWORD0x5ca1ab1e"
)

func secretLeaks(s string) []string {
	var found []string
	for _, sec := range []string{slackToken, hookToken, hookSecret, pdKey, smtpPassword,
		base64.StdEncoding.EncodeToString([]byte("\x00runway\x00" + smtpPassword)), "/services/T0RUNWAY/B0RUNWAY/"} {
		if strings.Contains(s, sec) || strings.Contains(s, base64.StdEncoding.EncodeToString([]byte(sec))) {
			found = append(found, sec)
		}
	}
	return found
}

// echoing answers every request with code and the request itself (URL, body, headers).
func echoing(t *testing.T, code int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, _ := httputil.DumpRequest(r, true)
		_, body, _ := bytes.Cut(dump, []byte("\r\n\r\n"))
		w.WriteHeader(code)
		_, _ = io.WriteString(w, r.URL.String()+" "+string(body[:min(len(body), 60)])+" "+string(dump))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// authEchoSMTP is an SMTP server that refuses AUTH, quoting the client's AUTH line.
func authEchoSMTP(t *testing.T) string {
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
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				say := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
				say("220 localhost ESMTP")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(line); {
					case strings.HasPrefix(cmd, "EHLO"):
						say("250-localhost")
						say("250 AUTH PLAIN")
					case strings.HasPrefix(cmd, "AUTH"):
						say("535 5.7.8 refused: " + strings.TrimSpace(line))
					case strings.HasPrefix(cmd, "QUIT"):
						say("221 bye")
						return
					default:
						say("250 ok")
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// TestMonitorLogsNoSecret runs monitor ticks end to end, built from the environment as in
// production (channel configuration file, secrets from env), with an alert in the outbox for a
// Slack webhook on a closed port, a signed webhook and PagerDuty answering 400 and 503 echoing
// the request, a mail server refusing AUTH quoting it, and a Pub/Sub topic that takes it. The
// monitor's log lines, its state records on disk and the alert published must hold no secret.
func TestMonitorLogsNoSecret(t *testing.T) {
	ctx := context.Background()
	psrv := pstest.NewServer()
	t.Cleanup(func() { psrv.Close() })

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	dir := t.TempDir()
	channels := "channels:\n" +
		"  slack:\n    type: slack\n    webhook: {env: SLACK_URL}\n" +
		"  hook:\n    type: webhook\n    url: " + echoing(t, http.StatusBadRequest) + "/hooks/" + hookToken + "?token=" + hookToken + "\n    secret: {env: HOOK_SECRET}\n" +
		"  pd:\n    type: pagerduty\n    routing_key: {env: PD_KEY}\n    endpoint: " + echoing(t, http.StatusServiceUnavailable) + "/v2/enqueue\n" +
		"  mail:\n    type: email\n    smtp_addr: " + authEchoSMTP(t) + "\n    username: runway\n    password: {env: SMTP_PASSWORD}\n    from: runway@example.com\n    to: [dbre@example.com]\n" +
		"  topic:\n    type: pubsub\n    project: plat\n"
	for name, data := range map[string]string{"channels.yml": channels, "inventory.yml": replayInventory} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		state.EnvVar: filepath.Join(dir, "state"), platform.EnvInventory: filepath.Join(dir, "inventory.yml"),
		EnvChannels: filepath.Join(dir, "channels.yml"), gcp.EmulatorHostEnv: psrv.Addr, // Pub/Sub is all the channels dial
		"SLACK_URL": "http://" + closedAddr + "/services/T0RUNWAY/B0RUNWAY/" + slackToken, "HOOK_SECRET": hookSecret,
		"PD_KEY": pdKey, "SMTP_PASSWORD": smtpPassword,
	}
	cfg, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := psrv.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/plat/topics/" + platform.AlertsTopic}); err != nil {
		t.Fatal(err)
	}

	r := newReplay(t)
	store, err := state.Open(context.Background(), cfg.State, cfg.GCP)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range must(r.store.List(ctx, "runs/")) { // the trigger's records
		o, _ := r.store.Get(ctx, k)
		if _, err := store.Put(ctx, k, o.Data, 0); err != nil {
			t.Fatal(err)
		}
	}
	var logged bytes.Buffer
	h, err := assemble(ctx, cfg, nil, store, r.inv, r.w.clock, logging.New(&logged, "monitor", zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	h.cloud = r.w // the replay's Cloud Run and Cloud Monitoring
	h.dispatcher.Sleep = func(context.Context, time.Duration) error { return nil }

	now := dec(3, 12, 0, 30)
	r.w.setNow(now)
	st := &detect.State{Watermark: now.Add(-3 * time.Minute).Truncate(time.Minute), Outbox: []detect.Pending{{
		Alert:    notify.Alert{ID: "a1", Kind: notify.KindFailed, Action: notify.ActionOpen, Workload: "hourly", Summary: "hourly failed", Time: now.Add(-time.Minute)},
		Channels: []string{"slack", "hook", "pd", "mail", "topic"}, Lease: "dead", LeaseUntil: now.Add(-time.Second),
	}}}
	b, _ := json.Marshal(st)
	if _, err := store.Put(ctx, platform.MonitorStateKey("runway-proj"), b, 0); err != nil {
		t.Fatal(err)
	}
	var tickErrs []string
	for _, at := range []time.Time{now, now.Add(2 * time.Minute)} { // the delivery and its retry
		r.w.setNow(at)
		if _, err := h.tick(ctx); err != nil {
			tickErrs = append(tickErrs, err.Error())
		}
	}

	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	var undelivered int
	for _, l := range lines {
		if strings.Contains(l, "alert not delivered") {
			undelivered++
			for _, ch := range []string{"channel slack", "channel hook", "channel pd", "channel mail"} {
				if !strings.Contains(l, ch) {
					t.Errorf("log line does not name %s: %s", ch, l)
				}
			}
		}
		if leaks := secretLeaks(l); len(leaks) > 0 {
			t.Errorf("secrets %q in log line %s", leaks, l)
		}
	}
	if undelivered != 2 {
		t.Errorf("%d 'alert not delivered' lines, want 2 (delivery and retry):\n%s", undelivered, logged.String())
	}
	for _, e := range tickErrs {
		if leaks := secretLeaks(e); len(leaks) > 0 {
			t.Errorf("secrets %q in tick error %s", leaks, e)
		}
	}
	// Every state record, as stored on disk.
	var records int
	err = filepath.WalkDir(filepath.Join(dir, "state"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		records++
		if leaks := secretLeaks(string(data)); len(leaks) > 0 {
			t.Errorf("secrets %q in state record %s", leaks, path)
		}
		return nil
	})
	if err != nil || records == 0 {
		t.Fatalf("state records: %d, %v", records, err)
	}
	o, err := store.Get(ctx, platform.MonitorStateKey("runway-proj"))
	if err != nil {
		t.Fatal(err)
	}
	var after detect.State
	if err := json.Unmarshal(o.Data, &after); err != nil {
		t.Fatal(err)
	}
	if len(after.Outbox) != 1 || len(after.Outbox[0].Channels) != 4 {
		t.Errorf("outbox after the ticks = %+v, want a1 waiting for the four failing channels", after.Outbox)
	}
	// The alert the Pub/Sub channel published (once: the retry is for the failing channels).
	msgs := psrv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages published, want 1", len(msgs))
	}
	for _, m := range msgs {
		if leaks := secretLeaks(string(m.Data) + " " + strings.Join(mapValues(m.Attributes), " ")); len(leaks) > 0 {
			t.Errorf("secrets %q in the published alert %s", leaks, m.Data)
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}
