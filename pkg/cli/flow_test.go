package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/cli"
	"github.com/google/go-cmp/cmp"
)

// TestFlowGolden runs the promotion story through the CLI and pins the text
// of history and diff. Registry host and commit hashes vary between runs
// (the port is random), so both are replaced by stable names first.
func TestFlowGolden(t *testing.T) {
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	srv := testgit.Serve(t, repo)
	reg.PushSeeded(t, "team/hello:v1", 1)
	reg.PushSeeded(t, "team/hello:v2", 2)
	env := map[string]string{
		"FERRY_REPO":      srv.RepoURL(repo),
		"GIT_AUTHOR_DATE": "2026-11-01T12:00:00Z",
		"FERRY_AUTHOR":    "Release Bot <bot@example.com>",
	}
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(t, env, args...)
		if code != 0 {
			t.Fatalf("ferry %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	var commits []string
	for _, tag := range []string{"v1", "v2"} {
		out := must("deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:"+tag,
			"--source-repo", "https://github.com/acme/hello", "--source-commit", "src"+tag+"0000", "--build-id", "build-"+tag, "--output", "json")
		var rep struct{ Commit string }
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		commits = append(commits, rep.Commit)
	}

	golden(t, "diff-before-promote.txt", must("diff", "--from", "candidate", "--to", "production", "--path", "apps"), repo, reg.Host)
	if code, _, _ := run(t, env, "diff", "--from", "candidate", "--to", "production", "--path", "apps/hello", "--exit-code"); code != 1 {
		t.Errorf("diff --exit-code with differences: exit %d, want 1", code)
	}

	must("promote", "--from", "candidate", "--to", "production", "--commit", commits[0], "--path", "apps/hello")
	repo.Commit("production", "scale hello to 3 by hand", map[string]string{"apps/hello/replicas.txt": "3\n"})
	must("promote", "--from", "candidate", "--to", "production", "--path", "apps/hello")
	golden(t, "rollback.txt", must("rollback", "--env", "production", "--path", "apps/hello"), repo, reg.Host)

	code, _, errOut := run(t, env, "promote", "--from", "candidate", "--to", "production", "--path", "apps/hello")
	if code != 1 || !strings.Contains(errOut, "--override-rollback") {
		t.Errorf("promote during hold: exit %d, %s", code, errOut)
	}
	golden(t, "history-production.txt", must("history", "--env", "production", "--path", "apps/hello"), repo, reg.Host)
	golden(t, "diff-after-rollback.txt", must("diff", "--from", "candidate", "--to", "production", "--path", "apps/hello"), repo, reg.Host)

	var entries []map[string]any
	if err := json.Unmarshal([]byte(must("history", "--env", "production", "--path", "apps/hello", "--output", "json", "--limit", "2")), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("history json: %v, %d entries", err, len(entries))
	}
	if entries[0]["action"] != "rollback" || entries[1]["action"] != "promote" {
		t.Errorf("history json actions: %v, %v", entries[0]["action"], entries[1]["action"])
	}
	if code, _, _ := run(t, env, "diff", "--from", "production", "--to", "production"); code != cli.ExitUsage {
		t.Errorf("diff to itself: exit %d", code)
	}
}

var shaRE = regexp.MustCompile(`\b[0-9a-f]{40}\b`)

// golden compares out, made stable, with testdata/flow/name.
func golden(t *testing.T, name, out string, repo *testgit.Repo, host string) {
	t.Helper()
	out = strings.ReplaceAll(out, host, "REGISTRY")
	// Name commits by their order on the branches, oldest first.
	names := map[string]string{}
	for i, c := range strings.Fields(repo.Git("rev-list", "--reverse", "--topo-order", "candidate", "production")) {
		names[c] = "commit" + string(rune('A'+i))
	}
	for sha, n := range names {
		out = strings.ReplaceAll(out, sha, n+strings.Repeat(".", 40-len(n)))
		out = strings.ReplaceAll(out, sha[:12], n+strings.Repeat(".", 12-len(n)))
	}
	if m := shaRE.FindString(out); m != "" {
		t.Errorf("unnamed commit %s in output", m)
	}
	path := filepath.Join("..", "..", "testdata", "flow", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/cli -update)", err)
	}
	if diff := cmp.Diff(string(want), out); diff != "" {
		t.Errorf("%s changed (-golden +got):\n%s", name, diff)
	}
}
