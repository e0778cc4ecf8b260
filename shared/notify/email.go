package notify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/googleapis/gax-go/v2"
)

// Email sends the alert as a plain-text mail over SMTP (STARTTLS when the server offers it,
// PLAIN authentication when Username is set) to the channel's configured recipients, To. The
// alert's Owner is a handle without a domain and is only shown in the body: routing a
// workload's alerts to its team's mailbox is the channel configuration's job.
type Email struct {
	Addr     string // host:port
	Username string
	Password string
	From     string
	To       []string
	// Timeout bounds one delivery (default 30s).
	Timeout time.Duration
}

var _ Channel = (*Email)(nil)

// Message renders a as an RFC 5322 message.
func (e *Email) Message(a Alert) []byte {
	var b bytes.Buffer
	h := textproto.MIMEHeader{}
	h.Set("From", e.From)
	h.Set("To", strings.Join(e.To, ", "))
	h.Set("Subject", mime.QEncoding.Encode("utf-8", a.Title()))
	h.Set("Date", cmp.Or(a.DetectedAt, a.Time).UTC().Format(time.RFC1123Z))
	h.Set("Message-Id", "<"+messageID(a)+"@runway-monitor>")
	h.Set("Mime-Version", "1.0")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Transfer-Encoding", "8bit")
	h.Set("X-Runway-Alert-Id", a.ID)
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type", "Content-Transfer-Encoding", "X-Runway-Alert-Id"} {
		fmt.Fprintf(&b, "%s: %s\r\n", k, h.Get(k))
	}
	b.WriteString("\r\n")
	// net/smtp's DATA writer does the dot-stuffing.
	text := a.Text()
	text = strings.ReplaceAll(text, "\r\n", "\n")
	for line := range strings.SplitSeq(text, "\n") {
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func messageID(a Alert) string {
	if a.ID != "" {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
				return r
			}
			return '-'
		}, a.ID)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Send delivers a. A 5xx answer from the server is permanent; connection trouble and 4xx
// (temporary) answers are retried. The error names the server's address only, with the
// password (and the AUTH PLAIN response that carries it) scrubbed from the server's words.
func (e *Email) Send(ctx context.Context, a Alert) error {
	if len(e.To) == 0 {
		return fmt.Errorf("email: %w: no recipient", ErrPermanent)
	}
	timeout := e.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := e.send(ctx, e.Message(a))
	var perr *textproto.Error
	if errors.As(err, &perr) && perr.Code >= 500 {
		err = fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	return redact("email", e.Addr, err, e.secrets())
}

// secrets are what a server may echo of the credentials: the password, and the initial
// response of AUTH PLAIN (base64 of "\x00username\x00password", as net/smtp sends it).
func (e *Email) secrets() []string {
	if e.Password == "" {
		return nil
	}
	return []string{e.Password, "\x00" + e.Username + "\x00" + e.Password}
}

func (e *Email) send(ctx context.Context, msg []byte) error {
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return fmt.Errorf("%w: address: %w", ErrPermanent, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(tlsConfig(host)); err != nil {
			return err
		}
	}
	if e.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password, host)); err != nil {
			var perr *textproto.Error
			if errors.As(err, &perr) {
				// The server's answer to AUTH is the one place it may quote the credentials.
				return &textproto.Error{Code: perr.Code, Msg: "authentication refused"}
			}
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(e.From); err != nil {
		return err
	}
	for _, to := range e.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
}

// Publisher is the part of the generated Pub/Sub publisher client (*pubsub/apiv1.TopicAdminClient)
// the PubSub channel uses. The channel publishes one alert per call and waits for the answer,
// so the client library's batching would hold nothing to batch; the generated client retries
// the same codes with the same backoff (it is what the library calls). The library's one
// exception, not retrying an Internal error about invalid UTF-8, cannot arise here: the data is
// JSON and the attributes are IDs, enum values and a validated workload name.
type Publisher interface {
	Publish(ctx context.Context, req *pubsubpb.PublishRequest, opts ...gax.CallOption) (*pubsubpb.PublishResponse, error)
}

// PubSub publishes the alert as JSON on a topic (platform.AlertsTopic), with attributes for
// subscription filters: kind, action, severity, workload.
type PubSub struct {
	Publisher Publisher
	Topic     string // projects/PROJECT/topics/TOPIC
}

var _ Channel = (*PubSub)(nil)

// Send publishes a and waits for the server's answer.
func (p *PubSub) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("pubsub: %w", err)
	}
	_, err = p.Publisher.Publish(ctx, &pubsubpb.PublishRequest{Topic: p.Topic, Messages: []*pubsubpb.PubsubMessage{{
		Data: body, Attributes: map[string]string{
			"alert_id": a.ID, "kind": string(a.Kind), "action": string(a.Action), "severity": string(a.Severity), "workload": a.Workload,
		},
	}}})
	if err != nil {
		return redact("pubsub publish", "", err, nil)
	}
	return nil
}
