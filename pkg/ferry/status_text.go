package ferry

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferrycd/ferry/pkg/ref"
)

// statusDigestLen is how many hex digits of a digest a status cell shows:
// enough to tell a handful of builds of one app apart at a glance.
const statusDigestLen = 8

// statusLegend explains the markers, for the markdown and the page.
var statusLegend = []struct{ marker, means string }{
	{StateHeld, "a rollback holds it: deploys and promotes are refused until it is lifted"},
	{StateDrifted, "changed by hand since ferry last wrote it"},
	{StateBehind + " N", "the environment before it changed its images N times since it ran these (N+: at least)"},
	{StateUnmanaged, "no ferry commit ever wrote it"},
	{StateUnknown, "unchanged in all the commits read"},
}

// cellImages is how a cell names its images: "v1.2.3 @4f1c2a9e", with the
// image's name when there are several. Not yet escaped.
func cellImages(images []Image) string {
	var parts []string
	for _, im := range images {
		parts = append(parts, imageLabel(im, len(images) > 1))
	}
	return strings.Join(parts, ", ")
}

// imageLabel is "v1.2.3 @4f1c2a9e", or "hello:v1.2.3 @4f1c2a9e" named.
func imageLabel(im Image, named bool) string {
	s := im.Tag
	if named {
		s = ref.Ref{Repo: im.Name}.Base()
		if im.Tag != "" {
			s += ":" + im.Tag
		}
	}
	if im.Digest != "" {
		_, hex, _ := strings.Cut(im.Digest, ":")
		s = strings.TrimSpace(s + " @" + hex[:min(len(hex), statusDigestLen)])
	}
	return s
}

// markers are what a present cell's state adds to its images, in order.
func (c *Cell) markers() []string {
	var m []string
	if c.Held != nil {
		m = append(m, StateHeld)
	}
	switch {
	case c.Unmanaged:
		m = append(m, StateUnmanaged)
	case c.Drifted:
		m = append(m, StateDrifted)
	case c.Ferry == nil:
		m = append(m, StateUnknown)
	}
	if b := c.behindText(); b != "" {
		m = append(m, StateBehind+" "+b)
	}
	if c.LastChange != nil && c.LastChange.Signature != nil {
		// status --verify: the last change's signature, in a word.
		switch sig := c.LastChange.Signature; {
		case sig.Verified:
			m = append(m, "signed")
		case sig.Signed:
			m = append(m, "BAD-signature")
		default:
			m = append(m, "unsigned")
		}
	}
	return m
}

// behindText is "2", "2+", or "" when not behind.
func (c *Cell) behindText() string {
	if c.Behind == 0 && !c.BehindAtLeast {
		return ""
	}
	s := strconv.Itoa(c.Behind)
	if c.BehindAtLeast {
		s += "+"
	}
	return s
}

// ANSI colours, by the state the marker or cell shows.
var ansi = map[string]string{
	StateHeld:      "\x1b[1;31m", // bold red
	StateDrifted:   "\x1b[33m",   // yellow
	StateBehind:    "\x1b[36m",   // cyan
	StateUnmanaged: "\x1b[35m",   // magenta
	StateUnknown:   "\x1b[2m",    // dim
	StateAbsent:    "\x1b[2m",
	StateCurrent:   "\x1b[32m", // green
}

const ansiReset = "\x1b[0m"

