package ferry

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// PromoteRequest is one `ferry promote`.
type PromoteRequest struct {
	// From and To are the branches read and written.
	From, To string
	// Commit on From to promote; empty means From's tip. A full SHA or a
	// unique prefix of at least 7 hex digits.
	Commit string
	// Path is the directory written on To, and read on From unless
	// FromPath is set (environments as directories: envs/staging/hello
	// to envs/production/hello).
	Path     string
	FromPath string
	// FromRepo is the env repo read when it is not the one written
	// (Env.Remote): a URL, reached through Env.RemoteFor.
	FromRepo string
	// FromEnv and ToEnv name the environments in the audit trail and the
	// report when they are not the branch names (a ferry.yaml names them).
	FromEnv, ToEnv string
	// Carry is what the promote carries: CarryTree (the default: the
	// directory whole) or CarryImages (the image pins alone, written into
	// the target's own fields, every other byte of it left alone).
	Carry            string
	App              string
	OverrideRollback bool
	DryRun           bool
	// RequireSigned refuses, before anything is written, a source commit
	// whose signature does not verify against Env.Verifier (an
	// *UnverifiedError).
	RequireSigned bool
}

// What a promote carries.
const (
	CarryTree   = "tree"
	CarryImages = "images"
)

// Promote carries FromPath on From at Commit to Path on To. With CarryTree
// it makes Path identical: the subtree is grafted whole, so files From
// deleted are deleted. With CarryImages it pins, in Path's own fields,
// every image FromPath pins by digest, and changes nothing else. Nothing
// outside Path on To changes either way.
func Promote(ctx context.Context, e Env, req PromoteRequest) (*Report, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	log := logger(e)
	fromName, toName := or(req.FromEnv, req.From), or(req.ToEnv, req.To)
	fromPath := or(req.FromPath, req.Path)
	srcRemote := e.remoteFor(req.FromRepo)
	src, commit, err := findCommit(ctx, srcRemote, req.From, req.Commit, "promote only what "+fromName+" has verified")
	if err != nil {
		return nil, err
	}
	if req.RequireSigned {
		if err := requireSigned(e, fromName, commit); err != nil {
			return nil, err
		}
	}
	from, err := src.At(commit.Hash)
	if err != nil {
		return nil, err
	}
	if err := from.CheckScope(fromPath); err != nil {
		return nil, scopeError(err)
	}
	tree, ok := src.TreeAt(commit.TreeHash, fromPath)
	if !ok {
		return nil, fmt.Errorf("%s does not exist on %s at %s; nothing to promote", fromPath, fromName, ref.ShortSHA(commit.Hash.String()))
	}
	log.Info("promoting", "from", fromName, "commit", commit.Hash.String(), "to", toName, "path", req.Path, "carry", or(req.Carry, CarryTree))
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
		Env:          toName,
		App:          app,
		Path:         req.Path,
		PromotedFrom: fromName + "@" + commit.Hash.String(),
	}
	if srcRemote.URL != e.Remote.URL {
		rec.PromotedFromRepo = envrepo.Redact(srcRemote.URL)
	}
	if fromPath != req.Path {
		rec.PromotedFromPath = fromPath
	}
	if rec.PromotedFromRepo != "" && req.Carry != CarryImages {
		// The objects come from another repo, whose server alone has the
		// blobs a partial fetch left out: bring them all before grafting.
		if err := from.Prefetch(fromPath); err != nil {
			return nil, fmt.Errorf("reading %s from %s: %w", fromPath, rec.PromotedFromRepo, err)
		}
	}
	edit := graft(from, tree, sources, e.readOptions())
	if req.Carry == CarryImages {
		rec.Carry = CarryImages
		if edit, err = carryImages(e, from, fromPath, sources); err != nil {
			return nil, err
		}
	}
	rep, err := write(ctx, e, plan{rec: rec, branch: req.To, held: true, override: req.OverrideRollback, dryRun: req.DryRun, edit: edit})
	if err != nil {
		return rep, err // a report with its pull request, when one was made
	}
	rep.From = fromName + "@" + commit.Hash.String()
	rep.Carry = or(req.Carry, CarryTree)
	if !rep.Changed {
		what := "identical to"
		if req.Carry == CarryImages {
			what = "already pinned to the images of"
		}
		rep.Reason = fmt.Sprintf("%s on %s is %s %s at %s", req.Path, toName, what, fromName, ref.ShortSHA(commit.Hash.String()))
	}
	return rep, nil
}

// carryImages is the edit of a promote that carries image pins: every
// image fromPath pins by digest on from is pinned, by deploy's rewriter, in
// the scope's own fields. An image the source names only by tag is not a
// pin and is not carried; one the target does not reference is an error,
// as it is for a deploy.
func carryImages(e Env, from *envrepo.Snapshot, fromPath string, sources map[string]audit.Source) (func(context.Context, *envrepo.Snapshot, audit.Record) (audit.Record, []Image, string, error), error) {
	pins, err := effectiveImages(from, fromPath, e.readOptions()...)
	if err != nil {
		return nil, fmt.Errorf("reading the images of %s: %w", fromPath, err)
	}
	var targets []manifest.Target
	var unpinned []string
	for _, repo := range manifest.SortedRepos(pins) {
		p := pins[repo]
		if p.Digest == "" {
			unpinned = append(unpinned, p.Value)
			continue
		}
		targets = append(targets, manifest.Target{Repo: p.Repo, Tag: p.Tag, Digest: p.Digest})
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%s pins no image by digest (it names %v); nothing to carry: deploy it there first, or promote with carry tree", fromPath, unpinned)
	}
	if len(unpinned) > 0 {
		logger(e).Warn("not carried: named by tag only, not pinned", "path", fromPath, "images", unpinned)
	}
	return func(ctx context.Context, s *envrepo.Snapshot, rec audit.Record) (audit.Record, []Image, string, error) {
		before, err := effectiveImages(s, rec.Path, e.readOptions()...)
		if err != nil {
			return rec, nil, "", err
		}
		if err := s.Prefetch(rec.Path); err != nil {
			return rec, nil, "", err
		}
		if _, err := pin(ctx, e, s, rec.Path, targets, e.readOptions()...); err != nil {
			return rec, nil, "", fmt.Errorf("pinning the images of %s in %s: %w", fromPath, rec.Path, err)
		}
		after, err := effectiveImages(s, rec.Path, e.readOptions()...)
		if err != nil {
			return rec, nil, "", err
		}
		images := changedImages(before, after)
		seen := map[audit.Source]bool{}
		for _, img := range images {
			rec.Images = append(rec.Images, img.Ref)
			if src, ok := sources[img.Name+"@"+img.Digest]; ok && !seen[src] {
				seen[src] = true
				rec.Sources = append(rec.Sources, src)
			}
		}
		return rec, images, "", nil
	}, nil
}

// findCommit fetches branch as deep as needed to find sha on it ("" is the
// tip) and refuses a sha that is not in its history.
func findCommit(ctx context.Context, r envrepo.Remote, branch, sha, hint string) (*envrepo.History, *object.Commit, error) {
	var found *object.Commit
	// Even for the tip, fetch some history: the deploys it carries, whose
	// provenance a promote records, are usually a few commits back.
	// Messages only: finding a commit and the deploys behind it needs no
	// trees; the chosen commit's trees are loaded once it is found.
	h, err := envrepo.SearchCommits(ctx, r, branch, searchDepth, func(h *envrepo.History) (bool, error) {
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
