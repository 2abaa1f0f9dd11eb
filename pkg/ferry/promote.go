package ferry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/image"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrHeld: the scope was rolled back, and nothing replaces a rollback
// without saying so.
var ErrHeld = errors.New("held by a rollback")

// searchDepth is how many commits a history question fetches first; Search
// deepens fourfold from there when the answer lies further back.
const searchDepth = 20

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
	if err := checkPromote(req); err != nil {
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
		return nil, usagef("%v", err)
	}
	tree, ok := src.TreeAt(commit.TreeHash, req.Path)
	if !ok {
		return nil, fmt.Errorf("%s does not exist on %s at %s; nothing to promote", req.Path, req.From, short(commit.Hash))
	}
	log.Info("promoting", "from", req.From, "commit", commit.Hash.String(), "to", req.To, "path", req.Path)
	sources := deploySources(src, commit.Hash)
	if err := checkHold(ctx, e, req.To, req.Path, req.OverrideRollback, "promote"); err != nil {
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
	rep, err := graftWrite(ctx, e, rec, req.DryRun, from, tree, sources)
	if err != nil {
		return nil, err
	}
	rep.From = req.From + "@" + commit.Hash.String()
	if !rep.Changed {
		rep.Reason = fmt.Sprintf("%s on %s is already identical to %s at %s", req.Path, req.To, req.From, short(commit.Hash))
	}
	return rep, nil
}

func checkPromote(req PromoteRequest) error {
	switch {
	case strings.TrimSpace(req.From) == "":
		return usagef("--from is required (the verified environment, e.g. candidate)")
	case strings.TrimSpace(req.To) == "":
		return usagef("--to is required (the environment to update, e.g. production)")
	case req.From == req.To:
		return usagef("--from and --to are both %q; promote carries one environment's state to another", req.From)
	}
	if err := checkBranch("--from", req.From); err != nil {
		return err
	}
	if err := checkBranch("--to", req.To); err != nil {
		return err
	}
	if req.Commit != "" && !isHexPrefix(req.Commit) {
		return usagef("--commit %q is not a commit SHA (7 to 40 hex digits)", req.Commit)
	}
	if err := envrepo.CleanScope(req.Path); err != nil {
		return usagef("--path: %v", err)
	}
	return nil
}

// checkBranch refuses names git cannot have as branches, and full ref names
// (ferry takes the branch name, as the environment is named).
func checkBranch(flag, b string) error {
	if strings.HasPrefix(b, "refs/") {
		return usagef("%s %q: give the branch name, %q", flag, b, b[strings.LastIndexByte(b, '/')+1:])
	}
	if err := plumbing.NewBranchReferenceName(b).Validate(); err != nil || strings.HasPrefix(b, "-") {
		return usagef("%s %q is not a valid branch name", flag, b)
	}
	return nil
}

