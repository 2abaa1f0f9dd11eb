package ferry_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/config"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/google/go-cmp/cmp"
)

// cellSummary is what a test says about a cell: its state, the images
// (base:tag@digest), the action the images came from, Behind, the hold.
type cellSummary struct {
	State   string
	Images  string
	Action  string // of the ferry commit the images come from
	Last    string // the action of the last change
	Behind  string // "2", "1+", "" for 0
	HeldBy  string
	Drifted bool
}

func summarize(r *ferry.StatusReport) map[string]map[string]cellSummary {
	out := map[string]map[string]cellSummary{}
	for _, a := range r.Apps {
		out[a.App] = map[string]cellSummary{}
		for _, c := range a.Cells {
			s := cellSummary{State: c.State, Drifted: c.Drifted}
			var imgs []string
			for _, i := range c.Images {
				imgs = append(imgs, ref.Ref{Repo: i.Name, Tag: i.Tag, Digest: i.Digest}.Short())
			}
			s.Images = strings.Join(imgs, ", ")
			if c.Ferry != nil {
				s.Action = c.Ferry.Action
			}
			if c.LastChange != nil {
				s.Last = c.LastChange.Action
			}
			if c.Behind > 0 || c.BehindAtLeast {
				s.Behind = strconv.Itoa(c.Behind)
				if c.BehindAtLeast {
					s.Behind += "+"
				}
			}
			if c.Held != nil {
				s.HeldBy = c.Held.Commit
			}
			out[a.App][c.Env] = s
		}
	}
	return out
}

// posts counts the fetches (POSTs to git-upload-pack) and the bytes
// answered to them.
type posts struct{ n, bytes atomic.Int64 }

func (p *posts) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			p.n.Add(1)
			w = &countingWriter{ResponseWriter: w, n: &p.bytes}
		}
		next.ServeHTTP(w, r)
	})
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return c.ResponseWriter.Write(b)
}

func parseConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("ferry.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func short(host, repo, tag, digest string) string {
	return ref.Ref{Repo: host + "/" + repo, Tag: tag, Digest: digest}.Short()
}

