package envrepo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/go-git/go-git/v5/plumbing"
)

// A write to a pull request's head: made on the base's tip, pushed to the
// head with a lease; the base never moves; a head someone else wrote is
// not overwritten.
func TestWriterHead(t *testing.T) {
	r := scopedRepo(t)
	srv := testgit.Serve(t, r)
	ctx := context.Background()
	base := r.Tip("candidate")
	owned := func(_ context.Context, _ plumbing.Hash, msg string) error {
		if !strings.Contains(msg, "Ferry-Action:") {
			return errors.New("not ferry's: " + strings.TrimSpace(msg))
		}
		return nil
	}
	write := func(content string) (*Result, error) {
		w := &Writer{Remote: Remote{URL: srv.RepoURL(r)}, Branch: "candidate", Head: "ferry/candidate/app03", HeadCheck: owned,
			Author: Author{Name: "ferry", Email: "ferry@example.com"}, Scope: "apps/app03", Backoff: 1}
		return w.Update(ctx, func(ctx context.Context, s *Snapshot) (string, error) {
			return "deploy app03\n\nFerry-Action: deploy\n", s.WriteFile("apps/app03/deploy.yaml", []byte(content))
		})
	}
	// Absent: created on the base's tip.
	res, err := write("v1\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Tip("ferry/candidate/app03"); got != res.Commit.String() || r.Git("rev-parse", got+"^") != base {
		t.Fatalf("head %s (parent %s), want %s on %s", got, r.Git("rev-parse", got+"^"), res.Commit, base)
	}
	if r.Tip("candidate") != base {
		t.Fatal("the base moved")
	}
	// Ferry's own: replaced, not stacked (the head is rebuilt on the base).
	res2, err := write("v2\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Tip("ferry/candidate/app03"); got != res2.Commit.String() || r.Git("rev-parse", got+"^") != base {
		t.Errorf("head %s, want %s on %s", got, res2.Commit, base)
	}
	if got := r.Show("ferry/candidate/app03", "apps/app03/deploy.yaml"); got != "v2" {
		t.Errorf("head holds %q, want v2", got)
	}
	// Someone else's commit on the head: refused, nothing pushed.
	foreign := r.Commit("ferry/candidate/app03", "a reviewer's fix", map[string]string{"apps/app03/deploy.yaml": "fixed by hand\n"})
	if _, err := write("v3\n"); err == nil || !strings.Contains(err.Error(), "not ferry's") {
		t.Fatalf("write over a foreign head: %v, want refused", err)
	}
	if r.Tip("ferry/candidate/app03") != foreign {
		t.Error("the foreign head was overwritten")
	}
	r.Fsck()
}
