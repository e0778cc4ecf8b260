package infra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/goccy/go-yaml"

	"runwayjobs.dev/shared/inventory"
)

const (
	ciTemplate  = "../ci/runway-jobs.gitlab-ci.yml"
	ciExample   = "../ci/example/.gitlab-ci.yml"
	exampleRepo = "../examples/topology-service"
	exampleInv  = "../examples/inventory.yml"
)

// ciInput is a spec:inputs entry of a CI template.
type ciInput struct {
	Description string  `yaml:"description"`
	Default     *string `yaml:"default"`
}

// ciTemplateFile is a template split into its spec header and its jobs document.
type ciTemplateFile struct {
	Inputs map[string]ciInput
	Jobs   string
}

func loadCITemplate(t *testing.T, path string) ciTemplateFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, jobs, ok := bytes.Cut(b, []byte("\n---\n"))
	if !ok {
		t.Fatalf("%s: no spec/jobs separator", path)
	}
	var spec struct {
		Spec struct {
			Inputs map[string]ciInput `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(head, &spec); err != nil {
		t.Fatalf("%s: spec: %v", path, err)
	}
	return ciTemplateFile{Inputs: spec.Spec.Inputs, Jobs: string(jobs)}
}

var inputRef = regexp.MustCompile(`\$\[\[\s*inputs\.([a-z_0-9]+)\s*\]\]`)

// interpolate fills the template's $[[ inputs.X ]] with given, else the defaults, as GitLab
// does, and reports inputs that are not declared or not given.
func interpolate(tpl ciTemplateFile, given map[string]string) (string, []string) {
	var problems []string
	for name := range given {
		if _, ok := tpl.Inputs[name]; !ok {
			problems = append(problems, fmt.Sprintf("input %q is not declared by the template", name))
		}
	}
	for name, in := range tpl.Inputs {
		if _, ok := given[name]; !ok && in.Default == nil {
			problems = append(problems, fmt.Sprintf("required input %q is not given", name))
		}
	}
	out := inputRef.ReplaceAllStringFunc(tpl.Jobs, func(ref string) string {
		name := inputRef.FindStringSubmatch(ref)[1]
		if v, ok := given[name]; ok {
			return v
		}
		in, ok := tpl.Inputs[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("$[[ inputs.%s ]] is not declared in spec:inputs", name))
			return ref
		}
		if in.Default == nil {
			return ref
		}
		return *in.Default
	})
	sort.Strings(problems)
	return out, problems
}

// mergeYAML deep-merges over into base, as GitLab merges includes and extends: mappings key
// by key, anything else replaced.
func mergeYAML(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = mergeYAML(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// ciPipeline is a service project's configuration with its includes of the template resolved.
type ciPipeline struct {
	Config    map[string]any
	Variables map[string]string
	Includes  []map[string]string // the inputs of each include, in order
}

var ciReserved = []string{"stages", "variables", "include", "default", "workflow", "spec"}

// resolvePipeline reads a project's .gitlab-ci.yml whose includes name the template.
func resolvePipeline(t *testing.T, path string, tpl ciTemplateFile) (ciPipeline, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var project map[string]any
	if err := yaml.Unmarshal(b, &project); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var problems []string
	p := ciPipeline{Config: map[string]any{}, Variables: map[string]string{}}
	includes, _ := project["include"].([]any)
	for i, inc := range includes {
		m, _ := inc.(map[string]any)
		if m["file"] != "ci/runway-jobs.gitlab-ci.yml" {
			problems = append(problems, fmt.Sprintf("include %d: file %v is not the Runway Jobs template", i, m["file"]))
			continue
		}
		given := map[string]string{}
		inputs, _ := m["inputs"].(map[string]any)
		for k, v := range inputs {
			given[k] = fmt.Sprint(v)
		}
		doc, ps := interpolate(tpl, given)
		for _, pr := range ps {
			problems = append(problems, fmt.Sprintf("include %d: %s", i, pr))
		}
		var jobs map[string]any
		if err := yaml.Unmarshal([]byte(doc), &jobs); err != nil {
			t.Fatalf("include %d: %v", i, err)
		}
		p.Config = mergeYAML(p.Config, jobs)
		p.Includes = append(p.Includes, given)
	}
	p.Config = mergeYAML(p.Config, project)
	if vars, ok := project["variables"].(map[string]any); ok {
		for k, v := range vars {
			p.Variables[k] = fmt.Sprint(v)
		}
	}
	return p, problems
}

// job returns a job with its extends resolved.
func (p ciPipeline) job(t *testing.T, name string) map[string]any {
	t.Helper()
	j, ok := p.Config[name].(map[string]any)
	if !ok {
		t.Fatalf("no job %q", name)
	}
	var parents []string
	switch e := j["extends"].(type) {
	case string:
		parents = []string{e}
	case []any:
		for _, x := range e {
			parents = append(parents, fmt.Sprint(x))
		}
	}
	out := map[string]any{}
	for _, parent := range parents {
		out = mergeYAML(out, p.job(t, parent))
	}
	return mergeYAML(out, j)
}

// jobs returns the names of the pipeline's visible jobs.
func (p ciPipeline) jobs() []string {
	var out []string
	for k := range p.Config {
		if !strings.HasPrefix(k, ".") && !slices.Contains(ciReserved, k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func lines(v any) []string {
	switch s := v.(type) {
	case string:
		return []string{s}
	case []any:
		var out []string
		for _, x := range s {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// binDir holds the runwayctl the CI tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// runwayctlBin builds runwayctl once, from ../runwayctl, for the CI template checks.
var runwayctlBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "runwayctl-ci-test")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "runwayctl")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	// The workspace's runwayctl, even when this module is tested alone (GOWORK=off): these
	// tests check the templates against it, not how runwayctl builds on its own.
	cmd.Dir = "../runwayctl"
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOWORK=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Static (CGO_ENABLED=0), as the release image builds it: one compilation serves both.
	cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build runwayctl: %v\n%s", err, out)
	}
	return bin, nil
})

var flagName = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?--([a-z][a-z0-9-]*)`)

// commandFlags returns the flags of `runwayctl sub`, or an error when there is no such command.
func commandFlags(bin, sub string) ([]string, error) {
	out, err := exec.Command(bin, sub, "--help").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("runwayctl %s --help: %v\n%s", sub, err, out)
	}
	if !regexp.MustCompile(`(?m)^\s+runwayctl ` + regexp.QuoteMeta(sub) + `\b`).Match(out) {
		return nil, fmt.Errorf("runwayctl has no command %q", sub)
	}
	var flags []string
	for _, m := range flagName.FindAllStringSubmatch(string(out), -1) {
		flags = append(flags, m[1])
	}
	return flags, nil
}

