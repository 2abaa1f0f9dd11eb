package ferry_test

import (
	"context"
	"errors"
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
			if err == nil || !strings.Contains(flagged(err), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if errors.As(err, new(*ferry.FieldError)) != tc.usage {
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
