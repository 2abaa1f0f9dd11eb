// Package ferry is the orchestration layer over the leaf packages: image
// resolves references, manifest rewrites and validates YAML, envrepo reads
// and writes a branch, audit formats the commit message. Deploy, Promote
// and Rollback each build a plan (what to change, why, with what
// provenance) and hand it to one write step (write.go) that checks the
// rollback hold, runs the writer with its validation, commits, pushes and
// reports; History and Diff only read. FanOut runs one such write against
// many env repos at once (fanout.go). Requests validate themselves and
// report a *FieldError naming the request's fields, which the CLI words as
// flags. The CLI and the demo call into it; it never prints.
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
	"github.com/ferrycd/ferry/pkg/forge"
	"github.com/ferrycd/ferry/pkg/image"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/ferrycd/ferry/pkg/sign"
	"github.com/go-git/go-git/v5/plumbing"
)

// searchDepth is how many commits a history question fetches first; Search
// deepens fourfold from there when the answer lies further back.
const searchDepth = 20

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
	Remote envrepo.Remote
	Author envrepo.Author
	// Signer, if set, signs every commit ferry makes (git's SSH or
	// OpenPGP signatures: see pkg/sign); nil commits unsigned.
	Signer envrepo.Signer
	// Verifier holds the keys commit signatures are checked against, for
	// History with Verify and Promote with RequireSigned.
	Verifier sign.Verifier
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
	// ValuesFiles are more Helm values files to read and pin images in,
	// besides the values*.yaml of the charts in the repo: glob patterns
	// on base names, or on paths from the root when they hold a "/".
	ValuesFiles []string
	// RemoteFor returns how to reach an env repo other than Remote, by the
	// URL a config names (an environment in a repo of its own, fan-out);
	// nil reaches it with Remote's credentials.
	RemoteFor func(url string) envrepo.Remote
	// PullRequest, when set, makes deploy, promote and rollback write
	// through a pull request (pullrequest.go) instead of pushing to the
	// environment's branch.
	PullRequest *PullRequestOptions
	// Commits, when set, makes the commits through GitHub's API instead of
	// a git push (--verified-commits): GitHub signs a commit an App makes
	// without author or committer, and shows it verified. The branch
	// moves by a fast-forward-only ref update (see publish).
	Commits forge.GitHubCommits
}

// remoteFor is the Remote of url: Remote itself when url is empty or
// Remote's own.
func (e Env) remoteFor(url string) envrepo.Remote {
	switch {
	case url == "" || url == e.Remote.URL:
		return e.Remote
	case e.RemoteFor != nil:
		return e.RemoteFor(url)
	}
	r := e.Remote
	r.URL = url
	return r
}

// readOptions are how every read and write of images sees the repo.
func (e Env) readOptions(more ...manifest.PinOption) []manifest.PinOption {
	var opts []manifest.PinOption
	if len(e.ValuesFiles) > 0 {
		opts = append(opts, manifest.WithValuesFiles(e.ValuesFiles...))
	}
	return append(opts, more...)
}

// Provenance is where a deploy came from, recorded in the trailers.
type Provenance = audit.Source

// Image is one image a report mentions.
type Image struct {
	Name   string `json:"name"` // repository
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest"` // sha256:...
	Ref    string `json:"ref"`    // repo:tag@sha256:..., as written
}

// Report is the outcome of a write; the CLI prints it as text or JSON.
type Report struct {
	Action  string `json:"action"`
	Changed bool   `json:"changed"`
	Commit  string `json:"commit"`
	Parent  string `json:"parent,omitempty"`
	Branch  string `json:"branch"`
	// Env is the environment's name where a ferry.yaml names it apart
	// from its branch.
	Env      string   `json:"env,omitempty"`
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
	// Carry is what a promote carried: tree or images.
	Carry string `json:"carry,omitempty"`
	// PullRequest is the pull request the write went through, when it
	// went through one; Commit is then on its head branch.
	PullRequest *PullRequest `json:"pullRequest,omitempty"`
	// ClosedPullRequests are the open requests to deploy or promote into
	// the scope that a rollback by pull request closed: merged after it,
	// they would undo it.
	ClosedPullRequests []PullRequest `json:"closedPullRequests,omitempty"`
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
	w := &envrepo.Writer{
		Remote:   e.Remote,
		Branch:   branch,
		Author:   e.Author,
		Signer:   e.Signer,
		Attempts: e.Attempts,
		Backoff:  e.Backoff,
		DryRun:   dryRun,
		Logger:   logger(e),
	}
	if e.Commits != nil {
		w.Publish = publish(e.Commits, branch)
	}
	return w
}

// publish makes a write's commit through GitHub's API and moves branch to
// it. The commit's one parent is the tip the edit was made on, and the
// ref update is fast-forward only: it lands only if the branch is still at
// that tip, or at one of its ancestors (rewound by a force-push since).
// So no update is lost, as with the compare-and-swap of a push; what the
// API cannot do is refuse the one case a push refuses and this does not,
// a branch rewound behind the tip read, which the commit then brings
// forward again. A refusal starts the write again on the new tip.
func publish(gc forge.GitHubCommits, branch string) func(context.Context, plumbing.Hash, map[string][]byte, string) (plumbing.Hash, error) {
	return func(ctx context.Context, base plumbing.Hash, files map[string][]byte, msg string) (plumbing.Hash, error) {
		sha, err := gc.CreateCommit(ctx, base.String(), files, msg)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("creating the commit through the API: %w", err)
		}
		err = gc.UpdateRef(ctx, branch, sha)
		if errors.Is(err, forge.ErrNotFastForward) {
			return plumbing.ZeroHash, fmt.Errorf("%w: %v", envrepo.ErrBranchMoved, err)
		}
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("moving %s through the API: %w", branch, err)
		}
		return plumbing.NewHash(sha), nil
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

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func imageOf(r manifest.Ref) Image {
	return Image{Name: r.Repo, Tag: r.Tag, Digest: r.Digest, Ref: ref.Ref{Repo: r.Repo, Tag: r.Tag, Digest: r.Digest}.String()}
}

// or returns a, or b when a is empty.
func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
