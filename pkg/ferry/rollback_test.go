package ferry_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/pkg/ferry"
)

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
	if !errors.Is(err, ferry.ErrHeld) || !strings.Contains(err.Error(), rep.Commit[:12]) {
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
			if err == nil || !strings.Contains(flagged(err), tc.wantErr) {
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
