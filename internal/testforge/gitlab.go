package testforge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// GitLab is a stand-in for GitLab's API v4 merge requests and users, over
// the bare repositories under a root.
//
// As GitLab does: one open merge request per source branch (409 for a
// second); auto-merge ("merge when pipeline succeeds") merges at once when
// nothing is pending, and with RequireChecks waits for PassChecks; the
// project's merge method decides what a merge makes.
type GitLab struct {
	*Host
	// MergeMethod is the project's merge method, as in its settings:
	// "merge" (a merge commit; the default), "rebase_merge" (a merge
	// commit, only if the source branch contains the target's tip) or
	// "ff" (fast-forward only). With squash, "merge" makes a squash commit
	// on the merge base and a merge commit merging it, as GitLab does.
	// Set it before the first request.
	MergeMethod string
}

// NewGitLab serves a GitLab stand-in for the projects under root until
// the test ends.
func NewGitLab(t testing.TB, root string) *GitLab {
	t.Helper()
	g := &GitLab{Host: newHost(t, root)}
	g.merge = g.doMerge
	g.auth = func(r *http.Request) (string, string) {
		if tok := r.Header.Get("PRIVATE-TOKEN"); tok != "" {
			return tok, "private-token"
		}
		if tok, ok := bearer(r); ok {
			return tok, "bearer"
		}
		return "", ""
	}
	g.refuse = func(w http.ResponseWriter, _ bool) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
	}
	mux := http.NewServeMux()
	mr := "/api/v4/projects/{id}/merge_requests"
	for pattern, handle := range map[string]http.HandlerFunc{
		"GET /api/v4/users":          g.listUsers,
		"GET " + mr:                  g.listMRs,
		"POST " + mr:                 g.createMR,
		"GET " + mr + "/{iid}":       g.getMR,
		"PUT " + mr + "/{iid}":       g.updateMR,
		"PUT " + mr + "/{iid}/merge": g.mergeMR,
		"/": func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		},
	} {
		mux.HandleFunc(pattern, handle)
	}
	g.start(mux)
	g.URL = g.server.URL + "/api/v4"
	return g
}

// AddUser makes a user reviewers can name, and returns its ID.
func (g *GitLab) AddUser(username string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if id, ok := g.users[username]; ok {
		return id
	}
	id := 100 + len(g.users)
	g.users[username] = id
	return id
}

func glError(w http.ResponseWriter, status int, msg any) {
	writeJSON(w, status, map[string]any{"message": msg})
}

