// Package ferry is the orchestration layer: deploy (and, later, promote,
// rollback and history) as plain functions over the leaf packages: image
// resolves references, manifest rewrites and validates YAML, envrepo reads
// and writes a branch, audit formats the commit message. The CLI and the
// demo call into it; it never prints.
package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/image"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrUsage marks an error in what the caller asked for, as opposed to what
// happened while doing it; the CLI maps it to exit status 2.
var ErrUsage = errors.New("usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// Resolver turns image references into digests and says when an image was
// built. *image.Resolver is one.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (image.Resolved, error)
	// Created returns the build time of repo@digest; zero means unknown.
	Created(ctx context.Context, repo, digest string) (time.Time, error)
}

// Env is what every operation needs: where the env repo is, who commits,
// how to reach the registry, and how hard to retry.
type Env struct {
	Remote   envrepo.Remote
	Author   object.Signature
	Resolver Resolver
	Logger   *slog.Logger
	// Attempts and Backoff tune envrepo.Writer; zero values take its defaults.
	Attempts int
	Backoff  time.Duration
	// AllowRemoteResources lets validation fetch the remote resources a
	// kustomization names, which it refuses by default (see manifest.Build);
	// RemoteTimeout then bounds that fetching in each validation (zero:
	// manifest.DefaultRemoteTimeout).
	AllowRemoteResources bool
	RemoteTimeout        time.Duration
}

// Provenance is where a deploy came from, recorded in the trailers.
type Provenance = audit.Source

// DeployRequest is one `ferry deploy`.
type DeployRequest struct {
	Env    string   // branch to write
	Images []string // repo:tag, repo@sha256:..., or both
	Path   string   // scope inside the repo; "." for all of it
	App    string   // name in the audit trail; derived when empty
	Provenance
	// OverrideRollback deploys even though Path on Env was rolled back.
	OverrideRollback bool
	// AllowDowngrade deploys an image even when it was built before the one
	// it replaces (pipelines finishing out of order are refused otherwise).
	AllowDowngrade bool
	DryRun         bool
}

// Image is one image a report mentions.
type Image struct {
	Name   string `json:"name"` // repository
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest"` // sha256:...
	Ref    string `json:"ref"`    // repo:tag@sha256:..., as written
}

