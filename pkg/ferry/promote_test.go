package ferry_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/ferrycd/ferry/pkg/ferry"
)

// flow sets up candidate with two deploys of hello (v1, v2) and returns the
// two deploy commits and digests.
func flow(t *testing.T) (f *fixture, c1, c2, d1, d2 string) {
	t.Helper()
	f = newFixture(t)
	ctx := context.Background()
	d1 = f.reg.Push(t, "team/hello:v1")
	d2 = f.reg.Push(t, "team/hello:v2")
	for i, tag := range []string{"v1", "v2"} {
		rep, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{
			Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:" + tag},
			Provenance: ferry.Provenance{SourceRepo: "https://github.com/acme/hello", SourceCommit: "src-" + tag, BuildID: "build-" + tag},
		})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			c1 = rep.Commit
		} else {
			c2 = rep.Commit
		}
	}
	return f, c1, c2, d1, d2
}

func TestPromoteExactCommit(t *testing.T) {
	f, c1, c2, d1, _ := flow(t)
	ctx := context.Background()
	prodBefore := f.repo.Tip("production")
	apiBefore := f.repo.Git("rev-parse", "production:apps/api")

	// Promote the verified v1 commit although candidate moved on to v2.
	rep, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c1, Path: "apps/hello"})
	if err != nil {
		t.Fatal(err)
	}
	f.repo.Fsck()
	if !rep.Changed || rep.Commit != f.repo.Tip("production") || rep.Parent != prodBefore || rep.From != "candidate@"+c1 {
		t.Fatalf("report: %+v", rep)
	}
	if got, want := f.repo.Git("rev-parse", "production:apps/hello"), f.repo.Git("rev-parse", c1+":apps/hello"); got != want {
		t.Errorf("production:apps/hello = %s, want the subtree of %s (%s)", got, c1, want)
	}
	if got := f.repo.Git("rev-parse", "production:apps/api"); got != apiBefore {
		t.Error("promote changed a directory outside --path")
	}
	trailers := f.repo.Git("log", "-1", "--format=%(trailers)", "production")
	for _, want := range []string{
		"Ferry-Action: promote", "Ferry-Env: production", "Ferry-App: hello",
		"Ferry-Image: " + f.reg.Host + "/team/hello:v1@" + d1,
		"Ferry-Promoted-From: candidate@" + c1,
		"Ferry-Source-Commit: src-v1", "Ferry-Build-ID: build-v1",
	} {
		if !strings.Contains(trailers, want+"\n") && !strings.HasSuffix(trailers, want) {
			t.Errorf("trailers lack %q:\n%s", want, trailers)
		}
	}
	if strings.Contains(trailers, "src-v2") {
		t.Errorf("trailers carry v2's provenance:\n%s", trailers)
	}

	// Again: nothing to do.
	tip := f.repo.Tip("production")
	rep, err = ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c1[:10], Path: "apps/hello"})
	if err != nil || rep.Changed || f.repo.Tip("production") != tip {
		t.Fatalf("re-promote: %+v, %v", rep, err)
	}

	// The tip of candidate by default.
	rep, err = ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Path: "apps/hello"})
	if err != nil || !rep.Changed || rep.From != "candidate@"+c2 {
		t.Fatalf("promote tip: %+v, %v", rep, err)
	}
	if got, want := f.repo.Git("rev-parse", "production:apps/hello"), f.repo.Git("rev-parse", c2+":apps/hello"); got != want {
		t.Errorf("production has %s, want %s", got, want)
	}
}

// Files the source deleted are deleted; a whole-branch promote works.
func TestPromoteGraftsWholeSubtree(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("candidate", "drop a file, add one", map[string]string{
		"apps/broken/missing.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fixed\n",
		"apps/api/deployment.yaml": "",
	})
	c := f.repo.Tip("candidate")
	rep, err := ferry.Promote(context.Background(), f.env, ferry.PromoteRequest{From: "candidate", To: "production", Path: "."})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.repo.Git("rev-parse", "production^{tree}"), f.repo.Git("rev-parse", c+"^{tree}"); got != want {
		t.Errorf("production tree %s, want %s", got, want)
	}
	want := []string{"apps/api/deployment.yaml", "apps/broken/missing.yaml", "apps/link"}
	if strings.Join(rep.Files, ",") != strings.Join(want, ",") {
		t.Errorf("files = %v, want %v", rep.Files, want)
	}
	f.repo.Fsck()
}

