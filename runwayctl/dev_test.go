package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/platform"
)

// devTestFunctionEnv makes this test binary serve as a function process (see TestMain):
// GET / answers its pid, GET /exit makes it exit with status 3.
const devTestFunctionEnv = "RUNWAY_DEV_TEST_FUNCTION"

func TestMain(m *testing.M) {
	if os.Getenv(devTestFunctionEnv) == "1" {
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, os.Getpid()) })
		http.HandleFunc("/exit", func(http.ResponseWriter, *http.Request) { os.Exit(3) })
		fmt.Fprintln(os.Stderr, http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for the supervisor's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevRestartsADeadFunction: a function process that dies is started again on its address
// (the push subscriptions keep reaching it), and stop ends it for good.
func TestDevRestartsADeadFunction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := &devFunction{name: "fake", target: "Fake", bin: os.Args[0], env: []string{devTestFunctionEnv + "=1"}, log: filepath.Join(t.TempDir(), "fake.log")}
	if err := f.startProcess(ctx); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	go f.supervise(ctx, &stderr)
	defer f.stop()
	get := func(path string) (string, error) {
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get(f.url + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	first, err := get("")
	if err != nil {
		t.Fatal(err)
	}
	url := f.url
	for kill := range 2 { // twice: the second restart comes after a longer wait
		_, _ = get("exit")
		var again string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if again, err = get(""); err == nil && again != first {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the function was not started again (last answer %q, %v); stderr:\n%s", kill, again, err, stderr.String())
			}
		}
		first = again
	}
	if f.url != url {
		t.Errorf("restarted on %s, was %s", f.url, url)
	}
	if got := stderr.String(); strings.Count(got, "function fake exited (exit status 3); starting it again") != 2 {
		t.Errorf("stderr = %q, want two restarts told", got)
	}
	f.stop()
	time.Sleep(3 * devRestartMin)
	if _, err := get(""); err == nil {
		t.Error("the function answers after stop: it was started again")
	}
}

// TestDevSubscriptionsHaveProductionsDeliveryPolicy: dev's push subscriptions retry and
// dead-letter as infra/modules/function-subscription does, and dead letters are kept.
func TestDevSubscriptionsHaveProductionsDeliveryPolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emu := emulatortest.Start(t, emulator.Options{})
	cl, err := allclients.Dial(ctx, emulatortest.Config(emu, "proj-w"), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f := &devFunction{name: "trigger", url: "http://127.0.0.1:9/"}
	if err := wireDeadLetter(ctx, cl, f.name); err != nil {
		t.Fatal(err)
	}
	if err := wire(ctx, cl, "proj-w", platform.TriggerTopic("w"), f, platform.MaxDeliveryAttempts); err != nil {
		t.Fatal(err)
	}
	sub, err := cl.PubSub.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: "projects/proj-w/subscriptions/eventarc-trigger-" + platform.TriggerTopic("w")})
	if err != nil {
		t.Fatal(err)
	}
	dlq := platform.TopicPath(devPlatformProject, "runway-trigger-dead-letter")
	if got := sub.GetDeadLetterPolicy(); got.GetDeadLetterTopic() != dlq || got.GetMaxDeliveryAttempts() != 20 {
		t.Errorf("dead_letter_policy = %v, want %s after 20 attempts", got, dlq)
	}
	if got := sub.GetRetryPolicy(); got.GetMinimumBackoff().AsDuration() != 10*time.Second || got.GetMaximumBackoff().AsDuration() != 600*time.Second {
		t.Errorf("retry_policy = %v, want 10s to 600s", got)
	}
	if sub.GetAckDeadlineSeconds() != devPushAckDeadlineSeconds || sub.GetPushConfig().GetPushEndpoint() != f.url {
		t.Errorf("ack deadline %d, push endpoint %q", sub.GetAckDeadlineSeconds(), sub.GetPushConfig().GetPushEndpoint())
	}
	hold, err := cl.PubSub.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: "projects/" + devPlatformProject + "/subscriptions/runway-trigger-dead-letter-hold"})
	if err != nil {
		t.Fatal(err)
	}
	if hold.GetTopic() != dlq || hold.GetPushConfig().GetPushEndpoint() != "" {
		t.Errorf("hold subscription = %v, want a pull subscription of %s", hold, dlq)
	}
	if err := wireDeadLetter(ctx, cl, f.name); err != nil {
		t.Errorf("wiring twice: %v", err)
	}
}

// TestDevIngestLag: RUNWAY_MONITOR_INGEST_LAG reaches the monitor as the user set it (the
// monitor, which reads it, is the one to refuse a bad value).
func TestDevIngestLag(t *testing.T) {
	tests := []struct {
		name, set string
		want      string // in the functions' environment
	}{
		{name: "default", set: "", want: "RUNWAY_MONITOR_INGEST_LAG=30s"},
		{name: "user's", set: "4m", want: "RUNWAY_MONITOR_INGEST_LAG=4m"},
		{name: "zero", set: "0s", want: "RUNWAY_MONITOR_INGEST_LAG=0s"},
		{name: "left to the monitor", set: "soon", want: "RUNWAY_MONITOR_INGEST_LAG=soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &devPlatform{data: t.TempDir()}
			err := p.startSink(io.Discard, []string{"owner"}, func(k string) string {
				if k == devIngestLagEnv {
					return tt.set
				}
				return ""
			})
			if p.sink != nil {
				defer p.sink.close()
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(p.env, tt.want) || slices.IndexFunc(p.env, func(kv string) bool { return strings.HasPrefix(kv, devIngestLagEnv+"=") }) != slices.Index(p.env, tt.want) {
				t.Errorf("env = %v, want %s", p.env, tt.want)
			}
		})
	}
}

// TestDevBanner: each function once, the monitor's line carrying its ingest lag, and the
// exports to paste into another terminal.
func TestDevBanner(t *testing.T) {
	p := &devPlatform{
		emu:       emulatortest.Start(t, emulator.Options{}),
		stateDir:  "/data/state",
		execLogs:  "/data/logs/executions",
		invPath:   "/repo/inventory.yml",
		ingestLag: "30s",
		sink:      &alertSink{file: "/data/logs/alerts.log"},
	}
	for _, name := range []string{"deploy", "trigger", "monitor"} {
		p.fns = append(p.fns, &devFunction{name: name, url: "http://127.0.0.1:1/" + name, log: "/data/logs/" + name + ".log"})
	}
	var out bytes.Buffer
	p.banner(&out, 1500*time.Millisecond, []string{"deployed hello-runway"})
	text := out.String()
	for _, name := range []string{"deploy", "trigger", "monitor"} {
		if n := strings.Count(text, "\n  "+name+" "); n != 1 {
			t.Errorf("%s is listed %d times, want once:\n%s", name, n, text)
		}
	}
	for _, want := range []string{
		"  monitor    http://127.0.0.1:1/monitor   log /data/logs/monitor.log   ingest lag 30s (RUNWAY_MONITOR_INGEST_LAG)\n",
		"ready in 1.5s",
		"  deployed hello-runway\n",
		"export " + gcp.EmulatorHostEnv + "=" + p.emu.Addr() + " RUNWAY_STATE=/data/state " + platform.EnvInventory + "=/repo/inventory.yml",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}
}
