package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
)

type fanOutJSON struct {
	Action  string
	Targets []struct {
		Repo     string
		Changed  bool
		Commit   string
		Attempts int
		Error    string
	}
	Succeeded, Failed int
}

// One deploy to 30 env repos behind one git http-backend, through the
// CLI: three fail on purpose (no branch, a pre-receive hook that refuses,
// a host that never answers); the other 27 land; the JSON lists all 30 in
// the order given; the exit status is 1; nothing that failed moved.
func TestFanOutCLIThirtyRepos(t *testing.T) {
	reg := testreg.Start(t, nil)
	digest := reg.Push(t, "team/hello:v1")
	tmpl := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	root := t.TempDir()
	var repos []*testgit.Repo
	for i := range 29 {
		repos = append(repos, tmpl.CopyTo(t, root, fmt.Sprintf("region%02d.git", i)))
	}
	srv := testgit.ServeRoot(t, root)
	repos[3].Git("branch", "-m", "candidate", "elsewhere") // no candidate branch
	repos[7].Hook("pre-receive", "#!/bin/sh\necho 'policy: region07 is frozen' >&2\nexit 1\n")
	before := map[int]string{7: repos[7].Tip("candidate")}

	args := []string{"deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host + "/team/hello:v1",
		"--output", "json", "--parallel", "4", "--attempts", "3", "--timeout", "8s"}
	var urls []string
	for i, r := range repos {
		urls = append(urls, srv.RepoURL(r))
		if i == 14 {
			urls = append(urls, testgit.HangingURL(t))
		}
	}
	for _, u := range urls {
		args = append(args, "--repo", u)
	}
	code, out, errOut := run(t, nil, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (some failed)\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "3 of 30 env repos failed") {
		t.Errorf("stderr %q, want the count", errOut)
	}
	var rep fanOutJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if len(rep.Targets) != 30 || rep.Succeeded != 27 || rep.Failed != 3 || rep.Action != "deploy" {
		t.Fatalf("%d targets, %d succeeded, %d failed, action %q; want 30, 27, 3, deploy", len(rep.Targets), rep.Succeeded, rep.Failed, rep.Action)
	}
	for i, tr := range rep.Targets {
		if tr.Repo != urls[i] {
			t.Errorf("target %d is %s, want %s (the order given)", i, tr.Repo, urls[i])
		}
	}
	wantErr := map[int]string{3: `"candidate" does not exist`, 7: "policy: region07 is frozen", 15: "deadline exceeded"}
	ri := 0
	for i, tr := range rep.Targets {
		if want, bad := wantErr[i]; bad {
			if !strings.Contains(tr.Error, want) || tr.Changed {
				t.Errorf("target %d: error %q, changed %v; want %q", i, tr.Error, tr.Changed, want)
			}
		} else if tr.Error != "" || !tr.Changed {
			t.Errorf("target %d (%s): error %q, changed %v; want it landed", i, tr.Repo, tr.Error, tr.Changed)
		}
		if i == 15 {
			continue // the hanging host is no repo of ours
		}
		r := repos[ri]
		ri++
		if _, bad := wantErr[i]; bad {
			if b, ok := before[i]; ok && r.Tip("candidate") != b {
				t.Errorf("%s moved though it failed", r.Name)
			}
			continue
		}
		if tr.Commit != r.Tip("candidate") || !strings.Contains(r.Show("candidate", "apps/hello/kustomization.yaml"), digest) {
			t.Errorf("%s: commit %s, tip %s; want the digest pinned there", r.Name, tr.Commit, r.Tip("candidate"))
		}
		r.Fsck()
	}
}

// An environment a ferry.yaml puts in several repos: promote fans out to
// each, from the one source.
func TestFanOutCLIFromConfig(t *testing.T) {
	reg := testreg.Start(t, nil)
	reg.Push(t, "team/hello:v1")
	root := t.TempDir()
	src := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	prodTmpl := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "main")
	srcCopy := src.CopyTo(t, root, "env.git")
	var regions []*testgit.Repo
	for _, name := range []string{"prod-eu.git", "prod-us.git", "prod-asia.git"} {
		regions = append(regions, prodTmpl.CopyTo(t, root, name))
	}
	srv := testgit.ServeRoot(t, root)
	var list []string
	for _, r := range regions {
		list = append(list, srv.RepoURL(r))
	}
	cfg := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(cfg, []byte("version: 1\nenvironments:\n  - name: candidate\n  - name: production\n    branch: main\n    repo: ["+strings.Join(list, ", ")+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FERRY_REPO": srv.RepoURL(srcCopy), "FERRY_CONFIG": cfg}
	if code, _, errOut := run(t, env, "deploy", "--app", "hello", "--image", reg.Host+"/team/hello:v1"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, errOut)
	}
	code, out, errOut := run(t, env, "promote", "--app", "hello", "--to", "production", "--output", "json")
	if code != 0 {
		t.Fatalf("promote: exit %d\n%s", code, errOut)
	}
	var rep fanOutJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Succeeded != 3 || len(rep.Targets) != 3 {
		t.Fatalf("report %+v, want 3 landed", rep)
	}
	want := srcCopy.Git("rev-parse", "candidate:apps/hello")
	for _, r := range regions {
		if got := r.Git("rev-parse", "main:apps/hello"); got != want {
			t.Errorf("%s: apps/hello %s, want candidate's %s", r.Name, got, want)
		}
		if msg := r.Git("log", "-1", "--format=%B", "main"); !strings.Contains(msg, "Ferry-Promoted-From-Repo: "+srv.RepoURL(srcCopy)) {
			t.Errorf("%s: trailers do not name the source repo:\n%s", r.Name, msg)
		}
	}
	// In text: a line a repo.
	code, out, _ = run(t, env, "promote", "--app", "hello", "--to", "production")
	if code != 0 || strings.Count(out, "unchanged") != 3 {
		t.Errorf("second promote: exit %d\n%s\nwant 3 unchanged", code, out)
	}
}