// checkCall reports a runwayctl command line whose command does not exist or that passes a
// flag the command does not have (flags after a bare -- are the job's arguments).
func checkCall(flags func(sub string) ([]string, error), args []string) []string {
	if len(args) == 0 {
		return []string{"runwayctl called without a command"}
	}
	known, err := flags(args[0])
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !slices.Contains(known, name) {
				problems = append(problems, fmt.Sprintf("runwayctl %s has no flag --%s", args[0], name))
			}
		}
	}
	return problems
}

// scriptFlags are the --flag words written in a script.
var scriptFlag = regexp.MustCompile(`(?:^|\s)--([a-z][a-z0-9-]*)`)

// runJob runs a job's before_script and script with a stand-in runwayctl that records its
// command lines (and checks the Google credentials file the job prepared).
func runJob(t *testing.T, p ciPipeline, name string) [][]string {
	t.Helper()
	j := p.job(t, name)
	dir := t.TempDir()
	record := filepath.Join(dir, "calls")
	fake := "#!/bin/sh\n" +
		"cp \"$GOOGLE_APPLICATION_CREDENTIALS\" " + filepath.Join(dir, "credentials.json") + "\n" +
		"for a in \"$@\"; do printf '%s\\037' \"$a\"; done >> " + record + "\necho >> " + record + "\n"
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "bin", "runwayctl"), fake)
	if err := os.Chmod(filepath.Join(dir, "bin", "runwayctl"), 0o755); err != nil {
		t.Fatal(err)
	}
	ci := map[string]string{
		"CI_COMMIT_SHA": "0123abcd", "CI_JOB_NAME": name, "CI_JOB_ID": "5678", "CI_PIPELINE_ID": "1234",
		"CI_PIPELINE_URL": "https://gitlab.example.com/p/-/pipelines/1234", "CI_DEFAULT_BRANCH": "main", "CI_COMMIT_BRANCH": "main",
	}
	vars := maps.Clone(ci)
	maps.Copy(vars, p.Variables)
	jv, _ := j["variables"].(map[string]any)
	for k, v := range jv {
		vars[k] = fmt.Sprint(v)
	}
	// GitLab expands variable references in variables (twice covers IMAGE: $MIGRATE_IMAGE).
	for range 2 {
		for k, v := range vars {
			vars[k] = os.Expand(v, func(n string) string {
				if x, ok := vars[n]; ok {
					return x
				}
				return "$" + n
			})
		}
	}
	if tokens, _ := j["id_tokens"].(map[string]any); tokens["RUNWAY_GCP_ID_TOKEN"] == nil {
		t.Errorf("%s: no RUNWAY_GCP_ID_TOKEN id_token", name)
	}
	env := []string{"PATH=" + filepath.Join(dir, "bin") + ":/usr/bin:/bin", "TMPDIR=" + dir, "RUNWAY_GCP_ID_TOKEN=header.payload.signature"}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	script := strings.Join(append(lines(j["before_script"]), lines(j["script"])...), "\n")
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Env, cmd.Dir = env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: script: %v\n%s", name, err, out)
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("%s: runwayctl never ran: %v", name, err)
	}
	var calls [][]string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		calls = append(calls, strings.Split(strings.TrimSuffix(l, "\x1f"), "\x1f"))
	}
	var cred struct {
		Type, Audience   string
		CredentialSource struct{ File string } `json:"credential_source"`
	}
	cb, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err == nil {
		err = json.Unmarshal(cb, &cred)
	}
	if err != nil || cred.Type != "external_account" || cred.Audience != "//iam.googleapis.com/"+vars["RUNWAY_GCP_PROVIDER"] || cred.CredentialSource.File == "" {
		t.Errorf("%s: Google credentials %s (%v), want an external_account for the provider", name, cb, err)
	}
	return calls
}

