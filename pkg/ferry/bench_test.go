package ferry_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/pkg/config"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
)

const (
	benchApps    = 50
	benchCommits = 3000
)

// longHistory builds, with git fast-import, a candidate branch of
// benchCommits deploys round-robin over benchApps apps, and a production
// branch at the first commit. It returns the repo's URL on git http-backend.
func longHistory(b *testing.B) (string, *testgit.Repo) {
	b.Helper()
	repo := testgit.NewRepo(b, "", "seed")
	var in strings.Builder
	deploy := func(app, v int) string {
		return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app%d\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: r.example/team/app%d:v%d@sha256:%064x\n", app, app, v, v)
	}
	fmt.Fprintf(&in, "commit refs/heads/candidate\nmark :1\ncommitter Seed <s@example.com> 1700000000 +0000\ndata 5\nseed\n")
	for a := range benchApps {
		d := deploy(a, 0)
		k := "resources:\n  - deployment.yaml\n"
		fmt.Fprintf(&in, "M 100644 inline apps/app%d/deployment.yaml\ndata %d\n%s\n", a, len(d), d)
		fmt.Fprintf(&in, "M 100644 inline apps/app%d/kustomization.yaml\ndata %d\n%s\n", a, len(k), k)
	}
	for i := 1; i <= benchCommits; i++ {
		a := i % benchApps
		msg := fmt.Sprintf("deploy app%d to candidate\n\nFerry-Action: deploy\nFerry-Env: candidate\nFerry-App: app%d\nFerry-Image: r.example/team/app%d:v%d@sha256:%064x\nFerry-Source-Commit: %040x\n", a, a, a, i, i, i)
		d := deploy(a, i)
		fmt.Fprintf(&in, "commit refs/heads/candidate\ncommitter Bot <b@example.com> %d +0000\ndata %d\n%s\nM 100644 inline apps/app%d/deployment.yaml\ndata %d\n%s\n",
			1700000000+i, len(msg), msg, a, len(d), d)
	}
	fmt.Fprintf(&in, "reset refs/heads/production\nfrom :1\n\n")
	cmd := exec.Command("git", "-C", repo.Dir, "fast-import", "--quiet")
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("fast-import: %v\n%s", err, out)
	}
	repo.Git("repack", "-adq")
	srv := testgit.Serve(b, repo)
	return srv.RepoURL(repo), repo
}

func benchEnv(url string) ferry.Env {
	return ferry.Env{Remote: envrepo.Remote{URL: url}, Author: envrepo.Author{Name: "bench", Email: "b@example.com"}}
}

// BenchmarkGitCloneDepth1 is the reference: git's own shallow clone of the
// same branch, the first step of the shell scripts ferry replaces.
func BenchmarkGitCloneDepth1(b *testing.B) {
	url, _ := longHistory(b)
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "c")
		if out, err := exec.Command("git", "clone", "-q", "--depth", "1", "--single-branch", "-b", "candidate", "--no-checkout", url, dir).CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		os.RemoveAll(dir)
	}
}

// BenchmarkHistoryRecent: the last 20 commits of the whole branch.
func BenchmarkHistoryRecent(b *testing.B) {
	url, _ := longHistory(b)
	e := benchEnv(url)
	b.ReportAllocs()
	for b.Loop() {
		h, err := ferry.History(context.Background(), e, ferry.HistoryRequest{Env: "candidate", Path: ".", Limit: 20})
		if err != nil || len(h) != 20 {
			b.Fatal(err, len(h))
		}
	}
}

// BenchmarkHistoryDeep: 20 entries of one app that changes every 50th
// commit, so the walk reaches 1,000 commits back.
func BenchmarkHistoryDeep(b *testing.B) {
	url, _ := longHistory(b)
	e := benchEnv(url)
	b.ReportAllocs()
	for b.Loop() {
		h, err := ferry.History(context.Background(), e, ferry.HistoryRequest{Env: "candidate", Path: "apps/app7", Limit: 20})
		if err != nil || len(h) != 20 {
			b.Fatal(err, len(h))
		}
	}
}

// BenchmarkPromote alternates promoting the tip of candidate and a commit
// 500 commits back, so each round writes production.
func BenchmarkPromote(b *testing.B) {
	url, repo := longHistory(b)
	e := benchEnv(url)
	old := repo.Git("rev-parse", "candidate~500")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := ""
		if i%2 == 1 {
			c = old
		}
		i++
		rep, err := ferry.Promote(context.Background(), e, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c, Path: "apps"})
		if err != nil || !rep.Changed {
			b.Fatal(err, rep)
		}
	}
}

// BenchmarkStatus: every app on candidate and production, 512 commits of
// candidate read, each app's cell asked of all of them.
func BenchmarkStatus(b *testing.B) {
	url, _ := longHistory(b)
	e := benchEnv(url)
	cfg, err := config.Parse("ferry.yaml", []byte("version: 1\nenvironments:\n  - name: candidate\n  - name: production\n"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rep, err := ferry.Status(context.Background(), e, ferry.StatusRequest{Config: cfg})
		if err != nil || len(rep.Apps) != benchApps {
			b.Fatal(err, rep)
		}
	}
}
