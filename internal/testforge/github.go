package testforge

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// GitHub is a stand-in for GitHub's REST API v3 and the one GraphQL
// mutation ferry sends (enablePullRequestAutoMerge), over the bare
// repositories under a root.
//
// Like GitHub, it refuses to enable auto-merge on a request it could
// merge right now ("Pull request Pull request is in clean status"): with
// RequireChecks unset every request without conflicts is clean, so a
// client must merge it directly (PUT .../pulls/N/merge). With
// RequireChecks set, auto-merge waits for PassChecks.
type GitHub struct {
	*Host
	// EnterpriseURL is the same API as GitHub Enterprise Server lays it
	// out: REST under /api/v3, GraphQL at /api/graphql.
	EnterpriseURL string
}

const ghDocs = "https://docs.github.com/rest"

// NewGitHub serves a GitHub stand-in for the repositories under root
// until the test ends.
func NewGitHub(t testing.TB, root string) *GitHub {
	t.Helper()
	g := &GitHub{Host: newHost(t, root)}
	g.merge = g.doMerge
	g.auth = func(r *http.Request) (string, string) {
		if tok, ok := bearer(r); ok {
			return tok, "bearer"
		}
		return "", ""
	}
	g.refuse = func(w http.ResponseWriter, given bool) {
		msg := "Requires authentication"
		if given {
			msg = "Bad credentials"
		}
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": msg, "documentation_url": ghDocs, "status": "401"})
	}
	mux := http.NewServeMux()
	repo := "/repos/{owner}/{repo}/"
	for pattern, handle := range map[string]http.HandlerFunc{
		"GET " + repo + "pulls":                          g.listPulls,
		"POST " + repo + "pulls":                         g.createPull,
		"GET " + repo + "pulls/{n}":                      g.getPull,
		"PATCH " + repo + "pulls/{n}":                    g.updatePull,
		"PUT " + repo + "pulls/{n}/merge":                g.mergePull,
		"POST " + repo + "issues/{n}/labels":             g.addLabels,
		"POST " + repo + "pulls/{n}/requested_reviewers": g.addReviewers,
		"POST " + repo + "git/blobs":                     g.createBlob,
		"POST " + repo + "git/trees":                     g.createTree,
		"GET " + repo + "git/commits/{sha}":              g.getCommit,
		"POST " + repo + "git/commits":                   g.createCommit,
		"GET " + repo + "git/ref/{ref...}":               g.getRef,
		"PATCH " + repo + "git/refs/{ref...}":            g.updateRef,
		"POST " + repo + "git/refs":                      g.createRef,
		"POST /graphql":                                  g.graphql,
		"/":                                              func(w http.ResponseWriter, _ *http.Request) { ghError(w, http.StatusNotFound, "Not Found") },
	} {
		mux.HandleFunc(pattern, handle)
	}
	// GitHub Enterprise Server: the same API under /api/v3, GraphQL at
	// /api/graphql.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/api/graphql":
			r.URL.Path, r.URL.RawPath = "/graphql", ""
		case strings.HasPrefix(p, "/api/v3/"):
			r.URL.Path = strings.TrimPrefix(p, "/api/v3")
			r.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/api/v3")
		}
		mux.ServeHTTP(w, r)
	})
	g.start(h)
	g.URL = g.server.URL
	g.EnterpriseURL = g.server.URL + "/api/v3"
	return g
}

// Verified says whether the git data API made commit sha and "signed" it,
// as GitHub does for a commit whose request named no author and no
// committer.
func (g *GitHub) Verified(sha string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.verified[sha]
}

func ghError(w http.ResponseWriter, status int, msg string, errs ...any) {
	v := map[string]any{"message": msg, "documentation_url": ghDocs}
	if len(errs) > 0 {
		v["errors"] = errs
	}
	writeJSON(w, status, v)
}

// invalid is GitHub's 422 for a request whose content it refuses.
func invalid(w http.ResponseWriter, resource, field, code, msg string) {
	e := map[string]string{"resource": resource, "code": code}
	if field != "" {
		e["field"] = field
	}
	if msg != "" {
		e["message"] = msg
	}
	ghError(w, http.StatusUnprocessableEntity, "Validation Failed", e)
}

