package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Least privilege, checked on the Terraform source: which roles reach the trigger function and
// the GitLab pipelines in a workload project, and what the federated subject may grow to.

// tfResource is one resource block: its attributes with their source text.
type tfResource struct {
	typ, name string
	attrs     map[string]*hclsyntax.Attribute
	src       []byte
}

// text is the source of attribute name ("" if absent).
func (r tfResource) text(name string) string {
	a, ok := r.attrs[name]
	if !ok {
		return ""
	}
	rg := a.Expr.Range()
	return string(r.src[rg.Start.Byte:rg.End.Byte])
}

// strings evaluates attribute name as a list of literal strings.
func (r tfResource) strings(name string) ([]string, error) {
	a, ok := r.attrs[name]
	if !ok {
		return nil, fmt.Errorf("%s.%s has no %s", r.typ, r.name, name)
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || !v.CanIterateElements() {
		return nil, fmt.Errorf("%s.%s: %s is not a list of literal strings", r.typ, r.name, name)
	}
	var out []string
	for _, e := range v.AsValueSlice() {
		out = append(out, e.AsString())
	}
	return out, nil
}

// parseResources returns the resource blocks of a Terraform file.
func parseResources(path string, src []byte) ([]tfResource, error) {
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	var out []tfResource
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type == "resource" && len(b.Labels) == 2 {
			out = append(out, tfResource{typ: b.Labels[0], name: b.Labels[1], attrs: b.Body.Attributes, src: src})
		}
	}
	return out, nil
}

// The permissions each principal of a workload project may hold there.
var (
	// The trigger runs jobs with overrides and cancels executions (Replace), nothing more.
	triggerPermissions = []string{"run.executions.cancel", "run.executions.get", "run.executions.list", "run.jobs.get",
		"run.jobs.run", "run.jobs.runWithOverrides", "run.operations.get"}
	// Any pipeline, unprotected refs included: what runwayctl plan reads.
	ciAnyPermissions = []string{"cloudscheduler.jobs.get", "run.jobs.get"}
	// Pipelines of protected refs, besides: what run --wait and status read.
	ciProtectedPermissions = []string{"run.executions.get", "run.executions.list"}
)

// checkProjectGrants reports, for the job-project module's source, every project-level grant
// to the trigger function or to CI that is broader than the permissions above: a predefined
// role (roles/run.viewer holds every Cloud Run read, services and IAM policies included), a
// custom role with more, or the protected rights given to every pipeline.
func checkProjectGrants(path string, src []byte) []string {
	res, err := parseResources(path, src)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	roles := map[string][]string{} // custom role resource name → permissions
	for _, r := range res {
		if r.typ == "google_project_iam_custom_role" {
			perms, err := r.strings("permissions")
			if err != nil {
				problems = append(problems, err.Error())
			}
			roles[r.name] = perms
			if slices.Contains(perms, "run.jobs.runWithOverrides") && r.name != "trigger" {
				problems = append(problems, fmt.Sprintf("%s: custom role %s grants run.jobs.runWithOverrides: only the trigger's may", path, r.name))
			}
		}
	}
	var triggerGrants, ciGrants int
	for _, r := range res {
		if r.typ != "google_project_iam_member" && r.typ != "google_project_iam_binding" {
			continue
		}
		member := r.text("member") + r.text("members")
		var allowed []string
		who := ""
		switch {
		case strings.Contains(member, "function_service_accounts.trigger"):
			who, allowed = "the trigger function", triggerPermissions
			triggerGrants++
		case strings.Contains(member, "attribute.protected_project_id"):
			who, allowed = "CI of protected refs", append(slices.Clone(ciAnyPermissions), ciProtectedPermissions...)
			ciGrants++
		case strings.Contains(member, "ci_principal_prefix"):
			who, allowed = "every pipeline", ciAnyPermissions
			ciGrants++
		default:
			continue
		}
		role := r.text("role")
		name, ok := strings.CutPrefix(role, "google_project_iam_custom_role.")
		name, _ = strings.CutSuffix(name, ".id")
		perms, known := roles[name]
		if !ok || !known {
			problems = append(problems, fmt.Sprintf("%s: %s.%s grants %s to %s project-wide: only this module's custom roles may be", path, r.typ, r.name, role, who))
			continue
		}
		for _, p := range perms {
			if !slices.Contains(allowed, p) {
				problems = append(problems, fmt.Sprintf("%s: %s.%s gives %s %s (role %s)", path, r.typ, r.name, who, p, name))
			}
		}
	}
	if triggerGrants == 0 || ciGrants == 0 {
		problems = append(problems, fmt.Sprintf("%s: found %d grants to the trigger and %d to CI: the check no longer sees them", path, triggerGrants, ciGrants))
	}
	return problems
}

// boundedClaims are the GitLab ID token claims of bounded length, with their longest value:
// ids are decimal 64-bit integers, ref_type is branch or tag, ref_protected true or false.
var boundedClaims = map[string]int{
	"project_id": 19, "job_id": 19, "pipeline_id": 19, "namespace_id": 19, "user_id": 19, "ref_type": 6, "ref_protected": 5,
}

