package desired

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/gcp/runcontract"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
)

const (
	testProject = "runway-test"
	testRepo    = "us-east1-docker.pkg.dev/runway-test/jobs"
)

// fullManifest sets every field the rendered job carries to a value other than its zero.
const fullManifest = `apiVersion: runway/v1
kind: RunwayJob
metadata:
  name: nightly
  owner_email_handle: team
  department: eng-infra
  department_group: eng-infra-tenant-scale
  product_category: cells
spec:
  image: ` + testRepo + `/nightly:v1
  command: ["/bin/compact", "--config=/etc/c.yml"]
  args: ["--vacuum", "--full"]
  env:
    LOG_FORMAT: json
    LEVEL: info
  secrets:
    - name: DB_PASSWORD
      secret: db-password
      version: "3"
  schedule: "15 3 * * *"
  time_zone: Europe/Paris
  concurrency_policy: Replace
  starting_deadline: 5m
  task_count: 4
  parallelism: 2
  max_retries: 2
  timeout: 2h
  resources:
    limits:
      cpu: 2
      memory: 1Gi
  region: europe-west1
  suspend: true
  monitoring:
    enabled: false
    grace: 20m
    expected_runtime: 1h
    failure_threshold: 3
    recovery_threshold: 2
    alert_on_flaky: false
  notifications:
    channels: [pagerduty-team]
`

var testInventory = `inventory:
  - name: nightly
    type: job
    project_id: 1
    gcp_project: ` + testProject + `
    regions: [us-east1, europe-west1]
    artifact_repository: ` + testRepo + `
    notifications:
      channels: [slack-team]
`

func testInput(t *testing.T, src string) Input {
	t.Helper()
	j, err := manifest.Parse(".runway/runway.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("inventory.yml", []byte(testInventory))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := inv.Lookup("nightly")
	return Input{Job: j, Workload: w, Source: platform.Source{CommitSHA: "abc", PipelineID: 7, PipelineURL: "https://ci/p/7", Ref: "main"}, Placement: 2}
}

// mutation is one change of one field of a rendered resource.
type mutation struct {
	path      string
	populated bool // the field is one the rendering sets
	apply     func()
}

// mutations lists every one-field change of m: each populated scalar, list element and map value
// changed, each list one element longer and shorter, each map entry removed, and each field the
// rendering leaves unset given a value. A Duration is one value.
func mutations(m protoreflect.Message, path string) []mutation {
	var out []mutation
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		p := path + "." + string(fd.Name())
		if o := fd.ContainingOneof(); o != nil && !m.Has(fd) && m.WhichOneof(o) != nil {
			continue // another member of the oneof is set: that member's change covers it
		}
		if !m.Has(fd) {
			out = append(out, mutation{path: p, apply: func() { m.Set(fd, nonZero(m, fd)) }})
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for k := 0; k < l.Len(); k++ {
				if fd.Message() != nil {
					out = append(out, mutations(l.Get(k).Message(), fmt.Sprintf("%s[%d]", p, k))...)
					continue
				}
				out = append(out, mutation{path: fmt.Sprintf("%s[%d]", p, k), populated: true, apply: func() { l.Set(k, changed(fd, l.Get(k))) }})
			}
			out = append(out,
				mutation{path: p + " (one more)", populated: true, apply: func() { l.Append(l.Get(l.Len() - 1)) }},
				mutation{path: p + " (one fewer)", populated: true, apply: func() { l.Truncate(l.Len() - 1) }})
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			var keys []protoreflect.MapKey
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys = append(keys, k); return true })
			slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				out = append(out,
					mutation{path: p + "[" + k.String() + "]", populated: true, apply: func() { mp.Set(k, changed(fd.MapValue(), mp.Get(k))) }},
					mutation{path: p + "[" + k.String() + "] (removed)", populated: true, apply: func() { mp.Clear(k) }})
			}
		case fd.Message() != nil && fd.Message().FullName() != "google.protobuf.Duration":
			out = append(out, mutations(m.Mutable(fd).Message(), p)...)
		default:
			out = append(out, mutation{path: p, populated: true, apply: func() { m.Set(fd, changed(fd, m.Get(fd))) }})
		}
	}
	return out
}

// changed returns a value of fd other than v.
func changed(fd protoreflect.FieldDescriptor, v protoreflect.Value) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(v.String() + "-changed")
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(append(slices.Clone(v.Bytes()), '!'))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(!v.Bool())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(v.Int()) + 1)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(v.Int() + 1)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(v.Uint()) + 1)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(v.Uint() + 1)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(v.Float()) + 1)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(v.Float() + 1)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		for i := 0; i < vals.Len(); i++ {
			if n := vals.Get(i).Number(); n != v.Enum() {
				return protoreflect.ValueOfEnum(n)
			}
		}
	case protoreflect.MessageKind:
		if fd.Message().FullName() == "google.protobuf.Duration" {
			d := v.Message().Interface().(*durationpb.Duration).AsDuration()
			return protoreflect.ValueOfMessage(durationpb.New(d + 1e9).ProtoReflect())
		}
	}
	panic(fmt.Sprintf("no change for %s (%s)", fd.FullName(), fd.Kind()))
}

