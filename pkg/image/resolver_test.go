package image_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferrycd/ferry/pkg/image"
)

// fixture is an in-process registry holding team/hello:v1 (an image) and
// team/hello:multi (a three-platform index).
type fixture struct {
	reg      http.Handler // the registry, to wrap in test handlers
	img, idx v1.Hash      // digests of team/hello:v1 and team/hello:multi
}

// newFixture starts a registry and pushes the images through a server of
// its own, so that the servers a test wraps see only the test's requests.
// The registry keys repositories by path, not host, so every server over
// the same handler sees the same images.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{reg: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	push := serve(t, f.reg)

	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustTag(t, push+"/team/hello:v1"), img); err != nil {
		t.Fatal(err)
	}
	if f.img, err = img.Digest(); err != nil {
		t.Fatal(err)
	}

	idx, err := random.Index(256, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(mustTag(t, push+"/team/hello:multi"), idx); err != nil {
		t.Fatal(err)
	}
	if f.idx, err = idx.Digest(); err != nil {
		t.Fatal(err)
	}
	return f
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// serve starts h on 127.0.0.1 and returns its host:port.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func isManifest(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }

// counter counts manifest requests by method.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isManifest(r) {
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int{}
			}
			c.n[r.Method]++
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (c *counter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// fastResolver retries quickly and takes credentials from nowhere, so that
// a developer's docker config cannot change the outcome.
func fastResolver(opts ...image.Option) *image.Resolver {
	return image.NewResolver(append([]image.Option{
		image.WithRetry(4, time.Millisecond),
		image.WithKeychain(authn.NewMultiKeychain()),
	}, opts...)...)
}

func TestResolve(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	host := serve(t, f.reg)
	repo := host + "/team/hello"
	missing := "sha256:" + strings.Repeat("0", 64)

	tests := []struct {
		name    string
		in      string
		want    image.Resolved
		wantErr string // the whole error message
		wantIs  error
	}{
		{name: "tag", in: repo + ":v1",
			want: image.Resolved{Repo: repo, Tag: "v1", Digest: f.img.String(), MediaType: string(types.DockerManifestSchema2)}},
		{name: "digest only", in: repo + "@" + f.img.String(),
			want: image.Resolved{Repo: repo, Digest: f.img.String(), MediaType: string(types.DockerManifestSchema2)}},
		{name: "tag and digest", in: repo + ":v1@" + f.img.String(),
			want: image.Resolved{Repo: repo, Tag: "v1", Digest: f.img.String(), MediaType: string(types.DockerManifestSchema2)}},
		{name: "tag naming another digest", in: repo + ":multi@" + f.img.String(),
			wantErr: fmt.Sprintf("resolving %s:multi@%s: invalid image reference: tag multi is %s in %s, not %s; give the tag or the digest alone, or the matching pair", repo, f.img, f.idx, repo, f.img),
			wantIs:  image.ErrInvalidReference},
		{name: "multi-arch pins the index", in: repo + ":multi",
			want: image.Resolved{Repo: repo, Tag: "multi", Digest: f.idx.String(), MediaType: string(types.OCIImageIndex)}},
		{name: "index by digest", in: repo + "@" + f.idx.String(),
			want: image.Resolved{Repo: repo, Digest: f.idx.String(), MediaType: string(types.OCIImageIndex)}},

		{name: "missing tag", in: repo + ":v9",
			wantErr: "tag v9 not found in " + repo, wantIs: image.ErrNotFound},
		{name: "missing digest", in: repo + "@" + missing,
			wantErr: "digest " + missing + " not found in " + repo, wantIs: image.ErrNotFound},
		{name: "missing digest with tag", in: repo + ":v1@" + missing,
			wantErr: "digest " + missing + " not found in " + repo, wantIs: image.ErrNotFound},
		{name: "missing repo", in: host + "/team/nope:v1",
			wantErr: "tag v1 not found in " + host + "/team/nope", wantIs: image.ErrNotFound},

		{name: "no tag", in: repo,
			wantErr: fmt.Sprintf(`invalid image reference %q: no tag or digest; want %s:<tag> or %s@sha256:... (ferry never assumes "latest")`, repo, repo, repo),
			wantIs:  image.ErrInvalidReference},
		{name: "uppercase repo", in: host + "/Team/hello:v1",
			wantErr: fmt.Sprintf("invalid image reference %q: repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: Team/hello", host+"/Team/hello:v1"),
			wantIs:  image.ErrInvalidReference},
		{name: "bad digest", in: repo + "@sha256:abcd",
			wantErr: fmt.Sprintf(`invalid image reference %q: digest "sha256:abcd" must be sha256: followed by 64 lowercase hex digits`, repo+"@sha256:abcd"),
			wantIs:  image.ErrInvalidReference},
		{name: "empty", in: "",
			wantErr: `invalid image reference "": empty; want repo:tag or repo@sha256:...`,
			wantIs:  image.ErrInvalidReference},
	}
	r := fastResolver()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Resolve(t.Context(), tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve(%q) = %v, want error %q", tc.in, got, tc.wantErr)
				}
				if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
					t.Errorf("Resolve(%q) error (-want +got):\n%s", tc.in, diff)
				}
				if !errors.Is(err, tc.wantIs) {
					t.Errorf("Resolve(%q) error %q does not match %v", tc.in, err, tc.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resolve(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// TestResolveRequests checks that the normal path costs one manifest HEAD
// and no GET, and that a HEAD answer without Docker-Content-Digest costs
// exactly one GET more and still gives the right digest.
func TestResolveRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	tests := []struct {
		name      string
		stripHEAD bool
		tag       string
		byDigest  bool
		want      v1.Hash
		wantReqs  map[string]int
	}{
		{name: "image", tag: "v1", want: f.img,
			wantReqs: map[string]int{http.MethodHead: 1}},
		{name: "index", tag: "multi", want: f.idx,
			wantReqs: map[string]int{http.MethodHead: 1}},
		{name: "fallback image", stripHEAD: true, tag: "v1", want: f.img,
			wantReqs: map[string]int{http.MethodHead: 1, http.MethodGet: 1}},
		{name: "fallback index", stripHEAD: true, tag: "multi", want: f.idx,
			wantReqs: map[string]int{http.MethodHead: 1, http.MethodGet: 1}},
		{name: "fallback digest", stripHEAD: true, byDigest: true, want: f.idx,
			wantReqs: map[string]int{http.MethodHead: 1, http.MethodGet: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c counter
			h := f.reg
			if tc.stripHEAD {
				h = stripDigestOnHEAD(h)
			}
			host := serve(t, c.wrap(h))
			ref := host + "/team/hello:" + tc.tag
			if tc.byDigest {
				ref = host + "/team/hello@" + tc.want.String()
			}
			got, err := fastResolver().Resolve(t.Context(), ref)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", ref, err)
			}
			if got.Digest != tc.want.String() {
				t.Errorf("Resolve(%q).Digest = %s, want %s", ref, got.Digest, tc.want)
			}
			if diff := cmp.Diff(tc.wantReqs, c.counts()); diff != "" {
				t.Errorf("manifest requests by method (-want +got):\n%s", diff)
			}
		})
	}
}

// stripDigestOnHEAD removes Docker-Content-Digest from HEAD answers, as
// some registries do.
func stripDigestOnHEAD(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w = &headerStripper{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	})
}

type headerStripper struct {
	http.ResponseWriter
	wrote bool
}

func (s *headerStripper) WriteHeader(code int) {
	if !s.wrote {
		s.wrote = true
		s.Header().Del("Docker-Content-Digest")
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *headerStripper) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// failFirst answers the first n manifest requests with code, then lets
// them through. It counts manifest requests.
type failFirst struct {
	h    http.Handler
	n    int32
	code int
	reqs atomic.Int32
}

func (f *failFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isManifest(r) && f.reqs.Add(1) <= f.n {
		if f.code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		http.Error(w, http.StatusText(f.code), f.code)
		return
	}
	f.h.ServeHTTP(w, r)
}

func TestResolveRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	tests := []struct {
		name     string
		code     int
		failures int32
		attempts int
		wantReqs int32
		wantErr  string // prefix of the error, after "resolving REF: "
		wantIs   error
	}{
		{name: "503 then success", code: http.StatusServiceUnavailable, failures: 3, attempts: 4, wantReqs: 4},
		{name: "429 then success", code: http.StatusTooManyRequests, failures: 3, attempts: 4, wantReqs: 4},
		{name: "500 then success", code: http.StatusInternalServerError, failures: 1, attempts: 4, wantReqs: 2},
		{name: "503 storm", code: http.StatusServiceUnavailable, failures: 100, attempts: 3, wantReqs: 3,
			wantErr: "registry HOST unavailable after 3 attempts: HEAD http://HOST/v2/team/hello/manifests/v1: unexpected status code 503 Service Unavailable",
			wantIs:  image.ErrUnavailable},
		{name: "429 storm", code: http.StatusTooManyRequests, failures: 100, attempts: 2, wantReqs: 2,
			wantErr: "registry HOST unavailable after 2 attempts: ", wantIs: image.ErrUnavailable},
		{name: "400 is not retried", code: http.StatusBadRequest, failures: 100, attempts: 4, wantReqs: 1,
			wantErr: "HEAD http://HOST/v2/team/hello/manifests/v1: unexpected status code 400 Bad Request"},
		{name: "404 is not retried", code: http.StatusNotFound, failures: 100, attempts: 4, wantReqs: 1,
			wantIs: image.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ff := &failFirst{h: f.reg, n: tc.failures, code: tc.code}
			host := serve(t, ff)
			ref := host + "/team/hello:v1"
			r := fastResolver(image.WithRetry(tc.attempts, time.Millisecond))
			got, err := r.Resolve(t.Context(), ref)
			if n := ff.reqs.Load(); n != tc.wantReqs {
				t.Errorf("manifest requests = %d, want %d", n, tc.wantReqs)
			}
			if tc.wantErr == "" && tc.wantIs == nil {
				if err != nil {
					t.Fatalf("Resolve(%q): %v", ref, err)
				}
				if got.Digest != f.img.String() {
					t.Errorf("Resolve(%q).Digest = %s, want %s", ref, got.Digest, f.img)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve(%q) = %v, want an error", ref, got)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Resolve(%q) error %q does not match %v", ref, err, tc.wantIs)
			}
			if tc.wantErr != "" {
				prefix := "resolving " + ref + ": " + strings.ReplaceAll(tc.wantErr, "HOST", host)
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("Resolve(%q) error:\n got %q\nwant prefix %q", ref, err, prefix)
				}
			}
		})
	}
}

