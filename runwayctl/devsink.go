package main

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/notify"
)

// alertSink is the local platform's stand-in for Slack, PagerDuty and mail: a webhook receiver
// that checks each alert's signature, prints it readably and appends it to a JSON-lines file.
type alertSink struct {
	url    string
	secret string
	file   string
	srv    *http.Server
	mu     sync.Mutex
	out    io.Writer
	f      *os.File
}

func startAlertSink(out io.Writer, file string) (*alertSink, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &alertSink{url: "http://" + l.Addr().String(), secret: hex.EncodeToString(b), file: file, out: out, f: f}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(l)
	return s, nil
}

func (s *alertSink) close() {
	s.srv.Close()
	s.f.Close()
}

// serve receives one alert on /alerts/<channel>.
func (s *alertSink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ts := r.Header.Get(notify.HeaderTimestamp)
	sent, _ := strconv.ParseInt(ts, 10, 64)
	if !hmac.Equal([]byte(r.Header.Get(notify.HeaderSignature)), []byte(notify.Sign([]byte(s.secret), ts, body))) ||
		time.Since(time.Unix(sent, 0)).Abs() > 5*time.Minute {
		http.Error(w, "bad signature or timestamp", http.StatusUnauthorized)
		return
	}
	var a notify.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	channel := r.URL.Path[len("/alerts/"):]
	line, _ := json.Marshal(alertLogLine{Channel: channel, Alert: a})
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(s.out, "\nALERT to %s: [%s] %s\n", channel, a.Severity, a.Summary)
	if a.Detail != "" {
		fmt.Fprintf(s.out, "  %s\n", a.Detail)
	}
	if a.LogURL != "" {
		fmt.Fprintf(s.out, "  logs: %s\n", a.LogURL)
	}
	w.WriteHeader(http.StatusNoContent)
}

// devChannelNames lists every channel the inventory and the example manifests route to.
func devChannelNames(inv *inventory.Inventory, examples string) []string {
	var names []string
	for _, w := range inv.Jobs() {
		names = append(names, w.Notifications.Channels...)
	}
	if examples != "" {
		repos, _ := filepath.Glob(filepath.Join(examples, "*", ".runway"))
		for _, repo := range repos {
			files, _ := manifest.Discover(filepath.Dir(repo))
			for _, f := range files {
				if j, err := manifest.Load(f); err == nil {
					names = append(names, j.Spec.Notifications.Channels...)
				}
			}
		}
	}
	names = append(names, "runway-platform")
	slices.Sort(names)
	return slices.Compact(names)
}

// writeDevChannels writes the monitor's channel configuration: every channel a signed webhook
// to the sink, the signing secret read from the monitor's environment.
func writeDevChannels(file string, s *alertSink, names []string) error {
	type ref struct {
		Env string `json:"env"`
	}
	type channel struct {
		Type   string `json:"type"`
		URL    string `json:"url"`
		Secret ref    `json:"secret"`
	}
	cfg := struct {
		Channels map[string]channel `json:"channels"`
		Platform []string           `json:"platform"`
	}{Channels: map[string]channel{}, Platform: []string{"runway-platform"}}
	for _, n := range names {
		cfg.Channels[n] = channel{Type: "webhook", URL: s.url + "/alerts/" + n, Secret: ref{Env: devSinkSecretEnv}}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}