// nonZero is a value for a field the rendering leaves unset.
func nonZero(m protoreflect.Message, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch {
	case fd.IsList():
		l := m.NewField(fd).List()
		if fd.Message() != nil {
			l.Append(protoreflect.ValueOfMessage(l.NewElement().Message()))
		} else {
			l.Append(changed(fd, fd.Default()))
		}
		return protoreflect.ValueOfList(l)
	case fd.IsMap():
		mp := m.NewField(fd).Map()
		k := fd.MapKey().Default()
		if fd.MapKey().Kind() == protoreflect.StringKind {
			k = protoreflect.ValueOfString("x")
		}
		if fd.MapValue().Message() != nil {
			mp.Set(k.MapKey(), protoreflect.ValueOfMessage(mp.NewValue().Message()))
		} else {
			mp.Set(k.MapKey(), changed(fd.MapValue(), fd.MapValue().Default()))
		}
		return protoreflect.ValueOfMap(mp)
	case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Duration":
		return protoreflect.ValueOfMessage(durationpb.New(1e9).ProtoReflect())
	case fd.Message() != nil:
		return protoreflect.ValueOfMessage(m.NewField(fd).Message())
	}
	return changed(fd, fd.Default())
}

// identity are the fields that name the resource: they are how it is addressed, not compared.
var identity = []string{"job.name", "scheduler.name"}

// TestChangesCoverEveryRenderedField walks every field of the rendered Cloud Run job and Cloud
// Scheduler job: a change of a field the rendering sets must be a difference, and a change of a
// field it leaves to the server (or to others) must not. A field added to renderJob without
// its JobChanges line (or the reverse) fails here.
func TestChangesCoverEveryRenderedField(t *testing.T) {
	want, err := Render(testInput(t, fullManifest))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		want    proto.Message
		changes func(got proto.Message) []string
	}{
		{name: "job", want: want.Job, changes: func(got proto.Message) []string { return JobChanges(want.Job, got.(*runpb.Job)) }},
		{name: "scheduler", want: want.Scheduler, changes: func(got proto.Message) []string {
			return SchedulerChanges(want.Scheduler, got.(*schedulerpb.Job))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ch := tt.changes(proto.Clone(tt.want)); len(ch) != 0 {
				t.Fatalf("an identical copy differs in %v", ch)
			}
			n := len(mutations(proto.Clone(tt.want).ProtoReflect(), tt.name))
			populated := 0
			for i := range n {
				got := proto.Clone(tt.want)
				m := mutations(got.ProtoReflect(), tt.name)[i]
				m.apply()
				ch := tt.changes(got)
				switch {
				case slices.Contains(identity, m.path):
				case m.populated && len(ch) == 0:
					t.Errorf("%s is rendered, but a change of it is not detected", m.path)
				case !m.populated && len(ch) != 0:
					t.Errorf("%s is not rendered, but a change of it is detected as %v", m.path, ch)
				}
				if m.populated {
					populated++
				}
			}
			t.Logf("%d mutations, %d of rendered fields", n, populated)
			if populated < 10 && tt.name == "job" || populated < 4 {
				t.Errorf("only %d rendered fields were walked", populated)
			}
		})
	}
}

// TestEveryManifestFieldReachesTheRendering walks manifest.Spec: removing any one of its fields
// from the full manifest (so its default applies) changes the rendered job, scheduler or pause
// state other than through the manifest hash, or makes Parse or Render refuse. With
// TestChangesCoverEveryRenderedField, a spec field added to the manifest reaches the job and a
// change of it is detected.
func TestEveryManifestFieldReachesTheRendering(t *testing.T) {
	in := testInput(t, fullManifest)
	base, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	src, err := json.Marshal(in.Job)
	if err != nil {
		t.Fatal(err)
	}
	spec := reflect.TypeFor[manifest.Spec]()
	for i := range spec.NumField() {
		key, _, _ := strings.Cut(spec.Field(i).Tag.Get("json"), ",")
		t.Run(key, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(src, &doc); err != nil {
				t.Fatal(err)
			}
			if _, ok := doc["spec"].(map[string]any)[key]; !ok {
				t.Fatalf("the full manifest does not set spec.%s", key)
			}
			delete(doc["spec"].(map[string]any), key)
			b, _ := json.Marshal(doc)
			j, err := manifest.Parse(".runway/runway.yml", b)
			if err != nil {
				t.Logf("refused without spec.%s (another field depends on it): %v", key, err)
				return
			}
			other := in
			other.Job = j
			s, err := Render(other)
			if err != nil {
				return // refused without it: it matters
			}
			if sameRendering(base, s) {
				t.Errorf("spec.%s does not reach the rendered job, scheduler or pause state", key)
			}
		})
	}
}

