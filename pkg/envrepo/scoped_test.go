package envrepo

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// scopedRepo is a repository with apps side by side, a base they share and
// a deeper layout: apps/appNN/{kustomization,deploy}.yaml,
// bases/web/{kustomization,deploy}.yaml,
// clusters/{prod,staging}/apps/appNN/kustomization.yaml.
func scopedRepo(t *testing.T) *testgit.Repo {
	t.Helper()
	r := testgit.NewRepo(t, "", "candidate")
	files := map[string]string{
		"bases/web/kustomization.yaml": "resources:\n- deploy.yaml\n",
		"bases/web/deploy.yaml":        "kind: Deployment\nmetadata:\n  name: web\n",
	}
	for i := range 10 {
		files[fmt.Sprintf("apps/app%02d/kustomization.yaml", i)] = "resources:\n- deploy.yaml\n- ../../bases/web\n"
		files[fmt.Sprintf("apps/app%02d/deploy.yaml", i)] = fmt.Sprintf("kind: Deployment\nmetadata:\n  name: app%02d\n", i)
		for _, c := range []string{"prod", "staging"} {
			files[fmt.Sprintf("clusters/%s/apps/app%02d/kustomization.yaml", c, i)] = fmt.Sprintf("# %s %d\nresources:\n- ../../../../apps/app%02d\n", c, i, i)
		}
	}
	r.Commit("candidate", "layout", files)
	return r
}

// has reports whether the object at rev (e.g. "candidate:apps/app01") is in
// the snapshot's storage.
func has(t *testing.T, r *testgit.Repo, s *Snapshot, rev string) bool {
	t.Helper()
	return s.s.HasEncodedObject(plumbing.NewHash(r.Git("rev-parse", rev))) == nil
}

// posts counts the fetch requests (POSTs to git-upload-pack) and the bytes
// answered to them.
type posts struct{ n, bytes atomic.Int64 }

