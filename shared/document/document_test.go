package document

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     any
		problems []string // FILE:LINE:COL: message fragments, in order
		fatal    bool     // no document at all
	}{
		{name: "mapping", in: "a: 1\nb: [x, 'y']\nc: {d: true, e: null}\n",
			want: map[string]any{"a": int64(1), "b": []any{"x", "y"}, "c": map[string]any{"d": true, "e": nil}}},
		{name: "single pair", in: "a: b\n", want: map[string]any{"a": "b"}},
		{name: "block scalar", in: "a: |\n  line1\n  line2\n", want: map[string]any{"a": "line1\nline2\n"}},
		{name: "anchor and alias", in: "a: &x [1, 2]\nb: *x\n", want: map[string]any{"a": []any{int64(1), int64(2)}, "b": []any{int64(1), int64(2)}}},
		{name: "merge key, explicit wins", in: "base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n",
			want: map[string]any{"base": map[string]any{"x": int64(1), "y": int64(2)}, "c": map[string]any{"x": int64(1), "y": int64(3)}}},
		{name: "string tag keeps text", in: "a: !!str 0123\n", want: map[string]any{"a": "0123"}},
		{name: "duplicate keys all reported, first kept", in: "a: 1\nb: 2\na: 3\nb: 4\n",
			want:     map[string]any{"a": int64(1), "b": int64(2)},
			problems: []string{`f.yml:3:1: duplicate key "a" (first defined at line 1, column 1)`, `f.yml:4:1: duplicate key "b" (first defined at line 2, column 1)`}},
		{name: "nested duplicate", in: "a:\n  x: 1\n  x: 2\n", want: map[string]any{"a": map[string]any{"x": int64(1)}},
			problems: []string{`f.yml:3:3: duplicate key "x"`}},
		{name: "non-string key", in: "1: a\n", want: map[string]any{}, problems: []string{"f.yml:1:1: key 1 must be a string"}},
		{name: "unknown alias", in: "a: *nope\n", want: map[string]any{"a": nil}, problems: []string{"f.yml:1:4: alias *nope refers to no anchor"}},
		{name: "empty", in: "", fatal: true, problems: []string{"f.yml:1:1: file is empty"}},
		{name: "blank", in: "  \n\n", fatal: true, problems: []string{"f.yml:1:1: file is empty"}},
		{name: "comments only", in: "# nothing\n", fatal: true, problems: []string{"f.yml:1:1: file has no YAML document"}},
		{name: "two documents", in: "a: 1\n---\nb: 2\n", fatal: true, problems: []string{"f.yml:3:1: file holds 2 YAML documents"}},
		{name: "syntax error", in: "a: [1, 2\n", fatal: true, problems: []string{"f.yml:1:4: YAML syntax error"}},
		{name: "bad indentation", in: "a:\n  b: 1\n c: 2\n", fatal: true, problems: []string{"f.yml:3:"}},
		{name: "custom tag", in: "a: !secret x\n", want: map[string]any{"a": nil}, problems: []string{"f.yml:1:4: unsupported YAML tag !secret"}},
		{name: "infinity", in: "a: .inf\n", want: map[string]any{"a": nil}, problems: []string{"f.yml:1:4: .inf is not a number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ps := Parse("f.yml", []byte(tt.in))
			if (d == nil) != tt.fatal {
				t.Fatalf("document = %v, want fatal %v (problems %v)", d, tt.fatal, ps)
			}
			if len(ps) != len(tt.problems) {
				t.Fatalf("problems = %q, want %d like %q", ps.Error(), len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if !strings.HasPrefix(ps[i].String(), want) {
					t.Errorf("problem %d = %q, want prefix %q", i, ps[i].String(), want)
				}
			}
			if d != nil {
				if diff := cmp.Diff(tt.want, d.Root); diff != "" {
					t.Errorf("root (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	data := []byte("a: " + strings.Repeat("x", MaxSize) + "\n")
	d, ps := Parse("big.yml", data)
	if d != nil || len(ps) != 1 || !strings.Contains(ps[0].Message, "limit is 1048576") {
		t.Fatalf("Parse(big) = %v, %v; want the size limit problem", d, ps)
	}
}

func TestAliasBomb(t *testing.T) {
	// Each level doubles the values an alias expands to: 2^30 without the bound.
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x]\n")
	for i := 1; i <= 30; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [*a" + strconv.Itoa(i-1) + ", *a" + strconv.Itoa(i-1) + "]\n")
	}
	_, ps := Parse("bomb.yml", []byte(b.String()))
	if len(ps) == 0 || !strings.Contains(ps.Error(), "too many aliases") {
		t.Fatalf("problems = %v, want too many aliases", ps)
	}
}

func TestWideAliasBomb(t *testing.T) {
	// Few aliases, each expanding a large anchor: bounded by the number of values produced.
	var b strings.Builder
	b.WriteString("a: &a [" + strings.Repeat("x,", 3000) + "x]\nb: [")
	b.WriteString(strings.Repeat("*a,", 500) + "*a]\n")
	_, ps := Parse("wide.yml", []byte(b.String()))
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "expands to more than") {
		t.Fatalf("problems = %v, want one 'expands to more than' problem", ps)
	}
}

func TestPositions(t *testing.T) {
	in := "spec:\n  limits:\n    cpu: 2\n  list:\n    - a\n    - b\n"
	d, ps := Parse("f.yml", []byte(in))
	if ps != nil {
		t.Fatal(ps)
	}
	tests := []struct {
		name    string
		pointer string
		key     bool
		want    string
	}{
		{name: "value", pointer: "/spec/limits/cpu", want: "f.yml:3:10"},
		{name: "key", pointer: "/spec/limits/cpu", key: true, want: "f.yml:3:5"},
		{name: "list item", pointer: "/spec/list/1", want: "f.yml:6:7"},
		{name: "missing falls back to parent", pointer: "/spec/limits/memory", want: "f.yml:3:5"},
		{name: "missing key falls back to value", pointer: "/spec/nope", key: true, want: "f.yml:2:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := d.Pos(tt.pointer)
			if tt.key {
				got = d.KeyPos(tt.pointer)
			}
			if got.String() != tt.want {
				t.Errorf("position of %s = %s, want %s", tt.pointer, got, tt.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	base, _ := Parse("base.yml", []byte("metadata:\n  name: a\n  team: x\nspec:\n  args: [1, 2]\n  env:\n    A: a\n"))
	over, _ := Parse("over.yml", []byte("metadata:\n  name: b\nspec:\n  args: [3]\n  env:\n    B: b\n"))
	m := Merge(base, over)
	want := map[string]any{
		"metadata": map[string]any{"name": "b", "team": "x"},
		"spec":     map[string]any{"args": []any{int64(3)}, "env": map[string]any{"A": "a", "B": "b"}},
	}
	if diff := cmp.Diff(want, m.Root); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
	for pointer, want := range map[string]string{
		"/metadata/name": "over.yml:2:9",
		"/metadata/team": "base.yml:3:9",
		"/spec/args/0":   "over.yml:4:10",
		"/spec/args/1":   "over.yml:4:9", // the base's second arg is gone: falls back to the overlay's list
		"/spec/env/A":    "base.yml:7:8",
		"/spec/env/B":    "over.yml:6:8",
	} {
		if got := m.Pos(pointer).String(); got != want {
			t.Errorf("Pos(%s) = %s, want %s", pointer, got, want)
		}
	}
	if base.Root.(map[string]any)["metadata"].(map[string]any)["name"] != "a" {
		t.Error("Merge modified the base document")
	}
}

func TestClosest(t *testing.T) {
	candidates := []string{"schedule", "time_zone", "concurrency_policy", "image", "args"}
	tests := []struct {
		name, in, want string
	}{
		{name: "one letter missing", in: "schedul", want: "schedule"},
		{name: "underscore missing", in: "timezone", want: "time_zone"},
		{name: "typo", in: "concurency_policy", want: "concurrency_policy"},
		{name: "case", in: "Image", want: "image"},
		{name: "too far", in: "command", want: ""},
		{name: "nothing alike", in: "zzzzzzzz", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Closest(tt.in, candidates); got != tt.want {
				t.Errorf("Closest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a: 1\n", "a: [1, 2\n", "a: &x {b: *x}\n", "<<: 1\n", "- a\n- b\n", "a: !!str 1\n", "? [a]\n: b\n", "a: |\n x\n"} {
		f.Add([]byte(s))
	}
	// The adversarial shapes of TestScanBounds, each just over its bound.
	for _, s := range adversarial(MaxDepth + 1) {
		f.Add([]byte(s.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, ps := Parse("fuzz.yml", data)
		if d == nil && len(ps) == 0 {
			t.Fatal("no document and no problem")
		}
		for _, p := range ps {
			if p.Message == "" || p.Pos.File != "fuzz.yml" {
				t.Fatalf("problem without message or file: %+v", p)
			}
		}
	})
}