func TestCITemplateInputs(t *testing.T) {
	tpl := loadCITemplate(t, ciTemplate)
	used := map[string]bool{}
	for _, m := range inputRef.FindAllStringSubmatch(tpl.Jobs, -1) {
		used[m[1]] = true
		if _, ok := tpl.Inputs[m[1]]; !ok {
			t.Errorf("$[[ inputs.%s ]] is not declared in spec:inputs", m[1])
		}
	}
	for name, in := range tpl.Inputs {
		if !used[name] {
			t.Errorf("input %q is declared but never used", name)
		}
		if in.Description == "" {
			t.Errorf("input %q has no description", name)
		}
	}
	if _, problems := interpolate(tpl, map[string]string{"runway_service_id": "w", "gcp_workload_identity_provider": "p", "imag": "x"}); !slices.Contains(problems, `input "imag" is not declared by the template`) {
		t.Errorf("a misspelt input passed: %v", problems)
	}
	if _, problems := interpolate(tpl, map[string]string{"gcp_workload_identity_provider": "p"}); !slices.Contains(problems, `required input "runway_service_id" is not given`) {
		t.Errorf("a missing required input passed: %v", problems)
	}
}

// TestCIExamplePipeline resolves the example service project's pipeline (two includes of the
// template and two jobs extending .execute-job), runs each Runway job's scripts with a
// stand-in runwayctl, and checks every command line against the real runwayctl: the command
// exists, has every flag passed, acts on the job's own workload with an image of that
// workload's repository; and the preflight's validate passes for real on the example repository.
func TestCIExamplePipeline(t *testing.T) {
	bin, err := runwayctlBin()
	if err != nil {
		t.Fatal(err)
	}
	flagsCache := map[string][]string{}
	flags := func(sub string) ([]string, error) {
		if f, ok := flagsCache[sub]; ok {
			return f, nil
		}
		f, err := commandFlags(bin, sub)
		if err == nil {
			flagsCache[sub] = f
		}
		return f, err
	}
	inv, err := inventory.Load(exampleInv)
	if err != nil {
		t.Fatal(err)
	}
	p, problems := resolvePipeline(t, ciExample, loadCITemplate(t, ciTemplate))
	for _, pr := range problems {
		t.Error(pr)
	}
	type want struct {
		workload string
		commands []string
	}
	wants := map[string]want{
		"preflight:topology-migrate":    {"topology-migrate", []string{"validate", "plan"}},
		"preflight:topology-compaction": {"topology-compaction", []string{"validate", "plan"}},
		"deploy:topology-migrate":       {"topology-migrate", []string{"deploy"}},
		"deploy:topology-compaction":    {"topology-compaction", []string{"deploy"}},
		"migrate-schema":                {"topology-migrate", []string{"run"}},
		"compact-now":                   {"topology-compaction", []string{"run"}},
	}
	var ran []string
	for _, name := range p.jobs() {
		j := p.job(t, name)
		if vars, _ := j["variables"].(map[string]any); vars["RUNWAY_WORKLOAD"] == nil {
			continue // the project's own jobs (build)
		}
		ran = append(ran, name)
		w, ok := wants[name]
		if !ok {
			t.Errorf("unexpected Runway job %q", name)
			continue
		}
		workload, _ := inv.Lookup(w.workload)
		calls := runJob(t, p, name)
		var commands []string
		for _, c := range calls {
			commands = append(commands, c[0])
			for _, pr := range checkCall(flags, c) {
				t.Errorf("%s: %s", name, pr)
			}
			if pr := checkWorkload(c, workload); pr != "" {
				t.Errorf("%s: %s", name, pr)
			}
			if c[0] == "validate" {
				real := exec.Command(bin, "validate", "--inventory", mustAbs(t, exampleInv))
				real.Dir = exampleRepo
				if out, err := real.CombinedOutput(); err != nil {
					t.Errorf("%s: runwayctl validate on %s: %v\n%s", name, exampleRepo, err, out)
				}
			}
		}
		if !slices.Equal(commands, w.commands) {
			t.Errorf("%s runs runwayctl %v, want %v", name, commands, w.commands)
		}
		script := strings.Join(lines(j["script"]), "\n")
		for _, m := range scriptFlag.FindAllStringSubmatch(script, -1) {
			found := false
			for _, c := range commands {
				if f, err := flags(c); err == nil && slices.Contains(f, m[1]) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: its script writes --%s, a flag of none of runwayctl %v", name, m[1], commands)
			}
		}
	}
	if len(ran) != len(wants) {
		t.Errorf("Runway jobs %v, want %d", ran, len(wants))
	}
}

