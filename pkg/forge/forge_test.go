package forge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferrycd/ferry/internal/testforge"
	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/pkg/forge"
)

// fast keeps retries quick in tests.
var fast = forge.WithBackoff(time.Millisecond)

// world is one repository, acme/env, on one root that git http-backend
// and a host stand-in both serve: ferry pushes over HTTP, the Forge talks
// to the stand-in, merges land in the same bare repository.
type world struct {
	t    *testing.T
	repo *testgit.Repo
	url  string // the repository's git URL
	host *testforge.Host
	gh   *testforge.GitHub // nil on GitLab
	gl   *testforge.GitLab // nil on GitHub
	f    forge.Forge
}

var kinds = []string{"github", "gitlab"}

func newWorld(t *testing.T, kind string, opts ...forge.Option) *world {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, repo: testgit.NewRepo(t, "", "main").CopyTo(t, root, "acme/env.git")}
	w.url = testgit.ServeRoot(t, root).RepoURL(w.repo)
	opts = append([]forge.Option{fast}, opts...)
	switch kind {
	case "github":
		w.gh = testforge.NewGitHub(t, root)
		w.host = w.gh.Host
		w.f = forge.GitHub(w.gh.URL, "acme", "env", w.gh.Token, opts...)
	case "gitlab":
		w.gl = testforge.NewGitLab(t, root)
		w.host = w.gl.Host
		w.f = forge.GitLab(w.gl.URL, "acme/env", w.gl.Token, opts...)
	}
	return w
}

// push makes a branch head from base with one commit changing files and
// pushes it over HTTP, as ferry does; it returns the commit.
func (w *world) push(base, head, msg string, files map[string]string) string {
	w.t.Helper()
	dir := w.t.TempDir()
	testgit.Run(w.t, dir, "clone", "-q", "-b", base, w.url, ".")
	testgit.Run(w.t, dir, "checkout", "-q", "-B", head)
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
	testgit.Run(w.t, dir, "add", "-A")
	testgit.Run(w.t, dir, "commit", "-q", "-m", msg)
	testgit.Run(w.t, dir, "push", "-q", "origin", "HEAD:refs/heads/"+head)
	return testgit.Run(w.t, dir, "rev-parse", "HEAD")
}

// deployMsg is a head commit's message as ferry writes one.
const deployMsg = "deploy hello 1.2.0 to production\n\nFerry-Action: deploy\nFerry-App: hello"

// deploy pushes ferry's head branch for production.
func (w *world) deploy(head string) string {
	w.t.Helper()
	return w.push("main", head, deployMsg, map[string]string{"apps/hello/version": "1.2.0\n"})
}

func (w *world) open(head string) *forge.PR {
	w.t.Helper()
	pr, err := w.f.Open(w.t.Context(), forge.Request{Head: head, Base: "main", Title: "Deploy hello 1.2.0", Body: "Ferry-Action: deploy"})
	if err != nil {
		w.t.Fatalf("Open: %v", err)
	}
	return pr
}

// ignoreUnexported compares stand-in snapshots by their exported fields.
var ignoreUnexported = cmpopts.IgnoreUnexported(testforge.PR{})

