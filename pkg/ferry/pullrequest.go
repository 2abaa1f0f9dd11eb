package ferry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/forge"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/go-git/go-git/v5/plumbing"
)

// PullRequestOptions turn a write into a pull request: the commit is made
// on the environment's branch as for a direct push, then pushed to a head
// branch of ferry's own, and a pull request from it into the branch is
// opened, or the open one updated. The hold and the build-order guard read
// the branch, as for a direct push; once merged, the commit (or the squash
// of it, which keeps its trailers) holds and records as any other.
type PullRequestOptions struct {
	Forge forge.Forge
	// Head names the head branch; {env}, {app} and {action} are filled
	// in. Default ferry/{env}/{app}, and ferry/{env}/{app}-rollback for a
	// rollback, so that rolling back never rewrites an open promotion's
	// request (nor the other way round).
	Head      string
	Labels    []string
	Reviewers []string
	Draft     bool
	// AutoMerge, when set, asks the host to merge by itself once allowed
	// (its checks, reviews and merge queue have their say).
	AutoMerge forge.MergeMethod
	// Wait, when positive, waits this long for the merge; PollEvery is how
	// often it looks (default 5s).
	Wait      time.Duration
	PollEvery time.Duration
}

// PullRequest is what a report says of its pull request.
type PullRequest struct {
	URL         string      `json:"url"`
	Number      int         `json:"number"`
	State       forge.State `json:"state"`
	Head        string      `json:"head"`
	MergeCommit string      `json:"mergeCommit,omitempty"`
	// Opened: this run opened it (rather than updating an open one).
	Opened bool `json:"opened,omitempty"`
}

// ErrPullRequestClosed: --wait saw the pull request closed without a
// merge.
var ErrPullRequestClosed = errors.New("pull request closed without merging")

// ErrPullRequestOpen: --wait ran out with the pull request still open.
var ErrPullRequestOpen = errors.New("pull request still open")

// ErrForeignHead: the head branch holds a commit ferry did not make.
var ErrForeignHead = errors.New("the pull request's head branch holds a commit ferry did not make")

// headName fills in a head template.
func headName(tmpl, env, app, action string) string {
	if tmpl == "" {
		tmpl = "ferry/{env}/{app}"
		if action == audit.ActionRollback {
			tmpl += "-rollback"
		}
	}
	if app == "" {
		app = "all"
	}
	return strings.NewReplacer("{env}", env, "{app}", app, "{action}", action).Replace(tmpl)
}

// skipHead is a head check's verdict that the write must not replace what
// the open pull request carries (a newer build).
type skipHead struct{ why string }

func (s *skipHead) Error() string { return s.why }

// headCheck accepts, on the head branch, ferry's own commits of the same
// action and scope only, and asks the plan's guard about what they carry.
func headCheck(p plan, head string) func(ctx context.Context, tip plumbing.Hash, msg string) error {
	return func(ctx context.Context, tip plumbing.Hash, msg string) error {
		rec := audit.Parse(msg)
		if rec.Action == audit.ActionManual || rec.Path != p.rec.Path || rec.Action != p.rec.Action {
			return fmt.Errorf("%w: %s is at %s (%q); ferry replaces only its own commits there: merge or close that pull request, or delete the branch",
				ErrForeignHead, head, ref.ShortSHA(tip.String()), firstLine(msg))
		}
		if p.headGuard != nil {
			if why := p.headGuard(ctx, rec); why != "" {
				return &skipHead{why: why + " (on the open pull request's head " + head + ")"}
			}
		}
		return nil
	}
}

