package monitoring

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// This file parses the subset of the Monitoring filter language
// (https://cloud.google.com/monitoring/api/v3/filters) that a monitor needs: comparisons joined by
// AND. Anything else is refused with the position (1-based byte offset) where it starts, so that
// a filter that would silently mean something else in the emulator never runs.

// fieldKind says what a selector names.
type fieldKind int

const (
	fieldMetricType fieldKind = iota
	fieldResourceType
	fieldProject
	fieldResourceLabel
	fieldMetricLabel
)

// field is a parsed selector: metric.type, resource.type, project, resource.label.NAME or
// metric.label.NAME (the plural "labels" is accepted too).
type field struct {
	kind  fieldKind
	label string // for label selectors
	text  string // as written
	pos   int    // byte offset in the filter
}

// parseField reads a selector.
func parseField(text string, pos int) (field, error) {
	f := field{text: text, pos: pos}
	switch text {
	case "metric.type":
		f.kind = fieldMetricType
		return f, nil
	case "resource.type":
		f.kind = fieldResourceType
		return f, nil
	case "project":
		f.kind = fieldProject
		return f, nil
	}
	for _, p := range []struct {
		prefix string
		kind   fieldKind
	}{
		{"resource.label.", fieldResourceLabel},
		{"resource.labels.", fieldResourceLabel},
		{"metric.label.", fieldMetricLabel},
		{"metric.labels.", fieldMetricLabel},
	} {
		if name, ok := strings.CutPrefix(text, p.prefix); ok {
			if name == "" || strings.Contains(name, ".") {
				return f, &filterError{pos, fmt.Sprintf("selector %q names no label", text)}
			}
			f.kind, f.label = p.kind, name
			return f, nil
		}
	}
	return f, &filterError{pos, fmt.Sprintf("unknown selector %q (the emulator knows metric.type, resource.type, project, resource.label.NAME and metric.label.NAME)", text)}
}

// op is how a matcher compares.
type op int

const (
	opEq op = iota
	opPrefix
	opSuffix
	opSubstr
	opOneOf
	opRegex
)

// matcher is one comparison of a filter.
type matcher struct {
	field  field
	negate bool // != instead of =
	op     op
	values []string
	re     *regexp.Regexp
}

// match reports whether v satisfies the comparison.
func (m *matcher) match(v string) bool {
	var ok bool
	switch m.op {
	case opEq:
		ok = v == m.values[0]
	case opPrefix:
		ok = strings.HasPrefix(v, m.values[0])
	case opSuffix:
		ok = strings.HasSuffix(v, m.values[0])
	case opSubstr:
		ok = strings.Contains(v, m.values[0])
	case opOneOf:
		ok = slices.Contains(m.values, v)
	case opRegex:
		ok = m.re.MatchString(v)
	}
	return ok != m.negate
}

// filterError is a refused filter, with the byte offset of the offending token.
type filterError struct {
	pos int
	msg string
}

func (e *filterError) Error() string { return fmt.Sprintf("position %d: %s", e.pos+1, e.msg) }

// parseFilter parses `comparison { AND comparison }`, where a comparison is
// `selector (= | !=) rhs` and rhs is a quoted string (single or double quotes, backslash
// escapes), an unquoted integer, or one of starts_with, ends_with, has_substring,
// monitoring.regex.full_match (one string each) and one_of (one or more strings). An empty
// filter yields no matchers.
func parseFilter(src string) ([]matcher, error) {
	p := &parser{lx: lexer{src: src}}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, nil
	}
	var out []matcher
	for {
		m, err := p.comparison()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
		switch {
		case p.tok.kind == tokEOF:
			return out, nil
		case p.tok.is("AND"):
			if err := p.next(); err != nil {
				return nil, err
			}
		case p.tok.is("OR"):
			return nil, p.errorf("OR is not supported by the emulator (only AND)")
		default:
			return nil, p.errorf("expected AND or the end of the filter, found %s", p.tok)
		}
	}
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokEq
	tokNe
	tokLParen
	tokRParen
	tokComma
	tokOther
)

type token struct {
	kind tokKind
	text string // identifier, unquoted string value, number or the character itself
	pos  int
}

func (t token) is(keyword string) bool { return t.kind == tokIdent && t.text == keyword }

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "the end of the filter"
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

type lexer struct {
	src string
	off int
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c == '.' || ('0' <= c && c <= '9') }

