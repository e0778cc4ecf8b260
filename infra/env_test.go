package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"runwayjobs.dev/functions/deploy"
	"runwayjobs.dev/functions/monitor"
	"runwayjobs.dev/functions/trigger"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
)

// readSettings returns the environment variables a function's configuration reads, learnt by
// calling it with a lookup that records every key.
func readSettings(t *testing.T, config func(lookup func(string) (string, bool)) error) []string {
	t.Helper()
	seen := map[string]bool{}
	_ = config(func(k string) (string, bool) { seen[k] = true; return "", false })
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// functionSettings is what each function reads, through the code itself.
func functionSettings(t *testing.T) map[string][]string {
	return map[string][]string{
		"deploy": readSettings(t, func(l func(string) (string, bool)) error { _, err := deploy.ConfigFromEnv(l); return err }),
		"trigger": readSettings(t, func(l func(string) (string, bool)) error {
			_, err := trigger.ConfigFromEnv(l)
			return err
		}),
		"monitor": readSettings(t, func(l func(string) (string, bool)) error { _, err := monitor.ConfigFromEnv(l); return err }),
	}
}

// platformLocals returns the attributes of the locals blocks of infra/platform.
func platformLocals(t *testing.T) map[string]*hclsyntax.Attribute {
	t.Helper()
	attrs := map[string]*hclsyntax.Attribute{}
	paths, _ := filepath.Glob(filepath.Join("platform", "*.tf"))
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type == "locals" {
				for name, a := range b.Body.Attributes {
					attrs[name] = a
				}
			}
		}
	}
	return attrs
}

// objectKeys returns an object constructor's items by literal key (identifiers or strings).
func objectKeys(t *testing.T, e hclsyntax.Expression) map[string]hclsyntax.Expression {
	t.Helper()
	o, ok := e.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("%s: want an object literal", e.Range())
	}
	out := map[string]hclsyntax.Expression{}
	for _, it := range o.Items {
		k := hcl.ExprAsKeyword(it.KeyExpr)
		if k == "" {
			v, diags := it.KeyExpr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("%s: key is not a literal", it.KeyExpr.Range())
			}
			k = v.AsString()
		}
		out[k] = it.ValueExpr
	}
	return out
}

// settingsSet returns the environment each function gets from infra/platform (local.environment).
func settingsSet(t *testing.T) map[string][]string {
	env, ok := platformLocals(t)["environment"]
	if !ok {
		t.Fatal("infra/platform: no local.environment")
	}
	out := map[string][]string{}
	for fn, e := range objectKeys(t, env.Expr) {
		for k := range objectKeys(t, e) {
			out[fn] = append(out[fn], k)
		}
		sort.Strings(out[fn])
	}
	return out
}

// envDrift lists the differences between what a function reads and what infra sets for it.
// RUNWAY_EMULATOR_HOST is read and must never be set.
func envDrift(fn string, read, set []string) []string {
	var out []string
	for _, k := range read {
		if k != gcp.EmulatorHostEnv && !slices.Contains(set, k) {
			out = append(out, fmt.Sprintf("%s reads %s, which infra/platform does not set", fn, k))
		}
	}
	for _, k := range set {
		switch {
		case k == gcp.EmulatorHostEnv:
			out = append(out, fmt.Sprintf("infra/platform sets %s for %s: production must talk to Google Cloud", k, fn))
		case !slices.Contains(read, k):
			out = append(out, fmt.Sprintf("infra/platform sets %s for %s, which it never reads", k, fn))
		}
	}
	return out
}

func TestInfraSettingsMatchFunctions(t *testing.T) {
	read, set := functionSettings(t), settingsSet(t)
	if len(set) != len(read) {
		t.Errorf("infra/platform configures %v, want the functions %v", keysOf(set), keysOf(read))
	}
	for fn, keys := range read {
		if !slices.Contains(keys, platform.EnvInventory) {
			t.Fatalf("%s: the recording lookup saw %v: is ConfigFromEnv still reading through lookup?", fn, keys)
		}
		for _, p := range envDrift(fn, keys, set[fn]) {
			t.Error(p)
		}
	}
}

func TestInfraEnvDriftCatchesMistakes(t *testing.T) {
	read := []string{"RUNWAY_EMULATOR_HOST", "RUNWAY_INVENTORY", "RUNWAY_STATE"}
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{name: "exact", set: []string{"RUNWAY_INVENTORY", "RUNWAY_STATE"}},
		{name: "missing", set: []string{"RUNWAY_INVENTORY"}, want: "reads RUNWAY_STATE, which infra/platform does not set"},
		{name: "extra", set: []string{"RUNWAY_INVENTORY", "RUNWAY_STATE", "RUNWAY_STAET"}, want: "sets RUNWAY_STAET for f, which it never reads"},
		{name: "emulator", set: []string{"RUNWAY_INVENTORY", "RUNWAY_STATE", "RUNWAY_EMULATOR_HOST"}, want: "production must talk to Google Cloud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(envDrift("f", read, tt.set), "\n")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("drift %q, want %q", got, tt.want)
			}
		})
	}
}

