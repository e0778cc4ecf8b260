package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
)

func newValidateCmd(e *cmdEnv) *cobra.Command {
	var invPath string
	var format *formatFlag
	cmd := &cobra.Command{
		Use:   "validate [FILE|DIR|DIR/...]...",
		Short: "Validate RunwayJob manifests (and inventories)",
		Long: `Validate RunwayJob manifests. With no argument: .runway/runway.yml and every overlay
.runway/<workload>/runway.yml. A directory means the repository there; DIR/... means every
repository below DIR. Files named inventory.yml are validated as inventories.

Each valid file prints one line: the workload, on demand or the schedule in words, and the next
three run times (UTC, from the platform's clock: the emulator's when RUNWAY_EMULATOR_HOST is set). Every problem prints as FILE:LINE:COL: message. Exit status 1 when any
file is invalid.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := expand(args)
			if err != nil {
				return err
			}
			var inv *inventory.Inventory
			var results []result
			now := e.now()
			if invPath != "" {
				r := validateInventory(invPath)
				inv = r.inventory
				results = append(results, r)
				files = without(files, invPath)
			}
			for _, f := range files {
				if isInventory(f) {
					results = append(results, validateInventory(f))
					continue
				}
				results = append(results, validateManifest(f, inv, now))
			}
			invalid := report(e.out, e.errOut, format.value, results)
			if invalid > 0 {
				return exitError{code: exitFailed}
			}
			return nil
		},
	}
	format = addFormatFlag(cmd, "output format: text or json", "text", "json")
	cmd.Flags().StringVar(&invPath, "inventory", "", "inventory.yml to check each workload against (listed as a job, region, image repository)")
	return cmd
}

// result is the outcome for one file.
type result struct {
	File        string            `json:"file"`
	Kind        string            `json:"kind"`
	Valid       bool              `json:"valid"`
	Workload    string            `json:"workload,omitempty"`
	Schedule    string            `json:"schedule,omitempty"`
	TimeZone    string            `json:"time_zone,omitempty"`
	Description string            `json:"description,omitempty"`
	Next        []time.Time       `json:"next,omitempty"`
	Summary     string            `json:"summary,omitempty"`
	Problems    []problemJSON     `json:"problems,omitempty"`
	problems    document.Problems // for text output
	inventory   *inventory.Inventory
}

type problemJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func (r *result) fail(err error) {
	var ps document.Problems
	if !errors.As(err, &ps) {
		ps = document.Problems{{Pos: document.Pos{File: r.File}, Message: err.Error()}}
	}
	r.Valid = false
	r.problems = append(r.problems, ps...)
	for _, p := range ps {
		r.Problems = append(r.Problems, problemJSON{File: p.Pos.File, Line: p.Pos.Line, Column: p.Pos.Col, Path: p.Path, Message: p.Message})
	}
}

func validateInventory(path string) result {
	r := result{File: path, Kind: "inventory", Valid: true}
	inv, err := inventory.Load(path)
	if err != nil {
		r.fail(err)
		return r
	}
	r.inventory = inv
	jobs := len(inv.Jobs())
	r.Summary = fmt.Sprintf("%s (%s, %s)", count(len(inv.Workloads), "workload"), count(jobs, "job"), count(len(inv.Workloads)-jobs, "service"))
	return r
}

func validateManifest(path string, inv *inventory.Inventory, now time.Time) result {
	r := result{File: path, Kind: manifest.Kind, Valid: true}
	job, err := manifest.Load(path)
	if err != nil {
		r.fail(err)
		return r
	}
	if inv != nil {
		if ps := againstInventory(job, inv); len(ps) > 0 {
			r.fail(ps)
			return r
		}
	}
	r.Workload = job.Metadata.Name
	if job.Schedule == nil {
		r.Description = "on demand"
		return r
	}
	r.Schedule = job.Schedule.Expr()
	r.TimeZone = job.Schedule.TimeZone()
	r.Description = job.Schedule.Describe()
	r.Next = job.Schedule.NextN(now, 3)
	return r
}

// againstInventory checks what only the inventory knows: the workload is a job there, its
// region is one of the workload's, its image comes from the workload's repository.
func againstInventory(job *manifest.Job, inv *inventory.Inventory) document.Problems {
	var ps document.Problems
	add := func(pointer, format string, args ...any) {
		ps = append(ps, document.Problem{Pos: job.Pos(pointer), Path: document.PathOf(pointer), Pointer: pointer, Message: fmt.Sprintf(format, args...)})
	}
	w, ok := inv.Lookup(job.Metadata.Name)
	switch {
	case !ok:
		add("/metadata/name", "metadata.name: workload %q is not in the inventory %s", job.Metadata.Name, inv.File)
		return ps
	case w.Type != inventory.Job:
		add("/metadata/name", "metadata.name: workload %q is a %s in the inventory %s, not a job", job.Metadata.Name, w.Type, inv.File)
		return ps
	}
	if r := job.Spec.Region; r != "" && !contains(w.Regions, r) {
		add("/spec/region", "spec.region: %q is not one of the workload's regions %v", r, w.Regions)
	}
	if img := job.Spec.Image; img != "" && !w.ImageAllowed(img) {
		add("/spec/image", "spec.image: %q is not in the workload's artifact repository %s", img, w.ArtifactRepository)
	}
	ps.Sort()
	return ps
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func report(stdout, stderr io.Writer, format string, results []result) (invalid int) {
	for _, r := range results {
		if !r.Valid {
			invalid++
		}
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Valid bool     `json:"valid"`
			Files []result `json:"files"`
		}{invalid == 0, results})
		return invalid
	}
	printed := map[string]bool{} // a base file's problem shows once, not once per overlay
	for _, r := range results {
		switch {
		case !r.Valid:
			for _, p := range r.problems {
				if line := p.String(); !printed[line] {
					printed[line] = true
					fmt.Fprintln(stderr, line)
				}
			}
		case r.Kind == "inventory":
			fmt.Fprintf(stdout, "%s: inventory: %s\n", r.File, r.Summary)
		case r.Schedule == "":
			fmt.Fprintf(stdout, "%s: %s: on demand\n", r.File, r.Workload)
		default:
			next := make([]string, len(r.Next))
			for i, t := range r.Next {
				next[i] = t.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s: %s: %s (%s); next %s\n", r.File, r.Workload, r.Description, r.Schedule, strings.Join(next, ", "))
		}
	}
	if invalid > 0 {
		fmt.Fprintf(stderr, "%d of %d files invalid\n", invalid, len(results))
	}
	return invalid
}

// expand turns the arguments into files: no argument means the repository in the current
// directory; DIR means the repository at DIR; DIR/... every repository (and inventory.yml)
// below DIR.
func expand(args []string) ([]string, error) {
	if len(args) == 0 {
		args = []string{"."}
	}
	var files []string
	for _, a := range args {
		if dir, ok := strings.CutSuffix(a, "/..."); ok || a == "..." {
			if a == "..." {
				dir = "."
			}
			found, err := walk(dir)
			if err != nil {
				return nil, err
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("%s: no .runway/runway.yml or inventory.yml below %s", a, dir)
			}
			files = append(files, found...)
			continue
		}
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			found, err := manifest.Discover(a)
			if err != nil {
				return nil, fmt.Errorf("%s: no .runway/runway.yml in this directory (pass a file, or DIR/... to search below it)", a)
			}
			files = append(files, found...)
			continue
		}
		files = append(files, a) // a missing file is reported as a problem of that file
	}
	return files, nil
}

func walk(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "vendor"):
			return filepath.SkipDir
		case d.IsDir() && d.Name() == ".runway":
			found, err := manifest.Discover(filepath.Dir(path))
			if err == nil {
				files = append(files, found...)
			}
			return filepath.SkipDir
		case !d.IsDir() && isInventory(path):
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", dir, err)
	}
	// Inventories first: they are what manifests are checked against.
	sort.SliceStable(files, func(i, j int) bool { return isInventory(files[i]) && !isInventory(files[j]) })
	return files, nil
}

func isInventory(path string) bool { return filepath.Base(path) == "inventory.yml" }

func without(files []string, drop string) []string {
	var out []string
	for _, f := range files {
		if filepath.Clean(f) != filepath.Clean(drop) {
			out = append(out, f)
		}
	}
	return out
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
