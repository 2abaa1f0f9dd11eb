package cli_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testforge"
	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/internal/testsign"
	"github.com/ferrycd/ferry/pkg/audit"
)

// prFixture is an env repo acme/env behind git http-backend, with a host
// stand-in over the same bare repository, so pull requests merge for real.
type prFixture struct {
	reg  *testreg.Registry
	repo *testgit.Repo
	env  map[string]string
}

func newPRFixture(t *testing.T, host string) (*prFixture, *testforge.Host) {
	t.Helper()
	reg := testreg.Start(t, nil)
	tmpl := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	root := t.TempDir()
	repo := tmpl.CopyTo(t, root, filepath.Join("acme", "env.git"))
	srv := testgit.ServeRoot(t, root)
	f := &prFixture{reg: reg, repo: repo, env: map[string]string{"FERRY_REPO": srv.URL + "/acme/env.git", "FERRY_PATH": "apps/hello"}}
	switch host {
	case "github":
		gh := testforge.NewGitHub(t, root)
		f.env["FERRY_FORGE"], f.env["FERRY_FORGE_URL"], f.env["FERRY_FORGE_TOKEN"] = "github", gh.URL, gh.Token
		return f, gh.Host
	default:
		gl := testforge.NewGitLab(t, root)
		f.env["FERRY_FORGE"], f.env["FERRY_FORGE_URL"], f.env["FERRY_FORGE_TOKEN"] = "gitlab", gl.URL, gl.Token
		return f, gl.Host
	}
}

type prReport struct {
	Changed     bool
	Commit      string
	Skipped     bool
	Reason      string
	PullRequest *struct {
		URL         string
		Number      int
		State       string
		Head        string
		MergeCommit string
		Opened      bool
	}
}

func (f *prFixture) run(t *testing.T, args ...string) (prReport, int, string) {
	t.Helper()
	code, out, errOut := run(t, f.env, append(args, "--output", "json")...)
	var rep prReport
	if out != "" {
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("ferry %v: stdout not JSON: %v\n%s\n%s", args, err, out, errOut)
		}
	}
	return rep, code, errOut
}

// The whole road by pull request, on each host: deploy by PR to candidate
// with auto-merge (squash), a newer deploy updating the same open PR,
// promote by PR to production waiting for the merge; history reads the
// squashed commits as ferry's own; the token is never printed.
func TestPullRequestEndToEnd(t *testing.T) {
	for _, host := range []string{"github", "gitlab"} {
		t.Run(host, func(t *testing.T) {
			f, h := newPRFixture(t, host)
			h.RequireChecks = true // auto-merge waits for the checks
			d1 := f.reg.Push(t, "team/hello:v1")
			d2 := f.reg.Push(t, "team/hello:v2")
			base := f.repo.Tip("candidate")

			rep, code, errOut := f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:v1",
				"--pull-request", "--auto-merge", "squash", "--pr-label", "ferry")
			if code != 0 || rep.PullRequest == nil || !rep.PullRequest.Opened || rep.PullRequest.State != "open" {
				t.Fatalf("deploy by PR: exit %d, %+v\n%s", code, rep, errOut)
			}
			if f.repo.Tip("candidate") != base {
				t.Fatal("a deploy by pull request pushed to candidate")
			}
			head := rep.PullRequest.Head
			if head != "ferry/candidate/hello" || f.repo.Tip(head) != rep.Commit {
				t.Errorf("head %s at %s, want ferry/candidate/hello at the commit %s", head, f.repo.Tip(head), rep.Commit)
			}
			first := rep.PullRequest.Number

			// A newer build: the same pull request, updated.
			rep, code, errOut = f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:v2",
				"--pull-request", "--auto-merge", "squash")
			if code != 0 || rep.PullRequest == nil || rep.PullRequest.Number != first || rep.PullRequest.Opened {
				t.Fatalf("second deploy: exit %d, %+v; want PR #%d updated\n%s", code, rep, first, errOut)
			}
			if got := f.repo.Show(head, "apps/hello/kustomization.yaml"); !strings.Contains(got, d2) || strings.Contains(got, d1) {
				t.Errorf("the head does not carry v2 alone:\n%s", got)
			}
			if n := len(h.PRs()); n != 1 {
				t.Errorf("%d pull requests, want one", n)
			}
			h.PassChecks(first) // the host merges it by itself now
			if got := f.repo.Show("candidate", "apps/hello/kustomization.yaml"); !strings.Contains(got, d2) {
				t.Fatalf("candidate after the merge:\n%s", got)
			}
			msg := f.repo.Git("log", "-1", "--format=%B", "candidate")
			if rec := audit.Parse(msg); rec.Action != "deploy" || rec.Path != "apps/hello" || len(rec.Images) != 1 || !strings.Contains(rec.Images[0], d2) {
				t.Errorf("the squash lost ferry's trailers:\n%s", msg)
			}

			// Promote by pull request to production, waiting for the merge.
			h.RequireChecks = false
			rep, code, errOut = f.run(t, "promote", "--from", "candidate", "--to", "production",
				"--pull-request", "--auto-merge", "squash", "--wait", "20s")
			if code != 0 || rep.PullRequest == nil || rep.PullRequest.State != "merged" || rep.PullRequest.MergeCommit == "" {
				t.Fatalf("promote by PR --wait: exit %d, %+v\n%s", code, rep, errOut)
			}
			if got := f.repo.Tip("production"); got != rep.PullRequest.MergeCommit && f.repo.Git("rev-parse", "production^2") != rep.PullRequest.MergeCommit {
				t.Errorf("production at %s, want the merge commit %s", got, rep.PullRequest.MergeCommit)
			}
			if got := f.repo.Show("production", "apps/hello/kustomization.yaml"); !strings.Contains(got, d2) {
				t.Errorf("production after the merge:\n%s", got)
			}
			var hist []struct{ Action string }
			code, out, errOut := run(t, f.env, "history", "--env", "production", "--output", "json")
			if code != 0 || json.Unmarshal([]byte(out), &hist) != nil || len(hist) == 0 || hist[0].Action != "promote" {
				t.Errorf("production's history: exit %d, %s %s; want the promote first", code, out, errOut)
			}
			for _, r := range h.Requests() {
				if strings.Contains(fmt.Sprint(r), h.Token) {
					t.Fatal("a request log line holds the token")
				}
			}
			if strings.Contains(errOut, h.Token) {
				t.Error("the token was printed")
			}
			f.repo.Fsck()
		})
	}
}

