package forge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// GitHubCommits is what GitHub's Forge offers besides pull requests:
// commits made through the git data API, which GitHub signs itself when
// they name no author and no committer (with a GitHub App's installation
// token, or GITHUB_TOKEN in Actions), so they show as verified on a
// branch protected by "require signed commits".
//
// The compare-and-swap is fast-forward only: UpdateRef moves a branch to
// a commit only if the commit descends from the branch's tip (force is
// never set). That loses no one's update: if another writer moved the
// branch between our read of the tip and our UpdateRef, our commit's
// parent is no longer the tip, the update is not a fast-forward, and
// GitHub refuses it (ErrNotFastForward): read the tip again, make the
// commit again, retry. What it cannot do is check an exact old value: a
// commit built on an older tip that the branch has since moved past by a
// fast-forward is refused, and a commit that happens to descend from the
// new tip is accepted, so two writers that both build on the tip they
// read are serialised, and nothing subtler is promised.
type GitHubCommits interface {
	// Ref returns the commit a branch points at (ErrNotFound if none).
	Ref(ctx context.Context, branch string) (string, error)
	// CreateCommit makes a commit whose one parent is parent, with
	// parent's tree changed by files (path to content; nil deletes the
	// path), as regular files (mode 100644), and returns its hash. It
	// sends no author or committer, so GitHub signs it. It moves no
	// branch. When files change nothing it makes no commit and returns
	// parent itself.
	CreateCommit(ctx context.Context, parent string, files map[string][]byte, message string) (string, error)
	// CreateRef creates a branch at sha (ErrAlreadyExists if it exists).
	CreateRef(ctx context.Context, branch, sha string) error
	// UpdateRef moves an existing branch to sha if that is a
	// fast-forward, and fails with ErrNotFastForward if it is not.
	UpdateRef(ctx context.Context, branch, sha string) error
}

// GitHub returns the Forge of repository owner/repo on GitHub, speaking
// REST v3 at baseURL ("" for https://api.github.com; GitHub Enterprise
// Server is https://HOST/api/v3) and GraphQL for auto-merge (see
// WithGraphQLURL). The token is sent as a bearer token; a fine-grained
// token or GitHub App needs pull requests, contents (for GitHubCommits)
// and, for labels, issues: read and write. The Forge also implements
// GitHubCommits.
func GitHub(baseURL, owner, repo, token string, opts ...Option) Forge {
	g := &github{owner: owner, repo: repo}
	g.c = client{opts: newOptions(opts), token: token, parse: parseGitHubError}
	g.c.auth = func(h http.Header) {
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		h.Set("Accept", "application/vnd.github+json")
		h.Set("X-GitHub-Api-Version", "2022-11-28")
	}
	g.base, g.err = trimBase(baseURL, "https://api.github.com")
	if g.err == nil && (owner == "" || repo == "" || strings.Contains(owner, "/") || strings.Contains(repo, "/")) {
		g.err = fmt.Errorf("GitHub repository %q/%q: want an owner and a name", owner, repo)
	}
	g.graphql = g.c.opts.graphqlURL
	if g.graphql == "" {
		if b, ok := strings.CutSuffix(g.base, "/api/v3"); ok {
			g.graphql = b + "/api/graphql"
		} else {
			g.graphql = g.base + "/graphql"
		}
	}
	return g
}

type github struct {
	c             client
	base, graphql string
	owner, repo   string
	err           error // a bad base URL or name: every call returns it
}

var _ GitHubCommits = (*github)(nil)

// url is the REST URL of a path under the repository, its parts escaped.
func (g *github) url(parts ...string) string {
	return g.base + "/repos/" + url.PathEscape(g.owner) + "/" + url.PathEscape(g.repo) + "/" + strings.Join(parts, "/")
}

// ghPull is the part of GitHub's pull request object ferry reads.
type ghPull struct {
	Number         int    `json:"number"`
	NodeID         string `json:"node_id"`
	HTMLURL        string `json:"html_url"`
	State          string `json:"state"` // open, closed
	Merged         bool   `json:"merged"`
	MergedAt       string `json:"merged_at"` // the list omits merged; this it has
	MergeCommitSHA string `json:"merge_commit_sha"`
	Head           struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
	AutoMerge json.RawMessage `json:"auto_merge"` // null or an object
}