// WriteStatus prints the report as a table, an app a row and an
// environment a column, each cell its images ("v1.2.3 @4f1c2a9e") and
// markers (held, drifted, behind 2); a note under the table names each
// hold's rollback. color adds ANSI colours: pass true only when w is a
// terminal. What came from the repositories is escaped (see Printable).
func WriteStatus(w io.Writer, r *StatusReport, color bool) {
	paint := func(state, s string) string {
		if !color || s == "" {
			return s
		}
		return ansi[state] + s + ansiReset
	}
	// Each cell is pieces of plain text with their colour, so widths are
	// measured on what shows.
	type piece struct{ text, state string }
	header := []([]piece){{{"APP", ""}}}
	for _, e := range r.Environments {
		header = append(header, []piece{{cell(e.Label), ""}})
	}
	rows := [][][]piece{header}
	var notes []string
	for _, a := range r.Apps {
		row := [][]piece{{{cell(a.App), ""}}}
		for _, c := range a.Cells {
			if c.State == StateAbsent {
				row = append(row, []piece{{"-", StateAbsent}})
				continue
			}
			var ps []piece
			if imgs := cellImages(c.Images); imgs != "" {
				ps = append(ps, piece{cell(imgs), ""})
			}
			for _, m := range c.markers() {
				state, _, _ := strings.Cut(m, " ")
				ps = append(ps, piece{m, state})
			}
			if c.State == StateCurrent {
				ps = append(ps, piece{"ok", StateCurrent})
			}
			row = append(row, ps)
			if c.Held != nil {
				notes = append(notes, fmt.Sprintf("%s on %s is held by %s %s (%s)", cell(a.App), cell(c.Env),
					cell(c.Held.Action), cell(ref.ShortSHA(c.Held.Commit)), cell(c.Held.Subject)))
			}
		}
		rows = append(rows, row)
	}
	widths := map[int]int{}
	plain := func(ps []piece) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.text)
		}
		return strings.Join(s, "  ")
	}
	for _, row := range rows {
		for i, ps := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(plain(ps)))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, ps := range row {
			for j, p := range ps {
				if j > 0 {
					line.WriteString("  ")
				}
				line.WriteString(paint(p.state, p.text))
			}
			if i < len(row)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(plain(ps))+3))
			}
		}
		fmt.Fprintln(w, line.String())
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
}

// WriteStatusMarkdown prints the report as a GitHub-flavoured markdown
// table with a legend, for a job summary or a pull request comment. What
// came from the repositories is escaped, for markdown as for a terminal.
func WriteStatusMarkdown(w io.Writer, r *StatusReport) {
	var b strings.Builder
	b.WriteString("| app |")
	for _, e := range r.Environments {
		fmt.Fprintf(&b, " %s |", md(e.Label))
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(r.Environments)))
	b.WriteString("\n")
	for _, a := range r.Apps {
		fmt.Fprintf(&b, "| **%s** |", md(a.App))
		for _, c := range a.Cells {
			if c.State == StateAbsent {
				b.WriteString(" — |")
				continue
			}
			var parts []string
			if imgs := cellImages(c.Images); imgs != "" {
				parts = append(parts, md(imgs))
			}
			if c.Ferry != nil {
				parts = append(parts, "<sub>"+md(c.Ferry.Action+" "+abbrev8(c.Ferry.Commit))+"</sub>")
			}
			for _, m := range c.markers() {
				parts = append(parts, "**"+m+"**")
			}
			if c.Held != nil {
				parts = append(parts, "<sub>by "+md(abbrev8(c.Held.Commit))+"</sub>")
			}
			fmt.Fprintf(&b, " %s |", strings.Join(parts, " "))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	var legend []string
	for _, l := range statusLegend {
		legend = append(legend, "**"+l.marker+"**: "+l.means)
	}
	legend = append(legend, "—: not there")
	b.WriteString("<sub>" + strings.Join(legend, " · ") + "</sub>\n")
	io.WriteString(w, b.String())
}

// md escapes s for a markdown table cell: control characters as for a
// terminal, then behind a backslash every character markdown or GitHub's
// HTML could act on inside a line ('|' would end the cell, '`' open code,
// '<' a tag, '[' a link, '*', '_' and '~' emphasis, '&' an entity).
func md(s string) string {
	s = cell(s)
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~&", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// abbrev8 shortens a commit hash for a table cell.
func abbrev8(sha string) string { return sha[:min(len(sha), statusDigestLen)] }
