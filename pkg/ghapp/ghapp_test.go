package ghapp_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgithub"
	"github.com/ferrycd/ferry/pkg/ghapp"
	"github.com/google/go-cmp/cmp"
)

// keys are generated once: 2048-bit RSA takes a moment.
var keys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var k [2]*rsa.PrivateKey
	for i := range k {
		var err error
		if k[i], err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	return k
})

func appKey() *rsa.PrivateKey   { return keys()[0] }
func otherKey() *rsa.PrivateKey { return keys()[1] }

func pkcs1(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// pemLines are the base64 lines of a PEM file: what must never be
// printed.
func pemLines(p []byte) []string {
	var out []string
	for _, l := range strings.Split(string(p), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") && len(l) >= 16 {
			out = append(out, l)
		}
	}
	return out
}

func TestLoadKey(t *testing.T) {
	good := pkcs1(appKey())
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	pubDER, _ := x509.MarshalPKIXPublicKey(&appKey().PublicKey)
	truncated := x509.MarshalPKCS1PrivateKey(appKey())
	truncated = truncated[:len(truncated)/2]
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: x509.MarshalPKCS1PrivateKey(appKey())})
	for _, tc := range []struct {
		name string
		pem  []byte
		want string // error substring; "" for success
	}{
		{"PKCS#1 as GitHub issues it", good, ""},
		{"PKCS#8", pkcs8(t, appKey()), ""},
		{"with text around it", append(append([]byte("my app key\n"), good...), "\n\n"...), ""},
		{"PKCS#8 ECDSA", pkcs8(t, ec), "the key is ECDSA, not RSA"},
		{"EC PRIVATE KEY", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), "ECDSA, not RSA"},
		{"public key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), "the PEM block is a PUBLIC KEY: want the App's private key"},
		{"encrypted", encrypted, "encrypted with a passphrase"},
		{"truncated", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: truncated}), "not a valid PKCS#1 key"},
		{"garbage PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: truncated}), "not a valid PKCS#8 key"},
		{"not PEM", []byte("12345"), "no PEM block found"},
		{"a path, not the file", []byte("/secrets/app.pem"), "no PEM block found"},
		{"empty", nil, "no PEM block found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ghapp.LoadKey(tc.pem)
			if tc.want == "" {
				if err != nil || !k.Equal(appKey()) {
					t.Fatalf("LoadKey: %v", err)
				}
				return
			}
			var ke *ghapp.KeyError
			if !errors.As(err, &ke) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *KeyError with %q", err, tc.want)
			}
			for _, l := range append(pemLines(tc.pem), pemLines(good)...) {
				if strings.Contains(err.Error(), l) || strings.Contains(err.Error(), l[:8]) {
					t.Errorf("error quotes the key: %v", err)
				}
			}
		})
	}
}

// decodeJWT splits a JWT into its header and claims and checks its
// signature with pub, independently of the package.
func decodeJWT(t *testing.T, jwt string, pub *rsa.PublicKey) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts", len(parts))
	}
	dec := func(s string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("not base64url without padding: %v", err)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	dec(parts[0], &header)
	dec(parts[1], &claims)
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("signature: %v", err)
	}
	return header, claims
}

