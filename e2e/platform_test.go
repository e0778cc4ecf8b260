package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/iterator"

	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/platform"
)

// devPlatform is `runwayctl dev` running as a user starts it, on a manual clock.
type devPlatform struct {
	*platformEnv
	addr string
	out  *syncBuffer
	data string
}

// syncBuffer is runwayctl dev's output, written by the reader goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sinkAlert is one line of the local alert sink's alerts.jsonl.
type sinkAlert struct {
	Channel string `json:"channel"`
	Alert   struct {
		Kind     string `json:"kind"`
		Action   string `json:"action"`
		Workload string `json:"workload"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
		Links    []struct {
			Text string `json:"text"`
			Href string `json:"href"`
		} `json:"links"`
	} `json:"alert"`
}

// alerts reads what the local alert sink received for workload.
func (p *devPlatform) alerts(t *testing.T, workload string) []sinkAlert {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.data, "alerts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []sinkAlert
	for _, l := range lines(string(b)) {
		var a sinkAlert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("alerts.jsonl: %v: %s", err, l)
		}
		if a.Alert.Workload == workload {
			out = append(out, a)
		}
	}
	return out
}

// tickUntil moves the clock a minute at a time (the monitor ticks every minute) until cond
// holds, at most until limit.
func (p *devPlatform) tickUntil(t *testing.T, limit time.Time, cond func() bool) bool {
	t.Helper()
	now := p.now(t)
	for !cond() {
		if !now.Before(limit) {
			return false
		}
		now = now.Add(time.Minute)
		p.advanceTo(t, now)
		// The jump waits at each stop until the deliveries it caused (the monitor's tick among
		// them) were answered, so what a tick sends is there almost at once.
		for deadline := time.Now().Add(300 * time.Millisecond); !cond() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return true
}

func (p *devPlatform) now(t *testing.T) time.Time {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/emulator/v1/clock")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Now time.Time `json:"now"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Now
}

// startDev runs `runwayctl dev` with the function binaries built from this checkout and waits
// for its ready line. The platform stops with the test (SIGINT, as Ctrl-C).
func startDev(t *testing.T, start time.Time, extra ...string) *devPlatform {
	t.Helper()
	bins := filepath.Dir(functionBinary(t, "deploy"))
	data := t.TempDir()
	args := append([]string{"dev", "--data", data, "--addr", "127.0.0.1:0", "--manual-clock", "--start", start.Format(time.RFC3339),
		"--functions", bins, "--inventory", filepath.Join(repoRoot, "examples", "inventory.yml"),
		"--examples", filepath.Join(repoRoot, "examples"), "--op-delay", "5ms", "--console", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Dir = repoRoot
	cmd.Env = withoutCI(os.Environ())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if rest, ok := strings.CutPrefix(line, "runway dev ready: "); ok {
				ready <- rest
			}
		}
		close(ready)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("runwayctl dev did not stop within 10s of SIGINT")
		}
	})
	var line string
	select {
	case l, ok := <-ready:
		if !ok {
			t.Fatalf("runwayctl dev exited before ready:\n%s\n%s", out, stderr.String())
		}
		line = l
	case <-time.After(60 * time.Second):
		t.Fatalf("runwayctl dev not ready after 60s:\n%s\n%s", out, stderr.String())
	}
	p := &devPlatform{platformEnv: &platformEnv{env: strings.Fields(line)}, out: out, data: data}
	for _, kv := range p.env {
		if v, ok := strings.CutPrefix(kv, gcp.EmulatorHostEnv+"="); ok {
			p.addr = v
		}
	}
	cl, err := allclients.Dial(context.Background(), gcp.Config{EmulatorHost: p.addr, Project: "gitlab-runway-hello"}, gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	p.cl = cl
	return p
}

// admin POSTs a JSON body to one of the emulator's admin endpoints.
func (p *devPlatform) admin(t *testing.T, method, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.addr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
}

