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
	"github.com/santhosh-tekuri/jsonschema/v6"

	"runwayjobs.dev/shared/inventory"
)

const (
	ciTemplate  = "../templates/runway-jobs.yml"
	ciExample   = "../ci/example/.gitlab-ci.yml"
	exampleRepo = "../examples/topology-service"
	exampleInv  = "../examples/inventory.yml"
	// ciSchema is GitLab's CI JSON Schema (testdata/gitlab-ci-schema/README.md says whence).
	ciSchema = "testdata/gitlab-ci-schema/ci.json"
	// componentRef is how a project includes the component, up to its version.
	componentRef = "$CI_SERVER_FQDN/gitlab-com/gl-infra/platform/runway/runwayctl/runway-jobs@"
)

// ciInput is a spec:inputs entry of a CI/CD component.
type ciInput struct {
	Description string `yaml:"description"`
	Type        string `yaml:"type"`
	Default     any    `yaml:"default"`
	HasDefault  bool   `yaml:"-"`
	Regex       string `yaml:"regex"`
	Options     []any  `yaml:"options"`
}

// ciTemplateFile is a component split into its spec header and its jobs document.
type ciTemplateFile struct {
	Inputs map[string]ciInput
	Header string
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
	// A default of "" is a default; only an absent one makes the input required.
	var raw struct {
		Spec struct {
			Inputs map[string]map[string]any `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(head, &raw); err != nil {
		t.Fatalf("%s: spec: %v", path, err)
	}
	for name, in := range spec.Spec.Inputs {
		_, in.HasDefault = raw.Spec.Inputs[name]["default"]
		spec.Spec.Inputs[name] = in
	}
	return ciTemplateFile{Inputs: spec.Spec.Inputs, Header: string(head), Jobs: string(jobs)}
}

var inputRef = regexp.MustCompile(`\$\[\[\s*inputs\.([a-z_0-9]+)\s*\]\]`)

// inputProblem is what GitLab says of value for input in: a value of another type, one that
// does not match regex or is not among the options.
func inputProblem(name string, in ciInput, value any) string {
	typ := in.Type
	if typ == "" {
		typ = "string"
	}
	ok := false
	switch v := value.(type) {
	case string:
		ok = typ == "string"
	case bool:
		ok = typ == "boolean"
	case int, int64, uint64, float64:
		ok = typ == "number"
	case []any:
		ok = typ == "array"
	default:
		_ = v
	}
	if !ok {
		return fmt.Sprintf("input %q: %v is not a %s", name, value, typ)
	}
	if in.Regex != "" {
		s, _ := value.(string)
		re, err := regexp.Compile(in.Regex)
		if err != nil {
			return fmt.Sprintf("input %q: regex %s: %v", name, in.Regex, err)
		}
		if !re.MatchString(s) {
			return fmt.Sprintf("input %q: %q does not match %s", name, s, in.Regex)
		}
	}
	if len(in.Options) > 0 && !slices.ContainsFunc(in.Options, func(o any) bool { return fmt.Sprint(o) == fmt.Sprint(value) }) {
		return fmt.Sprintf("input %q: %v is not one of %v", name, value, in.Options)
	}
	return ""
}

// interpolate fills the template's $[[ inputs.X ]] with given, else the defaults, as GitLab
// does, and reports inputs that are not declared, not given, or not of their declared shape.
func interpolate(tpl ciTemplateFile, given map[string]any) (string, []string) {
	var problems []string
	for name, v := range given {
		in, ok := tpl.Inputs[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("input %q is not declared by the template", name))
			continue
		}
		if p := inputProblem(name, in, v); p != "" {
			problems = append(problems, p)
		}
	}
	for name, in := range tpl.Inputs {
		if _, ok := given[name]; !ok && !in.HasDefault {
			problems = append(problems, fmt.Sprintf("required input %q is not given", name))
		}
	}
	out := inputRef.ReplaceAllStringFunc(tpl.Jobs, func(ref string) string {
		name := inputRef.FindStringSubmatch(ref)[1]
		if v, ok := given[name]; ok {
			return fmt.Sprint(v)
		}
		in, ok := tpl.Inputs[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("$[[ inputs.%s ]] is not declared in spec:inputs", name))
			return ref
		}
		if !in.HasDefault {
			return ref
		}
		return fmt.Sprint(in.Default)
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
	Includes  []map[string]any // the inputs of each include, in order
	Versions  []string         // the component version of each include
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
		ref, _ := m["component"].(string)
		version, ok := strings.CutPrefix(ref, componentRef)
		if !ok {
			problems = append(problems, fmt.Sprintf("include %d: %v is not the Runway Jobs component %s<version>", i, inc, componentRef))
			continue
		}
		p.Versions = append(p.Versions, version)
		given, _ := m["inputs"].(map[string]any)
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

var flagName = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?--([a-z][a-z0-9-]*)( [a-zA-Z]+)?`)

// commandFlags returns the flags of `runwayctl sub`, each with whether it takes a value, or an
// error when there is no such command.
func commandFlags(bin, sub string) (map[string]bool, error) {
	out, err := exec.Command(bin, sub, "--help").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("runwayctl %s --help: %v\n%s", sub, err, out)
	}
	if !regexp.MustCompile(`(?m)^\s+runwayctl ` + regexp.QuoteMeta(sub) + `\b`).Match(out) {
		return nil, fmt.Errorf("runwayctl has no command %q", sub)
	}
	flags := map[string]bool{}
	for _, m := range flagName.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = m[2] != ""
	}
	return flags, nil
}

