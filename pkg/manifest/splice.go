package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// edit replaces data[start:end] with text; start == end inserts.
type edit struct {
	start, end int
	text       string
}

func apply(data []byte, edits []edit) ([]byte, error) {
	// Stable, so insertions at one offset keep the order they were made in.
	slices.SortStableFunc(edits, func(a, b edit) int { return a.start - b.start })
	var b bytes.Buffer
	b.Grow(len(data) + 128*len(edits))
	pos := 0
	for _, e := range edits {
		if e.start < pos || e.end < e.start || e.end > len(data) {
			return nil, fmt.Errorf("internal error: overlapping edits at byte %d", e.start)
		}
		b.Write(data[pos:e.start])
		b.WriteString(e.text)
		pos = e.end
	}
	b.Write(data[pos:])
	return b.Bytes(), nil
}

// render writes v in the quoting style of the scalar it replaces. Values are
// limited to refChars, so no escaping is ever needed.
func render(v string, style yaml.Style) string {
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		return `"` + v + `"`
	case style&yaml.SingleQuotedStyle != 0:
		return "'" + v + "'"
	case plainIsString(v):
		return v
	default:
		// A tag such as 1.0 or 20240101 would read back as a number.
		return `"` + v + `"`
	}
}

var yaml11Words = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true, "~": true,
}

var sexagesimal = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$`)

// plainIsString reports whether v, written unquoted, reads back as the string
// v under both YAML 1.2 (yaml.v3, kyaml) and YAML 1.1 (yaml.v2, which
// sigs.k8s.io/yaml and so kubectl use).
func plainIsString(v string) bool {
	if v == "" || yaml11Words[strings.ToLower(v)] || sexagesimal.MatchString(v) {
		return false
	}
	u := strings.ReplaceAll(v, "_", "")
	if _, err := strconv.ParseFloat(u, 64); err == nil {
		return false
	}
	if _, err := strconv.ParseInt(u, 0, 64); err == nil {
		return false
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(v), &n); err != nil || len(n.Content) != 1 {
		return false
	}
	c := n.Content[0]
	return c.Kind == yaml.ScalarNode && c.ShortTag() == "!!str" && c.Value == v && c.Style == 0
}

// source maps yaml.v3 positions (1-based line, 1-based column in characters)
// to byte offsets in the original text.
type source struct {
	data  []byte
	lines []int // byte offset at which each line starts
	last  struct{ line, col, off int }
}

func newSource(data []byte) *source {
	s := &source{data: data}
	start := 0
	if bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
		// yaml.v3 drops a leading byte order mark before counting columns.
		start = 3
	}
	s.lines = append(s.lines, start)
	for i := start; i < len(data); {
		if n := breakLen(data, i); n > 0 {
			i += n
			s.lines = append(s.lines, i)
			continue
		}
		i++
	}
	return s
}

// breakLen returns the length of the line break at data[i], or 0. It counts
// what yaml.v3 counts as a line break (CRLF, CR, LF, NEL, LS, PS), so line
// numbers agree even with those characters in comments.
func breakLen(data []byte, i int) int {
	switch {
	case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
		return 2
	case data[i] == '\r' || data[i] == '\n':
		return 1
	case data[i] == 0xC2 && i+1 < len(data) && data[i+1] == 0x85:
		return 2
	case data[i] == 0xE2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9):
		return 3
	}
	return 0
}

// position returns the byte offset of a line and column.
func (s *source) position(line, col int) (int, error) {
	if line < 1 || line > len(s.lines) || col < 1 {
		return 0, fmt.Errorf("position %d:%d is outside the file", line, col)
	}
	off, c := s.lines[line-1], 1
	// Lookups come in file order, so resume from the last one on the same
	// line: a long flow-style line with many images stays linear.
	if line == s.last.line && col >= s.last.col {
		off, c = s.last.off, s.last.col
	}
	for ; c < col; c++ {
		if off >= len(s.data) || breakLen(s.data, off) > 0 {
			return 0, fmt.Errorf("column %d is past the end of line %d", col, line)
		}
		_, w := utf8.DecodeRune(s.data[off:])
		off += w
	}
	s.last.line, s.last.col, s.last.off = line, col, off
	return off, nil
}

// lineEnd returns the offset of the line break at or after off and the break
// itself; at the end of a file without a final newline, the file's usual break.
func (s *source) lineEnd(off int) (int, string) {
	for i := off; i < len(s.data); i++ {
		if n := breakLen(s.data, i); n > 0 {
			return i, string(s.data[i : i+n])
		}
	}
	if bytes.Contains(s.data, []byte("\r\n")) {
		return len(s.data), "\r\n"
	}
	return len(s.data), "\n"
}

type span struct{ start, end int }

var errBlockScalar = errors.New("written as a block scalar (| or >); rewrite it as a single-line value to have it pinned")

// scalarSpan returns the bytes of a scalar's token in the original text,
// quotes included. It accepts only scalars on a single line, and checks that
// the text found reads as the node's value.
func (s *source) scalarSpan(n *yaml.Node) (span, error) {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return span{}, errBlockScalar
	}
	off, err := s.position(n.Line, n.Column)
	if err != nil {
		return span{}, err
	}
	d := s.data
	// The position of a node with an anchor or a tag is that of the
	// property, not of the value.
	for off < len(d) && (d[off] == '&' || d[off] == '!') {
		for off < len(d) && d[off] != ' ' && d[off] != '\t' && breakLen(d, off) == 0 {
			off++
		}
		for off < len(d) && (d[off] == ' ' || d[off] == '\t') {
			off++
		}
	}
	if off >= len(d) || breakLen(d, off) > 0 {
		return span{}, errors.New("value is not on the line of its anchor or tag")
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		return s.quoted(off, n.Value, '"')
	case n.Style&yaml.SingleQuotedStyle != 0:
		return s.quoted(off, n.Value, '\'')
	}
	end := off + len(n.Value)
	if n.Value == "" || end > len(d) || string(d[off:end]) != n.Value {
		return span{}, errors.New("value spans several lines or cannot be located; write it on one line to have it pinned")
	}
	if end < len(d) && d[end] != ' ' && d[end] != '\t' && d[end] != ',' && d[end] != ']' && d[end] != '}' && breakLen(d, end) == 0 {
		return span{}, errors.New("value cannot be located in the text")
	}
	return span{off, end}, nil
}

// quoted finds a quoted scalar starting at off and checks it reads as value.
func (s *source) quoted(off int, value string, q byte) (span, error) {
	d := s.data
	if d[off] != q {
		return span{}, errors.New("value cannot be located in the text")
	}
	for i := off + 1; i < len(d); i++ {
		if breakLen(d, i) > 0 {
			return span{}, errors.New("quoted value spans several lines; write it on one line to have it pinned")
		}
		switch {
		case q == '"' && d[i] == '\\':
			i++ // skip the escaped character; a break here is caught above on the next round
			if i < len(d) && breakLen(d, i) > 0 {
				return span{}, errors.New("quoted value spans several lines; write it on one line to have it pinned")
			}
		case q == '\'' && d[i] == '\'' && i+1 < len(d) && d[i+1] == '\'':
			i++
		case d[i] == q:
			sp := span{off, i + 1}
			var got string
			if err := yaml.Unmarshal(d[sp.start:sp.end], &got); err != nil || got != value {
				return span{}, errors.New("quoted value does not read back as parsed")
			}
			return sp, nil
		}
	}
	return span{}, errors.New("quoted value is not closed")
}
