package ferry

import (
	"context"
	"errors"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/go-git/go-git/v5/plumbing"
)

// plan is one write as deploy, promote and rollback each describe it: the
// audit record (action, branch, app, scope and what the action adds),
// whether the rollback hold applies, and the edit that makes the change.
type plan struct {
	rec audit.Record
	// branch is the branch written; "" means rec.Env (they differ when a
	// config names environments apart from their branches).
	branch string
	// held: the write is refused while a rollback holds its scope, unless
	// override; a rollback itself is never held.
	held, override bool
	dryRun         bool
	// edit makes the change on a fresh snapshot of the branch, and returns
	// the record to commit (rec with what this attempt found: images,
	// sources), the images to report, and, when it chose to change nothing
	// for a reason worth reporting, that reason. It must be a pure function
	// of the snapshot and the plan: it runs again on every attempt.
	edit func(ctx context.Context, s *envrepo.Snapshot, rec audit.Record) (audit.Record, []Image, string, error)
	// headGuard, in pull-request mode, is shown the record of the commit
	// the open pull request carries before this write replaces it, and
	// says why not, if it must not (a newer build there).
	headGuard func(ctx context.Context, head audit.Record) string
}

// write carries out a plan. On every attempt, against the tip being
// written on: the scope is checked, the hold is checked, the edit runs; the
// writer then validates what changed, commits and pushes with
// compare-and-swap, and write reports the outcome.
func write(ctx context.Context, e Env, p plan) (*Report, error) {
	branch := or(p.branch, p.rec.Env)
	hold := &holdCheck{e: e, branch: branch, scope: p.rec.Path, override: p.override, what: p.rec.Action}
	w := writer(e, branch, p.dryRun)
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	if p.held {
		// Every round fetches the hold's history beside the tip.
		w.Prepare = func(ctx context.Context) { stops = append(stops, hold.start(ctx)) }
	}
	w.Verify = e.verify
	// Validation reads only the snapshot, unless remote resources are
	// fetched: then a retry must build again.
	w.VerifyReads = !e.AllowRemoteResources
	w.Scope = p.rec.Path // the trees elsewhere come only if read
	pr := e.PullRequest
	var head string
	if pr != nil && !p.dryRun {
		head = headName(pr.Head, p.rec.Env, p.rec.App, p.rec.Action)
		w.Head, w.HeadCheck = head, headCheck(p, head)
	}
	var final audit.Record
	var images []Image
	// skip is why the last attempt changed nothing on purpose. That attempt
	// ends as any no-op does, so the writer's count of attempts is true.
	var skip string
	res, err := w.Update(ctx, func(ctx context.Context, s *envrepo.Snapshot) (string, error) {
		skip = ""
		if err := s.CheckScope(p.rec.Path); err != nil {
			return "", scopeError(err)
		}
		rec := p.rec
		if p.held {
			over, err := hold.check(ctx, s)
			if err != nil {
				return "", err
			}
			rec.OverrideRollback = over
		}
		rec, imgs, why, err := p.edit(ctx, s, rec)
		if err != nil {
			return "", err
		}
		images, skip = imgs, why
		if skip != "" {
			s.Reset() // a skip changes nothing, whatever the edit wrote first
		}
		final = rec
		return rec.Format(""), nil
	})
	var sh *skipHead
	if errors.As(err, &sh) {
		logger(e).Warn("skipped", "action", p.rec.Action, "branch", branch, "reason", sh.why)
		return &Report{Action: p.rec.Action, Branch: branch, Env: envName(p.rec.Env, branch), App: p.rec.App, Path: p.rec.Path,
			Images: nonNilImages(images), Files: []string{}, Skipped: true, Reason: sh.why}, nil
	}
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Action:   p.rec.Action,
		Changed:  res.Changed,
		Branch:   branch,
		Env:      envName(p.rec.Env, branch),
		App:      p.rec.App,
		Path:     p.rec.Path,
		Attempts: res.Attempts,
		Images:   nonNilImages(images),
		Files:    nonNil(res.Files),
		DryRun:   p.dryRun,
		Diff:     res.Diff,
		Parent:   res.Parent.String(),
	}
	if !res.Commit.IsZero() {
		rep.Commit = res.Commit.String()
	}
	if skip != "" {
		logger(e).Warn("skipped", "action", p.rec.Action, "branch", branch, "reason", skip)
		rep.Skipped, rep.Reason = true, skip
	}
	if head != "" && rep.Changed {
		rep.PullRequest, err = pullRequest(ctx, e, pr, final, branch, head, rep)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// envName is the environment's name for a report: empty when it is the
// branch's.
func envName(env, branch string) string {
	if env == branch {
		return ""
	}
	return env
}

// verify is the writer's check before every push: every touched file
// parses and every kustomization root holding one builds, within ctx and
// the remote-resource policy of e.
func (e Env) verify(ctx context.Context, s *envrepo.Snapshot) error {
	files, err := s.Touched()
	if err != nil {
		return err
	}
	return manifest.Validate(ctx, s.FS(), files, e.validateOptions()...)
}

func (e Env) validateOptions() []manifest.Option {
	if !e.AllowRemoteResources {
		return nil
	}
	return []manifest.Option{manifest.WithRemoteResources(e.RemoteTimeout)}
}

// effectiveImages maps repository to the reference the rendered manifests
// would use, for the images under scope.
func effectiveImages(s *envrepo.Snapshot, scope string, opts ...manifest.PinOption) (map[string]manifest.Ref, error) {
	if _, ok := s.Tree(scope); !ok {
		return map[string]manifest.Ref{}, nil
	}
	if err := s.Prefetch(scope); err != nil { // one request, after a partial fetch
		return nil, err
	}
	refs, err := manifest.Images(s.FS(), scope, opts...)
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

// graft is the edit of promote and rollback: make the scope the subtree
// tree of from, and record the images that change with the provenance
// sources holds for them.
func graft(from *envrepo.Snapshot, tree plumbing.Hash, sources map[string]audit.Source, opts []manifest.PinOption) func(context.Context, *envrepo.Snapshot, audit.Record) (audit.Record, []Image, string, error) {
	return func(ctx context.Context, s *envrepo.Snapshot, rec audit.Record) (audit.Record, []Image, string, error) {
		before, err := effectiveImages(s, rec.Path, opts...)
		if err != nil {
			return rec, nil, "", err
		}
		if err := s.Graft(rec.Path, from, tree); err != nil {
			return rec, nil, "", err
		}
		after, err := effectiveImages(s, rec.Path, opts...)
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
	}
}
