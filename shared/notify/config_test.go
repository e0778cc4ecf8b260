package notify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodConfig = `
channels:
  slack-db:
    type: slack
    webhook: {env: SLACK_DB}
  pagerduty-db:
    type: pagerduty
    routing_key: {secret_manager: projects/p/secrets/pd/versions/latest}
  db-mail:
    type: email
    smtp_addr: smtp.example.com:587
    username: runway
    password: {env: SMTP_PASSWORD}
    from: runway@example.com
    to: [db@example.com]
  audit-hook:
    type: webhook
    url: https://hooks.example.com/runway
    secret: {env: HOOK_SECRET}
  alerts-topic:
    type: pubsub
    project: runway-platform
platform: [slack-db]
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if len(c.Channels) != 5 || c.Channels["slack-db"].WebhookURL.Env != "SLACK_DB" || c.Platform[0] != "slack-db" ||
		c.Channels["db-mail"].To[0] != "db@example.com" || c.Channels["pagerduty-db"].RoutingKey.SecretManager != "projects/p/secrets/pd/versions/latest" {
		t.Errorf("config = %+v", c)
	}
	if _, err := ParseConfig([]byte(`{"channels":{"s":{"type":"slack","webhook":{"env":"X"}}}}`)); err != nil {
		t.Errorf("JSON form: %v", err)
	}

	tests := []struct {
		name string
		doc  string
		want string // a substring of the error
	}{
		{name: "unknown field", doc: "channels:\n  s:\n    type: slack\n    webhok: {env: X}\n", want: "webhok"},
		// Reported by position: the line itself (the secret) is not quoted.
		{name: "secret value inline", doc: "channels:\n  s:\n    type: slack\n    webhook: https://hooks.slack.com/x\n", want: "[4:14] string was used where mapping is expected"},
		{name: "both sources", doc: "channels:\n  s:\n    type: slack\n    webhook: {env: X, secret_manager: projects/p/secrets/s/versions/1}\n", want: "exactly one"},
		{name: "bad env name", doc: "channels:\n  s:\n    type: slack\n    webhook: {env: 1X}\n", want: "not an environment variable"},
		{name: "bad version", doc: "channels:\n  s:\n    type: pagerduty\n    routing_key: {secret_manager: pd}\n", want: "projects/P/secrets/S/versions/V"},
		{name: "no type", doc: "channels:\n  s:\n    webhook: {env: X}\n", want: "type is required"},
		{name: "unknown type", doc: "channels:\n  s:\n    type: sms\n", want: `type "sms" is unknown`},
		{name: "field of another type", doc: "channels:\n  s:\n    type: slack\n    webhook: {env: X}\n    to: [a@b.c]\n", want: "to does not apply to type slack"},
		{name: "webhook url", doc: "channels:\n  h:\n    type: webhook\n    url: ftp://x\n    secret: {env: X}\n", want: "not an http(s) URL"},
		{name: "email recipient", doc: "channels:\n  m:\n    type: email\n    smtp_addr: h:25\n    from: a@b.c\n    to: [nobody]\n", want: `to[0]: "nobody"`},
		{name: "email port", doc: "channels:\n  m:\n    type: email\n    smtp_addr: h\n    from: a@b.c\n    to: [x@y.z]\n", want: "host:port"},
		{name: "username without password", doc: "channels:\n  m:\n    type: email\n    smtp_addr: h:25\n    username: u\n    from: a@b.c\n    to: [x@y.z]\n", want: "password is required"},
		{name: "channel name", doc: "channels:\n  Slack_DB:\n    type: slack\n    webhook: {env: X}\n", want: "lower-case"},
		{name: "platform undefined", doc: "channels: {}\nplatform: [nope]\n", want: `"nope" is not defined`},
		{name: "pubsub project", doc: "channels:\n  t:\n    type: pubsub\n", want: "project is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseConfig error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	c, err := ParseConfig([]byte("channels:\n  s:\n    type: slack\n    webhook: {env: SLACK}\n  h:\n    type: webhook\n    url: http://127.0.0.1:1/x\n    secret: {env: HOOK}\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLACK": "https://hooks.slack.com/services/T/B/X", "HOOK": "k"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	chs, err := Build(context.Background(), c, Secrets{Lookup: lookup}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := chs["s"].(*Slack); !ok || s.URL != env["SLACK"] {
		t.Errorf("slack channel = %#v", chs["s"])
	}
	if h, ok := chs["h"].(*Webhook); !ok || string(h.Secret) != "k" {
		t.Errorf("webhook channel = %#v", chs["h"])
	}
	delete(env, "HOOK")
	if _, err := Build(context.Background(), c, Secrets{Lookup: lookup}, Deps{}); err == nil || !strings.Contains(err.Error(), "channel h: secret: environment variable HOOK is not set") {
		t.Errorf("Build with a missing secret: %v", err)
	}
}

// FuzzParseConfig checks that ParseConfig never panics and that what it accepts validates.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte(`{"channels":{"s":{"type":"slack","webhook":{"env":"X"}}}}`))
	f.Add([]byte("channels:\n  m:\n    type: email\n    smtp_addr: h:25\n    from: a@b.c\n    to: [x@y.z]\n"))
	f.Add([]byte("platform: [a]\n"))
	// Adversarial shapes (issue 13), each just over a bound of document.Scan.
	f.Add([]byte("spec: " + strings.Repeat("[", 64) + "\n"))
	f.Add([]byte(strings.Repeat("k: v\n", 501)))
	f.Add([]byte("a: &a x\nb: [" + strings.Repeat("*a, ", 1000) + "*a]\n"))
	f.Add([]byte("a: |\n  [[[\n---\nb: " + strings.Repeat("x", 65<<10) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		for name, cc := range c.Channels {
			if cc.Type == "" {
				t.Fatalf("channel %s accepted without a type", name)
			}
		}
	})
}

// TestConfigBounded: a channel configuration is bounded before the YAML library reads it, and
// the refusal names the file, line and column.
func TestConfigBounded(t *testing.T) {
	deep := "channels: " + strings.Repeat("[", 100000) + "\n"
	if _, err := ParseConfig([]byte(deep)); err == nil || !strings.Contains(err.Error(), "channel configuration:1:74: document is nested more than 64 levels deep") {
		t.Errorf("ParseConfig(deep) = %v", err)
	}
	path := filepath.Join(t.TempDir(), "channels.yml")
	if err := os.WriteFile(path, []byte(deep), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), path+":1:74: document is nested more than 64") {
		t.Errorf("LoadConfig(deep) = %v", err)
	}
	if err := os.WriteFile(path, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), path+":1:1: file is 2097152 bytes; the limit is 1048576") {
		t.Errorf("LoadConfig(2 MiB) = %v", err)
	}
}
