package ghapp

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
)

// DefaultBaseURL is GitHub.com's REST API; a GitHub Enterprise Server's is
// https://HOST/api/v3.
const DefaultBaseURL = "https://api.github.com"

// APIVersion is the REST API version every request asks for.
const APIVersion = "2022-11-28"

// App is a GitHub App that mints installation tokens.
type App struct {
	// ID is the App ID (or its client ID), the JWT's issuer.
	ID string
	// Key is the App's private key (LoadKey).
	Key *rsa.PrivateKey
	// BaseURL is the REST API's root: DefaultBaseURL when empty, or a
	// GitHub Enterprise Server's https://HOST/api/v3.
	BaseURL string
	// HTTP sends the requests; http.DefaultClient when nil.
	HTTP *http.Client
	// InstallationID is the App's installation on the repositories'
	// owner; 0 looks it up from the repository.
	InstallationID int64
	// UserAgent names the caller, as GitHub requires; "ferry" when empty.
	UserAgent string
	// Secret, if set, is told every secret the App makes (each JWT, each
	// token) before it is sent or returned, so a redactor can hide it.
	Secret func(string)
}

// Token is an installation access token. GitHub lets it live an hour.
type Token struct {
	Value   string
	Expires time.Time
	// Permissions are what the installation grants the token, e.g.
	// "contents": "write", "pull_requests": "write".
	Permissions map[string]string
	// Repositories are the names of the repositories it is scoped to.
	Repositories []string
	// InstallationID is the installation that issued it.
	InstallationID int64
}

// String describes the token without its value, so a stray %v or log
// line cannot print it.
func (t Token) String() string {
	return fmt.Sprintf("installation token (installation %d, expires %s)", t.InstallationID, t.Expires.UTC().Format(time.RFC3339))
}

// GoString is String, for %#v.
func (t Token) GoString() string { return t.String() }

// LogValue logs the token's scope and expiry, never its value.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("installation", t.InstallationID),
		slog.Time("expires", t.Expires),
		slog.Any("repositories", t.Repositories),
		slog.Any("permissions", t.Permissions),
	)
}

// Outcomes callers branch on; an *APIError wraps them.
var (
	// ErrUnauthorized: GitHub refused the JWT (401): the key is not the
	// App's, the App ID is wrong, or the clock is off.
	ErrUnauthorized = errors.New("GitHub refused the App's JWT")
	// ErrNotInstalled: the App is not installed on the repository, or
	// its installation does not include it.
	ErrNotInstalled = errors.New("the App is not installed on the repository")
)

