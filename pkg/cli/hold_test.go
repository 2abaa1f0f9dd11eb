package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
)

// heldFixture is production after a rollback of apps/hello: candidate had
// v1 then v2 deployed, production had both promoted, then the rollback put
// v1 back. apps/hello/side is a second workload inside the held scope.
type heldFixture struct {
	reg      *testreg.Registry
	repo     *testgit.Repo
	srv      *testgit.Server
	env      map[string]string
	rollback string // the rollback commit
}

const sideDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello-side
spec:
  selector:
    matchLabels:
      app: hello-side
  template:
    metadata:
      labels:
        app: hello-side
    spec:
      containers:
        - name: side
          image: REGISTRY/team/hello:v0
`

// newHeldTemplate builds the held state once; each case takes a copy.
func newHeldTemplate(t *testing.T) (*testreg.Registry, *testgit.Repo, string) {
	t.Helper()
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	for _, b := range []string{"candidate", "production"} {
		// The broken apps of the template would fail a deploy of the whole
		// branch for reasons of their own.
		repo.Commit(b, "add a side workload", map[string]string{
			"apps/hello/side/deployment.yaml": strings.ReplaceAll(sideDeployment, "REGISTRY", reg.Host),
			"apps/badyaml/notes.yaml":         "",
			"apps/badyaml/deployment.yaml":    "",
			"apps/broken/deployment.yaml":     "",
			"apps/broken/kustomization.yaml":  "",
		})
	}
	for _, tag := range []string{"v1", "v2", "v3"} {
		reg.Push(t, "team/hello:"+tag)
	}
	reg.Push(t, "team/api:v1")
	srv := testgit.Serve(t, repo)
	env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}
	for _, tag := range []string{"v1", "v2"} {
		mustRun(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:"+tag)
		mustRun(t, env, "promote", "--from", "candidate", "--to", "production", "--path", "apps/hello")
	}
	mustRun(t, env, "rollback", "--env", "production", "--path", "apps/hello")
	return reg, repo, repo.Tip("production")
}

func (tmpl heldTemplate) fixture(t *testing.T) *heldFixture {
	t.Helper()
	repo := tmpl.repo.Copy(t)
	srv := testgit.Serve(t, repo)
	return &heldFixture{reg: tmpl.reg, repo: repo, srv: srv, env: map[string]string{"FERRY_REPO": srv.RepoURL(repo)}, rollback: tmpl.rollback}
}

type heldTemplate struct {
	reg      *testreg.Registry
	repo     *testgit.Repo
	rollback string
}

func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, env, args...)
	if code != 0 {
		t.Fatalf("ferry %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// write is one command a case runs after the rollback.
type write []string

func deployTo(scope, tag string, extra ...string) func(h *heldFixture) write {
	return func(h *heldFixture) write {
		return append(write{"deploy", "--env", "production", "--path", scope, "--image", h.reg.Host + "/team/hello:" + tag}, extra...)
	}
}

func deployAPI(extra ...string) func(h *heldFixture) write {
	return func(h *heldFixture) write {
		return append(write{"deploy", "--env", "production", "--path", "apps/api", "--image", h.reg.Host + "/team/api:v1"}, extra...)
	}
}

func promoteTo(scope string, extra ...string) func(h *heldFixture) write {
	return func(*heldFixture) write {
		return append(write{"promote", "--from", "candidate", "--to", "production", "--path", scope}, extra...)
	}
}

// TestHoldRules: a rollback of apps/hello holds every write whose scope
// overlaps it (equal, inside, containing); a disjoint one is free. The hold
// is lifted only by an --override-rollback write whose scope contains
// apps/hello, or by a commit by hand that changes apps/hello.
func TestHoldRules(t *testing.T) {
	reg, repo, rb := newHeldTemplate(t)
	tmpl := heldTemplate{reg: reg, repo: repo, rollback: rb}
	tests := []struct {
		name string
		// before runs first and must succeed (commits by hand, overrides).
		before []func(h *heldFixture) write
		manual map[string]string // a commit by hand on production, before
		then   func(h *heldFixture) write
		held   bool
	}{
		{name: "equal scope, deploy", then: deployTo("apps/hello", "v3"), held: true},
		{name: "equal scope, promote", then: promoteTo("apps/hello"), held: true},
		{name: "inside, deploy", then: deployTo("apps/hello/side", "v3"), held: true},
		{name: "containing, promote of the whole branch", then: promoteTo("."), held: true},
		{name: "containing, promote of apps", then: promoteTo("apps"), held: true},
		{name: "containing, deploy of the whole branch", then: deployTo(".", "v3"), held: true},
		{name: "disjoint, deploy", then: deployAPI(), held: false},
		{name: "disjoint, promote", then: promoteTo("apps/api"), held: false},
		{
			name:   "an override inside does not lift the hold on the scope",
			before: []func(h *heldFixture) write{deployTo("apps/hello/side", "v3", "--override-rollback")},
			then:   deployTo("apps/hello", "v3"), held: true,
		},
		{
			name:   "an override inside does not lift it inside either",
			before: []func(h *heldFixture) write{deployTo("apps/hello/side", "v3", "--override-rollback")},
			then:   deployTo("apps/hello/side", "v2"), held: true,
		},
		{
			name:   "an override of the scope lifts it",
			before: []func(h *heldFixture) write{deployTo("apps/hello", "v3", "--override-rollback")},
			then:   deployTo("apps/hello", "v2"), held: false,
		},
		{
			name:   "an override containing the scope lifts it",
			before: []func(h *heldFixture) write{promoteTo("apps", "--override-rollback")},
			then:   deployTo("apps/hello", "v3"), held: false,
		},
		{
			name:   "a disjoint write does not lift it",
			before: []func(h *heldFixture) write{deployAPI("--override-rollback")},
			then:   deployTo("apps/hello", "v3"), held: true,
		},
		{
			name:   "a commit by hand elsewhere does not lift it",
			manual: map[string]string{"apps/api/README.md": "tuned by hand\n"},
			then:   promoteTo("apps/hello"), held: true,
		},
		{
			name:   "a commit by hand in the scope lifts it (a fix forward)",
			manual: map[string]string{"apps/hello/NOTES.md": "fixed by hand\n"},
			then:   promoteTo("apps/hello"), held: false,
		},
		{
			name:   "a commit by hand inside the scope lifts it",
			manual: map[string]string{"apps/hello/side/NOTES.md": "fixed by hand\n"},
			then:   deployTo("apps/hello", "v3"), held: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tmpl.fixture(t)
			if tc.manual != nil {
				h.repo.Commit("production", "by hand", tc.manual)
			}
			for _, b := range tc.before {
				mustRun(t, h.env, b(h)...)
			}
			before := h.repo.Tip("production")
			args := tc.then(h)
			code, out, errOut := run(t, h.env, args...)
			if !tc.held {
				if code != 0 {
					t.Fatalf("ferry %s: exit %d, want 0\n%s%s", strings.Join(args, " "), code, out, errOut)
				}
				return
			}
			if code != 1 {
				t.Fatalf("ferry %s: exit %d, want 1 (held)\n%s%s", strings.Join(args, " "), code, out, errOut)
			}
			for _, want := range []string{"apps/hello", "rolled back by " + h.rollback[:12], "--override-rollback"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("message lacks %q:\n%s", want, errOut)
				}
			}
			if got := h.repo.Tip("production"); got != before {
				t.Errorf("production moved from %s to %s during the hold", before, got)
			}
			h.repo.Fsck()
		})
	}
}

// TestOverrideTrailer: an override records which rollback it replaced, so
// the history says why the hold no longer applies; a write that overrode
// nothing records nothing.
func TestOverrideTrailer(t *testing.T) {
	reg, repo, rb := newHeldTemplate(t)
	h := heldTemplate{reg: reg, repo: repo, rollback: rb}.fixture(t)
	mustRun(t, h.env, deployTo("apps/hello", "v3", "--override-rollback")(h)...)
	if got := h.repo.Git("log", "-1", "--format=%(trailers:key=Ferry-Override-Rollback,valueonly)", "production"); got != h.rollback {
		t.Errorf("Ferry-Override-Rollback = %q, want %s", got, h.rollback)
	}
	mustRun(t, h.env, deployAPI("--override-rollback")(h)...)
	if got := h.repo.Git("log", "-1", "--format=%(trailers:key=Ferry-Override-Rollback,valueonly)", "production"); got != "" {
		t.Errorf("a write that overrode nothing records %q", got)
	}
}

// TestHoldInFlight: a write whose push is in flight when the scope is
// rolled back must not land on top of the rollback. The first push waits
// in a pre-receive hook until the test has rolled back; the write's
// compare-and-swap then fails, and its retry meets the new rollback.
func TestHoldInFlight(t *testing.T) {
	for _, what := range []string{"deploy", "promote"} {
		t.Run(what, func(t *testing.T) {
			reg := testreg.Start(t, nil)
			repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
			srv := testgit.Serve(t, repo)
			env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}
			for _, tag := range []string{"v1", "v2", "v3"} {
				reg.Push(t, "team/hello:"+tag)
			}
			for _, tag := range []string{"v1", "v2"} {
				mustRun(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:"+tag)
				mustRun(t, env, "promote", "--from", "candidate", "--to", "production", "--path", "apps/hello")
			}
			mustRun(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v3")

			// The first push after this point waits until released.
			dir := t.TempDir()
			arrived, release := filepath.Join(dir, "arrived"), filepath.Join(dir, "release")
			repo.Hook("pre-receive", `#!/bin/sh
