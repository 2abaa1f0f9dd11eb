package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ferrycd/ferry/pkg/ferry"
)

// PromoteCmd is `ferry promote`.
type PromoteCmd struct {
	From             string `help:"Environment to promote from, e.g. candidate." env:"FERRY_FROM" placeholder:"E1"`
	To               string `help:"Environment to update, e.g. production." env:"FERRY_TO" placeholder:"E2"`
	Commit           string `help:"Commit on --from to promote (default: its tip). Must be on --from's history." env:"FERRY_COMMIT" placeholder:"SHA"`
	Path             string `help:"Directory to promote ('.' for the whole branch); nothing outside it changes." env:"FERRY_PATH" default:"." placeholder:"DIR"`
	App              string `help:"App name for the audit trail (default: the last element of --path)." env:"FERRY_APP" placeholder:"NAME"`
	OverrideRollback bool   `help:"Promote even though --path on --to was rolled back." env:"FERRY_OVERRIDE_ROLLBACK"`
	DryRun           bool   `help:"Print the diff that would be committed; push nothing." env:"FERRY_DRY_RUN"`
}

// Run promotes.
func (c *PromoteCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	rep, err := ferry.Promote(ctx, e, ferry.PromoteRequest{
		From: c.From, To: c.To, Commit: c.Commit, Path: c.Path, App: c.App, OverrideRollback: c.OverrideRollback, DryRun: c.DryRun,
	})
	if err != nil {
		return err
	}
	return g.printReport(rep)
}

// RollbackCmd is `ferry rollback`.
type RollbackCmd struct {
	Env    string `help:"Environment to roll back, e.g. production." env:"FERRY_ENV" placeholder:"E"`
	To     string `help:"Commit of --env whose state of --path to restore." env:"FERRY_ROLLBACK_TO" placeholder:"SHA" xor:"target"`
	Steps  int    `help:"Go back N distinct states of --path (commits that did not change it do not count; default 1)." env:"FERRY_STEPS" placeholder:"N" xor:"target"`
	Path   string `help:"Directory to roll back ('.' for the whole branch)." env:"FERRY_PATH" default:"." placeholder:"DIR"`
	App    string `help:"App name for the audit trail (default: the last element of --path)." env:"FERRY_APP" placeholder:"NAME"`
	DryRun bool   `help:"Print the diff that would be committed; push nothing." env:"FERRY_DRY_RUN"`
}

// Run rolls back.
func (c *RollbackCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	rep, err := ferry.Rollback(ctx, e, ferry.RollbackRequest{Env: c.Env, To: c.To, Steps: c.Steps, Path: c.Path, App: c.App, DryRun: c.DryRun})
	if err != nil {
		return err
	}
	return g.printReport(rep)
}

// HistoryCmd is `ferry history`.
type HistoryCmd struct {
	Env   string `help:"Environment whose history to show." env:"FERRY_ENV" placeholder:"E"`
	Path  string `help:"Only commits that changed this directory." env:"FERRY_PATH" default:"." placeholder:"DIR"`
	Limit int    `help:"At most this many commits." default:"20" env:"FERRY_LIMIT" placeholder:"N"`
}

// Run prints the history.
func (c *HistoryCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	entries, err := ferry.History(ctx, e, ferry.HistoryRequest{Env: c.Env, Path: c.Path, Limit: c.Limit})
	if err != nil {
		return err
	}
	if g.Output == "json" {
		return g.printJSON(entries)
	}
	WriteHistory(g.stdout, entries)
	return nil
}

// WriteHistory prints history entries as a table, newest first.
func WriteHistory(w io.Writer, entries []ferry.Entry) {
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

// DiffCmd is `ferry diff`.
type DiffCmd struct {
	From     string `help:"Environment a promote would carry from, e.g. candidate." env:"FERRY_FROM" placeholder:"E1"`
	To       string `help:"Environment a promote would update, e.g. production." env:"FERRY_TO" placeholder:"E2"`
	Path     string `help:"Directory to compare ('.' for the whole branch)." env:"FERRY_PATH" default:"." placeholder:"DIR"`
	ExitCode bool   `help:"Exit 1 when there are differences, like git diff --exit-code."`
	Patch    bool   `help:"Also print the unified diff of the files."`
}

// Run prints the diff.
func (c *DiffCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	res, err := ferry.Diff(ctx, e, ferry.DiffRequest{From: c.From, To: c.To, Path: c.Path})
	if err != nil {
		return err
	}
	if g.Output == "json" {
		if err := g.printJSON(res); err != nil {
			return err
		}
	} else {
		WriteDiff(g.stdout, res, c.Patch)
	}
	if c.ExitCode && res.Changed {
		return errSilentExit{1}
	}
	return nil
}

// WriteDiff prints a diff per app.
func WriteDiff(w io.Writer, res *ferry.DiffResult, patch bool) {
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

// errSilentExit ends the run with a status and no message (diff
// --exit-code: differences are not an error to report).
type errSilentExit struct{ code int }

func (e errSilentExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func shortImage(i ferry.Image) string {
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