func TestOpenFindUpdateGet(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			ctx := t.Context()
			if w.gl != nil {
				w.gl.AddUser("alice")
				w.gl.AddUser("bob")
			}
			tip := w.deploy("ferry/production")

			if pr, err := w.f.Find(ctx, "ferry/production", "main"); err != nil || pr != nil {
				t.Fatalf("Find before Open: %+v, %v; want nil, nil", pr, err)
			}
			req := forge.Request{Head: "ferry/production", Base: "main", Title: "Deploy hello 1.2.0",
				Body: "Ferry-Action: deploy", Labels: []string{"ferry"}, Reviewers: []string{"alice"}}
			pr, err := w.f.Open(ctx, req)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			want := &forge.PR{Number: 1, State: forge.StateOpen, Head: "ferry/production", Base: "main", HeadSHA: tip}
			ignore := cmpopts.IgnoreFields(forge.PR{}, "URL", "ID")
			if diff := cmp.Diff(want, pr, ignore); diff != "" {
				t.Errorf("Open (-want +got):\n%s", diff)
			}
			if !strings.Contains(pr.URL, "acme/env") || !strings.HasPrefix(pr.URL, "http://127.0.0.1:") {
				t.Errorf("URL %q, want the request's page on the host", pr.URL)
			}
			found, err := w.f.Find(ctx, "ferry/production", "main")
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			if diff := cmp.Diff(pr, found); diff != "" {
				t.Errorf("Find (-Open +Find):\n%s", diff)
			}
			if other, err := w.f.Find(ctx, "ferry/production", "staging"); err != nil || other != nil {
				t.Errorf("Find into another base: %+v, %v; want nil, nil", other, err)
			}

			// A second request from the same head fails as the host says.
			_, err = w.f.Open(ctx, req)
			var apiErr *forge.APIError
			if !errors.As(err, &apiErr) || !errors.Is(err, forge.ErrAlreadyExists) {
				t.Fatalf("second Open: %v; want an *APIError matching ErrAlreadyExists", err)
			}
			wantStatus := map[string]int{"github": 422, "gitlab": 409}[kind]
			if apiErr.Status != wantStatus || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("second Open: status %d, %q; want %d and the host's words", apiErr.Status, err, wantStatus)
			}

			up := forge.Request{Title: "Deploy hello 1.2.1", Body: "Ferry-Action: deploy\nFerry-Version: 1.2.1",
				Labels: []string{"ferry", "production"}, Reviewers: []string{"bob"}}
			updated, err := w.f.Update(ctx, pr.Number, up)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if diff := cmp.Diff(pr, updated); diff != "" {
				t.Errorf("Update's PR (-before +after):\n%s", diff)
			}
			got := w.host.PR(pr.Number)
			wantHeld := testforge.PR{Number: 1, Repo: "acme/env", Head: "ferry/production", Base: "main",
				Title: up.Title, Body: up.Body, Labels: []string{"ferry", "production"}, Reviewers: []string{"alice", "bob"},
				State: "open", HeadSHA: tip}
			if diff := cmp.Diff(wantHeld, got, ignoreUnexported, cmpopts.IgnoreFields(testforge.PR{}, "NodeID")); diff != "" {
				t.Errorf("the host's request after Update (-want +got):\n%s", diff)
			}
			read, err := w.f.Get(ctx, pr.Number)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if diff := cmp.Diff(pr, read); diff != "" {
				t.Errorf("Get (-Open +Get):\n%s", diff)
			}
			if _, err := w.f.Get(ctx, 99); !errors.Is(err, forge.ErrNotFound) {
				t.Errorf("Get(99): %v; want ErrNotFound", err)
			}
		})
	}
}

func TestDraft(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			w.deploy("ferry/production")
			pr, err := w.f.Open(t.Context(), forge.Request{Head: "ferry/production", Base: "main", Title: "Deploy", Draft: true})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got := w.host.PR(pr.Number)
			wantTitle := map[string]string{"github": "Deploy", "gitlab": "Draft: Deploy"}[kind]
			if !got.Draft || got.Title != wantTitle {
				t.Errorf("draft %v, title %q; want a draft titled %q", got.Draft, got.Title, wantTitle)
			}
		})
	}
}

func TestClosedIsNotFound(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			ctx := t.Context()
			w.deploy("ferry/production")
			pr := w.open("ferry/production")
			w.host.Close(pr.Number)
			if got, err := w.f.Find(ctx, "ferry/production", "main"); err != nil || got != nil {
				t.Fatalf("Find after Close: %+v, %v; want nil, nil", got, err)
			}
			if got, err := w.f.Get(ctx, pr.Number); err != nil || got.State != forge.StateClosed {
				t.Fatalf("Get after Close: %+v, %v; want closed", got, err)
			}
			again := w.open("ferry/production")
			if again.Number == pr.Number {
				t.Errorf("Open after Close reused #%d; want a new request", pr.Number)
			}
		})
	}
}

// parents returns a commit's parents.
func parents(r *testgit.Repo, c string) []string {
	return strings.Fields(r.Git("log", "-1", "--format=%P", c))
}

