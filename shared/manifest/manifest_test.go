package manifest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"

	"runwayjobs.dev/shared/document"
)

const valid = `apiVersion: runway/v1
kind: RunwayJob
metadata:
  name: nightly-compaction
  owner_email_handle: tenant-scale
  department: eng-infra
  department_group: eng-infra-tenant-scale
  product_category: cell-architecture
spec:
  image: us-east1-docker.pkg.dev/proj-runway/nightly-compaction/app@sha256:0123
  command: [/app/compact]
  args: [--vacuum]
  env:
    LOG_LEVEL: info
  secrets:
    - name: DATABASE_PASSWORD
      secret: db-password
  schedule: "@daily"
  time_zone: Europe/Berlin
  starting_deadline: 30m
  max_retries: 2
  timeout: 2h
  resources:
    limits:
      cpu: 2
      memory: 4Gi
`

func TestParseValid(t *testing.T) {
	j, err := Parse("runway.yml", []byte(valid))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	zero, three := 2, true
	_ = three
	want := Spec{
		Image:             "us-east1-docker.pkg.dev/proj-runway/nightly-compaction/app@sha256:0123",
		Command:           []string{"/app/compact"},
		Args:              []string{"--vacuum"},
		Env:               map[string]string{"LOG_LEVEL": "info"},
		Secrets:           []Secret{{Name: "DATABASE_PASSWORD", Secret: "db-password", Version: "latest"}},
		Schedule:          "0 0 * * *",
		TimeZone:          "Europe/Berlin",
		ConcurrencyPolicy: Forbid,
		StartingDeadline:  Duration(30 * time.Minute),
		TaskCount:         1,
		MaxRetries:        &zero,
		Timeout:           Duration(2 * time.Hour),
		Resources:         Resources{Limits: Limits{CPU: "2", Memory: "4Gi"}},
		Monitoring:        Monitoring{Enabled: &three, Grace: Duration(DefaultGrace), FailureThreshold: 1, RecoveryThreshold: 1, AlertOnFlaky: &three},
	}
	if diff := cmp.Diff(want, j.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if j.Schedule == nil || j.Schedule.TimeZone() != "Europe/Berlin" {
		t.Fatalf("schedule = %v, want one in Europe/Berlin", j.Schedule)
	}
	if got := j.Spec.ExpectedRuntime(); got != 6*time.Hour {
		t.Errorf("ExpectedRuntime = %v, want timeout × (retries+1) = 6h", got)
	}
	if got := j.Pos("/spec/timeout").String(); got != "runway.yml:22:12" {
		t.Errorf("Pos(/spec/timeout) = %s, want runway.yml:22:12", got)
	}
}

func TestDefaults(t *testing.T) {
	minimal := "apiVersion: runway/v1\nkind: RunwayJob\nmetadata:\n  name: a\n  owner_email_handle: o\n  department: d\n  department_group: g\n  product_category: p\nspec: {}\n"
	j, err := Parse("m.yml", []byte(minimal))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	s := j.Spec
	if j.Schedule != nil || s.TimeZone != "Etc/UTC" || s.ConcurrencyPolicy != Forbid || s.TaskCount != 1 || s.Retries() != 3 ||
		s.Timeout.D() != 10*time.Minute || s.Resources.Limits.CPU != "1" || s.Resources.Limits.Memory != "512Mi" || s.Monitoring.Grace.D() != 10*time.Minute {
		t.Errorf("defaults not applied: %+v", s)
	}
}

// TestSchemaDefaultsMatchGo keeps the documented defaults (schema "default") and the ones Go
// applies equal: a manifest spelling out every schema default parses to the same Job as one
// that leaves them out.
func TestSchemaDefaultsMatchGo(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		t.Fatal(err)
	}
	explicit := map[string]any{}
	var collect func(node map[string]any, into map[string]any)
	collect = func(node map[string]any, into map[string]any) {
		props, _ := node["properties"].(map[string]any)
		for name, p := range props {
			p := p.(map[string]any)
			if d, ok := p["default"]; ok {
				into[name] = d
			}
			if _, ok := p["properties"]; ok {
				child := map[string]any{}
				collect(p, child)
				if len(child) > 0 {
					into[name] = child
				}
			}
		}
	}
	spec := schema["properties"].(map[string]any)["spec"].(map[string]any)
	collect(spec, explicit)
	if len(explicit) < 8 {
		t.Fatalf("found only %d defaults in the schema: %v", len(explicit), explicit)
	}
	meta := map[string]any{"name": "a", "owner_email_handle": "o", "department": "d", "department_group": "g", "product_category": "p"}
	doc := func(spec map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"apiVersion": APIVersion, "kind": Kind, "metadata": meta, "spec": spec})
		return b // JSON is YAML
	}
	withDefaults, err := Parse("explicit.yml", doc(explicit))
	if err != nil {
		t.Fatalf("explicit defaults: %v", err)
	}
	without, err := Parse("implicit.yml", doc(map[string]any{}))
	if err != nil {
		t.Fatal(err)
	}
	if withDefaults.Hash() != without.Hash() {
		a, _ := json.Marshal(withDefaults)
		b, _ := json.Marshal(without)
		t.Errorf("schema defaults differ from Go defaults:\nschema: %s\ngo:     %s", a, b)
	}
}

