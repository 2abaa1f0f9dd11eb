package envrepo

import (
	"context"
	"errors"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// forget drops an object from a fetched snapshot's storage, as a broken
// fetch or a bug would leave it.
func forget(t *testing.T, st any, h plumbing.Hash) {
	t.Helper()
	m, ok := st.(*memory.Storage)
	if !ok {
		t.Fatalf("storage is %T, not memory", st)
	}
	if _, ok := m.Objects[h]; !ok {
		t.Fatalf("object %s is not there to forget", h)
	}
	delete(m.Objects, h)
	delete(m.Trees, h)
	delete(m.Commits, h)
	delete(m.Blobs, h)
}

// A change whose files cannot be listed must not validate as "no files":
// Touched fails, and so does the update, before anything is pushed.
func TestTouchedFailsClosed(t *testing.T) {
	r := seedRepo(t)
	srv := testgit.Serve(t, r)
	before := r.Tip("candidate")
	verified := false
	w := writer(srv.RepoURL(r), "candidate")
	w.Verify = func(ctx context.Context, s *Snapshot) error {
		files, err := s.Touched()
		if err != nil {
			return err
		}
		verified = len(files) > 0
		return nil
	}
	_, err := w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
		if err := s.WriteFile("apps/hello/new.yaml", []byte("kind: ConfigMap\n")); err != nil {
			return "", err
		}
		old, ok := s.BaseTree("apps/hello")
		if !ok {
			t.Fatal("no apps/hello")
		}
		forget(t, s.s, old)
		s.lazy = nil         // or the object is fetched again on demand
		delete(s.trees, old) // and the decoded copy
		return "edit", nil
	})
	if err == nil || !errors.Is(err, plumbing.ErrObjectNotFound) {
		t.Fatalf("Update with an unreadable tree: %v, want object not found", err)
	}
	if verified {
		t.Error("Verify saw a file list")
	}
	if got := r.Tip("candidate"); got != before {
		t.Errorf("candidate moved to %s", got)
	}
}

// A history walk that cannot read a commit fails; only the edge of the
// fetch ends it quietly, and then it says so with ErrTruncated.
func TestWalkFailsClosed(t *testing.T) {
	r := testgit.NewRepo(t, "", "candidate")
	for i := 0; i < 5; i++ {
		r.Commit("candidate", "change", map[string]string{"f": string(rune('a'+i)) + "\n"})
	}
	srv := testgit.Serve(t, r)
	ctx := context.Background()

	h, err := FetchCommits(ctx, Remote{URL: srv.RepoURL(r)}, "candidate", 3)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := h.Walk(h.Tip, func(c *object.Commit) bool { n++; return true }); !errors.Is(err, ErrTruncated) || n != 3 {
		t.Errorf("walk to the edge of a depth-3 fetch: %d commits, %v; want 3 and ErrTruncated", n, err)
	}
	n = 0
	if err := h.Walk(h.Tip, func(c *object.Commit) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Errorf("walk that stops itself: %d commits, %v", n, err)
	}

	full, err := FetchCommits(ctx, Remote{URL: srv.RepoURL(r)}, "candidate", 0)
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	if err := full.Walk(full.Tip, func(c *object.Commit) bool { n++; return true }); err != nil || n != 6 {
		t.Errorf("walk of the whole history: %d commits, %v; want 6 and no error", n, err)
	}
	tip, err := full.Commit(full.Tip)
	if err != nil {
		t.Fatal(err)
	}
	forget(t, full.s, tip.ParentHashes[0])
	n = 0
	if err := full.Walk(full.Tip, func(c *object.Commit) bool { n++; return true }); err == nil || errors.Is(err, ErrTruncated) {
		t.Errorf("walk past a missing commit: %d commits, %v; want a read error", n, err)
	}
}

// An operation that outlives its context is aborted and awaited, so its
// goroutine does not run on; one that cannot be aborted is left after a
// bounded grace.
func TestWithContextAborts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	blocked := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		<-blocked
		cancel()
	}()
	err := withContext(ctx, func() error {
		close(blocked)
		<-ended // a read that returns once its session is closed
		return errors.New("use of closed network connection")
	}, func() { close(ended) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("withContext = %v, want context.Canceled", err)
	}
	select {
	case <-ended:
	default:
		t.Error("abort was not called")
	}
}