func isHexPrefix(s string) bool {
	if len(s) < 7 || len(s) > 40 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
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
// the fetched first-parent history at or before commit that wrote it.
func deploySources(h *envrepo.History, from plumbing.Hash) map[string]audit.Source {
	out := map[string]audit.Source{}
	_ = h.Walk(from, func(c *object.Commit) bool {
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
	return out
}

// repoDigest turns repo:tag@digest into repo@digest.
func repoDigest(ref string) string {
	at := strings.IndexByte(ref, '@')
	if at < 0 {
		return ref
	}
	repo := ref[:at]
	if c := strings.LastIndexByte(repo, ':'); c > strings.LastIndexByte(repo, '/') {
		repo = repo[:c]
	}
	if canon, err := image.ParseRepo(repo); err == nil {
		repo = canon
	}
	return repo + ref[at:]
}

// checkHold refuses to write scope on branch while the newest commit that
// changed it is a rollback, unless override.
//
// It reads commit messages only (a few hundred bytes a commit, however big
// the repo): ferry's commits name their scope in Ferry-Path. Walking back
// from the tip, a ferry commit for the scope itself or inside it settles
// the question (a rollback holds, anything else does not); a broader or
// unmarked commit (by hand) may or may not have changed the scope, so the
// walk goes on, and a rollback found beyond such commits holds only if the
// scope's tree is still the one it wrote.
func checkHold(ctx context.Context, e Env, branch, scope string, override bool, what string) error {
	var rollback *object.Commit
	var unsure bool // a commit on the way may have changed the scope
	h, err := envrepo.SearchCommits(ctx, e.Remote, branch, 512, func(h *envrepo.History) (bool, error) {
		rollback, unsure = nil, false
		settled := false
		last := h.Tip
		err := h.Walk(h.Tip, func(c *object.Commit) bool {
			last = c.Hash
			rec := audit.Parse(c.Message)
			switch {
			case rec.Action == audit.ActionManual || rec.Path == "":
				unsure = true // by hand, or before Ferry-Path: cannot tell
				return true
			case !overlaps(rec.Path, scope):
				return true
			case rec.Action == audit.ActionRollback && within(scope, rec.Path):
				rollback, settled = c, true
				return false
			case within(rec.Path, scope):
				settled = true // a deploy or promote of the scope: no hold
				return false
			default:
				unsure = true // a broader write; look further
				return true
			}
		})
		if err != nil {
			return false, err
		}
		// Answered, unless the walk ran into the edge of the fetch.
		return settled || !h.Shallow(last), nil
	})
	if err != nil || rollback == nil {
		return err
	}
	if unsure {
		// Something since may have changed the scope: compare its tree
		// now with the one the rollback wrote.
		if err := h.LoadTrees(h.Tip, rollback.Hash); err != nil {
			return err
		}
		tip, err := h.Commit(h.Tip)
		if err != nil {
			return err
		}
		now, _ := h.TreeAt(tip.TreeHash, scope)
		then, _ := h.TreeAt(rollback.TreeHash, scope)
		if now != then {
			return nil
		}
	}
	if override {
		logger(e).Warn("replacing a rollback (--override-rollback)", "branch", branch, "path", scope, "rollback", rollback.Hash.String())
		return nil
	}
	return fmt.Errorf("%w: %s on %s was rolled back by %s (%q); a %s would undo that. Fix forward and pass --override-rollback to %s anyway",
		ErrHeld, scope, branch, short(rollback.Hash), firstLine(rollback.Message), what, what)
}

// within reports whether path p is scope or inside it.
func within(p, scope string) bool {
	return scope == "." || p == scope || strings.HasPrefix(p, scope+"/")
}

// overlaps reports whether writing one path can change the other.
func overlaps(a, b string) bool { return within(a, b) || within(b, a) }

func changedScope(h *envrepo.History, tree, parentTree plumbing.Hash, scope string) bool {
	a, okA := h.TreeAt(tree, scope)
	b, okB := h.TreeAt(parentTree, scope)
	return okA != okB || a != b
}

// graftWrite makes rec.Path on rec.Env the subtree tree of from, as
// promote and rollback both do, and commits it with the images that change
// and the provenance sources records for them.
func graftWrite(ctx context.Context, e Env, rec audit.Record, dryRun bool, from *envrepo.Snapshot, tree plumbing.Hash, sources map[string]audit.Source) (*Report, error) {
	var images []Image
	w := writer(e, rec.Env, dryRun)
	w.Verify = e.verify
	res, err := w.Update(ctx, func(ctx context.Context, s *envrepo.Snapshot) (string, error) {
		if err := s.CheckScope(rec.Path); err != nil {
			return "", usagef("%v", err)
		}
		before, err := effectiveImages(s, rec.Path)
		if err != nil {
			return "", err
		}
		if err := s.Graft(rec.Path, from, tree); err != nil {
			return "", err
		}
		after, err := effectiveImages(s, rec.Path)
		if err != nil {
			return "", err
		}
		images = changedImages(before, after)
		r := rec
		seen := map[audit.Source]bool{}
		for _, img := range images {
			r.Images = append(r.Images, img.Ref)
			if src, ok := sources[img.Name+"@"+img.Digest]; ok && !seen[src] {
				seen[src] = true
				r.Sources = append(r.Sources, src)
			}
		}
		return r.Format(""), nil
	})
	if err != nil {
		return nil, err
	}
	rep := report(rec.Action, rec.Env, rec.App, rec.Path, dryRun, res)
	rep.Images = nonNilImages(images)
	return rep, nil
}

func (e Env) verify(ctx context.Context, s *envrepo.Snapshot) error {
	return manifest.Validate(ctx, s.FS(), s.Touched(), e.validateOptions()...)
}

func (e Env) validateOptions() []manifest.Option {
	if !e.AllowRemoteResources {
		return nil
	}
	return []manifest.Option{manifest.WithRemoteResources(e.RemoteTimeout)}
}

// effectiveImages maps repository to the reference the rendered manifests
// would use, for the images under scope.
func effectiveImages(s *envrepo.Snapshot, scope string) (map[string]manifest.Ref, error) {
	if _, ok := s.Tree(scope); !ok {
		return map[string]manifest.Ref{}, nil
	}
	if err := s.Prefetch(scope); err != nil { // one request, after a partial fetch
		return nil, err
	}
	refs, err := manifest.Images(s.FS(), scope)
	if err != nil {
		return nil, err
	}
	return manifest.Effective(refs), nil
}

// changedImages lists the images whose reference differs, as they are after.
func changedImages(before, after map[string]manifest.Ref) []Image {
	var out []Image
	for _, repo := range manifest.SortedRepos(after) {
		a := after[repo]
		if b, ok := before[repo]; ok && b.Tag == a.Tag && b.Digest == a.Digest {
			continue
		}
		out = append(out, imageOf(a))
	}
	return out
}

func imageOf(r manifest.Ref) Image {
	ref := r.Repo
	if r.Tag != "" {
		ref += ":" + r.Tag
	}
	if r.Digest != "" {
		ref += "@" + r.Digest
	}
	return Image{Name: r.Repo, Tag: r.Tag, Digest: r.Digest, Ref: ref}
}

func report(action, branch, app, scope string, dryRun bool, res *envrepo.Result) *Report {
	rep := &Report{
		Action:   action,
		Changed:  res.Changed,
		Branch:   branch,
		App:      app,
		Path:     scope,
		Attempts: res.Attempts,
		Files:    nonNil(res.Files),
		DryRun:   dryRun,
		Diff:     res.Diff,
		Parent:   res.Parent.String(),
	}
	if !res.Commit.IsZero() {
		rep.Commit = res.Commit.String()
	}
	return rep
}

func nonNilImages(s []Image) []Image {
	if s == nil {
		return []Image{}
	}
	return s
}

func scopeName(scope string) string {
	if scope == "." || scope == "" {
		return ""
	}
	return scope[strings.LastIndexByte(scope, '/')+1:]
}

func short(h plumbing.Hash) string { return h.String()[:12] }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