// A rollback by pull request is a forward commit: once merged it holds,
// and a deploy by pull request is refused while it does.
func TestPullRequestHold(t *testing.T) {
	f, h := newPRFixture(t, "github")
	for _, tag := range []string{"v1", "v2"} {
		f.reg.Push(t, "team/hello:"+tag)
		if _, code, errOut := f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:"+tag); code != 0 {
			t.Fatalf("deploy %s: %s", tag, errOut)
		}
	}
	// A deploy by PR waiting for its checks, set to merge by itself.
	h.RequireChecks = true
	f.reg.Push(t, "team/hello:v2b")
	pending, code, errOut := f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:v2b", "--pull-request", "--auto-merge", "squash")
	if code != 0 || pending.PullRequest == nil || pending.PullRequest.State != "open" {
		t.Fatalf("pending deploy by PR: exit %d, %+v\n%s", code, pending, errOut)
	}
	h.RequireChecks = false
	var rep struct {
		prReport
		ClosedPullRequests []struct{ Number int }
	}
	code, out, errOut := run(t, f.env, "rollback", "--env", "candidate", "--pull-request", "--auto-merge", "merge", "--wait", "20s", "--output", "json")
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.PullRequest == nil || rep.PullRequest.State != "merged" {
		t.Fatalf("rollback by PR: exit %d, %s\n%s", code, out, errOut)
	}
	// The pending deploy's request is closed: merged later, it would undo
	// the rollback, and the hold stops ferry, not the host.
	if len(rep.ClosedPullRequests) != 1 || rep.ClosedPullRequests[0].Number != pending.PullRequest.Number {
		t.Errorf("closed %+v, want #%d", rep.ClosedPullRequests, pending.PullRequest.Number)
	}
	if st := h.PR(pending.PullRequest.Number).State; st != "closed" {
		t.Errorf("the pending deploy's request is %s, want closed", st)
	}
	held := f.repo.Tip("candidate")
	f.reg.Push(t, "team/hello:v3")
	_, code, errOut = f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:v3", "--pull-request")
	if code != 1 || !strings.Contains(errOut, "held by a rollback") {
		t.Errorf("deploy by PR while held: exit %d, %s; want 1, held", code, errOut)
	}
	if f.repo.Tip("candidate") != held {
		t.Error("candidate moved")
	}
	if f.repo.Git("branch", "--list", "ferry/candidate/hello") != "" && strings.Contains(f.repo.Show("ferry/candidate/hello", "apps/hello/kustomization.yaml"), "v3") {
		t.Error("the held deploy reached the head branch")
	}
}