func TestResolveNetworkErrorsAreRetried(t *testing.T) {
	t.Parallel()
	// A listener closed at once: connections to it are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()

	ref := host + "/team/hello:v1"
	_, err = fastResolver(image.WithRetry(2, time.Millisecond)).Resolve(t.Context(), ref)
	if !errors.Is(err, image.ErrUnavailable) {
		t.Fatalf("Resolve(%q) error = %v, want ErrUnavailable", ref, err)
	}
	want := "resolving " + ref + ": registry " + host + " unavailable after 2 attempts: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Resolve(%q) error:\n got %q\nwant prefix %q", ref, err, want)
	}
}

func TestResolveContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	t.Run("cancel during request", func(t *testing.T) {
		t.Parallel()
		started := make(chan struct{}, 10)
		release := make(chan struct{})
		hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isManifest(r) {
				started <- struct{}{}
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			f.reg.ServeHTTP(w, r)
		})
		host := serve(t, hang)
		t.Cleanup(func() { close(release) }) // runs before the server closes

		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-started
			cancel()
		}()
		err := resolveWithin(t, ctx, fastResolver(), host+"/team/hello:v1")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Resolve error = %v, want context.Canceled", err)
		}
	})

	t.Run("deadline during backoff", func(t *testing.T) {
		t.Parallel()
		ff := &failFirst{h: f.reg, n: 100, code: http.StatusServiceUnavailable}
		host := serve(t, ff)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		// With an hour's backoff only the context can end this.
		r := fastResolver(image.WithRetry(4, time.Hour))
		err := resolveWithin(t, ctx, r, host+"/team/hello:v1")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Resolve error = %v, want context.DeadlineExceeded", err)
		}
		if n := ff.reqs.Load(); n != 1 {
			t.Errorf("manifest requests = %d, want 1", n)
		}
	})
}

