package manifest

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
)

// DefaultRemoteTimeout bounds the fetching of remote resources in one Build
// or Validate when WithRemoteResources allows them and names no limit.
const DefaultRemoteTimeout = 30 * time.Second

var (
	// ErrRemoteResource matches the error of a build that was refused
	// because a kustomization names a remote resource.
	ErrRemoteResource = errors.New("remote resources are not fetched")
	// ErrRemoteTimeout matches the error of a build whose remote resources
	// were still being fetched when WithRemoteResources' limit ran out.
	ErrRemoteTimeout = errors.New("remote resources took too long")
)

// Option configures Build and Validate.
type Option func(*buildConfig)

type buildConfig struct {
	allowRemote   bool
	remoteTimeout time.Duration
}

// WithRemoteResources lets kustomize fetch the remote resources a
// kustomization names (see Build), which are refused by default. From the
// moment the build first meets one, the build (or the whole validation) must
// end within timeout, or it fails with an error that matches
// ErrRemoteTimeout and lists the remote resources met. A timeout of zero or
// less means DefaultRemoteTimeout.
func WithRemoteResources(timeout time.Duration) Option {
	return func(c *buildConfig) {
		c.allowRemote = true
		c.remoteTimeout = timeout
		if timeout <= 0 {
			c.remoteTimeout = DefaultRemoteTimeout
		}
	}
}

func newBuildConfig(opts []Option) buildConfig {
	var c buildConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// remoteRef is one remote reference in a kustomization file.
type remoteRef struct {
	file  string // fs path of the kustomization file
	field string // e.g. resources, components, patches[].path
	url   string
}

// remoteGuard looks at every kustomization file a build reads, before
// kustomize sees it, for references that would make kustomize reach outside
// the tree. It refuses them, unless allowed; either way it records them.
type remoteGuard struct {
	allow bool
	met   chan struct{} // closed when the first remote reference is met

	mu      sync.Mutex
	refs    []remoteRef // every remote reference met, in order, once each
	refused error       // the first refusal since the last reset
}

func newRemoteGuard(allow bool) *remoteGuard {
	return &remoteGuard{allow: allow, met: make(chan struct{})}
}

// isKustomizationFile reports whether the fs path p names a kustomization
// file (kustomization.yaml, kustomization.yml or Kustomization).
func isKustomizationFile(p string) bool {
	return slices.Contains(konfig.RecognizedKustomizationFileNames(), path.Base(p))
}

// check looks at the kustomization file p (an fs path) with content b. It
// returns an error matching ErrRemoteResource if the file names a remote
// resource and they are not allowed.
func (g *remoteGuard) check(p string, b []byte) error {
	var k types.Kustomization
	if err := k.Unmarshal(b); err != nil {
		return nil // kustomize parses it the same way, fails, and fetches nothing
	}
	refs := kustomizationRemoteRefs(p, &k)
	if len(refs) == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.refs) == 0 {
		close(g.met)
	}
	for _, r := range refs {
		if !slices.Contains(g.refs, r) {
			g.refs = append(g.refs, r)
		}
	}
	if g.allow {
		return nil
	}
	err := &remoteRefusedError{file: p, refs: refs}
	if g.refused == nil {
		g.refused = err
	}
	return err
}

// reset forgets the refusal of the previous build.
func (g *remoteGuard) reset() {
	g.mu.Lock()
	g.refused = nil
	g.mu.Unlock()
}

// takeRefused returns the refusal since the last reset, if any.
func (g *remoteGuard) takeRefused() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.refused
	g.refused = nil
	return err
}

// seen lists the remote references met so far: "URL (in FILE), ...".
func (g *remoteGuard) seen() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return formatRefs(g.refs, true)
}

func formatRefs(refs []remoteRef, withFile bool) string {
	parts := make([]string, len(refs))
	for i, r := range refs {
		where := r.field
		if withFile {
			where = "in " + r.file
		}
		parts[i] = r.url + " (" + where + ")"
	}
	return strings.Join(parts, ", ")
}

// remoteRefusedError is a kustomization file that names remote resources.
type remoteRefusedError struct {
	file string
	refs []remoteRef
}

func (e *remoteRefusedError) Error() string {
	what := "a remote resource,"
	if len(e.refs) > 1 {
		what = "remote resources:"
	}
	return fmt.Sprintf("%s names %s %s; %v", e.file, what, formatRefs(e.refs, false), ErrRemoteResource)
}

func (e *remoteRefusedError) Is(target error) bool { return target == ErrRemoteResource }

// remoteTimeoutError is a build still fetching remote resources when its
// limit ran out.
type remoteTimeoutError struct {
	limit time.Duration
	refs  string
}