// --wait: a pull request closed without merging is exit 4; one still open
// when the wait ends is exit 1; both print the report.
func TestPullRequestWaitVerdicts(t *testing.T) {
	f, h := newPRFixture(t, "github")
	h.RequireChecks = true
	f.reg.Push(t, "team/hello:v1")
	rep, code, errOut := f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:v1", "--pull-request", "--auto-merge", "squash", "--wait", "1s")
	if code != 1 || rep.PullRequest == nil || rep.PullRequest.State != "open" || !strings.Contains(errOut, "still open") {
		t.Fatalf("wait on a PR that never merges: exit %d, %+v, %s; want 1, open", code, rep, errOut)
	}
	n := rep.PullRequest.Number
	h.Close(n)
	// A closed pull request is replaced, not reused; and closed while
	// the run waits for it, the run says so with exit 4.
	go func() {
		for range 2000 {
			for _, pr := range h.PRs() {
				if pr.Number != n && pr.State == "open" {
					h.Close(pr.Number)
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	f.reg.Push(t, "team/hello:v2")
	rep, code, errOut = f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:v2", "--pull-request", "--wait", "15s")
	if code != 4 || rep.PullRequest == nil || rep.PullRequest.Number == n || !rep.PullRequest.Opened || rep.PullRequest.State != "closed" ||
		!strings.Contains(errOut, "closed without merging") {
		t.Fatalf("a PR closed during --wait: exit %d, %+v, %s; want 4, a new PR, closed", code, rep, errOut)
	}
}

// --verified-commits: the commit is made through GitHub's API without
// author or committer, so GitHub signs it; the branch moves by the API's
// fast-forward-only update; history reads it as any deploy.
func TestVerifiedCommits(t *testing.T) {
	f, h := newPRFixture(t, "github")
	gh := &testforge.GitHub{Host: h}
	d1 := f.reg.Push(t, "team/hello:v1")
	rep, code, errOut := f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:v1", "--verified-commits")
	if code != 0 || !rep.Changed {
		t.Fatalf("deploy --verified-commits: exit %d, %+v\n%s", code, rep, errOut)
	}
	if got := f.repo.Tip("candidate"); got != rep.Commit {
		t.Fatalf("candidate at %s, want the API's commit %s", got, rep.Commit)
	}
	if !gh.Verified(rep.Commit) {
		t.Error("the host does not show the commit verified")
	}
	if got := f.repo.Show("candidate", "apps/hello/kustomization.yaml"); !strings.Contains(got, d1) {
		t.Errorf("candidate does not pin v1:\n%s", got)
	}
	if rec := audit.Parse(f.repo.Git("log", "-1", "--format=%B", "candidate")); rec.Action != "deploy" || rec.Path != "apps/hello" {
		t.Errorf("trailers %+v", rec)
	}
	var posted bool
	for _, r := range h.Requests() {
		if strings.HasSuffix(r.Path, "/git/commits") && r.Method == "POST" {
			posted = true
			if strings.Contains(r.Body, `"author"`) || strings.Contains(r.Body, `"committer"`) {
				t.Errorf("the commit was posted with an author or committer: %s", r.Body)
			}
		}
	}
	if !posted {
		t.Error("no commit went through the API")
	}
	// With pull requests: refused, as documented.
	if _, code, errOut := f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:v1", "--verified-commits", "--pull-request"); code != 2 {
		t.Errorf("--verified-commits --pull-request: exit %d, %s; want 2", code, errOut)
	}
	f.repo.Fsck()
}

// The road, signed: deploy by PR to candidate (ferry signs its
// commit), auto-merged (the host signs the squash with its own key),
// promote by PR to production with --wait; history --verify, trusting
// ferry's key and the host's, shows every commit since the repo's start
// verified, on both branches.
func TestPullRequestSignedRoad(t *testing.T) {
	f, h := newPRFixture(t, "github")
	ferryKey := testsign.SSHKey(t, "ed25519", 0, "")
	hostKey := testsign.SSHKey(t, "ed25519", 0, "")
	h.SigningKey = hostKey.Private
	allowed := testsign.AllowedSigners(t, "ferry@example.com "+ferryKey.Line, "noreply@github.com "+hostKey.Line)
	f.env["FERRY_SIGN_KEY"] = ferryKey.Private
	f.env["FERRY_ALLOWED_SIGNERS"] = allowed
	f.env["FERRY_AUTHOR"] = "ferry <ferry@example.com>"
	start := map[string]string{"candidate": f.repo.Tip("candidate"), "production": f.repo.Tip("production")}
	f.reg.Push(t, "team/hello:v1")
	for _, args := range [][]string{
		{"deploy", "--env", "candidate", "--image", f.reg.Host + "/team/hello:v1", "--pull-request", "--auto-merge", "squash", "--wait", "20s"},
		{"promote", "--from", "candidate", "--to", "production", "--pull-request", "--auto-merge", "squash", "--wait", "20s", "--require-signed"},
	} {
		rep, code, errOut := f.run(t, args...)
		if code != 0 || rep.PullRequest == nil || rep.PullRequest.State != "merged" {
			t.Fatalf("ferry %v: exit %d, %+v\n%s", args[:1], code, rep, errOut)
		}
	}
	for _, branch := range []string{"candidate", "production"} {
		var hist []struct {
			Commit    string
			Action    string
			Signature *struct {
				Verified bool
				Signer   string
				Reason   string
			}
		}
		code, out, errOut := run(t, f.env, "history", "--env", branch, "--verify", "--output", "json")
		if code != 0 || json.Unmarshal([]byte(out), &hist) != nil {
			t.Fatalf("history --verify %s: exit %d\n%s%s", branch, code, out, errOut)
		}
		n := 0
		for _, e := range hist {
			if e.Commit == start[branch] {
				break // the repo's own start, made before ferry
			}
			n++
			if e.Signature == nil || !e.Signature.Verified {
				t.Errorf("%s: %s (%s) not verified: %+v", branch, e.Commit, e.Action, e.Signature)
			}
		}
		if n == 0 {
			t.Errorf("%s: no commit since the start", branch)
		}
	}
	// status --verify: each environment's last change to hello, signed.
	var st struct {
		Apps []struct {
			Cells []struct {
				LastChange *struct {
					Signature *struct{ Verified bool }
				}
			}
		}
	}
	code, out, errOut := run(t, f.env, "status", "--env", "candidate", "--env", "production", "--app", "hello", "--verify", "--output", "json")
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Apps) != 1 {
		t.Fatalf("status --verify: exit %d\n%s%s", code, out, errOut)
	}
	for i, c := range st.Apps[0].Cells {
		if c.LastChange == nil || c.LastChange.Signature == nil || !c.LastChange.Signature.Verified {
			t.Errorf("status --verify, column %d: %+v; want the last change verified", i, c.LastChange)
		}
	}
	if code, out, _ := run(t, f.env, "status", "--env", "candidate", "--env", "production", "--app", "hello", "--verify"); code != 0 || !strings.Contains(out, "signed") {
		t.Errorf("status --verify text: exit %d\n%s", code, out)
	}
	// git itself agrees on the merge the host signed (Git fails the test
	// when git exits non-zero).
	f.repo.Git("-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", "production")
}

// Two deploys of the same app by pull request at once: one pull request,
// carrying the newer build, whichever run finishes last.
func TestPullRequestRace(t *testing.T) {
	f, h := newPRFixture(t, "github")
	h.RequireChecks = true // nothing merges: the race is on the head
	now := time.Now()
	f.reg.PushCreated(t, "team/hello:v1", now.Add(-time.Hour))
	newer := f.reg.PushCreated(t, "team/hello:v2", now)
	for round := range 3 {
		var wg sync.WaitGroup
		codes := make([]int, 2)
		errs := make([]string, 2)
		for i, tag := range []string{"v1", "v2"} {
			wg.Go(func() {
				_, codes[i], errs[i] = f.run(t, "deploy", "--env", "candidate", "--image", f.reg.Host+"/team/hello:"+tag, "--pull-request")
			})
		}
		wg.Wait()
		for i := range codes {
			if codes[i] != 0 {
				t.Fatalf("deploy %d: exit %d\n%s", i, codes[i], errs[i])
			}
		}
		open := 0
		for _, pr := range h.PRs() {
			if pr.State == "open" {
				open++
			}
		}
		if open != 1 {
			t.Fatalf("round %d: %d open pull requests, want 1", round, open)
		}
		if got := f.repo.Show("ferry/candidate/hello", "apps/hello/kustomization.yaml"); !strings.Contains(got, newer) {
			t.Fatalf("round %d: the open pull request does not carry the newer build:\n%s", round, got)
		}
	}
}