cat >/dev/null
if mkdir "`+arrived+`" 2>/dev/null; then
  i=0
  while [ ! -e "`+release+`" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
fi
exit 0
`)
			var args []string
			if what == "deploy" {
				args = []string{"deploy", "--env", "production", "--path", "apps/hello", "--image", reg.Host + "/team/hello:v3", "--output", "json"}
			} else {
				args = []string{"promote", "--from", "candidate", "--to", "production", "--path", "apps/hello", "--output", "json"}
			}
			type result struct {
				code        int
				out, errOut string
			}
			done := make(chan result, 1)
			go func() {
				code, out, errOut := run(t, env, args...)
				done <- result{code, out, errOut}
			}()
			waitFor(t, arrived)
			mustRun(t, env, "rollback", "--env", "production", "--path", "apps/hello")
			rollback := repo.Tip("production")
			if err := os.WriteFile(release, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var res result
			select {
			case res = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the write did not end")
			}
			if res.code != 1 || !strings.Contains(res.errOut, "rolled back by "+rollback[:12]) {
				t.Errorf("%s in flight: exit %d, want 1 and the hold\nstdout: %s\nstderr: %s", what, res.code, res.out, res.errOut)
			}
			var rep map[string]any
			if json.Unmarshal([]byte(res.out), &rep) == nil && rep["commit"] != nil && rep["commit"] != "" {
				t.Errorf("a commit was reported: %v", rep["commit"])
			}
			if got := repo.Tip("production"); got != rollback {
				t.Errorf("production is %s, want the rollback %s: the in-flight %s landed on top of it\n%s", got, rollback, what, repo.Git("log", "-3", "--format=%h %s", "production"))
			}
			repo.Fsck()
		})
	}
}

// waitFor waits until path exists, for at most a minute.
func waitFor(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
