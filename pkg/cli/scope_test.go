package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/google/go-cmp/cmp"
)

// A trailing slash, as a shell's tab completion adds it, names the same
// scope: every command does, prints and records exactly what it does
// without the slash. Two identical repos go through the same story, one
// with --path apps/hello and one with --path apps/hello/; with the dates
// fixed, the commits must come out byte for byte the same (same hashes,
// so same trees and trailers), and so must every JSON result.
func TestPathTrailingSlash(t *testing.T) {
	reg := testreg.Start(t, nil)
	reg.PushSeeded(t, "team/hello:v1", 1)
	reg.PushSeeded(t, "team/hello:v2", 2)
	steps := [][]string{
		{"deploy", "--env", "candidate", "--image", reg.Host + "/team/hello:v1"},
		{"deploy", "--env", "candidate", "--image", reg.Host + "/team/hello:v2"},
		{"diff", "--from", "candidate", "--to", "production"},
		{"promote", "--from", "candidate", "--to", "production"},
		{"rollback", "--env", "production"},
		{"history", "--env", "production"},
		{"history", "--env", "candidate"},
	}
	story := func(path string) (repo *testgit.Repo, outputs []string) {
		t.Helper()
		repo = testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
		srv := testgit.Serve(t, repo)
		env := map[string]string{
			"FERRY_REPO":      srv.RepoURL(repo),
			"FERRY_OUTPUT":    "json",
			"GIT_AUTHOR_DATE": "2026-11-01T12:00:00Z",
		}
		for _, step := range steps {
			args := append(append([]string{}, step...), "--path", path)
			code, out, errOut := run(t, env, args...)
			if code != 0 {
				t.Errorf("ferry %s: exit %d: %s", strings.Join(args, " "), code, errOut)
			}
			outputs = append(outputs, out)
		}
		return repo, outputs
	}
	plain, want := story("apps/hello")
	slashed, got := story("apps/hello/")
	for i := range steps {
		if diff := cmp.Diff(want[i], got[i]); diff != "" {
			t.Errorf("ferry %s: --path apps/hello/ printed otherwise than apps/hello (-plain +slash):\n%s", strings.Join(steps[i], " "), diff)
		}
	}
	for _, b := range []string{"candidate", "production"} {
		if p, s := plain.Tip(b), slashed.Tip(b); p != s {
			t.Errorf("%s: tip %s with apps/hello/, %s with apps/hello:\n%s\n---\n%s", b, s, p,
				slashed.Git("log", "--format=%H%n%B", b), plain.Git("log", "--format=%H%n%B", b))
		}
	}
	// And what is recorded is the clean form, whatever the other repo says.
	for _, b := range []string{"candidate", "production"} {
		for _, v := range strings.Fields(slashed.Git("log", "--format=%(trailers:key=Ferry-Path,valueonly)", b)) {
			if v != "apps/hello" {
				t.Errorf("%s: Ferry-Path %q, want apps/hello", b, v)
			}
		}
		for _, v := range strings.Fields(slashed.Git("log", "--format=%(trailers:key=Ferry-App,valueonly)", b)) {
			if v != "hello" {
				t.Errorf("%s: Ferry-App %q, want hello", b, v)
			}
		}
	}
	for i, out := range got[:5] {
		var rep struct{ Path, App string }
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Errorf("ferry %s: %v\n%s", strings.Join(steps[i], " "), err, out)
			continue
		}
		wantApp := "hello"
		if steps[i][0] == "diff" {
			wantApp = "" // a diff names apps by directory
		}
		if rep.Path != "apps/hello" || rep.App != wantApp {
			t.Errorf("ferry %s --path apps/hello/: path %q, app %q; want apps/hello and %q", strings.Join(steps[i], " "), rep.Path, rep.App, wantApp)
		}
	}
	slashed.Fsck()
}

// A failed run's hooks hear of the scope in its clean form too.
func TestPathTrailingSlashInFailureEvent(t *testing.T) {
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	srv := testgit.Serve(t, repo)
	dir := t.TempDir()
	hook := filepath.Join(dir, "hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nprintf '%s\\n' \"$FERRY_PATH\" >> "+filepath.Join(dir, "paths")+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}
	for _, args := range [][]string{
		{"deploy", "--env", "candidate", "--image", reg.Host + "/team/hello:v9"},
		{"promote", "--from", "candidate", "--to", "nope"},
		{"rollback", "--env", "candidate", "--steps", "9"},
	} {
		args = append(args, "--path", "apps/hello/", "--exec-hook", hook, "--notify-on", "failure")
		if code, _, errOut := run(t, env, args...); code != 1 {
			t.Errorf("ferry %s: exit %d, want 1: %s", strings.Join(args, " "), code, errOut)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "paths"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "apps/hello\napps/hello\napps/hello\n"; string(got) != want {
		t.Errorf("FERRY_PATH of the failure events: %q, want %q", got, want)
	}
}
