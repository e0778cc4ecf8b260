package document

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The oracle is the validation this package did with github.com/santhosh-tekuri/jsonschema
// before issue 15: the tests hold the project's validator to the same problems and the same
// pruned value on the project's schemas.

// projectSchemas are the schemas the project compiles, read from their packages.
var projectSchemas = []struct{ name, url, path string }{
	{name: "manifest", url: "https://runwayjobs.dev/schemas/runway-job.json", path: "../manifest/schema.json"},
	{name: "inventory", url: "https://runwayjobs.dev/schemas/inventory.json", path: "../inventory/schema.json"},
}

type oracle struct {
	compiled *jsonschema.Schema
	own      *Schema // for raw-schema helpers (unknown, propertiesAt)
}

func newOracle(t testing.TB, url string, data []byte) *oracle {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	own, err := CompileSchema(url, data)
	if err != nil {
		t.Fatal(err)
	}
	return &oracle{compiled: s, own: own}
}

var oraclePrinter = message.NewPrinter(language.English)

func (o *oracle) validate(d *Document) (Problems, any) {
	err := o.compiled.Validate(d.Root)
	if err == nil {
		return nil, d.Root
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Problems{{Pos: Pos{File: d.File}, Message: err.Error()}}, nil
	}
	var out Problems
	seen := map[string]bool{}
	prune := map[string]bool{}
	for _, leaf := range oracleLeaves(ve, nil) {
		for _, p := range o.problems(d, leaf) {
			if _, missing := leaf.ErrorKind.(*kind.Required); !missing {
				prune[p.Pointer] = true
			}
			if k := p.String(); !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	}
	out.Sort()
	return out, without(d.Root, "", prune)
}

func oracleLeaves(e *jsonschema.ValidationError, acc []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(acc, e)
	}
	for _, c := range e.Causes {
		acc = oracleLeaves(c, acc)
	}
	return acc
}

func (o *oracle) problems(d *Document, e *jsonschema.ValidationError) Problems {
	s := o.own
	pointer := Pointer(e.InstanceLocation...)
	path := DottedPath(e.InstanceLocation)
	at := func(msg string) Problem {
		return Problem{Pos: d.Pos(pointer), Path: path, Pointer: pointer, Message: prefix(path) + msg}
	}
	switch k := e.ErrorKind.(type) {
	case *kind.FalseSchema:
		if n := len(e.InstanceLocation); n > 0 {
			return s.unknown(d, e.InstanceLocation[:n-1], []string{e.InstanceLocation[n-1]})
		}
	case *kind.AdditionalProperties:
		return s.unknown(d, e.InstanceLocation, k.Properties)
	case *kind.Required:
		noun := "field"
		if len(k.Missing) > 1 {
			noun = "fields"
		}
		p := at(fmt.Sprintf("missing required %s %s", noun, quoteJoin(k.Missing)))
		p.Pos = d.KeyPos(pointer)
		return Problems{p}
	case *kind.Type:
		return Problems{at(fmt.Sprintf("must be %s, not %s", article(k.Want), article([]string{k.Got})))}
	case *kind.Enum:
		vals := make([]string, len(k.Want))
		for i, v := range k.Want {
			vals[i] = fmt.Sprintf("%v", v)
		}
		msg := fmt.Sprintf("must be one of %s; got %v", quoteJoin(vals), quoteValue(k.Got))
		if got, ok := k.Got.(string); ok {
			if guess := Closest(got, vals); guess != "" {
				msg += fmt.Sprintf("; did you mean %q?", guess)
			}
		}
		return Problems{at(msg)}
	case *kind.Pattern:
		if msg, ok := o.node(e.SchemaURL)["x-pattern-message"].(string); ok {
			return Problems{at(fmt.Sprintf("%v: %s", quoteValue(k.Got), msg))}
		}
		return Problems{at(fmt.Sprintf("%v does not match the pattern %s", quoteValue(k.Got), k.Want))}
	case *kind.MinLength:
		return Problems{at(fmt.Sprintf("must be at least %d characters long", k.Want))}
	case *kind.MaxLength:
		return Problems{at(fmt.Sprintf("must be at most %d characters long; it is %d", k.Want, k.Got))}
	case *kind.Minimum:
		return Problems{at(fmt.Sprintf("must be at least %v; got %v", k.Want, k.Got))}
	case *kind.Maximum:
		return Problems{at(fmt.Sprintf("must be at most %v; got %v", k.Want, k.Got))}
	case *kind.MinItems:
		return Problems{at(fmt.Sprintf("must have at least %d entries", k.Want))}
	case *kind.MaxItems:
		return Problems{at(fmt.Sprintf("must have at most %d entries; it has %d", k.Want, k.Got))}
	case *kind.MaxProperties:
		return Problems{at(fmt.Sprintf("must have at most %d entries; it has %d", k.Want, k.Got))}
	case *kind.UniqueItems:
		dup := Pointer(append(append([]string{}, e.InstanceLocation...), strconv.Itoa(k.Duplicates[1]))...)
		return Problems{{Pos: d.Pos(dup), Path: path, Pointer: dup,
			Message: prefix(path) + fmt.Sprintf("entries %d and %d are the same", k.Duplicates[0], k.Duplicates[1])}}
	case *kind.Const:
		return Problems{at(fmt.Sprintf("must be %v; got %v", quoteValue(k.Want), quoteValue(k.Got)))}
	case *kind.PropertyNames:
		return nil
	}
	return Problems{at(e.ErrorKind.LocalizedString(oraclePrinter))}
}

