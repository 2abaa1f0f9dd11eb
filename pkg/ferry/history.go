package ferry

import (
	"context"
	"errors"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// HistoryRequest is one `ferry history`.
type HistoryRequest struct {
	Env   string
	Path  string
	Limit int // 0 means 20
	// Verify checks each commit's signature against Env.Verifier and
	// reports it in Entry.Signature.
	Verify bool
}

// Entry is one commit in an environment's history.
type Entry struct {
	Commit  string    `json:"commit"`
	Time    time.Time `json:"time"`
	Author  string    `json:"author"`
	Action  string    `json:"action"` // deploy, promote, rollback or manual
	App     string    `json:"app,omitempty"`
	Subject string    `json:"subject"`
	// Images in scope after this commit, read from its tree (so commits
	// ferry did not make show them too).
	Images       []Image        `json:"images"`
	Sources      []audit.Source `json:"sources,omitempty"`
	PromotedFrom string         `json:"promotedFrom,omitempty"`
	RollbackTo   string         `json:"rollbackTo,omitempty"`
	// Signature is the commit's signature as Env.Verifier sees it; only
	// with HistoryRequest.Verify.
	Signature *SignatureStatus `json:"signature,omitempty"`
}

// History lists the commits of Env that changed Path, newest first, on the
// first-parent chain (a merged branch shows as its merge commit).
func History(ctx context.Context, e Env, req HistoryRequest) ([]Entry, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var commits []*object.Commit
	h, err := envrepo.Search(ctx, e.Remote, req.Env, max(searchDepth, req.Limit*2), func(h *envrepo.History) (bool, error) {
		commits = commits[:0]
		err := h.FirstParent(func(c *object.Commit, parentTree plumbing.Hash) (bool, error) {
			if changedScope(h, c.TreeHash, parentTree, req.Path) {
				commits = append(commits, c)
			}
			return len(commits) < req.Limit, nil
		})
		if errors.Is(err, envrepo.ErrTruncated) {
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	hashes := make([]plumbing.Hash, len(commits))
	for i, c := range commits {
		hashes[i] = c.Hash
	}
	if err := h.Prefetch(hashes, req.Path); err != nil {
		return nil, err
	}
	// The same subtree (a promote of an unchanged app, a rollback to a
	// state seen before) is read once.
	cache := map[plumbing.Hash][]Image{}
	out := make([]Entry, 0, len(commits))
	for _, c := range commits {
		rec := audit.Parse(c.Message)
		en := Entry{
			Commit:       c.Hash.String(),
			Time:         c.Author.When.UTC(),
			Author:       c.Author.Name + " <" + c.Author.Email + ">",
			Action:       rec.Action,
			App:          rec.App,
			Subject:      firstLine(c.Message),
			Sources:      rec.Sources,
			PromotedFrom: rec.PromotedFrom,
			RollbackTo:   rec.RollbackTo,
		}
		if req.Verify {
			if en.Signature, err = signatureOf(e, c); err != nil {
				return nil, err
			}
		}
		tree, ok := h.TreeAt(c.TreeHash, req.Path)
		if imgs, hit := cache[tree]; hit {
			en.Images = imgs
		} else if ok {
			snap, err := h.At(c.Hash)
			if err != nil {
				return nil, err
			}
			if err := snap.Prefetch(req.Path); err != nil {
				return nil, err
			}
			refs, err := manifest.Images(snap.FS(), req.Path, e.readOptions()...)
			if err != nil {
				return nil, err
			}
			eff := manifest.Effective(refs)
			for _, repo := range manifest.SortedRepos(eff) {
				en.Images = append(en.Images, imageOf(eff[repo]))
			}
			cache[tree] = en.Images
		}
		en.Images = nonNilImages(en.Images)
		out = append(out, en)
	}
	return out, nil
}