func (p *devPlatform) advance(t *testing.T, d time.Duration) {
	t.Helper()
	p.admin(t, http.MethodPost, "/emulator/v1/clock:advance", fmt.Sprintf(`{"duration":%q}`, d.String()))
}

func (p *devPlatform) advanceTo(t *testing.T, at time.Time) {
	t.Helper()
	p.admin(t, http.MethodPost, "/emulator/v1/clock:advance", fmt.Sprintf(`{"to":%q}`, at.UTC().Format(time.RFC3339)))
}

// executions lists the job's executions with their RUNWAY_* environment.
func (p *devPlatform) executions(t *testing.T, job string) []*runpb.Execution {
	t.Helper()
	var out []*runpb.Execution
	it := p.cl.Executions.ListExecutions(t.Context(), &runpb.ListExecutionsRequest{Parent: job})
	for {
		x, err := it.Next()
		if err == iterator.Done {
			return out
		}
		if err != nil {
			t.Fatalf("ListExecutions: %v", err)
		}
		out = append(out, x)
	}
}

func envOf(x *runpb.Execution) map[string]string {
	m := map[string]string{}
	for _, v := range x.GetTemplate().GetContainers()[0].GetEnv() {
		m[v.Name] = v.GetValue()
	}
	return m
}

// scheduledSlots waits until the job has want completed scheduled executions, then a little
// longer to see that no duplicate follows, and returns their RUNWAY_SCHEDULED_TIME values.
func (p *devPlatform) scheduledSlots(t *testing.T, job string, want int) []string {
	t.Helper()
	var slots []string
	collect := func() {
		slots = nil
		for _, x := range p.executions(t, job) {
			if e := envOf(x); e[platform.EnvTrigger] == platform.TriggerSchedule {
				slots = append(slots, e[platform.EnvScheduledTime])
			}
		}
		slices.Sort(slots)
	}
	// A nacked delivery waits for the manual clock to pass its backoff: nudge the clock by 15 s
	// every 300 ms of waiting, at most 3 minutes in all, so that from a minute past a slot no
	// further slot of */5 is reached.
	deadline, nudged, lastNudge := time.Now().Add(30*time.Second), time.Duration(0), time.Now()
	for collect(); len(slots) < want && time.Now().Before(deadline); collect() {
		time.Sleep(50 * time.Millisecond)
		if time.Since(lastNudge) > 300*time.Millisecond && nudged < 3*time.Minute {
			p.advance(t, 15*time.Second)
			nudged += 15 * time.Second
			lastNudge = time.Now()
		}
	}
	time.Sleep(1500 * time.Millisecond) // redeliveries and duplicate firings would show by now
	collect()
	return slots
}

const helloJob = "projects/gitlab-runway-hello/locations/us-east1/jobs/hello-runway"

// TestPlatformScheduledSlotsRunOnce: the example hello-runway job (*/5) is deployed by
// runwayctl dev; three slots pass on the emulator's clock; each runs once, knowing its slot.
// Then with duplicated deliveries and RunJob failing a third of the time, three more slots
// still run exactly once each.
func TestPlatformScheduledSlotsRunOnce(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC)
	p := startDev(t, start)
	// Always to a minute past a slot: scheduledSlots nudges the clock at most 3 more minutes.
	for i := 1; i <= 3; i++ {
		p.advanceTo(t, start.Add(time.Duration(i)*5*time.Minute))
	}
	got := p.scheduledSlots(t, helloJob, 3)
	want := []string{"2026-12-01T00:05:00Z", "2026-12-01T00:10:00Z", "2026-12-01T00:15:00Z"}
	if !slices.Equal(got, want) {
		t.Fatalf("scheduled executions served slots %v, want each of %v once\n%s", got, want, p.out)
	}

	p.admin(t, http.MethodPut, "/emulator/v1/faults/delivery", `{"duplicate_rate":0.5,"reorder_rate":0.5}`)
	p.admin(t, http.MethodPost, "/emulator/v1/faults", `{"method":"RunJob","code":14,"rate":0.34}`)
	// One slot at a time: a firing whose RunJob fails waits out its backoff on the manual clock,
	// and pstest drops a message left undelivered for 10 minutes of that clock (Pub/Sub keeps it
	// 7 days; docs in shared/emulator/eventarc). Jumping the three slots at once (11 minutes)
	// lost the first slot's firing when its retry fell past that mark on a loaded machine.
	for i := 4; i <= 6; i++ {
		p.advanceTo(t, start.Add(time.Duration(i)*5*time.Minute))
		got = p.scheduledSlots(t, helloJob, i)
	}
	want = append(want, "2026-12-01T00:20:00Z", "2026-12-01T00:25:00Z", "2026-12-01T00:30:00Z")
	if !slices.Equal(got, want) {
		t.Fatalf("with faults, scheduled executions served slots %v, want each of %v once\n%s", got, want, p.out)
	}
}