// trailers parses a commit message's trailers with git itself.
func trailers(t *testing.T, msg string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(f, []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	return testgit.Run(t, t.TempDir(), "interpret-trailers", "--parse", f)
}

func TestAutoMergeMovesTheBase(t *testing.T) {
	t.Parallel()
	const title, body = "Deploy hello 1.2.0 (#1)", "hello 1.2.0 to production\n\nFerry-Action: deploy\nFerry-App: hello"
	for _, tc := range []struct {
		kind   string
		method forge.MergeMethod
		// gitlabMethod is the GitLab project's merge method.
		gitlabMethod string
		// check looks at the new tip of main; old is main's tip before,
		// head the head's.
		check func(t *testing.T, r *testgit.Repo, tip, old, head string)
	}{
		{kind: "github", method: forge.MergeSquash, check: squashed},
		{kind: "github", method: forge.MergeMerge, check: mergeCommit},
		{kind: "github", method: forge.MergeRebase, check: rebased},
		{kind: "gitlab", method: forge.MergeSquash, gitlabMethod: "merge", check: func(t *testing.T, r *testgit.Repo, tip, old, head string) {
			// GitLab's merge-commit method with a squash: a squash commit
			// on the merge base, merged by a merge commit; both keep the
			// trailers.
			mergeCommit(t, r, tip, old, "")
			squash := parents(r, tip)[1]
			squashed(t, r, squash, r.Git("merge-base", old, head), head)
		}},
		{kind: "gitlab", method: forge.MergeSquash, gitlabMethod: "ff", check: squashed},
		{kind: "gitlab", method: forge.MergeMerge, gitlabMethod: "merge", check: mergeCommit},
		{kind: "gitlab", method: forge.MergeRebase, gitlabMethod: "ff", check: func(t *testing.T, r *testgit.Repo, tip, old, head string) {
			if tip != head {
				t.Errorf("main at %s; a fast-forward puts it at the head %s", tip, head)
			}
			rebased(t, r, tip, old, head)
		}},
	} {
		t.Run(tc.kind+"/"+string(tc.method)+"/"+tc.gitlabMethod, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tc.kind)
			if w.gl != nil {
				w.gl.MergeMethod = tc.gitlabMethod
			}
			ctx := t.Context()
			head := w.deploy("ferry/production")
			if tc.gitlabMethod != "ff" {
				// Someone else's commit lands on main meanwhile: the merge
				// must build on it, not on the head's base.
				w.repo.Commit("main", "unrelated", map[string]string{"other/file": "x\n"})
			}
			old := w.repo.Tip("main")
			pr := w.open("ferry/production")
			if err := w.f.AutoMerge(ctx, pr, tc.method, title, body); err != nil {
				t.Fatalf("AutoMerge: %v", err)
			}
			got, err := forge.Wait(ctx, w.f, pr.Number, 10*time.Millisecond)
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			tip := w.repo.Tip("main")
			if got.State != forge.StateMerged || got.MergeCommit != tip {
				t.Fatalf("after AutoMerge: %s, merge commit %s; want merged, main's tip %s", got.State, got.MergeCommit, tip)
			}
			if w.repo.Show("main", "apps/hello/version") != "1.2.0" {
				t.Errorf("main lacks the head's change")
			}
			if tc.gitlabMethod != "ff" && w.repo.Show("main", "other/file") != "x" {
				t.Errorf("the merge lost the commit pushed to main meanwhile")
			}
			tc.check(t, w.repo, tip, old, head)
			w.repo.Fsck()
		})
	}
}

// squashed: one commit on old, message title+body, trailers kept.
func squashed(t *testing.T, r *testgit.Repo, tip, old, _ string) {
	t.Helper()
	if p := parents(r, tip); len(p) != 1 || p[0] != old {
		t.Errorf("squash commit's parents %v; want [%s]", p, old)
	}
	msg := r.Git("log", "-1", "--format=%B", tip)
	if !strings.HasPrefix(msg, "Deploy hello 1.2.0 (#1)\n\nhello 1.2.0 to production") {
		t.Errorf("squash message %q; want the title, a blank line and the body", msg)
	}
	if tr := trailers(t, msg); !strings.Contains(tr, "Ferry-Action: deploy") {
		t.Errorf("squash message's trailers %q; want Ferry-Action: deploy", tr)
	}
}

// mergeCommit: two parents, old first; head second unless "".
func mergeCommit(t *testing.T, r *testgit.Repo, tip, old, head string) {
	t.Helper()
	p := parents(r, tip)
	if len(p) != 2 || p[0] != old || (head != "" && p[1] != head) {
		t.Errorf("merge commit's parents %v; want [%s %s]", p, old, head)
	}
	if tr := trailers(t, r.Git("log", "-1", "--format=%B", tip)); !strings.Contains(tr, "Ferry-Action: deploy") {
		t.Errorf("merge commit's trailers %q; want Ferry-Action: deploy", tr)
	}
}

