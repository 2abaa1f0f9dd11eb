package envrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/google/go-cmp/cmp"
)

var author = Author{Name: "ferry", Email: "ferry@example.com"}

// seedRepo makes a repo whose candidate branch holds a regular file, an
// executable, a symlink and a submodule entry: the entries ferry must never
// disturb.
func seedRepo(t *testing.T) *testgit.Repo {
	t.Helper()
	r := testgit.NewRepo(t, "", "candidate")
	work := t.TempDir()
	testgit.Run(t, work, "clone", "-q", "-b", "candidate", r.Dir, ".")
	must(t, os.MkdirAll(filepath.Join(work, "apps/hello"), 0o755))
	must(t, os.WriteFile(filepath.Join(work, "apps/hello/deploy.yaml"), []byte("kind: Deployment\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(work, "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Symlink("apps/hello", filepath.Join(work, "link")))
	testgit.Run(t, work, "add", "-A")
	testgit.Run(t, work, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("ab", 20)+",vendor/sub")
	testgit.Run(t, work, "commit", "-q", "-m", "layout")
	testgit.Run(t, work, "push", "-q", "origin", "HEAD:refs/heads/candidate")
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writer(url, branch string) *Writer {
	return &Writer{Remote: Remote{URL: url}, Branch: branch, Author: author, Backoff: time.Millisecond}
}

func TestUpdateOverHTTP(t *testing.T) {
	r := seedRepo(t)
	srv := testgit.Serve(t, r)
	before := r.Tip("candidate")
	lsBefore := r.Git("ls-tree", "-r", "candidate")

	w := writer(srv.RepoURL(r), "candidate")
	res, err := w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
		// "a-b" sorts before "a/" in git order; fsck --strict checks it.
		for _, f := range []string{"apps/hello/deploy.yaml", "a-b", "a/x"} {
			if err := s.WriteFile(f, []byte("new "+f+"\n")); err != nil {
				return "", err
			}
		}
		return "edit\n\nFerry-Action: deploy\n", nil
	})
	must(t, err)
	r.Fsck()
	if !res.Changed || res.Attempts != 1 || res.Parent.String() != before {
		t.Fatalf("result = %+v", res)
	}
	if got := r.Tip("candidate"); got != res.Commit.String() {
		t.Fatalf("tip %s, want %s", got, res.Commit)
	}
	if got := r.Git("rev-parse", "candidate^"); got != before {
		t.Errorf("parent = %s, want %s", got, before)
	}
	if diff := cmp.Diff([]string{"a-b", "a/x", "apps/hello/deploy.yaml"}, res.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if got := r.Show("candidate", "apps/hello/deploy.yaml"); got != "new apps/hello/deploy.yaml" {
		t.Errorf("content = %q", got)
	}
	// Every entry ferry did not write is byte-identical, modes included.
	lsAfter := r.Git("ls-tree", "-r", "candidate")
	for _, line := range strings.Split(lsBefore, "\n") {
		if strings.HasSuffix(line, "apps/hello/deploy.yaml") {
			continue
		}
		if !strings.Contains(lsAfter, line) {
			t.Errorf("entry changed or lost: %q\nafter:\n%s", line, lsAfter)
		}
	}
	for _, want := range []string{"160000 commit", "120000 blob", "100755 blob"} {
		if !strings.Contains(lsAfter, want) {
			t.Errorf("ls-tree lacks %q:\n%s", want, lsAfter)
		}
	}
}

func TestUpdateNoChange(t *testing.T) {
	r := seedRepo(t)
	before := r.Tip("candidate")
	res, err := writer(r.Dir, "candidate").Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
		data, err := s.ReadFile("apps/hello/deploy.yaml")
		if err != nil {
			return "", err
		}
		return "same", s.WriteFile("apps/hello/deploy.yaml", data)
	})
	must(t, err)
	if res.Changed || !res.Commit.IsZero() {
		t.Errorf("result = %+v, want unchanged", res)
	}
	if got := r.Tip("candidate"); got != before {
		t.Errorf("tip moved to %s", got)
	}
}

