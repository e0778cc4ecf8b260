package notify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/logging"
)

// Distinctive secret values, one per channel kind: none may reach an error or a log line.
const (
	slackToken   = "SLACKTOKEN0x9f8e7d6c5b4a"
	hookToken    = "HOOKTOKEN0x1a2b3c4d5e6f"
	hookSecret   = "HMACSECRET0x5e6f7a8b9c0d"
	pdKey        = "PDROUTINGKEY0x0123456789abcdef"
	smtpUser     = "runway"
	smtpPassword = "SMTPPASSWORD0xfedcba987654"
)

// leaks returns the forms of the secrets found in s: each secret as is, base64 (AUTH PLAIN),
// and the Slack webhook path.
func leaks(s string) []string {
	var found []string
	for _, sec := range []string{slackToken, hookToken, hookSecret, pdKey, smtpPassword,
		base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + smtpPassword)),
		"/services/T0RUNWAY/B0RUNWAY/"} {
		if strings.Contains(s, sec) || strings.Contains(s, base64.StdEncoding.EncodeToString([]byte(sec))) {
			found = append(found, sec)
		}
	}
	return found
}

// errorTexts are the texts of err and of every error it wraps, so that a caller unwrapping it
// (errors.As to a *url.Error, say) finds no secret either.
func errorTexts(err error) []string {
	if err == nil {
		return nil
	}
	out := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, errorTexts(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, errorTexts(e)...)
		}
	}
	return out
}

// echo writes back everything about the request it got, the parts that carry secrets first
// (so that they fall within the quoted start of the answer): the URL, the body, the signature,
// then the whole request, raw and in base64.
func echo(w http.ResponseWriter, r *http.Request, code int) {
	dump, _ := httputil.DumpRequest(r, true)
	_, body, _ := bytes.Cut(dump, []byte("\r\n\r\n"))
	if code >= 300 && code < 400 {
		w.Header().Set("Location", r.URL.String()+"&from="+string(dump[:min(len(dump), 100)]))
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "%s %s %s\n%s\n", r.URL, body[:min(len(body), 60)], r.Header.Get(HeaderSignature), dump)
	_, _ = w.Write([]byte(base64.StdEncoding.EncodeToString(dump)))
}

// endpoint is one way for a delivery to fail: base is the scheme://host:port the channel
// posts to (SMTP: host:port).
type endpoint struct {
	name      string
	base      string
	permanent bool // the dispatcher must not retry it
	attempts  *atomic.Int32
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silent returns the address of a listener that accepts connections and never answers.
func silent(t *testing.T) (string, *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String(), &n
}

// rawEcho returns the address of a TCP server that answers a request with its own bytes, not
// HTTP: the client's transport error quotes them.
func rawEcho(t *testing.T) (string, *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, 4096)
				k, _ := c.Read(b)
				_, _ = c.Write(b[:k])
			}()
		}
	}()
	return l.Addr().String(), &n
}

// httpEndpoints are the failure modes of the HTTP channels.
func httpEndpoints(t *testing.T) []endpoint {
	counted := func(code int) (string, *atomic.Int32) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			echo(w, r, code)
		}))
		t.Cleanup(srv.Close)
		return srv.URL, &n
	}
	var tlsN atomic.Int32
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tlsN.Add(1); echo(w, r, 200) }))
	tlsSrv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the handshake errors of the untrusting client
	t.Cleanup(tlsSrv.Close)
	silentAddr, silentN := silent(t)
	rawAddr, rawN := rawEcho(t)
	var eps []endpoint
	eps = append(eps,
		endpoint{name: "connection refused", base: "http://" + closedPort(t), attempts: new(atomic.Int32)},
		endpoint{name: "untrusted TLS certificate", base: tlsSrv.URL, attempts: &tlsN},
		endpoint{name: "timeout", base: "http://" + silentAddr, attempts: silentN},
		endpoint{name: "not HTTP, echoing the request", base: "http://" + rawAddr, attempts: rawN},
	)
	for _, c := range []struct {
		code      int
		permanent bool
	}{{http.StatusFound, true}, {http.StatusPermanentRedirect, true}, {http.StatusBadRequest, true}, {http.StatusForbidden, true},
		{http.StatusTooManyRequests, false}, {http.StatusInternalServerError, false}, {http.StatusServiceUnavailable, false}} {
		base, n := counted(c.code)
		eps = append(eps, endpoint{name: fmt.Sprintf("HTTP %d echoing the request", c.code), base: base, permanent: c.permanent, attempts: n})
	}
	return eps
}

