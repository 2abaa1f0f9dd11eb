package envrepo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
)

// wireBytes counts what crosses the wire to and from a git server: the
// bodies of requests and of answers, and the requests.
type wireBytes struct{ in, out, reqs atomic.Int64 }

func (c *wireBytes) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.reqs.Add(1)
		if r.ContentLength > 0 {
			c.in.Add(r.ContentLength)
		}
		next.ServeHTTP(&countingWriter{ResponseWriter: w, n: &c.out}, r)
	})
}

// BenchmarkDeployBytes: what one deploy-shaped update of apps/app0042
// (read its directory, change one file, push) moves over HTTP, with the
// whole repository's trees fetched (Fetch, blob:none) and with the fetch
// scoped to the app (FetchScoped), in repositories of 2,000 and 8,000 apps
// of 5 files each, as bench/envbench lays them out. It reports bytes
// answered by the server per update (down-B/op), bytes sent to it (up-B/op)
// and requests.
//
//	go test -run '^$' -bench DeployBytes -benchtime 5x ./pkg/envrepo
func BenchmarkDeployBytes(b *testing.B) {
	for _, apps := range []int{2000, 8000} {
		r := testgit.NewRepo(b, "", "candidate")
		files := map[string]string{}
		for a := range apps {
			for _, f := range []string{"kustomization.yaml", "deployment.yaml", "service.yaml", "configmap.yaml", "hpa.yaml"} {
				files[fmt.Sprintf("apps/app%04d/%s", a, f)] = fmt.Sprintf("# app %d\nkind: %s\nmetadata:\n  name: app%04d\n", a, strings.TrimSuffix(f, ".yaml"), a)
			}
		}
		r.Commit("candidate", "apps", files)
		var c wireBytes
		srv := testgit.Serve(b, r, testgit.WithMiddleware(c.wrap))
		for _, mode := range []string{"blob:none", "scoped"} {
			b.Run(fmt.Sprintf("apps=%d/%s", apps, mode), func(b *testing.B) {
				w := writer(srv.RepoURL(r), "candidate")
				if mode == "scoped" {
					w.Scope = "apps/app0042"
				}
				c.in.Store(0)
				c.out.Store(0)
				c.reqs.Store(0)
				i := 0
				for b.Loop() {
					i++
					_, err := w.Update(context.Background(), func(ctx context.Context, s *Snapshot) (string, error) {
						if err := s.Prefetch("apps/app0042"); err != nil {
							return "", err
						}
						if _, err := s.ReadFile("apps/app0042/kustomization.yaml"); err != nil {
							return "", err
						}
						return "deploy", s.WriteFile("apps/app0042/deployment.yaml", fmt.Appendf(nil, "kind: Deployment\nv: %s %d\n", mode, i))
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(c.out.Load())/float64(b.N), "down-B/op")
				b.ReportMetric(float64(c.in.Load())/float64(b.N), "up-B/op")
				b.ReportMetric(float64(c.reqs.Load())/float64(b.N), "reqs/op")
			})
		}
	}
}
