// Package document reads YAML configuration files (RunwayJob manifests, the inventory) into
// plain JSON-like values while remembering where every key and value came from, so that every
// problem found later (by the JSON Schema or by Go checks) is reported as FILE:LINE:COL.
//
// It is called by the manifest and inventory packages. Its bounds on untrusted bytes (Scan for
// YAML, ScanJSON for JSON) are also called by every other decoder of tenant input: the channel
// configuration, the CloudEvent envelope, deploy and run requests, Artifact Registry
// notifications.
package document

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// MaxSize is the largest file Parse accepts (1 MiB): manifests are small, and a huge input is
// almost always a mistake (or an attack on the parser).
const MaxSize = 1 << 20

// Bounds on what aliases can make of a file within Scan's bounds ("billion laughs"): the number
// of aliases followed, and the number of values produced in all (ten times what a file can
// write without aliases, which keeps the converted document within a few MiB).
const (
	maxAliasExpansion = 10000
	maxValues         = 10 * MaxEntries
)

// Pos is a position in a file. Line and Col start at 1; zero means unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as FILE:LINE:COL.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Document is one parsed YAML document: its value (map[string]any, []any, string, int64,
// float64, bool or nil) and the positions of its parts, keyed by JSON pointer.
type Document struct {
	File  string
	Root  any
	pos   map[string]Pos // pointer -> position of the value
	keyAt map[string]Pos // pointer -> position of the mapping key naming it
}

// Pos returns the position of the value at pointer, or of its nearest known ancestor.
func (d *Document) Pos(pointer string) Pos {
	for {
		if p, ok := d.pos[pointer]; ok {
			return p
		}
		if pointer == "" {
			return Pos{File: d.File}
		}
		pointer = pointer[:strings.LastIndexByte(pointer, '/')]
	}
}

// KeyPos returns the position of the key naming the value at pointer, falling back to Pos.
func (d *Document) KeyPos(pointer string) Pos {
	if p, ok := d.keyAt[pointer]; ok {
		return p
	}
	return d.Pos(pointer)
}

// Has reports whether the document holds a value at pointer.
func (d *Document) Has(pointer string) bool {
	_, ok := d.pos[pointer]
	return ok
}

// Pointer joins JSON pointer tokens, escaping them (RFC 6901).
func Pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(pointerEscaper.Replace(t))
	}
	return b.String()
}

var (
	pointerEscaper   = strings.NewReplacer("~", "~0", "/", "~1")
	pointerUnescaper = strings.NewReplacer("~1", "/", "~0", "~")
)

// SplitPointer splits a JSON pointer into its unescaped tokens.
func SplitPointer(pointer string) []string {
	if pointer == "" || pointer == "/" {
		return nil
	}
	toks := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, t := range toks {
		toks[i] = pointerUnescaper.Replace(t)
	}
	return toks
}

// PathOf formats a JSON pointer as a dotted path: /spec/secrets/1/name is spec.secrets[1].name.
func PathOf(pointer string) string { return DottedPath(SplitPointer(pointer)) }

// ReadFile reads a configuration file, refusing directories and files over MaxSize before
// reading them (the limit protects memory as much as the parser).
func ReadFile(path string) ([]byte, Problems) {
	fail := func(msg string) ([]byte, Problems) {
		return nil, Problems{{Pos: Pos{File: path, Line: 1, Col: 1}, Message: msg}}
	}
	st, err := os.Stat(path)
	if err != nil {
		return fail("cannot read: " + pathError(err))
	}
	if st.IsDir() {
		return fail("is a directory, not a file")
	}
	if st.Size() > MaxSize {
		return fail(fmt.Sprintf("file is %d bytes; the limit is %d (1 MiB)", st.Size(), MaxSize))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fail("cannot read: " + pathError(err))
	}
	return data, nil
}

func pathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse reads data (the content of file) as exactly one YAML document, after Scan has checked
// its size and shape (so that the YAML library never sees a file that would cost it more than a
// few MiB or a fraction of a second). It reports every
// duplicate key, not only the first; a syntax error stops at the first. When the document could
// be read despite its problems (duplicate keys, unsupported values), it is returned with them,
// so that validation can go on and report everything at once; otherwise it is nil.
func Parse(file string, data []byte) (*Document, Problems) {
	d := &Document{File: file, pos: map[string]Pos{}, keyAt: map[string]Pos{}}
	if ps := Scan(file, data); ps != nil {
		return nil, ps
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Problems{{Pos: Pos{File: file, Line: 1, Col: 1}, Message: "file is empty"}}
	}
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, Problems{syntaxProblem(file, err)}
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	switch {
	case len(docs) == 0:
		return nil, Problems{{Pos: Pos{File: file, Line: 1, Col: 1}, Message: "file has no YAML document (only comments?)"}}
	case len(docs) > 1:
		return nil, Problems{{Pos: d.at(docs[1].Body), Message: fmt.Sprintf("file holds %d YAML documents; put one per file", len(docs))}}
	}
	c := &converter{doc: d, anchors: map[string]ast.Node{}}
	d.Root = c.value(docs[0].Body, "", 0)
	return d, c.problems
}

func (d *Document) at(n ast.Node) Pos {
	// A mapping's own token is the ':' of its first pair; users think of it as starting at its
	// first key.
	switch m := n.(type) {
	case *ast.MappingValueNode:
		return d.at(m.Key)
	case *ast.MappingNode:
		if len(m.Values) > 0 && !m.IsFlowStyle {
			return d.at(m.Values[0].Key)
		}
	}
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return Pos{File: d.File}
	}
	p := n.GetToken().Position
	return Pos{File: d.File, Line: p.Line, Col: p.Column}
}

type converter struct {
	doc      *Document
	anchors  map[string]ast.Node
	aliases  int
	values   int
	problems Problems
}

func (c *converter) fail(n ast.Node, format string, args ...any) {
	c.problems = append(c.problems, Problem{Pos: c.doc.at(n), Message: fmt.Sprintf(format, args...)})
}

// value converts n, recording positions under pointer. depth guards against runaway nesting.
func (c *converter) value(n ast.Node, pointer string, depth int) any {
	if depth > MaxDepth {
		c.fail(n, "document is nested too deeply")
		return nil
	}
	if c.values++; c.values > maxValues {
		if c.values == maxValues+1 {
			c.fail(n, "document expands to more than %d values (aliases?)", maxValues)
		}
		return nil
	}
	if _, seen := c.doc.pos[pointer]; !seen {
		c.doc.pos[pointer] = c.doc.at(n)
	}
	switch n := n.(type) {
	case nil:
		return nil
	case *ast.NullNode:
		return nil
	case *ast.StringNode:
		return n.Value
	case *ast.LiteralNode:
		return n.Value.Value
	case *ast.BoolNode:
		return n.Value
	case *ast.IntegerNode:
		switch v := n.Value.(type) {
		case int64:
			return v
		case uint64:
			if v > math.MaxInt64 {
				c.fail(n, "number %d is too large", v)
				return nil
			}
			return int64(v)
		}
		c.fail(n, "unreadable integer %q", n.GetToken().Value)
		return nil
	case *ast.FloatNode:
		return n.Value
	case *ast.InfinityNode, *ast.NanNode:
		c.fail(n, "%s is not a number a manifest can use", n.GetToken().Value)
		return nil
	case *ast.TagNode:
		return c.tagged(n, pointer, depth)
	case *ast.AnchorNode:
		if name := n.Name.GetToken().Value; name != "" {
			c.anchors[name] = n.Value
		}
		return c.value(n.Value, pointer, depth+1)
	case *ast.AliasNode:
		name := n.Value.GetToken().Value
		target, ok := c.anchors[name]
		if !ok {
			c.fail(n, "alias *%s refers to no anchor defined before it", name)
			return nil
		}
		c.aliases++
		if c.aliases > maxAliasExpansion {
			c.fail(n, "too many aliases")
			return nil
		}
		return c.value(target, pointer, depth+1)
	case *ast.MappingNode:
		return c.mapping(n.Values, pointer, depth)
	case *ast.MappingValueNode:
		return c.mapping([]*ast.MappingValueNode{n}, pointer, depth)
	case *ast.SequenceNode:
		out := make([]any, 0, len(n.Values))
		for i, v := range n.Values {
			out = append(out, c.value(v, pointer+"/"+strconv.Itoa(i), depth+1))
		}
		return out
	default:
		c.fail(n, "unsupported YAML construct %s", n.Type())
		return nil
	}
}