func TestProblems(t *testing.T) {
	head := "apiVersion: runway/v1\nkind: RunwayJob\nmetadata:\n  name: job-a\n  owner_email_handle: o\n  department: d\n  department_group: g\n  product_category: p\nspec:\n"
	// Lines of the spec start at line 10.
	tests := []struct {
		name string
		doc  string
		want []string // FILE:LINE:COL: message prefixes, sorted by position
	}{
		{name: "unknown field with suggestion", doc: head + "  schedul: '@daily'\n",
			want: []string{`m.yml:10:3: unknown field "spec.schedul"; did you mean "schedule"?`}},
		{name: "unknown top-level field", doc: head + "  args: []\nstatus: {}\n",
			want: []string{`m.yml:11:1: unknown field "status"`}},
		{name: "wrong type", doc: head + "  task_count: many\n",
			want: []string{`m.yml:10:15: spec.task_count: must be an integer, not a string`}},
		{name: "enum with suggestion", doc: head + "  concurrency_policy: forbid\n",
			want: []string{`m.yml:10:23: spec.concurrency_policy: must be one of "Allow", "Forbid", "Replace"; got "forbid"; did you mean "Forbid"?`}},
		{name: "bounds", doc: head + "  task_count: 10001\n  max_retries: 11\n",
			want: []string{`m.yml:10:15: spec.task_count: must be at most 10000`, `m.yml:11:16: spec.max_retries: must be at most 10`}},
		{name: "uppercase name", doc: strings.Replace(head, "job-a", "Job-A", 1) + "  args: []\n",
			want: []string{`m.yml:4:9: metadata.name: "Job-A": a workload name is lowercase letters, digits and hyphens, starts with a letter and does not end with a hyphen`}},
		{name: "name too long", doc: strings.Replace(head, "job-a", "j"+strings.Repeat("a", 49), 1) + "  args: []\n",
			want: []string{`m.yml:4:9: metadata.name: must be at most 49 characters`}},
		{name: "name starts with digit", doc: strings.Replace(head, "job-a", "1job", 1) + "  args: []\n",
			want: []string{`m.yml:4:9: metadata.name: "1job": a workload name is lowercase`}},
		{name: "missing owner fields", doc: "apiVersion: runway/v1\nkind: RunwayJob\nmetadata:\n  name: a\nspec: {}\n",
			want: []string{`m.yml:3:1: metadata: missing required fields "owner_email_handle", "department", "department_group", "product_category"`}},
		{name: "wrong apiVersion", doc: strings.Replace(head, "runway/v1", "runway/v2", 1) + "  args: []\n",
			want: []string{`m.yml:1:13: apiVersion: must be "runway/v1"; got "runway/v2"`}},
		{name: "other kind", doc: strings.Replace(head, "RunwayJob", "RunwayService", 1) + "  regions: [x]\n",
			want: []string{`m.yml:2:7: kind is "RunwayService"; this file must be kind: RunwayJob`}},
		{name: "CRON_TZ prefix", doc: head + "  schedule: 'CRON_TZ=UTC 0 3 * * *'\n",
			want: []string{`m.yml:10:13: spec.schedule: schedule "CRON_TZ=UTC 0 3 * * *": time zone prefixes are not supported: use time_zone`}},
		{name: "@every", doc: head + "  schedule: '@every 5m'\n", want: []string{`m.yml:10:13: spec.schedule: `}},
		{name: "seconds field", doc: head + "  schedule: '0 0 3 * * *'\n", want: []string{`m.yml:10:13: spec.schedule: schedule "0 0 3 * * *" has 6 fields: a seconds field is not supported`}},
		{name: "impossible date", doc: head + "  schedule: '0 0 30 2 *'\n", want: []string{`m.yml:10:13: spec.schedule: schedule "0 0 30 2 *" can never fire`}},
		{name: "unknown time zone", doc: head + "  schedule: '@daily'\n  time_zone: Mars/Olympus\n",
			want: []string{`m.yml:11:14: spec.time_zone: unknown time zone "Mars/Olympus"`}},
		{name: "time zone and schedule both wrong", doc: head + "  schedule: '61 * * * *'\n  time_zone: Nowhere\n",
			want: []string{`m.yml:10:13: spec.schedule: `, `m.yml:11:14: spec.time_zone: unknown time zone "Nowhere"`}},
		{name: "timeout bounds", doc: head + "  timeout: 169h\n", want: []string{`m.yml:10:12: spec.timeout: is 169h; it must be between 1s and 168h`}},
		{name: "explicit zero timeout", doc: head + "  timeout: 0s\n", want: []string{`m.yml:10:12: spec.timeout: is 0s`}},
		{name: "not a duration", doc: head + "  timeout: 10 minutes\n", want: []string{`m.yml:10:12: spec.timeout: "10 minutes": not a Go duration such as "90s", "30m" or "2h"`}},
		{name: "refused task_count is not compared", doc: head + "  task_count: many\n  parallelism: 4\n", want: []string{`m.yml:10:15: spec.task_count: must be an integer`}},
		{name: "refused cpu is not compared", doc: head + "  resources: {limits: {cpu: true, memory: 8Gi}}\n", want: []string{`m.yml:10:29: spec.resources.limits.cpu: must be an integer or a string, not a boolean`}},
		{name: "short starting deadline", doc: head + "  schedule: '@hourly'\n  starting_deadline: 10s\n",
			want: []string{`m.yml:11:22: spec.starting_deadline: is 10s; it must be at least 1m`}},
		{name: "parallelism above task count", doc: head + "  task_count: 2\n  parallelism: 3\n",
			want: []string{`m.yml:11:16: spec.parallelism: is 3, more than task_count (2)`}},
		{name: "cpu not offered", doc: head + "  resources: {limits: {cpu: 3}}\n",
			want: []string{`m.yml:10:29: spec.resources.limits.cpu: is "3"; Cloud Run jobs take 1, 2, 4, 6 or 8 CPUs`}},
		{name: "too little memory for 4 cpus", doc: head + "  resources:\n    limits:\n      cpu: '4'\n      memory: 1Gi\n",
			want: []string{`m.yml:13:15: spec.resources.limits.memory: is 1Gi; 4 CPUs need at least 2Gi`}},
		{name: "too much memory for 1 cpu", doc: head + "  resources:\n    limits:\n      memory: 8Gi\n",
			want: []string{`m.yml:12:15: spec.resources.limits.memory: memory 8Gi needs at least 2 CPUs; cpu is 1`}},
		{name: "memory below minimum", doc: head + "  resources: {limits: {memory: 256Mi}}\n",
			want: []string{`m.yml:10:32: spec.resources.limits.memory: is 256Mi; Cloud Run jobs need at least 512Mi`}},
		{name: "reserved env", doc: head + "  env:\n    CLOUD_RUN_TASK_INDEX: '1'\n    RUNWAY_TRIGGER: x\n    PORT: '80'\n",
			want: []string{`m.yml:11:5: spec.env.CLOUD_RUN_TASK_INDEX: "CLOUD_RUN_TASK_INDEX" is reserved`, `m.yml:12:5: spec.env.RUNWAY_TRIGGER: "RUNWAY_TRIGGER" is reserved`, `m.yml:13:5: spec.env.PORT: "PORT" is reserved by Cloud Run`}},
		{name: "invalid env name", doc: head + "  env:\n    1BAD: x\n", want: []string{`m.yml:11:5: spec.env.1BAD: "1BAD" is not a valid environment variable name`}},
		{name: "secret value in env", doc: head + "  env:\n    SLACK_TOKEN: xoxb-123\n",
			want: []string{`m.yml:11:5: spec.env.SLACK_TOKEN: "SLACK_TOKEN" looks like a secret`}},
		{name: "secret set twice", doc: head + "  env: {A: x}\n  secrets:\n    - {name: A, secret: s}\n    - {name: B, secret: s}\n    - {name: B, secret: t}\n",
			want: []string{`m.yml:12:14: spec.secrets[0].name: "A" is also set in spec.env`, `m.yml:14:14: spec.secrets[2].name: "B" is already set by spec.secrets[1]`}},
		{name: "webhook URL as channel", doc: head + "  notifications:\n    channels: ['https://hooks.slack.com/services/T/B/X']\n",
			want: []string{`m.yml:11:16: spec.notifications.channels[0]: "https://hooks.slack.com/services/T/B/X": a channel is referenced by its name`}},
		{name: "duplicate key and other errors together", doc: head + "  args: [a]\n  args: [b]\n  task_count: 0\n  bogus: 1\n",
			want: []string{`m.yml:11:3: duplicate key "args"`, `m.yml:12:15: spec.task_count: must be at least 1`, `m.yml:13:3: unknown field "spec.bogus"`}},
		{name: "spec is a list", doc: "apiVersion: runway/v1\nkind: RunwayJob\nmetadata: {name: a, owner_email_handle: o, department: d, department_group: g, product_category: p}\nspec: [a]\n",
			want: []string{`m.yml:4:7: spec: must be a mapping, not a list`}},
		{name: "document is a list", doc: "- a\n", want: []string{`m.yml:1:1: a manifest must be a mapping`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("m.yml", []byte(tt.doc))
			var ps document.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse error = %v, want document.Problems", err)
			}
			if len(ps) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(ps), len(tt.want), ps.Error())
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(ps[i].String(), want) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, ps[i].String(), want)
				}
			}
		})
	}
}

