package envrepo

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
)

// ReadFile reads a root file of the default branch, or of a named one,
// fetching the root tree and that blob, not the repository.
func TestReadFile(t *testing.T) {
	r := scopedRepo(t)
	r.Commit("candidate", "config", map[string]string{"ferry.yaml": "version: 1\nenvironments:\n  - name: candidate\n"})
	r.Git("branch", "-f", "other", "candidate~1")
	r.Git("symbolic-ref", "HEAD", "refs/heads/candidate")
	var p posts
	srv := testgit.Serve(t, r, testgit.WithMiddleware(p.wrap))
	remote := Remote{URL: srv.RepoURL(r)}
	ctx := context.Background()

	data, err := ReadFile(ctx, remote, "", "ferry.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "name: candidate") {
		t.Errorf("ReadFile = %q", data)
	}
	if got := p.bytes.Load(); got > 4096 {
		t.Errorf("reading one file fetched %d bytes; want the root tree and the blob", got)
	}
	if _, err := ReadFile(ctx, remote, "other", "ferry.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile on a branch without it: %v, want fs.ErrNotExist", err)
	}
	if _, err := ReadFile(ctx, remote, "nope", "ferry.yaml"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("ReadFile on a missing branch: %v", err)
	}
}
