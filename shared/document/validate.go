package document

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The JSON Schema validator of the project's own schemas (draft 2020-12, the keywords below
// only). It replaces github.com/santhosh-tekuri/jsonschema in the binaries: that library
// compiles the meta-schemas of five drafts when it is initialised, 9 to 22 ms and 1.7 MB of
// every function's cold start (issue 15). It follows that library's semantics for these
// keywords, errors included; the tests compare the two on the schemas and on fuzzed
// documents. A schema with any other keyword is refused when compiled.

// keywords are the validation keywords the compiler understands.
var keywords = map[string]bool{
	"type": true, "enum": true, "const": true,
	"properties": true, "additionalProperties": true, "required": true, "maxProperties": true,
	"unevaluatedProperties": true, "items": true, "minItems": true, "maxItems": true, "uniqueItems": true,
	"minLength": true, "maxLength": true, "pattern": true, "minimum": true, "maximum": true,
	"if": true, "then": true, "else": true,
}

// annotations are the keywords that do not validate.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "title": true, "description": true, "default": true, "examples": true,
	"$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

// node is one compiled schema object (or boolean schema).
type node struct {
	boolean *bool // a boolean schema
	types   []string
	enum    []any
	konst   *any

	properties     map[string]*node
	additional     *node // additionalProperties; nil when absent
	required       []string
	maxProperties  *int
	unevaluated    *node // unevaluatedProperties
	items          *node
	minItems       *int
	maxItems       *int
	uniqueItems    bool
	minLength      *int
	maxLength      *int
	pattern        *regexp.Regexp
	patternMessage string // x-pattern-message
	minimum        *big.Rat
	maximum        *big.Rat
	ifNode         *node
	thenNode       *node
	elseNode       *node
}

// compileNode compiles the schema value v found at the JSON pointer at.
func compileNode(v any, at string) (*node, error) {
	switch v := v.(type) {
	case bool:
		return &node{boolean: &v}, nil
	case map[string]any:
		n := &node{}
		for k, val := range v {
			if err := n.keyword(k, val, at); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("%s: a schema is an object or a boolean, not %T", at, v)
}

// keyword compiles one keyword of a schema object.
func (n *node) keyword(k string, val any, at string) error {
	at += "/" + pointerEscaper.Replace(k)
	if !keywords[k] {
		if annotations[k] || strings.HasPrefix(k, "x-") {
			if k == "x-pattern-message" {
				n.patternMessage, _ = val.(string)
			}
			return nil
		}
		return fmt.Errorf("%s: keyword %q is not supported by this validator", at, k)
	}
	var err error
	sub := func(v any) *node {
		var s *node
		if err == nil {
			s, err = compileNode(v, at)
		}
		return s
	}
	count := func() *int {
		f, ok := val.(json.Number)
		i, perr := strconv.Atoi(string(f))
		if !ok || perr != nil || i < 0 {
			err = fmt.Errorf("%s: want a non-negative integer, got %v", at, val)
			return nil
		}
		return &i
	}
	switch k {
	case "type":
		switch t := val.(type) {
		case string:
			n.types = []string{t}
		case []any:
			for _, e := range t {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("%s: a type is a string", at)
				}
				n.types = append(n.types, s)
			}
		default:
			return fmt.Errorf("%s: want a type or a list of types", at)
		}
		// In the library's order (its message lists them so).
		var ordered []string
		for _, t := range []string{"null", "boolean", "number", "integer", "string", "array", "object"} {
			if slices.Contains(n.types, t) {
				ordered = append(ordered, t)
			}
		}
		if len(ordered) != len(n.types) {
			return fmt.Errorf("%s: unknown or repeated type in %v", at, n.types)
		}
		n.types = ordered
	case "enum":
		vals, ok := val.([]any)
		if !ok {
			return fmt.Errorf("%s: want a list", at)
		}
		n.enum = vals
	case "const":
		n.konst = &val
	case "properties":
		props, ok := val.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object", at)
		}
		n.properties = map[string]*node{}
		for name, p := range props {
			if n.properties[name], err = compileNode(p, at+"/"+pointerEscaper.Replace(name)); err != nil {
				return err
			}
		}
	case "additionalProperties":
		n.additional = sub(val)
	case "unevaluatedProperties":
		n.unevaluated = sub(val)
	case "items":
		n.items = sub(val)
	case "if":
		n.ifNode = sub(val)
	case "then":
		n.thenNode = sub(val)
	case "else":
		n.elseNode = sub(val)
	case "required":
		names, ok := val.([]any)
		if !ok {
			return fmt.Errorf("%s: want a list", at)
		}
		for _, e := range names {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("%s: a required name is a string", at)
			}
			n.required = append(n.required, s)
		}
	case "maxProperties":
		n.maxProperties = count()
	case "minItems":
		n.minItems = count()
	case "maxItems":
		n.maxItems = count()
	case "minLength":
		n.minLength = count()
	case "maxLength":
		n.maxLength = count()
	case "uniqueItems":
		b, ok := val.(bool)
		if !ok {
			return fmt.Errorf("%s: want a boolean", at)
		}
		n.uniqueItems = b
	case "pattern":
		s, ok := val.(string)
		if !ok {
			return fmt.Errorf("%s: want a string", at)
		}
		if n.pattern, err = regexp.Compile(s); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
	case "minimum", "maximum":
		f, ok := val.(json.Number)
		r, rok := new(big.Rat).SetString(string(f))
		if !ok || !rok {
			return fmt.Errorf("%s: want a number", at)
		}
		if k == "minimum" {
			n.minimum = r
		} else {
			n.maximum = r
		}
	}
	return err
}