// APIError is a GitHub API answer other than the one asked for. It holds
// what GitHub said and what to do; never the JWT or a token.
type APIError struct {
	Op         string // what was being done, e.g. "minting an installation token for acme/env"
	StatusCode int
	Message    string // the API's "message"
	Hint       string // what to do about it, when known
	Err        error  // ErrUnauthorized, ErrNotInstalled, or nil
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "GitHub App: %s: %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" && e.Message != http.StatusText(e.StatusCode) {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// Temporary reports whether asking again later may succeed: a server
// error or a rate limit.
func (e *APIError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// Token mints an installation token scoped to owner's repository repo,
// and to each of more (the same owner's), with whatever permissions the
// installation has. When InstallationID is 0 it first looks up the App's
// installation on owner/repo.
func (a *App) Token(ctx context.Context, owner, repo string, more ...string) (Token, error) {
	repos := append([]string{repo}, more...)
	for _, r := range append([]string{owner}, repos...) {
		if r == "" || strings.ContainsAny(r, "/?#%") {
			return Token{}, fmt.Errorf("GitHub App: %q is not a repository owner or name", r)
		}
	}
	jwt, err := JWT(a.ID, a.Key, time.Now())
	if err != nil {
		return Token{}, err
	}
	a.secret(jwt)
	id := a.InstallationID
	full := owner + "/" + repo
	if id == 0 {
		var inst struct {
			ID int64 `json:"id"`
		}
		op := "looking up the App's installation on " + full
		if err := a.call(ctx, jwt, op, http.MethodGet, "/repos/"+owner+"/"+repo+"/installation", nil, &inst); err != nil {
			return Token{}, err
		}
		if inst.ID == 0 {
			return Token{}, fmt.Errorf("GitHub App: %s: the answer has no installation id", op)
		}
		id = inst.ID
	}
	var got struct {
		Token        string            `json:"token"`
		ExpiresAt    time.Time         `json:"expires_at"`
		Permissions  map[string]string `json:"permissions"`
		Repositories []struct {
			Name string `json:"name"`
		} `json:"repositories"`
	}
	op := fmt.Sprintf("minting an installation token for %s (installation %d)", full, id)
	if len(more) > 0 {
		op = fmt.Sprintf("minting an installation token for %s/{%s} (installation %d)", owner, strings.Join(repos, ","), id)
	}
	body := map[string][]string{"repositories": repos}
	if err := a.call(ctx, jwt, op, http.MethodPost, "/app/installations/"+strconv.FormatInt(id, 10)+"/access_tokens", body, &got); err != nil {
		return Token{}, err
	}
	if got.Token == "" {
		return Token{}, fmt.Errorf("GitHub App: %s: the answer has no token", op)
	}
	a.secret(got.Token)
	t := Token{Value: got.Token, Expires: got.ExpiresAt, Permissions: got.Permissions, InstallationID: id}
	for _, r := range got.Repositories {
		t.Repositories = append(t.Repositories, r.Name)
	}
	for _, r := range repos {
		if len(t.Repositories) > 0 && !slices.ContainsFunc(t.Repositories, func(s string) bool { return strings.EqualFold(s, r) }) {
			return Token{}, fmt.Errorf("GitHub App: %s: the token GitHub issued does not cover %s", op, r)
		}
	}
	return t, nil
}

func (a *App) secret(s string) {
	if a.Secret != nil {
		a.Secret(s)
	}
}

// apiAttempts bounds the tries of one request when GitHub answers with a
// server error or a rate limit; waits grow from apiBackoff, and a
// Retry-After longer than apiMaxWait is not waited for.
const (
	apiAttempts = 4
	apiBackoff  = 250 * time.Millisecond
	apiMaxWait  = 5 * time.Second
)

// call sends one request with the JWT and decodes a 200 or 201 answer
// into out, retrying briefly what may pass.
func (a *App) call(ctx context.Context, jwt, op, method, path string, body, out any) error {
	base := strings.TrimRight(a.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base + path)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("GitHub App: API URL %q: want https://api.github.com or https://HOST/api/v3", a.BaseURL)
	}
	var payload []byte
	if body != nil {
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("GitHub App: %s: %w", op, err)
		}
	}
	client := a.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	ua := a.UserAgent
	if ua == "" {
		ua = "ferry"
	}
	for n := 1; ; n++ {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("GitHub App: %s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+jwt)
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", APIVersion)
		req.Header.Set("User-Agent", ua)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(req)
		if err != nil {
			// A *url.Error names the method and URL, which hold no secret.
			return fmt.Errorf("GitHub App: %s: %w", op, err)
		}
		data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		_ = res.Body.Close()
		if err != nil {
			return fmt.Errorf("GitHub App: %s: reading the answer: %w", op, err)
		}
		if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusCreated {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("GitHub App: %s: the answer is not the JSON GitHub sends (%v); is %s GitHub's API?", op, err, base)
			}
			return nil
		}
		apiErr := newAPIError(op, res.StatusCode, data, jwt, path)
		if !apiErr.Temporary() || n >= apiAttempts {
			return apiErr
		}
		wait := apiBackoff + backoff.Delay(apiBackoff, apiMaxWait, n)
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
			if time.Duration(s)*time.Second > apiMaxWait {
				return apiErr
			}
			wait = time.Duration(s) * time.Second
		}
		if backoff.Sleep(ctx, wait) != nil {
			return apiErr
		}
	}
}

// newAPIError reads GitHub's error body ({"message": ..., "documentation_url": ...})
// and says what the status means for the step that got it.
func newAPIError(op string, status int, body []byte, jwt, path string) *APIError {
	var m struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &m)
	e := &APIError{Op: op, StatusCode: status, Message: cleanMessage(m.Message, jwt)}
	lookup := strings.HasSuffix(path, "/installation")
	switch {
	case status == http.StatusUnauthorized:
		e.Err = ErrUnauthorized
		e.Hint = "check the App ID and that the private key is the App's current one"
		if strings.Contains(m.Message, "'exp'") || strings.Contains(m.Message, "'iat'") {
			e.Hint = "this machine's clock is off from GitHub's by more than a minute: sync it (NTP)"
		}
	case status == http.StatusNotFound && lookup:
		e.Err = ErrNotInstalled
		e.Hint = "the App is not installed on this repository: install it on the repository's owner (the App's page, Install App), or add the repository to the installation's repository access (owner's Settings, GitHub Apps, Configure)"
	case status == http.StatusNotFound:
		e.Err = ErrNotInstalled
		e.Hint = "no such installation of this App: check the installation ID, or leave it out to look it up from the repository"
	case status == http.StatusUnprocessableEntity:
		e.Err = ErrNotInstalled
		e.Hint = "the installation cannot reach the repository: add it to the installation's repository access (owner's Settings, GitHub Apps, Configure)"
	}
	return e
}

// cleanMessage keeps a server's message short and printable, and without
// the JWT should a server echo it.
func cleanMessage(s, jwt string) string {
	if jwt != "" {
		s = strings.ReplaceAll(s, jwt, "***")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return strings.TrimSpace(s)
}
