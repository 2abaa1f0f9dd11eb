package ferry

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// PromoteRequest is one `ferry promote`.
type PromoteRequest struct {
	From, To string
	// Commit on From to promote; empty means From's tip. A full SHA or a
	// unique prefix of at least 7 hex digits.
	Commit           string
	Path             string
	App              string
	OverrideRollback bool
	DryRun           bool
}

// Promote makes Path on To identical to Path on From at Commit: the subtree
// is grafted whole, so files From deleted are deleted, and nothing outside
// Path on To changes.
func Promote(ctx context.Context, e Env, req PromoteRequest) (*Report, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	log := logger(e)
	src, commit, err := findCommit(ctx, e, req.From, req.Commit, "promote only what "+req.From+" has verified")
	if err != nil {
		return nil, err
	}
	from, err := src.At(commit.Hash)
	if err != nil {
		return nil, err
	}
	if err := from.CheckScope(req.Path); err != nil {
		return nil, scopeError(err)
	}
	tree, ok := src.TreeAt(commit.TreeHash, req.Path)
	if !ok {
		return nil, fmt.Errorf("%s does not exist on %s at %s; nothing to promote", req.Path, req.From, ref.ShortSHA(commit.Hash.String()))
	}
	log.Info("promoting", "from", req.From, "commit", commit.Hash.String(), "to", req.To, "path", req.Path)
	sources, err := deploySources(src, commit.Hash)
	if err != nil {
		return nil, err
	}
	app := req.App
	if app == "" {
		app = scopeName(req.Path)
	}
	rec := audit.Record{
		Action:       audit.ActionPromote,
		Env:          req.To,
		App:          app,
		Path:         req.Path,
		PromotedFrom: req.From + "@" + commit.Hash.String(),
	}
	rep, err := write(ctx, e, plan{rec: rec, held: true, override: req.OverrideRollback, dryRun: req.DryRun, edit: graft(from, tree, sources, e.readOptions())})
	if err != nil {
		return nil, err
	}
	rep.From = req.From + "@" + commit.Hash.String()
	if !rep.Changed {
		rep.Reason = fmt.Sprintf("%s on %s is already identical to %s at %s", req.Path, req.To, req.From, ref.ShortSHA(commit.Hash.String()))
	}
	return rep, nil
}

// findCommit fetches branch as deep as needed to find sha on it ("" is the
// tip) and refuses a sha that is not in its history.
func findCommit(ctx context.Context, e Env, branch, sha, hint string) (*envrepo.History, *object.Commit, error) {
	var found *object.Commit
	// Even for the tip, fetch some history: the deploys it carries, whose
	// provenance a promote records, are usually a few commits back.
	// Messages only: finding a commit and the deploys behind it needs no
	// trees; the chosen commit's trees are loaded once it is found.
	h, err := envrepo.SearchCommits(ctx, e.Remote, branch, searchDepth, func(h *envrepo.History) (bool, error) {
		if sha == "" {
			c, err := h.Commit(h.Tip)
			found = c
			return true, err
		}
		c, ok, err := h.Find(sha)
		found = c
		return ok, err
	})
	if err != nil {
		return nil, nil, err
	}
	if found == nil {
		return nil, nil, fmt.Errorf("commit %s is not on %s (searched all %s history); %s", sha, branch, branch, hint)
	}
	if err := h.LoadTrees(found.Hash); err != nil {
		return nil, nil, err
	}
	return h, found, nil
}

// deploySources maps "repo@digest" to the provenance of the newest deploy on
// the fetched first-parent history at or before commit that wrote it. What
// lies beyond the fetch is not looked for: provenance is what the fetched
// history records.
func deploySources(h *envrepo.History, from plumbing.Hash) (map[string]audit.Source, error) {
	out := map[string]audit.Source{}
	err := h.Walk(from, func(c *object.Commit) bool {
		rec := audit.Parse(c.Message)
		if (rec.Action != audit.ActionDeploy && rec.Action != audit.ActionPromote) || len(rec.Sources) == 0 {
			return true
		}
		for _, img := range rec.Images {
			key := repoDigest(img)
			if _, ok := out[key]; ok {
				continue
			}
			// A promote carrying several sources cannot say which image
			// came from which; only a single source is attributed.
			if len(rec.Sources) == 1 {
				out[key] = rec.Sources[0]
			}
		}
		return true
	})
	if err != nil && !errors.Is(err, envrepo.ErrTruncated) {
		return nil, fmt.Errorf("reading the provenance on %s: %w", h.Branch, err)
	}
	return out, nil
}

// repoDigest turns repo:tag@digest into repo@digest, the key of one image
// whatever its tags.
func repoDigest(s string) string {
	r := ref.Split(s)
	if r.Digest == "" {
		return s
	}
	if canon, err := ref.ParseRepo(r.Repo); err == nil {
		r.Repo = canon
	}
	return r.Repository().String()
}