// rebased: one parent, old; the head's message and author.
func rebased(t *testing.T, r *testgit.Repo, tip, old, head string) {
	t.Helper()
	if p := parents(r, tip); len(p) != 1 || p[0] != old {
		t.Errorf("rebased commit's parents %v; want [%s]", p, old)
	}
	for _, f := range []string{"%B", "%an <%ae>"} {
		if got, want := r.Git("log", "-1", "--format="+f, tip), r.Git("log", "-1", "--format="+f, head); got != want {
			t.Errorf("rebased commit's %s %q; want the head's %q", f, got, want)
		}
	}
}

func TestAutoMergeWaitsForChecks(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			w.host.RequireChecks = true
			ctx := t.Context()
			w.deploy("ferry/production")
			old := w.repo.Tip("main")
			pr := w.open("ferry/production")
			if err := w.f.AutoMerge(ctx, pr, forge.MergeSquash, "Deploy", "Ferry-Action: deploy"); err != nil {
				t.Fatalf("AutoMerge: %v", err)
			}
			got, err := w.f.Get(ctx, pr.Number)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.State != forge.StateOpen || !got.AutoMerge || w.repo.Tip("main") != old {
				t.Fatalf("before the checks pass: %s, auto-merge %v, main moved %v; want open, true, false",
					got.State, got.AutoMerge, w.repo.Tip("main") != old)
			}
			done := make(chan *forge.PR)
			go func() {
				pr, err := forge.Wait(ctx, w.f, pr.Number, 10*time.Millisecond)
				if err != nil {
					t.Errorf("Wait: %v", err)
				}
				done <- pr
			}()
			time.Sleep(30 * time.Millisecond)
			w.host.PassChecks(pr.Number)
			merged := <-done
			if merged == nil || merged.State != forge.StateMerged || merged.MergeCommit != w.repo.Tip("main") {
				t.Fatalf("Wait: %+v; want merged at main's tip %s", merged, w.repo.Tip("main"))
			}
		})
	}
}