func TestDryRunPushesNothing(t *testing.T) {
	r := seedRepo(t)
	before := r.Tip("candidate")
	w := writer(r.Dir, "candidate")
	w.DryRun = true
	res, err := w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
		return "x", s.WriteFile("apps/hello/deploy.yaml", []byte("kind: Pod\n"))
	})
	must(t, err)
	if !res.Changed || !res.Commit.IsZero() {
		t.Errorf("result = %+v", res)
	}
	for _, want := range []string{"--- a/apps/hello/deploy.yaml", "+++ b/apps/hello/deploy.yaml", "-kind: Deployment", "+kind: Pod"} {
		if !strings.Contains(res.Diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, res.Diff)
		}
	}
	if got := r.Tip("candidate"); got != before {
		t.Errorf("dry run moved the tip")
	}
}

// A writer that loses the race rebuilds on the new tip: both edits survive.
func TestUpdateRetriesOnMovedBranch(t *testing.T) {
	r := seedRepo(t)
	srv := testgit.Serve(t, r)
	calls := 0
	res, err := writer(srv.RepoURL(r), "candidate").Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
		calls++
		if calls == 1 {
			// Someone else pushes between our fetch and our push.
			r.Commit("candidate", "other app", map[string]string{"apps/other/x.yaml": "a: 1\n"})
		}
		return "mine", s.WriteFile("apps/hello/deploy.yaml", []byte("mine\n"))
	})
	must(t, err)
	r.Fsck()
	if res.Attempts != 2 || calls != 2 {
		t.Errorf("attempts = %d, calls = %d, want 2 and 2", res.Attempts, calls)
	}
	if got := r.Show("candidate", "apps/other/x.yaml"); got != "a: 1" {
		t.Errorf("concurrent edit lost: %q", got)
	}
	if got := r.Show("candidate", "apps/hello/deploy.yaml"); got != "mine" {
		t.Errorf("our edit lost: %q", got)
	}
	if n := r.Git("rev-list", "--merges", "--count", "candidate"); n != "0" {
		t.Errorf("history has %s merges, want linear", n)
	}
}

func TestUpdateGivesUpAfterAttempts(t *testing.T) {
	r := seedRepo(t)
	w := writer(r.Dir, "candidate")
	w.Attempts = 3
	calls := 0
	_, err := w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
		calls++
		r.Commit("candidate", "busy", map[string]string{"busy.txt": fmt.Sprint(calls)})
		return "mine", s.WriteFile("mine.txt", []byte("x"))
	})
	if !errors.Is(err, ErrConflict) || calls != 3 {
		t.Fatalf("err = %v, calls = %d; want ErrConflict after 3", err, calls)
	}
	if ue := (*UpdateError)(nil); !errors.As(err, &ue) || ue.Attempts != 3 {
		t.Errorf("err = %#v, want an *UpdateError of 3 attempts", err)
	}
	if strings.Contains(r.Git("ls-tree", "-r", "--name-only", "candidate"), "mine.txt") {
		t.Error("mine.txt was pushed")
	}
}

// A server-side hook that refuses the push is reported once, not retried.
func TestUpdateHookRejection(t *testing.T) {
	r := seedRepo(t)
	hook := filepath.Join(r.Dir, "hooks", "pre-receive")
	must(t, os.WriteFile(hook, []byte("#!/bin/sh\necho 'GH006: Protected branch update failed' >&2\nexit 1\n"), 0o755))
	srv := testgit.Serve(t, r)
	before := r.Tip("candidate")
	calls := 0
	_, err := writer(srv.RepoURL(r), "candidate").Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
		calls++
		return "x", s.WriteFile("x", []byte("x"))
	})
	if !errors.Is(err, ErrRejected) || calls != 1 {
		t.Fatalf("err = %v, calls = %d", err, calls)
	}
	if !strings.Contains(err.Error(), "pre-receive hook declined") || !strings.Contains(err.Error(), "GH006: Protected branch update failed") {
		t.Errorf("the server's message is missing: %v", err)
	}
	if r.Tip("candidate") != before {
		t.Error("tip moved")
	}
}