func (e *remoteTimeoutError) Error() string {
	return fmt.Sprintf("remote resources still being fetched after %s: %s", e.limit, e.refs)
}

func (e *remoteTimeoutError) Is(target error) bool { return target == ErrRemoteTimeout }

// kustomizationRemoteRefs lists the remote references of the kustomization
// file p: every field whose entries kustomize loads as files or
// directories, where a URL makes it fetch over HTTP or clone with git.
// Fields are named as in the file (bases, not the resources kustomize
// merges them into).
func kustomizationRemoteRefs(p string, k *types.Kustomization) []remoteRef {
	var refs []remoteRef
	add := func(field string, vals ...string) {
		for _, v := range vals {
			if isRemote(v) {
				refs = append(refs, remoteRef{file: p, field: field, url: strings.TrimSpace(v)})
			}
		}
	}
	add("resources", k.Resources...)
	// The deprecated fields are still loaded by kustomize, so they are
	// checked like the others.
	add("bases", k.Bases...) //lint:ignore SA1019 kustomize still loads bases
	add("components", k.Components...)
	add("crds", k.Crds...)
	add("configurations", k.Configurations...)
	add("generators", k.Generators...)
	add("transformers", k.Transformers...)
	add("validators", k.Validators...)
	//lint:ignore SA1019 kustomize still loads them
	for _, s := range k.PatchesStrategicMerge {
		add("patchesStrategicMerge", string(s))
	}
	for _, pt := range k.Patches {
		add("patches[].path", pt.Path)
	}
	//lint:ignore SA1019 kustomize still loads them
	for _, pt := range k.PatchesJson6902 {
		add("patchesJson6902[].path", pt.Path)
	}
	for _, r := range k.Replacements {
		add("replacements[].path", r.Path)
	}
	add("openapi.path", k.OpenAPI["path"])
	kv := func(field string, s types.KvPairSources) {
		for _, f := range s.FileSources {
			if _, file, ok := strings.Cut(f, "="); ok {
				f = file // key=path
			}
			add(field+"[].files", f)
		}
		add(field+"[].envs", s.EnvSources...)
		add(field+"[].env", s.EnvSource)
	}
	for _, g := range k.ConfigMapGenerator {
		kv("configMapGenerator", g.KvPairSources)
	}
	for _, g := range k.SecretGenerator {
		kv("secretGenerator", g.KvPairSources)
	}
	return refs
}

var (
	// A URL scheme: http://, https://, ssh://, file://, s3://...
	remoteScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	// git's scp-like form, user@host:path, and kustomize's user@host/path.
	remoteSCP = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*@[^/:]+[:/].`)
)

// isRemote reports whether kustomize would look for ref outside the tree:
// a URL with a scheme (it fetches http and https files, and clones git
// URLs), go-getter's git:: prefix, git's scp-like user@host:path (and
// user@host/path, which kustomize reads the same way), and github.com/...
// or github.com:..., which kustomize clones from GitHub.
func isRemote(ref string) bool {
	s := strings.TrimSpace(ref)
	lower := strings.ToLower(s)
	return remoteScheme.MatchString(s) ||
		strings.HasPrefix(lower, "git::") ||
		remoteSCP.MatchString(s) ||
		strings.HasPrefix(lower, "github.com/") || strings.HasPrefix(lower, "github.com:")
}

// bounded runs f in a goroutine and waits for it, for ctx to be done, or,
// once g has met a remote reference and remote resources are allowed, for
// c.remoteTimeout; its own errors start with what. kustomize fetches remote resources with no timeout and no
// context, so a build that waits on one cannot be stopped: it is left
// behind, and ends when its connection does or with the process.
func bounded[T any](ctx context.Context, c buildConfig, g *remoteGuard, what string, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	var zero T
	var met <-chan struct{}
	if c.allowRemote {
		met = g.met
	}
	var expired <-chan time.Time
	for {
		select {
		case r := <-done:
			return r.v, r.err
		case <-ctx.Done():
			if refs := g.seen(); refs != "" {
				return zero, fmt.Errorf("%s: stopped while fetching remote resources %s: %w", what, refs, ctx.Err())
			}
			return zero, fmt.Errorf("%s: %w", what, ctx.Err())
		case <-met:
			met = nil
			t := time.NewTimer(c.remoteTimeout)
			defer t.Stop()
			expired = t.C
		case <-expired:
			return zero, fmt.Errorf("%s: %w", what, &remoteTimeoutError{limit: c.remoteTimeout, refs: g.seen()})
		}
	}
}