// Report is the outcome of a write; the CLI prints it as text or JSON.
type Report struct {
	Action   string   `json:"action"`
	Changed  bool     `json:"changed"`
	Commit   string   `json:"commit"`
	Parent   string   `json:"parent,omitempty"`
	Branch   string   `json:"branch"`
	App      string   `json:"app,omitempty"`
	Path     string   `json:"path"`
	Attempts int      `json:"attempts"`
	Images   []Image  `json:"images"`
	Files    []string `json:"files"`
	DryRun   bool     `json:"dryRun,omitempty"`
	Diff     string   `json:"diff,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// Skipped: a deploy refused to replace a newer build with an older one.
	Skipped bool `json:"skipped,omitempty"`
	// From is E1@sha for a promote; RollbackTo the restored commit.
	From       string `json:"from,omitempty"`
	RollbackTo string `json:"rollbackTo,omitempty"`
}

// Deploy resolves each image to its digest, pins every reference to it under
// the scope on the env branch, validates the result, and commits and pushes
// it. When nothing changes it returns a report with Changed false and
// pushes nothing.
func Deploy(ctx context.Context, e Env, req DeployRequest) (*Report, error) {
	if err := checkDeploy(req); err != nil {
		return nil, err
	}
	log := logger(e)
	if e.Resolver == nil {
		return nil, errors.New("deploy: no image resolver configured")
	}
	targets := make([]manifest.Target, 0, len(req.Images))
	images := make([]Image, 0, len(req.Images))
	seen := map[string]string{}
	for _, ref := range req.Images {
		res, err := e.Resolver.Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[res.Repo]; ok {
			return nil, usagef("--image %s and --image %s name the same repository; give each image once", prev, ref)
		}
		seen[res.Repo] = ref
		log.Info("resolved", "image", ref, "digest", res.Digest)
		targets = append(targets, manifest.Target{Repo: res.Repo, Tag: res.Tag, Digest: res.Digest})
		images = append(images, Image{Name: res.Repo, Tag: res.Tag, Digest: res.Digest, Ref: res.String()})
	}
	app := req.App
	if app == "" {
		app = deriveApp(req.Path, images[0].Name)
	}
	rec := audit.Record{
		Action: audit.ActionDeploy,
		Env:    req.Env,
		App:    app,
		Path:   req.Path,
	}
	if !req.Provenance.IsZero() {
		rec.Sources = []audit.Source{req.Provenance}
	}
	for _, img := range images {
		rec.Images = append(rec.Images, img.Ref)
	}

	if err := checkHold(ctx, e, req.Env, req.Path, req.OverrideRollback, "deploy"); err != nil {
		return nil, err
	}
	w := writer(e, req.Env, req.DryRun)
	w.Verify = e.verify
	guard := &orderGuard{r: e.Resolver, log: log, created: map[string]time.Time{}}
	res, err := w.Update(ctx, func(ctx context.Context, s *envrepo.Snapshot) (string, error) {
		if err := s.CheckScope(req.Path); err != nil {
			return "", usagef("%v", err)
		}
		// One request for every blob the rewriter will read (after a
		// partial fetch; a no-op otherwise).
		if err := s.Prefetch(req.Path); err != nil {
			return "", err
		}
		pinned, err := manifest.Pin(s.FS(), req.Path, targets)
		if err != nil {
			return "", fmt.Errorf("pinning images on %s: %w", req.Env, err)
		}
		if !req.AllowDowngrade {
			if reason := guard.check(ctx, pinned.Changes, targets); reason != "" {
				return "", &skipped{reason}
			}
		}
		for _, f := range sortedKeys(pinned.Files) {
			if err := s.WriteFile(f, pinned.Files[f]); err != nil {
				return "", err
			}
		}
		return rec.Format(""), nil
	})
	var skip *skipped
	if errors.As(err, &skip) {
		log.Warn("not deploying an older build", "reason", skip.reason)
		return &Report{Action: audit.ActionDeploy, Branch: req.Env, App: app, Path: req.Path, Attempts: 1,
			Images: images, Files: []string{}, DryRun: req.DryRun, Reason: skip.reason, Skipped: true}, nil
	}
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Action:   audit.ActionDeploy,
		Changed:  res.Changed,
		Branch:   req.Env,
		App:      app,
		Path:     req.Path,
		Attempts: res.Attempts,
		Images:   images,
		Files:    nonNil(res.Files),
		DryRun:   req.DryRun,
		Diff:     res.Diff,
		Parent:   res.Parent.String(),
	}
	if !res.Commit.IsZero() {
		rep.Commit = res.Commit.String()
	}
	if !res.Changed {
		rep.Reason = "already pinned: every reference in scope has these digests"
	}
	return rep, nil
}

func checkDeploy(req DeployRequest) error {
	if strings.TrimSpace(req.Env) == "" {
		return usagef("--env is required (the branch to deploy to, e.g. candidate)")
	}
	if len(req.Images) == 0 {
		return usagef("--image is required (e.g. --image us-docker.pkg.dev/acme/apps/hello:abc1234)")
	}
	for _, ref := range req.Images {
		if strings.TrimSpace(ref) == "" {
			return usagef("--image is empty")
		}
		if _, err := image.Parse(ref); err != nil {
			return usagef("--image: %v", err)
		}
	}
	if err := checkBranch("--env", req.Env); err != nil {
		return err
	}
	if err := envrepo.CleanScope(req.Path); err != nil {
		return usagef("--path: %v", err)
	}
	return nil
}

// deriveApp names the app after its directory, or after the image when the
// scope is the whole repo.
func deriveApp(scope, repo string) string {
	if scope != "." && scope != "" {
		return path.Base(scope)
	}
	return repo[strings.LastIndex(repo, "/")+1:]
}

func writer(e Env, branch string, dryRun bool) *envrepo.Writer {
	return &envrepo.Writer{
		Remote:   e.Remote,
		Branch:   branch,
		Author:   e.Author,
		Attempts: e.Attempts,
		Backoff:  e.Backoff,
		DryRun:   dryRun,
		Logger:   logger(e),
	}
}

func logger(e Env) *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// skipped ends a deploy without a change, for a reason worth reporting.
type skipped struct{ reason string }

func (s *skipped) Error() string { return s.reason }

// orderGuard refuses to replace a pinned image with one built earlier:
// pipelines finish out of order, and the older build must not win.
type orderGuard struct {
	r       Resolver
	log     *slog.Logger
	created map[string]time.Time // repo@digest -> build time, across retries
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
	var reasons []string
	seen := map[string]bool{}
	for _, c := range changes {
		old := digestOf(c.Old)
		var t manifest.Target
		for _, tt := range targets {
			if tt.Repo == c.Repo {
				t = tt
			}
		}
		if old == "" || old == t.Digest || seen[c.Repo+old] {
			continue
		}
		seen[c.Repo+old] = true
		newAt, oldAt := g.when(ctx, t.Repo, t.Digest), g.when(ctx, t.Repo, old)
		if newAt.IsZero() || oldAt.IsZero() || !newAt.Before(oldAt) {
			continue
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s (built %s) is older than %s (built %s), which %s already runs",
			t.Repo, shortDigest(t.Digest), newAt.UTC().Format(time.RFC3339), shortDigest(old), oldAt.UTC().Format(time.RFC3339), c.File))
	}
	if len(reasons) == 0 {
		return ""
	}
	return "not deploying an older build over a newer one: " + strings.Join(reasons, "; ") + "; pass --allow-downgrade to deploy it anyway"
}

func digestOf(ref string) string {
	if i := strings.Index(ref, "@sha256:"); i >= 0 {
		return ref[i+1:]
	}
	return ""
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