// node returns the raw schema object at a compiled schema's URL (its #/json/pointer fragment).
func (o *oracle) node(url string) map[string]any {
	_, frag, ok := strings.Cut(url, "#")
	if !ok {
		return o.own.raw
	}
	var cur any = o.own.raw
	for _, tok := range SplitPointer(frag) {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	m, _ := cur.(map[string]any)
	return m
}

// sameAsOracle fails t when the validator and the oracle disagree on data.
// It returns the number of problems found.
func sameAsOracle(t *testing.T, o *oracle, data []byte) int {
	t.Helper()
	d, probs := Parse("f.yml", data)
	if probs != nil || d == nil {
		return 0 // not a document: the schemas never see it
	}
	wantProblems, wantValue := o.validate(d)
	gotProblems, gotValue := o.own.Validate(d)
	if fmt.Sprint(gotProblems) != fmt.Sprint(wantProblems) {
		t.Fatalf("problems of\n%s\n got: %v\nwant: %v", data, gotProblems, wantProblems)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Fatalf("pruned value of\n%s\n got: %#v\nwant: %#v", data, gotValue, wantValue)
	}
	return len(gotProblems)
}

// oracleSeeds are documents for both schemas: the examples, and edits of them that break
// each keyword the schemas use.
func oracleSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, pattern := range []string{"../../examples/*/.runway/runway.yml", "../../examples/*/.runway/*/runway.yml", "../../examples/inventory.yml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, data)
		}
	}
	if len(seeds) < 4 {
		t.Fatalf("only %d example documents found", len(seeds))
	}
	return append(seeds,
		[]byte("apiVersion: 7\nkind: [RunwayJob]\nmetadata: {name: Job_A, bogus: 1}\nspec: {task_count: 0, max_retries: 11.5, parallelism: -1, timeout: x, args: [1, 2]}\n"),
		[]byte("apiVersion: runway/v1\nkind: RunwayJob\nmetadata: {name: "+strings.Repeat("a", 60)+"}\nspec: {image: '', env: {A: 1, B: [x]}, schedule: {cron: 5}, concurrency_policy: forbid}\n"),
		[]byte("inventory:\n- {name: a, type: job, project_id: 0, gcp_project: p, regions: [us-east1, us-east1]}\n- {name: b, type: service, project_id: 1.5, gcp_project: proj-b, regions: [], extra: 1}\n- {name: c, type: job, project_id: 2, gcp_project: proj-c, regions: [x], colour: red, notifications: {channels: [a, a], x: 1}}\n- {type: cron}\n- 5\n"),
		[]byte("inventory: {}\nother: 1\n"),
		[]byte("- 1\n- 2\n"),
		[]byte("null\n"),
	)
}

func TestValidatorMatchesOracle(t *testing.T) {
	seeds := oracleSeeds(t)
	for _, ps := range projectSchemas {
		data, err := os.ReadFile(ps.path)
		if err != nil {
			t.Fatal(err)
		}
		o := newOracle(t, ps.url, data)
		t.Run(ps.name, func(t *testing.T) {
			problems := 0
			for _, seed := range seeds {
				problems += sameAsOracle(t, o, seed)
			}
			if problems < 10 {
				t.Errorf("the seeds raise %d problems: too few to compare the validators", problems)
			}
			t.Logf("%d problems, the same", problems)
		})
	}
}

// TestValidatorMatchesOracleMutations compares the validators on seeded random edits of the
// seeds (a deterministic complement of the fuzz target).
func TestValidatorMatchesOracleMutations(t *testing.T) {
	seeds := oracleSeeds(t)
	var oracles []*oracle
	for _, ps := range projectSchemas {
		data, err := os.ReadFile(ps.path)
		if err != nil {
			t.Fatal(err)
		}
		oracles = append(oracles, newOracle(t, ps.url, data))
	}
	r := rand.New(rand.NewPCG(15, 1))
	problems := 0
	for range 400 {
		s := bytes.Clone(seeds[r.IntN(len(seeds))])
		for range 1 + r.IntN(3) {
			s[r.IntN(len(s))] = mutationBytes[r.IntN(len(mutationBytes))]
		}
		for _, o := range oracles {
			problems += sameAsOracle(t, o, s)
		}
	}
	if problems < 100 {
		t.Errorf("the edits raise %d problems: too few to compare the validators", problems)
	}
}

// mutationBytes are the bytes the edits write: YAML's syntax, digits, letters.
const mutationBytes = " -:[]{},0123456789abcxyz\n'\"."

func FuzzValidatorMatchesOracle(f *testing.F) {
	for _, seed := range oracleSeeds(f) {
		f.Add(seed)
	}
	var oracles []*oracle
	for _, ps := range projectSchemas {
		data, err := os.ReadFile(ps.path)
		if err != nil {
			f.Fatal(err)
		}
		oracles = append(oracles, newOracle(f, ps.url, data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		for _, o := range oracles {
			sameAsOracle(t, o, data)
		}
	})
}

func TestCompileSchemaRefuses(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   string
	}{
		{name: "unsupported keyword", schema: `{"oneOf": [true]}`, want: `keyword "oneOf" is not supported`},
		{name: "bad pattern", schema: `{"properties": {"a": {"pattern": "("}}}`, want: "#/properties/a/pattern"},
		{name: "unknown type", schema: `{"type": "int"}`, want: "unknown or repeated type"},
		{name: "negative count", schema: `{"maxItems": -1}`, want: "non-negative integer"},
		{name: "not a schema", schema: `{"items": 5}`, want: "a schema is an object or a boolean"},
		{name: "not JSON", schema: `{`, want: "schema u:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileSchema("u", []byte(tt.schema))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CompileSchema(%s) = %v, want an error containing %q", tt.schema, err, tt.want)
			}
		})
	}
}
