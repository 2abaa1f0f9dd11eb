package envrepo

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/go-git/go-git/v5/plumbing"
)

// blobs counts the blobs a snapshot holds in memory.
func blobs(t *testing.T, s *Snapshot) int {
	t.Helper()
	iter, err := s.s.IterEncodedObjects(plumbing.BlobObject)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	iter.ForEach(func(plumbing.EncodedObject) error { n++; return nil })
	return n
}

// A server that offers partial clones sends trees only; blobs come when
// read, a directory at a time, and the push still lands whole.
func TestPartialFetch(t *testing.T) {
	r := testgit.NewRepo(t, "", "candidate")
	files := map[string]string{}
	for i := range 20 {
		for _, f := range []string{"a.yaml", "b.yaml"} {
			files[fmt.Sprintf("apps/app%02d/%s", i, f)] = fmt.Sprintf("app: %d\nfile: %s\n", i, f)
		}
	}
	r.Commit("candidate", "apps", files)
	srv := testgit.Serve(t, r)
	ctx := context.Background()

	for _, tc := range []struct {
		name        string
		noFilter    bool
		wantInitial int
	}{
		{"partial", false, 0},
		{"full", true, 41}, // 40 files and the README
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Fetch(ctx, Remote{URL: srv.RepoURL(r), NoFilter: tc.noFilter}, "candidate")
			if err != nil {
				t.Fatal(err)
			}
			if got := blobs(t, s); got != tc.wantInitial {
				t.Fatalf("%d blobs after the fetch, want %d", got, tc.wantInitial)
			}
			data, err := s.ReadFile("apps/app03/a.yaml")
			if err != nil || string(data) != "app: 3\nfile: a.yaml\n" {
				t.Fatalf("ReadFile = %q, %v", data, err)
			}
			if tc.noFilter {
				return
			}
			if got := blobs(t, s); got != 2 { // the file and its sibling
				t.Errorf("%d blobs after reading one file, want 2", got)
			}
			if err := s.Prefetch("apps/app07"); err != nil {
				t.Fatal(err)
			}
			if got := blobs(t, s); got != 4 {
				t.Errorf("%d blobs after prefetching a directory, want 4", got)
			}
		})
	}

	w := writer(srv.RepoURL(r), "candidate")
	res, err := w.Update(ctx, func(ctx context.Context, s *Snapshot) (string, error) {
		if err := s.Prefetch("apps/app05"); err != nil {
			return "", err
		}
		return "edit one app", s.WriteFile("apps/app05/a.yaml", []byte("app: 5\nfile: changed\n"))
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Fsck()
	if got := r.Show("candidate", "apps/app05/a.yaml"); got != "app: 5\nfile: changed" {
		t.Errorf("pushed content %q", got)
	}
	if got := r.Git("ls-tree", "-r", "--name-only", "candidate"); strings.Count(got, "\n")+1 != 41 {
		t.Errorf("tree lost files:\n%s", got)
	}
	if !strings.Contains(res.Diff, "+file: changed") {
		t.Errorf("diff: %s", res.Diff)
	}
}