// TestPlatformRunWait: on-demand runs through runwayctl run --wait: overrides reach the
// execution (exit 0, output in runwayctl logs); a failing run exits 1.
func TestPlatformRunWait(t *testing.T) {
	p := startDev(t, time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC))
	stdout, stderr, code := p.runwayctl(t, repoRoot, "run", "hello-runway", "--env", "GREETING=bonjour", "--wait")
	if code != 0 || !strings.Contains(stdout, "succeeded") {
		t.Fatalf("run --wait: exit %d\n%s\n%s", code, stdout, stderr)
	}
	stdout, _, code = p.runwayctl(t, repoRoot, "logs", "hello-runway")
	if code != 0 || !strings.Contains(stdout, "bonjour from hello-runway-") || !strings.Contains(stdout, "(manual run, slot none)") {
		t.Fatalf("logs: exit %d\n%s", code, stdout)
	}
	stdout, stderr, code = p.runwayctl(t, repoRoot, "run", "hello-runway", "--args", "exit 3", "--wait")
	if code != 1 || !strings.Contains(stderr, "failed") {
		t.Fatalf("failing run --wait: exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	stdout, _, _ = p.runwayctl(t, repoRoot, "status", "hello-runway")
	if !strings.Contains(stdout, "manual    failed") && !strings.Contains(stdout, "failed") {
		t.Errorf("status does not show the failed run:\n%s", stdout)
	}
}

// TestPlatformRunRefusedAlike: a run request that breaks the rules is refused by runwayctl run
// before anything is published, and the same request published straight onto the trigger
// topic is refused by the trigger function, in the same words (status shows its record).
func TestPlatformRunRefusedAlike(t *testing.T) {
	p := startDev(t, time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC))
	tests := []struct {
		name  string
		flags []string
		req   platform.RunRequest
	}{
		{name: "timeout", flags: []string{"--timeout", "1.5s"}, req: platform.RunRequest{Timeout: "1.5s"}},
		{name: "every rule", flags: []string{"--env", "RUNWAY_X=1", "--task-count", "-1", "--concurrency-policy", "forbid", "--clear-args", "--args", "x"},
			req: platform.RunRequest{Env: map[string]string{"RUNWAY_X": "1"}, TaskCount: -1, ConcurrencyPolicy: "forbid", ClearArgs: true, Args: []string{"x"}}},
	}
	pub := p.cl.PubSub.Publisher(platform.TopicPath("gitlab-runway-hello", platform.TriggerTopic("hello-runway")))
	defer pub.Stop()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := p.runwayctl(t, repoRoot, append([]string{"run", "hello-runway", "--wait"}, tt.flags...)...)
			reason, ok := strings.CutPrefix(strings.TrimSpace(stderr), "runwayctl: run request refused: ")
			if code != 2 || !ok {
				t.Fatalf("runwayctl run %v: exit %d, stderr %q; want 2 and the refusal", tt.flags, code, stderr)
			}
			tt.req.RequestID, tt.req.Workload = fmt.Sprintf("e2e-refused-%d", i), "hello-runway"
			body, _ := json.Marshal(tt.req)
			msg := &pubsub.Message{Data: body, Attributes: map[string]string{platform.AttrKind: platform.KindRun}}
			if _, err := pub.Publish(t.Context(), msg).Get(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := "refused: " + reason
			var status string
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				if status, _, _ = p.runwayctl(t, repoRoot, "status", "hello-runway"); strings.Contains(status, want) {
					return
				}
			}
			t.Errorf("status does not show the trigger's refusal %q:\n%s", want, status)
		})
	}
}

