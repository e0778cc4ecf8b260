package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/run/apiv2/runpb"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/platform"
)

var (
	buildFunctions sync.Once
	functionBins   = map[string]string{}
	buildErr       error
)

// functionBinary builds functions/<name>/cmd/<name> once per test binary.
func functionBinary(t testing.TB, name string) string {
	t.Helper()
	buildFunctions.Do(func() {
		dir, err := os.MkdirTemp("", "runway-functions-")
		if err != nil {
			buildErr = err
			return
		}
		for _, f := range []string{"deploy", "trigger", "monitor"} {
			bin := filepath.Join(dir, f)
			cmd := exec.Command("go", "build", "-ldflags="+platform.FunctionLDFlags, "-o", bin, "./cmd/"+f)
			cmd.Dir = filepath.Join(repoRoot, "functions", f)
			// Static (CGO_ENABLED=0), as scripts/check-function and the release image build:
			// make test then compiles the dependencies once for every non-race binary.
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", f, err, out)
				return
			}
			functionBins[f] = bin
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return functionBins[name]
}

// platformEnv is an emulator, a state directory and the environment that reaches both.
type platformEnv struct {
	emu *emulator.Emulator
	cl  *allclients.Clients
	env []string
}

func startPlatform(t *testing.T, project string) *platformEnv {
	t.Helper()
	e := emulatortest.Start(t, emulator.Options{OpDelay: 5 * time.Millisecond})
	cl, err := allclients.Dial(context.Background(), emulatortest.Config(e, project), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return &platformEnv{emu: e, cl: cl, env: []string{
		gcp.EmulatorHostEnv + "=" + e.Addr(),
		"RUNWAY_STATE=" + t.TempDir(),
		platform.EnvInventory + "=" + filepath.Join(repoRoot, "examples", "inventory.yml"),
	}}
}

// startFunction runs a function binary as Cloud Functions would (PORT, FUNCTION_TARGET) and
// wires the topics to it with Eventarc-style push subscriptions.
func (p *platformEnv) startFunction(t *testing.T, name, target, project string, topics ...string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(functionBinary(t, name))
	cmd.Env = append(os.Environ(), append(p.env, fmt.Sprintf("PORT=%d", port), "FUNCTION_TARGET="+target)...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s function output:\n%s", name, logs.String())
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s function did not listen on %d:\n%s", name, port, logs.String())
		}
	}
	ctx := context.Background()
	for _, topic := range topics {
		tp := platform.TopicPath(project, topic)
		if _, err := p.cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: tp}); err != nil {
			t.Fatalf("CreateTopic %s: %v", tp, err)
		}
		if _, err := p.cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: "projects/" + project + "/subscriptions/eventarc-" + name + "-" + topic, Topic: tp,
			PushConfig:         &pubsubpb.PushConfig{PushEndpoint: url},
			AckDeadlineSeconds: 30,
		}); err != nil {
			t.Fatalf("CreateSubscription for %s: %v", tp, err)
		}
	}
}

// runwayctl runs runwayctl in dir with the platform's environment (and none of the CI's).
func (p *platformEnv) runwayctl(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runwayctlWith(t, dir, append(withoutCI(os.Environ()), p.env...), args...)
}

// withoutCI drops the CI's own variables, so a test run in CI does not look like a pipeline.
func withoutCI(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CI_") {
			out = append(out, kv)
		}
	}
	return out
}

