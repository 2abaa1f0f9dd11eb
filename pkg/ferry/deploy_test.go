package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/image"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/google/go-cmp/cmp"
)

type fixture struct {
	reg  *testreg.Registry
	repo *testgit.Repo
	srv  *testgit.Server
	env  ferry.Env
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	repo.Symlink("candidate", "apps/link", "hello")
	srv := testgit.Serve(t, repo)
	return &fixture{
		reg: reg, repo: repo, srv: srv,
		env: ferry.Env{
			Remote:   envrepo.Remote{URL: srv.RepoURL(repo)},
			Author:   envrepo.Author{Name: "ferry test", Email: "ferry@example.com"},
			Resolver: image.NewResolver(image.WithRetry(2, time.Millisecond)),
			Backoff:  time.Millisecond,
		},
	}
}

func TestDeployEndToEnd(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d1 := f.reg.Push(t, "team/hello:v1")
	before := f.repo.Tip("candidate")
	deployBefore := f.repo.Show("candidate", "apps/hello/deployment.yaml")
	apiBefore := f.repo.Show("candidate", "apps/api/deployment.yaml")

	rep, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{
		Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"},
		Provenance: ferry.Provenance{SourceRepo: "https://github.com/acme/hello", SourceCommit: "abc1234def", BuildID: "b-1", BuildURL: "https://ci.example.com/b-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.repo.Fsck()
	pinned := f.reg.Host + "/team/hello:v1@" + d1
	want := &ferry.Report{
		Action: "deploy", Changed: true, Commit: f.repo.Tip("candidate"), Parent: before, Branch: "candidate",
		App: "hello", Path: "apps/hello", Attempts: 1,
		Images: []ferry.Image{{Name: f.reg.Host + "/team/hello", Tag: "v1", Digest: d1, Ref: pinned}},
		Files:  []string{"apps/hello/deployment.yaml", "apps/hello/kustomization.yaml"},
	}
	if diff := cmp.Diff(want, rep, ignoreDiff); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if !strings.Contains(rep.Diff, "+          image: "+pinned+" # the app") {
		t.Errorf("diff lacks the pinned line:\n%s", rep.Diff)
	}

	// Byte-exact: only the image scalar changed, the comment and the blank
	// line after it survive.
	wantDeploy := strings.Replace(deployBefore, f.reg.Host+"/team/hello:v0", pinned, 1)
	if got := f.repo.Show("candidate", "apps/hello/deployment.yaml"); got != wantDeploy {
		t.Errorf("deployment.yaml (-want +got):\n%s", cmp.Diff(wantDeploy, got))
	}
	kust := f.repo.Show("candidate", "apps/hello/kustomization.yaml")
	for _, line := range []string{"  # pinned by ferry; do not edit by hand", "    newTag: v1", "    digest: " + d1} {
		if !strings.Contains(kust, line+"\n") && !strings.HasSuffix(kust, line) {
			t.Errorf("kustomization.yaml lacks %q:\n%s", line, kust)
		}
	}
	if got := f.repo.Show("candidate", "apps/api/deployment.yaml"); got != apiBefore {
		t.Error("a file outside --path changed")
	}

	// The audit trail, read by git itself.
	trailers := f.repo.Git("log", "-1", "--format=%(trailers)", "candidate")
	wantTrailers := strings.Join([]string{
		"Ferry-Action: deploy", "Ferry-Env: candidate", "Ferry-App: hello", "Ferry-Path: apps/hello", "Ferry-Image: " + pinned,
		"Ferry-Source-Repo: https://github.com/acme/hello", "Ferry-Source-Commit: abc1234def",
		"Ferry-Build-ID: b-1", "Ferry-Build-URL: https://ci.example.com/b-1",
	}, "\n")
	if diff := cmp.Diff(wantTrailers, trailers); diff != "" {
		t.Errorf("trailers (-want +got):\n%s", diff)
	}
	subject := f.repo.Git("log", "-1", "--format=%s", "candidate")
	if want := "deploy hello to candidate: " + d1[:15] + " (hello:v1)"; subject != want {
		t.Errorf("subject %q, want %q", subject, want)
	}
	if got := f.repo.Git("log", "-1", "--format=%an <%ae>|%P", "candidate"); got != "ferry test <ferry@example.com>|"+before {
		t.Errorf("author|parent = %q", got)
	}

	// Running the same deploy again is a no-op: no commit, no push.
	tip := f.repo.Tip("candidate")
	rep, err = ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed || rep.Commit != "" || f.repo.Tip("candidate") != tip {
		t.Errorf("re-run changed something: %+v", rep)
	}

	// v2 on top; the history stays linear.
	d2 := f.reg.Push(t, "team/hello:v2")
	rep, err = ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v2"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Parent != tip || !strings.Contains(f.repo.Show("candidate", "apps/hello/deployment.yaml"), "hello:v2@"+d2+" # the app") {
		t.Errorf("v2 deploy: %+v", rep)
	}
	f.repo.Fsck()
}

var ignoreDiff = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Diff" }, cmp.Ignore())

func TestDeployPlainYAMLManyImages(t *testing.T) {
	f := newFixture(t)
	da := f.reg.Push(t, "team/api:v5")
	dp := f.reg.PushIndex(t, "team/proxy:v4") // multi-arch: the index digest is pinned
	rep, err := ferry.Deploy(context.Background(), f.env, ferry.DeployRequest{
		Env: "candidate", Path: "apps/api", Images: []string{f.reg.Host + "/team/api:v5", f.reg.Host + "/team/proxy:v4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.repo.Fsck()
	got := f.repo.Show("candidate", "apps/api/deployment.yaml")
	for _, want := range []string{
		`image: "` + f.reg.Host + `/team/api:v5@` + da + `"`,
		`image: '` + f.reg.Host + `/team/api:v5@` + da + `'`,
		`image: ` + f.reg.Host + `/team/proxy:v4@` + dp,
		`              image: ` + f.reg.Host + `/team/api:v5@` + da, // the CronJob
	} {
		if !strings.Contains(got, want) {
			t.Errorf("deployment.yaml lacks %q:\n%s", want, got)
		}
	}
	if rep.App != "api" || len(rep.Images) != 2 {
		t.Errorf("report: %+v", rep)
	}
	if n := strings.Count(f.repo.Git("log", "-1", "--format=%(trailers)", "candidate"), "Ferry-Image: "); n != 2 {
		t.Errorf("%d Ferry-Image trailers, want 2", n)
	}
}

func TestDeployDryRun(t *testing.T) {
	f := newFixture(t)
	f.reg.Push(t, "team/hello:v1")
	before := f.repo.Tip("candidate")
	rep, err := ferry.Deploy(context.Background(), f.env, ferry.DeployRequest{
		Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}, DryRun: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Changed || rep.Commit != "" || !rep.DryRun || !strings.Contains(rep.Diff, "-          image: "+f.reg.Host+"/team/hello:v0 # the app") {
		t.Errorf("dry run report: %+v", rep)
	}
	if f.repo.Tip("candidate") != before {
		t.Error("dry run pushed")
	}
}

// Each bad input fails with a message saying what to fix, and the remote
// does not move.
func TestDeployRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	f.reg.Push(t, "team/hello:v1")
	f.reg.Push(t, "team/broken:v1")
	f.reg.Push(t, "team/unused:v1")
	f.reg.Push(t, "team/badyaml:v1")
	host := f.reg.Host
	tests := []struct {
		name    string
		req     ferry.DeployRequest
		remote  string // override the repo URL
		wantErr string
		usage   bool
	}{
		{name: "path escapes", req: ferry.DeployRequest{Path: "../x"}, wantErr: "leaves the repository", usage: true},
		{name: "path escapes midway", req: ferry.DeployRequest{Path: "apps/../../x"}, wantErr: "leaves the repository", usage: true},
		{name: "absolute path", req: ferry.DeployRequest{Path: "/etc"}, wantErr: "absolute", usage: true},
		{name: "path through symlink", req: ferry.DeployRequest{Path: "apps/link"}, wantErr: "symlink", usage: true},
		{name: "no env", req: ferry.DeployRequest{Env: " "}, wantErr: "--env is required", usage: true},
		{name: "no image", req: ferry.DeployRequest{Images: []string{}}, wantErr: "--image is required", usage: true},
		{name: "same image twice", req: ferry.DeployRequest{Images: []string{host + "/team/hello:v1", host + "/team/hello:v1"}}, wantErr: "same repository", usage: true},
		{name: "missing tag", req: ferry.DeployRequest{Images: []string{host + "/team/hello:v9"}}, wantErr: "tag v9 not found in " + host + "/team/hello"},
		{name: "missing digest", req: ferry.DeployRequest{Images: []string{host + "/team/hello@sha256:" + strings.Repeat("0", 64)}}, wantErr: "not found"},
		{name: "malformed reference", req: ferry.DeployRequest{Images: []string{"Not A Ref"}}, wantErr: "Not A Ref", usage: true},
		{name: "image not in scope", req: ferry.DeployRequest{Images: []string{host + "/team/unused:v1"}}, wantErr: host + "/team/unused"},
		{name: "image outside scope", req: ferry.DeployRequest{Path: "apps/api", Images: []string{host + "/team/hello:v1"}}, wantErr: "apps/api"},
		{name: "broken overlay", req: ferry.DeployRequest{Path: "apps/broken", Images: []string{host + "/team/broken:v1"}}, wantErr: "apps/broken"},
		{name: "unparsable YAML in scope", req: ferry.DeployRequest{Path: "apps/badyaml", Images: []string{host + "/team/badyaml:v1"}}, wantErr: "apps/badyaml/notes.yaml"},
		{name: "missing branch", req: ferry.DeployRequest{Env: "staging"}, wantErr: `"staging" does not exist`},
		{name: "missing repo", remote: f.srv.URL + "/nope.git", wantErr: "not found"},
		{name: "unreachable repo", remote: "http://127.0.0.1:1/env.git", wantErr: "127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if req.Env == "" {
				req.Env = "candidate"
			}
			if req.Path == "" {
				req.Path = "apps/hello"
			}
			if req.Images == nil {
				req.Images = []string{host + "/team/hello:v1"}
			}
			env := f.env
			if tc.remote != "" {
				env.Remote = envrepo.Remote{URL: tc.remote}
			}
			before := f.repo.Tip("candidate")
			_, err := ferry.Deploy(context.Background(), env, req)
			if err == nil || !strings.Contains(flagged(err), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if got := errors.As(err, new(*ferry.FieldError)); got != tc.usage {
				t.Errorf("usage error = %v, want %v (%v)", got, tc.usage, err)
			}
			if f.repo.Tip("candidate") != before {
				t.Error("the remote branch moved")
			}
		})
	}
	t.Run("not referenced is typed", func(t *testing.T) {
		_, err := ferry.Deploy(context.Background(), f.env, ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{host + "/team/unused:v1"}})
		if !errors.Is(err, manifest.ErrNotReferenced) {
			t.Errorf("err = %v, want ErrNotReferenced", err)
		}
	})
}

// Eight pipelines deploy eight apps into one branch at once; all land and
// none undoes another.
func TestDeployConcurrentApps(t *testing.T) {
	f := newFixture(t)
	const n = 8
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("apps/app%d/deployment.yaml", i)] = fmt.Sprintf(
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app%d\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: %s/team/app%d:v0\n", i, f.reg.Host, i)
	}
	f.repo.Commit("candidate", "add apps", files)
	digests := make([]string, n)
	for i := range n {
		digests[i] = f.reg.Push(t, fmt.Sprintf("team/app%d:v1", i))
	}
	env := f.env
	env.Attempts = 40
	env.Backoff = 20 * time.Millisecond
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ferry.Deploy(context.Background(), env, ferry.DeployRequest{
				Env: "candidate", Path: fmt.Sprintf("apps/app%d", i), Images: []string{fmt.Sprintf("%s/team/app%d:v1", f.reg.Host, i)},
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("deploy app%d: %v", i, err)
		}
	}
	f.repo.Fsck()
	for i := range n {
		if got := f.repo.Show("candidate", fmt.Sprintf("apps/app%d/deployment.yaml", i)); !strings.Contains(got, digests[i]) {
			t.Errorf("app%d's deploy was lost:\n%s", i, got)
		}
	}
	if merges := f.repo.Git("rev-list", "--merges", "--count", "candidate"); merges != "0" {
		t.Errorf("%s merge commits, want a linear history", merges)
	}
	if got := f.repo.Git("rev-list", "--count", "candidate"); got != fmt.Sprint(n+3) {
		t.Errorf("%s commits, want %d", got, n+3)
	}
}

// Pipelines finish out of order: an older build must not replace a newer one.
func TestDeployOutOfOrder(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	newer := f.reg.PushCreated(t, "team/hello:build-2", day(2))
	older := f.reg.PushCreated(t, "team/hello:build-1", day(1))
	unknown := f.reg.PushCreated(t, "team/hello:repro", time.Unix(0, 0)) // reproducible build: epoch
	deploy := func(tag string, allow bool) *ferry.Report {
		t.Helper()
		rep, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:" + tag}, AllowDowngrade: allow})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := deploy("build-2", false); !rep.Changed {
		t.Fatalf("first deploy: %+v", rep)
	}
	tip := f.repo.Tip("candidate")
	rep := deploy("build-1", false)
	if rep.Changed || !rep.Skipped || rep.Commit != "" || !strings.Contains(rep.Reason, "older") {
		t.Fatalf("older build: %+v", rep)
	}
	if f.repo.Tip("candidate") != tip || !strings.Contains(f.repo.Show("candidate", "apps/hello/deployment.yaml"), newer) {
		t.Fatal("the older build replaced the newer one")
	}
	if rep := deploy("build-1", true); !rep.Changed || !strings.Contains(f.repo.Show("candidate", "apps/hello/deployment.yaml"), older) {
		t.Fatalf("--allow-downgrade: %+v", rep)
	}
	// Epoch timestamps say nothing about order: the deploy proceeds.
	if rep := deploy("repro", false); !rep.Changed || !strings.Contains(f.repo.Show("candidate", "apps/hello/deployment.yaml"), unknown) {
		t.Fatalf("unknown build time: %+v", rep)
	}
	if rep := deploy("build-1", false); !rep.Changed {
		t.Fatalf("from an unknown build time: %+v", rep)
	}
	// Rollback is deliberate and not subject to the guard.
	if _, err := ferry.Rollback(ctx, f.env, ferry.RollbackRequest{Env: "candidate", Path: "apps/hello", Steps: 3}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.repo.Show("candidate", "apps/hello/deployment.yaml"), newer) {
		t.Error("rollback did not restore build-2")
	}
}

// flagged words a request's field errors as the CLI does (pkg/cli holds
// the one map; these tables predate the move and name the flags).
func flagged(err error) string {
	var fe *ferry.FieldError
	if !errors.As(err, &fe) {
		return err.Error()
	}
	flags := map[string]string{"Env": "--env", "Images": "--image", "Path": "--path", "From": "--from", "To": "--to", "Commit": "--commit", "Steps": "--steps", "Limit": "--limit"}
	return strings.Replace(err.Error(), fe.Error(), fe.Format(func(f string) string { return flags[f] }), 1)
}