func TestPromoteRefuses(t *testing.T) {
	f, c1, _, _, _ := flow(t)
	ctx := context.Background()
	onlyProd := f.repo.Commit("production", "hotfix by hand", map[string]string{"apps/hello/note.txt": "x\n"})
	tests := []struct {
		name    string
		req     ferry.PromoteRequest
		wantErr string
		usage   bool
	}{
		{"commit not on source", ferry.PromoteRequest{From: "candidate", To: "production", Commit: onlyProd}, "is not on candidate", false},
		{"unknown commit", ferry.PromoteRequest{From: "candidate", To: "production", Commit: strings.Repeat("ab", 20)}, "is not on candidate", false},
		{"not a sha", ferry.PromoteRequest{From: "candidate", To: "production", Commit: "main"}, "not a commit SHA", true},
		{"to itself", ferry.PromoteRequest{From: "candidate", To: "candidate"}, "both \"candidate\"", true},
		{"no from", ferry.PromoteRequest{To: "production"}, "--from is required", true},
		{"path escapes", ferry.PromoteRequest{From: "candidate", To: "production", Path: "../x"}, "leaves the repository", true},
		{"scope missing on source", ferry.PromoteRequest{From: "candidate", To: "production", Path: "apps/nothing"}, "does not exist on candidate", false},
		{"missing target branch", ferry.PromoteRequest{From: "candidate", To: "staging", Commit: c1}, `"staging" does not exist`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.Path == "" {
				tc.req.Path = "apps/hello"
			}
			before := f.repo.Tip("production")
			_, err := ferry.Promote(ctx, f.env, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if errors.Is(err, ferry.ErrUsage) != tc.usage {
				t.Errorf("usage = %v, want %v", !tc.usage, tc.usage)
			}
			if f.repo.Tip("production") != before {
				t.Error("production moved")
			}
		})
	}
}

// A promote of hello racing a deploy of api into production: both land.
func TestPromoteRacesDeploy(t *testing.T) {
	f, c1, _, _, _ := flow(t)
	da := f.reg.Push(t, "team/api:v9")
	env := f.env
	env.Attempts = 20
	var wg sync.WaitGroup
	var errP, errD error
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				_, errP = ferry.Promote(context.Background(), env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c1, Path: "apps/hello"})
			} else {
				_, errD = ferry.Deploy(context.Background(), env, ferry.DeployRequest{Env: "production", Path: "apps/api", Images: []string{f.reg.Host + "/team/api:v9"}})
			}
		}()
	}
	wg.Wait()
	if errP != nil || errD != nil {
		t.Fatalf("promote: %v; deploy: %v", errP, errD)
	}
	f.repo.Fsck()
	if got, want := f.repo.Git("rev-parse", "production:apps/hello"), f.repo.Git("rev-parse", c1+":apps/hello"); got != want {
		t.Error("the promote was lost")
	}
	if !strings.Contains(f.repo.Show("production", "apps/api/deployment.yaml"), da) {
		t.Error("the deploy was lost")
	}
}

