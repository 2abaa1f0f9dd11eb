package envrepo

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
)

// A token the host does not accept yet: the first requests are refused,
// as GitHub may refuse an installation token minted a moment ago.
func TestAuthRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refuse  int32 // requests refused before the token is accepted
		status  int
		retry   bool
		wantErr error
	}{
		{name: "401 twice, retried", refuse: 2, status: http.StatusUnauthorized, retry: true},
		{name: "403 once, retried", refuse: 1, status: http.StatusForbidden, retry: true},
		{name: "401 without the option", refuse: 1, status: http.StatusUnauthorized, wantErr: ErrAuthRequired},
		{name: "refused for good, retried and given up", refuse: 1 << 30, status: http.StatusUnauthorized, retry: true, wantErr: ErrAuthRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := seedRepo(t)
			var refused atomic.Int32
			srv := testgit.Serve(t, r, testgit.WithMiddleware(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					if _, pass, _ := req.BasicAuth(); pass != "tok3n-fresh" || refused.Add(1) <= tc.refuse {
						http.Error(w, "Invalid username or token", tc.status)
						return
					}
					next.ServeHTTP(w, req)
				})
			}))
			// A stand-in for ghapp.Fresh: up to five tries, no waits.
			tries := 0
			opts := []Option{WithToken("x-access-token", "tok3n-fresh")}
			if tc.retry {
				opts = append(opts, WithAuthRetry(func(ctx context.Context, op func() error, refused func(error) bool) error {
					for n := 1; ; n++ {
						tries++
						err := op()
						if err == nil || !refused(err) || n == 5 {
							return err
						}
					}
				}))
			}
			remote, err := Open(srv.RepoURL(r), opts...)
			if err != nil {
				t.Fatal(err)
			}
			w := &Writer{Remote: remote, Branch: "candidate", Author: author}
			res, err := w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
				return "edit", s.WriteFile("apps/hello/deploy.yaml", []byte("kind: Pod\n"))
			})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !res.Changed {
				t.Fatalf("Update: %v, %+v", err, res)
			}
			if int32(tries) <= tc.refuse {
				t.Errorf("%d tries for %d refusals", tries, tc.refuse)
			}
			r.Fsck()
		})
	}
}
