package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/gcp/runcontract"
	"runwayjobs.dev/shared/schedule"
)

// Parse validates data, the content of file, as a complete RunwayJob manifest. The error, if
// any, is a document.Problems listing every problem found.
func Parse(file string, data []byte) (*Job, error) {
	d, problems := document.Parse(file, data)
	if d == nil {
		return nil, problems
	}
	return fromDocument(d, problems, []string{file}, "")
}

// ParseOverlay validates the overlay of workload (the content of .runway/<workload>/runway.yml)
// merged over the base manifest. The overlay's metadata.name defaults to workload and, when
// written, must equal it.
func ParseOverlay(baseFile string, base []byte, file string, overlay []byte, workload string) (*Job, error) {
	b, bp := document.Parse(baseFile, base)
	o, op := document.Parse(file, overlay)
	problems := append(bp, op...)
	if b == nil || o == nil {
		return nil, problems
	}
	return fromDocument(document.Merge(b, o), problems, []string{baseFile, file}, workload)
}

// Load reads and validates the manifest at path. A path of the form
// <dir>/.runway/<workload>/runway.yml is an overlay and is merged over <dir>/.runway/runway.yml.
func Load(path string) (*Job, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	workload, base := overlayOf(path)
	if base == "" {
		return Parse(path, data)
	}
	baseData, err := readFile(base)
	if err != nil {
		return nil, err
	}
	return ParseOverlay(base, baseData, path, data, workload)
}

// Discover lists the manifests of a repository: <repo>/.runway/runway.yml, then every overlay
// <repo>/.runway/<workload>/runway.yml in name order.
func Discover(repo string) ([]string, error) {
	base := filepath.Join(repo, ".runway", "runway.yml")
	overlays, err := filepath.Glob(filepath.Join(repo, ".runway", "*", "runway.yml"))
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", repo, err)
	}
	sort.Strings(overlays)
	if _, err := os.Stat(base); err != nil {
		if len(overlays) == 0 {
			return nil, fmt.Errorf("discover %s: %w", repo, err)
		}
		return overlays, nil // loading them reports the missing base
	}
	return append([]string{base}, overlays...), nil
}

func readFile(path string) ([]byte, error) {
	data, ps := document.ReadFile(path)
	if ps != nil {
		return nil, ps
	}
	return data, nil
}

// overlayOf returns the workload and base file of an overlay path, or "" for a base file.
func overlayOf(path string) (workload, base string) {
	dir := filepath.Dir(path)
	if filepath.Base(path) != "runway.yml" || filepath.Base(filepath.Dir(dir)) != ".runway" {
		return "", ""
	}
	return filepath.Base(dir), filepath.Join(filepath.Dir(dir), "runway.yml")
}

// fromDocument validates d (already holding the parse problems found) into a Job.
func fromDocument(d *document.Document, problems document.Problems, files []string, workload string) (*Job, error) {
	root, _ := d.Root.(map[string]any)
	if root == nil {
		return nil, append(problems, document.Problem{Pos: d.Pos(""), Message: "a manifest must be a mapping with apiVersion, kind, metadata and spec"})
	}
	// A kind other than RunwayJob would drown in "unknown field" errors; say the one thing that matters.
	if k, ok := root["kind"].(string); ok && k != Kind {
		return nil, append(problems, document.Problem{Pos: d.Pos("/kind"), Path: "kind", Message: fmt.Sprintf("kind is %q; this file must be kind: %s (services use RunwayService and are not validated here)", k, Kind)})
	}
	schema, err := compiled()
	if err != nil {
		return nil, fmt.Errorf("manifest schema: %w", err)
	}
	schemaProblems, valid := schema.Validate(d)
	problems = append(problems, schemaProblems...)
	j := &Job{Files: files, doc: d}
	if valid != nil {
		// valid holds only values the schema accepted, so decoding can't fail on types.
		b, err := json.Marshal(valid)
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(b))
			err = dec.Decode(j)
		}
		if err != nil {
			problems = append(problems, document.Problem{Pos: d.Pos(""), Message: "cannot decode manifest: " + err.Error()})
		}
	}
	c := checker{d: d, job: j, flagged: map[string]bool{}}
	for _, p := range schemaProblems {
		c.flagged[p.Pointer] = true
	}
	if workload != "" {
		c.overlayName(workload)
	}
	j.applyDefaults(c.written)
	c.check()
	problems = append(problems, c.problems...)
	if len(problems) > 0 {
		problems.Sort()
		return nil, problems
	}
	return j, nil
}

