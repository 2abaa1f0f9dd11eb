package ferry

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/ferrycd/ferry/pkg/ref"
)

// Printable returns s with the control characters a terminal acts on shown
// escaped, the way JSON writes them: ESC is \u001b, BEL \u0007, DEL
// \u007f, a C1 control such as U+009B (CSI) \u009b. A byte that is not
// UTF-8 and would be a C1 control to an 8-bit terminal is \x9b. The
// characters in keep (say "\n\t\r" for whole lines of text) pass as they
// are. Everything a repository holds (author names, subjects, file names
// and contents) goes through it before it reaches a terminal, so a commit
// cannot retitle, clear or recolour the screen of whoever reads it.
func Printable(s, keep string) string {
	var b strings.Builder
	last := 0 // s[last:i] is still to be copied
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, n := rune(c), 1
		if c >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		var esc string
		switch {
		case r == utf8.RuneError && n == 1 && c <= 0x9f:
			esc = fmt.Sprintf(`\x%02x`, c)
		case (r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f) && !strings.ContainsRune(keep, r):
			esc = fmt.Sprintf(`\u%04x`, r)
		}
		if esc != "" {
			if b.Len() == 0 {
				b.Grow(len(s) + 16)
			}
			b.WriteString(s[last:i])
			b.WriteString(esc)
			last = i + n
		}
		i += n
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// cell is Printable for one field of a line: nothing passes raw, not even
// a newline or a tab, which would break the table.
func cell(s string) string { return Printable(s, "") }

// WriteHistory prints history entries as a table, newest first, with a
// SIGNATURE column when they were verified. What came from the repository
// is escaped (see Printable).
func WriteHistory(w io.Writer, entries []Entry) {
	verified := false
	for _, e := range entries {
		verified = verified || e.Signature != nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if verified {
		fmt.Fprintln(tw, "COMMIT\tTIME\tACTION\tAUTHOR\tIMAGES\tSOURCE\tBUILD\tSIGNATURE\tNOTE")
	} else {
		fmt.Fprintln(tw, "COMMIT\tTIME\tACTION\tAUTHOR\tIMAGES\tSOURCE\tBUILD\tNOTE")
	}
	for _, e := range entries {
		var imgs []string
		for _, i := range e.Images {
			imgs = append(imgs, shortImage(i))
		}
		var srcs, builds []string
		for _, s := range e.Sources {
			if s.SourceCommit != "" {
				srcs = append(srcs, ref.ShortAt(s.SourceCommit))
			}
			if s.BuildID != "" {
				builds = append(builds, s.BuildID)
			}
		}
		note := ""
		switch {
		case e.PromotedFrom != "":
			note = "from " + ref.ShortAt(e.PromotedFrom)
		case e.RollbackTo != "":
			note = "to " + ref.ShortAt(e.RollbackTo)
		case e.Action == "manual":
			note = e.Subject
		}
		author, _, _ := strings.Cut(e.Author, " <")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t", cell(e.Commit[:12]), e.Time.Format("2006-01-02 15:04Z"), cell(e.Action), cell(author),
			cell(dash(strings.Join(imgs, ", "))), cell(dash(strings.Join(srcs, ", "))), cell(dash(strings.Join(builds, ", "))))
		if verified {
			sig := "-"
			if e.Signature != nil {
				sig = e.Signature.String()
			}
			fmt.Fprintf(tw, "%s\t", cell(sig))
		}
		fmt.Fprintf(tw, "%s\n", cell(note))
	}
	tw.Flush()
}

// WriteDiff prints a diff per app. What came from the repository is
// escaped (see Printable); the patch keeps its newlines, tabs and CRs.
func WriteDiff(w io.Writer, res *DiffResult, patch bool) {
	if !res.Changed {
		fmt.Fprintf(w, "%s on %s is identical to %s: nothing to promote\n", cell(res.Path), cell(trimAt(res.To)), cell(trimAt(res.From)))
		return
	}
	fmt.Fprintf(w, "promoting %s from %s to %s would change:\n", cell(res.Path), cell(ref.ShortAt(res.From)), cell(ref.ShortAt(res.To)))
	for _, a := range res.Apps {
		fmt.Fprintf(w, "\n%s\n", cell(a.Dir))
		for _, i := range a.Images {
			fmt.Fprintf(w, "  image     %s  %s -> %s\n", cell(i.Name), cell(versionOf(i.Old)), cell(versionOf(i.New)))
		}
		for _, f := range a.Added {
			fmt.Fprintf(w, "  added     %s\n", cell(f))
		}
		for _, f := range a.Removed {
			fmt.Fprintf(w, "  removed   %s\n", cell(f))
		}
		for _, f := range a.Modified {
			fmt.Fprintf(w, "  modified  %s\n", cell(f))
		}
	}
	if patch && res.Patch != "" {
		fmt.Fprintf(w, "\n%s", Printable(res.Patch, "\n\t\r"))
	}
}

// WriteFanOut prints a fan-out's outcome: one line per env repo, in the
// order given, then the counts. URLs and errors are escaped (see
// Printable): a server's words, such as a hook's, reach them.
func WriteFanOut(w io.Writer, r *FanOutReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REPO\tRESULT\tCOMMIT\tATTEMPTS\tERROR")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", cell(t.Repo), outcomeOf(t), cell(dash(ref.ShortSHA(t.Commit))), t.Attempts, cell(dash(t.Error)))
	}
	tw.Flush()
	action := r.Action
	if action == "" {
		action = "fan-out"
	}
	fmt.Fprintf(w, "%s to %d env repos: %d succeeded, %d failed\n", cell(action), len(r.Targets), r.Succeeded, r.Failed)
}

func outcomeOf(t TargetResult) string {
	switch {
	case t.Error != "" || t.Report == nil:
		return "FAILED"
	case t.Report.Skipped:
		return "skipped"
	case t.Changed && t.Report.DryRun:
		return "would change"
	case t.Changed:
		return "changed"
	}
	return "unchanged"
}

func trimAt(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i]
	}
	return s
}

func shortImage(i Image) string {
	return ref.Ref{Repo: i.Name, Tag: i.Tag, Digest: i.Digest}.Short()
}

// versionOf turns repo:tag@sha256:long into tag@sha256:<12 hex>.
func versionOf(s string) string {
	r := ref.Split(s)
	r.Repo = ""
	if r.Digest != "" {
		r.Digest = ref.ShortDigest(r.Digest)
	}
	return dash(strings.TrimPrefix(r.String(), ":"))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