// buildChannels builds the channel kind through the configuration, with its secrets read from
// the environment, as the monitor does.
func buildChannels(t *testing.T, cfg string, env map[string]string, hc *http.Client) map[string]Channel {
	t.Helper()
	c, err := ParseConfig([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	chs, err := Build(context.Background(), c, Secrets{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, Deps{HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	return chs
}

// deliverLogged delivers sample to name as the monitor does, logging the error as it does, and
// returns the error and the log.
func deliverLogged(chs map[string]Channel, name string) (error, string) {
	var buf bytes.Buffer
	log := logging.New(&buf, "monitor", zerolog.DebugLevel)
	d := instant(NewDispatcher(chs))
	failed, err := d.Deliver(context.Background(), sample, []string{name})
	if err != nil {
		log.Error().Err(err).Str("alert", sample.ID).Strs("failed", failed).Msg("alert not delivered to every channel")
	}
	return err, buf.String()
}

// TestNoSecretInDeliveryErrors configures a distinctive secret for every HTTP channel kind,
// makes every delivery fail in every way (refused, untrusted TLS, timeout, a server echoing
// the request raw, 3xx/4xx/5xx answers echoing it), and checks that no secret reaches the
// error the dispatcher returns, any error it wraps, or the log line the monitor writes.
func TestNoSecretInDeliveryErrors(t *testing.T) {
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	env := map[string]string{"SLACK_URL": "", "HOOK_SECRET": hookSecret, "PD_KEY": pdKey}
	kinds := []struct {
		name   string
		config func(base string) string
	}{
		{name: "slack", config: func(base string) string {
			env["SLACK_URL"] = base + "/services/T0RUNWAY/B0RUNWAY/" + slackToken
			return "channels:\n  slack:\n    type: slack\n    webhook: {env: SLACK_URL}\n"
		}},
		{name: "webhook", config: func(base string) string {
			return "channels:\n  webhook:\n    type: webhook\n    url: " + base + "/hooks/" + hookToken + "?token=" + hookToken + "\n    secret: {env: HOOK_SECRET}\n"
		}},
		{name: "pagerduty", config: func(base string) string {
			return "channels:\n  pagerduty:\n    type: pagerduty\n    routing_key: {env: PD_KEY}\n    endpoint: " + base + "/v2/enqueue\n"
		}},
	}
	for _, ep := range httpEndpoints(t) {
		for _, k := range kinds {
			t.Run(k.name+"/"+ep.name, func(t *testing.T) {
				before := ep.attempts.Load()
				chs := buildChannels(t, k.config(ep.base), env, hc)
				err, logged := deliverLogged(chs, k.name)
				if err == nil {
					t.Fatal("delivery succeeded")
				}
				if !strings.HasPrefix(err.Error(), "channel "+k.name+": ") {
					t.Errorf("error %q does not name the channel first", err)
				}
				for _, s := range append(errorTexts(err), logged) {
					if l := leaks(s); len(l) > 0 {
						t.Errorf("secrets %q leaked in %q", l, s)
					}
				}
				if !strings.Contains(logged, `"severity":"ERROR"`) {
					t.Errorf("nothing logged: %q", logged)
				}
				if got := errors.Is(err, ErrPermanent); got != ep.permanent {
					t.Errorf("permanent = %v, want %v (%v)", got, ep.permanent, err)
				}
				want := int32(3)
				if ep.permanent {
					want = 1
				}
				if got := ep.attempts.Load() - before; ep.name != "connection refused" && ep.name != "untrusted TLS certificate" && got != want {
					t.Errorf("%d attempts reached the server, want %d", got, want)
				}
			})
		}
	}
}

// TestScrubBeforeTheCut: a secret straddling the bound of the quoted answer is removed whole,
// not cut in half; control bytes splitting a secret cannot join it back after the scrub.
func TestScrubBeforeTheCut(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "straddling the bound", body: strings.Repeat("x", maxErrorText-10) + pdKey + strings.Repeat("y", 100)},
		{name: "split by a control byte", body: "bad key " + pdKey[:8] + "\x01" + pdKey[8:]},
		{name: "split by an invalid byte", body: "bad key " + pdKey[:8] + "\xff" + pdKey[8:]},
		{name: "JSON-escaped", body: `{"error":"` + strings.ReplaceAll("/x/"+pdKey, "/", `\/`) + `"}`},
		{name: "base64", body: "got " + base64.StdEncoding.EncodeToString([]byte(pdKey))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scrub(tt.body, []string{pdKey}, maxErrorText)
			if strings.Contains(got, pdKey[:8]) && !strings.Contains(got, "[redacted]") || strings.Contains(got, pdKey) {
				t.Errorf("scrub = %q", got)
			}
			if strings.Contains(got, pdKey[:minSecretLen]) {
				t.Errorf("part of the secret left: %q", got)
			}
			if len(got) > maxErrorText+len("…") || !utf8.ValidString(got) {
				t.Errorf("scrub = %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
			}
		})
	}
}

// FuzzScrub: whatever the answer, the scrubbed text holds no secret, is printable UTF-8 and is
// bounded.
func FuzzScrub(f *testing.F) {
	f.Add("HTTP 400 "+pdKey, pdKey)
	f.Add("x[redacted]x", "d]x[redacted]")
	f.Add("a\x00b\x01c", "abcdefg")
	f.Fuzz(func(t *testing.T, s, secret string) {
		got := scrub(s, []string{secret}, 50)
		if p := printable(secret); len(p) >= minSecretLen && strings.Contains(got, p) {
			t.Errorf("scrub(%q, %q) = %q keeps the secret", s, secret, got)
		}
		if len(got) > 50+len("…") || !utf8.ValidString(got) {
			t.Errorf("scrub(%q) = %q: %d bytes", s, got, len(got))
		}
	})
}

// smtpMode is how the local SMTP server fails a delivery.
type smtpMode int

const (
	smtpRejectAuthEcho smtpMode = iota // 535, quoting the AUTH line
	smtpEchoOnMail                     // 550 to MAIL, quoting the whole session
	smtpTempEchoOnRcpt                 // 451 to RCPT, quoting the whole session
	smtpEchoOnData                     // 554 after DATA, quoting the session
	smtpUntrustedTLS                   // offers STARTTLS with a certificate the client does not trust
	smtpBadGreeting                    // greets with the session so far (nothing) and garbage
)

// authSMTP is a local SMTP server that offers AUTH PLAIN and fails in one way.
func authSMTP(t *testing.T, mode smtpMode) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var cert tls.Certificate
	if mode == smtpUntrustedTLS {
		s := httptest.NewUnstartedServer(nil)
		s.StartTLS()
		cert = s.TLS.Certificates[0]
		s.Close()
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				var session strings.Builder
				r := bufio.NewReader(c)
				say := func(line string) { _, _ = io.WriteString(c, line+"\r\n") }
				if mode == smtpBadGreeting {
					say("hello \x00 there")
					return
				}
				say("220 localhost ESMTP test")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					session.WriteString(line)
					quoted := strings.NewReplacer("\r", " ", "\n", " ").Replace(session.String())
					cmd := strings.ToUpper(strings.TrimSpace(line))
					switch {
					case strings.HasPrefix(cmd, "EHLO"):
						if mode == smtpUntrustedTLS {
							say("250-localhost")
							say("250 STARTTLS")
						} else {
							say("250-localhost")
							say("250 AUTH PLAIN")
						}
					case cmd == "STARTTLS":
						say("220 go ahead")
						tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
						_ = tc.Handshake()
						return
					case strings.HasPrefix(cmd, "AUTH"):
						if mode == smtpRejectAuthEcho {
							say("535 5.7.8 credentials refused: " + quoted)
						} else {
							say("235 ok")
						}
					case strings.HasPrefix(cmd, "MAIL"):
						if mode == smtpEchoOnMail {
							say("550 no: " + quoted)
						} else {
							say("250 ok")
						}
					case strings.HasPrefix(cmd, "RCPT"):
						if mode == smtpTempEchoOnRcpt {
							say("451 later: " + quoted)
						} else {
							say("250 ok")
						}
					case cmd == "DATA":
						say("354 go")
						for {
							l, err := r.ReadString('\n')
							if err != nil || l == ".\r\n" {
								break
							}
						}
						say("554 refused: " + quoted)
					case cmd == "QUIT":
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

// TestNoSecretInEmailErrors does the same for the e-mail channel: a password, and a local SMTP
// server that refuses the connection, never answers, offers an untrusted certificate, or
// rejects AUTH, MAIL, RCPT or DATA quoting everything the client said.
func TestNoSecretInEmailErrors(t *testing.T) {
	silentAddr, _ := silent(t)
	tests := []struct {
		name      string
		addr      string
		permanent bool
	}{
		{name: "connection refused", addr: closedPort(t)},
		{name: "timeout", addr: silentAddr},
		{name: "untrusted TLS certificate", addr: authSMTP(t, smtpUntrustedTLS)},
		{name: "garbage greeting", addr: authSMTP(t, smtpBadGreeting)},
		{name: "AUTH rejected, echoed", addr: authSMTP(t, smtpRejectAuthEcho), permanent: true},
		{name: "MAIL rejected, session echoed", addr: authSMTP(t, smtpEchoOnMail), permanent: true},
		{name: "RCPT deferred, session echoed", addr: authSMTP(t, smtpTempEchoOnRcpt)},
		{name: "DATA rejected, session echoed", addr: authSMTP(t, smtpEchoOnData), permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := "channels:\n  mail:\n    type: email\n    smtp_addr: " + tt.addr + "\n    username: " + smtpUser +
				"\n    password: {env: SMTP_PASSWORD}\n    from: runway@example.com\n    to: [dbre@example.com]\n"
			chs := buildChannels(t, cfg, map[string]string{"SMTP_PASSWORD": smtpPassword}, nil)
			chs["mail"].(*Email).Timeout = 300 * time.Millisecond
			err, logged := deliverLogged(chs, "mail")
			if err == nil {
				t.Fatal("delivery succeeded")
			}
			if !strings.HasPrefix(err.Error(), "channel mail: email "+tt.addr) {
				t.Errorf("error %q does not name the channel and server", err)
			}
			for _, s := range append(errorTexts(err), logged) {
				if l := leaks(s); len(l) > 0 {
					t.Errorf("secrets %q leaked in %q", l, s)
				}
			}
			if got := errors.Is(err, ErrPermanent); got != tt.permanent {
				t.Errorf("permanent = %v, want %v (%v)", got, tt.permanent, err)
			}
		})
	}
}

// TestRedactKeepsTheCause: the redacted error still says what went wrong, and keeps the
// classification callers rely on.
func TestRedactKeepsTheCause(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := (&Slack{URL: "http://127.0.0.1:1/services/T0RUNWAY/B0RUNWAY/" + slackToken}).Send(ctx, sample)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "slack webhook 127.0.0.1:1: ") || len(leaks(err.Error())) > 0 {
		t.Errorf("cancelled: %v", err)
	}
	err = (&Slack{URL: "http://[::1/services/" + slackToken}).Send(context.Background(), sample)
	if !errors.Is(err, ErrPermanent) || len(leaks(err.Error())) > 0 {
		t.Errorf("bad URL: %v", err)
	}
	addr := closedPort(t)
	err = (&PagerDuty{RoutingKey: pdKey, URL: "http://" + addr + "/v2/enqueue"}).Send(context.Background(), sample)
	if !strings.Contains(err.Error(), "pagerduty enqueue "+addr+": ") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused: %v", err)
	}
}

// TestConfigErrorsQuoteNoURL: a mistake in the channel configuration is reported by position,
// without the source lines around it or the URL, which may carry a token.
func TestConfigErrorsQuoteNoURL(t *testing.T) {
	url := "https://hooks.example.com/hooks/" + hookToken + "?token=" + hookToken
	tests := []struct {
		name string
		cfg  string
	}{
		{name: "unknown field next to the URL", cfg: "channels:\n  hook:\n    type: webhook\n    url: " + url + "\n    secret: {env: X}\n    colour: red\n"},
		{name: "syntax error after the URL", cfg: "channels:\n  hook:\n    type: webhook\n    url: " + url + "\n    secret: {env: X\n"},
		{name: "the URL where a list belongs", cfg: "channels:\n  hook:\n    type: email\n    to: " + url + "\n"},
		{name: "a Slack URL inline instead of a reference", cfg: "channels:\n  s:\n    type: slack\n    webhook: http://h/services/T0RUNWAY/B0RUNWAY/" + slackToken + "\n"},
		{name: "not an http(s) URL", cfg: "channels:\n  hook:\n    type: webhook\n    url: ftp://hooks.example.com/hooks/" + hookToken + "\n    secret: {env: X}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.cfg))
			if err == nil {
				t.Fatal("accepted")
			}
			if l := leaks(err.Error()); len(l) > 0 {
				t.Errorf("secrets %q in %q", l, err)
			}
		})
	}
}
