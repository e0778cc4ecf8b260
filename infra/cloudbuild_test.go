package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
)

const cloudbuildFile = "../cloudbuild.yaml"

// cloudBuild is what the checks read of cloudbuild.yaml.
type cloudBuild struct {
	Substitutions map[string]string `yaml:"substitutions"`
	Steps         []cloudBuildStep  `yaml:"steps"`
}

type cloudBuildStep struct {
	ID         string   `yaml:"id"`
	Name       string   `yaml:"name"`
	Entrypoint string   `yaml:"entrypoint"`
	Args       []string `yaml:"args"`
	Dir        string   `yaml:"dir"`
	Env        []string `yaml:"env"`
	WaitFor    []string `yaml:"waitFor"`
}

// builtinSubstitutions are Cloud Build's own.
var builtinSubstitutions = []string{"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "COMMIT_SHA", "SHORT_SHA",
	"REVISION_ID", "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME", "REF_NAME", "TRIGGER_NAME", "TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"}

var substitutionRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// makeList returns a space-separated variable of the Makefile (MODULES, FUNCTIONS).
func makeList(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("Makefile: no %s", name)
	}
	return strings.Fields(string(m[1]))
}

// checkCloudBuild reports what would fail or drift in a Cloud Build configuration: a step in a
// missing directory or waiting for a missing step, a substitution used but not declared (Cloud
// Build refuses the build) or declared but unused, a module or function the build does not test
// or vendor with GOWORK=off, the platform's Terraform not applied, or given an undeclared -var,
// or not given a required one, or the runwayctl image not built and pushed.
func checkCloudBuild(src []byte, modules, functions []string, platform *tfconfig.Module) []string {
	var cb cloudBuild
	if err := yaml.Unmarshal(src, &cb); err != nil {
		return []string{fmt.Sprintf("cloudbuild.yaml: %v", err)}
	}
	var problems []string
	ids := map[string]bool{}
	used := map[string]bool{}
	var all []string                     // every step's text, for what must be there
	for k, v := range cb.Substitutions { // dynamic substitutions: values may use others
		for _, m := range substitutionRef.FindAllStringSubmatch(v, -1) {
			used[m[1]] = true
			if _, ok := cb.Substitutions[m[1]]; !ok && !slices.Contains(builtinSubstitutions, m[1]) {
				problems = append(problems, fmt.Sprintf("substitution %s: $%s is neither a substitution nor a Cloud Build variable", k, m[1]))
			}
		}
	}
	for i, s := range cb.Steps {
		name := s.ID
		if name == "" {
			name = fmt.Sprintf("step %d", i)
		}
		for _, w := range s.WaitFor {
			if w != "-" && !ids[w] {
				problems = append(problems, fmt.Sprintf("%s waits for %q, not an earlier step", name, w))
			}
		}
		ids[s.ID] = true
		if s.Dir != "" {
			if fi, err := os.Stat(filepath.Join("..", s.Dir)); err != nil || !fi.IsDir() {
				problems = append(problems, fmt.Sprintf("%s: dir %s does not exist", name, s.Dir))
			}
		}
		text := strings.Join(append(append([]string{s.Name, s.Entrypoint, s.Dir}, s.Env...), s.Args...), "\n")
		all = append(all, text)
		for _, m := range substitutionRef.FindAllStringSubmatch(strings.ReplaceAll(text, "$$", ""), -1) {
			used[m[1]] = true
			if _, ok := cb.Substitutions[m[1]]; !ok && !slices.Contains(builtinSubstitutions, m[1]) {
				problems = append(problems, fmt.Sprintf("%s: $%s is neither a substitution nor a Cloud Build variable", name, m[1]))
			}
		}
		if strings.Contains(text, "-chdir=") {
			for _, a := range s.Args {
				if d, ok := strings.CutPrefix(a, "-chdir="); ok {
					if _, err := os.Stat(filepath.Join("..", d)); err != nil {
						problems = append(problems, fmt.Sprintf("%s: -chdir=%s does not exist", name, d))
					}
				}
			}
		}
		if slices.Contains(s.Args, "plan") && slices.Contains(s.Args, "-chdir=infra/platform") {
			given := map[string]bool{}
			for _, a := range s.Args {
				if kv, ok := strings.CutPrefix(a, "-var="); ok {
					k, _, _ := strings.Cut(kv, "=")
					given[k] = true
					if _, ok := platform.Variables[k]; !ok {
						problems = append(problems, fmt.Sprintf("%s: -var=%s is not a variable of infra/platform", name, k))
					}
				}
			}
			for k, v := range platform.Variables {
				if v.Required && !given[k] {
					problems = append(problems, fmt.Sprintf("%s: the required variable %s of infra/platform is not given", name, k))
				}
			}
		}
	}
	for k := range cb.Substitutions {
		if !strings.HasPrefix(k, "_") {
			problems = append(problems, fmt.Sprintf("substitution %s: user substitutions start with _", k))
		}
		if !used[k] {
			problems = append(problems, fmt.Sprintf("substitution %s is declared but never used", k))
		}
	}
	joined := strings.Join(all, "\n")
	loop := regexp.MustCompile(`for m in ([^;]*); do`).FindStringSubmatch(joined)
	if loop == nil || !strings.Contains(joined, "GOWORK=off go test") {
		problems = append(problems, "no step tests each module with GOWORK=off")
	} else if got := strings.Fields(loop[1]); !slices.Equal(got, modules) {
		problems = append(problems, fmt.Sprintf("the GOWORK=off step tests %v, the Makefile's MODULES are %v", got, modules))
	}
	for _, f := range functions {
		found := false
		for _, s := range cb.Steps {
			if s.Dir == "functions/"+f && slices.Contains(s.Env, "GOWORK=off") && strings.Join(s.Args, " ") == "go mod vendor" {
				found = true
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("no step vendors functions/%s with GOWORK=off", f))
		}
	}
	if !slices.ContainsFunc(cb.Steps, func(s cloudBuildStep) bool { return s.Entrypoint == "make" && slices.Contains(s.Args, "test") }) {
		problems = append(problems, "no step runs make test")
	}
	if !regexp.MustCompile(`-chdir=infra/platform\napply`).MatchString(joined) {
		problems = append(problems, "no step applies infra/platform")
	}
	if !slices.ContainsFunc(cb.Steps, func(s cloudBuildStep) bool {
		return s.Dir == "release" && slices.Contains(s.Args, "./cmd/image") && slices.Contains(s.Args, "-push")
	}) {
		problems = append(problems, "no step builds and pushes the runwayctl image (release/cmd/image -push)")
	}
	sort.Strings(problems)
	return problems
}

