package ferry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/image"
)

// dirsLayout is one branch, main, with an environment a directory:
// envs/{env}/hello. Production's overlay differs from staging's on
// purpose (replicas, a patch, a comment), as overlays do.
func dirsLayout(reg string) map[string]string {
	deployment := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hello\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: hello}\n  template:\n    metadata:\n      labels: {app: hello}\n    spec:\n      containers:\n        - name: hello\n          image: hello\n"
	return map[string]string{
		"envs/staging/hello/kustomization.yaml": "resources:\n  - deployment.yaml\nimages:\n  - name: hello\n    newName: " + reg + "/team/hello\n    newTag: v0\n",
		"envs/staging/hello/deployment.yaml":    deployment,
		"envs/production/hello/kustomization.yaml": "# production: three replicas, reviewed by hand\n" +
			"resources:\n  - deployment.yaml\npatches:\n  - path: replicas.yaml\nimages:\n  - name: hello   # the app\n    newName: " + reg + "/team/hello\n    newTag: v0\n",
		"envs/production/hello/deployment.yaml": deployment,
		"envs/production/hello/replicas.yaml":   "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hello\nspec:\n  replicas: 3\n",
	}
}

type dirsFixture struct {
	reg  *testreg.Registry
	repo *testgit.Repo
	env  ferry.Env
}

func newDirsFixture(t *testing.T) *dirsFixture {
	t.Helper()
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepo(t, "", "main")
	repo.Commit("main", "layout", dirsLayout(reg.Host))
	srv := testgit.Serve(t, repo)
	return &dirsFixture{reg: reg, repo: repo, env: ferry.Env{
		Remote:   envrepo.Remote{URL: srv.RepoURL(repo)},
		Author:   envrepo.Author{Name: "ferry test", Email: "ferry@example.com"},
		Resolver: image.NewResolver(image.WithRetry(2, time.Millisecond)),
		Backoff:  time.Millisecond,
	}}
}

// withoutImageLines drops the lines an image pin may change, so what is
// left must be byte-identical before and after a promote of images.
func withoutImageLines(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "newTag:") || strings.HasPrefix(t, "digest:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

func TestPromoteDirectoriesCarryImages(t *testing.T) {
	f := newDirsFixture(t)
	ctx := context.Background()
	d1 := f.reg.Push(t, "team/hello:v1")
	if _, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "main", Path: "envs/staging/hello", Images: []string{f.reg.Host + "/team/hello:v1"},
		Provenance: ferry.Provenance{SourceRepo: "https://git.example.com/hello", SourceCommit: "abc1234", BuildID: "b-7"}}); err != nil {
		t.Fatal(err)
	}
	staged := f.repo.Tip("main")
	before := map[string]string{}
	for _, name := range []string{"kustomization.yaml", "deployment.yaml", "replicas.yaml"} {
		before[name] = f.repo.Show("main", "envs/production/hello/"+name)
	}

	rep, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{
		From: "main", To: "main", FromEnv: "staging", ToEnv: "production",
		FromPath: "envs/staging/hello", Path: "envs/production/hello", Carry: ferry.CarryImages,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.repo.Fsck()
	if !rep.Changed || rep.Carry != ferry.CarryImages || rep.From != "staging@"+staged {
		t.Errorf("report: changed %v, carry %q, from %q; want true, images, staging@%s", rep.Changed, rep.Carry, rep.From, staged)
	}
	if len(rep.Images) != 1 || rep.Images[0].Digest != d1 || rep.Images[0].Tag != "v1" {
		t.Errorf("report images %+v, want hello:v1@%s", rep.Images, d1)
	}
	// One commit, on the same branch, touching production alone.
	if got := f.repo.Git("rev-parse", "main~1"); got != staged {
		t.Errorf("main~1 = %s, want the deploy %s: one commit", got, staged)
	}
	if got := f.repo.Git("diff", "--name-only", staged, "main"); got != "envs/production/hello/kustomization.yaml" {
		t.Errorf("promote changed %q, want production's kustomization.yaml alone", got)
	}
	after := f.repo.Show("main", "envs/production/hello/kustomization.yaml")
	if !strings.Contains(after, "digest: "+d1) || !strings.Contains(after, "newTag: v1") {
		t.Errorf("production's kustomization does not pin v1@%s:\n%s", d1, after)
	}
	if withoutImageLines(after) != withoutImageLines(before["kustomization.yaml"]) {
		t.Errorf("a byte other than the pin changed:\n--- before\n%s\n--- after\n%s", before["kustomization.yaml"], after)
	}
	for _, name := range []string{"deployment.yaml", "replicas.yaml"} {
		if got := f.repo.Show("main", "envs/production/hello/"+name); got != before[name] {
			t.Errorf("%s changed", name)
		}
	}
	rec := audit.Parse(f.repo.Git("log", "-1", "--format=%B", "main"))
	if rec.Action != audit.ActionPromote || rec.Env != "production" || rec.Path != "envs/production/hello" ||
		rec.PromotedFrom != "staging@"+staged || rec.PromotedFromPath != "envs/staging/hello" || rec.Carry != "images" || rec.PromotedFromRepo != "" {
		t.Errorf("trailers %+v", rec)
	}
	if len(rec.Sources) != 1 || rec.Sources[0].BuildID != "b-7" {
		t.Errorf("sources %+v, want the deploy's build b-7", rec.Sources)
	}

	// Again: nothing to do, and it says why.
	again, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{
		From: "main", To: "main", FromEnv: "staging", ToEnv: "production",
		FromPath: "envs/staging/hello", Path: "envs/production/hello", Carry: ferry.CarryImages,
	})
	if err != nil || again.Changed || !strings.Contains(again.Reason, "already pinned") {
		t.Errorf("second promote: %+v, %v; want unchanged, already pinned", again, err)
	}
}

