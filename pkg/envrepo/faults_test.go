package envrepo

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
)

// dropper breaks the connection of the first n requests whose path ends in
// service (git-upload-pack for fetches, git-receive-pack for pushes). With
// after set, the request reaches git first, so the server has done the work
// when the answer is lost.
func dropper(service string, n int32, after bool) (func(http.Handler) http.Handler, *atomic.Int32) {
	var dropped atomic.Int32
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/"+service) || dropped.Load() >= n {
				next.ServeHTTP(w, r)
				return
			}
			dropped.Add(1)
			if after {
				next.ServeHTTP(httptest.NewRecorder(), r)
			} else {
				io.CopyN(io.Discard, r.Body, 64) // a little of the pack, then nothing
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		})
	}, &dropped
}

func TestNetworkFaults(t *testing.T) {
	tests := []struct {
		name         string
		service      string
		drops        int32
		after        bool
		wantAttempts int
		wantErr      string
	}{
		{name: "fetch dropped once", service: "git-upload-pack", drops: 1, wantAttempts: 2},
		{name: "push dropped before the server saw it", service: "git-receive-pack", drops: 1, wantAttempts: 2},
		// The server updated the ref; only the answer was lost. Listing the
		// branch shows our commit, so there is nothing to redo.
		{name: "push answer lost", service: "git-receive-pack", drops: 1, after: true, wantAttempts: 1},
		{name: "every push dropped", service: "git-receive-pack", drops: 100, wantErr: "giving up on candidate"},
		{name: "every fetch dropped", service: "git-upload-pack", drops: 100, wantErr: "giving up on candidate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := seedRepo(t)
			mw, dropped := dropper(tc.service, tc.drops, tc.after)
			srv := testgit.Serve(t, r, testgit.WithMiddleware(mw))
			before := r.Tip("candidate")
			w := writer(srv.RepoURL(r), "candidate")
			w.Attempts = 4
			res, err := w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
				return "edit", s.WriteFile("apps/hello/deploy.yaml", []byte("kind: Pod\n"))
			})
			r.Fsck()
			if dropped.Load() == 0 {
				t.Fatal("no connection was dropped; the fault never happened")
			}
			tip := r.Tip("candidate")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if tip != before {
					t.Errorf("remote moved to %s after a failed update", tip)
				}
				if ue := (*UpdateError)(nil); !errors.As(err, &ue) || ue.Attempts != w.Attempts {
					t.Errorf("err = %#v, want an *UpdateError of %d attempts", err, w.Attempts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Attempts != tc.wantAttempts {
				t.Errorf("attempts = %d, want %d", res.Attempts, tc.wantAttempts)
			}
			// Either old or fully new, never anything else: here, new.
			if tip != res.Commit.String() || r.Git("rev-parse", "candidate^") != before {
				t.Errorf("tip %s, want %s on top of %s", tip, res.Commit, before)
			}
			if got := r.Show("candidate", "apps/hello/deploy.yaml"); got != "kind: Pod" {
				t.Errorf("content %q", got)
			}
		})
	}
}