func goImage(t *testing.T) string {
	b, err := os.ReadFile("../functions/deploy/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	return "golang:" + string(m[1])
}

func loadPlatform(t *testing.T) *tfconfig.Module {
	m, diags := tfconfig.LoadModule("platform")
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	return m
}

func TestCloudBuild(t *testing.T) {
	src, err := os.ReadFile(cloudbuildFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkCloudBuild(src, makeList(t, "MODULES"), makeList(t, "FUNCTIONS"), loadPlatform(t)) {
		t.Error(p)
	}
	var cb cloudBuild
	if err := yaml.Unmarshal(src, &cb); err != nil {
		t.Fatal(err)
	}
	if got, want := cb.Substitutions["_GO_IMAGE"], goImage(t); got != want {
		t.Errorf("_GO_IMAGE %s, want %s (the go directive of the modules)", got, want)
	}
	for _, want := range []string{"_PLATFORM_PROJECT", "_REGION"} {
		if _, ok := cb.Substitutions[want]; !ok {
			t.Errorf("no substitution %s", want)
		}
	}
}

func TestCloudBuildCheckerCatchesMistakes(t *testing.T) {
	src, err := os.ReadFile(cloudbuildFile)
	if err != nil {
		t.Fatal(err)
	}
	modules, functions, platform := makeList(t, "MODULES"), makeList(t, "FUNCTIONS"), loadPlatform(t)
	tests := []struct {
		name      string
		old, new  string
		modules   []string
		functions []string
		want      string
	}{
		{name: "missing dir", old: "dir: functions/trigger", new: "dir: functions/trigger2", want: "dir functions/trigger2 does not exist"},
		{name: "undeclared substitution", old: "${_REGION}", new: "${_REGOIN}", want: "$_REGOIN is neither"},
		{name: "unknown variable", old: "-var=region=", new: "-var=regoin=", want: "-var=regoin is not a variable"},
		{name: "missing waitFor", old: "waitFor: [terraform-plan]", new: "waitFor: [terraform-plna]", want: `waits for "terraform-plna"`},
		{name: "module not tested", modules: append(slices.Clone(modules), "newmod"), want: "the Makefile's MODULES are"},
		{name: "function not vendored", functions: append(slices.Clone(functions), "notify"), want: "no step vendors functions/notify"},
		{name: "image not pushed", old: "-push, ", new: "", want: "no step builds and pushes the runwayctl image"},
		{name: "required variable missing", old: "      - -var=channels_file=/workspace/config/channels.yml\n", new: "", want: "required variable channels_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := string(src)
			if tt.old != "" {
				if !strings.Contains(s, tt.old) {
					t.Fatalf("cloudbuild.yaml has no %q to change", tt.old)
				}
				s = strings.Replace(s, tt.old, tt.new, 1)
			}
			ms, fs := modules, functions
			if tt.modules != nil {
				ms = tt.modules
			}
			if tt.functions != nil {
				fs = tt.functions
			}
			got := strings.Join(checkCloudBuild([]byte(s), ms, fs, platform), "\n")
			if !strings.Contains(got, tt.want) {
				t.Errorf("problems:\n%s\nwant one containing %q", got, tt.want)
			}
		})
	}
}