func (l *lexer) next() (token, error) {
	for l.off < len(l.src) && strings.IndexByte(" \t\r\n", l.src[l.off]) >= 0 {
		l.off++
	}
	start := l.off
	if l.off >= len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := l.src[l.off]
	switch {
	case isIdentStart(c):
		for l.off < len(l.src) && isIdentPart(l.src[l.off]) {
			l.off++
		}
		return token{kind: tokIdent, text: l.src[start:l.off], pos: start}, nil
	case '0' <= c && c <= '9':
		for l.off < len(l.src) && '0' <= l.src[l.off] && l.src[l.off] <= '9' {
			l.off++
		}
		return token{kind: tokNumber, text: l.src[start:l.off], pos: start}, nil
	case c == '"' || c == '\'':
		var b strings.Builder
		l.off++
		for l.off < len(l.src) {
			ch := l.src[l.off]
			switch {
			case ch == c:
				l.off++
				return token{kind: tokString, text: b.String(), pos: start}, nil
			case ch == '\\' && l.off+1 < len(l.src):
				b.WriteByte(l.src[l.off+1])
				l.off += 2
			default:
				b.WriteByte(ch)
				l.off++
			}
		}
		return token{}, &filterError{start, "unterminated string"}
	case c == '=':
		l.off++
		return token{kind: tokEq, text: "=", pos: start}, nil
	case c == '!' && strings.HasPrefix(l.src[l.off:], "!="):
		l.off += 2
		return token{kind: tokNe, text: "!=", pos: start}, nil
	case c == '(':
		l.off++
		return token{kind: tokLParen, text: "(", pos: start}, nil
	case c == ')':
		l.off++
		return token{kind: tokRParen, text: ")", pos: start}, nil
	case c == ',':
		l.off++
		return token{kind: tokComma, text: ",", pos: start}, nil
	}
	l.off++
	return token{kind: tokOther, text: string(c), pos: start}, nil
}

type parser struct {
	lx  lexer
	tok token
}

func (p *parser) next() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errorf(format string, args ...any) error {
	return &filterError{p.tok.pos, fmt.Sprintf(format, args...)}
}

var functions = map[string]op{
	"starts_with":                 opPrefix,
	"ends_with":                   opSuffix,
	"has_substring":               opSubstr,
	"one_of":                      opOneOf,
	"monitoring.regex.full_match": opRegex,
}

func (p *parser) comparison() (matcher, error) {
	switch {
	case p.tok.is("NOT") || (p.tok.kind == tokOther && p.tok.text == "-"):
		return matcher{}, p.errorf("NOT is not supported by the emulator (use != instead)")
	case p.tok.kind == tokLParen:
		return matcher{}, p.errorf("parentheses are not supported by the emulator")
	case p.tok.kind != tokIdent:
		return matcher{}, p.errorf("expected a selector such as metric.type, found %s", p.tok)
	}
	f, err := parseField(p.tok.text, p.tok.pos)
	if err != nil {
		return matcher{}, err
	}
	if err := p.next(); err != nil {
		return matcher{}, err
	}
	m := matcher{field: f}
	switch p.tok.kind {
	case tokEq:
	case tokNe:
		m.negate = true
	default:
		return matcher{}, p.errorf("expected = or != after %s, found %s (other operators are not supported by the emulator)", f.text, p.tok)
	}
	if err := p.next(); err != nil {
		return matcher{}, err
	}
	switch p.tok.kind {
	case tokString, tokNumber:
		m.op, m.values = opEq, []string{p.tok.text}
		return m, p.next()
	case tokIdent:
	default:
		return matcher{}, p.errorf(`expected a quoted string or a function such as starts_with("…") after %s, found %s`, f.text, p.tok)
	}
	name, fpos := p.tok.text, p.tok.pos
	fop, ok := functions[name]
	if !ok {
		return matcher{}, p.errorf("unknown function %q (the emulator knows starts_with, ends_with, has_substring, one_of and monitoring.regex.full_match)", name)
	}
	m.op = fop
	if err := p.next(); err != nil {
		return matcher{}, err
	}
	if p.tok.kind != tokLParen {
		return matcher{}, p.errorf("expected ( after %s, found %s", name, p.tok)
	}
	for {
		if err := p.next(); err != nil {
			return matcher{}, err
		}
		if p.tok.kind != tokString && p.tok.kind != tokNumber {
			return matcher{}, p.errorf("expected a quoted string argument of %s, found %s", name, p.tok)
		}
		m.values = append(m.values, p.tok.text)
		if err := p.next(); err != nil {
			return matcher{}, err
		}
		if p.tok.kind == tokRParen {
			break
		}
		if p.tok.kind != tokComma {
			return matcher{}, p.errorf("expected , or ) in %s, found %s", name, p.tok)
		}
	}
	if fop != opOneOf && len(m.values) != 1 {
		return matcher{}, &filterError{fpos, fmt.Sprintf("%s takes exactly one argument, got %d", name, len(m.values))}
	}
	if fop == opRegex {
		re, err := regexp.Compile(`^(?:` + m.values[0] + `)$`)
		if err != nil {
			return matcher{}, &filterError{fpos, fmt.Sprintf("%s: %v", name, err)}
		}
		m.re = re
	}
	return m, p.next()
}
