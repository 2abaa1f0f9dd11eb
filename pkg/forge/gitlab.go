package forge

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// GitLab returns the Forge of project ("group/sub/name") on GitLab,
// speaking API v4 at baseURL ("" for https://gitlab.com/api/v4; a
// self-managed instance is https://HOST/api/v4). The token goes in the
// PRIVATE-TOKEN header (WithBearer for OAuth tokens) and needs the api
// scope, and the Developer role to open merge requests.
//
// GitLab allows one open merge request per source branch, whatever its
// target: ferry's head branch names must differ per target.
func GitLab(baseURL, project, token string, opts ...Option) Forge {
	g := &gitlab{project: project}
	o := newOptions(opts)
	g.c = client{opts: o, token: token, parse: parseGitLabError}
	g.c.auth = func(h http.Header) {
		switch {
		case token == "":
		case o.bearer:
			h.Set("Authorization", "Bearer "+token)
		default:
			h.Set("PRIVATE-TOKEN", token)
		}
		h.Set("Accept", "application/json")
	}
	g.base, g.err = trimBase(baseURL, "https://gitlab.com/api/v4")
	if g.err == nil && (project == "" || !strings.Contains(strings.Trim(project, "/"), "/")) {
		g.err = fmt.Errorf("GitLab project %q: want its full path, group/name", project)
	}
	return g
}

type gitlab struct {
	c       client
	base    string
	project string
	err     error
}

// url is the URL of a path under the project, which is one path segment
// with its slashes escaped (group%2Fsub%2Fname), as GitLab wants it.
func (g *gitlab) url(parts ...string) string {
	return g.base + "/projects/" + url.PathEscape(strings.Trim(g.project, "/")) + "/" + strings.Join(parts, "/")
}

// glUser is a user as GitLab lists one.
type glUser struct {
	ID       int    `json:"id"`
	Username string `json:"username"`
}

// glMR is the part of GitLab's merge request object ferry reads.
type glMR struct {
	IID             int      `json:"iid"`
	WebURL          string   `json:"web_url"`
	State           string   `json:"state"` // opened, closed, locked, merged
	Source          string   `json:"source_branch"`
	Target          string   `json:"target_branch"`
	SHA             string   `json:"sha"`
	MergeCommitSHA  string   `json:"merge_commit_sha"`
	SquashCommitSHA string   `json:"squash_commit_sha"`
	AutoMerge       bool     `json:"merge_when_pipeline_succeeds"`
	Reviewers       []glUser `json:"reviewers"`
}

func (m *glMR) pr() *PR {
	out := &PR{
		Number: m.IID, URL: m.WebURL, State: StateOpen,
		Head: m.Source, Base: m.Target, HeadSHA: m.SHA, AutoMerge: m.AutoMerge,
	}
	switch m.State {
	case "merged":
		out.State = StateMerged
		// A merge commit if the project makes them (with a squash, it
		// merges the squash commit); else the squash commit a
		// fast-forward put on the target; else, a plain fast-forward,
		// the head itself.
		out.MergeCommit = cmp.Or(m.MergeCommitSHA, m.SquashCommitSHA, m.SHA)
	case "closed":
		out.State = StateClosed
	}
	return out
}

func (g *gitlab) Find(ctx context.Context, head, base string) (*PR, error) {
	if g.err != nil {
		return nil, g.err
	}
	q := url.Values{"state": {"opened"}, "source_branch": {head}, "target_branch": {base}}
	var list []glMR
	if _, err := g.c.do(ctx, http.MethodGet, g.url("merge_requests")+"?"+q.Encode(), nil, &list); err != nil {
		return nil, fmt.Errorf("finding the merge request from %s into %s: %w", head, base, err)
	}
	for _, m := range list {
		if m.Source == head && m.Target == base && (m.State == "opened" || m.State == "locked") {
			return m.pr(), nil
		}
	}
	return nil, nil
}

// title is r's title, marked as a draft the way GitLab reads it.
func glTitle(r Request) string {
	if r.Draft && !strings.HasPrefix(r.Title, "Draft:") {
		return "Draft: " + r.Title
	}
	return r.Title
}

func (g *gitlab) Open(ctx context.Context, r Request) (*PR, error) {
	if g.err != nil {
		return nil, g.err
	}
	ids, err := g.userIDs(ctx, r.Reviewers)
	if err != nil {
		return nil, err
	}
	in := struct {
		Source      string `json:"source_branch"`
		Target      string `json:"target_branch"`
		Title       string `json:"title"`
		Description string `json:"description"`
		Labels      string `json:"labels,omitempty"`
		Reviewers   []int  `json:"reviewer_ids,omitempty"`
	}{r.Head, r.Base, glTitle(r), r.Body, strings.Join(r.Labels, ","), ids}
	var m glMR
	oc, err := g.c.do(ctx, http.MethodPost, g.url("merge_requests"), in, &m)
	if err != nil {
		var e *APIError
		if errors.As(err, &e) && e.Status == http.StatusConflict {
			e.is = ErrAlreadyExists
			if oc.ambiguous {
				// A failed attempt went through: the request is ours.
				if pr, ferr := g.Find(ctx, r.Head, r.Base); ferr == nil && pr != nil {
					return pr, nil
				}
			}
		}
		return nil, fmt.Errorf("opening a merge request from %s into %s: %w", r.Head, r.Base, err)
	}
	return m.pr(), nil
}