// The branch layout: candidate and production are branches, every app in
// apps/{app}. Each state a cell can be in, made by ferry's own commands
// and by hand.
func TestStatusBranches(t *testing.T) {
	f, _, c2, _, d2 := flow(t) // hello v1, v2 deployed to candidate
	ctx := context.Background()
	host := f.reg.Host
	deploy := func(branch, path, img string, src ferry.Provenance) string {
		t.Helper()
		rep, err := ferry.Deploy(ctx, f.env, ferry.DeployRequest{Env: branch, Path: path, Images: []string{host + "/" + img}, Provenance: src})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Commit
	}
	// production runs v2; candidate moves on twice: production is 2 behind.
	if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Commit: c2, Path: "apps/hello"}); err != nil {
		t.Fatal(err)
	}
	f.reg.Push(t, "team/hello:v3")
	d4 := f.reg.Push(t, "team/hello:v4")
	deploy("candidate", "apps/hello", "team/hello:v3", ferry.Provenance{SourceCommit: "src-v3"})
	v4 := deploy("candidate", "apps/hello", "team/hello:v4", ferry.Provenance{SourceCommit: "src-v4", BuildID: "build-v4"})

	// api: deployed, promoted, rolled back on production (held); changed by
	// hand on candidate since (drifted).
	d5 := f.reg.Push(t, "team/api:v5")
	deploy("candidate", "apps/api", "team/api:v5", ferry.Provenance{})
	if _, err := ferry.Promote(ctx, f.env, ferry.PromoteRequest{From: "candidate", To: "production", Path: "apps/api"}); err != nil {
		t.Fatal(err)
	}
	rb, err := ferry.Rollback(ctx, f.env, ferry.RollbackRequest{Env: "production", Path: "apps/api"})
	if err != nil {
		t.Fatal(err)
	}
	f.repo.Commit("candidate", "api: more replicas", map[string]string{"apps/api/README.md": "tuned by hand\n"})
	// A new app by hand, on candidate only: absent on production.
	f.repo.Commit("candidate", "add fresh", map[string]string{"apps/fresh/deployment.yaml": "kind: Deployment\n"})

	cfg := parseConfig(t, "version: 1\nenvironments:\n  - name: candidate\n  - name: production\n")
	rep, err := ferry.Status(ctx, f.env, ferry.StatusRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	api := func(tag, digest string) string { return short(host, "team/api", tag, digest) }
	want := map[string]map[string]cellSummary{
		"hello": {
			"candidate":  {State: "current", Images: short(host, "team/hello", "v4", d4), Action: "deploy", Last: "deploy"},
			"production": {State: "behind", Images: short(host, "team/hello", "v2", d2), Action: "promote", Last: "promote", Behind: "2"},
		},
		"api": {
			"candidate": {State: "drifted", Images: api("v5", d5), Action: "deploy", Last: "manual", Drifted: true},
			// The rollback wrote back the seed's api:v0 (no digest); the
			// hold names it.
			"production": {State: "held", Images: api("v0", ""), Action: "rollback", Last: "rollback", Behind: "1+", HeldBy: rb.Commit},
		},
		"fresh": {
			"candidate":  {State: "unmanaged", Last: "manual", Drifted: true},
			"production": {State: "absent"},
		},
		"badyaml": {
			"candidate":  {State: "unmanaged", Last: "manual", Drifted: true},
			"production": {State: "unmanaged", Last: "manual", Drifted: true},
		},
		"broken": {
			"candidate":  {State: "unmanaged", Last: "manual", Drifted: true},
			"production": {State: "unmanaged", Last: "manual", Drifted: true},
		},
	}
	if diff := cmp.Diff(want, summarize(rep)); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}

	// The columns, and what the cells say of where their images came from.
	wantEnvs := []ferry.StatusEnv{
		{Name: "candidate", Label: "candidate", Repo: f.srv.RepoURL(f.repo), Branch: "candidate", Path: "apps/{app}", Tip: f.repo.Tip("candidate"), Complete: true},
		{Name: "production", Label: "production", Repo: f.srv.RepoURL(f.repo), Branch: "production", Path: "apps/{app}", Tip: f.repo.Tip("production"), Complete: true},
	}
	if diff := cmp.Diff(wantEnvs, rep.Environments); diff != "" {
		t.Errorf("environments (-want +got):\n%s", diff)
	}
	hello := appOf(t, rep, "hello")
	if got, want := hello.Cells[0].Sources, []audit.Source{{SourceCommit: "src-v4", BuildID: "build-v4"}}; !cmp.Equal(got, want) {
		t.Errorf("candidate's sources (-want +got):\n%s", cmp.Diff(want, got))
	}
	if got := hello.Cells[1]; got.PromotedFrom != "candidate@"+c2 || len(got.Sources) != 1 || got.Sources[0].SourceCommit != "src-v2" {
		t.Errorf("production: promoted from %q, sources %+v; want candidate@%s, src-v2", got.PromotedFrom, got.Sources, c2)
	}
	if got := hello.Cells[0].LastChange; got == nil || got.Commit != v4 || got.Author != "ferry test <ferry@example.com>" || got.Action != "deploy" {
		t.Errorf("last change %+v, want the deploy of v4, %s", got, v4)
	}

	// The timeline: every change of the app, newest first; in each column
	// in the order it happened, the seed (by hand) the oldest. (Across
	// columns, commits made in one second keep the columns' order.)
	perEnv := map[string][]string{}
	for i, ev := range hello.Timeline {
		if i > 0 && ev.Time.After(hello.Timeline[i-1].Time) {
			t.Errorf("timeline event %d is newer than the one before it", i)
		}
		var imgs []string
		for _, i := range ev.Images {
			imgs = append(imgs, i.Tag)
		}
		perEnv[ev.Env] = append(perEnv[ev.Env], ev.Action+" "+strings.Join(imgs, ","))
	}
	wantTimeline := map[string][]string{
		"candidate":  {"deploy v4", "deploy v3", "deploy v2", "deploy v1", "manual "},
		"production": {"promote v2", "manual "},
	}
	if diff := cmp.Diff(wantTimeline, perEnv); diff != "" {
		t.Errorf("hello's timeline (-want +got):\n%s", diff)
	}

	// Only the apps asked for, in order; one that is nowhere is absent
	// everywhere.
	rep, err = ferry.Status(ctx, f.env, ferry.StatusRequest{Config: cfg, Apps: []string{"nowhere", "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	var apps []string
	for _, a := range rep.Apps {
		apps = append(apps, a.App+":"+a.Cells[0].State+"/"+a.Cells[1].State)
	}
	if diff := cmp.Diff([]string{"hello:current/behind", "nowhere:absent/absent"}, apps); diff != "" {
		t.Errorf("apps asked for (-want +got):\n%s", diff)
	}

	// Read six commits deep, candidate's history shows v4 and v3 but not
	// the v2 production runs: production is at least 2 behind. Where
	// nothing changed within the commits read, nothing is known.
	rep, err = ferry.Status(ctx, f.env, ferry.StatusRequest{Config: cfg, Apps: []string{"hello", "broken"}, Depth: 6})
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]map[string]cellSummary{
		"hello": {
			"candidate":  {State: "current", Images: short(host, "team/hello", "v4", d4), Action: "deploy", Last: "deploy"},
			"production": {State: "behind", Images: short(host, "team/hello", "v2", d2), Action: "promote", Last: "promote", Behind: "2+"},
		},
		"broken": {
			"candidate":  {State: "unknown"},
			"production": {State: "unmanaged", Last: "manual", Drifted: true},
		},
	}
	if diff := cmp.Diff(want, summarize(rep)); diff != "" {
		t.Errorf("six commits deep (-want +got):\n%s", diff)
	}
	if rep.Environments[0].Complete || !rep.Environments[1].Complete {
		t.Errorf("complete: candidate %v, production %v; want false, true", rep.Environments[0].Complete, rep.Environments[1].Complete)
	}

	// A fix forward by hand lifts the hold, as it does for writes.
	f.repo.Commit("production", "api: fixed by hand", map[string]string{"apps/api/README.md": "fixed\n"})
	rep, err = ferry.Status(ctx, f.env, ferry.StatusRequest{Config: cfg, Apps: []string{"api"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := summarize(rep)["api"]["production"]; got.State != "drifted" || got.HeldBy != "" {
		t.Errorf("after a fix forward: %+v, want drifted and no hold", got)
	}
}

func appOf(t *testing.T, r *ferry.StatusReport, app string) ferry.AppStatus {
	t.Helper()
	for _, a := range r.Apps {
		if a.App == app {
			return a
		}
	}
	t.Fatalf("no app %q in the report", app)
	return ferry.AppStatus{}
}

// The other layouts: staging and production as directories on one branch
// (envs/{env}/{app}), and an environment fanned out to two repositories,
// one of which lacks its branch so far; every app holds a large file. Status reads each (repository, branch) once, in
// one fetch, and no file: the bytes fetched are a small part of one blob.
func TestStatusDirectoriesAndRepos(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	host := f.reg.Host
	const blobSize = 1 << 20
	seed := func(envs ...string) string {
		dir := t.TempDir()
		for _, env := range envs {
			for _, app := range []string{"hello", "other"} {
				to := filepath.Join(dir, "envs", env, app)
				if err := os.CopyFS(to, os.DirFS("../../testdata/envrepo/apps/hello")); err != nil {
					t.Fatal(err)
				}
				big := make([]byte, blobSize)
				rand.Read(big)
				if err := os.WriteFile(filepath.Join(to, "big.bin"), big, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		return dir
	}
	main := testgit.NewRepoFromTemplate(t, seed("staging", "production"), []string{"REGISTRY", host}, "main")
	edge := testgit.NewRepoFromTemplate(t, seed("edge"), []string{"REGISTRY", host}, "live")
	// Named apart from main's env.git, as the columns of a fan-out are.
	renamed := filepath.Join(filepath.Dir(edge.Dir), "edge-eu.git")
	if err := os.Rename(edge.Dir, renamed); err != nil {
		t.Fatal(err)
	}
	edge.Dir, edge.Name = renamed, "edge-eu.git"
	var p posts
	mainSrv := testgit.Serve(t, main, testgit.WithMiddleware(p.wrap))
	edgeSrv := testgit.Serve(t, edge, testgit.WithMiddleware(p.wrap))
	e := f.env
	e.Remote = envrepo.Remote{URL: mainSrv.RepoURL(main)}
	edgeEnv := e
	edgeEnv.Remote = envrepo.Remote{URL: edgeSrv.RepoURL(edge)}

	d1, d2 := f.reg.Push(t, "team/hello:v1"), f.reg.Push(t, "team/hello:v2")
	deploy := func(e ferry.Env, branch, path, tag string) {
		t.Helper()
		if _, err := ferry.Deploy(ctx, e, ferry.DeployRequest{Env: branch, Path: path, Images: []string{host + "/team/hello:" + tag}}); err != nil {
			t.Fatal(err)
		}
	}
	deploy(e, "main", "envs/staging/hello", "v1")
	// Promote moves between branches with one path; production on the
	// same branch is deployed to directly.
	deploy(e, "main", "envs/production/hello", "v1")
	deploy(e, "main", "envs/staging/hello", "v2")
	deploy(edgeEnv, "live", "envs/edge/hello", "v1")

	cfg := parseConfig(t, `version: 1
defaults:
  branch: main
  path: envs/{env}/{app}
environments:
  - name: staging
  - name: production
  - name: edge
    repo: [`+mainSrv.RepoURL(main)+`, `+edgeSrv.RepoURL(edge)+`]
    branch: live
`)
	p.n.Store(0)
	p.bytes.Store(0)
	rep, err := ferry.Status(ctx, e, ferry.StatusRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.n.Load(); got != 2 {
		t.Errorf("%d fetches, want 2: main once for staging and production, live once (main has none)", got)
	}
	if got := p.bytes.Load(); got > blobSize/10 {
		t.Errorf("%d bytes fetched; the blobs (%d bytes each) were fetched", got, blobSize)
	}
	hello := func(tag, d string) string { return short(host, "team/hello", tag, d) }
	want := map[string]map[string]cellSummary{
		"hello": {
			"staging":        {State: "current", Images: hello("v2", d2), Action: "deploy", Last: "deploy"},
			"production":     {State: "behind", Images: hello("v1", d1), Action: "deploy", Last: "deploy", Behind: "1"},
			"edge (env)":     {State: "absent"},
			"edge (edge-eu)": {State: "current", Images: hello("v1", d1), Action: "deploy", Last: "deploy"},
		},
		"other": {
			"staging":        {State: "unmanaged", Last: "manual", Drifted: true},
			"production":     {State: "unmanaged", Last: "manual", Drifted: true},
			"edge (env)":     {State: "absent"},
			"edge (edge-eu)": {State: "unmanaged", Last: "manual", Drifted: true},
		},
	}
	if diff := cmp.Diff(want, summarize(rep)); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
	var where []string
	for _, env := range rep.Environments {
		where = append(where, fmt.Sprint(env.Label, " ", env.Repo, " ", env.Branch, " ", env.Path, " missing:", env.Missing))
	}
	wantWhere := []string{
		"staging " + mainSrv.RepoURL(main) + " main envs/{env}/{app} missing:false",
		"production " + mainSrv.RepoURL(main) + " main envs/{env}/{app} missing:false",
		"edge (env) " + mainSrv.RepoURL(main) + " live envs/{env}/{app} missing:true",
		"edge (edge-eu) " + edgeSrv.RepoURL(edge) + " live envs/{env}/{app} missing:false",
	}
	if diff := cmp.Diff(wantWhere, where); diff != "" {
		t.Errorf("environments (-want +got):\n%s", diff)
	}
}

// An env repo of one app, its environments as directories (envs/{env},
// app: hello): the one app is the only row, present where its directory
// is, and no other directory (base, a stray one) is taken for an app.
func TestStatusOneApp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	host := f.reg.Host
	dir := t.TempDir()
	for _, d := range []string{"envs/qa", "envs/staging", "base", "envs/qa/extra"} {
		if err := os.CopyFS(filepath.Join(dir, d), os.DirFS("../../testdata/envrepo/apps/hello")); err != nil {
			t.Fatal(err)
		}
	}
	repo := testgit.NewRepoFromTemplate(t, dir, []string{"REGISTRY", host}, "main")
	srv := testgit.Serve(t, repo)
	e := f.env
	e.Remote = envrepo.Remote{URL: srv.RepoURL(repo)}

	d1, d2 := f.reg.Push(t, "team/hello:v1"), f.reg.Push(t, "team/hello:v2")
	cfg := parseConfig(t, `version: 1
app: hello
defaults: {branch: main, path: "envs/{env}"}
environments:
  - name: qa
  - name: staging
  - name: prod
`)
	for _, d := range []struct{ env, tag string }{{"qa", "v1"}, {"staging", "v1"}, {"qa", "v2"}} {
		env, err := cfg.Env(d.env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ferry.Deploy(ctx, e, ferry.DeployRequest{Env: env.Branch, EnvName: env.Name, Path: env.Dir("ignored"), App: cfg.App,
			Images: []string{host + "/team/hello:" + d.tag}}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := ferry.Status(ctx, e, ferry.StatusRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	hello := func(tag, d string) string { return short(host, "team/hello", tag, d) }
	want := map[string]map[string]cellSummary{
		"hello": {
			"qa":      {State: "current", Images: hello("v2", d2), Action: "deploy", Last: "deploy"},
			"staging": {State: "behind", Images: hello("v1", d1), Action: "deploy", Last: "deploy", Behind: "1"},
			"prod":    {State: "absent"},
		},
	}
	if diff := cmp.Diff(want, summarize(rep)); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
	if got := rep.Apps[0].Cells[0].Path; got != "envs/qa" {
		t.Errorf("qa's cell is at %q, want envs/qa", got)
	}

	// Asked for by name, the one app is as found; another is no app here.
	if _, err := ferry.Status(ctx, e, ferry.StatusRequest{Config: cfg, Apps: []string{"hello"}}); err != nil {
		t.Errorf("Status of hello: %v", err)
	}
	_, err = ferry.Status(ctx, e, ferry.StatusRequest{Config: cfg, Apps: []string{"base"}})
	if want := "ferry.yaml holds one app, hello, not base"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Status of base: %v, want an error saying %q", err, want)
	}
}