func (p *ghPull) pr() *PR {
	out := &PR{
		Number: p.Number, URL: p.HTMLURL, State: StateOpen,
		Head: p.Head.Ref, Base: p.Base.Ref, HeadSHA: p.Head.SHA, ID: p.NodeID,
		AutoMerge: len(p.AutoMerge) > 0 && string(p.AutoMerge) != "null",
	}
	switch {
	case p.Merged || p.MergedAt != "":
		out.State = StateMerged
		// Before the merge this names a test merge commit GitHub keeps
		// for checks, not a commit on the base: take it only after.
		out.MergeCommit = p.MergeCommitSHA
	case p.State == "closed":
		out.State = StateClosed
	}
	return out
}

func (g *github) Find(ctx context.Context, head, base string) (*PR, error) {
	if g.err != nil {
		return nil, g.err
	}
	q := url.Values{"state": {"open"}, "head": {g.owner + ":" + head}, "base": {base}}
	var list []ghPull
	if _, err := g.c.do(ctx, http.MethodGet, g.url("pulls")+"?"+q.Encode(), nil, &list); err != nil {
		return nil, fmt.Errorf("finding the pull request from %s into %s: %w", head, base, err)
	}
	for _, p := range list {
		if p.Head.Ref == head && p.Base.Ref == base && p.State == "open" {
			return p.pr(), nil
		}
	}
	return nil, nil
}

// Open opens the request, then labels it and requests reviews: if one of
// those fails, the request is open all the same, and Open returns it with
// the error.
func (g *github) Open(ctx context.Context, r Request) (*PR, error) {
	if g.err != nil {
		return nil, g.err
	}
	in := struct {
		Title string `json:"title"`
		Head  string `json:"head"`
		Base  string `json:"base"`
		Body  string `json:"body"`
		Draft bool   `json:"draft,omitempty"`
	}{r.Title, r.Head, r.Base, r.Body, r.Draft}
	var p ghPull
	oc, err := g.c.do(ctx, http.MethodPost, g.url("pulls"), in, &p)
	if err != nil {
		markGitHub(err, http.StatusUnprocessableEntity, "already exists", ErrAlreadyExists)
		if oc.ambiguous && errors.Is(err, ErrAlreadyExists) {
			// An attempt that failed with a 5xx was carried out after
			// all: the request that exists is ours.
			if pr, ferr := g.Find(ctx, r.Head, r.Base); ferr == nil && pr != nil {
				return pr, g.decorate(ctx, pr.Number, r)
			}
		}
		return nil, fmt.Errorf("opening a pull request from %s into %s: %w", r.Head, r.Base, err)
	}
	pr := p.pr()
	return pr, g.decorate(ctx, pr.Number, r)
}

// Update rewrites the title and body and adds labels and reviewers. A
// draft stays a draft: GitHub marks one ready only through GraphQL.
func (g *github) Update(ctx context.Context, number int, r Request) (*PR, error) {
	if g.err != nil {
		return nil, g.err
	}
	in := struct {
		Title string `json:"title,omitempty"`
		Body  string `json:"body"`
	}{r.Title, r.Body}
	var p ghPull
	if _, err := g.c.do(ctx, http.MethodPatch, g.url("pulls", strconv.Itoa(number)), in, &p); err != nil {
		return nil, fmt.Errorf("updating pull request #%d: %w", number, err)
	}
	pr := p.pr()
	return pr, g.decorate(ctx, number, r)
}

// Close closes the pull request: PATCH state=closed.
func (g *github) Close(ctx context.Context, number int) error {
	if g.err != nil {
		return g.err
	}
	in := map[string]string{"state": "closed"}
	if _, err := g.c.do(ctx, http.MethodPatch, g.url("pulls", strconv.Itoa(number)), in, nil); err != nil {
		return fmt.Errorf("closing pull request #%d: %w", number, err)
	}
	return nil
}

// decorate adds r's labels and reviewers; both calls add, so repeating
// them is harmless. A reviewer "org/team" is a team.
func (g *github) decorate(ctx context.Context, number int, r Request) error {
	n := strconv.Itoa(number)
	if len(r.Labels) > 0 {
		in := map[string][]string{"labels": r.Labels}
		if _, err := g.c.do(ctx, http.MethodPost, g.url("issues", n, "labels"), in, nil); err != nil {
			return fmt.Errorf("labelling pull request #%d: %w", number, err)
		}
	}
	if len(r.Reviewers) > 0 {
		in := struct {
			Reviewers []string `json:"reviewers,omitempty"`
			Teams     []string `json:"team_reviewers,omitempty"`
		}{}
		for _, who := range r.Reviewers {
			if _, team, ok := strings.Cut(who, "/"); ok {
				in.Teams = append(in.Teams, team)
			} else {
				in.Reviewers = append(in.Reviewers, who)
			}
		}
		if _, err := g.c.do(ctx, http.MethodPost, g.url("pulls", n, "requested_reviewers"), in, nil); err != nil {
			return fmt.Errorf("requesting reviews on pull request #%d: %w", number, err)
		}
	}
	return nil
}

