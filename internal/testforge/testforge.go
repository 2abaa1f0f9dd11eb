// Package testforge runs stand-ins for GitHub's REST and GraphQL APIs and
// GitLab's API v4 on 127.0.0.1, for tests: the endpoints ferry uses, with
// the hosts' request paths, JSON shapes, status codes and error messages,
// over real bare repositories under a root directory, the same root an
// internal/testgit.ServeRoot git http-backend serves. A pull request's
// head and base are the branches ferry pushed there, and a merge really
// moves the base branch, with git's own plumbing and a compare-and-swap on
// the ref, so a concurrent push is never lost.
//
// Repository owner/name (GitHub) or group/sub/name (GitLab) is the bare
// repository root/owner/name.git (or root/owner/name): its git URL on
// the ServeRoot server is /owner/name.git, as on the real host.
//
// What is not modelled: forks, drafts gating merges, branch protection
// beyond RequireChecks, review approvals, merge queues, pagination.
package testforge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// PR is a pull or merge request as the stand-in holds it.
type PR struct {
	Number      int
	Repo        string // owner/name, or GitLab's project path
	Head, Base  string
	Title, Body string
	Labels      []string
	Reviewers   []string // logins; GitHub teams as "team:slug"
	Draft       bool
	State       string // "open", "closed" or "merged"
	HeadSHA     string // the head's tip, as of the last read or the merge
	// MergeCommit is the commit the merge made on Base: the squash
	// commit, the merge commit, or the last rebased commit (for a GitLab
	// fast-forward, the head itself).
	MergeCommit string
	// SquashCommit is GitLab's squash commit, if it made one.
	SquashCommit string
	// fastForward: GitLab merged by moving the base to the head (or the
	// squash commit), so it reports no merge_commit_sha.
	fastForward bool
	// AutoMerge is set while the request waits to merge by itself.
	AutoMerge *AutoMerge
	// ChecksPassed is the head commit PassChecks passed, "" if none.
	ChecksPassed string
	// NodeID is GitHub's GraphQL ID of the request.
	NodeID string
}

// AutoMerge is how a request is to be merged: by auto-merge when it
// waits in PR.AutoMerge, or at once. "" messages take the host's default.
type AutoMerge struct {
	Method string // "squash", "merge" or "rebase"
	// Title and Body are GitHub's commit headline and body.
	Title, Body string
	// Message and SquashMessage are GitLab's merge_commit_message and
	// squash_commit_message.
	Message, SquashMessage string
}

// Request is one API request the stand-in answered.
type Request struct {
	Method string
	Path   string // as sent, escaped
	Query  string
	Body   string
	Status int
	// Auth is how the token came: "bearer", "private-token", or "".
	Auth string
	// Header is the request's headers but the token's.
	Header http.Header
}

// Host is what the GitHub and GitLab stand-ins share: the server, the
// token, the requests, the test hooks.
type Host struct {
	// URL is the API's base URL as a client takes it (GitHub's
	// https://api.github.com, GitLab's https://HOST/api/v4).
	URL string
	// Token is the token every request must carry; New* sets a random
	// one. Change it only before the first request.
	Token string
	// Accept, when set, decides which tokens are good instead of Token:
	// for tokens that exist only once minted, such as a GitHub App's
	// installation tokens (internal/testgithub's Tokens). Set it before
	// the first request.
	Accept func(token string) bool
	// RequireChecks makes a request mergeable only once the test calls
	// PassChecks for its current head, as a required status check (GitHub)
	// or "pipelines must succeed" (GitLab) does. Set it before the first
	// request.
	RequireChecks bool
	// SigningKey, when set, is an SSH private key file the host signs the
	// commits it makes with, as GitHub signs merges with its own key.
	SigningKey string

	t      testing.TB
	root   string
	server *httptest.Server

	mu       sync.Mutex
	prs      []*PR // every repository's, in number order
	log      []Request
	faults   []*Fault
	verified map[string]bool // GitHub: commits the git data API "signed"
	users    map[string]int  // GitLab: username to ID

	// Set by the host: how a request is merged (the test hook and
	// auto-merge), and how a token arrives.
	merge func(p *PR, a AutoMerge) error
	auth  func(r *http.Request) (token, how string)
	// refuse answers an unauthenticated request in the host's words.
	refuse func(w http.ResponseWriter, given bool)
}