// GitHub refuses auto-merge on a request with nothing to wait for; the
// Forge then merges it directly, pinned to the head it saw.
func TestGitHubCleanStatusMergesDirectly(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "github")
	w.deploy("ferry/production")
	pr := w.open("ferry/production")
	if err := w.f.AutoMerge(t.Context(), pr, forge.MergeSquash, "Deploy", "Ferry-Action: deploy"); err != nil {
		t.Fatalf("AutoMerge: %v", err)
	}
	var calls []string
	for _, r := range w.gh.Requests() {
		calls = append(calls, r.Method+" "+r.Path)
		if r.Method == "PUT" && !strings.Contains(r.Body, `"sha":"`+pr.HeadSHA+`"`) {
			t.Errorf("the merge is not pinned to the head %s: %s", pr.HeadSHA, r.Body)
		}
	}
	want := []string{"POST /repos/acme/env/pulls", "POST /graphql", "PUT /repos/acme/env/pulls/1/merge"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// The head moved after ferry read it: the host refuses to merge what ferry
// did not see.
func TestAutoMergePinsTheHead(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			w.deploy("ferry/production")
			pr := w.open("ferry/production")
			w.repo.Commit("ferry/production", "someone else", map[string]string{"apps/hello/version": "6.6.6\n"})
			old := w.repo.Tip("main")
			err := w.f.AutoMerge(t.Context(), pr, forge.MergeSquash, "Deploy", "")
			if err == nil {
				t.Fatal("AutoMerge of a moved head succeeded")
			}
			if w.repo.Tip("main") != old {
				t.Errorf("main moved")
			}
		})
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			ctx := t.Context()
			w.deploy("ferry/a")
			w.push("main", "ferry/b", "b", map[string]string{"b": "b\n"})
			w.push("main", "ferry/c", "c", map[string]string{"c": "c\n"})
			a, b, c := w.open("ferry/a"), w.open("ferry/b"), w.open("ferry/c")

			go func() {
				time.Sleep(20 * time.Millisecond)
				w.host.Merge(a.Number, "merge")
				w.host.Close(b.Number)
			}()
			got, err := forge.Wait(ctx, w.f, a.Number, 5*time.Millisecond)
			if err != nil || got.State != forge.StateMerged || got.MergeCommit != w.repo.Tip("main") {
				t.Errorf("Wait(a): %+v, %v; want merged at main's tip", got, err)
			}
			got, err = forge.Wait(ctx, w.f, b.Number, 5*time.Millisecond)
			if err != nil || got.State != forge.StateClosed || got.MergeCommit != "" {
				t.Errorf("Wait(b): %+v, %v; want closed", got, err)
			}
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			got, err = forge.Wait(short, w.f, c.Number, 5*time.Millisecond)
			if !errors.Is(err, context.DeadlineExceeded) || got == nil || got.State != forge.StateOpen {
				t.Errorf("Wait(c) past the deadline: %+v, %v; want the open request and DeadlineExceeded", got, err)
			}
		})
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	const wrong = "ghp_wrongwrongwrongwrongwrong"
	for _, kind := range kinds {
		for _, token := range []string{wrong, ""} {
			t.Run(kind+"/"+map[bool]string{true: "wrong", false: "none"}[token != ""], func(t *testing.T) {
				t.Parallel()
				w := newWorld(t, kind)
				var f forge.Forge
				if kind == "github" {
					f = forge.GitHub(w.gh.URL, "acme", "env", token, fast)
				} else {
					f = forge.GitLab(w.gl.URL, "acme/env", token, fast)
				}
				_, err := f.Find(t.Context(), "ferry/production", "main")
				var apiErr *forge.APIError
				if !errors.As(err, &apiErr) || apiErr.Status != 401 {
					t.Fatalf("Find with a bad token: %v; want a 401 *APIError", err)
				}
				msg := err.Error()
				if !strings.Contains(msg, "refused the token") {
					t.Errorf("error %q does not say the token was refused", msg)
				}
				if strings.Contains(msg, w.host.Token) || (token != "" && strings.Contains(msg, token)) {
					t.Errorf("error %q quotes a token", msg)
				}
			})
		}
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			ctx := t.Context()
			w.deploy("ferry/production")

			// Two 502s before the create: it is retried, and made once.
			w.host.Fail(2, 502)
			pr := w.open("ferry/production")
			if n := len(w.host.Requests()); n != 3 {
				t.Errorf("%d requests; want 3 (two 502s and the create)", n)
			}
			// A 502 after the create was carried out: the retry meets
			// its own request, and the Forge returns it.
			w.host.Close(pr.Number)
			w.host.FailAfter(1, 502)
			again := w.open("ferry/production")
			open := 0
			for _, p := range w.host.PRs() {
				if p.State == "open" {
					open++
					if p.Number != again.Number {
						t.Errorf("open request #%d; Open returned #%d", p.Number, again.Number)
					}
				}
			}
			if open != 1 {
				t.Errorf("%d open requests; want 1", open)
			}
			// A host that keeps failing: the error says so, after the
			// attempts allowed.
			w.host.Fail(3, 503)
			_, err := w.f.Get(ctx, again.Number)
			var apiErr *forge.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != 503 || !apiErr.Temporary() || !strings.Contains(err.Error(), "after 3 attempts") {
				t.Errorf("Get against three 503s: %v; want a temporary 503 after 3 attempts", err)
			}
		})
	}
}

// A retry's wait ends with the context.
func TestRetryHonoursContext(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "github", forge.WithBackoff(time.Minute), forge.WithAttempts(5))
	w.host.Fail(5, 502)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := w.f.Get(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get: %v; want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Get took %v after its context ended", d)
	}
}

func TestGitLabReviewers(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "gitlab")
	w.deploy("ferry/production")
	_, err := w.f.Open(t.Context(), forge.Request{Head: "ferry/production", Base: "main", Title: "x", Reviewers: []string{"nobody"}})
	if !errors.Is(err, forge.ErrNotFound) || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("Open with an unknown reviewer: %v; want ErrNotFound naming them", err)
	}
	if n := len(w.host.PRs()); n != 0 {
		t.Errorf("%d requests opened; want none", n)
	}
}