// checkCall reports a runwayctl command line whose command does not exist or that passes a
// flag the command does not have (the value of a flag that takes one, and what follows a bare
// --, are not flags).
func checkCall(flags func(sub string) (map[string]bool, error), args []string) []string {
	if len(args) == 0 {
		return []string{"runwayctl called without a command"}
	}
	known, err := flags(args[0])
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, inline := strings.Cut(name, "=")
			takesValue, ok := known[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("runwayctl %s has no flag --%s", args[0], name))
			}
			if takesValue && !inline {
				i++
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
		"if [ -n \"${GOOGLE_APPLICATION_CREDENTIALS:-}\" ]; then cp \"$GOOGLE_APPLICATION_CREDENTIALS\" " + filepath.Join(dir, "credentials.json") + "; fi\n" +
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
	provider := vars["RUNWAY_GCP_WORKLOAD_IDENTITY_PROVIDER"]
	tokens, _ := j["id_tokens"].(map[string]any)
	if tok, _ := tokens["RUNWAY_GCP_ID_TOKEN"].(map[string]any); tok["aud"] != "https://iam.googleapis.com/"+provider {
		t.Errorf("%s: id_tokens %v, want RUNWAY_GCP_ID_TOKEN for the provider %s", name, tokens, provider)
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
	if err != nil || cred.Type != "external_account" || cred.Audience != "//iam.googleapis.com/"+provider || cred.CredentialSource.File == "" {
		t.Errorf("%s: Google credentials %s (%v), want an external_account for the provider", name, cb, err)
	}
	return calls
}

// exampleInputs are valid inputs for the component's required ones.
var exampleInputs = map[string]any{
	"runway_service_id":              "hello-runway",
	"gcp_workload_identity_provider": "projects/123456789012/locations/global/workloadIdentityPools/runway-gitlab/providers/gitlab",
	"state":                          "gs://platform-runway-jobs-state/runway",
}

func withInput(name string, value any) map[string]any {
	m := maps.Clone(exampleInputs)
	if value == nil {
		delete(m, name)
	} else {
		m[name] = value
	}
	return m
}

// TestCITemplateInputs: every input is used, described and typed; inputs with a shape have a
// regex or options that their default matches; the platform's own values (provider, state)
// are required; the runwayctl image is pinned to a release; and the checks refuse inputs of
// the wrong shape as GitLab would.
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
		if !slices.Contains([]string{"string", "number", "boolean", "array"}, in.Type) {
			t.Errorf("input %q: type %q, want one of GitLab's string, number, boolean, array", name, in.Type)
		}
		if in.Type == "string" && in.Regex == "" && len(in.Options) == 0 {
			t.Errorf("input %q: a string input without regex or options", name)
		}
		if in.HasDefault {
			if p := inputProblem(name, in, in.Default); p != "" {
				t.Errorf("default: %s", p)
			}
		}
	}
	for _, name := range []string{"runway_service_id", "gcp_workload_identity_provider", "state"} {
		if tpl.Inputs[name].HasDefault {
			t.Errorf("input %q has a default; no default can be right for every platform or workload", name)
		}
	}
	img, _ := tpl.Inputs["runwayctl_image"].Default.(string)
	if !regexp.MustCompile(`:[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(img) {
		t.Errorf("runwayctl_image defaults to %q, want the image of a release (:X.Y.Z)", img)
	}
	// One name per concept: the inputs are in the docs, and the names they replaced are gone.
	doc, err := os.ReadFile("../docs/trigger.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range tpl.Inputs {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/trigger.md does not describe the input %s", name)
		}
	}
	for _, f := range []string{ciTemplate, ciExample, "../docs/trigger.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, old := range []string{"RUNWAY_WORKLOAD", "RUNWAY_GCP_PROVIDER", "RUNWAY_PROVIDER"} {
			if regexp.MustCompile(`\b` + old + `\b`).Match(b) {
				t.Errorf("%s uses %s: the concept has one name (RUNWAY_SERVICE_ID, RUNWAY_GCP_WORKLOAD_IDENTITY_PROVIDER)", f, old)
			}
		}
	}
	if strings.Contains(tpl.Jobs, "component.") {
		t.Errorf("the jobs use $[[ component.* ]]: GitLab's schema (spec has only inputs) and include: project: do not have it")
	}
	tests := []struct {
		name   string
		inputs map[string]any
		want   string
	}{
		{name: "valid", inputs: exampleInputs},
		{name: "misspelt", inputs: withInput("imag", "x"), want: `input "imag" is not declared by the template`},
		{name: "missing workload", inputs: withInput("runway_service_id", nil), want: `required input "runway_service_id" is not given`},
		{name: "missing state", inputs: withInput("state", nil), want: `required input "state" is not given`},
		{name: "workload shape", inputs: withInput("runway_service_id", "Topology_Migrate"), want: `input "runway_service_id": "Topology_Migrate" does not match`},
		{name: "provider shape", inputs: withInput("gcp_workload_identity_provider", "runway-gitlab/gitlab"), want: `input "gcp_workload_identity_provider"`},
		{name: "state not gs", inputs: withInput("state", "/var/lib/runway"), want: `input "state": "/var/lib/runway" does not match`},
		{name: "latest image", inputs: withInput("runwayctl_image", "registry.gitlab.com/r/runwayctl:latest"), want: `input "runwayctl_image"`},
		{name: "digest image", inputs: withInput("runwayctl_image", "registry.example.com:5000/r/runwayctl@sha256:"+strings.Repeat("a", 64))},
		{name: "stage with space", inputs: withInput("run_stage", "run jobs"), want: `input "run_stage"`},
		{name: "number for a string", inputs: withInput("manifest", 3), want: `input "manifest": 3 is not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := interpolate(tpl, tt.inputs)
			got := strings.Join(problems, "\n")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
}

