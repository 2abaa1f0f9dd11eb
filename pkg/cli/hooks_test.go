package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/cli"
)

// After a push: the webhook gets the report, the exec hook runs with the
// FERRY_* variables, GitHub Actions outputs are written; a failing hook
// does not undo the push and changes the exit status only when strict.
func TestHooksAfterDeploy(t *testing.T) {
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	srv := testgit.Serve(t, repo)
	d1 := reg.Push(t, "team/hello:v1")
	reg.Push(t, "team/hello:v2")

	var bodies []map[string]any
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("webhook body is not JSON: %s", b)
		}
		bodies = append(bodies, m)
		w.WriteHeader(http.StatusCreated)
	}))
	defer hook.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusBadRequest)
	}))
	defer failing.Close()

	dir := t.TempDir()
	script := filepath.Join(dir, "hook.sh")
	envOut := filepath.Join(dir, "env.txt")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv | grep '^FERRY_' > '"+envOut+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ghOut, ghSummary := filepath.Join(dir, "out"), filepath.Join(dir, "summary")
	env := map[string]string{"FERRY_REPO": srv.RepoURL(repo), "GITHUB_OUTPUT": ghOut, "GITHUB_STEP_SUMMARY": ghSummary}

	code, _, errOut := run(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v1",
		"--notify-webhook", hook.URL+"/ferry", "--exec-hook", script)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tip := repo.Tip("candidate")
	if calls.Load() != 1 || bodies[0]["result"] != "success" || bodies[0]["commit"] != tip || bodies[0]["action"] != "deploy" {
		t.Errorf("webhook got %d calls: %v", calls.Load(), bodies)
	}
	hookEnv, err := os.ReadFile(envOut)
	if err != nil {
		t.Fatalf("exec hook did not run: %v", err)
	}
	for _, want := range []string{"FERRY_ACTION=deploy", "FERRY_RESULT=success", "FERRY_COMMIT=" + tip, "FERRY_DIGEST=" + d1} {
		if !strings.Contains(string(hookEnv), want+"\n") {
			t.Errorf("exec hook env lacks %q:\n%s", want, hookEnv)
		}
	}
	out, _ := os.ReadFile(ghOut)
	for _, want := range []string{"changed=true\n", "commit=" + tip + "\n", "digest=" + d1 + "\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("GITHUB_OUTPUT lacks %q:\n%s", want, out)
		}
	}
	if summary, _ := os.ReadFile(ghSummary); !strings.Contains(string(summary), d1) {
		t.Errorf("job summary lacks the digest:\n%s", summary)
	}

	// A no-op fires nothing by default.
	run(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v1", "--notify-webhook", hook.URL)
	if calls.Load() != 1 {
		t.Errorf("a no-op fired the webhook")
	}

	// A failing hook: the push stands; exit 0, or 3 with --strict-hooks.
	for _, strict := range []bool{false, true} {
		tag := "v2"
		if strict {
			tag = "v1"
		}
		args := []string{"deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host + "/team/hello:" + tag, "--notify-webhook", failing.URL}
		want := 0
		if strict {
			args = append(args, "--strict-hooks")
			want = cli.ExitHooks
		}
		before := repo.Tip("candidate")
		code, _, errOut := run(t, env, args...)
		if code != want || !strings.Contains(errOut, "stands") || repo.Tip("candidate") == before {
			t.Errorf("strict=%v: exit %d (want %d), tip moved: %v\n%s", strict, code, want, repo.Tip("candidate") != before, errOut)
		}
	}

	// A bad URL is a usage error before anything is pushed.
	before := repo.Tip("candidate")
	if code, _, errOut := run(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v2", "--notify-slack", "not a url"); code != cli.ExitUsage || repo.Tip("candidate") != before {
		t.Errorf("bad hook URL: exit %d: %s", code, errOut)
	}
}
