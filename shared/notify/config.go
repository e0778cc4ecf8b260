package notify

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/platform"
)

// Config is the platform's channel configuration file (RUNWAY_CHANNELS): every channel a
// manifest or the inventory may name, with where its secrets come from. Secret values never
// appear in it, only references to an environment variable or a Secret Manager version.
//
//	channels:
//	  slack-db:
//	    type: slack
//	    webhook: {env: SLACK_DB_WEBHOOK}
//	  pagerduty-db:
//	    type: pagerduty
//	    routing_key: {secret_manager: projects/p/secrets/pd-db/versions/latest}
//	  db-mail:
//	    type: email
//	    smtp_addr: smtp.example.com:587
//	    username: runway
//	    password: {env: SMTP_PASSWORD}
//	    from: runway@example.com
//	    to: [db-team@example.com]
//	  audit-hook:
//	    type: webhook
//	    url: https://hooks.example.com/runway
//	    secret: {env: AUDIT_HOOK_SECRET}
//	  alerts-topic:
//	    type: pubsub
//	    project: runway-platform
//	platform: [slack-platform]
type Config struct {
	Channels map[string]ChannelConfig `json:"channels" yaml:"channels"`
	// Platform names the channels that get the monitor's own alerts (it cannot see the
	// metrics), and alerts of jobs that route nowhere.
	Platform []string `json:"platform,omitempty" yaml:"platform,omitempty"`
}

// Channel types.
const (
	TypeSlack     = "slack"
	TypeEmail     = "email"
	TypeWebhook   = "webhook"
	TypePagerDuty = "pagerduty"
	TypePubSub    = "pubsub"
)

// ChannelConfig configures one channel; which fields apply depends on Type.
type ChannelConfig struct {
	Type string `json:"type" yaml:"type"`
	// slack
	WebhookURL *SecretRef `json:"webhook,omitempty" yaml:"webhook,omitempty"`
	// webhook
	URL    string     `json:"url,omitempty" yaml:"url,omitempty"`
	Secret *SecretRef `json:"secret,omitempty" yaml:"secret,omitempty"`
	// pagerduty
	RoutingKey *SecretRef `json:"routing_key,omitempty" yaml:"routing_key,omitempty"`
	Endpoint   string     `json:"endpoint,omitempty" yaml:"endpoint,omitempty"` // default DefaultPagerDutyURL
	// email
	SMTPAddr string     `json:"smtp_addr,omitempty" yaml:"smtp_addr,omitempty"`
	Username string     `json:"username,omitempty" yaml:"username,omitempty"`
	Password *SecretRef `json:"password,omitempty" yaml:"password,omitempty"`
	From     string     `json:"from,omitempty" yaml:"from,omitempty"`
	To       []string   `json:"to,omitempty" yaml:"to,omitempty"`
	// pubsub
	Project string `json:"project,omitempty" yaml:"project,omitempty"`
	Topic   string `json:"topic,omitempty" yaml:"topic,omitempty"` // default platform.AlertsTopic
}

// SecretRef says where a secret value comes from: exactly one of an environment variable of
// the monitor or a Secret Manager version (projects/P/secrets/S/versions/V).
type SecretRef struct {
	Env           string `json:"env,omitempty" yaml:"env,omitempty"`
	SecretManager string `json:"secret_manager,omitempty" yaml:"secret_manager,omitempty"`
}

var (
	channelName   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	envName       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	secretVersion = regexp.MustCompile(`^projects/[^/]+/secrets/[^/]+/versions/[^/]+$`)
)

