package infra

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
)

// tfRoot is the Terraform tree this module checks.
const tfRoot = "."

// tfFiles returns every .tf file under root (not in .terraform or .build), sorted.
func tfFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".terraform" || d.Name() == ".build") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".tf") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// tfModules returns the directories holding .tf files.
func tfModules(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	for _, f := range tfFiles(t, root) {
		if d := filepath.Dir(f); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// checkParse reports the syntax errors of a .tf file.
func checkParse(path string, src []byte) []string {
	_, diags := hclparse.NewParser().ParseHCL(src, path)
	var out []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d.Error())
		}
	}
	return out
}

// checkFormat reports a file that terraform fmt would change (hclwrite.Format is its formatter).
func checkFormat(path string, src []byte) []string {
	if got := hclwrite.Format(src); !bytes.Equal(got, src) {
		return []string{fmt.Sprintf("%s: not formatted as terraform fmt formats it", path)}
	}
	return nil
}

// moduleInfo is what checkModule learns of one module directory.
type moduleInfo struct {
	dir       string
	config    *tfconfig.Module
	files     map[string]*hclsyntax.Body
	locals    map[string]bool
	providers []string // local names of the required providers: resource type prefixes
}

func loadModule(dir string) (*moduleInfo, []string) {
	var problems []string
	cfg, diags := tfconfig.LoadModule(dir)
	for _, d := range diags {
		if d.Severity == tfconfig.DiagError {
			problems = append(problems, fmt.Sprintf("%s: %s: %s", dir, d.Summary, d.Detail))
		}
	}
	m := &moduleInfo{dir: dir, config: cfg, files: map[string]*hclsyntax.Body{}, locals: map[string]bool{}}
	for name := range cfg.RequiredProviders {
		m.providers = append(m.providers, name)
	}
	if len(m.providers) == 0 {
		m.providers = []string{"google"}
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			problems = append(problems, diags.Error())
			continue
		}
		body := f.Body.(*hclsyntax.Body)
		m.files[p] = body
		for _, b := range body.Blocks {
			if b.Type == "locals" {
				for name := range b.Body.Attributes {
					m.locals[name] = true
				}
			}
		}
	}
	return m, problems
}

// metaArguments of a module block, which are not the callee's variables.
var metaArguments = []string{"source", "version", "for_each", "count", "providers", "depends_on"}

