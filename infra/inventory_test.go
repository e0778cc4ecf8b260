package infra

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"runwayjobs.dev/shared/inventory"
)

// moduleRegex returns the regex a job-workload variable's validation applies to it.
func moduleRegex(t *testing.T, variable string) *regexp.Regexp {
	t.Helper()
	b, err := os.ReadFile("modules/job-workload/variables.tf")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`regex\("((?:[^"\\]|\\.)+)", var\.` + variable + `\)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("job-workload: no regex validation of %s", variable)
	}
	return regexp.MustCompile(strings.ReplaceAll(string(m[1]), `\\`, `\`))
}

// workloadProblems reports what in a job entry the job-workload module would refuse at plan
// time (validations, the repository's project precondition).
func workloadProblems(w inventory.Workload, name, repo *regexp.Regexp) []string {
	var out []string
	if !name.MatchString(w.Name) {
		out = append(out, fmt.Sprintf("%s: name does not match %s", w.Name, name))
	}
	if !repo.MatchString(w.ArtifactRepository) {
		out = append(out, fmt.Sprintf("%s: artifact_repository %q does not match %s", w.Name, w.ArtifactRepository, repo))
	} else if p := strings.Split(w.ArtifactRepository, "/")[1]; p != w.GCPProject {
		out = append(out, fmt.Sprintf("%s: artifact_repository is in %s, not in the workload's project %s", w.Name, p, w.GCPProject))
	}
	return out
}

// TestInventoryFitsModules applies the job-workload module's rules to the example inventory,
// which the platform root instantiates one module per job from.
func TestInventoryFitsModules(t *testing.T) {
	inv, err := inventory.Load(exampleInv)
	if err != nil {
		t.Fatal(err)
	}
	name, repo := moduleRegex(t, "name"), moduleRegex(t, "artifact_repository")
	for _, w := range inv.Jobs() {
		for _, p := range workloadProblems(w, name, repo) {
			t.Error(p)
		}
	}
	bad := inventory.Workload{Name: "x1", GCPProject: "a", ArtifactRepository: "us-east1-docker.pkg.dev/b/x1"}
	if p := workloadProblems(bad, name, repo); len(p) != 1 || !strings.Contains(p[0], "not in the workload's project") {
		t.Errorf("a repository in another project: %v", p)
	}
	bad = inventory.Workload{Name: "X", GCPProject: "a", ArtifactRepository: "gcr.io/a/x"}
	if p := workloadProblems(bad, name, repo); len(p) != 2 {
		t.Errorf("a bad name and repository: %v", p)
	}
}