// ParseConfig reads a channel configuration in YAML or JSON (a JSON document is YAML) and
// checks it. Unknown fields are errors, so that a misspelt secret reference is not ignored.
// The bytes are bounded (document.Scan) before the YAML library reads them.
func ParseConfig(data []byte) (*Config, error) {
	if ps := document.Scan("channel configuration", data); ps != nil {
		return nil, ps
	}
	var c Config
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.DisallowUnknownField(), yaml.Strict()); err != nil {
		// Without the source excerpt go-yaml adds by default: it would quote the lines around
		// the mistake, a webhook URL's token among them.
		return nil, fmt.Errorf("channel configuration: %s", yaml.FormatError(err, false, false))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadConfig reads and checks the channel configuration file at path.
func LoadConfig(path string) (*Config, error) {
	data, ps := document.ReadFile(path)
	if ps != nil {
		return nil, fmt.Errorf("channel configuration: %w", ps)
	}
	if ps := document.Scan(path, data); ps != nil {
		return nil, fmt.Errorf("channel configuration: %w", ps)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate reports every problem of c, one per line, channels in name order.
func (c *Config) Validate() error {
	var errs []error
	names := make([]string, 0, len(c.Channels))
	for name := range c.Channels {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !channelName.MatchString(name) {
			errs = append(errs, fmt.Errorf("channel %q: name must be lower-case letters, digits and dashes, starting with a letter", name))
		}
		for _, err := range c.Channels[name].problems() {
			errs = append(errs, fmt.Errorf("channel %s: %w", name, err))
		}
	}
	for _, name := range c.Platform {
		if _, ok := c.Channels[name]; !ok {
			errs = append(errs, fmt.Errorf("platform: channel %q is not defined", name))
		}
	}
	return errors.Join(errs...)
}

func (cc ChannelConfig) problems() []error {
	var errs []error
	need := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	secret := func(field string, r *SecretRef, required bool) {
		if r == nil {
			need(!required, "%s is required (a secret reference: {env: NAME} or {secret_manager: projects/P/secrets/S/versions/V})", field)
			return
		}
		switch {
		case (r.Env == "") == (r.SecretManager == ""):
			errs = append(errs, fmt.Errorf("%s: give exactly one of env and secret_manager", field))
		case r.Env != "" && !envName.MatchString(r.Env):
			errs = append(errs, fmt.Errorf("%s.env: %q is not an environment variable name", field, r.Env))
		case r.SecretManager != "" && !secretVersion.MatchString(r.SecretManager):
			errs = append(errs, fmt.Errorf("%s.secret_manager: %q is not projects/P/secrets/S/versions/V", field, r.SecretManager))
		}
	}
	httpURL := func(field, v string, required bool) {
		if v == "" {
			need(!required, "%s is required", field)
			return
		}
		// The value is not quoted: a webhook URL may carry a token in its path or query.
		u, err := url.Parse(v)
		need(err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "", "%s: not an http(s) URL with a host", field)
	}
	// unused reports fields set that the type does not read.
	unused := func(fields map[string]bool) {
		for _, f := range []string{"webhook", "url", "secret", "routing_key", "endpoint", "smtp_addr", "username", "password", "from", "to", "project", "topic"} {
			if fields[f] {
				errs = append(errs, fmt.Errorf("%s does not apply to type %s", f, cc.Type))
			}
		}
	}
	set := map[string]bool{
		"webhook": cc.WebhookURL != nil, "url": cc.URL != "", "secret": cc.Secret != nil, "routing_key": cc.RoutingKey != nil,
		"endpoint": cc.Endpoint != "", "smtp_addr": cc.SMTPAddr != "", "username": cc.Username != "", "password": cc.Password != nil,
		"from": cc.From != "", "to": len(cc.To) > 0, "project": cc.Project != "", "topic": cc.Topic != "",
	}
	own := func(fields ...string) map[string]bool {
		for _, f := range fields {
			delete(set, f)
		}
		return set
	}
	switch cc.Type {
	case TypeSlack:
		secret("webhook", cc.WebhookURL, true)
		unused(own("webhook"))
	case TypeWebhook:
		httpURL("url", cc.URL, true)
		secret("secret", cc.Secret, true)
		unused(own("url", "secret"))
	case TypePagerDuty:
		secret("routing_key", cc.RoutingKey, true)
		httpURL("endpoint", cc.Endpoint, false)
		unused(own("routing_key", "endpoint"))
	case TypeEmail:
		need(cc.SMTPAddr != "", "smtp_addr is required (host:port)")
		if cc.SMTPAddr != "" {
			_, port, err := splitHostPort(cc.SMTPAddr)
			need(err == nil && port != "", "smtp_addr: %q is not host:port", cc.SMTPAddr)
		}
		need(cc.Username == "" || cc.Password != nil, "password is required with username")
		secret("password", cc.Password, false)
		_, err := mail.ParseAddress(cc.From)
		need(err == nil, "from: %q is not an e-mail address", cc.From)
		need(len(cc.To) > 0, "to: at least one recipient is required")
		for i, to := range cc.To {
			_, err := mail.ParseAddress(to)
			need(err == nil, "to[%d]: %q is not an e-mail address", i, to)
		}
		unused(own("smtp_addr", "username", "password", "from", "to"))
	case TypePubSub:
		need(cc.Project != "", "project is required")
		unused(own("project", "topic"))
	case "":
		errs = append(errs, errors.New("type is required (slack, email, webhook, pagerduty or pubsub)"))
	default:
		errs = append(errs, fmt.Errorf("type %q is unknown (want slack, email, webhook, pagerduty or pubsub)", cc.Type))
	}
	return errs
}

// topicName is the topic's full name: topic itself when it is one (projects/P/topics/T),
// else the topic of that ID in project (the rule of the Pub/Sub library's Client.Publisher).
func topicName(project, topic string) string {
	if len(strings.Split(topic, "/")) == 4 {
		return topic
	}
	return "projects/" + project + "/topics/" + topic
}

func splitHostPort(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i <= 0 || i == len(addr)-1 {
		return "", "", fmt.Errorf("no port in %q", addr)
	}
	return addr[:i], addr[i+1:], nil
}

// Secrets resolves secret references.
type Secrets struct {
	// Lookup reads the monitor's environment (os.LookupEnv in production).
	Lookup func(string) (string, bool)
	// SecretManager reads a Secret Manager version; nil refuses secret_manager references.
	SecretManager *SecretManager
}

// Resolve returns the value r refers to.
func (s Secrets) Resolve(ctx context.Context, r *SecretRef) (string, error) {
	switch {
	case r == nil:
		return "", nil
	case r.Env != "":
		v, ok := s.Lookup(r.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("secret: environment variable %s is not set", r.Env)
		}
		return v, nil
	case s.SecretManager == nil:
		return "", fmt.Errorf("secret %s: Secret Manager is not configured", r.SecretManager)
	}
	return s.SecretManager.Access(ctx, r.SecretManager)
}

// SecretManager reads secret versions through the Secret Manager REST API
// (GET /v1/{name}:access), with an authorised HTTP client.
type SecretManager struct {
	Client  *http.Client
	BaseURL string // default https://secretmanager.googleapis.com
}

// Access returns the payload of the secret version name.
func (m *SecretManager) Access(ctx context.Context, name string) (string, error) {
	base := m.BaseURL
	if base == "" {
		base = "https://secretmanager.googleapis.com"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/"+name+":access", nil)
	if err != nil {
		return "", fmt.Errorf("secretmanager.AccessSecretVersion %s: %w", name, err)
	}
	resp, err := m.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("secretmanager.AccessSecretVersion %s: %w", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := statusError(resp, b, nil); err != nil {
		return "", fmt.Errorf("secretmanager.AccessSecretVersion %s: %w", name, err)
	}
	var out struct {
		Payload struct {
			Data string `json:"data"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("secretmanager.AccessSecretVersion %s: %w", name, err)
	}
	v, err := base64.StdEncoding.DecodeString(out.Payload.Data)
	if err != nil {
		return "", fmt.Errorf("secretmanager.AccessSecretVersion %s: payload: %w", name, err)
	}
	return string(v), nil
}

// Deps are what Build needs besides secrets.
type Deps struct {
	HTTP *http.Client // webhooks, Slack, PagerDuty (default: a client with a 30s timeout)
	// PubSub returns the publisher of the channels publishing in project.
	PubSub func(project string) (Publisher, error)
	// Now is the webhook signatures' clock (default time.Now).
	Now func() time.Time
}

// Build makes the channels of c, resolving their secrets. A channel whose secret cannot be
// read is an error: the monitor refuses to start half-configured.
func Build(ctx context.Context, c *Config, secrets Secrets, deps Deps) (map[string]Channel, error) {
	hc := deps.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	out := map[string]Channel{}
	var errs []error
	for name, cc := range c.Channels {
		ch, err := build(ctx, cc, secrets, deps, hc)
		if err != nil {
			errs = append(errs, fmt.Errorf("channel %s: %w", name, err))
			continue
		}
		out[name] = ch
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func build(ctx context.Context, cc ChannelConfig, secrets Secrets, deps Deps, hc *http.Client) (Channel, error) {
	switch cc.Type {
	case TypeSlack:
		u, err := secrets.Resolve(ctx, cc.WebhookURL)
		if err != nil {
			return nil, err
		}
		return &Slack{URL: u, Client: hc}, nil
	case TypeWebhook:
		s, err := secrets.Resolve(ctx, cc.Secret)
		if err != nil {
			return nil, err
		}
		return &Webhook{URL: cc.URL, Secret: []byte(s), Client: hc, Now: deps.Now}, nil
	case TypePagerDuty:
		k, err := secrets.Resolve(ctx, cc.RoutingKey)
		if err != nil {
			return nil, err
		}
		return &PagerDuty{RoutingKey: k, URL: cc.Endpoint, Client: hc}, nil
	case TypeEmail:
		p, err := secrets.Resolve(ctx, cc.Password)
		if err != nil {
			return nil, err
		}
		return &Email{Addr: cc.SMTPAddr, Username: cc.Username, Password: p, From: cc.From, To: cc.To}, nil
	case TypePubSub:
		if deps.PubSub == nil {
			return nil, errors.New("no Pub/Sub client")
		}
		client, err := deps.PubSub(cc.Project)
		if err != nil {
			return nil, err
		}
		return &PubSub{Publisher: client, Topic: topicName(cc.Project, cmp.Or(cc.Topic, platform.AlertsTopic))}, nil
	}
	return nil, fmt.Errorf("type %q is unknown", cc.Type)
}
