package envrepo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
)

// appsRepo is a repository whose main branch holds n apps of two files.
func appsRepo(t *testing.T, n int) *testgit.Repo {
	t.Helper()
	r := testgit.NewRepo(t, "", "main")
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("apps/app%03d/deploy.yaml", i)] = fmt.Sprintf("kind: Deployment\nname: app%03d\nimage: app:1\n", i)
		files[fmt.Sprintf("apps/app%03d/kustomization.yaml", i)] = "resources:\n- deploy.yaml\n"
	}
	r.Commit("main", "apps", files)
	return r
}

// thinEdit changes a file, adds one and removes one: deltas of the trees
// on the paths and of the changed blob, a whole new blob.
func thinEdit(_ context.Context, s *Snapshot) (string, error) {
	if err := s.WriteFile("apps/app042/deploy.yaml", []byte("kind: Deployment\nname: app042\nimage: app:2\n")); err != nil {
		return "", err
	}
	if err := s.WriteFile("apps/app042/extra.yaml", []byte("kind: ConfigMap\n")); err != nil {
		return "", err
	}
	return "edit", s.Remove("apps/app043/kustomization.yaml")
}

func checkThinEdit(t *testing.T, r *testgit.Repo, res *Result) {
	t.Helper()
	r.Fsck()
	if got := r.Tip("main"); got != res.Commit.String() {
		t.Fatalf("main is at %s, want %s", got, res.Commit)
	}
	if got := r.Show("main", "apps/app042/deploy.yaml"); !strings.Contains(got, "image: app:2") {
		t.Fatalf("deploy.yaml = %q", got)
	}
	if got := r.Show("main", "apps/app042/extra.yaml"); got != "kind: ConfigMap" {
		t.Fatalf("extra.yaml = %q", got)
	}
	if got := r.Git("ls-tree", "-r", "--name-only", "main", "apps/app043"); got != "apps/app043/deploy.yaml" {
		t.Fatalf("apps/app043 holds %q", got)
	}
	if got := len(strings.Fields(r.Git("ls-tree", "-r", "--name-only", "main"))); got != 401 {
		t.Fatalf("%d files on main, want 401 (README, 200 apps of 2, one added, one removed)", got)
	}
}

// A push sends the changed trees and blobs as deltas against the base's,
// and git's receive-pack completes the thin pack, whether it unpacks it
// (small pushes) or indexes it (index-pack --fix-thin), over HTTP and
// file://; the repository stays clean for git fsck --strict.
func TestThinPush(t *testing.T) {
	for _, tc := range []struct {
		name      string
		http      bool
		indexPack bool
	}{
		{"http unpack-objects", true, false},
		{"http index-pack", true, true},
		{"file unpack-objects", false, false},
		{"file index-pack", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := appsRepo(t, 200)
			if tc.indexPack {
				r.Git("config", "receive.unpackLimit", "1")
			}
			url := "file://" + r.Dir
			var sent atomic.Int64
			if tc.http {
				srv := testgit.Serve(t, r, testgit.WithMiddleware(func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
						if strings.HasSuffix(req.URL.Path, "/git-receive-pack") {
							body, _ := io.ReadAll(req.Body)
							sent.Add(int64(len(body)))
							req.Body = io.NopCloser(bytes.NewReader(body))
						}
						h.ServeHTTP(w, req)
					})
				}))
				url = srv.RepoURL(r)
			}
			w := &Writer{Remote: Remote{URL: url}, Branch: "main", Author: author}
			res, err := w.Update(context.Background(), thinEdit)
			if err != nil {
				t.Fatal(err)
			}
			checkThinEdit(t, r, res)
			// Whole, the apps tree alone is 200 entries of 35 bytes.
			if tc.http && sent.Load() > 2000 {
				t.Fatalf("the push sent %d bytes", sent.Load())
			}
		})
	}
}

// go-git's in-process server (file remotes where git is absent) stores a
// pack as it comes and cannot complete a thin one: it gets whole objects.
func TestPushInProcessServer(t *testing.T) {
	r := appsRepo(t, 200)
	defer func(f func() bool) { haveGit = f }(haveGit)
	haveGit = func() bool { return false }
	w := &Writer{Remote: Remote{URL: "file://" + r.Dir}, Branch: "main", Author: author}
	wr, err := newWire(w.Remote)
	if err != nil {
		t.Fatal(err)
	}
	if wr.c != server.DefaultServer || wr.thin(capability.NewList()) {
		t.Fatal("the in-process server would be sent a thin pack")
	}
	res, err := w.Update(context.Background(), thinEdit)
	if err != nil {
		t.Fatal(err)
	}
	checkThinEdit(t, r, res)
}

// A server that says no-thin gets whole objects.
func TestNoThin(t *testing.T) {
	w, err := newWire(Remote{URL: "https://example.com/env.git"})
	if err != nil {
		t.Fatal(err)
	}
	caps := capability.NewList()
	if !w.thin(caps) {
		t.Fatal("no thin pack for a server that allows them")
	}
	if err := caps.Set(noThin); err != nil {
		t.Fatal(err)
	}
	if w.thin(caps) {
		t.Fatal("a thin pack for a server that said no-thin")
	}
}

// The thin pack of a one-file edit holds the commit whole, the apps/ tree
// and the app's tree as deltas, and whole what is smaller so: the root tree
// of one entry and the short blob.
func TestThinPackDeltas(t *testing.T) {
	s := editedSnapshot(t, 50)
	c, err := s.commit("edit", object.Signature{Name: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := s.newObjectsWithBases(c)
	if err != nil {
		t.Fatal(err)
	}
	var pack bytes.Buffer
	deltas, err := s.writeThinPack(&pack, objs)
	if err != nil || len(objs) != 5 || deltas != 2 {
		t.Fatalf("%d objects, %d deltas, %v", len(objs), deltas, err)
	}
}