// sameRendering compares two renderings, ignoring the manifest hash (which every field moves).
func sameRendering(a, b *State) bool {
	ja, jb := proto.Clone(a.Job).(*runpb.Job), proto.Clone(b.Job).(*runpb.Job)
	delete(ja.Annotations, platform.AnnotationManifestHash)
	delete(jb.Annotations, platform.AnnotationManifestHash)
	return proto.Equal(ja, jb) && proto.Equal(a.Scheduler, b.Scheduler) && a.Paused == b.Paused && a.Region == b.Region
}

// TestPlace: the home is the highest placement, then the earliest region; jobs Runway does not
// manage for the workload are foreign.
func TestPlace(t *testing.T) {
	w := inventory.Workload{Name: "nightly", GCPProject: testProject, Regions: []string{"us-east1", "europe-west1", "asia-east1"}}
	job := func(region, placement string, managedFor string) *runpb.Job {
		j := &runpb.Job{Name: platform.JobName(testProject, region, "nightly"), Labels: map[string]string{}, Annotations: map[string]string{}}
		if managedFor != "" {
			j.Labels[platform.LabelManagedBy], j.Labels[platform.LabelWorkload] = platform.ManagedByValue, managedFor
		}
		if placement != "" {
			j.Annotations[platform.AnnotationPlacement] = placement
		}
		return j
	}
	tests := []struct {
		name        string
		jobs        []*runpb.Job
		wantHome    string // region, "" for none
		wantStrays  []string
		wantForeign int
	}{
		{name: "none", jobs: []*runpb.Job{nil, nil, nil}},
		{name: "one", jobs: []*runpb.Job{nil, job("europe-west1", "1", "nightly"), nil}, wantHome: "europe-west1"},
		{name: "moved: the later placement wins over region order", jobs: []*runpb.Job{job("us-east1", "1", "nightly"), job("europe-west1", "2", "nightly")},
			wantHome: "europe-west1", wantStrays: []string{"us-east1"}},
		{name: "legacy copies: region order", jobs: []*runpb.Job{nil, job("europe-west1", "", "nightly"), job("asia-east1", "", "nightly")},
			wantHome: "europe-west1", wantStrays: []string{"asia-east1"}},
		{name: "a counted copy beats a legacy one", jobs: []*runpb.Job{job("us-east1", "", "nightly"), nil, job("asia-east1", "1", "nightly")},
			wantHome: "asia-east1", wantStrays: []string{"us-east1"}},
		{name: "unmanaged and other workloads' jobs are foreign", jobs: []*runpb.Job{job("us-east1", "9", ""), job("europe-west1", "9", "other"), job("asia-east1", "1", "nightly")},
			wantHome: "asia-east1", wantForeign: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Place(w, tt.jobs)
			home := ""
			if p.Home != nil {
				home = RegionOf(p.Home.Name)
			}
			var strays []string
			for _, s := range p.Strays {
				strays = append(strays, RegionOf(s.Name))
			}
			if home != tt.wantHome || !slices.Equal(strays, tt.wantStrays) || len(p.Foreign) != tt.wantForeign {
				t.Errorf("home %q strays %v foreign %d; want %q %v %d", home, strays, len(p.Foreign), tt.wantHome, tt.wantStrays, tt.wantForeign)
			}
		})
	}
}

