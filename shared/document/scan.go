package document

import (
	"fmt"
	"unicode/utf8"
)

// Bounds on the shape of a file, checked by Scan on the bytes before any YAML library sees
// them: the parser's memory grows with the square of the nesting depth and its time with the
// square of the entries of one mapping, so a 1 MiB file without these bounds costs gigabytes
// or minutes (docs/benchmarks.md, "Parser bounds").
const (
	MaxDepth          = 64       // nested mappings and sequences, block and flow together
	MaxEntries        = 4000     // mapping entries and sequence items in the whole file
	MaxMappingEntries = 500      // entries of one mapping (the parser is quadratic in them)
	MaxTokens         = 40000    // scalars, indicators, anchors, aliases, tags and comments
	MaxScalar         = 64 << 10 // bytes of one scalar (a block scalar's lines together)
	MaxAliases        = 1000     // aliases (*name) in the whole file
)

// Scan checks the shape of data (the content of file) against the bounds above in one pass, in
// memory bounded by MaxDepth, and reports the first bound crossed as FILE:LINE:COL, or more than one
// YAML document. It does not check the syntax: what it cannot read it leaves to the parser,
// which, within these bounds, stays small and fast. Parse calls it; so must any other reader
// of untrusted YAML.
func Scan(file string, data []byte) Problems {
	if len(data) > MaxSize {
		return Problems{{Pos: Pos{File: file, Line: 1, Col: 1}, Message: fmt.Sprintf("file is %d bytes; the limit is %d (1 MiB)", len(data), MaxSize)}}
	}
	s := scanner{file: file, data: data, line: 1, col: 1}
	s.run()
	switch {
	case s.docs > 1 && s.problem != nil:
		// Stopped early: more than one document is the problem to fix first.
		return Problems{{Pos: s.second, Message: fmt.Sprintf("file holds at least %d YAML documents; put one per file", s.docs)}}
	case s.docs > 1:
		return Problems{{Pos: s.second, Message: fmt.Sprintf("file holds %d YAML documents; put one per file", s.docs)}}
	case s.problem != nil:
		return Problems{*s.problem}
	}
	return nil
}

type frame struct {
	col     int  // block: the column of the frame's first entry; flow: unused
	seq     bool // a sequence (block "- " or flow "["), else a mapping
	entries int
	expect  bool // flow: the next token starts an entry
}

type scanner struct {
	file      string
	data      []byte
	i         int
	line, col int
	block     []frame // block collections, outermost first
	flow      []frame // open flow collections, outermost first
	keyCol    int     // block: the column of the first token of the pending key, 0 if none
	entries   int
	tokens    int
	aliases   int
	docs      int
	content   bool // the current document has content
	second    Pos  // where the second document's content starts
	problem   *Problem
	afterFlow bool // the previous token closed a quoted scalar or a flow collection
}

func (s *scanner) pos() Pos { return Pos{File: s.file, Line: s.line, Col: s.col} }

func (s *scanner) fail(p Pos, format string, args ...any) {
	if s.problem == nil {
		s.problem = &Problem{Pos: p, Message: fmt.Sprintf(format, args...)}
	}
}

func (s *scanner) peek(off int) byte {
	if s.i+off < len(s.data) {
		return s.data[s.i+off]
	}
	return 0
}

// advance moves over one byte, keeping line and column (in characters).
func (s *scanner) advance() {
	c := s.data[s.i]
	s.i++
	switch {
	case c == '\n':
		s.line++
		s.col = 1
	case c < utf8.RuneSelf || utf8.RuneStart(c):
		s.col++
	}
}

