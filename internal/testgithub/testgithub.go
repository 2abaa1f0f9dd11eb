// Package testgithub is a stand-in for the part of GitHub's REST API a
// GitHub App uses to get an installation token, for tests (GitHub itself
// cannot run here). It speaks the real wire format: it verifies each JWT
// for real (RS256 signature against the App's public key, iss, iat and
// exp as GitHub checks them, with GitHub's 401 messages), serves the
// repository installation lookup and the token exchange with GitHub's
// status codes and bodies, and can guard a git server (GitAuth) so that
// only tokens it minted, for that repository, are accepted, optionally
// not until a moment after minting, as GitHub sometimes does.
package testgithub

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GitHub's messages, as its API words them.
const (
	MsgBadJWT      = "A JSON web token could not be decoded"
	MsgExpTooFar   = "'Expiration time' claim ('exp') is too far in the future"
	MsgExpired     = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	MsgIATFuture   = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	MsgNotFound    = "Not Found"
	MsgUnreachable = "There is at least one repository that does not exist or is not accessible to the parent installation."
	MsgNoUA        = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required)."
)

// Server is a running stand-in.
type Server struct {
	*httptest.Server
	// APIURL is the API's root as a client is given it: URL, plus
	// "/api/v3" for an Enterprise-style server.
	APIURL string
	appID  string
	pub    *rsa.PublicKey
	prefix string

	mu       sync.Mutex
	installs map[int64]*installation
	tokens   []*minted
	jwts     []string
	requests []Request
	fail     []int
	skew     time.Duration
	lag      time.Duration
	refused  int // git requests refused
}

type installation struct {
	owner       string
	repos       []string
	permissions map[string]string
}

type minted struct {
	value   string
	owner   string
	repos   []string
	at, exp time.Time
}

// Request is one API request the stand-in answered.
type Request struct {
	Method, Path string
	Header       http.Header // Authorization removed
	Body         string
	Status       int
}

// Option configures New.
type Option func(*Server)

// Enterprise serves the API under /api/v3, as a GitHub Enterprise Server
// does.
func Enterprise() Option { return func(s *Server) { s.prefix = "/api/v3" } }

// New starts a stand-in for the App appID whose private key's public half
// is pub.
func New(t testing.TB, appID string, pub *rsa.PublicKey, opts ...Option) *Server {
	t.Helper()
	s := &Server{appID: appID, pub: pub, installs: map[int64]*installation{}}
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	s.APIURL = s.URL + s.prefix
	return s
}

// Install installs the App on owner as installation id, with access to
// repos and the usual permissions of a promotion bot (contents and pull
// requests write, metadata read).
func (s *Server) Install(owner string, id int64, repos ...string) {
	s.InstallWith(owner, id, map[string]string{"contents": "write", "metadata": "read", "pull_requests": "write"}, repos...)
}

// InstallWith is Install with the installation's permissions.
func (s *Server) InstallWith(owner string, id int64, perms map[string]string, repos ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installs[id] = &installation{owner: owner, repos: repos, permissions: perms}
}

// FailNext answers the next API requests with these statuses, one each,
// before serving normally (a 502 storm, a 429).
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, statuses...)
}

// SetSkew sets the stand-in's clock ahead of this machine's by d
// (negative: behind), for the JWT's time checks.
func (s *Server) SetSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// SetLag makes GitAuth refuse a token for d after it was minted.
func (s *Server) SetLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = d
}

// Tokens returns every token minted, oldest first.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.tokens {
		out = append(out, m.value)
	}
	return out
}

// JWTs returns every bearer token presented to the API, valid or not.
func (s *Server) JWTs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.jwts)
}