// Fault is an injected answer: Status instead of the real one, to the
// next Times requests that match, before the stand-in handles them (the
// request is lost) or, with After, once it has (the answer is lost).
type Fault struct {
	Method string // "" for any
	// PathSuffix selects requests whose path ends so ("" for any).
	PathSuffix string
	Status     int
	After      bool
	Times      int
}

func (f *Fault) matches(r *http.Request) bool {
	return (f.Method == "" || f.Method == r.Method) && strings.HasSuffix(r.URL.Path, f.PathSuffix)
}

func newHost(t testing.TB, root string) *Host {
	t.Helper()
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return &Host{t: t, root: root, Token: hex.EncodeToString(b), verified: map[string]bool{}, users: map[string]int{}}
}

// start serves h's API through mux.
func (h *Host) start(mux http.Handler) {
	h.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, query := r.URL.EscapedPath(), r.URL.RawQuery // as sent, before any rewrite
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		token, how := h.auth(r)
		hdr := r.Header.Clone()
		for _, k := range []string{"Authorization", "Private-Token"} {
			if hdr.Get(k) != "" {
				hdr.Set(k, "(token)")
			}
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			h.mu.Lock()
			h.log = append(h.log, Request{Method: r.Method, Path: path, Query: query,
				Body: string(body), Status: rec.status, Auth: how, Header: hdr})
			h.mu.Unlock()
		}()
		h.mu.Lock()
		var f *Fault
		for i, x := range h.faults {
			if x.matches(r) {
				f = x
				if x.Times--; x.Times <= 0 {
					h.faults = slices.Delete(h.faults, i, i+1)
				}
				break
			}
		}
		h.mu.Unlock()
		if f != nil && !f.After {
			rec.status = f.Status
			badGateway(w, f.Status)
			return
		}
		if !h.accepts(token) {
			rec.status = http.StatusUnauthorized
			h.refuse(w, token != "")
			return
		}
		if f == nil {
			mux.ServeHTTP(rec, r)
			return
		}
		// The request is carried out, and its answer lost.
		mux.ServeHTTP(&recorder{ResponseWriter: discard{}, status: http.StatusOK}, r)
		rec.status = f.Status
		badGateway(w, f.Status)
	}))
	h.t.Cleanup(h.server.Close)
}

// accepts says whether a request's token is good.
func (h *Host) accepts(token string) bool {
	if token == "" {
		return false
	}
	if h.Accept != nil {
		return h.Accept(token)
	}
	return token == h.Token
}

// badGateway answers as a proxy in front of the host does: HTML.
func badGateway(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "<html><body><h1>"+http.StatusText(status)+"</h1></body></html>\n")
}

// recorder keeps the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// discard is a ResponseWriter for an answer that is lost.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// Fail makes the next n requests fail with status before the stand-in
// handles them (e.g. 502 twice: the client must retry).
func (h *Host) Fail(n, status int) { h.Inject(Fault{Status: status, Times: n}) }

// FailAfter makes the next n requests fail with status after the
// stand-in carried them out: the answer is lost, the effect is not (a
// retried create then meets its own first attempt).
func (h *Host) FailAfter(n, status int) { h.Inject(Fault{Status: status, Times: n, After: true}) }

// Inject adds a fault; faults are tried in the order added, and a
// request meets at most one.
func (h *Host) Inject(f Fault) {
	if f.Times <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, &f)
}

// Requests returns the requests answered so far.
func (h *Host) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

// PRs returns a snapshot of every request, open or not, in number order,
// each open one's HeadSHA read from its branch now.
func (h *Host) PRs() []PR {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]PR, 0, len(h.prs))
	for _, p := range h.prs {
		h.refresh(p)
		out = append(out, clonePR(p))
	}
	return out
}

