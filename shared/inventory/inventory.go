// Package inventory reads inventory.yml, the provisioner's list of Runway workloads (services
// and jobs) with their GitLab project, GCP project, regions, artifact repository and default
// notification routes.
//
// runwayctl validates it and checks manifests against it; the deploy function reads it to bind
// a topic to a workload and to know where its images may come from. Service entries are parsed
// and kept (so they are never mistaken for jobs) but only job entries are validated in full.
package inventory

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"runwayjobs.dev/shared/document"
)

// Type is a workload type.
type Type string

// Workload types.
const (
	Service Type = "service"
	Job     Type = "job"
)

//go:embed schema.json
var schemaJSON []byte

var compiled = sync.OnceValues(func() (*document.Schema, error) {
	return document.CompileSchema("https://runwayjobs.dev/schemas/inventory.json", schemaJSON)
})

// Inventory is a validated inventory.yml.
type Inventory struct {
	File      string
	Workloads []Workload
}

// Workload is one inventory entry.
type Workload struct {
	Name               string        `json:"name"`
	Type               Type          `json:"type"`
	ProjectID          int64         `json:"project_id"`
	GCPProject         string        `json:"gcp_project"`
	Regions            []string      `json:"regions"`
	ArtifactRepository string        `json:"artifact_repository,omitempty"`
	ServiceAccount     string        `json:"service_account,omitempty"`
	Owners             []string      `json:"owners,omitempty"`
	Notifications      Notifications `json:"notifications"`
}

// Notifications are a workload's default alert routes.
type Notifications struct {
	Channels []string `json:"channels,omitempty"`
}

// Load reads and validates the inventory at path.
func Load(path string) (*Inventory, error) {
	data, ps := document.ReadFile(path)
	if ps != nil {
		return nil, ps
	}
	return Parse(path, data)
}

// Parse validates data, the content of file. The error, if any, is a document.Problems.
func Parse(file string, data []byte) (*Inventory, error) {
	d, problems := document.Parse(file, data)
	if d == nil {
		return nil, problems
	}
	schema, err := compiled()
	if err != nil {
		return nil, fmt.Errorf("inventory schema: %w", err)
	}
	schemaProblems, valid := schema.Validate(d)
	problems = append(problems, schemaProblems...)
	var raw struct {
		Inventory []json.RawMessage `json:"inventory"`
	}
	inv := &Inventory{File: file}
	if b, err := json.Marshal(valid); err == nil && valid != nil {
		if err := json.Unmarshal(b, &raw); err != nil {
			problems = append(problems, document.Problem{Pos: d.Pos(""), Message: "cannot decode inventory: " + err.Error()})
		}
	}
	seen := map[string]int{}
	for i, r := range raw.Inventory {
		var w Workload
		if err := json.NewDecoder(bytes.NewReader(r)).Decode(&w); err != nil {
			continue // a wrongly typed field: the schema reported it
		}
		at := func(field string) string { return document.Pointer("inventory", fmt.Sprint(i), field) }
		if w.Name != "" {
			if first, dup := seen[w.Name]; dup {
				problems = append(problems, document.Problem{Pos: d.Pos(at("name")), Path: fmt.Sprintf("inventory[%d].name", i),
					Message: fmt.Sprintf("inventory[%d].name: workload %q is already listed at inventory[%d]", i, w.Name, first)})
			}
			seen[w.Name] = i
		}
		if w.Type == Job && w.ServiceAccount == "" && w.Name != "" {
			if id := "crun-" + w.Name; len(id) > 30 {
				problems = append(problems, document.Problem{Pos: d.Pos(at("name")), Path: fmt.Sprintf("inventory[%d].name", i),
					Message: fmt.Sprintf("inventory[%d].name: the default service account ID %q is longer than 30 characters; set service_account", i, id)})
			}
		}
		inv.Workloads = append(inv.Workloads, w)
	}
	if len(problems) > 0 {
		problems.Sort()
		return nil, problems
	}
	return inv, nil
}

// Lookup returns the workload named name, of any type.
func (inv *Inventory) Lookup(name string) (Workload, bool) {
	for _, w := range inv.Workloads {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

// Job returns the job workload named name, or an error saying, in the words the deploy and
// trigger functions refuse a request with, that it is not in the inventory or not a job.
func (inv *Inventory) Job(name string) (Workload, error) {
	w, ok := inv.Lookup(name)
	switch {
	case !ok:
		return w, fmt.Errorf("workload %q is not in the inventory", name)
	case w.Type != Job:
		return w, fmt.Errorf("workload %q is a %s, not a job", name, w.Type)
	}
	return w, nil
}

// Jobs returns the job workloads, in inventory order.
func (inv *Inventory) Jobs() []Workload {
	var out []Workload
	for _, w := range inv.Workloads {
		if w.Type == Job {
			out = append(out, w)
		}
	}
	return out
}

// RunAs returns the e-mail of the service account a job runs as: the inventory's, or the one
// the provisioner creates by convention (crun-<name>).
func (w Workload) RunAs() string {
	if w.ServiceAccount != "" {
		return w.ServiceAccount
	}
	return fmt.Sprintf("crun-%s@%s.iam.gserviceaccount.com", w.Name, w.GCPProject)
}

// DefaultRegion returns the first region of the workload.
func (w Workload) DefaultRegion() string {
	if len(w.Regions) == 0 {
		return ""
	}
	return w.Regions[0]
}

// ImageAllowed reports whether image (HOST/PROJECT/REPO/IMAGE[:TAG][@DIGEST]) comes from the
// workload's artifact repository.
func (w Workload) ImageAllowed(image string) bool {
	return w.ArtifactRepository != "" && strings.HasPrefix(image, w.ArtifactRepository+"/")
}
