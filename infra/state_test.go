package infra

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// stateGrantDrift reports where state.tf's local.state_grants and platform.StateGrants (what
// the functions enforce on their stores) differ.
func stateGrantDrift(path string, src []byte, want map[string]state.Grant) []string {
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return []string{diags.Error()}
	}
	var expr hclsyntax.Expression
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if a, ok := b.Body.Attributes["state_grants"]; ok && b.Type == "locals" {
			expr = a.Expr
		}
	}
	if expr == nil {
		return []string{path + ": no local.state_grants"}
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() || !v.Type().IsObjectType() {
		return []string{path + ": local.state_grants is not an object of literal lists"}
	}
	got := map[string]state.Grant{}
	for fn, g := range v.AsValueMap() {
		kinds := g.AsValueMap()
		list := func(kind string) []string {
			var out []string
			if l, ok := kinds[kind]; ok && !l.IsNull() {
				for _, e := range l.AsValueSlice() {
					out = append(out, e.AsString())
				}
			}
			slices.Sort(out)
			return out
		}
		got[fn] = state.Grant{Write: list("write"), Prune: list("prune")}
	}
	var problems []string
	fns := slices.Collect(maps.Keys(got))
	for fn := range want {
		if _, ok := got[fn]; !ok {
			fns = append(fns, fn)
		}
	}
	slices.Sort(fns)
	for _, fn := range fns {
		g, w := got[fn], want[fn]
		for _, c := range []struct {
			kind      string
			got, want []string
		}{
			{"write", g.Write, sorted(w.Write)},
			{"prune", g.Prune, sorted(w.Prune)},
		} {
			if !slices.Equal(c.got, c.want) {
				problems = append(problems, fmt.Sprintf("%s: local.state_grants.%s.%s is %q; platform.StateGrants[%q] says %q", path, fn, c.kind, c.got, fn, c.want))
			}
		}
	}
	return problems
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestStateGrantsMatchCode checks that the IAM grants on the state bucket are what the functions
// may do (platform.StateGrants, enforced on their stores, so their tests fail on a key outside
// it), that the bindings are built from them, and that CI may list the run records runwayctl
// status and doctor list.
func TestStateGrantsMatchCode(t *testing.T) {
	path := filepath.Join("platform", "state.tf")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stateGrantDrift(path, src, platform.StateGrants) {
		t.Error(p)
	}
	// The bucket's own age limit applies to the records the monitor prunes (RetainedPrefixes).
	var retained []string
	for _, p := range platform.RetainedPrefixes {
		retained = append(retained, `"${var.state_prefix}/`+p+`"`)
	}
	for _, want := range []string{
		`matches_prefix = [` + strings.Join(retained, ", ") + `]`,
		`expression = each.value`,
		`"api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${var.state_prefix}/${p}\")"`,
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("%s: no %s", path, want)
		}
	}
	ws, err := os.ReadFile(filepath.Join("modules", "job-workload", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	// What runwayctl reads from CI (doctor probes the same keys): the workload's deploy and run
	// records, and the list of its run records.
	for _, want := range []string{
		`resource.name.startsWith(\"${local.object_prefix}` + platform.DeployRecordPrefix + `${var.name}/\")`,
		`resource.name.startsWith(\"${local.object_prefix}` + platform.RunRecordPrefix + `${var.name}/\")`,
		`api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${var.state_prefix}/` + platform.RunRecordPrefix + `${var.name}/\")`,
	} {
		if !strings.Contains(string(ws), want) {
			t.Errorf("modules/job-workload/main.tf: CI's record grant (ci_records) has no %s", want)
		}
	}
}

func TestStateGrantDriftCatchesMistakes(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("platform", "state.tf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{name: "a prefix the trigger writes is not granted", old: `, "trigger-windows/"]`, new: `]`, want: `trigger.write`},
		{name: "a prefix granted that no function uses", old: `"deploy-intents/"]`, new: `"deploy-intents/", "extra/"]`, want: `deploy.write`},
		{name: "the monitor may not prune", old: `prune = ["deploys/", "runs/"]`, new: `prune = []`, want: `monitor.prune`},
		{name: "a function without a grant", old: "    deploy  = { write = [\"deploys/\", \"deploy-intents/\"], prune = [] }\n", new: "", want: `deploy.write`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mutated := strings.Replace(string(src), tc.old, tc.new, 1)
			if mutated == string(src) {
				t.Fatalf("state.tf has no %q", tc.old)
			}
			got := strings.Join(stateGrantDrift("state.tf", []byte(mutated), platform.StateGrants), "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("drift %q, want it to name %s", got, tc.want)
			}
		})
	}
	if p := stateGrantDrift("state.tf", src, platform.StateGrants); len(p) != 0 {
		t.Errorf("unmutated: %q", p)
	}
}
