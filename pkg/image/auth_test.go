package image_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ferrycd/ferry/pkg/image"
)

// basicAuth demands user:password on every /v2/ request, the way a
// registry with htpasswd does. It counts manifest requests.
type basicAuth struct {
	h          http.Handler
	user, pass string
	code       int // answer to bad credentials: 401 or 403
	reqs       atomic.Int32
}

func (b *basicAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isManifest(r) {
		b.reqs.Add(1)
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != b.user || pass != b.pass {
		code := b.code
		if !ok || code == 0 {
			code = http.StatusUnauthorized
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="ferry-test"`)
		http.Error(w, http.StatusText(code), code)
		return
	}
	b.h.ServeHTTP(w, r)
}

// helper is an in-process docker credential helper.
type helper struct{ host, user, pass string }

func (h helper) Get(serverURL string) (string, string, error) {
	if serverURL != h.host {
		return "", "", fmt.Errorf("no credentials for %s", serverURL)
	}
	return h.user, h.pass, nil
}

// staticKeychain hands out fixed credentials per registry.
type staticKeychain map[string]authn.AuthConfig

func (k staticKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if cfg, ok := k[res.RegistryStr()]; ok {
		return authn.FromConfig(cfg), nil
	}
	return authn.Anonymous, nil
}

func TestResolveAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const (
		user      = "ci-bot"
		password  = "correct-horse-battery-staple"
		wrongPass = "s3cret-but-Wrong-p4ss"
	)

	tests := []struct {
		name      string
		code      int // what the server answers to bad credentials
		keychain  func(host string) authn.Keychain
		wantErr   bool
		wantCode  int
		anonymous bool // no credentials were found
		noLeak    string
	}{
		{name: "no credentials",
			keychain: func(string) authn.Keychain { return authn.NewMultiKeychain() },
			wantErr:  true, wantCode: http.StatusUnauthorized, anonymous: true},
		{name: "right credentials",
			keychain: func(host string) authn.Keychain {
				return authn.NewMultiKeychain(staticKeychain{host: {Username: user, Password: password}})
			}},
		{name: "right credentials from a credential helper",
			keychain: func(host string) authn.Keychain {
				return authn.NewKeychainFromHelper(helper{host: host, user: user, pass: password})
			}},
		{name: "wrong password",
			keychain: func(host string) authn.Keychain {
				return authn.NewMultiKeychain(staticKeychain{host: {Username: user, Password: wrongPass}})
			},
			wantErr: true, wantCode: http.StatusUnauthorized, noLeak: wrongPass},
		{name: "forbidden", code: http.StatusForbidden,
			keychain: func(host string) authn.Keychain {
				return staticKeychain{host: {Username: user, Password: wrongPass}}
			},
			wantErr: true, wantCode: http.StatusForbidden, noLeak: wrongPass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ba := &basicAuth{h: f.reg, user: user, pass: password, code: tc.code}
			host := serve(t, ba)
			ref := host + "/team/hello:v1"
			r := fastResolver(image.WithKeychain(tc.keychain(host)))
			got, err := r.Resolve(t.Context(), ref)
			if n := ba.reqs.Load(); n != 1 {
				t.Errorf("manifest requests = %d, want 1 (no retries)", n)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Resolve(%q): %v", ref, err)
				}
				if got.Digest != f.img.String() {
					t.Errorf("Resolve(%q).Digest = %s, want %s", ref, got.Digest, f.img)
				}
				return
			}
			if !errors.Is(err, image.ErrUnauthorized) {
				t.Fatalf("Resolve(%q) error = %v, want ErrUnauthorized", ref, err)
			}
			what := "were rejected"
			if tc.anonymous {
				what = "were missing (none found)"
			}
			want := fmt.Sprintf("resolving %s: credentials for registry %s %s (HTTP %d %s); provide them in a docker config.json (directory set by DOCKER_CONFIG",
				ref, host, what, tc.wantCode, http.StatusText(tc.wantCode))
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Resolve(%q) error:\n got %q\nwant prefix %q", ref, err, want)
			}
			for _, s := range []string{"credential helper", "application default credentials"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Resolve(%q) error %q does not mention %q", ref, err, s)
				}
			}
			if tc.noLeak != "" && strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), tc.noLeak) {
				t.Errorf("Resolve(%q) error leaks the password: %q", ref, err)
			}
		})
	}
}

// TestResolveDefaultKeychain checks that the default keychain reads the
// docker config.json that DOCKER_CONFIG points at.
func TestResolveDefaultKeychain(t *testing.T) {
	f := newFixture(t)
	ba := &basicAuth{h: f.reg, user: "ci-bot", pass: "from-docker-config"}
	host := serve(t, ba)

	dir := t.TempDir()
	cf := fmt.Sprintf(`{"auths": {%q: {"username": "ci-bot", "password": "from-docker-config"}}}`, host)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)

	ref := host + "/team/hello:v1"
	got, err := image.NewResolver(image.WithRetry(1, time.Millisecond)).Resolve(t.Context(), ref)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", ref, err)
	}
	if got.Digest != f.img.String() {
		t.Errorf("Resolve(%q).Digest = %s, want %s", ref, got.Digest, f.img)
	}
}

// TestUnavailableDoesNotLeakCredentials checks the one error that carries
// the registry's own words.
func TestUnavailableDoesNotLeakCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const password = "hunter2-but-longer"
	// HEAD answers lack Docker-Content-Digest, which leads to a GET; the
	// GET fails with a body that echoes the Authorization header and the
	// password, as a careless proxy might.
	head := stripDigestOnHEAD(f.reg)
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isManifest(r) && r.Method == http.MethodGet {
			http.Error(w, "upstream down; you sent "+r.Header.Get("Authorization")+" "+password, http.StatusServiceUnavailable)
			return
		}
		head.ServeHTTP(w, r)
	})
	ba := &basicAuth{h: echo, user: "u", pass: password}
	host := serve(t, ba)
	ref := host + "/team/hello:v1"
	kc := staticKeychain{host: {Username: "u", Password: password}}
	_, err := fastResolver(image.WithKeychain(kc), image.WithRetry(2, time.Millisecond)).Resolve(t.Context(), ref)
	if !errors.Is(err, image.ErrUnavailable) {
		t.Fatalf("Resolve(%q) error = %v, want ErrUnavailable", ref, err)
	}
	basic := "dTpodW50ZXIyLWJ1dC1sb25nZXI=" // base64("u:hunter2-but-longer")
	if !strings.Contains(err.Error(), "upstream down; you sent Basic REDACTED REDACTED") {
		t.Errorf("Resolve(%q) error %q does not carry the redacted registry answer", ref, err)
	}
	for _, secret := range []string{password, basic} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Resolve(%q) error leaks %q: %q", ref, secret, err)
		}
	}
}
