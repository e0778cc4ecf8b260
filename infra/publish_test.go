package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// tfBlock is a resource or output of a root: its attributes' source text, nested blocks'
// attributes as "block.attr".
type tfBlock struct {
	kind, typ, name string
	attrs           map[string]string
}

func tfBlocks(files map[string][]byte) ([]tfBlock, []string) {
	var out []tfBlock
	var problems []string
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		src := files[n]
		f, diags := hclsyntax.ParseConfig(src, n, hcl.InitialPos)
		if diags.HasErrors() {
			problems = append(problems, diags.Error())
			continue
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "resource" && b.Type != "output" {
				continue
			}
			tb := tfBlock{kind: b.Type, typ: b.Labels[0], attrs: map[string]string{}}
			if len(b.Labels) > 1 {
				tb.name = b.Labels[1]
			}
			for k, a := range b.Body.Attributes {
				tb.attrs[k] = string(a.Expr.Range().SliceBytes(src))
			}
			for _, nb := range b.Body.Blocks {
				for k, a := range nb.Body.Attributes {
					tb.attrs[nb.Type+"."+k] = string(a.Expr.Range().SliceBytes(src))
				}
			}
			out = append(out, tb)
		}
	}
	return out, problems
}

// checkRunwayctlPlatform reports what the runwayctl image would miss from the platform root:
// the applied inventory published as an object (CI's RUNWAY_INVENTORY; the image carries none),
// the job workloads' GitLab projects allowed to read exactly that object, an output naming it,
// and the Artifact Registry repository cloudbuild.yaml pushes the image to.
func checkRunwayctlPlatform(files map[string][]byte, imageRepository string) []string {
	blocks, problems := tfBlocks(files)
	var object *tfBlock
	for i, b := range blocks {
		if b.kind == "resource" && b.typ == "google_storage_bucket_object" &&
			(strings.Contains(b.attrs["content"], "var.inventory_file") || strings.Contains(b.attrs["source"], "var.inventory_file")) {
			object = &blocks[i]
		}
	}
	if object == nil {
		return append(problems, "no google_storage_bucket_object publishes var.inventory_file")
	}
	ref := "google_storage_bucket_object." + object.name
	objName := object.attrs["name"] // as the condition's template spells it
	if unquoted, ok := strings.CutPrefix(objName, `"`); ok {
		objName = strings.TrimSuffix(unquoted, `"`)
	} else {
		objName = "${" + objName + "}"
	}
	readable, output := false, false
	for _, b := range blocks {
		switch {
		case b.kind == "resource" && b.typ == "google_storage_bucket_iam_member":
			cond := b.attrs["condition.expression"]
			if b.attrs["bucket"] == object.attrs["bucket"] && b.attrs["role"] == `"roles/storage.objectViewer"` &&
				strings.Contains(b.attrs["member"], "local.ci_principal_prefix}/attribute.project_id/") &&
				strings.Contains(cond, "resource.name == ") && strings.Contains(cond, "/objects/"+objName+`\"`) {
				readable = true
			}
		case b.kind == "output" && strings.Contains(b.attrs["value"], ref+".name"):
			output = true
		}
	}
	if !readable {
		problems = append(problems, fmt.Sprintf("%s: no objectViewer binding of the CI principals (attribute.project_id) on exactly that object", ref))
	}
	if !output {
		problems = append(problems, fmt.Sprintf("no output names %s (CI's RUNWAY_INVENTORY)", ref))
	}
	// _IMAGE_REPOSITORY is HOST/PROJECT/REPOSITORY/runwayctl: REPOSITORY is the platform's.
	parts := strings.Split(imageRepository, "/")
	found := false
	for _, b := range blocks {
		if b.kind == "resource" && b.typ == "google_artifact_registry_repository" && len(parts) == 4 &&
			b.attrs["repository_id"] == `"`+parts[2]+`"` && b.attrs["format"] == `"DOCKER"` {
			found = true
		}
	}
	if !found {
		problems = append(problems, fmt.Sprintf("cloudbuild.yaml pushes the image to %s: no DOCKER repository %q in infra/platform", imageRepository, parts[min(2, len(parts)-1)]))
	}
	return problems
}

func platformFiles(t *testing.T) map[string][]byte {
	paths, err := filepath.Glob("platform/*.tf")
	if err != nil || len(paths) == 0 {
		t.Fatalf("platform/*.tf: %v", err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		if files[p], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func imageRepository(t *testing.T) string {
	src, err := os.ReadFile(cloudbuildFile)
	if err != nil {
		t.Fatal(err)
	}
	var cb cloudBuild
	if err := yaml.Unmarshal(src, &cb); err != nil {
		t.Fatal(err)
	}
	r := cb.Substitutions["_IMAGE_REPOSITORY"]
	if r == "" {
		t.Fatal("cloudbuild.yaml: no _IMAGE_REPOSITORY")
	}
	return r
}

func TestRunwayctlPlatform(t *testing.T) {
	for _, p := range checkRunwayctlPlatform(platformFiles(t), imageRepository(t)) {
		t.Error(p)
	}
}

func TestRunwayctlPlatformCheckerCatchesMistakes(t *testing.T) {
	const file = "platform/runwayctl.tf"
	tests := []struct {
		name     string
		old, new string
		repo     string // default cloudbuild.yaml's
		want     string
	}{
		{name: "not published", old: "file(var.inventory_file)", new: `"{}"`, want: "no google_storage_bucket_object publishes"},
		{name: "prefix, not the object", old: `resource.name == \"`, new: `resource.name.startsWith(\"`, want: "no objectViewer binding"},
		{name: "another object", old: `objects/${local.inventory_object}\"`, new: `objects/${var.state_prefix}/\"`, want: "no objectViewer binding"},
		{name: "protected refs only", old: "/attribute.project_id/", new: "/attribute.protected_project_id/", want: "no objectViewer binding"},
		{name: "writer role", old: `role     = "roles/storage.objectViewer"`, new: `role     = "roles/storage.objectUser"`, want: "no objectViewer binding"},
		{name: "no output", old: "google_storage_bucket_object.inventory.name", new: "local.inventory_object", want: "no output names"},
		{name: "repository renamed", old: `repository_id = "runway"`, new: `repository_id = "images"`, want: `no DOCKER repository "runway"`},
		{name: "cloudbuild pushes elsewhere", repo: "us-docker.pkg.dev/p/other/runwayctl", want: `no DOCKER repository "other"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := platformFiles(t)
			if tt.old != "" {
				src := files[file]
				if src == nil {
					src = files[filepath.FromSlash(file)]
				}
				if !strings.Contains(string(src), tt.old) && !strings.Contains(string(files["platform/outputs.tf"]), tt.old) {
					t.Fatalf("no %q to change", tt.old)
				}
				files[file] = []byte(strings.Replace(string(src), tt.old, tt.new, 1))
				files["platform/outputs.tf"] = []byte(strings.Replace(string(files["platform/outputs.tf"]), tt.old, tt.new, 1))
			}
			repo := tt.repo
			if repo == "" {
				repo = imageRepository(t)
			}
			got := strings.Join(checkRunwayctlPlatform(files, repo), "\n")
			if !strings.Contains(got, tt.want) {
				t.Errorf("problems:\n%s\nwant one containing %q", got, tt.want)
			}
		})
	}
}