// TestPlatformArtifactPush: a push of the tag the manifest tracks moves the job to the digest.
func TestPlatformArtifactPush(t *testing.T) {
	p := startDev(t, time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC))
	const prune = "projects/gitlab-runway-ai-gateway/locations/us-east4/jobs/ai-gateway-prune"
	job, err := p.cl.Jobs.GetJob(t.Context(), &runpb.GetJobRequest{Name: prune})
	if err != nil {
		t.Fatal(err)
	}
	tag := job.Annotations[platform.AnnotationImageTag]
	if tag != "" {
		t.Fatalf("the example pins a digest, so nothing tracks a tag; got image-tag %q", tag)
	}
	// hello-runway's manifest names no image: deploy it with a tag, then push that tag.
	repo := filepath.Join(repoRoot, "examples", "hello")
	const tagged = "us-east1-docker.pkg.dev/gitlab-runway-hello/hello-runway/hello:main"
	dir := copyRepo(t, repo)
	m := filepath.Join(dir, ".runway", "runway.yml")
	os.WriteFile(m, []byte(strings.Replace(string(mustRead(t, m)), "spec:\n", "spec:\n  image: "+tagged+"\n", 1)), 0o644)
	if stdout, stderr, code := p.runwayctl(t, dir, "deploy", "--wait"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, stdout, stderr)
	}
	digest := "us-east1-docker.pkg.dev/gitlab-runway-hello/hello-runway/hello@sha256:" + strings.Repeat("d", 64)
	body, _ := json.Marshal(map[string]string{"action": "INSERT", "digest": digest, "tag": tagged})
	pub := p.cl.PubSub.Publisher(platform.TopicPath("gitlab-runway-hello", platform.ArtifactTopic))
	defer pub.Stop()
	if _, err := pub.Publish(t.Context(), &pubsub.Message{Data: body}).Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := p.cl.Jobs.GetJob(t.Context(), &runpb.GetJobRequest{Name: helloJob})
		if err == nil && j.Template.Template.Containers[0].Image == digest {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not move to the pushed digest: %v, %v", j.GetTemplate().GetTemplate().GetContainers(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPlatformBadManifest: a bad manifest is refused with its position and changes nothing.
func TestPlatformBadManifest(t *testing.T) {
	p := startDev(t, time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC))
	before, err := p.cl.Jobs.GetJob(t.Context(), &runpb.GetJobRequest{Name: helloJob})
	if err != nil {
		t.Fatal(err)
	}
	dir := copyRepo(t, filepath.Join(repoRoot, "examples", "hello"))
	m := filepath.Join(dir, ".runway", "runway.yml")
	os.WriteFile(m, []byte(strings.Replace(string(mustRead(t, m)), "max_retries: 1", "max_retries: 11", 1)), 0o644)
	_, stderr, code := p.runwayctl(t, dir, "deploy", "--wait")
	if code != 1 || !strings.Contains(stderr, ".runway/runway.yml:20:16: spec.max_retries") {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and the position of max_retries", code, stderr)
	}
	after, err := p.cl.Jobs.GetJob(t.Context(), &runpb.GetJobRequest{Name: helloJob})
	if err != nil || after.Etag != before.Etag {
		t.Fatalf("the job changed: etag %s -> %s, %v", before.Etag, after.GetEtag(), err)
	}
}