// TestInfraNamesMatchCode checks the names the Terraform gives what the code looks up by name:
// entry points, topics, the runtime account, the push endpoint's topic path.
func TestInfraNamesMatchCode(t *testing.T) {
	fns := objectKeys(t, platformLocals(t)["functions"].Expr)
	for fn, target := range map[string]string{"deploy": deploy.FunctionName, "trigger": trigger.FunctionName, "monitor": monitor.FunctionName} {
		e, ok := fns[fn]
		if !ok {
			t.Errorf("local.functions has no %s", fn)
			continue
		}
		if got := literal(t, objectKeys(t, e)["entry_point"]); got != target {
			t.Errorf("%s entry_point %q, want %q (the registered FUNCTION_TARGET)", fn, got, target)
		}
	}
	src := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	w := inventory.Workload{Name: "${var.name}", GCPProject: "${var.project}"}
	for _, c := range []struct{ file, want string }{
		{"modules/job-workload/main.tf", `name    = "` + platform.DeployTopic("${var.name}") + `"`},
		{"modules/job-workload/main.tf", `name    = "` + platform.TriggerTopic("${var.name}") + `"`},
		{"modules/job-workload/main.tf", `? "` + strings.TrimSuffix(w.RunAs(), "@${var.project}.iam.gserviceaccount.com") + `" :`},
		{"modules/job-project/main.tf", `name    = "` + platform.ArtifactTopic + `"`},
		{"platform/pubsub.tf", `name    = "` + platform.MonitorTickTopic + `"`},
		{"platform/pubsub.tf", `name    = "` + platform.AlertsTopic + `"`},
		{"modules/function-subscription/main.tf", `push_endpoint = "${var.function_uri}/` + platform.TopicPath("${var.topic_project}", "${var.topic}") + `"`},
		// The delivery policy runwayctl dev copies (shared/platform).
		{"modules/function-subscription/main.tf", fmt.Sprintf(`minimum_backoff = "%.0fs"`, platform.PushMinBackoff.Seconds())},
		{"modules/function-subscription/main.tf", fmt.Sprintf(`maximum_backoff = "%.0fs"`, platform.PushMaxBackoff.Seconds())},
		{"modules/function-subscription/variables.tf", fmt.Sprintf("default     = %.0f", platform.PushAckDeadline.Seconds())},
		{"modules/function-subscription/variables.tf", fmt.Sprintf("default     = %d", platform.MaxDeliveryAttempts)},
		{"modules/job-workload/variables.tf", fmt.Sprintf("default     = %d", platform.MaxDeliveryAttempts)},
		{"modules/job-project/variables.tf", fmt.Sprintf("default     = %d", platform.MaxDeliveryAttempts)},
		{"platform/pubsub.tf", fmt.Sprintf("max_delivery_attempts = %d", platform.TickMaxDeliveryAttempts)},
		// The buildpack links the functions as the e2e tests and scripts/check-function do.
		{"platform/functions.tf", `environment_variables = { GOOGLE_GOLDFLAGS = "` + platform.FunctionLDFlags + `" }`},
		{"../scripts/check-function", `go build -ldflags="` + platform.FunctionLDFlags + `" ./...`},
		{"platform/pubsub.tf", `name     = "` + platform.DeadLetterTopic("${each.key}") + `"`},
		{"platform/pubsub.tf", `name                       = "` + platform.DeadLetterHoldSubscription("${each.key}") + `"`},
	} {
		if !strings.Contains(src(c.file), c.want) {
			t.Errorf("%s: no %s", c.file, c.want)
		}
	}
	if !strings.Contains(src("platform/functions.tf"), "environment_variables          = local.environment[each.key]") {
		t.Error("platform/functions.tf: the functions do not get local.environment")
	}
	for _, f := range tfFiles(t, tfRoot) {
		if strings.Contains(src(f), gcp.EmulatorHostEnv) {
			t.Errorf("%s mentions %s", f, gcp.EmulatorHostEnv)
		}
	}
}

func literal(t *testing.T, e hclsyntax.Expression) string {
	t.Helper()
	if e == nil {
		return ""
	}
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s: not a literal", e.Range())
	}
	return v.AsString()
}

func keysOf(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