const (
	topoProject = "gitlab-runway-topo-svc"
	compaction  = "topology-compaction"
	topoImage   = "us-east1-docker.pkg.dev/gitlab-runway-topo-svc/topology-compaction/topology@sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

// TestDeployWait deploys the example overlay with runwayctl deploy --wait through the deploy
// function (its own process, fed by an Eventarc-style push subscription), re-deploys it
// unchanged, plans a change, and has a foreign image refused with the function's reason.
func TestDeployWait(t *testing.T) {
	p := startPlatform(t, topoProject)
	p.startFunction(t, "deploy", "Deploy", topoProject, platform.DeployTopic(compaction))
	repo := filepath.Join(repoRoot, "examples", "topology-service")
	overlay := ".runway/topology-compaction/runway.yml"

	stdout, stderr, code := p.runwayctl(t, repo, "deploy", overlay, "--workload", compaction, "--image", topoImage, "--wait")
	if code != 0 {
		t.Fatalf("deploy --wait: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"topology-compaction: applied", "job: created", "schedule: created", "Scheduler job: projects/gitlab-runway-topo-svc/locations/us-east1/jobs/topology-compaction"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, stdout)
		}
	}
	job, err := p.cl.Jobs.GetJob(t.Context(), &runpb.GetJobRequest{Name: platform.JobName(topoProject, "us-east1", compaction)})
	if err != nil {
		t.Fatal(err)
	}
	c := job.Template.Template.Containers[0]
	// The overlay's args over the base file's env and secret.
	if c.Image != topoImage || strings.Join(c.Args, " ") != "compact --vacuum --max-duration=100m" || len(c.Env) != 4 {
		t.Errorf("deployed container = %v", c)
	}

	stdout, stderr, code = p.runwayctl(t, repo, "deploy", overlay, "--workload", compaction, "--wait")
	if code != 0 || !strings.Contains(stdout, "up to date, nothing changed") {
		t.Errorf("re-deploy: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	stdout, stderr, code = p.runwayctl(t, repo, "plan", overlay, "--workload", compaction)
	if code != 0 || !strings.Contains(stdout, "Cloud Run job projects/gitlab-runway-topo-svc/locations/us-east1/jobs/topology-compaction: no change") ||
		!strings.Contains(stdout, "Scheduler job projects/gitlab-runway-topo-svc/locations/us-east1/jobs/topology-compaction: no change") {
		t.Errorf("plan unchanged: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// A changed copy of the repository: plan names every field deploy would write (the
	// settings annotation carries the schedule), deploys nothing.
	changed := copyRepo(t, repo)
	o := filepath.Join(changed, overlay)
	b, _ := os.ReadFile(o)
	os.WriteFile(o, bytes.Replace(b, []byte(`"15 3 * * *"`), []byte(`"45 4 * * *"`), 1), 0o644)
	os.WriteFile(o, bytes.Replace(mustRead(t, o), []byte(`"--vacuum"`), []byte(`"--analyze"`), 1), 0o644)
	stdout, stderr, code = p.runwayctl(t, changed, "plan", overlay, "--workload", compaction)
	if code != 0 || !strings.Contains(stdout, ": update annotations.manifest-hash, annotations.settings, args\n") || !strings.Contains(stdout, ": update schedule\n") {
		t.Errorf("plan of a change: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	stdout, stderr, code = p.runwayctl(t, repo, "deploy", overlay, "--workload", compaction, "--wait",
		"--image", "docker.io/someone/else@sha256:2222222222222222222222222222222222222222222222222222222222222222")
	if code != 1 || !strings.Contains(stderr, "is not in the workload's artifact repository") {
		t.Errorf("foreign image: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if job2, _ := p.cl.Jobs.GetJob(t.Context(), &runpb.GetJobRequest{Name: job.Name}); job2.Template.Template.Containers[0].Image != topoImage {
		t.Errorf("a refused deploy changed the image to %s", job2.Template.Template.Containers[0].Image)
	}
}

// TestDeployRefusesBadManifestLocally: a bad manifest never leaves the CI job: it is refused
// with its position and nothing is published.
func TestDeployRefusesBadManifestLocally(t *testing.T) {
	p := startPlatform(t, topoProject)
	dir := copyRepo(t, filepath.Join(repoRoot, "examples", "topology-service"))
	o := filepath.Join(dir, ".runway/topology-compaction/runway.yml")
	os.WriteFile(o, bytes.Replace(mustRead(t, o), []byte("timeout: 2h"), []byte("timeout: 2 hours"), 1), 0o644)
	_, stderr, code := p.runwayctl(t, dir, "deploy", ".runway/topology-compaction/runway.yml", "--workload", compaction, "--wait")
	if code != 1 || !strings.Contains(stderr, ".runway/topology-compaction/runway.yml:12:12: spec.timeout") {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and the position of timeout", code, stderr)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyRepo copies an example repository's .runway directory into a temporary directory.
func copyRepo(t *testing.T, repo string) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.Walk(filepath.Join(repo, ".runway"), func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
