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
	// Policy, when set, is the Flux ImagePolicy ("NAMESPACE:NAME") whose
	// setter markers ({"$imagepolicy": "NAMESPACE:NAME[:tag|:name|:digest]"})
	// name this image. Fields marked with it are pinned to this target
	// whatever they hold, and fields marked with another policy are left
	// to targets without a Policy; see the package documentation.
	Policy string
}

// Ref returns the reference written for t: Repo:Tag@Digest, or Repo@Digest
// when Tag is empty.
func (t Target) Ref() string { return ref.Ref{Repo: t.Repo, Tag: t.Tag, Digest: t.Digest}.String() }

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// policyRE is a Flux ImagePolicy's NAMESPACE:NAME: a DNS label and a DNS
// subdomain, as Kubernetes names them.
var policyRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

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
		if t.Policy != "" {
			if !policyRE.MatchString(t.Policy) {
				return nil, fmt.Errorf("target %q: policy %q is not NAMESPACE:NAME", t.Repo, t.Policy)
			}
			if i := slices.IndexFunc(out, func(o target) bool { return o.Policy == t.Policy && o.canonical != canonical }); i >= 0 {
				return nil, fmt.Errorf("targets %q and %q name the same policy %s", out[i].Repo, t.Repo, t.Policy)
			}
		}
		c := target{Target: t, canonical: canonical}
		if i := slices.IndexFunc(out, func(o target) bool { return o.canonical == c.canonical }); i >= 0 {
			if out[i].Target == t {
				continue
			}
			return nil, fmt.Errorf("targets %q and %q name the same repository with different tags, digests or policies", out[i].Ref(), t.Ref())
		}
		out = append(out, c)
	}
	return out, nil
}

// Tags and digests as kustomize's images transformer accepts them after an
// image's name (image.IsImageMatched in sigs.k8s.io/kustomize/api): a tag
// may hold placeholders such as {GENERATED_TAG}, and a digest need not be a
// well-formed one.
var (
	looseTag    = regexp.MustCompile(`^[a-zA-Z0-9_.{}-]*$`)
	looseDigest = regexp.MustCompile(`^[a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:[a-zA-Z0-9_.{}-]*$`)
)

// matchImage returns the target whose repository image refers to, or nil.
// It matches by repository the way kustomize's images transformer does, so
// a reference whose tag or digest is a placeholder or malformed
// (repo:{GENERATED_TAG}, repo@sha256:1111) matches and is pinned; one whose
// repository is not a repository name (gcr.io/PROJECT_ID/app), or whose
// tag is someone else's substitution (repo:${TAG}), matches nothing.
func matchImage(targets []target, image string) *target {
	s := strings.TrimSpace(image)
	r := ref.Split(s)
	if !looseTag.MatchString(r.Tag) || strings.Contains(s, "@") && !looseDigest.MatchString(r.Digest) {
		return nil
	}
	return matchRepo(targets, r.Repo)
}

// policyTarget returns the target given for a Flux image policy, or nil.
func policyTarget(targets []target, policy string) *target {
	for i := range targets {
		if targets[i].Policy != "" && targets[i].Policy == policy {
			return &targets[i]
		}
	}
	return nil
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