// Requests returns the API requests answered, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Refused returns how many git requests GitAuth refused.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func (s *Server) now() time.Time { return time.Now().Add(s.skew) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is GitHub's error body.
func apiError(w http.ResponseWriter, status int, msg, doc string) {
	writeJSON(w, status, map[string]string{"message": msg, "documentation_url": doc, "status": strconv.Itoa(status)})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	body := string(data)
	rec := &statusRecorder{ResponseWriter: w}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := r.Header.Clone()
	h.Del("Authorization")
	defer func() {
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: h, Body: body, Status: rec.status})
	}()
	if len(s.fail) > 0 {
		status := s.fail[0]
		s.fail = s.fail[1:]
		apiError(rec, status, http.StatusText(status), "https://docs.github.com/rest")
		return
	}
	if r.Header.Get("User-Agent") == "" {
		apiError(rec, http.StatusForbidden, MsgNoUA, "")
		return
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && v != "2022-11-28" {
		apiError(rec, http.StatusBadRequest, fmt.Sprintf("API version %s is not supported.", v), "https://docs.github.com/rest/overview/api-versions")
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, s.prefix+"/")
	if !ok {
		apiError(rec, http.StatusNotFound, MsgNotFound, "https://docs.github.com/rest")
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if bearer != "" {
		s.jwts = append(s.jwts, bearer)
	}
	if msg := s.verify(bearer); msg != "" {
		apiError(rec, http.StatusUnauthorized, msg, "https://docs.github.com/rest")
		return
	}
	seg := strings.Split(path, "/")
	switch {
	case r.Method == http.MethodGet && len(seg) == 4 && seg[0] == "repos" && seg[3] == "installation":
		s.lookup(rec, seg[1], seg[2])
	case r.Method == http.MethodPost && len(seg) == 4 && seg[0] == "app" && seg[1] == "installations" && seg[3] == "access_tokens":
		id, err := strconv.ParseInt(seg[2], 10, 64)
		if err != nil {
			apiError(rec, http.StatusNotFound, MsgNotFound, "https://docs.github.com/rest")
			return
		}
		s.exchange(rec, id, body)
	default:
		apiError(rec, http.StatusNotFound, MsgNotFound, "https://docs.github.com/rest")
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// verify checks a JWT as GitHub does and returns its 401 message, or ""
// when it is good.
func (s *Server) verify(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return MsgBadJWT
	}
	enc := base64.RawURLEncoding
	var header struct{ Alg, Typ string }
	hb, err1 := enc.DecodeString(parts[0])
	sig, err2 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &header) != nil || header.Alg != "RS256" {
		return MsgBadJWT
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(s.pub, crypto.SHA256, sum[:], sig) != nil {
		return MsgBadJWT
	}
	cb, err := enc.DecodeString(parts[1])
	if err != nil {
		return MsgBadJWT
	}
	var claims map[string]any
	if json.Unmarshal(cb, &claims) != nil {
		return MsgBadJWT
	}
	// GitHub takes the App ID as a number or a string, or the client ID.
	switch iss := claims["iss"].(type) {
	case string:
		if iss != s.appID {
			return MsgBadJWT
		}
	case float64:
		if strconv.FormatFloat(iss, 'f', -1, 64) != s.appID {
			return MsgBadJWT
		}
	default:
		return MsgBadJWT
	}
	now := s.now()
	// exp first: a clock ahead of GitHub's is told "too far in the
	// future", as GitHub tells it.
	exp, ok := integer(claims["exp"])
	if !ok || !time.Unix(exp, 0).After(now) {
		return MsgExpired
	}
	if time.Unix(exp, 0).Sub(now) > 10*time.Minute {
		return MsgExpTooFar
	}
	iat, ok := integer(claims["iat"])
	if !ok || time.Unix(iat, 0).After(now.Add(time.Minute)) {
		return MsgIATFuture
	}
	return ""
}

// integer reads a JSON number that is a whole number.
func integer(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

func (s *Server) find(owner, repo string) (int64, *installation) {
	for id, in := range s.installs {
		if strings.EqualFold(in.owner, owner) && slices.ContainsFunc(in.repos, func(r string) bool { return strings.EqualFold(r, repo) }) {
			return id, in
		}
	}
	return 0, nil
}

func (s *Server) lookup(w http.ResponseWriter, owner, repo string) {
	id, in := s.find(owner, repo)
	if in == nil {
		apiError(w, http.StatusNotFound, MsgNotFound, "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app")
		return
	}
	appID, _ := strconv.ParseInt(s.appID, 10, 64)
	writeJSON(w, http.StatusOK, map[string]any{
		"id":                   id,
		"account":              map[string]any{"login": in.owner, "type": "Organization"},
		"repository_selection": "selected",
		"access_tokens_url":    fmt.Sprintf("%s/app/installations/%d/access_tokens", s.APIURL, id),
		"app_id":               appID,
		"target_type":          "Organization",
		"permissions":          in.permissions,
		"events":               []string{},
	})
}

func (s *Server) exchange(w http.ResponseWriter, id int64, body string) {
	in := s.installs[id]
	if in == nil {
		apiError(w, http.StatusNotFound, MsgNotFound, "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app")
		return
	}
	var req struct {
		Repositories []string `json:"repositories"`
	}
	if body != "" {
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			apiError(w, http.StatusBadRequest, "Problems parsing JSON", "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app")
			return
		}
	}
	repos := req.Repositories
	if len(repos) == 0 {
		repos = in.repos // unscoped: everything the installation reaches
	}
	for _, r := range repos {
		if !slices.ContainsFunc(in.repos, func(x string) bool { return strings.EqualFold(x, r) }) {
			apiError(w, http.StatusUnprocessableEntity, MsgUnreachable, "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app")
			return
		}
	}
	now := time.Now()
	m := &minted{value: "ghs_" + randomToken(36), owner: in.owner, repos: repos, at: now, exp: now.Add(time.Hour)}
	s.tokens = append(s.tokens, m)
	var list []map[string]any
	for i, r := range repos {
		list = append(list, map[string]any{"id": 1000 + i, "name": r, "full_name": in.owner + "/" + r, "private": true})
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"token":                m.value,
		"expires_at":           m.exp.UTC().Format("2006-01-02T15:04:05Z"),
		"permissions":          maps.Clone(in.permissions),
		"repository_selection": "selected",
		"repositories":         list,
	})
}

// randomToken is n characters of [A-Za-z0-9], as GitHub's tokens are
// after their prefix.
func randomToken(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

// GitAuth guards a git server (testgit.WithMiddleware) the way GitHub
// guards git over HTTPS for an App: basic auth, user x-access-token, the
// password a token this stand-in minted, unexpired, whose repositories
// include the one in the path (/OWNER/REPO.git/...). A token younger than
// the lag (SetLag) is refused as if unknown. Refusals are 401s, as
// GitHub's.
func (s *Server) GitAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		seg := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
		ok := false
		s.mu.Lock()
		if len(seg) >= 2 && user == "x-access-token" {
			owner, repo := seg[0], strings.TrimSuffix(seg[1], ".git")
			now := time.Now()
			for _, m := range s.tokens {
				if m.value == pass && strings.EqualFold(m.owner, owner) && now.Before(m.exp) && now.Sub(m.at) >= s.lag &&
					slices.ContainsFunc(m.repos, func(x string) bool { return strings.EqualFold(x, repo) }) {
					ok = true
				}
			}
		}
		if !ok {
			s.refused++
		}
		s.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			http.Error(w, "Invalid username or token. Password authentication is not supported for Git operations.", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
