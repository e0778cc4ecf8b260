package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
)

// gitlabCILocalVersion is the gitlab-ci-local .ci/run installs: the newest that runs on Node
// 20 (4.74.0 and later call Set.prototype.union, Node 22).
const gitlabCILocalVersion = "4.73.0"

// componentPath is where the example includes the component from, up to the version.
const componentPath = "gitlab-com/gl-infra/platform/runway/runwayctl/runway-jobs"

// gitlabCILocal finds gitlab-ci-local: $GITLAB_CI_LOCAL (set by .ci/run, which installs it:
// then it must be there), then .ci/node_modules, then PATH. Without it the test skips.
func gitlabCILocal(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GITLAB_CI_LOCAL"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("GITLAB_CI_LOCAL=%s: %v", p, err)
		}
		return p
	}
	candidates := []string{filepath.Join(repoRoot, ".ci", "node_modules", ".bin", "gitlab-ci-local")}
	if p, err := exec.LookPath("gitlab-ci-local"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	t.Skipf("gitlab-ci-local is not installed (.ci/run installs it: npm install --prefix .ci gitlab-ci-local@%s); the component's pipeline tests need it", gitlabCILocalVersion)
	return ""
}

// ciProject is a service project's checkout that gitlab-ci-local runs pipelines in.
type ciProject struct {
	dir string
	sha string
}