// pullRequest opens or updates the pull request for a write that pushed
// commit to head, then has it auto-merged and waits for it as asked.
func pullRequest(ctx context.Context, e Env, o *PullRequestOptions, rec audit.Record, base, head string, rep *Report) (*PullRequest, error) {
	f := o.Forge
	req := forge.Request{Head: head, Base: base, Title: rec.Subject(), Body: prBody(rec, rep), Labels: o.Labels, Reviewers: o.Reviewers, Draft: o.Draft}
	pr, err := f.Find(ctx, head, base)
	if err != nil {
		return nil, fmt.Errorf("looking for the pull request from %s into %s: %w", head, base, err)
	}
	opened := false
	if pr == nil {
		pr, err = f.Open(ctx, req)
		if err != nil {
			// Another run opened it meanwhile: update that one.
			if again, ferr := f.Find(ctx, head, base); ferr == nil && again != nil {
				pr, err = again, nil
			}
		} else {
			opened = true
		}
		if err != nil {
			return nil, fmt.Errorf("opening a pull request from %s into %s: %w", head, base, err)
		}
	}
	if !opened {
		n := pr.Number
		if pr, err = f.Update(ctx, n, req); err != nil {
			return nil, fmt.Errorf("updating pull request #%d: %w", n, err)
		}
	}
	logger(e).Info("pull request", "url", pr.URL, "number", pr.Number, "opened", opened)
	if o.AutoMerge != "" {
		// The merge commit's message is ferry's own, trailers and all, so
		// that history, the hold and status read a squash like a push.
		msg := rec.Format("")
		title, body, _ := strings.Cut(msg, "\n\n")
		if err := f.AutoMerge(ctx, pr, o.AutoMerge, title, body); err != nil {
			return nil, fmt.Errorf("enabling auto-merge (%s) on pull request #%d: %w", o.AutoMerge, pr.Number, err)
		}
		if pr, err = f.Get(ctx, pr.Number); err != nil {
			return nil, err
		}
	}
	out := &PullRequest{URL: pr.URL, Number: pr.Number, State: pr.State, Head: head, MergeCommit: pr.MergeCommit, Opened: opened}
	if o.Wait <= 0 || pr.State != forge.StateOpen {
		return out, waitVerdict(out)
	}
	wctx, cancel := context.WithTimeout(ctx, o.Wait)
	defer cancel()
	every := o.PollEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	got, werr := forge.Wait(wctx, f, pr.Number, every)
	if got != nil {
		out.State, out.MergeCommit = got.State, got.MergeCommit
	}
	if werr != nil && (!errors.Is(werr, context.DeadlineExceeded) || ctx.Err() != nil) {
		// Not --wait's own deadline: --timeout, a signal, the host.
		return out, fmt.Errorf("waiting for %s: %w", out.URL, werr)
	}
	if o.Wait > 0 && out.State == forge.StateOpen {
		return out, fmt.Errorf("%w after %s: %s", ErrPullRequestOpen, o.Wait, out.URL)
	}
	return out, waitVerdict(out)
}

// waitVerdict is the error a pull request's final state makes.
func waitVerdict(pr *PullRequest) error {
	if pr.State == forge.StateClosed {
		return fmt.Errorf("%w: %s", ErrPullRequestClosed, pr.URL)
	}
	return nil
}

// prBody says what moves: the images, where they came from, the files,
// and the trailers the commit carries.
func prBody(rec audit.Record, rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ferry %s of `%s` on `%s`.\n\n", rec.Action, rec.Path, rep.Branch)
	if len(rep.Images) > 0 {
		b.WriteString("| image | tag | digest |\n|---|---|---|\n")
		for _, img := range rep.Images {
			fmt.Fprintf(&b, "| `%s` | `%s` | `%s` |\n", mdCode(img.Name), mdCode(dash(img.Tag)), mdCode(img.Digest))
		}
		b.WriteString("\n")
	}
	for _, s := range rec.Sources {
		line := "Built from " + mdCode(or(s.SourceRepo, "?")) + "@" + mdCode(or(s.SourceCommit, "?"))
		if s.BuildURL != "" {
			line += " ([build " + mdCode(or(s.BuildID, "log")) + "](" + s.BuildURL + "))"
		}
		b.WriteString(line + "\n\n")
	}
	if rec.PromotedFrom != "" {
		fmt.Fprintf(&b, "Promoted from `%s`.\n\n", mdCode(rec.PromotedFrom))
	}
	if rec.RollbackTo != "" {
		fmt.Fprintf(&b, "Rolls back to `%s`; once merged it holds `%s` until someone fixes forward.\n\n", mdCode(rec.RollbackTo), rec.Path)
	}
	if len(rep.Files) > 0 {
		b.WriteString("Files:\n")
		for _, f := range rep.Files {
			fmt.Fprintf(&b, "- `%s`\n", mdCode(f))
		}
		b.WriteString("\n")
	}
	b.WriteString("<details><summary>Trailers</summary>\n\n```\n")
	msg := rec.Format("")
	if _, trailers, ok := strings.Cut(msg, "\n\n"); ok {
		b.WriteString(strings.TrimSpace(trailers[strings.LastIndex(trailers, "\n\n")+1:]))
	}
	b.WriteString("\n```\n</details>\n")
	return b.String()
}

// mdCode keeps repository text from closing a code span or a table cell.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "|", "\\|", "\n", " ").Replace(Printable(s, ""))
}