// checkModule reports the inconsistencies of the module in dir: a var.x that is not declared, a
// declared variable never used, a local, resource, data source or module output referenced but
// not defined, a module call passing an input its module does not declare or missing a
// required one.
func checkModule(dir string) []string {
	m, problems := loadModule(dir)
	if m.config == nil {
		return problems
	}
	used := map[string]bool{}
	report := func(r hcl.Range, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", r.Filename, r.Start.Line, fmt.Sprintf(format, args...)))
	}
	for _, body := range m.files {
		_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			e, ok := n.(*hclsyntax.ScopeTraversalExpr)
			if !ok {
				return nil
			}
			tr := e.Traversal
			root := tr.RootName()
			second := ""
			if len(tr) > 1 {
				if a, ok := tr[1].(hcl.TraverseAttr); ok {
					second = a.Name
				}
			}
			switch {
			case root == "var":
				used[second] = true
				if _, ok := m.config.Variables[second]; !ok {
					report(e.SrcRange, "var.%s is not declared", second)
				}
			case root == "local":
				if !m.locals[second] {
					report(e.SrcRange, "local.%s is not defined", second)
				}
			case root == "data":
				third := ""
				if len(tr) > 2 {
					if a, ok := tr[2].(hcl.TraverseAttr); ok {
						third = a.Name
					}
				}
				if _, ok := m.config.DataResources["data."+second+"."+third]; !ok {
					report(e.SrcRange, "data.%s.%s is not declared", second, third)
				}
			case root == "module":
				call, ok := m.config.ModuleCalls[second]
				if !ok {
					report(e.SrcRange, "module.%s is not called", second)
					break
				}
				out := ""
				for _, step := range tr[2:] {
					if a, ok := step.(hcl.TraverseAttr); ok {
						out = a.Name
						break
					}
				}
				if callee, err := tfconfig.LoadModule(filepath.Join(dir, call.Source)); err == nil && out != "" {
					if _, ok := callee.Outputs[out]; !ok {
						report(e.SrcRange, "module.%s has no output %q", second, out)
					}
				}
			case isResourceType(root, m.providers):
				if _, ok := m.config.ManagedResources[root+"."+second]; !ok {
					report(e.SrcRange, "%s.%s is not declared", root, second)
				}
			}
			return nil
		})
	}
	for name, v := range m.config.Variables {
		if !used[name] {
			problems = append(problems, fmt.Sprintf("%s:%d: variable %q is declared but never used", v.Pos.Filename, v.Pos.Line, name))
		}
	}
	for _, body := range m.files {
		for _, b := range body.Blocks {
			if b.Type != "module" || len(b.Labels) != 1 {
				continue
			}
			call := m.config.ModuleCalls[b.Labels[0]]
			if call == nil || !strings.HasPrefix(call.Source, ".") {
				continue
			}
			callee, diags := tfconfig.LoadModule(filepath.Join(dir, call.Source))
			if diags.HasErrors() {
				report(b.TypeRange, "module %s: %s", b.Labels[0], diags.Err())
				continue
			}
			for name, a := range b.Body.Attributes {
				if slices.Contains(metaArguments, name) {
					continue
				}
				if _, ok := callee.Variables[name]; !ok {
					report(a.SrcRange, "module %s passes %q, which %s does not declare", b.Labels[0], name, call.Source)
				}
			}
			for name, v := range callee.Variables {
				if _, ok := b.Body.Attributes[name]; !ok && v.Required {
					report(b.TypeRange, "module %s does not pass the required input %q of %s", b.Labels[0], name, call.Source)
				}
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// isResourceType says whether a traversal root names a resource type of the module's providers.
func isResourceType(root string, providers []string) bool {
	for _, p := range providers {
		if strings.HasPrefix(root, p+"_") {
			return true
		}
	}
	return false
}

func TestTerraformParsesAndIsFormatted(t *testing.T) {
	files := tfFiles(t, tfRoot)
	if len(files) < 10 {
		t.Fatalf("found %d .tf files under infra/, want the platform and its modules", len(files))
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range append(checkParse(f, src), checkFormat(f, src)...) {
			t.Error(p)
		}
	}
}

func TestTerraformModulesConsistent(t *testing.T) {
	dirs := tfModules(t, tfRoot)
	for _, want := range []string{"platform", "modules/job-project", "modules/job-workload", "modules/function-subscription"} {
		if !slices.Contains(dirs, filepath.FromSlash(want)) {
			t.Errorf("no module %s", want)
		}
	}
	for _, d := range dirs {
		for _, p := range checkModule(d) {
			t.Error(p)
		}
		if _, err := os.Stat(filepath.Join(d, "README.md")); err != nil {
			t.Errorf("%s: no README.md", d)
		}
		for _, f := range []string{"variables.tf", "outputs.tf"} {
			if _, err := os.Stat(filepath.Join(d, f)); err != nil {
				t.Errorf("%s: no %s", d, f)
			}
		}
	}
}

// TestTerraformCheckersCatchMistakes plants one mistake per case in a copy of a small module
// and expects the checkers to name it.
func TestTerraformCheckersCatchMistakes(t *testing.T) {
	const callee = `variable "name" {
  type = string
}

variable "size" {
  type    = number
  default = 1
}

resource "google_pubsub_topic" "t" {
  name   = var.name
  labels = { size = tostring(var.size) }
}

output "id" {
  value = google_pubsub_topic.t.id
}
`
	const caller = `variable "project" {
  type = string
}

module "child" {
  source = "./child"
  name   = var.project
}

output "child_id" {
  value = module.child.id
}
`
	tests := []struct {
		name   string
		caller string
		want   string // "" : no problem
	}{
		{name: "consistent", caller: caller},
		{name: "undeclared variable", caller: strings.Replace(caller, "name   = var.project", "name   = var.projet", 1), want: "var.projet is not declared"},
		{name: "unused variable", caller: caller + "\nvariable \"region\" {\n  type = string\n}\n", want: `variable "region" is declared but never used`},
		{name: "input the module does not declare", caller: strings.Replace(caller, "name   = var.project", "name   = var.project\n  colour = \"red\"", 1), want: `passes "colour"`},
		{name: "required input missing", caller: strings.Replace(caller, "  name   = var.project\n", "", 1) + "\nlocals {\n  p = var.project\n}\n", want: `does not pass the required input "name"`},
		{name: "output of a missing resource", caller: caller + "\noutput \"topic\" {\n  value = google_pubsub_topic.missing.id\n}\n", want: "google_pubsub_topic.missing is not declared"},
		{name: "output the module does not have", caller: strings.Replace(caller, "module.child.id", "module.child.name", 1), want: `module.child has no output "name"`},
		{name: "undefined local", caller: caller + "\noutput \"x\" {\n  value = local.nope\n}\n", want: "local.nope is not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "child"), 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "child", "main.tf"), callee)
			write(t, filepath.Join(dir, "main.tf"), tt.caller)
			if p := checkModule(filepath.Join(dir, "child")); len(p) > 0 {
				t.Fatalf("callee: %v", p)
			}
			got := strings.Join(checkModule(dir), "\n")
			switch {
			case tt.want == "" && got != "":
				t.Errorf("problems in a consistent module:\n%s", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("problems:\n%s\nwant one containing %q", got, tt.want)
			}
		})
	}
	t.Run("unformatted", func(t *testing.T) {
		if p := checkFormat("x.tf", []byte("variable \"a\" {\n  type = string\n  default=\"x\"\n}\n")); len(p) == 0 {
			t.Error("an unformatted file passed")
		}
		if p := checkFormat("x.tf", []byte(callee)); len(p) > 0 {
			t.Errorf("a formatted file failed: %v", p)
		}
	})
	t.Run("syntax error", func(t *testing.T) {
		if p := checkParse("x.tf", []byte("resource \"a\" {\n  name = \n}\n")); len(p) == 0 {
			t.Error("a file that does not parse passed")
		}
	})
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