// decodeSchema reads a schema document, numbers as json.Number.
func decodeSchema(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the schema")
	}
	return v, nil
}

// problem kinds: what failed, with the library's Got and Want.
type (
	kindFalse      struct{}
	kindAdditional struct{ props []string }
	kindRequired   struct{ missing []string }
	kindType       struct {
		got  string
		want []string
	}
	kindEnum struct {
		got  any
		want []any
	}
	kindConst   struct{ got, want any }
	kindPattern struct {
		got, want, message string
	}
	kindMinLength     struct{ got, want int }
	kindMaxLength     struct{ got, want int }
	kindMinimum       struct{ got, want *big.Rat }
	kindMaximum       struct{ got, want *big.Rat }
	kindMinItems      struct{ got, want int }
	kindMaxItems      struct{ got, want int }
	kindMaxProperties struct{ got, want int }
	kindUnique        struct{ dup [2]int }
	kindInvalid       struct{ v any }
)

// failure is one failed keyword at an instance location.
type failure struct {
	loc  []string
	kind any
}

// validator walks one instance; it collects failures unless probing (the "if" of a
// conditional, where only validity counts).
type validator struct {
	failures []failure
	probing  bool
}

// validate checks v at loc against n and returns whether it is valid and the properties of v
// (an object) that n and its in-place subschemas left unevaluated, when track is set or n
// has unevaluatedProperties.
func (vd *validator) validate(n *node, v any, loc []string, track bool) (bool, map[string]bool) {
	nerr := 0
	fail := func(l []string, k any) {
		nerr++
		if !vd.probing {
			vd.failures = append(vd.failures, failure{loc: slices.Clone(l), kind: k})
		}
	}
	var uneval map[string]bool
	if obj, ok := v.(map[string]any); ok && (track || n.unevaluated != nil) {
		uneval = make(map[string]bool, len(obj))
		for k := range obj {
			uneval[k] = true
		}
	}
	if n.boolean != nil {
		if !*n.boolean {
			fail(loc, kindFalse{})
			return false, nil
		}
		return true, uneval
	}
	t := typeOf(v)
	if t == "" {
		fail(loc, kindInvalid{v})
		return false, nil
	}
	if n.types != nil && !slices.Contains(n.types, t) && !(t == "number" && slices.Contains(n.types, "integer") && isInteger(v)) {
		fail(loc, kindType{got: t, want: n.types})
		return false, nil
	}
	if n.konst != nil && !equal(v, *n.konst) {
		fail(loc, kindConst{got: v, want: *n.konst})
		return false, nil
	}
	if n.enum != nil && !slices.ContainsFunc(n.enum, func(w any) bool { return equal(v, w) }) {
		fail(loc, kindEnum{got: v, want: n.enum})
		return false, nil
	}
	sub := func(s *node, val any, tok string) {
		if ok, _ := vd.validate(s, val, append(slices.Clip(loc), tok), false); !ok {
			nerr++
		}
	}
	switch v := v.(type) {
	case map[string]any:
		if n.maxProperties != nil && len(v) > *n.maxProperties {
			fail(loc, kindMaxProperties{got: len(v), want: *n.maxProperties})
		}
		var missing []string
		for _, r := range n.required {
			if _, ok := v[r]; !ok {
				missing = append(missing, r)
			}
		}
		if missing != nil {
			fail(loc, kindRequired{missing: missing})
		}
		var additional []string
		for _, name := range sortedKeys(v) {
			evaluated := false
			if s, ok := n.properties[name]; ok {
				evaluated = true
				sub(s, v[name], name)
			}
			if !evaluated && n.additional != nil {
				evaluated = true
				if b := n.additional.boolean; b != nil && !*b {
					additional = append(additional, name)
				} else if b == nil {
					sub(n.additional, v[name], name)
				}
			}
			if evaluated {
				delete(uneval, name)
			}
		}
		if additional != nil {
			fail(loc, kindAdditional{props: additional})
		}
	case []any:
		if n.minItems != nil && len(v) < *n.minItems {
			fail(loc, kindMinItems{got: len(v), want: *n.minItems})
		}
		if n.maxItems != nil && len(v) > *n.maxItems {
			fail(loc, kindMaxItems{got: len(v), want: *n.maxItems})
		}
		if n.uniqueItems {
			if i, j := duplicates(v); i >= 0 {
				fail(loc, kindUnique{dup: [2]int{i, j}})
			}
		}
		if n.items != nil {
			for i, e := range v {
				sub(n.items, e, strconv.Itoa(i))
			}
		}
	case string:
		runes := utf8.RuneCountInString(v)
		if n.minLength != nil && runes < *n.minLength {
			fail(loc, kindMinLength{got: runes, want: *n.minLength})
		}
		if n.maxLength != nil && runes > *n.maxLength {
			fail(loc, kindMaxLength{got: runes, want: *n.maxLength})
		}
		if n.pattern != nil && !n.pattern.MatchString(v) {
			fail(loc, kindPattern{got: v, want: n.pattern.String(), message: n.patternMessage})
		}
	case int64, float64:
		r := ratOf(v)
		if n.minimum != nil && r.Cmp(n.minimum) < 0 {
			fail(loc, kindMinimum{got: r, want: n.minimum})
		}
		if n.maximum != nil && r.Cmp(n.maximum) > 0 {
			fail(loc, kindMaximum{got: r, want: n.maximum})
		}
	}
	// if/then/else: the branch taken evaluates in place, and its evaluated properties count.
	inPlace := func(s *node) {
		ok, u := vd.validate(s, v, loc, uneval != nil)
		if !ok {
			nerr++
			return
		}
		for k := range uneval {
			if !u[k] {
				delete(uneval, k)
			}
		}
	}
	if n.ifNode != nil {
		probe := &validator{probing: true}
		ok, u := probe.validate(n.ifNode, v, loc, uneval != nil)
		if ok {
			for k := range uneval {
				if !u[k] {
					delete(uneval, k)
				}
			}
			if n.thenNode != nil {
				inPlace(n.thenNode)
			}
		} else if n.elseNode != nil {
			inPlace(n.elseNode)
		}
	}
	if obj, ok := v.(map[string]any); ok && n.unevaluated != nil {
		for _, name := range sortedKeys(obj) {
			if uneval[name] {
				sub(n.unevaluated, obj[name], name)
			}
		}
		uneval = nil
	}
	return nerr == 0, uneval
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// typeOf is the JSON type of a document value ("" for none: NaN, infinities, other Go types).
func typeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ""
		}
		return "number"
	case int64, json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return ""
}