func TestJWT(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	jwt, err := ghapp.JWT("123456", appKey(), now)
	if err != nil {
		t.Fatal(err)
	}
	header, claims := decodeJWT(t, jwt, &appKey().PublicKey)
	if diff := cmp.Diff(map[string]any{"alg": "RS256", "typ": "JWT"}, header); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	want := map[string]any{"iss": "123456", "iat": float64(now.Unix() - 60), "exp": float64(now.Unix() + 9*60)}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		id   string
		key  *rsa.PrivateKey
	}{{"no App ID", "", appKey()}, {"no key", "1", nil}} {
		if _, err := ghapp.JWT(tc.id, tc.key, now); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestToken(t *testing.T) {
	const appID = "424242"
	type want struct {
		paths  []string // requests, "METHOD /path"
		status int      // of the *APIError; 0 for success
		is     error
		msg    string // in the error
	}
	lookup, exchange := "GET /repos/acme/env/installation", "POST /app/installations/7/access_tokens"
	for _, tc := range []struct {
		name  string
		key   *rsa.PrivateKey
		id    int64
		repo  string
		more  []string
		setup func(s *testgithub.Server)
		opts  []testgithub.Option
		want  want
	}{
		{name: "looks the installation up", repo: "env", want: want{paths: []string{lookup, exchange}}},
		{name: "installation given", id: 7, repo: "env", want: want{paths: []string{exchange}}},
		{name: "several repositories", repo: "env", more: []string{"env-eu"}, want: want{paths: []string{lookup, exchange}}},
		{name: "GitHub Enterprise Server", repo: "env", opts: []testgithub.Option{testgithub.Enterprise()},
			want: want{paths: []string{"GET /api/v3/repos/acme/env/installation", "POST /api/v3/app/installations/7/access_tokens"}}},
		{name: "server errors are retried", repo: "env", setup: func(s *testgithub.Server) { s.FailNext(502, 503) },
			want: want{paths: []string{lookup, lookup, lookup, exchange}}},
		{name: "a rate limit is retried", id: 7, repo: "env", setup: func(s *testgithub.Server) { s.FailNext(429) },
			want: want{paths: []string{exchange, exchange}}},
		{name: "server errors give up", repo: "env", setup: func(s *testgithub.Server) { s.FailNext(500, 500, 500, 500, 500) },
			want: want{paths: []string{lookup, lookup, lookup, lookup}, status: 500}},
		{name: "not installed on the repository", repo: "other",
			want: want{paths: []string{"GET /repos/acme/other/installation"}, status: 404, is: ghapp.ErrNotInstalled, msg: "404 Not Found (the App is not installed on this repository: install it"}},
		{name: "installation without the repository", id: 7, repo: "other",
			want: want{paths: []string{exchange}, status: 422, is: ghapp.ErrNotInstalled, msg: testgithub.MsgUnreachable}},
		{name: "no such installation", id: 8, repo: "env",
			want: want{paths: []string{"POST /app/installations/8/access_tokens"}, status: 404, is: ghapp.ErrNotInstalled, msg: "no such installation of this App"}},
		{name: "a key that is not the App's", key: otherKey(), repo: "env",
			want: want{paths: []string{lookup}, status: 401, is: ghapp.ErrUnauthorized, msg: testgithub.MsgBadJWT + " (check the App ID and that the private key is the App's current one)"}},
		{name: "clock ahead of GitHub's", repo: "env", setup: func(s *testgithub.Server) { s.SetSkew(-2 * time.Minute) },
			want: want{paths: []string{lookup}, status: 401, is: ghapp.ErrUnauthorized, msg: testgithub.MsgExpTooFar + " (this machine's clock is off"}},
		{name: "clock behind GitHub's", repo: "env", setup: func(s *testgithub.Server) { s.SetSkew(15 * time.Minute) },
			want: want{paths: []string{lookup}, status: 401, is: ghapp.ErrUnauthorized, msg: "'Expiration time' claim ('exp') must be a numeric value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testgithub.New(t, appID, &appKey().PublicKey, tc.opts...)
			srv.Install("acme", 7, "env", "env-eu")
			srv.Install("other-org", 9, "other")
			if tc.setup != nil {
				tc.setup(srv)
			}
			key := tc.key
			if key == nil {
				key = appKey()
			}
			var secrets []string
			app := &ghapp.App{ID: appID, Key: key, BaseURL: srv.APIURL + "/", InstallationID: tc.id, UserAgent: "ferry-test",
				Secret: func(s string) { secrets = append(secrets, s) }}
			tok, err := app.Token(context.Background(), "acme", tc.repo, tc.more...)
			var paths []string
			for _, r := range srv.Requests() {
				paths = append(paths, r.Method+" "+r.Path)
				for h, v := range map[string]string{"Accept": "application/vnd.github+json", "X-Github-Api-Version": "2022-11-28", "User-Agent": "ferry-test"} {
					if got := r.Header.Get(h); got != v {
						t.Errorf("%s %s: %s: %q, want %q", r.Method, r.Path, h, got, v)
					}
				}
				if r.Method == http.MethodPost {
					want, _ := json.Marshal(map[string][]string{"repositories": append([]string{tc.repo}, tc.more...)})
					if r.Body != string(want) {
						t.Errorf("POST body %s, want %s", r.Body, want)
					}
				}
			}
			if diff := cmp.Diff(tc.want.paths, paths); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			// Every JWT presented was told to Secret, and so was the token.
			for _, j := range srv.JWTs() {
				if !contains(secrets, j) {
					t.Errorf("a JWT was sent before Secret was told")
				}
			}
			if tc.want.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				minted := srv.Tokens()
				if len(minted) != 1 || tok.Value != minted[0] || len(tok.Value) < 40 || !contains(secrets, tok.Value) {
					t.Errorf("token %q (told Secret: %v), minted %q", tok.Value, contains(secrets, tok.Value), minted)
				}
				if d := time.Until(tok.Expires); d < 59*time.Minute || d > time.Hour {
					t.Errorf("expires in %s", d)
				}
				want := ghapp.Token{Value: tok.Value, Expires: tok.Expires, InstallationID: 7,
					Permissions:  map[string]string{"contents": "write", "metadata": "read", "pull_requests": "write"},
					Repositories: append([]string{tc.repo}, tc.more...)}
				if diff := cmp.Diff(want, tok); diff != "" {
					t.Errorf("token (-want +got):\n%s", diff)
				}
				return
			}
			var apiErr *ghapp.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.want.status {
				t.Fatalf("error %v, want an *APIError with status %d", err, tc.want.status)
			}
			if tc.want.is != nil && !errors.Is(err, tc.want.is) {
				t.Errorf("error %v is not %v", err, tc.want.is)
			}
			if !strings.Contains(err.Error(), tc.want.msg) {
				t.Errorf("error %q lacks %q", err, tc.want.msg)
			}
			if apiErr.Temporary() != (tc.want.status >= 500) {
				t.Errorf("Temporary() = %v for %d", apiErr.Temporary(), tc.want.status)
			}
			for _, s := range append(srv.JWTs(), srv.Tokens()...) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error holds a secret: %v", err)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A Token printed or logged by mistake does not show its value.
func TestTokenNotPrinted(t *testing.T) {
	tok := ghapp.Token{Value: "ghs_0123456789abcdefghijABCDEFGHIJ012345", Expires: time.Now().Add(time.Hour), InstallationID: 7, Repositories: []string{"env"}}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("minted", "token", tok)
	for _, out := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), logged.String()} {
		if strings.Contains(out, tok.Value) || !strings.Contains(out, "7") {
			t.Errorf("printed: %s", out)
		}
	}
}

func TestRetryFresh(t *testing.T) {
	errAuth := errors.New("401")
	isAuth := func(err error) bool { return errors.Is(err, errAuth) }
	// failing fails the first n calls with err.
	failing := func(n int, err error) (func() error, *int) {
		calls := 0
		return func() error {
			calls++
			if calls <= n {
				return err
			}
			return nil
		}, &calls
	}
	for _, tc := range []struct {
		name      string
		fails     int
		err       error
		timeout   time.Duration
		wantErr   bool
		wantCalls int // 0: any number
		minCalls  int
		minTook   time.Duration
		maxTook   time.Duration
	}{
		{name: "accepted at once", fails: 0, wantCalls: 1, maxTook: 50 * time.Millisecond},
		{name: "accepted on the third try", fails: 2, err: errAuth, wantCalls: 3, maxTook: 2 * time.Second},
		{name: "another error is not retried", fails: 1, err: errors.New("branch not found"), wantErr: true, wantCalls: 1, maxTook: 50 * time.Millisecond},
		{name: "never accepted: gives up within seconds", fails: 1 << 30, err: errAuth, wantErr: true, minCalls: 5, minTook: 3500 * time.Millisecond, maxTook: 5500 * time.Millisecond},
		{name: "bounded by the context", fails: 1 << 30, err: errAuth, timeout: 300 * time.Millisecond, wantErr: true, minCalls: 2, maxTook: 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			f, calls := failing(tc.fails, tc.err)
			start := time.Now()
			err := ghapp.RetryFresh(ctx, f, isAuth)
			took := time.Since(start)
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, tc.err)) {
				t.Errorf("error %v, want %v", err, tc.err)
			}
			if tc.wantCalls > 0 && *calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", *calls, tc.wantCalls)
			}
			if *calls < tc.minCalls {
				t.Errorf("%d calls, want at least %d", *calls, tc.minCalls)
			}
			if took < tc.minTook || took > tc.maxTook {
				t.Errorf("took %s, want between %s and %s", took, tc.minTook, tc.maxTook)
			}
		})
	}
}

// Once a token has been accepted, Fresh does not retry: a refusal then is
// real.
func TestFresh(t *testing.T) {
	errAuth := errors.New("401")
	isAuth := func(err error) bool { return err == errAuth }
	var fr ghapp.Fresh
	calls := 0
	first := func() error {
		if calls++; calls < 3 {
			return errAuth
		}
		return nil
	}
	if err := fr.Retry(context.Background(), first, isAuth); err != nil || calls != 3 {
		t.Fatalf("first use: %v after %d calls", err, calls)
	}
	calls = 0
	refused := func() error { calls++; return errAuth }
	if err := fr.Retry(context.Background(), refused, isAuth); err != errAuth || calls != 1 {
		t.Errorf("after acceptance: %v after %d calls, want one call", err, calls)
	}
}
