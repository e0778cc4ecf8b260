package rest

import (
	"fmt"
	"net/url"
	"strings"
)

// maxTemplate bounds a path template's length (the protos' longest is under 100 bytes).
const maxTemplate = 1 << 10

// segKind is what one segment of a path template matches.
type segKind uint8

const (
	literal  segKind = iota // the segment's text
	wildcard                // "*": one non-empty segment
	deep                    // "**": zero or more segments, only last
)

type segment struct {
	kind segKind
	text string // for literal
}

// variable binds the path segments [start, end) of a template to a request field.
type variable struct {
	field      string // dotted field path, as written in the template
	start, end int
}

// template is a parsed google.api.http path template:
//
//	Template = "/" Segments [ Verb ] ;
//	Segments = Segment { "/" Segment } ;
//	Segment  = "*" | "**" | LITERAL | Variable ;
//	Variable = "{" FieldPath [ "=" Segments ] "}" ;
//	Verb     = ":" LITERAL ;
type template struct {
	raw  string
	segs []segment
	vars []variable
	verb string
}

// parseTemplate parses a path template; a variable without a pattern matches one segment.
func parseTemplate(s string) (*template, error) {
	if len(s) > maxTemplate {
		return nil, fmt.Errorf("parse template: %d bytes, more than %d", len(s), maxTemplate)
	}
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("parse template %q: does not start with /", s)
	}
	t := &template{raw: s}
	rest := s[1:]
	// The verb is after the last ':' that is not inside a variable.
	depth, colon := 0, -1
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ':':
			if depth == 0 {
				colon = i
			}
		}
	}
	if colon >= 0 {
		t.verb = rest[colon+1:]
		rest = rest[:colon]
		if !validLiteral(t.verb) {
			return nil, fmt.Errorf("parse template %q: bad verb %q", s, t.verb)
		}
	}
	for len(rest) > 0 || len(t.segs) == 0 {
		var part string
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("parse template %q: unclosed {", s)
			}
			part, rest = rest[1:end], rest[end+1:]
			field, pattern, hasPattern := strings.Cut(part, "=")
			if !validFieldPath(field) {
				return nil, fmt.Errorf("parse template %q: bad field path %q", s, field)
			}
			if !hasPattern {
				pattern = "*"
			}
			v := variable{field: field, start: len(t.segs)}
			for _, p := range strings.Split(pattern, "/") {
				seg, err := parseSegment(p)
				if err != nil {
					return nil, fmt.Errorf("parse template %q: %w", s, err)
				}
				t.segs = append(t.segs, seg)
			}
			v.end = len(t.segs)
			t.vars = append(t.vars, v)
		} else {
			end := strings.IndexByte(rest, '/')
			if end < 0 {
				end = len(rest)
			}
			part, rest = rest[:end], rest[end:]
			if strings.ContainsAny(part, "{}=") {
				return nil, fmt.Errorf("parse template %q: bad segment %q", s, part)
			}
			seg, err := parseSegment(part)
			if err != nil {
				return nil, fmt.Errorf("parse template %q: %w", s, err)
			}
			t.segs = append(t.segs, seg)
		}
		if rest == "" {
			break
		}
		if !strings.HasPrefix(rest, "/") {
			return nil, fmt.Errorf("parse template %q: expected / at %q", s, rest)
		}
		rest = rest[1:]
		if rest == "" {
			return nil, fmt.Errorf("parse template %q: ends with /", s)
		}
	}
	for i, seg := range t.segs {
		if seg.kind == deep && i != len(t.segs)-1 {
			return nil, fmt.Errorf("parse template %q: ** is not the last segment", s)
		}
	}
	seen := map[string]bool{}
	for _, v := range t.vars {
		if seen[v.field] {
			return nil, fmt.Errorf("parse template %q: field %s bound twice", s, v.field)
		}
		seen[v.field] = true
	}
	return t, nil
}

func parseSegment(p string) (segment, error) {
	switch p {
	case "*":
		return segment{kind: wildcard}, nil
	case "**":
		return segment{kind: deep}, nil
	}
	if !validLiteral(p) {
		return segment{}, fmt.Errorf("bad literal segment %q", p)
	}
	return segment{kind: literal, text: p}, nil
}

// validLiteral accepts the URL path characters of a literal, which are never escaped.
func validLiteral(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return true
}

func validFieldPath(s string) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// match matches an escaped URL path (r.URL.EscapedPath()) against t and returns the variables'
// values, percent-decoded (except %2F inside a multi-segment value, as Google does).
func (t *template) match(escapedPath string) (map[string]string, bool) {
	if !strings.HasPrefix(escapedPath, "/") {
		return nil, false
	}
	p := escapedPath[1:]
	if t.verb != "" {
		var ok bool
		if p, ok = strings.CutSuffix(p, ":"+t.verb); !ok {
			return nil, false
		}
	}
	parts := strings.Split(p, "/")
	// segIdx[i] is the path index where template segment i starts; the end is segIdx[i+1].
	segIdx := make([]int, len(t.segs)+1)
	j := 0
	for i, seg := range t.segs {
		segIdx[i] = j
		switch seg.kind {
		case literal:
			if j >= len(parts) || parts[j] != seg.text {
				return nil, false
			}
			j++
		case wildcard:
			if j >= len(parts) || parts[j] == "" {
				return nil, false
			}
			j++
		case deep:
			for ; j < len(parts); j++ {
				if parts[j] == "" {
					return nil, false
				}
			}
		}
	}
	segIdx[len(t.segs)] = j
	if j != len(parts) {
		return nil, false
	}
	vals := make(map[string]string, len(t.vars))
	for _, v := range t.vars {
		from, to := segIdx[v.start], segIdx[v.end]
		var val string
		var err error
		if to-from == 1 && t.segs[v.start].kind != deep {
			val, err = url.PathUnescape(parts[from])
		} else {
			val, err = unescapeKeepSlash(strings.Join(parts[from:to], "/"))
		}
		if err != nil {
			return nil, false
		}
		vals[v.field] = val
	}
	return vals, true
}

// unescapeKeepSlash percent-decodes s but leaves %2F as it is.
func unescapeKeepSlash(s string) (string, error) {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.Index(s, "%2")
		if i < 0 || i+2 >= len(s) {
			break
		}
		if s[i+2] != 'F' && s[i+2] != 'f' {
			part, err := url.PathUnescape(s[:i+3])
			if err != nil {
				return "", err
			}
			b.WriteString(part)
			s = s[i+3:]
			continue
		}
		part, err := url.PathUnescape(s[:i])
		if err != nil {
			return "", err
		}
		b.WriteString(part)
		b.WriteString(s[i : i+3])
		s = s[i+3:]
	}
	part, err := url.PathUnescape(s)
	if err != nil {
		return "", err
	}
	b.WriteString(part)
	return b.String(), nil
}

// literals is how many literal segments t has: with several matches, the most specific wins.
func (t *template) literals() int {
	n := 0
	for _, s := range t.segs {
		if s.kind == literal {
			n++
		}
	}
	return n
}

// deep reports whether t ends with "**".
func (t *template) deep() bool { return t.segs[len(t.segs)-1].kind == deep }