func (g *github) Get(ctx context.Context, number int) (*PR, error) {
	if g.err != nil {
		return nil, g.err
	}
	var p ghPull
	if _, err := g.c.do(ctx, http.MethodGet, g.url("pulls", strconv.Itoa(number)), nil, &p); err != nil {
		return nil, fmt.Errorf("reading pull request #%d: %w", number, err)
	}
	return p.pr(), nil
}

// AutoMerge enables auto-merge through GraphQL's
// enablePullRequestAutoMerge, pinned to the head ferry saw (pr.HeadSHA).
// GitHub refuses to enable it on a request it could merge right now
// ("Pull request is in clean status", or "unstable" when only optional
// checks are pending or failing): there is nothing to wait for, so the
// request is merged at once through REST with the same method and message,
// and the branch's protection still decides whether it may be.
func (g *github) AutoMerge(ctx context.Context, pr *PR, method MergeMethod, title, body string) error {
	if g.err != nil {
		return g.err
	}
	gm, ok := map[MergeMethod]string{MergeSquash: "SQUASH", MergeMerge: "MERGE", MergeRebase: "REBASE"}[method]
	if !ok {
		return fmt.Errorf("merge method %q: want squash, merge or rebase", method)
	}
	if pr.ID == "" || pr.HeadSHA == "" {
		got, err := g.Get(ctx, pr.Number)
		if err != nil {
			return err
		}
		pr = got
	}
	input := map[string]any{"pullRequestId": pr.ID, "mergeMethod": gm, "expectedHeadOid": pr.HeadSHA}
	if method != MergeRebase { // a rebase keeps the head's own messages
		input["commitHeadline"] = title
		input["commitBody"] = body
	}
	req := map[string]any{
		"query": `mutation($input: EnablePullRequestAutoMergeInput!) {
  enablePullRequestAutoMerge(input: $input) { pullRequest { number } }
}`,
		"variables": map[string]any{"input": input},
	}
	var resp struct {
		Errors []struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if _, err := g.c.do(ctx, http.MethodPost, g.graphql, req, &resp); err != nil {
		return fmt.Errorf("enabling auto-merge on pull request #%d: %w", pr.Number, err)
	}
	if len(resp.Errors) == 0 {
		return nil
	}
	e := &APIError{Method: http.MethodPost, URL: redactURL(g.graphql), Status: http.StatusOK,
		Type: resp.Errors[0].Type, Message: resp.Errors[0].Message}
	for _, x := range resp.Errors[1:] {
		e.Errors = append(e.Errors, x.Message)
	}
	if !strings.Contains(e.Message, "is in clean status") && !strings.Contains(e.Message, "is in unstable status") {
		return fmt.Errorf("enabling auto-merge on pull request #%d: %w", pr.Number, g.c.scrub(e))
	}
	in := map[string]string{"merge_method": string(method), "sha": pr.HeadSHA}
	if method != MergeRebase {
		in["commit_title"], in["commit_message"] = title, body
	}
	if oc, err := g.c.do(ctx, http.MethodPut, g.url("pulls", strconv.Itoa(pr.Number), "merge"), in, nil); err != nil {
		if oc.ambiguous { // a lost answer, and the retry found it merged?
			if now, gerr := g.Get(ctx, pr.Number); gerr == nil && now.State == StateMerged {
				return nil
			}
		}
		return fmt.Errorf("merging pull request #%d (GitHub: %s, so nothing to wait for): %w", pr.Number, e.Message, err)
	}
	return nil
}

func (g *github) Ref(ctx context.Context, branch string) (string, error) {
	if g.err != nil {
		return "", g.err
	}
	var ref struct {
		Object struct {
			SHA string `json:"sha"`
		} `json:"object"`
	}
	if _, err := g.c.do(ctx, http.MethodGet, g.url("git/ref/heads", segments(branch)), nil, &ref); err != nil {
		return "", fmt.Errorf("reading branch %s: %w", branch, err)
	}
	return ref.Object.SHA, nil
}

func (g *github) CreateCommit(ctx context.Context, parent string, files map[string][]byte, message string) (string, error) {
	if g.err != nil {
		return "", g.err
	}
	if len(files) == 0 {
		return parent, nil
	}
	var base struct {
		Tree struct {
			SHA string `json:"sha"`
		} `json:"tree"`
	}
	if _, err := g.c.do(ctx, http.MethodGet, g.url("git/commits", url.PathEscape(parent)), nil, &base); err != nil {
		return "", fmt.Errorf("reading commit %s: %w", parent, err)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	entries := make([]map[string]any, 0, len(files))
	for _, p := range paths {
		e := map[string]any{"path": p, "mode": "100644", "type": "blob"}
		switch c := files[p]; {
		case c == nil:
			e["sha"] = nil // null deletes the path from base_tree
		case utf8.Valid(c) && !bytes.ContainsRune(c, 0):
			e["content"] = string(c) // GitHub writes the blob: one request fewer
		default:
			var blob struct {
				SHA string `json:"sha"`
			}
			in := map[string]string{"content": base64.StdEncoding.EncodeToString(c), "encoding": "base64"}
			if _, err := g.c.do(ctx, http.MethodPost, g.url("git/blobs"), in, &blob); err != nil {
				return "", fmt.Errorf("writing %s: %w", p, err)
			}
			e["sha"] = blob.SHA
		}
		entries = append(entries, e)
	}
	var tree struct {
		SHA string `json:"sha"`
	}
	in := map[string]any{"base_tree": base.Tree.SHA, "tree": entries}
	if _, err := g.c.do(ctx, http.MethodPost, g.url("git/trees"), in, &tree); err != nil {
		return "", fmt.Errorf("writing the tree on %s: %w", parent, err)
	}
	if tree.SHA == base.Tree.SHA {
		return parent, nil
	}
	var commit struct {
		SHA string `json:"sha"`
	}
	// No author, no committer: GitHub fills them in and signs the commit.
	cin := map[string]any{"message": message, "tree": tree.SHA, "parents": []string{parent}}
	if _, err := g.c.do(ctx, http.MethodPost, g.url("git/commits"), cin, &commit); err != nil {
		return "", fmt.Errorf("writing the commit on %s: %w", parent, err)
	}
	return commit.SHA, nil
}

func (g *github) CreateRef(ctx context.Context, branch, sha string) error {
	if g.err != nil {
		return g.err
	}
	in := map[string]string{"ref": "refs/heads/" + branch, "sha": sha}
	if oc, err := g.c.do(ctx, http.MethodPost, g.url("git/refs"), in, nil); err != nil {
		markGitHub(err, http.StatusUnprocessableEntity, "already exists", ErrAlreadyExists)
		if oc.ambiguous && errors.Is(err, ErrAlreadyExists) { // our own lost answer?
			if at, rerr := g.Ref(ctx, branch); rerr == nil && at == sha {
				return nil
			}
		}
		return fmt.Errorf("creating branch %s at %s: %w", branch, sha, err)
	}
	return nil
}

func (g *github) UpdateRef(ctx context.Context, branch, sha string) error {
	if g.err != nil {
		return g.err
	}
	in := map[string]any{"sha": sha, "force": false}
	if _, err := g.c.do(ctx, http.MethodPatch, g.url("git/refs/heads", segments(branch)), in, nil); err != nil {
		markGitHub(err, http.StatusUnprocessableEntity, "not a fast forward", ErrNotFastForward)
		markGitHub(err, http.StatusUnprocessableEntity, "does not exist", ErrNotFound)
		return fmt.Errorf("moving branch %s to %s: %w", branch, sha, err)
	}
	return nil
}

// markGitHub makes an *APIError in err match sentinel when its status is
// status and its message or a detail contains text.
func markGitHub(err error, status int, text string, sentinel error) {
	var e *APIError
	if !errors.As(err, &e) || e.Status != status || e.is != nil {
		return
	}
	for _, m := range append([]string{e.Message}, e.Errors...) {
		if strings.Contains(strings.ToLower(m), text) {
			e.is = sentinel
			return
		}
	}
}

// parseGitHubError reads {"message": ..., "errors": [...]}, where each
// error is a string or an object with a message or a field and a code.
func parseGitHubError(e *APIError, body []byte) {
	var v struct {
		Message json.RawMessage   `json:"message"`
		Errors  []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &v) != nil {
		e.Message = snippet(body)
		return
	}
	e.Message, e.Errors = messageText(v.Message)
	for _, raw := range v.Errors {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			e.Errors = append(e.Errors, s)
			continue
		}
		var o struct {
			Message, Resource, Field, Code string
		}
		if json.Unmarshal(raw, &o) != nil {
			continue
		}
		switch {
		case o.Message != "":
			e.Errors = append(e.Errors, o.Message)
		case o.Field != "":
			e.Errors = append(e.Errors, o.Field+" "+o.Code)
		case o.Code != "":
			e.Errors = append(e.Errors, o.Code)
		}
	}
}

// snippet is the start of a body that is not JSON (a proxy's HTML page),
// on one line.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
