package cli_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
)

// trips records every request to the git server and the registry, each
// held for a while, so that requests made one after another cannot
// overlap and requests made at once do.
type trips struct {
	mu    sync.Mutex
	on    bool
	spans []span
}

type span struct {
	what       string
	start, end time.Time
}

const tripDelay = 150 * time.Millisecond

func (tr *trips) wrap(server string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tr.mu.Lock()
			on := tr.on
			tr.mu.Unlock()
			if !on {
				h.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			time.Sleep(tripDelay)
			h.ServeHTTP(w, r)
			what := server + " " + r.Method + " " + r.URL.Path
			if q := r.URL.Query().Get("service"); q != "" {
				what += "?" + q
			}
			tr.mu.Lock()
			tr.spans = append(tr.spans, span{what, start, time.Now()})
			tr.mu.Unlock()
		})
	}
}

// chain is the longest run of requests each made after the previous one
// ended: the round trips a run waits for one after another.
func (tr *trips) chain() []span {
	s := slices.Clone(tr.spans)
	slices.SortFunc(s, func(a, b span) int { return a.start.Compare(b.start) })
	best := make([][]span, len(s))
	var longest []span
	for i := range s {
		best[i] = []span{s[i]}
		for j := range i {
			if !s[j].end.After(s[i].start) && len(best[j])+1 > len(best[i]) {
				best[i] = append(slices.Clone(best[j]), s[i])
			}
		}
		if len(best[i]) > len(longest) {
			longest = best[i]
		}
	}
	return longest
}

// A deploy waits for at most 6 round trips one after another, registry
// included (issue 14's floor): the registry, the hold check's history and
// the tip are asked at once, the push's discovery while the edit runs, the
// build times of the old and the new image at once.
func TestDeployRoundTrips(t *testing.T) {
	tr := &trips{}
	reg := testreg.Start(t, tr.wrap("registry"))
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	srv := testgit.Serve(t, repo, testgit.WithMiddleware(tr.wrap("git")))
	reg.Push(t, "team/hello:v1")
	reg.Push(t, "team/hello:v2")
	env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}
	// v1 first, so the measured deploy replaces a pinned digest and the
	// out-of-order guard asks the registry about both builds.
	mustRun(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v1")

	tr.mu.Lock()
	tr.on = true
	tr.mu.Unlock()
	mustRun(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v2")
	tr.mu.Lock()
	tr.on = false
	chain := tr.chain()
	all := len(tr.spans)
	tr.mu.Unlock()

	t0 := chain[0].start
	for _, s := range tr.spans {
		if s.start.Before(t0) {
			t0 = s.start
		}
	}
	var all2 []string
	for _, s := range tr.spans {
		all2 = append(all2, fmt.Sprintf("%4d-%4dms %s", s.start.Sub(t0).Milliseconds(), s.end.Sub(t0).Milliseconds(), s.what))
	}
	slices.Sort(all2)
	t.Logf("every request:\n  %s", strings.Join(all2, "\n  "))
	var steps []string
	for _, s := range chain {
		steps = append(steps, s.what)
	}
	t.Logf("%d requests; %d one after another:\n  %s", all, len(chain), strings.Join(steps, "\n  "))
	if len(chain) > 6 {
		t.Errorf("a deploy waits for %d round trips one after another, want at most 6:\n  %s", len(chain), strings.Join(steps, "\n  "))
	}
	if !strings.Contains(repo.Show("candidate", "apps/hello/kustomization.yaml"), "newTag: v2") {
		t.Errorf("the deploy did not land:\n%s", repo.Show("candidate", "apps/hello/kustomization.yaml"))
	}
}