func (g *GitLab) listUsers(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("username")
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []map[string]any{}
	for u, id := range g.users {
		if strings.EqualFold(u, name) {
			out = append(out, g.userJSON(u, id))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *GitLab) userJSON(name string, id int) map[string]any {
	return map[string]any{"id": id, "username": name, "name": name, "state": "active",
		"web_url": g.server.URL + "/" + name}
}

// project resolves {id}, a URL-encoded path, answering 404 if it is not a
// project.
func (g *GitLab) project(w http.ResponseWriter, r *http.Request) (string, bare, bool) {
	path := r.PathValue("id")
	b, ok := g.repo(path)
	if !ok {
		glError(w, http.StatusNotFound, "404 Project Not Found")
	}
	return path, b, ok
}

// mr resolves {id} and {iid}. The caller holds g.mu.
func (g *GitLab) mr(w http.ResponseWriter, r *http.Request) (*PR, bool) {
	path, _, ok := g.project(w, r)
	if !ok {
		return nil, false
	}
	n, _ := strconv.Atoi(r.PathValue("iid"))
	p := g.find(n)
	if p == nil || p.Repo != path {
		glError(w, http.StatusNotFound, "404 Not found")
		return nil, false
	}
	g.refresh(p)
	return p, true
}

// params reads a request's parameters as GitLab takes them: a JSON body,
// and the query string.
func params(r *http.Request) map[string]any {
	v := map[string]any{}
	_ = json.NewDecoder(r.Body).Decode(&v)
	for k, vals := range r.URL.Query() {
		if _, ok := v[k]; !ok && len(vals) > 0 {
			v[k] = vals[0]
		}
	}
	return v
}

func str(v map[string]any, k string) (string, bool) {
	switch x := v[k].(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

func boolean(v map[string]any, k string) bool {
	switch x := v[k].(type) {
	case bool:
		return x
	case string:
		return x == "true" || x == "1"
	}
	return false
}

// list reads a comma-separated string or a JSON list.
func list(v map[string]any, k string) []string {
	var out []string
	switch x := v[k].(type) {
	case string:
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []any:
		for _, s := range x {
			out = append(out, fmt.Sprint(s))
		}
	}
	return out
}

func isDraft(title string) bool {
	t := strings.ToLower(strings.TrimSpace(title))
	return strings.HasPrefix(t, "draft:") || strings.HasPrefix(t, "[draft]") || strings.HasPrefix(t, "(draft)")
}

// mrJSON is GitLab's merge request object.
func (g *GitLab) mrJSON(p *PR) map[string]any {
	state := map[string]string{"open": "opened", "closed": "closed", "merged": "merged"}[p.State]
	reviewers := []map[string]any{}
	for _, r := range p.Reviewers {
		reviewers = append(reviewers, g.userJSON(r, g.users[r]))
	}
	v := map[string]any{
		"id": 5000 + p.Number, "iid": p.Number, "project_id": 1,
		"title": p.Title, "description": p.Body, "state": state,
		"source_branch": p.Head, "target_branch": p.Base,
		"labels": append([]string{}, p.Labels...), "draft": p.Draft, "work_in_progress": p.Draft,
		"sha": p.HeadSHA, "merge_commit_sha": nil, "squash_commit_sha": nil,
		"web_url":                      g.server.URL + "/" + p.Repo + "/-/merge_requests/" + strconv.Itoa(p.Number),
		"merge_when_pipeline_succeeds": p.AutoMerge != nil,
		"reviewers":                    reviewers,
	}
	if p.State == "merged" {
		if !p.fastForward {
			v["merge_commit_sha"] = p.MergeCommit
		}
		if p.SquashCommit != "" {
			v["squash_commit_sha"] = p.SquashCommit
		}
	}
	if p.State == "open" {
		b, _ := g.repo(p.Repo)
		base, _ := b.tip(p.Base)
		_, err := b.mergeTree(base, p.HeadSHA)
		v["has_conflicts"] = err != nil
		switch {
		case err != nil:
			v["detailed_merge_status"] = "conflict"
		case !g.checksOK(p):
			v["detailed_merge_status"] = "ci_must_pass"
		default:
			v["detailed_merge_status"] = "mergeable"
		}
	}
	return v
}

func (g *GitLab) listMRs(w http.ResponseWriter, r *http.Request) {
	path, _, ok := g.project(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []map[string]any{}
	for i := len(g.prs) - 1; i >= 0; i-- { // newest first
		p := g.prs[i]
		if p.Repo != path {
			continue
		}
		g.refresh(p)
		state := map[string]string{"open": "opened", "closed": "closed", "merged": "merged"}[p.State]
		if s := q.Get("state"); s != "" && s != "all" && s != state {
			continue
		}
		if s := q.Get("source_branch"); s != "" && s != p.Head {
			continue
		}
		if s := q.Get("target_branch"); s != "" && s != p.Base {
			continue
		}
		out = append(out, g.mrJSON(p))
	}
	writeJSON(w, http.StatusOK, out)
}

// reviewers maps reviewer IDs to usernames, skipping unknown IDs. The
// caller holds g.mu.
func (g *GitLab) reviewers(v map[string]any) []string {
	var out []string
	for _, s := range list(v, "reviewer_ids") {
		for u, id := range g.users {
			if strconv.Itoa(id) == s {
				out = append(out, u)
			}
		}
	}
	return out
}

func (g *GitLab) createMR(w http.ResponseWriter, r *http.Request) {
	path, b, ok := g.project(w, r)
	if !ok {
		return
	}
	v := params(r)
	for _, k := range []string{"source_branch", "target_branch", "title"} {
		if s, _ := str(v, k); s == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": k + " is missing"})
			return
		}
	}
	src, _ := str(v, "source_branch")
	dst, _ := str(v, "target_branch")
	title, _ := str(v, "title")
	desc, _ := str(v, "description")
	g.mu.Lock()
	defer g.mu.Unlock()
	headSHA, _ := b.tip(src)
	baseSHA, _ := b.tip(dst)
	switch {
	case src == dst:
		glError(w, http.StatusUnprocessableEntity, []string{"You can't use same project/branch for source and target"})
		return
	case headSHA == "":
		glError(w, http.StatusUnprocessableEntity, []string{fmt.Sprintf("Source branch %q does not exist", src)})
		return
	case baseSHA == "":
		glError(w, http.StatusUnprocessableEntity, []string{fmt.Sprintf("Target branch %q does not exist", dst)})
		return
	}
	for _, p := range g.prs {
		if p.Repo == path && p.State == "open" && p.Head == src {
			glError(w, http.StatusConflict, []string{fmt.Sprintf("Another open merge request already exists for this source branch: !%d", p.Number)})
			return
		}
	}
	p := g.add(&PR{Repo: path, Head: src, Base: dst, Title: title, Body: desc, Draft: isDraft(title) || boolean(v, "draft"),
		Labels: list(v, "labels"), Reviewers: g.reviewers(v), State: "open", HeadSHA: headSHA})
	writeJSON(w, http.StatusCreated, g.mrJSON(p))
}

func (g *GitLab) getMR(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.mr(w, r); ok {
		writeJSON(w, http.StatusOK, g.mrJSON(p))
	}
}

func (g *GitLab) updateMR(w http.ResponseWriter, r *http.Request) {
	v := params(r)
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.mr(w, r)
	if !ok {
		return
	}
	if t, ok := str(v, "title"); ok {
		if t == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "title is empty"})
			return
		}
		p.Title, p.Draft = t, isDraft(t)
	}
	if d, ok := str(v, "description"); ok {
		p.Body = d
	}
	if _, ok := v["labels"]; ok {
		p.Labels = list(v, "labels")
	}
	for _, l := range list(v, "add_labels") {
		if !slices.Contains(p.Labels, l) {
			p.Labels = append(p.Labels, l)
		}
	}
	for _, l := range list(v, "remove_labels") {
		p.Labels = slices.DeleteFunc(p.Labels, func(x string) bool { return x == l })
	}
	if _, ok := v["reviewer_ids"]; ok {
		p.Reviewers = g.reviewers(v) // GitLab replaces the list
	}
	if e, _ := str(v, "state_event"); e == "close" && p.State == "open" {
		p.State, p.AutoMerge = "closed", nil
	}
	writeJSON(w, http.StatusOK, g.mrJSON(p))
}

// mergeMR is PUT .../merge: merge now, or, with auto_merge or
// merge_when_pipeline_succeeds, when the pipeline passes (now, if
// nothing is pending).
func (g *GitLab) mergeMR(w http.ResponseWriter, r *http.Request) {
	v := params(r)
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.mr(w, r)
	if !ok {
		return
	}
	sha, _ := str(v, "sha")
	switch {
	case p.State != "open":
		glError(w, http.StatusMethodNotAllowed, "405 Method Not Allowed")
		return
	case sha != "" && sha != p.HeadSHA:
		glError(w, http.StatusConflict, "SHA does not match HEAD of source branch: "+p.HeadSHA)
		return
	}
	a := AutoMerge{Method: "merge"}
	if boolean(v, "squash") {
		a.Method = "squash"
	}
	a.Message, _ = str(v, "merge_commit_message")
	a.SquashMessage, _ = str(v, "squash_commit_message")
	auto := boolean(v, "auto_merge") || boolean(v, "merge_when_pipeline_succeeds")
	if !g.checksOK(p) {
		if !auto {
			glError(w, http.StatusMethodNotAllowed, "405 Method Not Allowed")
			return
		}
		p.AutoMerge = &a
		writeJSON(w, http.StatusOK, g.mrJSON(p))
		return
	}
	if err := g.doMerge(p, a); err != nil {
		if errors.Is(err, errConflict) || errors.Is(err, errNotFF) {
			glError(w, http.StatusNotAcceptable, "Branch cannot be merged")
			return
		}
		glError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, g.mrJSON(p))
}

// doMerge merges p as GitLab does with the project's merge method. The
// caller holds g.mu.
func (g *GitLab) doMerge(p *PR, a AutoMerge) error {
	b, ok := g.repo(p.Repo)
	if !ok {
		return errNoBranch
	}
	g.refresh(p)
	mergeMsg := a.Message
	if mergeMsg == "" {
		mergeMsg = fmt.Sprintf("Merge branch '%s' into '%s'\n\n%s\n\nSee merge request %s!%d\n", p.Head, p.Base, p.Title, p.Repo, p.Number)
	}
	squashMsg := a.SquashMessage
	if squashMsg == "" {
		squashMsg = p.Title + "\n"
	}
	squash := a.Method == "squash"
	method := g.MergeMethod
	if method == "" {
		method = "merge"
	}
	build := func(old, head string) (merged, error) {
		ff, err := b.isAncestor(old, head)
		if err != nil {
			return merged{}, err
		}
		if !ff && method != "merge" {
			return merged{}, errNotFF
		}
		author, err := b.author(head)
		if err != nil {
			return merged{}, err
		}
		var m merged
		if squash {
			// The squash commit has the head's tree on the merge base:
			// the source branch's change as one commit.
			onto := old
			if method == "merge" {
				if onto, err = b.git("merge-base", old, head); err != nil {
					return merged{}, err
				}
			}
			tree, err := b.git("rev-parse", head+"^{tree}")
			if err != nil {
				return merged{}, err
			}
			if m.squash, err = b.commitTree(tree, []string{onto}, squashMsg, author, gitlabCommitter); err != nil {
				return merged{}, err
			}
			head = m.squash
		}
		if method == "ff" {
			m.tip = head
			return m, nil
		}
		if m.merge, err = b.mergeCommit(old, head, mergeMsg, gitlabCommitter, gitlabCommitter); err != nil {
			return merged{}, err
		}
		m.tip = m.merge
		return m, nil
	}
	m, err := b.mergeInto(p.Base, p.Head, p.HeadSHA, build)
	if err != nil {
		return err
	}
	p.State, p.MergeCommit, p.SquashCommit, p.AutoMerge = "merged", m.tip, m.squash, nil
	p.fastForward = m.merge == ""
	return nil
}
