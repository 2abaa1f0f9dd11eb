package manifest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/google/go-containerregistry/pkg/name"
)

// Target is an image to pin: every reference to Repo is rewritten to
// Repo:Tag@Digest (Repo@Digest when Tag is empty).
type Target struct {
	Repo   string // repository, e.g. "127.0.0.1:5000/team/hello" or "us-docker.pkg.dev/acme/apps/hello"
	Tag    string // may be empty
	Digest string // "sha256:<64 hex>"
}

// Ref returns the reference written for t: Repo:Tag@Digest, or Repo@Digest
// when Tag is empty.
func (t Target) Ref() string { return ref.Ref{Repo: t.Repo, Tag: t.Tag, Digest: t.Digest}.String() }

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// refChars are the only bytes a written value may contain, which makes every
// value safe to put between double or single quotes without escaping.
var refChars = regexp.MustCompile(`^[A-Za-z0-9._:/@-]+$`)

// target is a validated Target with the canonical repository name that
// references are compared by, so "nginx" matches "index.docker.io/library/nginx".
type target struct {
	Target
	canonical string
}

func compileTargets(targets []Target) ([]target, error) {
	out := make([]target, 0, len(targets))
	for _, t := range targets {
		canonical, ok := ref.Canonical(t.Repo)
		if !ok || strings.TrimSpace(t.Repo) != t.Repo {
			return nil, fmt.Errorf("target repository %q is not a repository name", t.Repo)
		}
		if t.Tag != "" {
			if _, err := name.NewTag(t.Repo+":"+t.Tag, name.WeakValidation); err != nil {
				return nil, fmt.Errorf("target %q tag %q: %w", t.Repo, t.Tag, err)
			}
		}
		if !digestRE.MatchString(t.Digest) {
			return nil, fmt.Errorf("target %q: digest %q is not sha256:<64 lowercase hex>", t.Repo, t.Digest)
		}
		if !refChars.MatchString(t.Ref()) {
			return nil, fmt.Errorf("target %q: unexpected characters in %q", t.Repo, t.Ref())
		}
		c := target{Target: t, canonical: canonical}
		if i := slices.IndexFunc(out, func(o target) bool { return o.canonical == c.canonical }); i >= 0 {
			if out[i].Target == t {
				continue
			}
			return nil, fmt.Errorf("targets %q and %q name the same repository with different tags or digests", out[i].Ref(), t.Ref())
		}
		out = append(out, c)
	}
	return out, nil
}

// matchImage returns the target whose repository image refers to, or nil.
// References that do not parse (templating placeholders, say) match nothing.
func matchImage(targets []target, image string) *target {
	ref, err := name.ParseReference(strings.TrimSpace(image), name.WeakValidation)
	if err != nil {
		return nil
	}
	return matchCanonical(targets, ref.Context().Name())
}

// matchRepo is matchImage for a bare repository (kustomization name/newName).
func matchRepo(targets []target, repo string) *target {
	canonical, ok := ref.Canonical(repo)
	if !ok {
		return nil
	}
	return matchCanonical(targets, canonical)
}

func matchCanonical(targets []target, canonical string) *target {
	for i := range targets {
		if targets[i].canonical == canonical {
			return &targets[i]
		}
	}
	return nil
}
