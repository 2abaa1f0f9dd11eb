package envrepo

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// A writer that loses a race fetches, on its retry, the new tip and only
// what changed under what it reads; it verifies again only when something
// its Verify read changed.
func TestRetryFetchesWhatChanged(t *testing.T) {
	tests := []struct {
		name string
		// meanwhile is what another writer commits between the first
		// attempt's fetch and its push.
		meanwhile map[string]string
		// wantVerify is how many times Verify runs; wantRefetch how many
		// fetch requests the retry makes before its edit.
		// wantLater, how many it makes after that (the Verify reading
		// what changed).
		wantVerify, wantRefetch, wantLater int64
	}{
		{
			name:        "another app",
			meanwhile:   map[string]string{"apps/app05/deploy.yaml": "kind: Deployment\nmetadata:\n  name: app05-v2\n"},
			wantVerify:  1, // the retry reads the same files: not verified again
			wantRefetch: 1, // the tip alone
		},
		{
			name:        "a new app beside it",
			meanwhile:   map[string]string{"apps/app99/deploy.yaml": "kind: Deployment\nmetadata:\n  name: app99\n"},
			wantVerify:  2, // Verify listed apps/
			wantRefetch: 1,
		},
		{
			name:        "the base the scope builds on",
			meanwhile:   map[string]string{"bases/web/deploy.yaml": "kind: Deployment\nmetadata:\n  name: web-v2\n"},
			wantVerify:  2,
			wantRefetch: 1,
			wantLater:   2, // the base's new tree, its blobs
		},
		{
			name:        "the scope itself",
			meanwhile:   map[string]string{"apps/app03/kustomization.yaml": "resources:\n- deploy.yaml\n- ../../bases/web\n# v2\n"},
			wantVerify:  2,
			wantRefetch: 2, // the tip, the scope whole again
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := scopedRepo(t)
			var p posts
			srv := testgit.Serve(t, r, testgit.WithMiddleware(p.wrap))
			ctx := context.Background()

			var rounds, edits, verifies, atRetry, afterFirst int64
			var baseSeen []string
			w := &Writer{
				Remote:      Remote{URL: srv.RepoURL(r)},
				Branch:      "candidate",
				Author:      Author{Name: "ferry", Email: "ferry@example.com"},
				Scope:       "apps/app03",
				Backoff:     1,
				VerifyReads: true,
				Prepare: func(context.Context) {
					if rounds++; rounds == 2 {
						afterFirst = p.n.Load()
					}
				},
				Verify: func(ctx context.Context, s *Snapshot) error {
					verifies++
					// What kustomize does around a root: stat the
					// directories above it, list some.
					for _, dir := range []string{".", "apps", "bases"} {
						if _, err := fs.Stat(s.FS(), dir); err != nil {
							return err
						}
					}
					if _, err := fs.ReadDir(s.FS(), "apps"); err != nil {
						return err
					}
					for _, name := range []string{"apps/app03/kustomization.yaml", "apps/app03/deploy.yaml", "bases/web/kustomization.yaml", "bases/web/deploy.yaml"} {
						data, err := fs.ReadFile(s.FS(), name)
						if err != nil {
							return err
						}
						if strings.HasPrefix(name, "bases/web/deploy") {
							baseSeen = append(baseSeen, string(data))
						}
					}
					return nil
				},
			}
			res, err := w.Update(ctx, func(ctx context.Context, s *Snapshot) (string, error) {
				edits++
				if edits == 1 {
					r.Commit("candidate", "meanwhile", tc.meanwhile)
				} else {
					atRetry = p.n.Load() - afterFirst
				}
				old, err := s.ReadFile("apps/app03/deploy.yaml")
				if err != nil {
					return "", err
				}
				return "deploy app03", s.WriteFile("apps/app03/deploy.yaml", append(old, "# pinned\n"...))
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Attempts != 2 {
				t.Fatalf("%d attempts, want 2", res.Attempts)
			}
			if verifies != tc.wantVerify {
				t.Errorf("Verify ran %d times, want %d", verifies, tc.wantVerify)
			}
			if atRetry != tc.wantRefetch {
				t.Errorf("the retry made %d fetch requests before its edit, want %d", atRetry, tc.wantRefetch)
			}
			if got := p.n.Load() - afterFirst - atRetry; got != tc.wantLater {
				t.Errorf("%d fetch requests after the retry's edit, want %d", got, tc.wantLater)
			}
			// Both writes landed; the verdict saw the base as it is.
			for name, want := range tc.meanwhile {
				if got := r.Show("candidate", name); got != strings.TrimSuffix(want, "\n") {
					t.Errorf("%s = %q, want the other writer's %q", name, got, want)
				}
			}
			if got := r.Show("candidate", "apps/app03/deploy.yaml"); !strings.HasSuffix(got, "# pinned") {
				t.Errorf("apps/app03/deploy.yaml = %q, want the edit", got)
			}
			if tc.wantVerify == 2 && !strings.Contains(baseSeen[1], r.Show("candidate", "bases/web/deploy.yaml")) {
				t.Errorf("the second Verify read the base as %q, want the tip's", baseSeen[1])
			}
			r.Fsck()
		})
	}
}

// FetchCommitsSince fetches the new commits and nothing else; a branch
// that did not move costs no fetch request.
func TestFetchCommitsSince(t *testing.T) {
	r := scopedRepo(t)
	var p posts
	srv := testgit.Serve(t, r, testgit.WithMiddleware(p.wrap))
	ctx := context.Background()
	remote := Remote{URL: srv.RepoURL(r)}

	h, err := FetchCommits(ctx, remote, "candidate", 16)
	if err != nil {
		t.Fatal(err)
	}
	old := h.Tip
	same, err := FetchCommitsSince(ctx, remote, h)
	if err != nil {
		t.Fatal(err)
	}
	if same.Tip != old || p.n.Load() != 1 {
		t.Fatalf("unmoved: tip %s, %d fetch requests; want %s, 1", same.Tip, p.n.Load(), old)
	}
	for i := range 3 {
		r.Commit("candidate", "move "+string(rune('a'+i)), map[string]string{"apps/app01/deploy.yaml": strings.Repeat("x", i+1)})
	}
	before := p.bytes.Load()
	h2, err := FetchCommitsSince(ctx, remote, same)
	if err != nil {
		t.Fatal(err)
	}
	if got := h2.Tip.String(); got != r.Tip("candidate") {
		t.Fatalf("tip %s, want %s", got, r.Tip("candidate"))
	}
	if got := p.bytes.Load() - before; got > 2048 {
		t.Errorf("fetching 3 commits took %d bytes; want only their messages", got)
	}
	var subjects []string
	if err := h2.Walk(h2.Tip, func(c *object.Commit) bool {
		subjects = append(subjects, strings.TrimSpace(c.Message))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"move c", "move b", "move a", "layout"}; strings.Join(subjects[:4], ",") != strings.Join(want, ",") {
		t.Errorf("walked %q, want it to start %q", subjects, want)
	}
}
