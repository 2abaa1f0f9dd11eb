package image

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/google"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// maxBackoff caps the wait between two attempts.
const maxBackoff = 30 * time.Second

// Resolver resolves image references against registries. It is safe for
// concurrent use.
type Resolver struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	attempts  int
	base      time.Duration
	log       *slog.Logger
	insecure  bool

	mu      sync.Mutex
	pullers map[string]*puller // by registry: one ping and token exchange a run
}

type puller struct {
	p    *remote.Puller
	auth authn.Authenticator
}

// Option configures a Resolver.
type Option func(*Resolver)

// WithKeychain sets where credentials come from.
//
// The default is authn.NewMultiKeychain(authn.DefaultKeychain,
// google.Keychain): the docker config.json (DOCKER_CONFIG) and its credential
// helpers, then Google application default credentials for gcr.io and
// *.pkg.dev.
func WithKeychain(k authn.Keychain) Option {
	return func(r *Resolver) { r.keychain = k }
}

// WithTransport sets the HTTP transport. ggcr adds authentication on top;
// its own retries are switched off, since the Resolver retries.
//
// The default is remote.DefaultTransport.
func WithTransport(t http.RoundTripper) Option {
	return func(r *Resolver) { r.transport = t }
}

// WithRetry sets how often a request is tried in all and the base of the
// backoff between tries. Before try n+1 the Resolver waits a random time
// between 0 and base·2^(n-1), at most 30s (exponential backoff with full
// jitter). Only temporary failures are retried: 5xx, 429 and network
// errors; never 401, 403 or 404. attempts below 1 count as 1.
//
// The default is 4 attempts with a 200ms base.
func WithRetry(attempts int, base time.Duration) Option {
	return func(r *Resolver) {
		r.attempts = max(attempts, 1)
		r.base = max(base, 0)
	}
}

// WithLogger sets where retries and resolutions are logged.
//
// The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(r *Resolver) { r.log = l }
}

// WithInsecure allows plain http for every registry. ggcr already uses plain
// http for localhost, 127.0.0.1 and private (RFC 1918) addresses; this adds
// all other names (name.Insecure). It still tries https first.
//
// The default is false.
func WithInsecure(insecure bool) Option {
	return func(r *Resolver) { r.insecure = insecure }
}

