package ferry

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteHistory prints history entries as a table, newest first.
func WriteHistory(w io.Writer, entries []Entry) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COMMIT\tTIME\tACTION\tAUTHOR\tIMAGES\tSOURCE\tBUILD\tNOTE")
	for _, e := range entries {
		var imgs []string
		for _, i := range e.Images {
			imgs = append(imgs, shortImage(i))
		}
		var srcs, builds []string
		for _, s := range e.Sources {
			if s.SourceCommit != "" {
				srcs = append(srcs, shortRef(s.SourceCommit))
			}
			if s.BuildID != "" {
				builds = append(builds, s.BuildID)
			}
		}
		note := ""
		switch {
		case e.PromotedFrom != "":
			note = "from " + shortRef(e.PromotedFrom)
		case e.RollbackTo != "":
			note = "to " + shortRef(e.RollbackTo)
		case e.Action == "manual":
			note = e.Subject
		}
		author, _, _ := strings.Cut(e.Author, " <")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Commit[:12], e.Time.Format("2006-01-02 15:04Z"), e.Action, author,
			dash(strings.Join(imgs, ", ")), dash(strings.Join(srcs, ", ")), dash(strings.Join(builds, ", ")), note)
	}
	tw.Flush()
}

// WriteDiff prints a diff per app.
func WriteDiff(w io.Writer, res *DiffResult, patch bool) {
	if !res.Changed {
		fmt.Fprintf(w, "%s on %s is identical to %s: nothing to promote\n", res.Path, trimAt(res.To), trimAt(res.From))
		return
	}
	fmt.Fprintf(w, "promoting %s from %s to %s would change:\n", res.Path, shortRef(res.From), shortRef(res.To))
	for _, a := range res.Apps {
		fmt.Fprintf(w, "\n%s\n", a.Dir)
		for _, i := range a.Images {
			fmt.Fprintf(w, "  image     %s  %s -> %s\n", i.Name, versionOf(i.Old, i.Name), versionOf(i.New, i.Name))
		}
		for _, f := range a.Added {
			fmt.Fprintf(w, "  added     %s\n", f)
		}
		for _, f := range a.Removed {
			fmt.Fprintf(w, "  removed   %s\n", f)
		}
		for _, f := range a.Modified {
			fmt.Fprintf(w, "  modified  %s\n", f)
		}
	}
	if patch && res.Patch != "" {
		fmt.Fprintf(w, "\n%s", res.Patch)
	}
}

func shortImage(i Image) string {
	s := i.Name[strings.LastIndexByte(i.Name, '/')+1:]
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		d := i.Digest
		if len(d) > len("sha256:")+12 {
			d = d[:len("sha256:")+12]
		}
		s += "@" + d
	}
	return s
}

// shortRef shortens a sha, or the sha in branch@sha, to 12 digits.
func shortRef(s string) string {
	prefix, sha := "", s
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		prefix, sha = s[:i+1], s[i+1:]
	}
	if len(sha) == 40 {
		sha = sha[:12]
	}
	return prefix + sha
}

func trimAt(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i]
	}
	return s
}

// versionOf turns repo:tag@sha256:long into tag@sha256:<12 hex>.
func versionOf(ref, repo string) string {
	v := strings.TrimPrefix(strings.TrimPrefix(ref, repo), ":")
	if i := strings.Index(v, "sha256:"); i >= 0 && len(v) > i+len("sha256:")+12 {
		v = v[:i+len("sha256:")+12]
	}
	return dash(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