// maxSubject is Google's limit on a mapped google.subject.
const maxSubject = 127

// subjectBound returns the longest value a google.subject mapping can take, for a CEL
// expression made only of string literals and bounded claims joined with +; anything else (a
// path, a branch name, assertion.sub, a function) is an error, its length having no bound.
func subjectBound(cel string) (int, error) {
	var terms []string
	var cur strings.Builder
	inString := false
	for i := 0; i < len(cel); i++ {
		c := cel[i]
		switch {
		case inString && c == '\\' && i+1 < len(cel):
			cur.WriteByte(c)
			i++
			cur.WriteByte(cel[i])
			continue
		case c == '"':
			inString = !inString
		case c == '+' && !inString:
			terms = append(terms, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if inString {
		return 0, fmt.Errorf("unterminated string in %q", cel)
	}
	terms = append(terms, strings.TrimSpace(cur.String()))
	n := 0
	for _, term := range terms {
		if len(term) >= 2 && term[0] == '"' && term[len(term)-1] == '"' && !strings.Contains(term[1:len(term)-1], `"`) {
			n += len(term) - 2 - strings.Count(term, `\`)
			continue
		}
		claim, ok := strings.CutPrefix(term, "assertion.")
		max, bounded := boundedClaims[claim]
		if !ok || !bounded {
			return 0, fmt.Errorf("term %q has no length bound (want string literals and assertion.%s)", term, strings.Join(keysOfInt(boundedClaims), ", assertion."))
		}
		n += max
	}
	return n, nil
}

func keysOfInt(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// checkWIF reports a Workload Identity provider whose subject may exceed maxSubject, or whose
// attribute condition or project attributes are gone.
func checkWIF(path string, src []byte) []string {
	res, err := parseResources(path, src)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	found := false
	for _, r := range res {
		if r.typ != "google_iam_workload_identity_pool_provider" {
			continue
		}
		found = true
		if c := r.text("attribute_condition"); c == "" {
			problems = append(problems, fmt.Sprintf("%s: provider %s has no attribute_condition: any GitLab project could federate", path, r.name))
		}
		a, ok := r.attrs["attribute_mapping"]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: provider %s has no attribute_mapping", path, r.name))
			continue
		}
		o, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: attribute_mapping is not an object literal", path))
			continue
		}
		mapping := map[string]string{}
		for _, it := range o.Items {
			k, kd := it.KeyExpr.Value(nil)
			v, vd := it.ValueExpr.Value(nil)
			if kd.HasErrors() || vd.HasErrors() {
				problems = append(problems, fmt.Sprintf("%s: attribute_mapping entries must be literal strings", path))
				continue
			}
			mapping[k.AsString()] = v.AsString()
		}
		n, err := subjectBound(mapping["google.subject"])
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: google.subject: %v", path, err))
		case n > maxSubject:
			problems = append(problems, fmt.Sprintf("%s: google.subject may reach %d bytes, over Google's %d", path, n, maxSubject))
		}
		if mapping["attribute.project_id"] != "assertion.project_id" {
			problems = append(problems, fmt.Sprintf("%s: attribute.project_id is %q, want assertion.project_id", path, mapping["attribute.project_id"]))
		}
		if p := mapping["attribute.protected_project_id"]; !strings.Contains(p, `assertion.ref_protected == "true"`) {
			problems = append(problems, fmt.Sprintf("%s: attribute.protected_project_id %q does not depend on ref_protected", path, p))
		}
	}
	if !found {
		problems = append(problems, path+": no google_iam_workload_identity_pool_provider")
	}
	return problems
}

// checkNoStrayProjectGrants reports a project-level grant to CI or to the trigger function
// outside the job-project module, where checkProjectGrants would not see it.
func checkNoStrayProjectGrants(path string, src []byte) []string {
	res, err := parseResources(path, src)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, r := range res {
		if !strings.HasPrefix(r.typ, "google_project_iam_") || r.typ == "google_project_iam_custom_role" {
			continue
		}
		member := r.text("member") + r.text("members")
		for _, who := range []string{"ci_principal_prefix", "local.ci_", "principalSet:", "trigger"} {
			if strings.Contains(member, who) {
				problems = append(problems, fmt.Sprintf("%s: %s.%s grants a project role to %s: only modules/job-project may (checked there)", path, r.typ, r.name, member))
				break
			}
		}
	}
	return problems
}

func TestLeastPrivilege(t *testing.T) {
	jobProject := filepath.Join("modules", "job-project", "main.tf")
	for _, f := range tfFiles(t, tfRoot) {
		if f == jobProject {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range checkNoStrayProjectGrants(f, src) {
			t.Error(p)
		}
	}
	for _, c := range []struct {
		path  string
		check func(string, []byte) []string
	}{
		{path: filepath.Join("modules", "job-project", "main.tf"), check: checkProjectGrants},
		{path: filepath.Join("platform", "wif.tf"), check: checkWIF},
	} {
		src, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range c.check(c.path, src) {
			t.Error(p)
		}
	}
}

// TestLeastPrivilegeCheckersCatchMistakes plants, in copies of the real files, each broad
// grant this module removed or must never add, and expects the checks to name it.
func TestLeastPrivilegeCheckersCatchMistakes(t *testing.T) {
	project, err := os.ReadFile(filepath.Join("modules", "job-project", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	wif, err := os.ReadFile(filepath.Join("platform", "wif.tf"))
	if err != nil {
		t.Fatal(err)
	}
	replace := func(src []byte, old, new string) []byte {
		if !strings.Contains(string(src), old) {
			t.Fatalf("the planted mistake's anchor %q is not in the file", old)
		}
		return []byte(strings.Replace(string(src), old, new, 1))
	}
	const ciRead = `
resource "google_project_iam_member" "ci_read" {
  for_each = toset(var.gitlab_project_ids)
  project  = var.project
  role     = "roles/run.viewer"
  member   = "${var.ci_principal_prefix}/attribute.project_id/${each.value}"
}
`
	const subject = `"\"gitlab:project:\" + assertion.project_id + \":job:\" + assertion.job_id + \":\" + assertion.ref_type + \":protected:\" + assertion.ref_protected"`
	tests := []struct {
		name  string
		check func(string, []byte) []string
		src   []byte
		want  string // "" : no problem
	}{
		{name: "job-project as it is", check: checkProjectGrants, src: project},
		{name: "wif as it is", check: checkWIF, src: wif},
		{name: "run.viewer for every pipeline again", check: checkProjectGrants, src: append(slices.Clone(project), ciRead...), want: `grants "roles/run.viewer" to every pipeline`},
		{name: "executions for every pipeline", check: checkProjectGrants,
			src: replace(project, `role     = google_project_iam_custom_role.ci_plan.id`, `role     = google_project_iam_custom_role.ci_status.id`), want: "gives every pipeline run.executions.get"},
		{name: "a broader CI role", check: checkProjectGrants,
			src: replace(project, `    "run.jobs.get",
  ]
}

resource "google_project_iam_custom_role" "ci_status"`, `    "run.jobs.get",
    "run.jobs.list",
  ]
}

resource "google_project_iam_custom_role" "ci_status"`), want: "gives every pipeline run.jobs.list"},
		{name: "predefined role for the trigger", check: checkProjectGrants,
			src: replace(project, `  role    = google_project_iam_custom_role.trigger.id`, `  role    = "roles/run.developer"`), want: `grants "roles/run.developer" to the trigger function`},
		{name: "job writes for the trigger", check: checkProjectGrants,
			src: replace(project, `    "run.jobs.runWithOverrides",`, `    "run.jobs.runWithOverrides",
    "run.jobs.update",`), want: "gives the trigger function run.jobs.update"},
		{name: "overrides in another role", check: checkProjectGrants,
			src: replace(project, `    "run.jobs.update",
    "run.operations.get",`, `    "run.jobs.update",
    "run.jobs.runWithOverrides",
    "run.operations.get",`), want: "custom role deploy grants run.jobs.runWithOverrides"},
		{name: "GitLab's sub as the subject", check: checkWIF, src: replace(wif, subject, `"assertion.sub"`), want: `term "assertion.sub" has no length bound`},
		{name: "the branch name in the subject", check: checkWIF, src: replace(wif, subject, `"assertion.project_id + \"/\" + assertion.ref"`), want: `term "assertion.ref" has no length bound`},
		{name: "a subject over 127 bytes", check: checkWIF,
			src: replace(wif, subject, `"assertion.project_id + assertion.job_id + assertion.pipeline_id + assertion.namespace_id + assertion.user_id + \"`+strings.Repeat("x", 40)+`\""`), want: "may reach 135 bytes"},
		{name: "CI granted a project role from a workload", check: checkNoStrayProjectGrants,
			src: []byte("resource \"google_project_iam_member\" \"ci\" {\n  project = var.project\n  role    = \"roles/run.viewer\"\n  member  = local.ci_any\n}\n"), want: "only modules/job-project may"},
		{name: "the platform's own project grants", check: checkNoStrayProjectGrants, src: mustRead(t, filepath.Join("platform", "iam.tf"))},
		{name: "no attribute condition", check: checkWIF, src: replace(wif, "  attribute_condition                = local.gitlab_condition\n", ""), want: "has no attribute_condition"},
		{name: "protected attribute for every ref", check: checkWIF,
			src: replace(wif, `"assertion.ref_protected == \"true\" ? assertion.project_id : \"unprotected\""`, `"assertion.project_id"`), want: "does not depend on ref_protected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(tt.check("x.tf", tt.src), "\n")
			switch {
			case tt.want == "" && got != "":
				t.Errorf("problems in the real file:\n%s", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("problems:\n%s\nwant one containing %q", got, tt.want)
			}
		})
	}
	if n, err := subjectBound(`"gitlab:project:" + assertion.project_id + ":job:" + assertion.job_id`); err != nil || n != 15+19+5+19 {
		t.Errorf("subjectBound = %d, %v; want 58", n, err)
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