func isInteger(v any) bool {
	switch v := v.(type) {
	case int64:
		return true
	case float64:
		return v == math.Trunc(v)
	}
	return false
}

// ratOf is a number's exact value, as the library reads it (from its %v form).
func ratOf(v any) *big.Rat {
	r, _ := new(big.Rat).SetString(fmt.Sprintf("%v", v))
	return r
}

// equal is JSON equality: numbers by value, objects and arrays by content.
func equal(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !equal(va, vb) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equal(a[i], b[i]) {
				return false
			}
		}
		return true
	case nil:
		return b == nil
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case string:
		b, ok := b.(string)
		return ok && a == b
	case int64, float64, json.Number:
		if typeOf(b) != "number" {
			return false
		}
		return ratOf(a).Cmp(ratOf(b)) == 0
	}
	return false
}

// duplicates returns the indexes j < i of the first item i equal to an earlier one j (the
// first such j), or -1, -1. Items are grouped by a canonical key, so a long list costs one
// pass rather than a comparison of every pair.
func duplicates(arr []any) (int, int) {
	seen := make(map[string]int, len(arr))
	for i, e := range arr {
		k := canonical(e)
		if j, ok := seen[k]; ok {
			return j, i
		}
		seen[k] = i
	}
	return -1, -1
}

// canonical encodes v so that equal values (per equal) encode alike.
func canonical(v any) string {
	var b strings.Builder
	var enc func(any)
	enc = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			b.WriteByte('{')
			for _, k := range sortedKeys(v) {
				b.WriteString(strconv.Quote(k))
				b.WriteByte(':')
				enc(v[k])
				b.WriteByte(',')
			}
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for _, e := range v {
				enc(e)
				b.WriteByte(',')
			}
			b.WriteByte(']')
		case string:
			b.WriteString(strconv.Quote(v))
		case int64, float64:
			if r := ratOf(v); r != nil {
				b.WriteString("n" + r.RatString())
			} else {
				fmt.Fprintf(&b, "?%T%v", v, v)
			}
		default:
			fmt.Fprintf(&b, "%T:%v", v, v)
		}
	}
	enc(v)
	return b.String()
}