// Update rewrites the title (a draft if r.Draft) and description and
// adds labels and reviewers: GitLab's reviewer_ids replaces the list, so
// the current reviewers are read first and kept.
// Close closes the merge request: state_event=close.
func (g *gitlab) Close(ctx context.Context, number int) error {
	if g.err != nil {
		return g.err
	}
	in := map[string]string{"state_event": "close"}
	if _, err := g.c.do(ctx, http.MethodPut, g.url("merge_requests", strconv.Itoa(number)), in, nil); err != nil {
		return fmt.Errorf("closing merge request !%d: %w", number, err)
	}
	return nil
}

func (g *gitlab) Update(ctx context.Context, number int, r Request) (*PR, error) {
	if g.err != nil {
		return nil, g.err
	}
	in := map[string]any{"description": r.Body}
	if r.Title != "" {
		in["title"] = glTitle(r)
	}
	if len(r.Labels) > 0 {
		in["add_labels"] = strings.Join(r.Labels, ",")
	}
	if len(r.Reviewers) > 0 {
		ids, err := g.userIDs(ctx, r.Reviewers)
		if err != nil {
			return nil, err
		}
		var cur glMR
		if _, err := g.c.do(ctx, http.MethodGet, g.url("merge_requests", strconv.Itoa(number)), nil, &cur); err != nil {
			return nil, fmt.Errorf("reading merge request !%d: %w", number, err)
		}
		all := make([]int, 0, len(cur.Reviewers)+len(ids))
		for _, u := range cur.Reviewers {
			all = append(all, u.ID)
		}
		for _, id := range ids {
			if !slices.Contains(all, id) {
				all = append(all, id)
			}
		}
		in["reviewer_ids"] = all
	}
	var m glMR
	if _, err := g.c.do(ctx, http.MethodPut, g.url("merge_requests", strconv.Itoa(number)), in, &m); err != nil {
		return nil, fmt.Errorf("updating merge request !%d: %w", number, err)
	}
	return m.pr(), nil
}

// userIDs looks each username up: GitLab takes reviewers by ID.
func (g *gitlab) userIDs(ctx context.Context, names []string) ([]int, error) {
	var ids []int
	for _, name := range names {
		var users []glUser
		u := g.base + "/users?" + url.Values{"username": {name}}.Encode()
		if _, err := g.c.do(ctx, http.MethodGet, u, nil, &users); err != nil {
			return nil, fmt.Errorf("looking up reviewer %s: %w", name, err)
		}
		i := slices.IndexFunc(users, func(u glUser) bool { return strings.EqualFold(u.Username, name) })
		if i < 0 {
			return nil, fmt.Errorf("reviewer %s: no such GitLab user: %w", name, ErrNotFound)
		}
		ids = append(ids, users[i].ID)
	}
	return ids, nil
}

func (g *gitlab) Get(ctx context.Context, number int) (*PR, error) {
	if g.err != nil {
		return nil, g.err
	}
	var m glMR
	if _, err := g.c.do(ctx, http.MethodGet, g.url("merge_requests", strconv.Itoa(number)), nil, &m); err != nil {
		return nil, fmt.Errorf("reading merge request !%d: %w", number, err)
	}
	return m.pr(), nil
}

// AutoMerge asks GitLab to merge when the pipeline succeeds (auto_merge
// since GitLab 17.11, merge_when_pipeline_succeeds before; each ignores
// the other), pinned to the head ferry saw (pr.HeadSHA); with nothing to
// wait for GitLab merges at once. The message is title, a blank line and
// body, for the squash commit and for the merge commit both: with the
// project's "merge commit" method a squash makes both, and the merge
// commit is the one on the target's first-parent history.
//
// GitLab has no rebase per merge: MergeRebase merges without squashing
// and the project's merge method decides (a merge commit, a merge commit
// over a rebased head, or a fast-forward). PUT .../rebase is something
// else: it rebases the source branch on the server and merges nothing.
func (g *gitlab) AutoMerge(ctx context.Context, pr *PR, method MergeMethod, title, body string) error {
	if g.err != nil {
		return g.err
	}
	if !slices.Contains([]MergeMethod{MergeSquash, MergeMerge, MergeRebase}, method) {
		return fmt.Errorf("merge method %q: want squash, merge or rebase", method)
	}
	msg := title
	if body != "" {
		msg += "\n\n" + body
	}
	in := map[string]any{
		"auto_merge":                   true,
		"merge_when_pipeline_succeeds": true,
		"squash":                       method == MergeSquash,
		"merge_commit_message":         msg,
	}
	if method == MergeSquash {
		in["squash_commit_message"] = msg
	}
	if pr.HeadSHA != "" {
		in["sha"] = pr.HeadSHA
	}
	if oc, err := g.c.do(ctx, http.MethodPut, g.url("merge_requests", strconv.Itoa(pr.Number), "merge"), in, nil); err != nil {
		if oc.ambiguous { // a lost answer: the retry meets a merged request
			if now, gerr := g.Get(ctx, pr.Number); gerr == nil && (now.State == StateMerged || now.AutoMerge) {
				return nil
			}
		}
		return fmt.Errorf("setting merge request !%d to merge when its pipeline succeeds: %w", pr.Number, err)
	}
	return nil
}

// parseGitLabError reads {"message": ...} (a string, a list, or field
// messages) or {"error": "..."}.
func parseGitLabError(e *APIError, body []byte) {
	var v struct {
		Message json.RawMessage `json:"message"`
		Error   string          `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		e.Message = snippet(body)
		return
	}
	e.Message, e.Errors = messageText(v.Message)
	if v.Error != "" {
		e.Errors = append(e.Errors, v.Error)
	}
}