func TestPromoteDirectoriesCarryTree(t *testing.T) {
	f := newDirsFixture(t)
	ctx := context.Background()
	f.reg.Push(t, "team/hello:v1")
	if _, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "main", Path: "envs/staging/hello", Images: []string{f.reg.Host + "/team/hello:v1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{
		From: "main", To: "main", FromPath: "envs/staging/hello", Path: "envs/production/hello", Carry: ferry.CarryTree,
	}); err != nil {
		t.Fatal(err)
	}
	if a, b := f.repo.Git("rev-parse", "main:envs/staging/hello"), f.repo.Git("rev-parse", "main:envs/production/hello"); a != b {
		t.Errorf("production's tree %s, want staging's %s", b, a)
	}
}

// Only pins are carried; a source that pins nothing by digest is refused
// before anything is written.
func TestPromoteImagesNeedsPins(t *testing.T) {
	f := newDirsFixture(t)
	before := f.repo.Tip("main")
	_, err := ferry.Promote(context.Background(), f.env, ferry.PromoteRequest{
		From: "main", To: "main", FromPath: "envs/staging/hello", Path: "envs/production/hello", Carry: ferry.CarryImages,
	})
	if err == nil || !strings.Contains(err.Error(), "pins no image by digest") {
		t.Fatalf("err = %v, want pins no image by digest", err)
	}
	if f.repo.Tip("main") != before {
		t.Error("the branch moved")
	}
}

// The rollback hold is per directory: production held, staging free.
func TestHoldPerDirectory(t *testing.T) {
	f := newDirsFixture(t)
	ctx := context.Background()
	f.reg.Push(t, "team/hello:v1")
	f.reg.Push(t, "team/hello:v2")
	for _, tag := range []string{"v1", "v2"} {
		if _, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "main", Path: "envs/staging/hello", Images: []string{f.reg.Host + "/team/hello:" + tag}}); err != nil {
			t.Fatal(err)
		}
		if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "main", To: "main", FromPath: "envs/staging/hello", Path: "envs/production/hello", Carry: ferry.CarryImages}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ferry.Rollback(ctx, f.env, ferry.RollbackRequest{Env: "main", Path: "envs/production/hello"}); err != nil {
		t.Fatal(err)
	}
	if got := f.repo.Show("main", "envs/production/hello/kustomization.yaml"); !strings.Contains(got, "newTag: v1") {
		t.Fatalf("rollback did not restore v1:\n%s", got)
	}
	held := f.repo.Tip("main")
	_, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "main", To: "main", FromPath: "envs/staging/hello", Path: "envs/production/hello", Carry: ferry.CarryImages})
	if !errors.Is(err, ferry.ErrHeld) {
		t.Fatalf("promote into the held directory: %v, want ErrHeld", err)
	}
	if f.repo.Tip("main") != held {
		t.Error("the held promote moved the branch")
	}
	f.reg.Push(t, "team/hello:v3")
	if _, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "main", Path: "envs/staging/hello", Images: []string{f.reg.Host + "/team/hello:v3"}}); err != nil {
		t.Errorf("deploy to staging while production is held: %v", err)
	}
}

// Production in a repo of its own: the promote reads the exact source
// commit from one repo and writes, with compare-and-swap, to the other; the
// trailer names the source repo.
func TestPromoteAcrossRepos(t *testing.T) {
	f := newFixture(t) // candidate and production branches in one repo: the source
	ctx := context.Background()
	d1 := f.reg.Push(t, "team/hello:v1")
	if _, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}}); err != nil {
		t.Fatal(err)
	}
	verified := f.repo.Tip("candidate")
	prod := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", f.reg.Host}, "main")
	prodSrv := testgit.Serve(t, prod)
	env := f.env
	env.Remote = envrepo.Remote{URL: prodSrv.RepoURL(prod)}
	srcURL := f.srv.RepoURL(f.repo)

	// A later deploy to candidate does not ride along: --commit is exact.
	f.reg.Push(t, "team/hello:v2")
	if _, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v2"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := ferry.Promote(ctx, env, ferry.PromoteRequest{
		From: "candidate", To: "main", FromRepo: srcURL, Commit: verified, Path: "apps/hello", Carry: ferry.CarryTree,
	})
	if err != nil {
		t.Fatal(err)
	}
	prod.Fsck()
	if !rep.Changed || rep.Commit != prod.Tip("main") {
		t.Errorf("report %+v", rep)
	}
	if got := prod.Show("main", "apps/hello/kustomization.yaml"); !strings.Contains(got, d1) {
		t.Errorf("production does not pin v1@%s:\n%s", d1, got)
	}
	if a, b := f.repo.Git("rev-parse", verified+":apps/hello"), prod.Git("rev-parse", "main:apps/hello"); a != b {
		t.Errorf("production's apps/hello %s, want the verified commit's %s", b, a)
	}
	rec := audit.Parse(prod.Git("log", "-1", "--format=%B", "main"))
	if rec.PromotedFrom != "candidate@"+verified || rec.PromotedFromRepo != srcURL {
		t.Errorf("trailers: promoted from %q in %q; want candidate@%s in %s", rec.PromotedFrom, rec.PromotedFromRepo, verified, srcURL)
	}
	if f.repo.Tip("production") == prod.Tip("main") {
		t.Error("wrote to the source repo")
	}
}