// checker holds the checks a JSON Schema can't express.
type checker struct {
	d        *document.Document
	job      *Job
	flagged  map[string]bool // pointers the schema already reported (and pruned)
	problems document.Problems
}

// written reports whether the manifest sets pointer to a value the schema accepted.
func (c *checker) written(pointer string) bool {
	return c.d.Has(pointer) && !c.flagged[pointer]
}

func (c *checker) fail(pointer, format string, args ...any) {
	if c.flagged[pointer] {
		return // one problem per value: the schema's
	}
	path := document.PathOf(pointer)
	c.problems = append(c.problems, document.Problem{Pos: c.d.Pos(pointer), Path: path, Pointer: pointer, Message: path + ": " + fmt.Sprintf(format, args...)})
}

var workloadName = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)

func (c *checker) overlayName(workload string) {
	if !workloadName.MatchString(workload) || len(workload) > 49 {
		c.problems = append(c.problems, document.Problem{Pos: document.Pos{File: c.d.File, Line: 1, Col: 1}, Path: "metadata.name",
			Message: fmt.Sprintf("the overlay directory .runway/%s/ names the workload, and %q can't be one: use lowercase letters, digits and hyphens, starting with a letter, at most 49 characters", workload, workload)})
	}
	if !c.written("/metadata/name") || c.job.Metadata.Name == "" {
		c.job.Metadata.Name = workload
		return
	}
	// The overlay may inherit the base's name; only a name written in the overlay must match.
	if c.d.Pos("/metadata/name").File == c.d.File && c.job.Metadata.Name != workload {
		c.fail("/metadata/name", "is %q but the overlay sits in .runway/%s/; they must match", c.job.Metadata.Name, workload)
		return
	}
	c.job.Metadata.Name = workload
}

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// Suffixes of names whose values are secrets: they must come from Secret Manager.
	secretLike = regexp.MustCompile(`(?i)(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIALS)$`)
)

// EnvNameProblem says why name can't be set on a job's container, or "" if it can.
func EnvNameProblem(name string) string {
	switch {
	case !envName.MatchString(name):
		return fmt.Sprintf("%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", name)
	case strings.HasPrefix(name, "CLOUD_RUN_"), strings.HasPrefix(name, "RUNWAY_"):
		return fmt.Sprintf("%q is reserved: CLOUD_RUN_* and RUNWAY_* are set by the platform", name)
	case runcontract.IsReservedEnv(name):
		return fmt.Sprintf("%q is reserved by Cloud Run", name)
	}
	return ""
}

func (c *checker) check() {
	s := &c.job.Spec
	c.checkEnv(s)
	tz := s.TimeZone
	if _, err := schedule.LoadLocation(tz); err != nil {
		c.fail("/spec/time_zone", "%v", err)
		tz = DefaultTimeZone // still check the schedule itself
	}
	if c.written("/spec/schedule") && s.Schedule != "" {
		sched, err := schedule.Parse(s.Schedule, tz)
		if err != nil {
			c.fail("/spec/schedule", "%v", err)
		} else if tz == s.TimeZone {
			c.job.Schedule = sched
			s.Schedule = sched.Expr()
		}
	}
	if c.written("/spec/starting_deadline") && s.StartingDeadline.D() < MinStartingDeadline {
		c.fail("/spec/starting_deadline", "is %s; it must be at least %s, or scheduled runs are skipped before they can start", human(s.StartingDeadline.D()), human(MinStartingDeadline))
	}
	if t := s.Timeout.D(); t < MinTimeout || t > MaxTimeout {
		c.fail("/spec/timeout", "is %s; it must be between %s and %s", human(t), human(MinTimeout), human(MaxTimeout))
	}
	if s.Parallelism > s.TaskCount && c.written("/spec/parallelism") && !c.flagged["/spec/task_count"] {
		c.fail("/spec/parallelism", "is %d, more than task_count (%d)", s.Parallelism, s.TaskCount)
	}
	c.checkResources(s.Resources.Limits)
	if c.written("/spec/monitoring/expected_runtime") && s.Monitoring.ExpectedRuntime <= 0 {
		c.fail("/spec/monitoring/expected_runtime", "must be more than 0")
	}
	if s.Monitoring.Grace < 0 {
		c.fail("/spec/monitoring/grace", "must not be negative")
	}
}