// PR returns one request's snapshot, and fails the test if there is none.
func (h *Host) PR(number int) PR {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.find(number)
	if p == nil {
		h.t.Fatalf("testforge: no request #%d", number)
	}
	h.refresh(p)
	return clonePR(p)
}

func clonePR(p *PR) PR {
	c := *p
	c.Labels = slices.Clone(p.Labels)
	c.Reviewers = slices.Clone(p.Reviewers)
	if p.AutoMerge != nil {
		a := *p.AutoMerge
		c.AutoMerge = &a
	}
	return c
}

// Merge merges an open request now with method, as a person pressing the
// button would, with the host's default message, and returns the merge
// commit; it fails the test if the request cannot be merged.
func (h *Host) Merge(number int, method string) string {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.find(number)
	if p == nil || p.State != "open" {
		h.t.Fatalf("testforge: no open request #%d to merge", number)
	}
	if err := h.merge(p, AutoMerge{Method: method}); err != nil {
		h.t.Fatalf("testforge: merging #%d: %v", number, err)
	}
	return p.MergeCommit
}

// Close closes an open request without merging it.
func (h *Host) Close(number int) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.find(number)
	if p == nil || p.State != "open" {
		h.t.Fatalf("testforge: no open request #%d to close", number)
	}
	h.refresh(p)
	p.State, p.AutoMerge = "closed", nil
}

// PassChecks passes the required checks of a request's current head; if
// auto-merge is on, the request merges now (or, on a conflict, the host
// turns auto-merge off and the request stays open).
func (h *Host) PassChecks(number int) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.find(number)
	if p == nil {
		h.t.Fatalf("testforge: no request #%d", number)
	}
	h.refresh(p)
	p.ChecksPassed = p.HeadSHA
	h.tryAutoMerge(p)
}

// tryAutoMerge merges p if auto-merge is on and nothing holds it back.
// The caller holds h.mu.
func (h *Host) tryAutoMerge(p *PR) {
	if p.AutoMerge == nil || p.State != "open" || !h.checksOK(p) {
		return
	}
	if err := h.merge(p, *p.AutoMerge); err != nil {
		p.AutoMerge = nil // both hosts turn it off when the merge fails
	}
}

// checksOK says whether p's required checks, if any, passed on its head.
func (h *Host) checksOK(p *PR) bool {
	return !h.RequireChecks || (p.ChecksPassed != "" && p.ChecksPassed == p.HeadSHA)
}

// find returns request number, or nil. The caller holds h.mu.
func (h *Host) find(number int) *PR {
	if number < 1 || number > len(h.prs) {
		return nil
	}
	return h.prs[number-1]
}

// add files a new request under the next number. Numbers count up across
// the host's repositories, so a number alone names a request in the test
// hooks (the real hosts count per repository). The caller holds h.mu.
func (h *Host) add(p *PR) *PR {
	p.Number = len(h.prs) + 1
	h.prs = append(h.prs, p)
	return p
}

// refresh reads an open request's head from its branch. The caller holds
// h.mu.
func (h *Host) refresh(p *PR) {
	if p.State != "open" {
		return
	}
	if dir, ok := repoDir(h.root, p.Repo); ok {
		if tip, err := (bare{dir: dir}).tip(p.Head); err == nil && tip != "" {
			p.HeadSHA = tip
		}
	}
}

// repo returns the bare repository for path, or false.
func (h *Host) repo(path string) (bare, bool) {
	dir, ok := repoDir(h.root, path)
	return bare{dir: dir, sign: h.SigningKey}, ok
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// bearer reads "Authorization: Bearer X" (or GitHub's older "token X").
func bearer(r *http.Request) (string, bool) {
	a := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "bearer ", "token "} {
		if t, ok := strings.CutPrefix(a, p); ok {
			return t, true
		}
	}
	return "", false
}