// GitLab allows one open request per source branch, whatever the target.
func TestGitLabOnePerSourceBranch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "gitlab")
	w.repo.Git("branch", "staging", "main")
	w.deploy("ferry/production")
	w.open("ferry/production")
	_, err := w.f.Open(t.Context(), forge.Request{Head: "ferry/production", Base: "staging", Title: "x"})
	if !errors.Is(err, forge.ErrAlreadyExists) {
		t.Errorf("a second request from the same source into another target: %v; want ErrAlreadyExists", err)
	}
}

func TestGitHubEnterprise(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "github")
	w.host.RequireChecks = true
	f := forge.GitHub(w.gh.EnterpriseURL, "acme", "env", w.gh.Token, fast)
	w.deploy("ferry/production")
	pr, err := f.Open(t.Context(), forge.Request{Head: "ferry/production", Base: "main", Title: "Deploy"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := f.AutoMerge(t.Context(), pr, forge.MergeMerge, "Deploy", ""); err != nil {
		t.Fatalf("AutoMerge: %v", err)
	}
	var paths []string
	for _, r := range w.gh.Requests() {
		paths = append(paths, r.Path)
	}
	want := []string{"/api/v3/repos/acme/env/pulls", "/api/graphql"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if a := w.host.PR(pr.Number).AutoMerge; a == nil || a.Method != "merge" {
		t.Errorf("auto-merge %+v; want merge", a)
	}
}

// A merge whose answer is lost: the retry meets a merged request, and the
// Forge sees it is its own.
func TestMergeAnswerLost(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			w.deploy("ferry/production")
			old := w.repo.Tip("main")
			pr := w.open("ferry/production")
			w.host.Inject(testforge.Fault{Method: "PUT", PathSuffix: "/merge", Status: 502, After: true, Times: 1})
			if err := w.f.AutoMerge(t.Context(), pr, forge.MergeSquash, "Deploy", "Ferry-Action: deploy"); err != nil {
				t.Fatalf("AutoMerge: %v", err)
			}
			// One merge: GitHub's squash commit, or GitLab's merge commit
			// over its squash commit.
			tip := w.repo.Tip("main")
			want := map[string]int{"github": 1, "gitlab": 2}[kind]
			if p := parents(w.repo, tip); len(p) != want || p[0] != old {
				t.Errorf("main's tip %s has parents %v; want %d, the first %s", tip, p, want, old)
			}
			if got := w.host.PR(pr.Number); got.State != "merged" || got.MergeCommit != tip {
				t.Errorf("request: %s at %s; want merged at %s", got.State, got.MergeCommit, tip)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind string
		opts []forge.Option
		auth string
		want map[string]string
	}{
		{kind: "github", auth: "bearer", want: map[string]string{"Accept": "application/vnd.github+json",
			"X-Github-Api-Version": "2022-11-28", "User-Agent": "ferry"}},
		{kind: "github", opts: []forge.Option{forge.WithUserAgent("ferry/1.2.3")}, auth: "bearer", want: map[string]string{"User-Agent": "ferry/1.2.3"}},
		{kind: "gitlab", auth: "private-token", want: map[string]string{"User-Agent": "ferry"}},
		{kind: "gitlab", opts: []forge.Option{forge.WithBearer()}, auth: "bearer", want: map[string]string{}},
	} {
		t.Run(tc.kind+"/"+tc.auth, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tc.kind, tc.opts...)
			w.deploy("ferry/production")
			w.open("ferry/production")
			for _, r := range w.host.Requests() {
				if r.Auth != tc.auth {
					t.Errorf("%s %s: token sent as %q; want %q", r.Method, r.Path, r.Auth, tc.auth)
				}
				for k, v := range tc.want {
					if got := r.Header.Get(k); got != v {
						t.Errorf("%s %s: %s %q; want %q", r.Method, r.Path, k, got, v)
					}
				}
			}
		})
	}
}

// Close closes an open request on the host, which then neither finds it
// nor merges it.
func TestClose(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, kind)
			ctx := t.Context()
			w.deploy("ferry/production")
			pr := w.open("ferry/production")
			if err := w.f.Close(ctx, pr.Number); err != nil {
				t.Fatal(err)
			}
			if got := w.host.PR(pr.Number).State; got != "closed" {
				t.Errorf("the host holds #%d %s, want closed", pr.Number, got)
			}
			if got, err := w.f.Find(ctx, "ferry/production", "main"); err != nil || got != nil {
				t.Errorf("Find after Close: %+v, %v; want nil, nil", got, err)
			}
		})
	}
}
