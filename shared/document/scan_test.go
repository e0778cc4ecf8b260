package document

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// shape is one adversarial input: the kind of file a tenant could send to make a YAML library
// spend its memory or time.
type shape struct {
	name string
	data string
}

// adversarial returns the adversarial shapes at size n (a depth, or a number of repetitions).
func adversarial(n int) []shape {
	var keys, block, mix strings.Builder
	for i := range n {
		fmt.Fprintf(&keys, "k%06d: v\n", i)
	}
	for i := range min(n, 1400) { // 1400 levels fill 1 MiB
		fmt.Fprintf(&block, "%sa:\n", strings.Repeat(" ", i))
	}
	for i := 0; mix.Len() < MaxSize-64<<10; i++ {
		fmt.Fprintf(&mix, "m%06d: {a: [1, \"x\", &a%d y], b: *a%d, c: |\n    text [{\n}\n", i, i, i)
	}
	return []shape{
		{name: "deep flow", data: strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"},
		{name: "deep flow mapping", data: strings.Repeat("{a: ", n) + strings.Repeat("}", n) + "\n"},
		{name: "deep block", data: block.String()},
		{name: "deep block sequence", data: strings.Repeat("- ", n) + "x\n"},
		{name: "many keys", data: keys.String()},
		{name: "many items", data: strings.Repeat("- x\n", n)},
		{name: "many flow items", data: "a: [" + strings.Repeat("1,", n) + "1]\n"},
		{name: "long plain scalar", data: "a: " + strings.Repeat("x", n) + "\n"},
		{name: "long quoted scalar", data: `a: "` + strings.Repeat(`x\"`, n/2) + "\"\n"},
		{name: "long block scalar", data: "a: |\n" + strings.Repeat("  xxxxxxx\n", n/10+1)},
		{name: "many aliases", data: "a: &a x\nb: [" + strings.Repeat("*a, ", n) + "*a]\n"},
		{name: "many documents", data: strings.Repeat("---\na: 1\n", n)},
		{name: "many comments", data: strings.Repeat("#\n", n)},
		{name: "mix", data: mix.String()},
	}
}

func TestScanBounds(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // FILE:LINE:COL: message prefix; "" accepts
	}{
		{name: "deep flow at the limit", in: strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)},
		{name: "deep flow over the limit", in: strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), want: "f.yml:1:65: document is nested more than 64 levels deep"},
		{name: "deep flow mapping", in: strings.Repeat("{a: ", MaxDepth+1), want: "f.yml:1:257: document is nested more than 64"},
		{name: "block and flow together", in: "a:\n  b: " + strings.Repeat("[", MaxDepth-1), want: "f.yml:2:68: document is nested more than 64"},
		{name: "deep block", in: adversarial(MaxDepth + 1)[2].data, want: "f.yml:65:65: document is nested more than 64"},
		{name: "deep block sequence", in: strings.Repeat("- ", MaxDepth+1) + "x\n", want: "f.yml:1:129: document is nested more than 64"},
		{name: "sequence under its key's column is one level", in: "a:\n- b:\n  - c\nd: 1\n"},
		{name: "mapping at the limit", in: adversarial(MaxMappingEntries)[4].data},
		{name: "mapping over the limit", in: adversarial(MaxMappingEntries + 1)[4].data, want: "f.yml:501:1: mapping has more than 500 entries"},
		{name: "flow mapping over the limit", in: "{" + strings.Repeat("a: 1, ", MaxMappingEntries) + "b: 2}", want: "f.yml:1:3002: mapping has more than 500 entries"},
		{name: "many mappings, many entries", in: strings.Repeat("- {a: 1, b: 2, c: 3, d: 4}\n", MaxEntries/5+1), want: "f.yml:801:1: file has more than 4000 mapping entries and sequence items"},
		{name: "many items", in: strings.Repeat("- x\n", MaxEntries+1), want: "f.yml:4001:1: file has more than 4000 mapping entries"},
		{name: "many flow items", in: "[" + strings.Repeat("1,", MaxEntries) + "1]", want: "f.yml:1:8002: file has more than 4000"},
		{name: "many tokens", in: strings.Repeat("# c\n", MaxTokens+1), want: "f.yml:40001:1: file has more than 40000 YAML tokens"},
		{name: "long plain scalar", in: "a: " + strings.Repeat("x", MaxScalar+1), want: "f.yml:1:4: scalar is longer than 65536 bytes"},
		{name: "plain scalar at the limit", in: "a: " + strings.Repeat("x", MaxScalar)},
		{name: "long quoted scalar", in: `a: '` + strings.Repeat("x", MaxScalar+1) + "'", want: "f.yml:1:4: scalar is longer than 65536"},
		{name: "quoted scalar at the limit", in: `a: "` + strings.Repeat("x", MaxScalar) + `"`},
		{name: "long block scalar", in: "a:\n  b: >\n" + strings.Repeat("    xxxx\n", MaxScalar/5), want: "f.yml:2:6: scalar is longer than 65536"},
		{name: "long comment is not a scalar", in: "a: 1\n#" + strings.Repeat("x", MaxSize-10) + "\n"},
		{name: "many aliases", in: "a: &a x\nb: [" + strings.Repeat("*a, ", MaxAliases) + "*a]", want: "f.yml:2:4005: file has more than 1000 aliases"},
		{name: "two documents", in: "a: 1\n---\nb: 2\n", want: "f.yml:3:1: file holds 2 YAML documents"},
		{name: "many documents", in: strings.Repeat("---\na: 1\n", 5), want: "f.yml:4:1: file holds 5 YAML documents"},
		{name: "markers without a second document", in: "# c\n---\na: 1\n---\n# end\n...\n"},
		{name: "too large", in: strings.Repeat(" ", MaxSize+1), want: "f.yml:1:1: file is 1048577 bytes"},
		// What looks like structure but is text is not counted.
		{name: "brackets in a block scalar", in: "a: |\n  " + strings.Repeat("[", 1000) + "\n  - x: y\n  ---\nb: 1\n"},
		{name: "brackets in quotes and comments", in: `a: "` + strings.Repeat("[", 1000) + `"` + "\nb: '[{: ''x'" + "\n# " + strings.Repeat("{", 1000) + "\nc: x[y]\n"},
		{name: "document marker in a block scalar", in: "a: |\n  ---\n  b\n---\n", want: ""},
		{name: "JSON", in: `{"a":{"b":[1,2,{"c":"d"}]},"e":"f:g"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := Scan("f.yml", []byte(tt.in))
			switch {
			case tt.want == "" && ps != nil:
				t.Fatalf("Scan = %v, want no problem", ps)
			case tt.want != "" && (len(ps) != 1 || !strings.HasPrefix(ps[0].String(), tt.want)):
				t.Fatalf("Scan = %v, want one problem %q", ps, tt.want)
			}
		})
	}
}

// TestScanAcceptsTheExamples: every file in examples/ is within the bounds, with room.
func TestScanAcceptsTheExamples(t *testing.T) {
	var files []string
	filepath.WalkDir("../../examples", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".yaml")) {
			files = append(files, path)
		}
		return err
	})
	if len(files) == 0 {
		t.Fatal("no example files found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if ps := Scan(f, data); ps != nil {
			t.Errorf("Scan(%s) = %v", f, ps)
		}
	}
}

// TestParseRefusesAdversarialShapes: each shape, at the size that fills the 1 MiB limit (or
// over its bound), is refused by Parse with a position, before the YAML library runs.
func TestParseRefusesAdversarialShapes(t *testing.T) {
	for _, s := range adversarial(100000) {
		t.Run(s.name, func(t *testing.T) {
			data := []byte(s.data)
			if len(data) > MaxSize {
				data = data[:MaxSize]
			}
			d, ps := Parse("f.yml", data)
			if d != nil || len(ps) != 1 || ps[0].Pos.Line == 0 {
				t.Fatalf("Parse = %v, %v; want one positioned problem", d, ps)
			}
		})
	}
}

func BenchmarkScan(b *testing.B) {
	data, err := os.ReadFile("../../examples/inventory.yml")
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range append([]shape{{name: "inventory", data: string(data)}}, adversarial(100000)...) {
		in := []byte(s.data)
		if len(in) > MaxSize {
			in = in[:MaxSize]
		}
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				Scan("f.yml", in)
			}
		})
	}
}

// FuzzScan: what Scan accepts, the parser reads as no deeper than MaxDepth collections, so the
// scan's count of depth is never below the parser's (the bound that protects memory).
func FuzzScan(f *testing.F) {
	for _, s := range []string{"a: [1, {b: c}]\n", "a:\n  - b: |\n      [[[\n  - c\n", "- - - x\n", `{"a":{"b":[1]}}`, "a: 'x''[['\n"} {
		f.Add([]byte(s))
	}
	for _, s := range adversarial(MaxDepth + 1) {
		f.Add([]byte(s.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Scan("fuzz.yml", data) != nil {
			return
		}
		file, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
		if err != nil {
			return
		}
		for _, doc := range file.Docs {
			if d := astDepth(doc.Body); d > MaxDepth {
				t.Fatalf("Scan accepted %q; the parser reads %d levels", data, d)
			}
		}
	})
}

// astDepth is the number of nested mappings and sequences in n.
func astDepth(n ast.Node) int {
	d := 0
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, v := range n.Values {
			d = max(d, astDepth(v.Value))
		}
		return d + 1
	case *ast.MappingValueNode:
		return astDepth(n.Value) + 1
	case *ast.SequenceNode:
		for _, v := range n.Values {
			d = max(d, astDepth(v))
		}
		return d + 1
	case *ast.AnchorNode:
		return astDepth(n.Value)
	case *ast.TagNode:
		return astDepth(n.Value)
	}
	return 0
}
