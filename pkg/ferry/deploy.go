package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/ferrycd/ferry/pkg/ref"
)

// DeployRequest is one `ferry deploy`.
type DeployRequest struct {
	Env string // branch to write
	// EnvName names the environment in the audit trail when a ferry.yaml
	// names it apart from its branch.
	EnvName string
	Images  []string // repo:tag, repo@sha256:..., or both
	// ImageFields name the Helm values fields to pin (Argo CD Image
	// Updater's syntax: frontend.image, sidecars[0].image) instead of
	// detecting them.
	ImageFields []string
	// Policies are Flux ImagePolicies (NAMESPACE:NAME), the i-th for the
	// i-th image: its setter markers are the fields that image pins. Fewer
	// policies than images leave the rest matched by repository.
	Policies []string
	Path     string // scope inside the repo; "." for all of it
	App      string // name in the audit trail; derived when empty
	Provenance
	// OverrideRollback deploys even though Path on Env was rolled back.
	OverrideRollback bool
	// AllowDowngrade deploys an image even when it was built before the one
	// it replaces (pipelines finishing out of order are refused otherwise).
	AllowDowngrade bool
	DryRun         bool
}

// Deploy resolves each image to its digest, pins every reference to it under
// the scope on the env branch, validates the result, and commits and pushes
// it. When nothing changes it returns a report with Changed false and
// pushes nothing.
func Deploy(ctx context.Context, e Env, req DeployRequest) (*Report, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	log := logger(e)
	if e.Resolver == nil {
		return nil, errors.New("deploy: no image resolver configured")
	}
	guard := &orderGuard{r: e.Resolver, log: log, created: map[string]time.Time{}}
	// The registry is asked while the branch is fetched: the edit waits
	// for the answer only when it needs it. Nothing outlives Deploy.
	rctx, cancel := context.WithCancel(ctx)
	resolved, wait := resolve(rctx, e, req, guard)
	defer wait()
	defer cancel()
	app := req.App
	if app == "" {
		first, _ := ref.Parse(req.Images[0]) // Validate parsed it
		app = deriveApp(req.Path, first.Repo)
	}
	rec := audit.Record{Action: audit.ActionDeploy, Env: or(req.EnvName, req.Env), App: app, Path: req.Path}
	if !req.Provenance.IsZero() {
		rec.Sources = []audit.Source{req.Provenance}
	}
	rep, err := write(ctx, e, plan{rec: rec, branch: req.Env, held: true, override: req.OverrideRollback, dryRun: req.DryRun,
		edit: func(ctx context.Context, s *envrepo.Snapshot, rec audit.Record) (audit.Record, []Image, string, error) {
			r, err := resolved(ctx)
			if err != nil {
				return rec, nil, "", err
			}
			for _, img := range r.images {
				rec.Images = append(rec.Images, img.Ref)
			}
			// One request for every blob the rewriter will read (after a
			// partial fetch; a no-op otherwise).
			if err := s.Prefetch(req.Path); err != nil {
				return rec, nil, "", err
			}
			var opts []manifest.PinOption
			if len(req.ImageFields) > 0 {
				opts = append(opts, manifest.WithImageFields(req.ImageFields...))
			}
			changes, err := pin(ctx, e, s, req.Path, r.targets, e.readOptions(opts...)...)
			if err != nil {
				return rec, nil, "", fmt.Errorf("pinning images on %s: %w", req.Env, err)
			}
			if !req.AllowDowngrade {
				if why := guard.check(ctx, changes, r.targets); why != "" {
					return rec, r.images, why, nil
				}
			}
			return rec, r.images, "", nil
		},
		headGuard: func(ctx context.Context, head audit.Record) string {
			// The open pull request may carry a newer build of the same
			// images (two pipelines racing): that one stays.
			r, err := resolved(ctx)
			if err != nil || req.AllowDowngrade {
				return ""
			}
			var changes []manifest.Change
			for _, img := range head.Images {
				hr := ref.Split(img)
				if canon, err := ref.ParseRepo(hr.Repo); err == nil {
					hr.Repo = canon
				}
				changes = append(changes, manifest.Change{Repo: hr.Repo, Old: img, File: "the open pull request"})
			}
			return guard.check(ctx, changes, r.targets)
		}})
	if err != nil {
		return rep, err // a report with its pull request, when one was made
	}
	if !rep.Changed && !rep.Skipped {
		rep.Reason = "already pinned: every reference in scope has these digests"
	}
	return rep, nil
}

// resolution is what the registry said of a deploy's images.
type resolution struct {
	targets []manifest.Target
	images  []Image
}