// TestPlatformAlertOnceRecoverOnce: the hello job deployed broken fails at its slot; the
// monitor (ticking every minute on the emulator's clock) sends exactly one alert to the local
// sink; the fixed manifest deployed, the next slot succeeds and exactly one recovery follows.
func TestPlatformAlertOnceRecoverOnce(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC)
	p := startDev(t, start)
	good := filepath.Join(repoRoot, "examples", "hello")
	broken := copyRepo(t, good)
	m := filepath.Join(broken, ".runway", "runway.yml")
	os.WriteFile(m, []byte(strings.Replace(string(mustRead(t, m)), "    - echo ", "    - exit 1; echo ", 1)), 0o644)
	if stdout, stderr, code := p.runwayctl(t, broken, "deploy", "--wait"); code != 0 {
		t.Fatalf("deploy broken: exit %d\n%s\n%s", code, stdout, stderr)
	}
	opened := func() bool {
		for _, a := range p.alerts(t, "hello-runway") {
			if a.Alert.Action == "open" {
				return true
			}
		}
		return false
	}
	p.advanceTo(t, start.Add(5*time.Minute)) // 00:06: the 00:05 slot runs and fails
	if !p.tickUntil(t, start.Add(8*time.Minute), opened) {
		t.Fatalf("no alert for the failed run by 00:09: %+v\n%s", p.alerts(t, "hello-runway"), p.out)
	}
	if stdout, stderr, code := p.runwayctl(t, good, "deploy", "--wait"); code != 0 {
		t.Fatalf("deploy fixed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	resolved := func() bool {
		for _, a := range p.alerts(t, "hello-runway") {
			if a.Alert.Action == "resolve" {
				return true
			}
		}
		return false
	}
	p.advanceTo(t, start.Add(10*time.Minute)) // 00:11: the 00:10 slot runs and succeeds
	if !p.tickUntil(t, start.Add(13*time.Minute), resolved) {
		t.Fatalf("no recovery by 00:14: %+v", p.alerts(t, "hello-runway"))
	}
	p.advanceTo(t, start.Add(14*time.Minute)) // one more tick: nothing more may come
	time.Sleep(time.Second)
	var got []string
	for _, a := range p.alerts(t, "hello-runway") {
		got = append(got, a.Channel+" "+a.Alert.Action+" "+a.Alert.Kind)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "slack-runway open ") || !strings.HasPrefix(got[1], "slack-runway resolve ") {
		t.Fatalf("alerts for hello-runway = %q, want one open and one resolve on slack-runway", got)
	}
	if !strings.Contains(p.out.String(), "ALERT to slack-runway") {
		t.Errorf("runwayctl dev did not print the alert:\n%s", p.out)
	}
}

// TestPlatformSuspendedIsQuiet: a suspended schedule runs nothing and alerts nobody, and
// status says it is suspended.
func TestPlatformSuspendedIsQuiet(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC)
	p := startDev(t, start)
	dir := copyRepo(t, filepath.Join(repoRoot, "examples", "hello"))
	m := filepath.Join(dir, ".runway", "runway.yml")
	os.WriteFile(m, append(mustRead(t, m), []byte("  suspend: true\n")...), 0o644)
	if stdout, stderr, code := p.runwayctl(t, dir, "deploy", "--wait"); code != 0 || !strings.Contains(stdout, "schedule: paused") {
		t.Fatalf("deploy suspended: exit %d\n%s\n%s", code, stdout, stderr)
	}
	p.tickUntil(t, start.Add(25*time.Minute), func() bool { return false })
	if got := p.alerts(t, "hello-runway"); len(got) != 0 {
		t.Errorf("a suspended job alerted: %+v", got)
	}
	if got := p.scheduledSlots(t, helloJob, 0); len(got) != 0 {
		t.Errorf("a suspended job ran slots %v", got)
	}
	stdout, _, _ := p.runwayctl(t, repoRoot, "status", "hello-runway")
	if !strings.Contains(stdout, "SUSPENDED") {
		t.Errorf("status does not say suspended:\n%s", stdout)
	}
}