// NewResolver returns a Resolver configured by opts.
func NewResolver(opts ...Option) *Resolver {
	r := &Resolver{
		keychain:  authn.NewMultiKeychain(authn.DefaultKeychain, google.Keychain),
		transport: remote.DefaultTransport,
		attempts:  4,
		base:      200 * time.Millisecond,
		log:       slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(r)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.transport == nil {
		r.transport = remote.DefaultTransport
	}
	return r
}

// Resolve pins ref to a digest.
//
// A tag is resolved with one manifest HEAD request; when the registry's
// answer lacks Docker-Content-Digest, a GET follows and the digest is that
// of the manifest it returns. For a multi-platform image the digest is the
// index's. A reference that already has a digest is checked to exist (HEAD
// on the digest) and keeps its tag, which is not looked up.
//
// Errors match ErrInvalidReference, ErrNotFound (a *NotFoundError),
// ErrUnauthorized or ErrUnavailable, or wrap ctx.Err().
func (r *Resolver) Resolve(ctx context.Context, in string) (Resolved, error) {
	p, err := ref.Parse(in)
	if err != nil {
		return Resolved{}, err
	}
	repo, err := r.repository(p.Repo)
	if err != nil {
		return Resolved{}, fmt.Errorf("resolving %s: %w", in, err)
	}
	var target name.Reference = repo.Tag(p.Tag)
	if p.Digest != "" {
		target = repo.Digest(p.Digest)
	}
	desc, err := r.describe(ctx, "resolving "+in, target)
	if err != nil {
		return Resolved{}, err
	}
	if p.Tag != "" && p.Digest != "" {
		// repo:tag@digest: the audit trail will say tag, so the tag must
		// name that digest; a moved tag is a mistake worth stopping for.
		byTag, err := r.describe(ctx, "resolving "+in, repo.Tag(p.Tag))
		if err != nil {
			return Resolved{}, err
		}
		if byTag.Digest.String() != desc.Digest.String() {
			return Resolved{}, fmt.Errorf("resolving %s: %w: tag %s is %s in %s, not %s; give the tag or the digest alone, or the matching pair",
				in, ErrInvalidReference, p.Tag, byTag.Digest, p.Repo, p.Digest)
		}
	}
	res := Resolved{Repo: p.Repo, Tag: p.Tag, Digest: desc.Digest.String(), MediaType: string(desc.MediaType)}
	r.log.DebugContext(ctx, "resolved image", "in", in, "digest", res.Digest, "mediaType", res.MediaType)
	return res, nil
}

// Exists reports whether repo@digest exists: nil if it does, otherwise an
// error as Resolve returns them (ErrNotFound when the registry does not
// have it).
func (r *Resolver) Exists(ctx context.Context, repo, digest string) error {
	op := "checking " + repo + "@" + digest
	n, err := ref.ParseRepo(repo)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := ref.CheckDigest(digest); err != nil {
		return fmt.Errorf("%s: %w: %v", op, ErrInvalidReference, err)
	}
	rp, err := r.repository(n)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = r.describe(ctx, op, rp.Digest(digest))
	return err
}

// repository turns a normalised repository name into a name.Repository,
// insecure if so configured.
func (r *Resolver) repository(repo string) (name.Repository, error) {
	var opts []name.Option
	if r.insecure {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(repo, opts...)
}

// puller returns the registry's Puller, made once per Resolver: the HEAD,
// the GET fallback, every retry and the build-time lookups of a run share
// one ping and token exchange (ggcr does not cache a failed one).
func (r *Resolver) puller(ctx context.Context, ref name.Reference) (*puller, error) {
	reg := ref.Context().RegistryStr()
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pullers[reg]; ok {
		return p, nil
	}
	auth, err := authn.Resolve(ctx, r.keychain, ref.Context())
	if err != nil {
		return nil, fmt.Errorf("finding credentials for %s: %w", reg, err)
	}
	p, err := remote.NewPuller(
		remote.WithAuth(auth),
		remote.WithTransport(r.transport),
		// The Resolver retries; ggcr must not retry underneath it.
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
	)
	if err != nil {
		return nil, err
	}
	if r.pullers == nil {
		r.pullers = map[string]*puller{}
	}
	r.pullers[reg] = &puller{p: p, auth: auth}
	return r.pullers[reg], nil
}

// describe fetches the descriptor of ref, retrying temporary failures, and
// turns failures into this package's errors. op says what was being done,
// e.g. "resolving 127.0.0.1:5000/team/hello:v1".
func (r *Resolver) describe(ctx context.Context, op string, ref name.Reference) (*v1.Descriptor, error) {
	reg := ref.Context().RegistryStr()
	pl, err := r.puller(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	puller, auth := pl.p, pl.auth

	for attempt := 1; ; attempt++ {
		desc, err := r.fetch(ctx, puller, ref)
		if err == nil {
			return desc, nil
		}
		stripAuthorization(err)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		switch classify(err) {
		case notFound:
			nf := &NotFoundError{Repo: ref.Context().Name()}
			if d, ok := ref.(name.Digest); ok {
				nf.Digest = d.DigestStr()
			} else {
				nf.Tag = ref.Identifier()
			}
			return nil, nf
		case unauthorized:
			return nil, unauthorizedError(op, reg, statusOf(err), auth == authn.Anonymous)
		case temporary:
			if attempt >= r.attempts {
				return nil, &outcomeError{
					msg: fmt.Sprintf("%s: registry %s unavailable after %d attempts: %s",
						op, reg, attempt, newRedactor(ctx, auth).redact(err.Error())),
					errs: []error{ErrUnavailable, err},
				}
			}
			delay := backoff.Delay(r.base, maxBackoff, attempt)
			r.log.WarnContext(ctx, "registry request failed, retrying",
				"op", op, "attempt", attempt, "of", r.attempts, "delay", delay,
				"error", newRedactor(ctx, auth).redact(err.Error()))
			if serr := backoff.Sleep(ctx, delay); serr != nil {
				return nil, fmt.Errorf("%s: %w (waiting to retry after %d failed attempts; last error: %s)",
					op, serr, attempt, newRedactor(ctx, auth).redact(err.Error()))
			}
		default:
			msg := newRedactor(ctx, auth).redact(err.Error()) + plainHTTPHint(err)
			return nil, fmt.Errorf("%s: %w", op, &outcomeError{msg: msg, errs: []error{err}})
		}
	}
}

// fetch does one attempt: HEAD, and GET when the HEAD answer was
// unusable. ggcr's remote.Head fails with a plain error (no
// *transport.Error) when a 200 answer lacks Docker-Content-Digest,
// Content-Type or Content-Length; such an error leads to the GET.
func (r *Resolver) fetch(ctx context.Context, p *remote.Puller, ref name.Reference) (*v1.Descriptor, error) {
	desc, err := p.Head(ctx, ref)
	if err == nil && desc.Digest.Hex != "" {
		return desc, nil
	}
	if err != nil && (ctx.Err() != nil || classify(err) != unusable) {
		return nil, err
	}
	r.log.DebugContext(ctx, "manifest HEAD answer unusable, falling back to GET", "ref", ref.String(), "error", err)
	d, err := p.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &d.Descriptor, nil
}