// tagged handles explicit tags: the standard scalar tags are honoured, others refused.
func (c *converter) tagged(n *ast.TagNode, pointer string, depth int) any {
	tag := n.Start.Value
	v := c.value(n.Value, pointer, depth+1)
	switch tag {
	case "!!str":
		if n.Value != nil && n.Value.GetToken() != nil {
			return n.Value.GetToken().Value
		}
		return ""
	case "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq":
		return v
	}
	c.fail(n, "unsupported YAML tag %s", tag)
	return nil
}

func (c *converter) mapping(values []*ast.MappingValueNode, pointer string, depth int) map[string]any {
	out := make(map[string]any, len(values))
	seen := map[string]ast.Node{}
	for _, mv := range values {
		if mv.Key != nil && mv.Key.Type() == ast.MergeKeyType {
			c.merge(out, mv.Value, pointer, depth)
			continue
		}
		key, ok := c.key(mv.Key)
		if !ok {
			continue
		}
		if first, dup := seen[key]; dup {
			p := c.doc.at(first)
			c.fail(mv.Key, "duplicate key %q (first defined at line %d, column %d)", key, p.Line, p.Col)
			continue
		}
		seen[key] = mv.Key
		child := pointer + "/" + pointerEscaper.Replace(key)
		c.doc.keyAt[child] = c.doc.at(mv.Key)
		// A key from a merge (<<) is overridden by an explicit key; forget the merged positions.
		if _, merged := out[key]; merged {
			c.forget(child)
		}
		out[key] = c.value(mv.Value, child, depth+1)
	}
	return out
}

// merge applies a YAML merge key (<<: *anchor or a list of them); explicit keys win.
func (c *converter) merge(out map[string]any, n ast.Node, pointer string, depth int) {
	src := c.value(n, pointer+"/<<", depth+1)
	c.forget(pointer + "/<<")
	var maps []map[string]any
	switch v := src.(type) {
	case map[string]any:
		maps = append(maps, v)
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				maps = append(maps, m)
			}
		}
	}
	if len(maps) == 0 {
		c.fail(n, "a merge key (<<) needs a mapping or a list of mappings")
		return
	}
	for _, m := range maps {
		for k, v := range m {
			if _, exists := out[k]; !exists {
				out[k] = v
				c.doc.pos[pointer+"/"+pointerEscaper.Replace(k)] = c.doc.at(n)
			}
		}
	}
}

func (c *converter) forget(pointer string) {
	for k := range c.doc.pos {
		if k == pointer || strings.HasPrefix(k, pointer+"/") {
			delete(c.doc.pos, k)
			delete(c.doc.keyAt, k)
		}
	}
}

func (c *converter) key(n ast.MapKeyNode) (string, bool) {
	switch k := n.(type) {
	case *ast.StringNode:
		return k.Value, true
	case nil:
		return "", false
	case ast.ScalarNode:
		// Numbers, booleans and nulls as keys: YAML allows them, our documents never use them,
		// and silently turning `on:` into "true" would be surprising.
		c.fail(n, "key %s must be a string", n.GetToken().Value)
		return "", false
	default:
		c.fail(n, "complex mapping keys are not supported")
		return "", false
	}
}

func syntaxProblem(file string, err error) Problem {
	type tokenError interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if te, ok := err.(tokenError); ok && te.GetToken() != nil && te.GetToken().Position != nil {
		p := te.GetToken().Position
		return Problem{Pos: Pos{File: file, Line: p.Line, Col: p.Column}, Message: "YAML syntax error: " + te.GetMessage()}
	}
	return Problem{Pos: Pos{File: file}, Message: "YAML syntax error: " + err.Error()}
}

// Problem is one thing wrong with a document.
type Problem struct {
	Pos     Pos
	Path    string // dotted path of the offending field, e.g. spec.resources.limits.cpu
	Pointer string // JSON pointer of the offending value, e.g. /spec/resources/limits/cpu
	Message string
}

// String formats the problem as FILE:LINE:COL: message.
func (p Problem) String() string { return p.Pos.String() + ": " + p.Message }

// Problems is every problem found in one or more documents. It implements error.
type Problems []Problem

// Error joins the problems, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders problems by file, line and column, keeping the original order for ties.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Pos, ps[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Err returns ps as an error, or nil when there are no problems.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}