// resolve asks the registry for every image's digest, and, for the
// out-of-order guard, when each was built, in the background; the func it
// returns waits for the answer.
func resolve(ctx context.Context, e Env, req DeployRequest, guard *orderGuard) (answer func(context.Context) (*resolution, error), wait func()) {
	done := make(chan struct{})
	var r resolution
	var rerr error
	go func() {
		defer close(done)
		seen := map[string]string{}
		for _, in := range req.Images {
			res, err := e.Resolver.Resolve(ctx, in)
			if err != nil {
				rerr = err
				return
			}
			if prev, ok := seen[res.Repo]; ok {
				rerr = fieldErrorf("Images", "{Images} %s and {Images} %s name the same repository; give each image once", prev, in)
				return
			}
			seen[res.Repo] = in
			logger(e).Info("resolved", "image", in, "digest", res.Digest)
			t := manifest.Target{Repo: res.Repo, Tag: res.Tag, Digest: res.Digest}
			if i := len(r.targets); i < len(req.Policies) {
				t.Policy = req.Policies[i]
			}
			r.targets = append(r.targets, t)
			r.images = append(r.images, Image{Name: res.Repo, Tag: res.Tag, Digest: res.Digest, Ref: res.String()})
		}
	}()
	answer = func(ctx context.Context) (*resolution, error) {
		select {
		case <-done:
			return &r, rerr
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return answer, func() { <-done }
}

// pin writes every target into the files under scope that reference it.
// A target that only a base outside the scope holds gets an entry in the
// scope's kustomization images list instead (manifest.AddImageEntries); a
// target found nowhere, or held by Flux setter markers in the scope, is an
// error naming it.
func pin(ctx context.Context, e Env, s *envrepo.Snapshot, scope string, targets []manifest.Target, opts ...manifest.PinOption) ([]manifest.Change, error) {
	pinned, err := manifest.Pin(s.FS(), scope, targets, opts...)
	var nr *manifest.NotReferencedError
	if !errors.As(err, &nr) {
		if err != nil {
			return nil, err
		}
		return pinned.Changes, writeFiles(s, pinned.Files)
	}
	if len(nr.Held) > 0 {
		// Flux setter markers in the scope keep these images from being
		// pinned there; an images entry would pin them against the markers.
		return nil, nr
	}
	var inScope, outside []manifest.Target
	for _, t := range targets {
		if slices.Contains(nr.Repos, t.Repo) {
			outside = append(outside, t)
		} else {
			inScope = append(inScope, t)
		}
	}
	var changes []manifest.Change
	if len(inScope) > 0 {
		if pinned, err = manifest.Pin(s.FS(), scope, inScope, opts...); err != nil {
			return nil, err
		}
		if err := writeFiles(s, pinned.Files); err != nil {
			return nil, err
		}
		changes = pinned.Changes
	}
	added, err := manifest.AddImageEntries(ctx, s.FS(), scope, outside, e.validateOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%w; and the kustomization of %s does not build to look for it in its bases: %w", nr, scope, err)
	}
	if added == nil || len(added.Covered) < len(outside) {
		return nil, nr
	}
	logger(e).Info("pinned in the scope's kustomization: the image lives in a base outside it", "file", added.File)
	return append(changes, added.Changes...), s.WriteFile(added.File, added.Data)
}

func writeFiles(s *envrepo.Snapshot, files map[string][]byte) error {
	for _, f := range sortedKeys(files) {
		if err := s.WriteFile(f, files[f]); err != nil {
			return err
		}
	}
	return nil
}

// orderGuard refuses to replace a pinned image with one built earlier:
// pipelines finish out of order, and the older build must not win.
type orderGuard struct {
	r       Resolver
	log     *slog.Logger
	created map[string]time.Time // repo@digest -> build time, across retries
}

// lookup asks the registry, all at once, when each image the check will
// compare was built: the old and the new digest of every change.
func (g *orderGuard) lookup(ctx context.Context, changes []manifest.Change, targets []manifest.Target) {
	type key struct{ repo, digest string }
	var want []key
	seen := map[key]bool{}
	for _, c := range changes {
		old := ref.Split(c.Old).Digest
		for _, t := range targets {
			if t.Repo != c.Repo || old == "" || old == t.Digest || ref.CheckDigest(old) != nil {
				continue
			}
			for _, k := range []key{{t.Repo, t.Digest}, {t.Repo, old}} {
				if _, cached := g.created[k.repo+"@"+k.digest]; !cached && !seen[k] {
					seen[k] = true
					want = append(want, k)
				}
			}
		}
	}
	if len(want) < 2 {
		return // one lookup gains nothing from running beside itself
	}
	times := make([]time.Time, len(want))
	errs := make([]error, len(want))
	var wg sync.WaitGroup
	for i, k := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			times[i], errs[i] = g.r.Created(ctx, k.repo, k.digest)
		}()
	}
	wg.Wait()
	for i, k := range want {
		if errs[i] != nil {
			g.log.Warn("cannot tell when an image was built; not checking build order", "image", k.repo+"@"+k.digest, "error", errs[i])
		}
		g.created[k.repo+"@"+k.digest] = times[i]
	}
}

func (g *orderGuard) when(ctx context.Context, repo, digest string) time.Time {
	key := repo + "@" + digest
	if t, ok := g.created[key]; ok {
		return t
	}
	t, err := g.r.Created(ctx, repo, digest)
	if err != nil {
		// Unknown is not a reason to block a deploy.
		g.log.Warn("cannot tell when an image was built; not checking build order", "image", key, "error", err)
	}
	g.created[key] = t
	return t
}

// check returns why the changes would replace a newer build, or "".
func (g *orderGuard) check(ctx context.Context, changes []manifest.Change, targets []manifest.Target) string {
	g.lookup(ctx, changes, targets)
	var reasons []string
	seen := map[string]bool{}
	for _, c := range changes {
		old := ref.Split(c.Old).Digest
		var t manifest.Target
		for _, tt := range targets {
			if tt.Repo == c.Repo {
				t = tt
			}
		}
		// A placeholder or malformed digest (repo@sha256:1111) names no
		// build to compare with.
		if old == "" || old == t.Digest || seen[c.Repo+old] || ref.CheckDigest(old) != nil {
			continue
		}
		seen[c.Repo+old] = true
		newAt, oldAt := g.when(ctx, t.Repo, t.Digest), g.when(ctx, t.Repo, old)
		if newAt.IsZero() || oldAt.IsZero() || !newAt.Before(oldAt) {
			continue
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s (built %s) is older than %s (built %s), which %s already runs",
			t.Repo, ref.ShortDigest(t.Digest), newAt.UTC().Format(time.RFC3339), ref.ShortDigest(old), oldAt.UTC().Format(time.RFC3339), c.File))
	}
	if len(reasons) == 0 {
		return ""
	}
	return "not deploying an older build over a newer one: " + strings.Join(reasons, "; ")
}