// TestPlatformStoppedScheduleIsMissed: the hello job's Cloud Scheduler job is paused behind
// Runway's back (a schedule that died): its slots are reported missed, in one alert that says
// the Scheduler job was paused outside Runway and links to it; resumed, the next slot runs and
// one recovery follows.
func TestPlatformStoppedScheduleIsMissed(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC)
	p := startDev(t, start)
	if _, err := p.cl.Scheduler.PauseJob(t.Context(), &schedulerpb.PauseJobRequest{Name: helloJob}); err != nil {
		t.Fatal(err)
	}
	missed := func() bool {
		for _, a := range p.alerts(t, "hello-runway") {
			if a.Alert.Action == "open" {
				return true
			}
		}
		return false
	}
	// The 00:05 slot is due by slot + expected runtime (timeout 1m x 2 attempts) + grace 10m.
	if !p.tickUntil(t, start.Add(20*time.Minute), missed) {
		t.Fatalf("no missed-slot alert by 00:21: %+v", p.alerts(t, "hello-runway"))
	}
	if _, err := p.cl.Scheduler.ResumeJob(t.Context(), &schedulerpb.ResumeJobRequest{Name: helloJob}); err != nil {
		t.Fatal(err)
	}
	resolved := func() bool {
		for _, a := range p.alerts(t, "hello-runway") {
			if a.Alert.Action == "resolve" {
				return true
			}
		}
		return false
	}
	if !p.tickUntil(t, start.Add(30*time.Minute), resolved) {
		t.Fatalf("no recovery by 00:31: %+v", p.alerts(t, "hello-runway"))
	}
	var got []string
	for _, a := range p.alerts(t, "hello-runway") {
		got = append(got, a.Alert.Action+" "+a.Alert.Kind)
	}
	if len(got) != 2 || got[0] != "open missed" || !strings.HasPrefix(got[1], "resolve") {
		t.Fatalf("alerts = %q, want one missed and one recovery", got)
	}
	a := p.alerts(t, "hello-runway")[0].Alert
	if !strings.Contains(a.Detail, "The Cloud Scheduler job is PAUSED, but the manifest does not suspend the job") ||
		len(a.Links) == 0 || !strings.HasSuffix(a.Links[0].Href, "/emulator/v1/scheduler/"+helloJob) {
		t.Errorf("the missed alert does not say why or link to the Scheduler job: %q, %+v", a.Detail, a.Links)
	}
}

// TestPlatformDoctor: on the local platform doctor passes for a deployed example; with publish
// denied on its trigger topic (the emulator's IAM deny rules) it fails naming the permission
// and its fix, and runwayctl run fails with Google's PermissionDenied.
func TestPlatformDoctor(t *testing.T) {
	p := startDev(t, time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC))
	stdout, stderr, code := p.runwayctl(t, repoRoot, "doctor", "hello-runway")
	if code != 0 || !strings.Contains(stdout, "✓ ok    Cloud Run job ") || !strings.Contains(stdout, "doctor: 9 ok, 0 failed, 0 skipped") {
		t.Fatalf("doctor on runwayctl dev: exit %d\n%s\n%s", code, stdout, stderr)
	}
	topic := platform.TopicPath("gitlab-runway-hello", platform.TriggerTopic("hello-runway"))
	p.admin(t, http.MethodPost, "/emulator/v1/iam/deny", `{"permissions":["pubsub.topics.publish"],"resource":"`+topic+`"}`)
	stdout, _, code = p.runwayctl(t, repoRoot, "doctor", "hello-runway")
	if code != 1 || !strings.Contains(stdout, "✗ FAIL  trigger topic       pubsub.topics.publish not granted on "+topic) ||
		!strings.Contains(stdout, "fix: gcloud pubsub topics add-iam-policy-binding "+platform.TriggerTopic("hello-runway")+" --project gitlab-runway-hello --role roles/pubsub.publisher") {
		t.Fatalf("doctor with publish denied: exit %d, want 1 naming the permission and its fix\n%s", code, stdout)
	}
	_, stderr, code = p.runwayctl(t, repoRoot, "run", "hello-runway")
	if code == 0 || !strings.Contains(stderr, "Permission 'pubsub.topics.publish' denied on resource '"+topic+"'") {
		t.Errorf("run with publish denied: exit %d\n%s", code, stderr)
	}
}
