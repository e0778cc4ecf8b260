package inventory

import (
	"errors"
	"strings"
	"testing"

	"runwayjobs.dev/shared/document"
)

const sample = `inventory:
  - name: web
    type: service
    project_id: 1
    gcp_project: runway-web-prod
    regions: [us-east1]
    groups: [gitlab-org/web]
  - name: nightly-compaction
    type: job
    project_id: 2
    gcp_project: runway-jobs-prod
    regions: [us-east1, europe-west1]
    artifact_repository: us-east1-docker.pkg.dev/runway-jobs-prod/nightly-compaction
    notifications:
      channels: [slack-db]
`

func TestParse(t *testing.T) {
	inv, err := Parse("inventory.yml", []byte(sample))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(inv.Workloads) != 2 || len(inv.Jobs()) != 1 {
		t.Fatalf("workloads = %+v, want a service and a job", inv.Workloads)
	}
	svc, ok := inv.Lookup("web")
	if !ok || svc.Type != Service {
		t.Errorf("Lookup(web) = %+v, %v; want the service, kept as a service", svc, ok)
	}
	job, _ := inv.Lookup("nightly-compaction")
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "run as", got: job.RunAs(), want: "crun-nightly-compaction@runway-jobs-prod.iam.gserviceaccount.com"},
		{name: "default region", got: job.DefaultRegion(), want: "us-east1"},
		{name: "own image", got: job.ImageAllowed("us-east1-docker.pkg.dev/runway-jobs-prod/nightly-compaction/app@sha256:00"), want: true},
		{name: "image from a lookalike repository", got: job.ImageAllowed("us-east1-docker.pkg.dev/runway-jobs-prod/nightly-compaction-evil/app:1"), want: false},
		{name: "foreign image", got: job.ImageAllowed("docker.io/library/alpine:3"), want: false},
		{name: "service has no repository", got: svc.ImageAllowed("us-east1-docker.pkg.dev/x/y/z"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{name: "unknown field in a job, with suggestion", doc: strings.Replace(sample, "    notifications:", "    artifact_repo: x\n    notifications:", 1),
			want: []string{`inventory.yml:14:5: unknown field "inventory[1].artifact_repo"; did you mean "artifact_repository"?`}},
		{name: "service fields are not a job's", doc: sample + "    groups: [x]\n",
			want: []string{`inventory.yml:16:5: unknown field "inventory[1].groups"`}},
		{name: "job without repository", doc: strings.Replace(sample, "    artifact_repository: us-east1-docker.pkg.dev/runway-jobs-prod/nightly-compaction\n", "", 1),
			want: []string{`inventory.yml:8:5: inventory[1]: missing required field "artifact_repository"`}},
		{name: "unknown type", doc: strings.Replace(sample, "type: job", "type: cronjob", 1),
			want: []string{`inventory.yml:9:11: inventory[1].type: must be one of "service", "job"; got "cronjob"`}},
		{name: "duplicate workload", doc: sample + strings.TrimPrefix(sample, "inventory:\n")[0:len("  - name: web\n    type: service\n    project_id: 1\n    gcp_project: runway-web-prod\n    regions: [us-east1]\n")],
			want: []string{`inventory.yml:16:11: inventory[2].name: workload "web" is already listed at inventory[0]`}},
		{name: "default service account too long", doc: strings.ReplaceAll(sample, "nightly-compaction", "a-very-long-nightly-compaction"),
			want: []string{`inventory.yml:8:11: inventory[1].name: the default service account ID "crun-a-very-long-nightly-compaction" is longer than 30 characters; set service_account`}},
		{name: "project id type", doc: strings.Replace(sample, "project_id: 2", "project_id: two", 1),
			want: []string{`inventory.yml:10:17: inventory[1].project_id: must be an integer, not a string`}},
		{name: "no regions", doc: strings.Replace(sample, "regions: [us-east1, europe-west1]", "regions: []", 1),
			want: []string{`inventory.yml:12:14: inventory[1].regions: must have at least 1 entries`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("inventory.yml", []byte(tt.doc))
			var ps document.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse = %v, want problems", err)
			}
			if len(ps) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(ps), len(tt.want), ps.Error())
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(ps[i].String(), want) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, ps[i], want)
				}
			}
		})
	}
}

func TestExampleInventory(t *testing.T) {
	inv, err := Load("../../examples/inventory.yml")
	if err != nil {
		t.Fatalf("examples/inventory.yml: %v", err)
	}
	if len(inv.Jobs()) == 0 || len(inv.Jobs()) == len(inv.Workloads) {
		t.Errorf("example inventory should hold jobs and services: %+v", inv.Workloads)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("inventory:\n  - {name: a, type: job}\n"))
	f.Add([]byte("inventory: [1, 'x', null]\n"))
	// Adversarial shapes (issue 13), each just over a bound of document.Scan.
	f.Add([]byte("spec: " + strings.Repeat("[", 64) + "\n"))
	f.Add([]byte(strings.Repeat("k: v\n", 501)))
	f.Add([]byte("a: &a x\nb: [" + strings.Repeat("*a, ", 1000) + "*a]\n"))
	f.Add([]byte("a: |\n  [[[\n---\nb: " + strings.Repeat("x", 65<<10) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz.yml", data)
		if (inv == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one", inv, err)
		}
		if inv != nil {
			for _, w := range inv.Jobs() {
				if w.ArtifactRepository == "" || w.DefaultRegion() == "" {
					t.Fatalf("a valid job without repository or region: %+v", w)
				}
			}
		}
	})
}