func TestConcurrentWriters(t *testing.T) {
	r := seedRepo(t)
	srv := testgit.Serve(t, r)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := writer(srv.RepoURL(r), "candidate")
			w.Attempts = 30
			w.Backoff = 20 * time.Millisecond
			_, errs[i] = w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
				return fmt.Sprintf("app%d", i), s.WriteFile(fmt.Sprintf("apps/app%d/v.yaml", i), []byte("v: 1\n"))
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	r.Fsck()
	files := r.Git("ls-tree", "-r", "--name-only", "candidate")
	for i := range n {
		if !strings.Contains(files, fmt.Sprintf("apps/app%d/v.yaml", i)) {
			t.Errorf("app%d lost", i)
		}
	}
	if got := r.Git("rev-list", "--count", "candidate"); got != fmt.Sprint(n+2) {
		t.Errorf("commit count %s, want %d", got, n+2)
	}
}

func TestFetchErrors(t *testing.T) {
	r := seedRepo(t)
	_, err := Fetch(context.Background(), Remote{URL: r.Dir}, "nope")
	if !errors.Is(err, ErrBranchNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing branch: %v", err)
	}
	srv := testgit.Serve(t, r)
	_, err = Fetch(context.Background(), Remote{URL: srv.URL + "/missing.git"}, "candidate")
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing repo: %v", err)
	}
}

func TestSnapshotFS(t *testing.T) {
	r := seedRepo(t)
	s, err := Fetch(context.Background(), Remote{URL: r.Dir}, "candidate")
	must(t, err)
	must(t, s.WriteFile("apps/new/k.yaml", []byte("k: v\n")))
	var got []string
	must(t, fs.WalkDir(s.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		got = append(got, p+" "+d.Type().String())
		return nil
	}))
	want := []string{". d---------", "README.md ----------", "apps d---------", "apps/hello d---------",
		"apps/hello/deploy.yaml ----------", "apps/new d---------", "apps/new/k.yaml ----------",
		"link L---------", "run.sh ----------", "vendor d---------", "vendor/sub ?---------"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}
	if _, err := fs.ReadFile(s.FS(), "link"); err == nil {
		t.Error("reading through a symlink succeeded")
	}
	if err := s.WriteFile("link", []byte("x")); err == nil {
		t.Error("writing over a symlink succeeded")
	}
	if err := s.WriteFile("vendor/sub", []byte("x")); err == nil {
		t.Error("writing over a submodule succeeded")
	}
	must(t, s.Remove("apps/new"))
	if s.Changed() {
		t.Error("write then remove left a change")
	}
}

func TestCheckScope(t *testing.T) {
	r := seedRepo(t)
	s, err := Fetch(context.Background(), Remote{URL: r.Dir}, "candidate")
	must(t, err)
	tests := []struct {
		dir, wantErr string
	}{
		{".", ""},
		{"apps/hello", ""},
		{"apps/not-yet", ""},
		{"../x", "leaves the repository"},
		{"apps/../../x", "leaves the repository"},
		{"/etc", "absolute"},
		{"", "empty"},
		{"link", "symlink"},
		{"link/sub", "symlink"},
		{"vendor/sub", "submodule"},
		{"run.sh/x", "is a file"},
		{"apps//hello", "not clean"},
		{".git/hooks", ".git"},
		{`apps\hello`, "backslash"},
	}
	for _, tc := range tests {
		err := s.CheckScope(tc.dir)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckScope(%q) = %v, want error containing %q", tc.dir, err, tc.wantErr)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://user:s3cret@github.com/acme/env.git", "https://user:***@github.com/acme/env.git"},
		{"fetch https://s3cret@host/x failed", "fetch https://***@host/x failed"},
		{"ssh://git@host/x", "ssh://git@host/x"},
		{"no url here", "no url here"},
		{"a http://u:p@h b https://u:q@h", "a http://u:***@h b https://u:***@h"},
	}
	for _, tc := range tests {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	clean, u, p := SplitCredentials("https://x-access-token:tok@github.com/a/b.git")
	if clean != "https://github.com/a/b.git" || u != "x-access-token" || p != "tok" {
		t.Errorf("SplitCredentials = %q %q %q", clean, u, p)
	}
}
