package envrepo

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

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

// A retry's fetch brings the commits since the lost attempt's tip, and
// nothing the attempt already held; the hold's history extends from it
// without a fetch of its own.
func TestRetryFetchExtendsHistory(t *testing.T) {
	r := scopedRepo(t)
	var p posts
	srv := testgit.Serve(t, r, testgit.WithMiddleware(p.wrap))
	ctx := context.Background()
	remote := Remote{URL: srv.RepoURL(r)}

	h, err := FetchCommits(ctx, remote, "candidate", 16)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := FetchScoped(ctx, remote, "candidate", "apps/app03")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r.Commit("candidate", "move "+string(rune('a'+i)), map[string]string{"apps/app01/deploy.yaml": strings.Repeat("x", i+1)})
	}
	n, bytes := p.n.Load(), p.bytes.Load()
	s2, err := fetchScoped(ctx, remote, "candidate", "apps/app03", s1)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Base.String(); got != r.Tip("candidate") {
		t.Fatalf("retry fetched %s, want the tip %s", got, r.Tip("candidate"))
	}
	if got := p.n.Load() - n; got != 1 {
		t.Errorf("the retry made %d fetch requests, want 1 (the scope is unchanged)", got)
	}
	if got := p.bytes.Load() - bytes; got > 4096 {
		t.Errorf("the retry fetched %d bytes; want the 3 commits and their top trees", got)
	}
	if data, err := fs.ReadFile(s2.FS(), "apps/app03/deploy.yaml"); err != nil || !strings.Contains(string(data), "app03") {
		t.Errorf("reading the scope on the retry = %q, %v", data, err)
	}
	n = p.n.Load()
	h2, err := h.Extend(s2)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.n.Load() - n; got != 0 {
		t.Errorf("Extend made %d fetch requests, want 0", got)
	}
	var subjects []string
	if err := h2.Walk(s2.Base, func(c *object.Commit) bool {
		subjects = append(subjects, strings.TrimSpace(c.Message))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := "move c,move b,move a,layout"; len(subjects) < 4 || strings.Join(subjects[:4], ",") != want {
		t.Errorf("walked %q, want it to start %q", subjects, want)
	}

	// A branch rewritten under the retry, onto a line the snapshot (a
	// fetch of depth 1) does not hold: Extend cannot connect it to what it
	// had, and says so rather than answering from a wrong line.
	tree := r.Tip("candidate") + "^{tree}"
	side := r.Git("commit-tree", "-m", "side", tree)
	r.Git("update-ref", "refs/heads/candidate", r.Git("commit-tree", "-p", side, "-m", "rewritten", tree))
	fresh, err := FetchScoped(ctx, remote, "candidate", "apps/app03")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Extend(fresh); err == nil {
		t.Error("Extend onto a rewritten branch succeeded")
	}
}

// The wait between attempts: exponential from a set base, else linear in
// the last attempt's time, clamped; never zero, never past the cap.
func TestRetryWait(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name          string
		base, took    time.Duration
		n             int
		window        time.Duration // every wait is in [1ns, window]
		wantSomeAbove time.Duration
	}{
		{name: "set base, first retry", base: 500 * ms, n: 1, window: 500 * ms, wantSomeAbove: 250 * ms},
		{name: "set base doubles", base: 500 * ms, n: 3, window: 2000 * ms, wantSomeAbove: 1000 * ms},
		{name: "set base capped", base: 500 * ms, n: 10, window: 5000 * ms, wantSomeAbove: 2500 * ms},
		{name: "attempt-scaled, first retry", took: 80 * ms, n: 1, window: 80 * ms, wantSomeAbove: 40 * ms},
		{name: "attempt-scaled grows linearly", took: 80 * ms, n: 4, window: 320 * ms, wantSomeAbove: 160 * ms},
		{name: "a fast attempt waits at least a 20ms window", took: ms, n: 1, window: 20 * ms, wantSomeAbove: 10 * ms},
		{name: "a slow attempt waits at most 500ms a step", took: 9 * time.Second, n: 2, window: 1000 * ms, wantSomeAbove: 500 * ms},
		{name: "attempt-scaled capped", took: 400 * ms, n: 29, window: 5000 * ms, wantSomeAbove: 2500 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var longest time.Duration
			for range 2000 {
				d := retryWait(tc.base, 5*time.Second, tc.took, tc.n)
				if d < 1 || d > tc.window {
					t.Fatalf("retryWait = %v, want in [1ns, %v]", d, tc.window)
				}
				longest = max(longest, d)
			}
			if longest < tc.wantSomeAbove {
				t.Errorf("longest of 2000 waits %v, want some above %v (full jitter)", longest, tc.wantSomeAbove)
			}
		})
	}
}