// ciSchemaValidator compiles the vendored GitLab CI JSON Schema.
func ciSchemaValidator(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(ciSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", ciSchema, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("https://gitlab.com/.gitlab-ci.yml", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("https://gitlab.com/.gitlab-ci.yml")
	if err != nil {
		t.Fatalf("compile %s: %v", ciSchema, err)
	}
	return s
}

// asJSON turns a YAML document into the values a JSON Schema validator takes.
func asJSON(t *testing.T, doc string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// globalKeywords are the top-level keywords a component must not set: they would change every
// job of the project including it.
var globalKeywords = []string{"stages", "variables", "default", "workflow", "include", "image", "services", "before_script", "after_script", "cache"}

// TestCITemplateSchema validates the component's header and its jobs (with example inputs,
// and once more with every optional input given) and the example project against GitLab's CI
// JSON Schema, and checks GitLab's component rules that the schema does not.
func TestCITemplateSchema(t *testing.T) {
	schema := ciSchemaValidator(t)
	tpl := loadCITemplate(t, ciTemplate)
	if err := schema.Validate(asJSON(t, tpl.Header)); err != nil {
		t.Errorf("spec header: %v", err)
	}
	all := maps.Clone(exampleInputs)
	maps.Copy(all, map[string]any{"image": "us-east1-docker.pkg.dev/p/r/app:$CI_COMMIT_SHA", "manifest": ".runway/nightly.yml",
		"inventory": "/srv/inventory.yml", "preflight_stage": "check", "deploy_stage": ".pre", "run_stage": "run"})
	for _, inputs := range []map[string]any{exampleInputs, all} {
		doc, problems := interpolate(tpl, inputs)
		if len(problems) > 0 {
			t.Fatalf("interpolate: %v", problems)
		}
		if err := schema.Validate(asJSON(t, doc)); err != nil {
			t.Errorf("jobs with inputs %v: %v", inputs, err)
		}
		var jobs map[string]any
		if err := yaml.Unmarshal([]byte(doc), &jobs); err != nil {
			t.Fatal(err)
		}
		for _, k := range globalKeywords {
			if _, ok := jobs[k]; ok {
				t.Errorf("the component sets the global keyword %s:", k)
			}
		}
	}
	example, err := os.ReadFile(ciExample)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(asJSON(t, string(example))); err != nil {
		t.Errorf("%s: %v", ciExample, err)
	}
	// The schema is not vacuous: it refuses what GitLab refuses.
	for _, bad := range []string{
		"job:\n  script: [x]\n  when: sometimes\n",
		"spec:\n  inputs:\n    x:\n      type: text\n",
		"job:\n  script: [x]\n  allow_failure: maybe\n",
	} {
		if schema.Validate(asJSON(t, bad)) == nil {
			t.Errorf("the schema accepts %q", bad)
		}
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
	flagsCache := map[string]map[string]bool{}
	flags := func(sub string) (map[string]bool, error) {
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
		"preflight:topology-migrate":    {"topology-migrate", []string{"doctor", "validate", "plan"}},
		"preflight:topology-compaction": {"topology-compaction", []string{"doctor", "validate", "plan"}},
		"deploy:topology-migrate":       {"topology-migrate", []string{"deploy"}},
		"deploy:topology-compaction":    {"topology-compaction", []string{"deploy"}},
		"migrate-schema":                {"topology-migrate", []string{"run"}},
		"compact-now":                   {"topology-compaction", []string{"run"}},
	}
	var ran []string
	for _, name := range p.jobs() {
		j := p.job(t, name)
		if vars, _ := j["variables"].(map[string]any); vars["RUNWAY_SERVICE_ID"] == nil {
			continue // the project's own jobs (build)
		}
		ran = append(ran, name)
		// GitLab's executors replace a non-shell entrypoint only when told to.
		img, _ := j["image"].(map[string]any)
		if ep, _ := img["entrypoint"].([]any); img["name"] == nil || len(ep) != 1 || ep[0] != "" {
			t.Errorf("%s: image %v, want {name: …, entrypoint: [\"\"]}", name, j["image"])
		}
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
				if f, err := flags(c); err == nil {
					_, known := f[m[1]]
					found = found || known
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
	checkRunJobs(t, p, []string{"migrate-schema", "compact-now"})
	// One release: every include names the version whose runwayctl image the component pins.
	img, _ := loadCITemplate(t, ciTemplate).Inputs["runwayctl_image"].Default.(string)
	for i, v := range p.Versions {
		if !strings.HasSuffix(img, ":"+v) {
			t.Errorf("include %d: component version %s, but the component pins the image %s", i, v, img)
		}
	}
	// The migrate-schema job's arguments reach runwayctl one per line, the job's own
	// before_script kept and the credentials step still run.
	calls := runJob(t, p, "migrate-schema")
	wantCall := []string{"run", "topology-migrate", "--inventory", "gs://gitlab-runway-platform-runway-jobs-state/runway/inventory.yml", "--reason", "migrate-schema in https://gitlab.example.com/p/-/pipelines/1234",
		"--env", "DRY_RUN=0", "--env", "TARGET_VERSION=42", "--args", "migrate", "--args", "up", "--args", "--lock-timeout=30s", "--timeout", "30m", "--wait"}
	if len(calls) != 1 || !slices.Equal(calls[0], wantCall) {
		t.Errorf("migrate-schema calls %q, want %q", calls, wantCall)
	}
}

// checkRunJobs checks the rules GitLab applies to jobs extending .execute-job: no when: next to
// rules (GitLab refuses the job), manual on the default branch only, and a failure that
// blocks unless the job says which exit codes may pass.
func checkRunJobs(t *testing.T, p ciPipeline, names []string) {
	t.Helper()
	for _, name := range p.jobs() {
		j := p.job(t, name)
		if _, ok := j["rules"]; ok && j["when"] != nil {
			t.Errorf("%s: when: %v next to rules: GitLab refuses the job", name, j["when"])
		}
	}
	for _, name := range names {
		j := p.job(t, name)
		rules, _ := j["rules"].([]any)
		if len(rules) != 1 {
			t.Errorf("%s: rules %v, want .execute-job's one rule", name, j["rules"])
			continue
		}
		r, _ := rules[0].(map[string]any)
		if r["if"] != "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" || r["when"] != "manual" {
			t.Errorf("%s: rule %v, want manual on the default branch", name, r)
		}
		switch af := j["allow_failure"].(type) {
		case bool:
			if af {
				t.Errorf("%s: allow_failure: true, a failed run would not fail the pipeline", name)
			}
		case map[string]any:
			if codes := fmt.Sprint(af["exit_codes"]); codes != "[2]" {
				t.Errorf("%s: allow_failure %v, want at most exit code 2 (refused or skipped) to pass", name, af)
			}
		default:
			t.Errorf("%s: allow_failure %v, want false", name, j["allow_failure"])
		}
		if strings.Contains(strings.Join(lines(j["before_script"]), "\n"), "GOOGLE_APPLICATION_CREDENTIALS") {
			t.Errorf("%s: the credentials step is in before_script, where the job's own replaces it", name)
		}
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
	flags := func(sub string) (map[string]bool, error) {
		if sub != "deploy" {
			return nil, fmt.Errorf("runwayctl has no command %q", sub)
		}
		return map[string]bool{"workload": true, "wait": false, "image": true, "args": true}, nil
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
		{name: "a flag's value", args: []string{"deploy", "--workload", "a", "--args", "--lock-timeout=30s"}},
		{name: "a flag after a flag with an inline value", args: []string{"deploy", "--workload=a", "--wiat"}, want: "has no flag --wiat"},
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
		if err != nil || !f["concurrency-policy"] || f["wait"] {
			t.Errorf("run flags %v (%v), want --concurrency-policy taking a value and --wait not", f, err)
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
