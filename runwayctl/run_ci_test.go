package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// ciTemplate is the GitLab CI template service projects include.
const ciTemplate = "../templates/runway-jobs.yml"

// ciJob is what the tests read of a job of the CI template.
type ciJob struct {
	Extends   string            `yaml:"extends"`
	Variables map[string]string `yaml:"variables"`
	Script    []string          `yaml:"script"`
}

// ciJobs returns the jobs of the CI template (its second YAML document).
func ciJobs(t *testing.T) map[string]ciJob {
	t.Helper()
	b, err := os.ReadFile(ciTemplate)
	if err != nil {
		t.Fatal(err)
	}
	_, jobsDoc, ok := bytes.Cut(b, []byte("\n---\n"))
	if !ok {
		t.Fatalf("%s: no spec/jobs separator", ciTemplate)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(jobsDoc, &doc); err != nil {
		t.Fatalf("%s: %v", ciTemplate, err)
	}
	jobs := map[string]ciJob{}
	for name, v := range doc {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var j ciJob
		if err := yaml.Unmarshal(b, &j); err != nil {
			t.Fatalf("%s: job %s: %v", ciTemplate, name, err)
		}
		jobs[name] = j
	}
	return jobs
}

// TestRunCITemplate runs the scripts of the template's .execute-job and deploy job with a
// stand-in runwayctl that prints its arguments, and checks the command lines they build.
func TestRunCITemplate(t *testing.T) {
	jobs := ciJobs(t)
	bin := t.TempDir()
	fake := "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(bin, "runwayctl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		job  string
		vars map[string]string // over the job's own variables
		want string
	}{
		{name: "defaults", job: ".execute-job", vars: map[string]string{"RUNWAY_RUN_REASON": "migrate in https://ci/p/1"},
			want: "[run][nightly][--inventory][/etc/runway/inventory.yml][--reason][migrate in https://ci/p/1][--wait]"},
		{name: "every variable", job: ".execute-job", vars: map[string]string{
			"RUNWAY_RUN_ENV": "DRY_RUN=0\nGREETING=hello world\n\n", "RUNWAY_RUN_ARGS": "migrate  up\n--to=4*\n\n$HOME", "RUNWAY_RUN_TASK_COUNT": "3",
			"RUNWAY_RUN_TIMEOUT": "30m", "RUNWAY_RUN_POLICY": "Replace", "RUNWAY_RUN_REASON": "r"},
			want: "[run][nightly][--inventory][/etc/runway/inventory.yml][--reason][r][--env][DRY_RUN=0][--env][GREETING=hello world][--args][migrate  up][--args][--to=4*][--args][$HOME][--task-count][3][--timeout][30m][--concurrency-policy][Replace][--wait]"},
		{name: "clear args, no wait", job: ".execute-job", vars: map[string]string{"RUNWAY_RUN_CLEAR_ARGS": "true", "RUNWAY_RUN_WAIT": "false", "RUNWAY_RUN_REASON": "r"},
			want: "[run][nightly][--inventory][/etc/runway/inventory.yml][--reason][r][--clear-args]"},
		{name: "deploy with an image", job: "deploy:$[[ inputs.runway_service_id ]]", vars: map[string]string{"RUNWAY_IMAGE": "reg/app@sha256:ab"},
			want: "[deploy][.runway/runway.yml][--workload][nightly][--inventory][/etc/runway/inventory.yml][--wait][--image][reg/app@sha256:ab]"},
		{name: "deploy keeping spec.image", job: "deploy:$[[ inputs.runway_service_id ]]", vars: map[string]string{"RUNWAY_IMAGE": ""},
			want: "[deploy][.runway/runway.yml][--workload][nightly][--inventory][/etc/runway/inventory.yml][--wait]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, ok := jobs[tt.job]
			if !ok || len(j.Script) != 2 {
				t.Fatalf("job %q: %+v, want the credentials step and the runwayctl call", tt.job, j)
			}
			script := strings.ReplaceAll(j.Script[1], "$[[ inputs.manifest ]]", ".runway/runway.yml")
			env := []string{"PATH=" + bin + ":/usr/bin:/bin", "RUNWAY_SERVICE_ID=nightly", "RUNWAY_INVENTORY=/etc/runway/inventory.yml", "HOME=/home/ci"}
			for k, v := range j.Variables {
				if _, over := tt.vars[k]; !over {
					env = append(env, k+"="+v)
				}
			}
			for k, v := range tt.vars {
				env = append(env, k+"="+v)
			}
			cmd := exec.Command("sh", "-c", script)
			cmd.Env, cmd.Dir = env, t.TempDir()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("script: %v\n%s", err, out)
			}
			if string(out) != tt.want {
				t.Errorf("runwayctl called with\n got %s\nwant %s", out, tt.want)
			}
		})
	}
	if j := jobs[".execute-job"]; !slices.Contains([]string{".runway-jobs:$[[ inputs.runway_service_id ]]"}, j.Extends) {
		t.Errorf(".execute-job extends %q, want the include's settings with the image and the platform's variables", j.Extends)
	}
}
