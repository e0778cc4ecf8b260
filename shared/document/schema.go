package document

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Schema is a compiled JSON Schema (draft 2020-12, the keywords validate.go lists) that
// reports problems with positions.
type Schema struct {
	compiled *node
	raw      map[string]any // the schema document, to suggest property names
}

// CompileSchema compiles the JSON Schema document in data; url names it in errors.
func CompileSchema(url string, data []byte) (*Schema, error) {
	doc, err := decodeSchema(data)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", url, err)
	}
	n, err := compileNode(doc, "#")
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", url, err)
	}
	raw, _ := doc.(map[string]any)
	return &Schema{compiled: n, raw: raw}, nil
}

// Validate checks d against the schema and returns every problem, each at the position of the
// offending key or value, and a copy of d.Root without the offending values (nil if the root
// itself is wrong), so that further checks can still run on the parts that are valid.
func (s *Schema) Validate(d *Document) (Problems, any) {
	vd := &validator{}
	if ok, _ := vd.validate(s.compiled, d.Root, nil, false); ok {
		return nil, d.Root
	}
	var out Problems
	seen := map[string]bool{}
	prune := map[string]bool{}
	for _, f := range vd.failures {
		for _, p := range s.problems(d, f) {
			if _, missing := f.kind.(kindRequired); !missing {
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

// without deep-copies v, leaving out the values at the pruned pointers.
func without(v any, pointer string, prune map[string]bool) any {
	if prune[pointer] {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			child := pointer + "/" + pointerEscaper.Replace(k)
			if !prune[child] {
				out[k] = without(e, child, prune)
			}
		}
		return out
	case []any:
		out := make([]any, 0, len(v))
		for i, e := range v {
			child := pointer + "/" + strconv.Itoa(i)
			if !prune[child] {
				out = append(out, without(e, child, prune))
			}
		}
		return out
	}
	return v
}

func (s *Schema) problems(d *Document, f failure) Problems {
	pointer := Pointer(f.loc...)
	path := DottedPath(f.loc)
	at := func(msg string) Problem {
		return Problem{Pos: d.Pos(pointer), Path: path, Pointer: pointer, Message: prefix(path) + msg}
	}
	switch k := f.kind.(type) {
	case kindFalse:
		// unevaluatedProperties: false reports each unknown property at its own location.
		if n := len(f.loc); n > 0 {
			return s.unknown(d, f.loc[:n-1], []string{f.loc[n-1]})
		}
		return Problems{at("false schema")}
	case kindAdditional:
		return s.unknown(d, f.loc, k.props)
	case kindRequired:
		noun := "field"
		if len(k.missing) > 1 {
			noun = "fields"
		}
		p := at(fmt.Sprintf("missing required %s %s", noun, quoteJoin(k.missing)))
		p.Pos = d.KeyPos(pointer)
		return Problems{p}
	case kindType:
		return Problems{at(fmt.Sprintf("must be %s, not %s", article(k.want), article([]string{k.got})))}
	case kindEnum:
		vals := make([]string, len(k.want))
		for i, v := range k.want {
			vals[i] = fmt.Sprintf("%v", v)
		}
		msg := fmt.Sprintf("must be one of %s; got %v", quoteJoin(vals), quoteValue(k.got))
		if got, ok := k.got.(string); ok {
			if guess := Closest(got, vals); guess != "" {
				msg += fmt.Sprintf("; did you mean %q?", guess)
			}
		}
		return Problems{at(msg)}
	case kindPattern:
		if k.message != "" {
			return Problems{at(fmt.Sprintf("%v: %s", quoteValue(k.got), k.message))}
		}
		return Problems{at(fmt.Sprintf("%v does not match the pattern %s", quoteValue(k.got), k.want))}
	case kindMinLength:
		return Problems{at(fmt.Sprintf("must be at least %d characters long", k.want))}
	case kindMaxLength:
		return Problems{at(fmt.Sprintf("must be at most %d characters long; it is %d", k.want, k.got))}
	case kindMinimum:
		return Problems{at(fmt.Sprintf("must be at least %v; got %v", k.want, k.got))}
	case kindMaximum:
		return Problems{at(fmt.Sprintf("must be at most %v; got %v", k.want, k.got))}
	case kindMinItems:
		return Problems{at(fmt.Sprintf("must have at least %d entries", k.want))}
	case kindMaxItems:
		return Problems{at(fmt.Sprintf("must have at most %d entries; it has %d", k.want, k.got))}
	case kindMaxProperties:
		return Problems{at(fmt.Sprintf("must have at most %d entries; it has %d", k.want, k.got))}
	case kindUnique:
		dup := Pointer(append(append([]string{}, f.loc...), strconv.Itoa(k.dup[1]))...)
		return Problems{{Pos: d.Pos(dup), Path: path, Pointer: dup,
			Message: prefix(path) + fmt.Sprintf("entries %d and %d are the same", k.dup[0], k.dup[1])}}
	case kindConst:
		return Problems{at(fmt.Sprintf("must be %v; got %v", quoteValue(k.want), quoteValue(k.got)))}
	case kindInvalid:
		return Problems{at(fmt.Sprintf("invalid jsonType %T", k.v))}
	}
	return Problems{at(fmt.Sprintf("%T", f.kind))} // unreachable: every kind is listed above
}

// unknown reports properties the schema does not allow at loc, suggesting the closest known name.
func (s *Schema) unknown(d *Document, loc, props []string) Problems {
	var out Problems
	for _, prop := range props {
		child := append(append([]string{}, loc...), prop)
		msg := fmt.Sprintf("unknown field %q", DottedPath(child))
		if guess := Closest(prop, s.propertiesAt(loc)); guess != "" {
			msg += fmt.Sprintf("; did you mean %q?", guess)
		}
		out = append(out, Problem{Pos: d.KeyPos(Pointer(child...)), Path: DottedPath(child), Pointer: Pointer(child...), Message: msg})
	}
	return out
}

// propertiesAt lists the property names the schema allows at an instance location, following
// "properties" and "items" and "$ref" to "$defs" (enough for the schemas this project writes).
func (s *Schema) propertiesAt(loc []string) []string {
	node := s.raw
	for _, tok := range loc {
		node = s.deref(node)
		if props, ok := node["properties"].(map[string]any); ok {
			if next, ok := props[tok].(map[string]any); ok {
				node = next
				continue
			}
		}
		if items, ok := node["items"].(map[string]any); ok {
			node = items
			continue
		}
		if next := elseProperties(node, tok); next != nil {
			node = next
			continue
		}
		if ap, ok := node["additionalProperties"].(map[string]any); ok {
			node = ap
			continue
		}
		return nil
	}
	node = s.deref(node)
	var names []string
	for _, n := range []map[string]any{node, asMap(node["else"]), asMap(node["then"])} {
		props, _ := n["properties"].(map[string]any)
		for name := range props {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// elseProperties follows a property declared in a conditional branch (if/then/else).
func elseProperties(node map[string]any, tok string) map[string]any {
	for _, branch := range []string{"else", "then"} {
		props, _ := asMap(node[branch])["properties"].(map[string]any)
		if next, ok := props[tok].(map[string]any); ok {
			return next
		}
	}
	return nil
}

func (s *Schema) deref(node map[string]any) map[string]any {
	for i := 0; i < 8; i++ {
		ref, ok := node["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/$defs/") {
			return node
		}
		defs, _ := s.raw["$defs"].(map[string]any)
		next, ok := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		if !ok {
			return node
		}
		node = next
	}
	return node
}

// DottedPath formats instance location tokens as spec.containers[0].name.
func DottedPath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func quoteJoin(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

func article(types []string) string {
	out := make([]string, len(types))
	for i, t := range types {
		switch t {
		case "object":
			out[i] = "a mapping"
		case "array":
			out[i] = "a list"
		case "integer":
			out[i] = "an integer"
		case "null":
			out[i] = "empty"
		default:
			out[i] = "a " + t
		}
	}
	return strings.Join(out, " or ")
}

// Closest returns the candidate nearest to s by edit distance when it is close enough to be a
// plausible misspelling (at most a third of its length, and at least 2, edits away), or "".
func Closest(s string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := distance(strings.ToLower(s), strings.ToLower(c)); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(best)/3) {
		return ""
	}
	return best
}

// distance is the Levenshtein edit distance over bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