func (p *posts) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			p.n.Add(1)
			w = &countingWriter{ResponseWriter: w, n: &p.bytes}
		}
		next.ServeHTTP(w, r)
	})
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func TestFetchScoped(t *testing.T) {
	r := scopedRepo(t)
	var p posts
	srv := testgit.Serve(t, r, testgit.WithMiddleware(p.wrap))
	ctx := context.Background()

	s, err := FetchScoped(ctx, Remote{URL: srv.RepoURL(r)}, "candidate", "apps/app03")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.n.Load(); got != 2 {
		t.Errorf("%d fetch requests, want 2 (the tip, the scope)", got)
	}
	for rev, want := range map[string]bool{
		"candidate:apps":                          true,
		"candidate:apps/app03":                    true,
		"candidate:apps/app03/kustomization.yaml": true,
		"candidate:apps/app03/deploy.yaml":        true,
		"candidate:README.md":                     true, // depth 1: in tree:2
		"candidate:bases":                         true,
		"candidate:clusters":                      true,
		"candidate:apps/app04":                    false, // a sibling
		"candidate:apps/app04/deploy.yaml":        false,
		"candidate:bases/web":                     false,
		"candidate:clusters/prod":                 false,
	} {
		if got := has(t, r, s, rev); got != want {
			t.Errorf("%s in storage: %v, want %v", rev, got, want)
		}
	}

	// The scope reads without another request.
	data, err := fs.ReadFile(s.FS(), "apps/app03/deploy.yaml")
	if err != nil || !strings.Contains(string(data), "name: app03") {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	if got := p.n.Load(); got != 2 {
		t.Errorf("%d fetch requests after reading in the scope, want still 2", got)
	}
	// A base outside it, as kustomize reaches it: the tree on demand, then
	// the directory's blobs.
	data, err = fs.ReadFile(s.FS(), "apps/app03/../../bases/web/deploy.yaml"[len("apps/app03/../../"):])
	if err != nil || !strings.Contains(string(data), "name: web") {
		t.Fatalf("reading the base = %q, %v", data, err)
	}
	ents, err := fs.ReadDir(s.FS(), "bases/web")
	if err != nil || len(ents) != 2 {
		t.Fatalf("ReadDir(bases/web) = %v, %v", ents, err)
	}
	if got := p.n.Load(); got != 4 {
		t.Errorf("%d fetch requests after reading a base, want 4 (its tree, its blobs)", got)
	}
	if has(t, r, s, "candidate:apps/app04") {
		t.Error("reading the base fetched a sibling app")
	}
	// Walking everything works too, a tree at a time where missing.
	n := 0
	if err := fs.WalkDir(s.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := strings.Count(r.Git("ls-tree", "-r", "--name-only", "candidate"), "\n") + 1; n != want {
		t.Errorf("walked %d files, want %d", n, want)
	}
	// Prefetch of a directory outside: one request brings it whole.
	before := p.n.Load()
	if err := s.Prefetch("clusters"); err != nil {
		t.Fatal(err)
	}
	if got := p.n.Load() - before; got > 1 {
		t.Errorf("Prefetch(clusters) took %d requests", got)
	}
	if !has(t, r, s, "candidate:clusters/staging/apps/app07/kustomization.yaml") {
		t.Error("Prefetch(clusters) left a blob out")
	}
}

// A scope deeper than the tip fetch's depth: the trees on its path come one
// request a level, each alone; the same level elsewhere stays behind.
func TestFetchScopedDeep(t *testing.T) {
	r := scopedRepo(t)
	var p posts
	srv := testgit.Serve(t, r, testgit.WithMiddleware(p.wrap))
	s, err := FetchScoped(context.Background(), Remote{URL: srv.RepoURL(r)}, "candidate", "clusters/prod/apps/app07")
	if err != nil {
		t.Fatal(err)
	}
	// tip (tree:2), clusters/prod, clusters/prod/apps, the scope.
	if got := p.n.Load(); got != 4 {
		t.Errorf("%d fetch requests, want 4", got)
	}
	for rev, want := range map[string]bool{
		"candidate:clusters/prod":                                  true,
		"candidate:clusters/prod/apps":                             true,
		"candidate:clusters/prod/apps/app07":                       true,
		"candidate:clusters/prod/apps/app07/kustomization.yaml":    true,
		"candidate:clusters/staging":                               false,
		"candidate:clusters/prod/apps/app06":                       false,
		"candidate:clusters/staging/apps/app07/kustomization.yaml": false,
		"candidate:apps/app07":                                     false,
	} {
		if got := has(t, r, s, rev); got != want {
			t.Errorf("%s in storage: %v, want %v", rev, got, want)
		}
	}
	if err := s.CheckScope("clusters/prod/apps/app07"); err != nil {
		t.Fatal(err)
	}
	// The app it points at, through the FS.
	data, err := fs.ReadFile(s.FS(), "apps/app07/deploy.yaml")
	if err != nil || !strings.Contains(string(data), "name: app07") {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
}

// A scope that does not exist yet, or that runs into a file, fetches what
// there is and leaves the verdict to CheckScope; "." is Fetch.
func TestFetchScopedOdd(t *testing.T) {
	r := scopedRepo(t)
	srv := testgit.Serve(t, r)
	ctx := context.Background()
	for _, tc := range []struct{ scope, wantCheck string }{
		{"apps/new-app", ""},
		{"apps/app01/deploy.yaml", "is a file"},
		{"newdir/x/y/z", ""},
		{"README.md/x", "is a file"},
		{".", ""},
		{"../etc", "leaves the repository"},
	} {
		s, err := FetchScoped(ctx, Remote{URL: srv.RepoURL(r)}, "candidate", tc.scope)
		if err != nil {
			t.Fatalf("%s: %v", tc.scope, err)
		}
		err = s.CheckScope(tc.scope)
		if tc.wantCheck == "" && err != nil || tc.wantCheck != "" && (err == nil || !strings.Contains(err.Error(), tc.wantCheck)) {
			t.Errorf("CheckScope(%q) = %v, want %q", tc.scope, err, tc.wantCheck)
		}
	}
}

// An edit under the scope pushes only what changed, and the repository
// stays whole; a graft from another snapshot lands too.
func TestScopedPush(t *testing.T) {
	r := scopedRepo(t)
	srv := testgit.Serve(t, r)
	ctx := context.Background()
	files := r.Git("ls-tree", "-r", "--name-only", "candidate")

	w := writer(srv.RepoURL(r), "candidate")
	w.Scope = "apps/app05"
	res, err := w.Update(ctx, func(ctx context.Context, s *Snapshot) (string, error) {
		if has(t, r, s, "candidate:apps/app06") {
			t.Error("the writer's fetch was not scoped")
		}
		if err := s.Prefetch("apps/app05"); err != nil {
			return "", err
		}
		if err := s.WriteFile("apps/app05/deploy.yaml", []byte("kind: Deployment\nmetadata:\n  name: app05\n  v: 2\n")); err != nil {
			return "", err
		}
		c, err := s.commit("probe", object.Signature{Name: "t", When: time.Unix(0, 0)}, nil)
		if err != nil {
			return "", err
		}
		hashes, err := s.newObjects(c)
		if err != nil {
			return "", err
		}
		// commit, root, apps, apps/app05, the blob
		if len(hashes) != 5 {
			t.Errorf("a push would send %d objects, want 5", len(hashes))
		}
		return "edit app05", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Fsck()
	if got := r.Show("candidate", "apps/app05/deploy.yaml"); !strings.Contains(got, "v: 2") {
		t.Errorf("pushed %q", got)
	}
	if got := r.Git("ls-tree", "-r", "--name-only", "candidate"); got != files {
		t.Errorf("the tree's files changed:\n%s", got)
	}
	if !strings.Contains(res.Diff, "+  v: 2") || len(res.Files) != 1 {
		t.Errorf("diff %q, files %v", res.Diff, res.Files)
	}

	// Graft another app's tree (from a scoped snapshot of its own) over
	// a scope: the copied subtree's objects are there or fetched.
	src, err := FetchScoped(ctx, Remote{URL: srv.RepoURL(r)}, "candidate", "apps/app01")
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := src.Tree("apps/app01")
	w.Scope = "apps/app09"
	res, err = w.Update(ctx, func(ctx context.Context, s *Snapshot) (string, error) {
		return "graft", s.Graft("apps/app09", src, tree)
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Fsck()
	if got := r.Git("rev-parse", "candidate:apps/app09"); got != tree.String() {
		t.Errorf("apps/app09 is %s, want %s", got, tree)
	}
	if !strings.Contains(res.Diff, "name: app01") {
		t.Errorf("graft diff %q", res.Diff)
	}
}

// A server that offers filters but not tree:<d> gets blob:none, and one
// that offers no filter sends everything; both still read and push.
func TestFetchScopedFallback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config [][]string
		blobs  bool // all blobs fetched
		trees  bool // all trees fetched
	}{
		{"tree refused", [][]string{{"uploadpackfilter.tree.allow", "false"}}, false, true},
		{"tree too deep", [][]string{{"uploadpackfilter.tree.maxDepth", "1"}}, false, false},
		{"only blob:none", [][]string{{"uploadpackfilter.allow", "false"}, {"uploadpackfilter.blob:none.allow", "true"}}, false, true},
		{"no filter", [][]string{{"uploadpack.allowFilter", "false"}}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := scopedRepo(t)
			for _, kv := range tc.config {
				r.Git("config", kv[0], kv[1])
			}
			srv := testgit.Serve(t, r)
			s, err := FetchScoped(context.Background(), Remote{URL: srv.RepoURL(r)}, "candidate", "apps/app03")
			if err != nil {
				t.Fatal(err)
			}
			if got := has(t, r, s, "candidate:clusters/staging/apps/app04"); got != tc.trees {
				t.Errorf("a tree outside the scope fetched: %v, want %v", got, tc.trees)
			}
			if !tc.trees && !has(t, r, s, "candidate:apps/app03/deploy.yaml") {
				t.Error("the scope's blobs are missing")
			}
			if got := has(t, r, s, "candidate:apps/app04/deploy.yaml"); got != tc.blobs {
				t.Errorf("a sibling's blob fetched: %v, want %v", got, tc.blobs)
			}
			w := writer(srv.RepoURL(r), "candidate")
			w.Scope = "apps/app03"
			if _, err := w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
				return "edit", s.WriteFile("apps/app03/deploy.yaml", []byte("kind: Deployment\n"))
			}); err != nil {
				t.Fatal(err)
			}
			r.Fsck()
		})
	}
}

// The diff of an edit in the scope reads nothing outside it: no request.
func TestScopedDiffFetchesNothing(t *testing.T) {
	r := scopedRepo(t)
	var p posts
	srv := testgit.Serve(t, r, testgit.WithMiddleware(p.wrap))
	s, err := FetchScoped(context.Background(), Remote{URL: srv.RepoURL(r)}, "candidate", "apps/app03")
	if err != nil {
		t.Fatal(err)
	}
	before := p.n.Load()
	if err := s.WriteFile("apps/app03/deploy.yaml", []byte("kind: Deployment\nv: 2\n")); err != nil {
		t.Fatal(err)
	}
	d, err := s.Diff()
	if err != nil || !strings.Contains(d, "+v: 2") {
		t.Fatalf("Diff = %q, %v", d, err)
	}
	if _, err := s.FileChanges(); err != nil {
		t.Fatal(err)
	}
	if got := p.n.Load() - before; got != 0 {
		t.Errorf("the diff took %d requests", got)
	}
}