func TestOverlay(t *testing.T) {
	repo := t.TempDir()
	write := func(rel, content string) string {
		p := filepath.Join(repo, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := write(".runway/runway.yml", valid)
	onDemand := write(".runway/on-demand/runway.yml", "spec:\n  schedule: null\n")
	badDir := write(".runway/Bad_Name/runway.yml", "spec:\n  args: [x]\n")
	good := write(".runway/hourly-prune/runway.yml", "spec:\n  schedule: '@hourly'\n  args: [--prune]\n")
	named := write(".runway/other/runway.yml", "metadata:\n  name: not-other\n")
	broken := write(".runway/broken/runway.yml", "spec:\n  max_retries: 20\n")

	files, err := Discover(repo)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{base, badDir, broken, good, onDemand, named}, files); diff != "" {
		t.Errorf("Discover (-want +got):\n%s", diff)
	}

	j, err := Load(good)
	if err != nil {
		t.Fatalf("Load(overlay): %v", err)
	}
	if j.Metadata.Name != "hourly-prune" || j.Spec.Schedule != "0 * * * *" || j.Spec.Args[0] != "--prune" || j.Spec.Env["LOG_LEVEL"] != "info" {
		t.Errorf("overlay not merged over base: %+v %+v", j.Metadata, j.Spec)
	}
	if diff := cmp.Diff([]string{base, good}, j.Files); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
	if got := j.Pos("/spec/timeout").File; got != base {
		t.Errorf("inherited field position in %s, want the base file", got)
	}

	_, err = Load(named)
	if err == nil || !strings.Contains(err.Error(), named+`:2:9: metadata.name: is "not-other" but the overlay sits in .runway/other/`) {
		t.Errorf("Load(named) = %v, want the name mismatch at the overlay", err)
	}
	if j, err := Load(onDemand); err != nil || j.Schedule != nil || j.Spec.Schedule != "" {
		t.Errorf("Load(schedule: null overlay) = %+v, %v; want an on-demand job", j, err)
	}
	_, err = Load(badDir)
	if err == nil || !strings.Contains(err.Error(), badDir+`:1:1: the overlay directory .runway/Bad_Name/ names the workload, and "Bad_Name" can't be one`) {
		t.Errorf("Load(Bad_Name overlay) = %v, want the directory name refused", err)
	}
	_, err = Load(broken)
	if err == nil || !strings.HasPrefix(err.Error(), broken+":2:16: spec.max_retries: must be at most 10") {
		t.Errorf("Load(broken) = %v, want the error in the overlay file", err)
	}
}

func TestOverlayWithoutBase(t *testing.T) {
	repo := t.TempDir()
	overlay := filepath.Join(repo, ".runway", "w", "runway.yml")
	if err := os.MkdirAll(filepath.Dir(overlay), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(overlay, []byte("spec: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := Discover(repo)
	if err != nil || len(files) != 1 || files[0] != overlay {
		t.Fatalf("Discover = %v, %v; want the overlay alone", files, err)
	}
	if _, err := Load(overlay); err == nil || !strings.Contains(err.Error(), "runway.yml:1:1: cannot read: no such file") {
		t.Errorf("Load(overlay without base) = %v, want the missing base reported", err)
	}
	if _, err := Discover(t.TempDir()); err == nil {
		t.Error("Discover(empty dir) succeeded")
	}
}

func TestLoadFileProblems(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yml")
	if err := os.WriteFile(big, make([]byte, document.MaxSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{name: "missing", path: filepath.Join(dir, "nope.yml"), want: "nope.yml:1:1: cannot read: no such file or directory"},
		{name: "directory", path: dir, want: "is a directory"},
		{name: "too large", path: big, want: "big.yml:1:1: file is 1048577 bytes; the limit is 1048576 (1 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestHashStable(t *testing.T) {
	a, err := Parse("a.yml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	// Same content, keys reordered and env written as flow style: same hash.
	reordered := strings.Replace(valid, "  env:\n    LOG_LEVEL: info\n", "  env: {LOG_LEVEL: info}\n", 1)
	b, err := Parse("b.yml", []byte(reordered))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Error("hash differs for the same manifest")
	}
	c, _ := Parse("c.yml", []byte(strings.Replace(valid, "--vacuum", "--analyze", 1)))
	if a.Hash() == c.Hash() {
		t.Error("hash equal for different args")
	}
}

// TestReferenceUpToDate keeps docs/manifest.md and docs/runway-job.schema.json generated from
// the schema (make docs).
func TestReferenceUpToDate(t *testing.T) {
	for file, want := range map[string]string{
		"../../docs/manifest.md":            Reference(),
		"../../docs/runway-job.schema.json": string(schemaJSON),
	} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run make docs)", err)
		}
		if string(got) != want {
			t.Errorf("%s is out of date: run make docs", file)
		}
	}
}

func TestExamplesValid(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/.runway/runway.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, repo := range files {
		all, err := Discover(filepath.Dir(filepath.Dir(repo)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range all {
			if _, err := Load(f); err != nil {
				t.Errorf("example %s: %v", f, err)
			}
		}
	}
}

// BenchmarkParse validates a typical manifest (target: under 0.5 ms). The yaml_only baseline,
// run in the same process, is what decoding the same bytes with goccy/go-yaml alone costs, so
// the figure can be read against this machine's speed at that moment.
func BenchmarkParse(b *testing.B) {
	data := []byte(valid)
	if _, err := Parse("runway.yml", data); err != nil {
		b.Fatal(err)
	}
	b.Run("validate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse("runway.yml", data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("yaml_only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v map[string]any
			if err := yaml.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("apiVersion: runway/v1\nkind: RunwayJob\nmetadata: {name: a}\nspec: {schedule: '0 0 30 2 *', resources: {limits: {cpu: 4}}}\n"))
	f.Add([]byte("spec:\n  env: {A: &x b, B: *x}\n"))
	f.Add([]byte("kind: RunwayService\n"))
	// Adversarial shapes (issue 13), each just over a bound of document.Scan.
	f.Add([]byte("spec: " + strings.Repeat("[", 64) + "\n"))
	f.Add([]byte(strings.Repeat("k: v\n", 501)))
	f.Add([]byte("a: &a x\nb: [" + strings.Repeat("*a, ", 1000) + "*a]\n"))
	f.Add([]byte("a: |\n  [[[\n---\nb: " + strings.Repeat("x", 65<<10) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := Parse("fuzz.yml", data)
		if (j == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of job and error", j, err)
		}
		if err != nil {
			var ps document.Problems
			if errors.As(err, &ps) && len(ps) == 0 {
				t.Fatal("empty problem list")
			}
			return
		}
		// A valid manifest stays valid, with the same meaning, after a round trip through JSON.
		b, _ := json.Marshal(j)
		j2, err := Parse("roundtrip.yml", b)
		if err != nil {
			t.Fatalf("round trip of a valid manifest failed: %v\n%s", err, b)
		}
		if j.Hash() != j2.Hash() {
			t.Fatalf("round trip changed the manifest:\n%s", b)
		}
	})
}