func (c *checker) checkEnv(s *Spec) {
	names := make([]string, 0, len(s.Env))
	for name := range s.Env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		at := document.Pointer("spec", "env", name)
		if msg := EnvNameProblem(name); msg != "" {
			c.failKey(at, "%s", msg)
		} else if secretLike.MatchString(name) && s.Env[name] != "" {
			c.failKey(at, "%q looks like a secret; reference it under spec.secrets instead of writing its value here", name)
		}
	}
	seen := map[string]int{}
	for i, sec := range s.Secrets {
		at := document.Pointer("spec", "secrets", fmt.Sprint(i), "name")
		if sec.Name == "" {
			continue
		}
		if msg := EnvNameProblem(sec.Name); msg != "" {
			c.fail(at, "%s", msg)
		}
		if first, dup := seen[sec.Name]; dup {
			c.fail(at, "%q is already set by spec.secrets[%d]", sec.Name, first)
		}
		seen[sec.Name] = i
		if _, clash := s.Env[sec.Name]; clash {
			c.fail(at, "%q is also set in spec.env; set it in one place", sec.Name)
		}
	}
}

func (c *checker) failKey(pointer, format string, args ...any) {
	c.fail(pointer, format, args...)
	c.problems[len(c.problems)-1].Pos = c.d.KeyPos(pointer)
}

// Minimum memory per CPU count and CPUs needed above a memory size, as Cloud Run enforces them
// for jobs (cloud.google.com/run/docs/configuring/jobs/cpu and .../memory-limits).
var (
	minMemoryMiB = map[int]int64{1: 512, 2: 512, 4: 2048, 6: 4096, 8: 4096}
	cpuForMemory = []struct {
		aboveMiB int64
		cpus     int
	}{{24 * 1024, 8}, {16 * 1024, 6}, {8 * 1024, 4}, {4 * 1024, 2}}
)

func (c *checker) checkResources(l Limits) {
	if c.flagged["/spec/resources/limits/cpu"] || c.flagged["/spec/resources/limits/memory"] {
		return // compare only values the schema accepted
	}
	cpus := l.CPUs()
	if _, ok := minMemoryMiB[cpus]; !ok {
		c.fail("/spec/resources/limits/cpu", "is %q; Cloud Run jobs take 1, 2, 4, 6 or 8 CPUs", string(l.CPU))
		return
	}
	mem := l.MemoryMiB()
	switch {
	case mem == 0 && c.written("/spec/resources/limits/memory"):
		return // the schema reported it
	case mem < 512:
		c.fail("/spec/resources/limits/memory", "is %s; Cloud Run jobs need at least 512Mi", l.Memory)
	case mem > 32*1024:
		c.fail("/spec/resources/limits/memory", "is %s; Cloud Run allows at most 32Gi", l.Memory)
	case mem < minMemoryMiB[cpus]:
		c.fail("/spec/resources/limits/memory", "is %s; %d CPUs need at least %dGi", l.Memory, cpus, minMemoryMiB[cpus]/1024)
	default:
		for _, r := range cpuForMemory {
			if mem > r.aboveMiB && cpus < r.cpus {
				at := "/spec/resources/limits/cpu"
				if !c.written(at) {
					at = "/spec/resources/limits/memory" // the default CPU is too small for the memory written
				}
				c.fail(at, "memory %s needs at least %d CPUs; cpu is %d", l.Memory, r.cpus, cpus)
				break
			}
		}
	}
}

// human formats a duration without trailing zero units: 168h, 1m, 90s.
func human(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