// TestPlanFor: the plan's writes, from observed worlds built by hand.
func TestPlanFor(t *testing.T) {
	base := testInput(t, strings.Replace(fullManifest, "  suspend: true\n", "", 1))
	base.Placement = 0
	applied := func(in Input, mod func(*Input)) (*runpb.Job, *schedulerpb.Job) {
		if mod != nil {
			mod(&in)
		}
		p, err := PlanFor(in, Observed{Jobs: make([]*runpb.Job, 2), Schedulers: make([]*schedulerpb.Job, 2)})
		if err != nil {
			t.Fatal(err)
		}
		j := proto.Clone(p.Want.Job).(*runpb.Job)
		j.Etag = "e1"
		return j, proto.Clone(p.Want.Scheduler).(*schedulerpb.Job)
	}
	usJob, usSched := applied(base, func(in *Input) {
		j := *in.Job
		j.Spec.Region = "us-east1"
		in.Job = &j
	})
	euJob, euSched := applied(base, nil)
	tests := []struct {
		name      string
		in        Input
		obs       Observed
		want      []string // Changes
		wantLines []string
		wantErr   string
	}{
		{
			name:      "from nothing",
			in:        base,
			obs:       Observed{Jobs: []*runpb.Job{nil, nil}, Schedulers: []*schedulerpb.Job{nil, nil}},
			want:      []string{"job: created", "schedule: created"},
			wantLines: []string{"Cloud Run job " + euJob.Name + ": create", "Scheduler job " + euJob.Name + ": create (15 3 * * *, Europe/Paris)"},
		},
		{
			name:      "applied already",
			in:        base,
			obs:       Observed{Jobs: []*runpb.Job{nil, euJob}, Schedulers: []*schedulerpb.Job{nil, euSched}},
			wantLines: []string{"Cloud Run job " + euJob.Name + ": no change", "Scheduler job " + euJob.Name + ": no change"},
		},
		{
			name: "moved from us-east1",
			in:   base,
			obs:  Observed{Jobs: []*runpb.Job{usJob, nil}, Schedulers: []*schedulerpb.Job{usSched, nil}},
			want: []string{"job: created", "schedule: created",
				"schedule: deleted " + usJob.Name + " (moved to europe-west1)", "job: deleted " + usJob.Name + " (moved to europe-west1)"},
			wantLines: []string{"Cloud Run job " + euJob.Name + ": create", "Scheduler job " + euJob.Name + ": create (15 3 * * *, Europe/Paris)",
				"Scheduler job " + usJob.Name + ": delete (the workload moves to europe-west1)", "Cloud Run job " + usJob.Name + ": delete (the workload moves to europe-west1)"},
		},
		{
			name: "an older pipeline is stale, whichever region holds the newer one",
			in: func() Input {
				in := base
				in.Source.PipelineID = 6
				return in
			}(),
			obs:       Observed{Jobs: []*runpb.Job{usJob, nil}, Schedulers: []*schedulerpb.Job{usSched, nil}},
			want:      []string{"pipeline 6 is older than the applied pipeline 7: nothing changed"},
			wantLines: []string{"pipeline 6 is older than the applied pipeline 7: nothing changed"},
		},
		{
			name:    "an unmanaged scheduler job in the home region is refused",
			in:      base,
			obs:     Observed{Jobs: []*runpb.Job{nil, nil}, Schedulers: []*schedulerpb.Job{nil, {Name: euJob.Name, Description: "hand-made"}}},
			wantErr: "is not managed by Runway",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanFor(tt.in, tt.obs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("PlanFor = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, p.Changes()); d != "" {
				t.Errorf("changes (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantLines, p.Lines()); d != "" {
				t.Errorf("lines (-want +got):\n%s", d)
			}
		})
	}
}

// TestRegionOf reads the region of full job names, and "" of anything else.
func TestRegionOf(t *testing.T) {
	for name, want := range map[string]string{
		"projects/p/locations/us-east1/jobs/j": "us-east1",
		"projects/p/locations/eu":              "eu",
		"projects/p/jobs/j":                    "",
		"":                                     "",
	} {
		if got := RegionOf(name); got != want {
			t.Errorf("RegionOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// FuzzRegionOf: RegionOf never panics, never returns a path, and reads back what JobName wrote.
func FuzzRegionOf(f *testing.F) {
	f.Add("projects/p/locations/us-east1/jobs/j")
	f.Add("/locations/")
	f.Add("projects/p/locations//jobs/j")
	f.Fuzz(func(t *testing.T, name string) {
		r := RegionOf(name)
		if strings.Contains(r, "/") {
			t.Fatalf("RegionOf(%q) = %q, a path", name, r)
		}
		if r != "" && !strings.Contains(name, "/locations/"+r) {
			t.Fatalf("RegionOf(%q) = %q, not in the name", name, r)
		}
		if !strings.Contains(name, "/") {
			if got := RegionOf(platform.JobName("p", name, "j")); got != name {
				t.Fatalf("RegionOf(JobName(p, %q, j)) = %q", name, got)
			}
		}
	})
}

// FuzzLabels checks that the labels rendered from any owner metadata are labels Cloud Run
// accepts (runcontract's rules, which the emulator enforces).
func FuzzLabels(f *testing.F) {
	f.Add("Jane.Doe@example.com", "Platform Engineering", strings.Repeat("x", 80), "Café")
	f.Fuzz(func(t *testing.T, owner, dept, group, category string) {
		j := &manifest.Job{}
		j.Metadata.Name, j.Metadata.OwnerEmailHandle, j.Metadata.Department = "w", owner, dept
		j.Metadata.DepartmentGroup, j.Metadata.ProductCategory = group, category
		if p := runcontract.LabelsProblem(Labels(j)); p != "" {
			t.Errorf("Labels(%q, %q, %q, %q) = %v: %s", owner, dept, group, category, Labels(j), p)
		}
	})
}