// resolveWithin runs Resolve and fails the test if it does not return
// within a generous bound.
func resolveWithin(t *testing.T, ctx context.Context, r *image.Resolver, ref string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(ctx, ref)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("Resolve(%q) did not return after its context ended", ref)
		return nil
	}
}

func TestExists(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var c counter
	host := serve(t, c.wrap(f.reg))
	repo := host + "/team/hello"
	missing := "sha256:" + strings.Repeat("0", 64)

	tests := []struct {
		name, repo, digest string
		wantErr            string
		wantIs             error
	}{
		{name: "image", repo: repo, digest: f.img.String()},
		{name: "index", repo: repo, digest: f.idx.String()},
		{name: "missing", repo: repo, digest: missing,
			wantErr: "digest " + missing + " not found in " + repo, wantIs: image.ErrNotFound},
		{name: "missing repo", repo: host + "/team/nope", digest: f.img.String(),
			wantErr: "digest " + f.img.String() + " not found in " + host + "/team/nope", wantIs: image.ErrNotFound},
		{name: "bad repo", repo: host + "/Team/hello", digest: f.img.String(), wantIs: image.ErrInvalidReference},
		{name: "bad digest", repo: repo, digest: "sha256:abcd", wantIs: image.ErrInvalidReference},
		{name: "tag as digest", repo: repo, digest: "v1", wantIs: image.ErrInvalidReference},
	}
	r := fastResolver()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := r.Exists(t.Context(), tc.repo, tc.digest)
			if tc.wantIs == nil {
				if err != nil {
					t.Fatalf("Exists(%q, %q): %v", tc.repo, tc.digest, err)
				}
				return
			}
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("Exists(%q, %q) error = %v, want %v", tc.repo, tc.digest, err, tc.wantIs)
			}
			if tc.wantErr != "" {
				if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
					t.Errorf("Exists(%q, %q) error (-want +got):\n%s", tc.repo, tc.digest, diff)
				}
			}
		})
	}
	if got := c.counts()[http.MethodGet]; got != 0 {
		t.Errorf("Exists made %d manifest GETs, want 0", got)
	}
}

// TestInsecure reaches a registry by a name ggcr would only use https for;
// a transport that dials the test server whatever the name keeps this
// offline.
func TestInsecure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	addr := serve(t, f.reg)
	var dialer net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	ref := "registry.test:5000/team/hello:v1"

	got, err := fastResolver(image.WithTransport(tr), image.WithInsecure(true)).Resolve(t.Context(), ref)
	if err != nil {
		t.Fatalf("insecure Resolve(%q): %v", ref, err)
	}
	if got.Digest != f.img.String() {
		t.Errorf("insecure Resolve(%q).Digest = %s, want %s", ref, got.Digest, f.img)
	}

	_, err = fastResolver(image.WithTransport(tr)).Resolve(t.Context(), ref)
	if err == nil {
		t.Fatalf("Resolve(%q) over https to a plain http registry succeeded", ref)
	}
	if errors.Is(err, image.ErrUnavailable) {
		t.Errorf("Resolve(%q) retried a TLS failure: %v", ref, err)
	}
	if !strings.Contains(err.Error(), "insecure") {
		t.Errorf("Resolve(%q) error %q does not suggest allowing plain http", ref, err)
	}
}