func TestRollbackAndHold(t *testing.T) {
	f, c1, c2, _, d2 := flow(t)
	ctx := context.Background()
	promote := func(c string, override bool) (*ferry.Report, error) {
		return ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c, Path: "apps/hello", OverrideRollback: override})
	}
	p1, err := promote(c1, false)
	if err != nil {
		t.Fatal(err)
	}
	// A commit to another app in between does not count as a step.
	f.repo.Commit("production", "other app by hand", map[string]string{"apps/api/README.md": "api\n"})
	if _, err := promote(c2, false); err != nil {
		t.Fatal(err)
	}
	oldTip := f.repo.Tip("production")

	rep, err := ferry.Rollback(ctx, f.env, ferry.RollbackRequest{Env: "production", Path: "apps/hello"})
	if err != nil {
		t.Fatal(err)
	}
	f.repo.Fsck()
	if got, want := f.repo.Git("rev-parse", "production:apps/hello"), f.repo.Git("rev-parse", p1.Commit+":apps/hello"); got != want {
		t.Errorf("rollback restored %s, want the state of the first promote %s", got, want)
	}
	if err := exec.Command("git", "-C", f.repo.Dir, "merge-base", "--is-ancestor", oldTip, "production").Run(); err != nil {
		t.Error("the old tip is not an ancestor of the new one: history was rewritten")
	}
	if rep.RollbackTo == "" || !strings.Contains(f.repo.Git("log", "-1", "--format=%(trailers)", "production"), "Ferry-Rollback-To: "+rep.RollbackTo) {
		t.Errorf("rollback trailers: %s", f.repo.Git("log", "-1", "--format=%B", "production"))
	}
	if f.repo.Git("rev-parse", "production:apps/api/README.md") == "" {
		t.Error("rollback touched another app")
	}

	// The hold: promote and deploy refuse, naming the rollback and the flag.
	before := f.repo.Tip("production")
	_, err = promote(c2, false)
	if !errors.Is(err, ferry.ErrHeld) || !strings.Contains(err.Error(), rep.Commit[:12]) || !strings.Contains(err.Error(), "--override-rollback") {
		t.Fatalf("promote during hold: %v", err)
	}
	_, err = ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "production", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v2"}})
	if !errors.Is(err, ferry.ErrHeld) {
		t.Fatalf("deploy during hold: %v", err)
	}
	if f.repo.Tip("production") != before {
		t.Fatal("a held scope moved")
	}
	// Another app on the same branch is not held.
	if _, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "production", Path: "apps/api", Images: []string{f.reg.Host + "/team/hello:v2"}}); errors.Is(err, ferry.ErrHeld) {
		t.Errorf("unrelated app held: %v", err)
	}
	// The override lifts it.
	over, err := promote(c2, true)
	if err != nil || !over.Changed || !strings.Contains(f.repo.Show("production", "apps/hello/deployment.yaml"), d2) {
		t.Fatalf("override: %+v, %v", over, err)
	}
	if _, err := promote(c1, false); err != nil {
		t.Errorf("hold not lifted after the override: %v", err)
	}
}

func TestRollbackRefuses(t *testing.T) {
	f, _, c2, _, _ := flow(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		req     ferry.RollbackRequest
		wantErr string
	}{
		{"beyond history", ferry.RollbackRequest{Env: "candidate", Path: "apps/hello", Steps: 5}, "only 2 earlier state"},
		{"to and steps", ferry.RollbackRequest{Env: "candidate", Path: "apps/hello", Steps: 1, To: c2}, "not both"},
		{"to not on branch", ferry.RollbackRequest{Env: "production", Path: "apps/hello", To: c2}, "is not on production"},
		{"no env", ferry.RollbackRequest{Path: "apps/hello"}, "--env is required"},
		{"negative steps", ferry.RollbackRequest{Env: "candidate", Path: "apps/hello", Steps: -1}, "at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.repo.Tip(tc.req.Env)
			_, err := ferry.Rollback(ctx, f.env, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if tc.req.Env != "" && f.repo.Tip(tc.req.Env) != before {
				t.Error("branch moved")
			}
		})
	}
	// --steps 2 on candidate goes back to the seed state, --to to a commit.
	rep, err := ferry.Rollback(ctx, f.env, ferry.RollbackRequest{Env: "candidate", Path: "apps/hello", Steps: 2})
	if err != nil || !rep.Changed || !strings.Contains(f.repo.Show("candidate", "apps/hello/deployment.yaml"), "hello:v0 # the app") {
		t.Fatalf("steps 2: %+v %v", rep, err)
	}
}