// newCIProject makes a git repository of the example repo's .runway directory and pipeline,
// with an origin on gitlab.example.com, and puts the component (templates/runway-jobs.yml of
// this checkout) where gitlab-ci-local keeps the include it would have fetched for version:
// so `include: component:` resolves to the file under test, offline.
func newCIProject(t *testing.T, repo, pipeline, version string) ciProject {
	t.Helper()
	dir := copyRepo(t, repo)
	if err := os.WriteFile(filepath.Join(dir, ".gitlab-ci.yml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, ".gitlab-ci-local", "includes", "gitlab.example.com", filepath.Dir(componentPath), version, "templates")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "runway-jobs.yml"), mustRead(t, filepath.Join(repoRoot, "templates", "runway-jobs.yml")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte(".gitlab-ci-local/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=Runway CI", "-c", "user.email=ci@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("remote", "add", "origin", "https://gitlab.example.com/gitlab-com/gl-infra/topology-service.git")
	git("add", "-A")
	git("commit", "-q", "-m", "service project")
	return ciProject{dir: dir, sha: git("rev-parse", "HEAD")}
}

// gcl runs gitlab-ci-local in the project with the shell executor, the local platform's
// environment (RUNWAY_EMULATOR_HOST, RUNWAY_STATE, RUNWAY_INVENTORY as pipeline variables,
// which win over the component's job variables) and runwayctl first on PATH.
func (p *devPlatform) gcl(t *testing.T, bin string, proj ciProject, args ...string) (string, int) {
	t.Helper()
	full := []string{"--home", filepath.Join(proj.dir, ".gitlab-ci-local", "home"), "--force-shell-executor", "--no-color"}
	for _, kv := range p.env {
		full = append(full, "--variable", kv)
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Dir = proj.dir
	cmd.Env = append(withoutCI(os.Environ()), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("gitlab-ci-local %v: %v\n%s", args, err, out.String())
	}
	return out.String(), 0
}

var exampleComponent = regexp.MustCompile(`(?m)^\s*- component: \$CI_SERVER_FQDN/` + regexp.QuoteMeta(componentPath) + `@(\S+)\s*$`)

// helloPipeline is a project with GitLab's default stages (no stages:), a job of its own in
// test, the component for hello-runway, and two jobs extending .execute-job: one with its own
// before_script, env and arguments holding spaces, one whose execution fails.
const helloPipeline = `include:
  - component: $CI_SERVER_FQDN/` + componentPath + `@VERSION
    inputs:
      runway_service_id: hello-runway
      gcp_workload_identity_provider: projects/1000001/locations/global/workloadIdentityPools/runway-gitlab/providers/gitlab
      state: gs://test-platform-runway-jobs-state/runway

unit-test:
  stage: test
  script: [echo the project's own test job]

greet:
  extends: .execute-job
  before_script:
    - echo "the user's own before_script"
  variables:
    RUNWAY_RUN_ENV: |
      GREETING=bonjour tout le monde
    RUNWAY_RUN_ARGS: |
      test "$1" = "two words" && echo "$$GREETING: one argument, $1"
      argv0
      two words
    RUNWAY_RUN_REASON: pipeline test

failing-run:
  extends: .execute-job
  variables:
    RUNWAY_RUN_ARGS: exit 3
`

// TestCIComponentPipeline runs the component's pipelines with gitlab-ci-local (shell
// executor) against one runwayctl dev: the example service project's preflight and deploy;
// jobs extending .execute-job, which run and wait, keep the credentials step under the user's
// before_script, pass arguments with spaces, and fail their CI job when the execution fails;
// a bad manifest failing preflight at its position; projects with GitLab's default stages;
// and the same file included with include: project: and a pinned ref.
func TestCIComponentPipeline(t *testing.T) {
	bin := gitlabCILocal(t)
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Fatal("gitlab-ci-local's shell executor needs rsync (.ci/run installs it)")
	}
	example := string(mustRead(t, filepath.Join(repoRoot, "ci", "example", ".gitlab-ci.yml")))
	m := exampleComponent.FindAllStringSubmatch(example, -1)
	if len(m) != 2 || m[0][1] != m[1][1] {
		t.Fatalf("ci/example/.gitlab-ci.yml includes %v, want the component %s twice, at one version", m, componentPath)
	}
	version := m[0][1]
	p := startDev(t, time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC))
	topology := filepath.Join(repoRoot, "examples", "topology-service")

	t.Run("example preflight and deploy", func(t *testing.T) {
		proj := newCIProject(t, topology, example, version)
		out, code := p.gcl(t, bin, proj, "--no-json-schema-validation", "preflight:topology-migrate", "deploy:topology-migrate")
		if code != 0 || !strings.Contains(out, "PASS  preflight:topology-migrate") || !strings.Contains(out, "PASS  deploy:topology-migrate") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{"local platform, no Google credentials", ".runway/topology-compaction/runway.yml: topology-compaction:", "topology-migrate: applied"} {
			if !strings.Contains(out, want) {
				t.Errorf("the log lacks %q:\n%s", want, out)
			}
		}
		job, err := p.cl.Jobs.GetJob(t.Context(), &runpb.GetJobRequest{Name: "projects/gitlab-runway-topo-svc/locations/us-east1/jobs/topology-migrate"})
		want := "us-east1-docker.pkg.dev/gitlab-runway-topo-svc/topology-migrate/topology-service:" + proj.sha
		if err != nil || job.GetTemplate().GetTemplate().GetContainers()[0].GetImage() != want {
			t.Fatalf("deployed job %v (%v), want image %s", job.GetTemplate().GetTemplate().GetContainers(), err, want)
		}
	})

	t.Run("bad manifest fails preflight", func(t *testing.T) {
		proj := newCIProject(t, topology, example, version)
		manifest := filepath.Join(proj.dir, ".runway", "runway.yml")
		b := string(mustRead(t, manifest))
		i := strings.Index(b, "max_retries: 0")
		if i < 0 {
			t.Fatal("the example manifest has no max_retries: 0")
		}
		line := strings.Count(b[:i], "\n") + 1
		col := i - strings.LastIndex(b[:i], "\n") + len("max_retries: ")
		if err := os.WriteFile(manifest, []byte(b[:i]+"max_retries: 11"+b[i+len("max_retries: 0"):]), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := p.gcl(t, bin, proj, "--no-json-schema-validation", "preflight:topology-migrate")
		pos := fmt.Sprintf(".runway/runway.yml:%d:%d: spec.max_retries", line, col)
		if code == 0 || !strings.Contains(out, "FAIL  preflight:topology-migrate") || !strings.Contains(out, pos) {
			t.Fatalf("exit %d, want a failed preflight naming %s:\n%s", code, pos, out)
		}
		if strings.Contains(out, "$ set -- plan") {
			t.Errorf("plan ran after validate failed:\n%s", out)
		}
	})

	hello := filepath.Join(repoRoot, "examples", "hello")
	helloProj := newCIProject(t, hello, strings.Replace(helloPipeline, "VERSION", version, 1), version)

	t.Run("execute-job runs with its overrides and waits", func(t *testing.T) {
		out, code := p.gcl(t, bin, helloProj, "--no-json-schema-validation", "greet")
		if code != 0 || !strings.Contains(out, "PASS  greet") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{"the user's own before_script", "local platform, no Google credentials", "succeeded"} {
			if !strings.Contains(out, want) {
				t.Errorf("the log lacks %q:\n%s", want, out)
			}
		}
		started := regexp.MustCompile(`execution (hello-runway-\S+) started`).FindStringSubmatch(out)
		if started == nil {
			t.Fatalf("no execution started:\n%s", out)
		}
		logs, stderr, code := p.runwayctl(t, repoRoot, "logs", "hello-runway", started[1])
		if code != 0 || !strings.Contains(logs, "bonjour tout le monde: one argument, two words") {
			t.Fatalf("the execution did not get the env and the arguments as given: exit %d\n%s\n%s", code, logs, stderr)
		}
	})

	t.Run("a failed run fails its job", func(t *testing.T) {
		out, code := p.gcl(t, bin, helloProj, "--no-json-schema-validation", "failing-run")
		if code == 0 || !strings.Contains(out, "FAIL  failing-run") || !strings.Contains(out, "1 of 1 tasks failed") {
			t.Fatalf("exit %d, want the job failed by its failed execution:\n%s", code, out)
		}
	})

	t.Run("default stages", func(t *testing.T) {
		// gitlab-ci-local checks the pipeline against its copy of GitLab's CI schema here.
		out, code := p.gcl(t, bin, helloProj, "--list")
		if code != 0 {
			t.Fatalf("a project with the default stages and the component: exit %d\n%s", code, out)
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^unit-test\s+test\s+on_success`),
			regexp.MustCompile(`(?m)^preflight:hello-runway\s+test\s+on_success`),
			regexp.MustCompile(`(?m)^deploy:hello-runway\s+deploy\s+on_success`),
			regexp.MustCompile(`(?m)^greet\s+\.post\s+manual\s+false`),
		} {
			if !want.MatchString(out) {
				t.Errorf("the job list lacks %s:\n%s", want, out)
			}
		}
		// A project with stages of its own must list the component's: the inputs say where.
		own := newCIProject(t, hello, "stages: [build]\n"+strings.Replace(helloPipeline, "VERSION", version, 1), version)
		if out, code := p.gcl(t, bin, own, "--list"); code == 0 || !strings.Contains(out, "stage:test not found for preflight:hello-runway") {
			t.Errorf("stages: [build] without the component's stages: exit %d, want stage test not found\n%s", code, out)
		}
		withInputs := strings.Replace(helloPipeline, "VERSION", version, 1)
		withInputs = strings.Replace(withInputs, "      state:", "      preflight_stage: build\n      deploy_stage: build\n      run_stage: build\n      state:", 1)
		own = newCIProject(t, hello, "stages: [build]\n"+strings.Replace(withInputs, "stage: test", "stage: build", 1), version)
		if out, code := p.gcl(t, bin, own, "--list"); code != 0 || !regexp.MustCompile(`(?m)^greet\s+build\s+manual`).MatchString(out) {
			t.Errorf("stages: [build] with the stage inputs: exit %d\n%s", code, out)
		}
	})

	t.Run("include project with a pinned ref", func(t *testing.T) {
		// Instances without the catalog include the same file by project, file and ref.
		pipeline := strings.Replace(strings.Replace(helloPipeline, "VERSION", version, 1),
			"  - component: $CI_SERVER_FQDN/"+componentPath+"@"+version+"\n",
			"  - project: "+filepath.Dir(componentPath)+"\n    ref: "+version+"\n    file: templates/runway-jobs.yml\n", 1)
		if !strings.Contains(pipeline, "ref: "+version) {
			t.Fatalf("the pipeline does not include by project:\n%s", pipeline)
		}
		proj := newCIProject(t, hello, pipeline, version)
		out, code := p.gcl(t, bin, proj, "--no-json-schema-validation", "greet")
		if code != 0 || !strings.Contains(out, "PASS  greet") {
			t.Fatalf("include: project: exit %d\n%s", code, out)
		}
	})
}