// ghRepo resolves {owner}/{repo}, answering 404 if there is none.
func (g *GitHub) ghRepo(w http.ResponseWriter, r *http.Request) (string, bare, bool) {
	path := r.PathValue("owner") + "/" + r.PathValue("repo")
	b, ok := g.repo(path)
	if !ok {
		ghError(w, http.StatusNotFound, "Not Found")
	}
	return path, b, ok
}

// pull resolves {owner}/{repo} and {n}, answering 404 if either is
// missing. The caller holds g.mu.
func (g *GitHub) pull(w http.ResponseWriter, r *http.Request) (*PR, bool) {
	path, _, ok := g.ghRepo(w, r)
	if !ok {
		return nil, false
	}
	n, _ := strconv.Atoi(r.PathValue("n"))
	p := g.find(n)
	if p == nil || p.Repo != path {
		ghError(w, http.StatusNotFound, "Not Found")
		return nil, false
	}
	g.refresh(p)
	return p, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		ghError(w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

// pullJSON is GitHub's pull request object; full adds what only a single
// pull request's GET has (merged, mergeable).
func (g *GitHub) pullJSON(p *PR, full bool) map[string]any {
	owner, name, _ := strings.Cut(p.Repo, "/")
	b, _ := g.repo(p.Repo)
	baseSHA, _ := b.tip(p.Base)
	state := "open"
	if p.State != "open" {
		state = "closed"
	}
	labels := []map[string]string{}
	for _, l := range p.Labels {
		labels = append(labels, map[string]string{"name": l})
	}
	users, teams := []map[string]string{}, []map[string]string{}
	for _, r := range p.Reviewers {
		if t, ok := strings.CutPrefix(r, "team:"); ok {
			teams = append(teams, map[string]string{"slug": t})
		} else {
			users = append(users, map[string]string{"login": r})
		}
	}
	repoJSON := map[string]any{"name": name, "full_name": p.Repo, "owner": map[string]string{"login": owner}}
	v := map[string]any{
		"url":                 g.URL + "/repos/" + p.Repo + "/pulls/" + strconv.Itoa(p.Number),
		"id":                  1000 + p.Number,
		"node_id":             p.NodeID,
		"html_url":            g.URL + "/" + p.Repo + "/pull/" + strconv.Itoa(p.Number),
		"number":              p.Number,
		"state":               state,
		"title":               p.Title,
		"body":                p.Body,
		"draft":               p.Draft,
		"labels":              labels,
		"requested_reviewers": users,
		"requested_teams":     teams,
		"merged_at":           nil,
		"merge_commit_sha":    nil,
		"auto_merge":          nil,
		"head":                map[string]any{"ref": p.Head, "sha": p.HeadSHA, "label": owner + ":" + p.Head, "repo": repoJSON},
		"base":                map[string]any{"ref": p.Base, "sha": baseSHA, "label": owner + ":" + p.Base, "repo": repoJSON},
	}
	if p.State == "merged" {
		v["merged_at"] = "2026-01-02T03:04:05Z"
		v["merge_commit_sha"] = p.MergeCommit
	}
	if a := p.AutoMerge; a != nil {
		v["auto_merge"] = map[string]any{"enabled_by": map[string]string{"login": appAuthor.name},
			"merge_method": a.Method, "commit_title": a.Title, "commit_message": a.Body}
	}
	if full {
		v["merged"] = p.State == "merged"
		if p.State == "open" {
			_, err := b.mergeTree(baseSHA, p.HeadSHA)
			v["mergeable"] = err == nil
			switch {
			case err != nil:
				v["mergeable_state"] = "dirty"
			case !g.checksOK(p):
				v["mergeable_state"] = "blocked"
			default:
				v["mergeable_state"] = "clean"
			}
		} else {
			v["mergeable"] = nil
		}
	}
	return v
}

func (g *GitHub) listPulls(w http.ResponseWriter, r *http.Request) {
	path, _, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []map[string]any{}
	for i := len(g.prs) - 1; i >= 0; i-- { // newest first, as GitHub sorts
		p := g.prs[i]
		if p.Repo != path {
			continue
		}
		g.refresh(p)
		open := p.State == "open"
		if (state == "open" && !open) || (state == "closed" && open) {
			continue
		}
		if h := q.Get("head"); h != "" {
			owner, branch, ok := strings.Cut(h, ":")
			if !ok || branch != p.Head || owner != strings.Split(path, "/")[0] {
				continue
			}
		}
		if b := q.Get("base"); b != "" && b != p.Base {
			continue
		}
		out = append(out, g.pullJSON(p, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *GitHub) createPull(w http.ResponseWriter, r *http.Request) {
	path, b, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	var in struct {
		Title, Head, Base, Body string
		Draft                   bool
	}
	if !decode(w, r, &in) {
		return
	}
	owner := strings.Split(path, "/")[0]
	head := in.Head
	if o, br, ok := strings.Cut(head, ":"); ok {
		if o != owner {
			invalid(w, "PullRequest", "head", "invalid", "") // a fork: not modelled
			return
		}
		head = br
	}
	for _, f := range [][2]string{{"title", in.Title}, {"head", head}, {"base", in.Base}} {
		if f[1] == "" {
			invalid(w, "PullRequest", f[0], "missing_field", "")
			return
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	headSHA, _ := b.tip(head)
	baseSHA, _ := b.tip(in.Base)
	switch {
	case headSHA == "":
		invalid(w, "PullRequest", "head", "invalid", "")
		return
	case baseSHA == "":
		invalid(w, "PullRequest", "base", "invalid", "")
		return
	}
	if behind, _ := b.isAncestor(headSHA, baseSHA); behind {
		invalid(w, "PullRequest", "", "custom", "No commits between "+in.Base+" and "+head)
		return
	}
	for _, p := range g.prs {
		if p.Repo == path && p.State == "open" && p.Head == head && p.Base == in.Base {
			invalid(w, "PullRequest", "", "custom", "A pull request already exists for "+owner+":"+head+".")
			return
		}
	}
	p := g.add(&PR{Repo: path, Head: head, Base: in.Base, Title: in.Title, Body: in.Body, Draft: in.Draft,
		State: "open", HeadSHA: headSHA})
	p.NodeID = "PR_kwDOstandin" + base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(p.Number)))
	writeJSON(w, http.StatusCreated, g.pullJSON(p, true))
}

func (g *GitHub) getPull(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.pull(w, r); ok {
		writeJSON(w, http.StatusOK, g.pullJSON(p, true))
	}
}

func (g *GitHub) updatePull(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		State *string `json:"state"`
	}
	if !decode(w, r, &in) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.pull(w, r)
	if !ok {
		return
	}
	if in.Title != nil {
		if *in.Title == "" {
			invalid(w, "PullRequest", "title", "missing_field", "")
			return
		}
		p.Title = *in.Title
	}
	if in.Body != nil {
		p.Body = *in.Body
	}
	if in.State != nil && *in.State == "closed" && p.State == "open" {
		p.State, p.AutoMerge = "closed", nil
	}
	writeJSON(w, http.StatusOK, g.pullJSON(p, true))
}

func (g *GitHub) addLabels(w http.ResponseWriter, r *http.Request) {
	var in struct{ Labels []string }
	if !decode(w, r, &in) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.pull(w, r)
	if !ok {
		return
	}
	for _, l := range in.Labels {
		if !slices.Contains(p.Labels, l) {
			p.Labels = append(p.Labels, l)
		}
	}
	out := []map[string]string{}
	for _, l := range p.Labels {
		out = append(out, map[string]string{"name": l})
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *GitHub) addReviewers(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reviewers []string `json:"reviewers"`
		Teams     []string `json:"team_reviewers"`
	}
	if !decode(w, r, &in) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.pull(w, r)
	if !ok {
		return
	}
	if slices.Contains(in.Reviewers, appAuthor.name) {
		ghError(w, http.StatusUnprocessableEntity, "Review cannot be requested from pull request author.")
		return
	}
	add := slices.Clone(in.Reviewers)
	for _, t := range in.Teams {
		add = append(add, "team:"+t)
	}
	for _, who := range add {
		if !slices.Contains(p.Reviewers, who) {
			p.Reviewers = append(p.Reviewers, who)
		}
	}
	writeJSON(w, http.StatusCreated, g.pullJSON(p, false))
}

// mergePull is PUT .../pulls/N/merge: merge now, or say why not.
func (g *GitHub) mergePull(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title  *string `json:"commit_title"`
		Body   *string `json:"commit_message"`
		SHA    string  `json:"sha"`
		Method string  `json:"merge_method"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Method == "" {
		in.Method = "merge"
	}
	if !slices.Contains([]string{"merge", "squash", "rebase"}, in.Method) {
		invalid(w, "PullRequest", "merge_method", "invalid", "")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.pull(w, r)
	if !ok {
		return
	}
	switch {
	case p.State != "open":
		ghError(w, http.StatusMethodNotAllowed, "Pull Request is not mergeable")
		return
	case in.SHA != "" && in.SHA != p.HeadSHA:
		ghError(w, http.StatusConflict, "Head branch was modified. Review and try the merge again.")
		return
	case !g.checksOK(p):
		ghError(w, http.StatusMethodNotAllowed, `Required status check "ci" is expected.`)
		return
	}
	a := AutoMerge{Method: in.Method}
	if in.Title != nil {
		a.Title = *in.Title
	}
	if in.Body != nil {
		a.Body = *in.Body
	}
	if err := g.doMerge(p, a); err != nil {
		if errors.Is(err, errConflict) {
			ghError(w, http.StatusMethodNotAllowed, "Pull Request is not mergeable")
			return
		}
		ghError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sha": p.MergeCommit, "merged": true, "message": "Pull Request successfully merged"})
}

// doMerge merges p as GitHub does: a.Title "" takes GitHub's default
// message, else the message is a.Title and a.Body. The caller holds g.mu.
func (g *GitHub) doMerge(p *PR, a AutoMerge) error {
	b, ok := g.repo(p.Repo)
	if !ok {
		return errNoBranch
	}
	g.refresh(p)
	msg := func(defTitle, defBody string) string {
		t, bd := a.Title, a.Body
		if t == "" {
			t, bd = defTitle, defBody
		}
		if bd == "" {
			return t + "\n"
		}
		return t + "\n\n" + bd + "\n"
	}
	owner := strings.Split(p.Repo, "/")[0]
	var build func(old, head string) (merged, error)
	switch a.Method {
	case "squash":
		m := msg(fmt.Sprintf("%s (#%d)", p.Title, p.Number), p.Body)
		build = func(old, head string) (merged, error) {
			c, err := b.squashOnto(old, head, m, githubCommitter)
			return merged{tip: c, merge: c}, err
		}
	case "merge":
		m := msg(fmt.Sprintf("Merge pull request #%d from %s/%s", p.Number, owner, p.Head), p.Title)
		build = func(old, head string) (merged, error) {
			c, err := b.mergeCommit(old, head, m, appAuthor, githubCommitter)
			return merged{tip: c, merge: c}, err
		}
	case "rebase":
		build = func(old, head string) (merged, error) {
			c, err := b.rebaseOnto(old, head, githubCommitter)
			return merged{tip: c, merge: c}, err
		}
	default:
		return fmt.Errorf("merge method %q", a.Method)
	}
	m, err := b.mergeInto(p.Base, p.Head, p.HeadSHA, build)
	if err != nil {
		return err
	}
	p.State, p.MergeCommit, p.AutoMerge = "merged", m.merge, nil
	return nil
}

// graphql answers the one mutation ferry sends. Like GitHub it answers
// 200 with "errors" for anything it refuses.
func (g *GitHub) graphql(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Query     string
		Variables struct {
			Input struct {
				PullRequestID   string  `json:"pullRequestId"`
				MergeMethod     string  `json:"mergeMethod"`
				CommitHeadline  *string `json:"commitHeadline"`
				CommitBody      *string `json:"commitBody"`
				ExpectedHeadOid string  `json:"expectedHeadOid"`
			} `json:"input"`
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return
	}
	fail := func(typ, msg string) {
		e := map[string]any{"message": msg, "path": []string{"enablePullRequestAutoMerge"}}
		if typ != "" {
			e["type"] = typ
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": nil}, "errors": []any{e}})
	}
	if !strings.Contains(in.Query, "enablePullRequestAutoMerge(input: $input)") {
		fail("", "testforge: only enablePullRequestAutoMerge(input: $input) is served")
		return
	}
	input := in.Variables.Input
	method, ok := map[string]string{"SQUASH": "squash", "MERGE": "merge", "REBASE": "rebase"}[input.MergeMethod]
	if !ok {
		fail("", fmt.Sprintf("Variable $input of type EnablePullRequestAutoMergeInput! was provided invalid value for mergeMethod (Expected %q to be one of: MERGE, SQUASH, REBASE)", input.MergeMethod))
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var p *PR
	for _, x := range g.prs {
		if x.NodeID == input.PullRequestID && x.NodeID != "" {
			p = x
		}
	}
	if p == nil {
		fail("NOT_FOUND", fmt.Sprintf("Could not resolve to a node with the global id of '%s'", input.PullRequestID))
		return
	}
	g.refresh(p)
	b, _ := g.repo(p.Repo)
	baseSHA, _ := b.tip(p.Base)
	_, conflict := b.mergeTree(baseSHA, p.HeadSHA)
	switch {
	case p.State != "open":
		fail("UNPROCESSABLE", "Pull request Pull request is closed")
		return
	case input.ExpectedHeadOid != "" && input.ExpectedHeadOid != p.HeadSHA:
		fail("UNPROCESSABLE", "Pull request The head of the pull request has changed since expectedHeadOid")
		return
	case conflict == nil && g.checksOK(p):
		fail("UNPROCESSABLE", "Pull request Pull request is in clean status")
		return
	}
	a := &AutoMerge{Method: method}
	if input.CommitHeadline != nil && method != "rebase" {
		a.Title = *input.CommitHeadline
		if input.CommitBody != nil {
			a.Body = *input.CommitBody
		}
	}
	p.AutoMerge = a
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": map[string]any{
		"pullRequest": map[string]any{"number": p.Number}}}})
}

// The git data API.

func (g *GitHub) createBlob(w http.ResponseWriter, r *http.Request) {
	_, b, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	var in struct{ Content, Encoding string }
	if !decode(w, r, &in) {
		return
	}
	content := in.Content
	switch in.Encoding {
	case "", "utf-8":
	case "base64":
		raw, err := base64.StdEncoding.DecodeString(in.Content)
		if err != nil {
			invalid(w, "Blob", "content", "invalid", "")
			return
		}
		content = string(raw)
	default:
		invalid(w, "Blob", "encoding", "invalid", "")
		return
	}
	sha, _, err := b.run(content, nil, "hash-object", "-w", "--stdin")
	if err != nil {
		ghError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"sha": sha, "url": g.URL + r.URL.Path + "/" + sha})
}

// createTree builds the tree in a throwaway index, as nested paths need:
// read base_tree, apply each entry (a blob's sha or content; sha null
// deletes), write the tree.
func (g *GitHub) createTree(w http.ResponseWriter, r *http.Request) {
	_, b, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	var in struct {
		BaseTree string `json:"base_tree"`
		Tree     []struct {
			Path    string          `json:"path"`
			Mode    string          `json:"mode"`
			Type    string          `json:"type"`
			SHA     json.RawMessage `json:"sha"`
			Content *string         `json:"content"`
		} `json:"tree"`
	}
	if !decode(w, r, &in) {
		return
	}
	tmp, err := os.MkdirTemp("", "testforge-index-")
	if err != nil {
		ghError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer os.RemoveAll(tmp)
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(tmp, "index")}
	if in.BaseTree != "" {
		if !b.exists(in.BaseTree, "tree") {
			invalid(w, "Tree", "base_tree", "invalid", "base_tree is not a valid tree oid")
			return
		}
		if _, _, err := b.run("", env, "read-tree", in.BaseTree); err != nil {
			ghError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	var info strings.Builder // update-index --index-info's input
	for _, e := range in.Tree {
		if e.Path == "" || strings.HasPrefix(e.Path, "/") || strings.HasSuffix(e.Path, "/") {
			invalid(w, "Tree", "path", "invalid", "tree.path contains a malformed path component")
			return
		}
		if !slices.Contains([]string{"100644", "100755", "120000", "160000"}, e.Mode) || (e.Type != "blob" && e.Type != "commit") {
			// Type "tree" (a subtree by sha) is GitHub's too; ferry sends
			// none, and the stand-in does not take it.
			invalid(w, "Tree", "tree", "invalid", fmt.Sprintf("mode %q type %q not served by testforge", e.Mode, e.Type))
			return
		}
		var sha *string
		if len(e.SHA) > 0 && string(e.SHA) != "null" {
			var s string
			if json.Unmarshal(e.SHA, &s) != nil {
				invalid(w, "Tree", "sha", "invalid", "")
				return
			}
			sha = &s
		}
		switch {
		case e.Content != nil && sha != nil:
			invalid(w, "Tree", "tree", "invalid", "tree.sha and tree.content cannot both be set")
			return
		case e.Content != nil:
			s, _, err := b.run(*e.Content, nil, "hash-object", "-w", "--stdin")
			if err != nil {
				ghError(w, http.StatusInternalServerError, err.Error())
				return
			}
			sha = &s
		case sha == nil:
			// Mode 0 removes the path (update-index --force-remove
			// wants a work tree, which a bare repository has not).
			info.WriteString("0 " + strings.Repeat("0", 40) + "\t" + e.Path + "\x00")
			continue
		}
		if e.Type == "blob" && !b.exists(*sha, "blob") {
			invalid(w, "Tree", "sha", "invalid", fmt.Sprintf("tree.sha %s is not a valid blob", *sha))
			return
		}
		info.WriteString(e.Mode + " " + *sha + "\t" + e.Path + "\x00")
	}
	if _, _, err := b.run(info.String(), env, "update-index", "-z", "--index-info"); err != nil {
		invalid(w, "Tree", "tree", "invalid", err.Error())
		return
	}
	tree, _, err := b.run("", env, "write-tree")
	if err != nil {
		ghError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"sha": tree, "url": g.URL + r.URL.Path + "/" + tree, "truncated": false})
}

// commitJSON is GitHub's git commit object.
func (g *GitHub) commitJSON(b bare, sha string) (map[string]any, error) {
	raw, err := b.rawCommit(sha)
	if err != nil {
		return nil, err
	}
	hdr, msg, _ := strings.Cut(raw, "\n\n")
	v := map[string]any{"sha": sha, "message": msg}
	var parents []map[string]string
	for _, line := range strings.Split(hdr, "\n") {
		k, val, _ := strings.Cut(line, " ")
		switch k {
		case "tree":
			v["tree"] = map[string]string{"sha": val}
		case "parent":
			parents = append(parents, map[string]string{"sha": val})
		case "author", "committer":
			name, rest, _ := strings.Cut(val, " <")
			email, _, _ := strings.Cut(rest, ">")
			v[k] = map[string]string{"name": name, "email": email, "date": "2026-01-02T03:04:05Z"}
		}
	}
	v["parents"] = parents
	g.mu.Lock()
	signed := g.verified[sha]
	g.mu.Unlock()
	ver := map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil}
	if signed {
		ver = map[string]any{"verified": true, "reason": "valid", "signature": "-----BEGIN PGP SIGNATURE-----\n(testforge)\n-----END PGP SIGNATURE-----", "payload": hdr + "\n\n" + msg}
	}
	v["verification"] = ver
	return v, nil
}

func (g *GitHub) getCommit(w http.ResponseWriter, r *http.Request) {
	_, b, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	sha := r.PathValue("sha")
	if !b.exists(sha, "commit") {
		ghError(w, http.StatusNotFound, "Not Found")
		return
	}
	v, err := g.commitJSON(b, sha)
	if err != nil {
		ghError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// createCommit writes a commit. With neither author nor committer given,
// GitHub makes the commit as the token's user or App and signs it: the
// stand-in records it as verified.
func (g *GitHub) createCommit(w http.ResponseWriter, r *http.Request) {
	_, b, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	type person struct{ Name, Email, Date string }
	var in struct {
		Message   *string
		Tree      string
		Parents   []string
		Author    *person
		Committer *person
		Signature *string
	}
	if !decode(w, r, &in) {
		return
	}
	switch {
	case in.Message == nil:
		invalid(w, "Commit", "message", "missing_field", "")
		return
	case !b.exists(in.Tree, "tree"):
		ghError(w, http.StatusUnprocessableEntity, "Tree SHA does not exist")
		return
	}
	for _, p := range in.Parents {
		if !b.exists(p, "commit") {
			ghError(w, http.StatusUnprocessableEntity, "Parent SHA does not exist or is not a commit object")
			return
		}
	}
	author, committer := appAuthor, githubCommitter
	if in.Author != nil {
		author = ident{name: in.Author.Name, email: in.Author.Email}
		committer = author
	}
	if in.Committer != nil {
		committer = ident{name: in.Committer.Name, email: in.Committer.Email}
	}
	sha, err := b.commitTree(in.Tree, in.Parents, *in.Message, author, committer)
	if err != nil {
		ghError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if in.Author == nil && in.Committer == nil && in.Signature == nil {
		g.mu.Lock()
		g.verified[sha] = true
		g.mu.Unlock()
	}
	v, err := g.commitJSON(b, sha)
	if err != nil {
		ghError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (g *GitHub) refJSON(r *http.Request, ref, sha string) map[string]any {
	return map[string]any{"ref": ref, "node_id": "REF_standin", "url": g.URL + r.URL.Path,
		"object": map[string]string{"sha": sha, "type": "commit"}}
}

func (g *GitHub) getRef(w http.ResponseWriter, r *http.Request) {
	_, b, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	branch, isHead := strings.CutPrefix(ref, "heads/")
	sha, _ := b.tip(branch)
	if !isHead || sha == "" {
		ghError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, g.refJSON(r, "refs/"+ref, sha))
}

// updateRef moves a branch: a fast-forward unless force, made with a
// compare-and-swap on the value it checked, retried if a push came
// between.
func (g *GitHub) updateRef(w http.ResponseWriter, r *http.Request) {
	_, b, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	var in struct {
		SHA   string
		Force bool
	}
	if !decode(w, r, &in) {
		return
	}
	ref := r.PathValue("ref")
	branch, isHead := strings.CutPrefix(ref, "heads/")
	if !isHead {
		ghError(w, http.StatusUnprocessableEntity, "Reference does not exist")
		return
	}
	if !b.exists(in.SHA, "commit") {
		ghError(w, http.StatusUnprocessableEntity, "Object does not exist")
		return
	}
	for try := 0; ; try++ {
		old, err := b.tip(branch)
		if err != nil {
			ghError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if old == "" {
			ghError(w, http.StatusUnprocessableEntity, "Reference does not exist")
			return
		}
		if !in.Force {
			if ff, _ := b.isAncestor(old, in.SHA); !ff {
				ghError(w, http.StatusUnprocessableEntity, "Update is not a fast forward")
				return
			}
		}
		err = b.updateRef("refs/"+ref, in.SHA, old)
		if err == nil {
			break
		}
		if now, _ := b.tip(branch); now == old || try >= 10 {
			ghError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, g.refJSON(r, "refs/"+ref, in.SHA))
}

func (g *GitHub) createRef(w http.ResponseWriter, r *http.Request) {
	_, b, ok := g.ghRepo(w, r)
	if !ok {
		return
	}
	var in struct{ Ref, SHA string }
	if !decode(w, r, &in) {
		return
	}
	if !strings.HasPrefix(in.Ref, "refs/") || strings.Count(in.Ref, "/") < 2 {
		ghError(w, http.StatusUnprocessableEntity, "Reference name is invalid")
		return
	}
	if !b.exists(in.SHA, "commit") {
		ghError(w, http.StatusUnprocessableEntity, "Object does not exist")
		return
	}
	if err := b.updateRef(in.Ref, in.SHA, ""); err != nil {
		ghError(w, http.StatusUnprocessableEntity, "Reference already exists")
		return
	}
	writeJSON(w, http.StatusCreated, g.refJSON(r, in.Ref, in.SHA))
}