func TestHistory(t *testing.T) {
	f, c1, _, d1, d2 := flow(t)
	ctx := context.Background()
	if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c1, Path: "apps/hello"}); err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("production", "scale hello by hand", map[string]string{"apps/hello/note.txt": "scaled\n"})
	f.repo.Commit("production", "unrelated", map[string]string{"apps/api/README.md": "x\n"})
	if _, err := ferry.Rollback(ctx, f.env, ferry.RollbackRequest{Env: "production", Path: "apps/hello"}); err != nil {
		t.Fatal(err)
	}
	got, err := ferry.History(ctx, f.env, ferry.HistoryRequest{Env: "production", Path: "apps/hello"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range got {
		actions = append(actions, e.Action)
	}
	if want := "rollback,manual,promote,manual"; strings.Join(actions, ",") != want {
		t.Fatalf("actions = %v, want %s", actions, want)
	}
	if img := got[2].Images; len(img) != 1 || img[0].Digest != d1 || got[2].PromotedFrom != "candidate@"+c1 || got[2].Sources[0].SourceCommit != "src-v1" {
		t.Errorf("promote entry: %+v", got[2])
	}
	if img := got[1].Images; len(img) != 1 || img[0].Digest != d1 {
		t.Errorf("manual entry images (read from the tree): %+v", got[1].Images)
	}
	if got[3].Images[0].Tag != "v0" {
		t.Errorf("seed entry: %+v", got[3])
	}
	if got[0].RollbackTo == "" {
		t.Errorf("rollback entry: %+v", got[0])
	}
	limited, err := ferry.History(ctx, f.env, ferry.HistoryRequest{Env: "candidate", Path: "apps/hello", Limit: 2})
	if err != nil || len(limited) != 2 || limited[0].Images[0].Digest != d2 || limited[0].Action != "deploy" || limited[1].Action != "deploy" {
		t.Errorf("limit 2: %+v, %v", limited, err)
	}
}

func TestDiff(t *testing.T) {
	f, _, _, d1, d2 := flow(t)
	ctx := context.Background()
	host := f.reg.Host
	res, err := ferry.Diff(ctx, f.env, ferry.DiffRequest{From: "candidate", To: "production", Path: "."})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Apps) != 2 {
		t.Fatalf("diff: %+v", res)
	}
	hello := res.Apps[1]
	if hello.Dir != "apps/hello" || len(hello.Images) != 1 || len(hello.Modified) != 2 {
		t.Fatalf("hello: %+v", hello)
	}
	if ch := hello.Images[0]; ch.Name != host+"/team/hello" || ch.Old != host+"/team/hello:v0" || ch.New != host+"/team/hello:v2@"+d2 {
		t.Errorf("image change: %+v", ch)
	}
	if res.Apps[0].Dir != "apps" || len(res.Apps[0].Added) != 1 { // the symlink apps/link
		t.Errorf("apps: %+v", res.Apps[0])
	}
	_ = d1
	// After promoting, there is nothing left to diff.
	if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Path: "."}); err != nil {
		t.Fatal(err)
	}
	res, err = ferry.Diff(ctx, f.env, ferry.DiffRequest{From: "candidate", To: "production", Path: "apps/hello"})
	if err != nil || res.Changed || len(res.Apps) != 0 {
		t.Errorf("after promote: %+v, %v", res, err)
	}
}

// Commits by hand after a rollback: one elsewhere keeps the hold (the
// scope's tree is still the rollback's); one in the scope is a fix forward
// and releases it.
func TestHoldAcrossManualCommits(t *testing.T) {
	f, c1, c2, _, _ := flow(t)
	ctx := context.Background()
	for _, c := range []string{c1, c2} {
		if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c, Path: "apps/hello"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ferry.Rollback(ctx, f.env, ferry.RollbackRequest{Env: "production", Path: "apps/hello"}); err != nil {
		t.Fatal(err)
	}
	promote := func() error {
		_, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Path: "apps/hello"})
		return err
	}
	f.repo.Commit("production", "tune api by hand", map[string]string{"apps/api/README.md": "x\n"})
	if err := promote(); !errors.Is(err, ferry.ErrHeld) {
		t.Fatalf("after a commit elsewhere: %v, want the hold", err)
	}
	f.repo.Commit("production", "fix hello by hand", map[string]string{"apps/hello/note.txt": "fixed\n"})
	if err := promote(); err != nil {
		t.Fatalf("after a fix forward by hand: %v", err)
	}
}