// checkWorkload reports a command line that acts on another workload than the job's, or that
// deploys an image from outside the workload's repository.
func checkWorkload(args []string, w inventory.Workload) string {
	got := ""
	switch args[0] {
	case "run":
		if len(args) > 1 {
			got = args[1]
		}
	case "deploy", "plan":
		if i := slices.Index(args, "--workload"); i > 0 && i+1 < len(args) {
			got = args[i+1]
		}
	default:
		return ""
	}
	if got != w.Name {
		return fmt.Sprintf("runwayctl %s acts on workload %q, want %q", args[0], got, w.Name)
	}
	if i := slices.Index(args, "--image"); i > 0 && i+1 < len(args) && !w.ImageAllowed(args[i+1]) {
		return fmt.Sprintf("image %s is not from %s", args[i+1], w.ArtifactRepository)
	}
	return ""
}

func TestCICheckersCatchMistakes(t *testing.T) {
	flags := func(sub string) ([]string, error) {
		if sub != "deploy" {
			return nil, fmt.Errorf("runwayctl has no command %q", sub)
		}
		return []string{"workload", "wait", "image"}, nil
	}
	w := inventory.Workload{Name: "a", ArtifactRepository: "r-docker.pkg.dev/p/a"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "fine", args: []string{"deploy", "m.yml", "--workload", "a", "--wait", "--image", "r-docker.pkg.dev/p/a/i:1"}},
		{name: "unknown flag", args: []string{"deploy", "--wiat"}, want: "has no flag --wiat"},
		{name: "unknown command", args: []string{"deplyo"}, want: `no command "deplyo"`},
		{name: "args after --", args: []string{"deploy", "--workload", "a", "--", "--anything"}},
		{name: "another workload", args: []string{"deploy", "--workload", "b"}, want: `acts on workload "b"`},
		{name: "foreign image", args: []string{"deploy", "--workload", "a", "--image", "r-docker.pkg.dev/p/b/i:1"}, want: "is not from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(append(checkCall(flags, tt.args), checkWorkload(tt.args, w)), "\n")
			if tt.want == "" && strings.TrimSpace(got) != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("real runwayctl", func(t *testing.T) {
		bin, err := runwayctlBin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := commandFlags(bin, "deplyo"); err == nil {
			t.Error("commandFlags found a command that does not exist")
		}
		f, err := commandFlags(bin, "run")
		if err != nil || !slices.Contains(f, "concurrency-policy") {
			t.Errorf("run flags %v (%v), want --concurrency-policy among them", f, err)
		}
	})
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