func blankOrEnd(c byte) bool { return c == 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func flowIndicator(c byte) bool { return c == ',' || c == '[' || c == ']' || c == '{' || c == '}' }

func (s *scanner) token() {
	if s.tokens++; s.tokens > MaxTokens {
		s.fail(s.pos(), "file has more than %d YAML tokens; the limit is %d", MaxTokens, MaxTokens)
	}
}

func (s *scanner) depth() int { return len(s.block) + len(s.flow) }

func (s *scanner) entry(f *frame, p Pos) {
	s.entries++
	f.entries++
	switch {
	case s.entries > MaxEntries:
		s.fail(p, "file has more than %d mapping entries and sequence items; the limit is %d", MaxEntries, MaxEntries)
	case !f.seq && f.entries > MaxMappingEntries:
		s.fail(p, "mapping has more than %d entries; the limit is %d", MaxMappingEntries, MaxMappingEntries)
	}
}

func (s *scanner) push(stack *[]frame, f frame, p Pos) {
	*stack = append(*stack, f)
	if s.depth() > MaxDepth {
		s.fail(p, "document is nested more than %d levels deep; the limit is %d", MaxDepth, MaxDepth)
	}
}

// blockEntry records a block mapping key (seq false) or sequence item starting at col.
func (s *scanner) blockEntry(col int, seq bool, p Pos) {
	for len(s.block) > 0 {
		top := &s.block[len(s.block)-1]
		switch {
		case top.col > col, top.col == col && top.seq && !seq:
			s.block = s.block[:len(s.block)-1]
			continue
		case top.col == col && top.seq == seq:
			s.entry(top, p)
			return
		}
		break // top.col < col, or a sequence at the column of its mapping's key
	}
	s.push(&s.block, frame{col: col, seq: seq}, p)
	s.entry(&s.block[len(s.block)-1], p)
}

func (s *scanner) run() {
	for s.i < len(s.data) && s.problem == nil {
		s.lineStart()
		for s.i < len(s.data) && s.problem == nil && s.data[s.i] != '\n' {
			s.next()
		}
		if s.i < len(s.data) {
			s.advance() // '\n'
		}
		s.keyCol = 0
	}
}

// lineStart handles indentation, directives and document markers at the start of a line.
func (s *scanner) lineStart() {
	if len(s.flow) > 0 {
		return
	}
	if s.col == 1 && s.peek(0) == '%' {
		s.skipLine()
		return
	}
	if s.col == 1 && s.i+3 <= len(s.data) && blankOrEnd(s.peek(3)) {
		if m := string(s.data[s.i : s.i+3]); m == "---" || m == "..." {
			s.token()
			s.content = false
			s.block = s.block[:0]
			for range 3 {
				s.advance()
			}
		}
	}
}

func (s *scanner) skipLine() {
	for s.i < len(s.data) && s.data[s.i] != '\n' {
		s.advance()
	}
}

// startContent notes a token of the current document, counting documents.
func (s *scanner) startContent() {
	if !s.content {
		s.content = true
		if s.docs++; s.docs == 2 {
			s.second = s.pos()
		}
	}
	s.token()
	if len(s.flow) > 0 {
		if f := &s.flow[len(s.flow)-1]; f.expect {
			f.expect = false
			s.entry(f, s.pos())
		}
	} else if s.keyCol == 0 {
		s.keyCol = s.col
	}
}

// next reads one token (or blank, or comment) of the current line.
func (s *scanner) next() {
	c := s.data[s.i]
	inFlow := len(s.flow) > 0
	after := s.afterFlow
	s.afterFlow = false
	switch {
	case c == ' ' || c == '\t' || c == '\r':
		s.advance()
	case c == '#':
		s.token()
		s.skipLine()
	case (c == '-' || c == '?') && !inFlow && blankOrEnd(s.peek(1)):
		s.startContent()
		s.keyCol = 0
		s.blockEntry(s.col, c == '-', s.pos())
		s.advance()
	case c == ':' && (blankOrEnd(s.peek(1)) || inFlow && (after || flowIndicator(s.peek(1)))):
		s.token()
		if !inFlow {
			p := s.pos()
			if s.keyCol != 0 {
				p.Col = s.keyCol
			}
			s.blockEntry(p.Col, false, p)
			s.keyCol = 0
		}
		s.advance()
	case c == '[' || c == '{':
		s.startContent()
		s.push(&s.flow, frame{seq: c == '[', expect: true}, s.pos())
		s.advance()
	case c == ']' || c == '}':
		s.token()
		if inFlow {
			s.flow = s.flow[:len(s.flow)-1]
		}
		s.advance()
		s.afterFlow = true
	case c == ',' && inFlow:
		s.token()
		s.flow[len(s.flow)-1].expect = true
		s.advance()
	case c == '"' || c == '\'':
		s.startContent()
		s.quoted(c)
		s.afterFlow = true
	case (c == '|' || c == '>') && !inFlow:
		s.startContent()
		s.blockScalar()
	case c == '*':
		s.startContent()
		if s.aliases++; s.aliases > MaxAliases {
			s.fail(s.pos(), "file has more than %d aliases; the limit is %d", MaxAliases, MaxAliases)
		}
		s.word(inFlow)
	case c == '&' || c == '!':
		s.startContent()
		s.word(inFlow)
	default:
		s.startContent()
		s.plain(inFlow)
	}
}

// word skips an anchor, alias or tag: everything up to a blank (or a flow indicator in flow).
func (s *scanner) word(inFlow bool) {
	for s.i < len(s.data) && !blankOrEnd(s.data[s.i]) && !(inFlow && flowIndicator(s.data[s.i])) {
		s.advance()
	}
}

func (s *scanner) tooLong(p Pos, n int) bool {
	if n > MaxScalar {
		s.fail(p, "scalar is longer than %d bytes; the limit is %d (64 KiB)", MaxScalar, MaxScalar)
		return true
	}
	return false
}

// plain skips a plain scalar's part on this line: up to ": ", " #", the end of the line, or a
// flow indicator in flow context.
func (s *scanner) plain(inFlow bool) {
	p, start := s.pos(), s.i
	for s.i < len(s.data) {
		c := s.data[s.i]
		if c == '\n' || c == ':' && (blankOrEnd(s.peek(1)) || inFlow && flowIndicator(s.peek(1))) ||
			c == '#' && s.i > start && blankOrEnd(s.data[s.i-1]) || inFlow && flowIndicator(c) {
			break
		}
		s.advance()
		if s.tooLong(p, s.i-start) {
			return
		}
	}
}

// quoted skips a single- or double-quoted scalar, over lines if need be.
func (s *scanner) quoted(q byte) {
	p, start := s.pos(), s.i
	s.advance()
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '\\' && q == '"' && s.i+1 < len(s.data):
			s.advance()
		case c == q && q == '\'' && s.peek(1) == '\'':
			s.advance()
		case c == q:
			s.advance()
			s.tooLong(p, s.i-start-2)
			return
		}
		s.advance()
		if s.tooLong(p, s.i-start-1) {
			return
		}
	}
}

// blockScalar skips a literal (|) or folded (>) scalar: its header, then every line blank or
// indented more than the collection holding it.
func (s *scanner) blockScalar() {
	p := s.pos()
	s.skipLine()
	parent := 0 // the indentation (in columns, 0-based) the content must exceed
	if len(s.block) > 0 {
		parent = s.block[len(s.block)-1].col - 1
	}
	n := 0
	for s.i < len(s.data) {
		// Look at the next line without consuming it unless it belongs to the scalar.
		j := s.i + 1 // s.data[s.i] is '\n'
		indent := 0
		for j < len(s.data) && s.data[j] == ' ' {
			j++
			indent++
		}
		if j < len(s.data) && s.data[j] != '\n' && s.data[j] != '\r' && indent <= parent {
			return
		}
		if j >= len(s.data) && indent == 0 {
			return
		}
		s.advance() // '\n'
		for s.i < len(s.data) && s.data[s.i] != '\n' {
			s.advance()
			n++
		}
		n++
		if s.tooLong(p, n) {
			return
		}
	}
}
