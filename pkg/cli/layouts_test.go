package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/audit"
)

// The three layouts teams use, each walked end to end through the CLI:
// deploy, promote, a second deploy and promote, rollback, the hold, and
// history, once from a ferry.yaml (names only: --app, --env, --to) and
// once from flags alone.

const helloDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 1
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
        - name: hello
          image: hello
`

// overlay is one environment's directory of hello: its own kustomization
// (with a comment and, for production, a patch), pinning REGISTRY/team/hello.
func overlay(reg, env string) map[string]string {
	files := map[string]string{
		"kustomization.yaml": "# " + env + " overlay, kept by hand\nresources:\n  - deployment.yaml\nimages:\n  - name: hello\n    newName: " + reg + "/team/hello\n    newTag: v0\n",
		"deployment.yaml":    helloDeployment,
	}
	if env == "production" {
		files["kustomization.yaml"] = strings.Replace(files["kustomization.yaml"], "resources:", "patches:\n  - path: replicas.yaml\nresources:", 1)
		files["replicas.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hello\nspec:\n  replicas: 3\n"
	}
	return files
}

func under(dir string, files map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[dir+"/"+k] = v
	}
	return out
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// layout is an env repo set-up: where staging (or candidate) and
// production live, the ferry.yaml naming them, and the flags that say the
// same without it.
type layout struct {
	name string
	// setUp makes the repos; it returns the --repo URL (the first
	// environment's repo), the repo production lives in, and the ferry.yaml.
	setUp             func(t *testing.T, reg string) (first, prod *testgit.Repo, srv *testgit.Server, config string)
	first, prod       string // environment names
	firstB, prodB     string // their branches
	firstDir, prodDir string
	carry             string // what the promote carries by default
}

var layouts = []layout{
	{
		name: "branches", first: "candidate", prod: "production", firstB: "candidate", prodB: "production",
		firstDir: "apps/hello", prodDir: "apps/hello", carry: "tree",
		setUp: func(t *testing.T, reg string) (*testgit.Repo, *testgit.Repo, *testgit.Server, string) {
			r := testgit.NewRepo(t, "", "candidate", "production")
			cfg := "# environments are branches\nversion: 1\nenvironments:\n  - name: candidate\n  - name: production\n"
			for _, b := range []string{"candidate", "production"} {
				r.Commit(b, "hello", merge(under("apps/hello", overlay(reg, "staging")), map[string]string{"ferry.yaml": cfg}))
			}
			r.Git("symbolic-ref", "HEAD", "refs/heads/candidate")
			return r, r, testgit.Serve(t, r), cfg
		},
	},
	{
		name: "directories", first: "staging", prod: "production", firstB: "main", prodB: "main",
		firstDir: "envs/staging/hello", prodDir: "envs/production/hello", carry: "images",
		setUp: func(t *testing.T, reg string) (*testgit.Repo, *testgit.Repo, *testgit.Server, string) {
			r := testgit.NewRepo(t, "", "main")
			cfg := "# environments are directories on main\nversion: 1\ndefaults:\n  branch: main\n  path: envs/{env}/{app}\nenvironments:\n  - name: staging\n  - name: production\n"
			r.Commit("main", "hello", merge(under("envs/staging/hello", overlay(reg, "staging")), under("envs/production/hello", overlay(reg, "production")), map[string]string{"ferry.yaml": cfg}))
			r.Git("symbolic-ref", "HEAD", "refs/heads/main")
			return r, r, testgit.Serve(t, r), cfg
		},
	},
	{
		name: "directories and a production repo", first: "staging", prod: "production", firstB: "main", prodB: "main",
		firstDir: "apps/hello/overlays/staging", prodDir: "apps/hello/overlays/production", carry: "images",
		setUp: func(t *testing.T, reg string) (*testgit.Repo, *testgit.Repo, *testgit.Server, string) {
			r := testgit.NewRepo(t, "", "main")
			p := testgit.NewRepo(t, "", "main")
			srv := testgit.Serve(t, r)
			// One server serves every repo under its root; the production
			// repo sits beside the first.
			if err := os.Rename(p.Dir, filepath.Join(filepath.Dir(r.Dir), "prod.git")); err != nil {
				t.Fatal(err)
			}
			p.Dir, p.Name = filepath.Join(filepath.Dir(r.Dir), "prod.git"), "prod.git"
			cfg := "# staging here, production in a repo of its own\nversion: 1\ndefaults: {path: \"apps/{app}/overlays/{env}\", branch: main}\nenvironments:\n  - name: staging\n  - name: production\n    repo: " + srv.RepoURL(p) + "\n"
			r.Commit("main", "hello", merge(under("apps/hello/overlays/staging", overlay(reg, "staging")), map[string]string{"ferry.yaml": cfg}))
			p.Commit("main", "hello", under("apps/hello/overlays/production", overlay(reg, "production")))
			r.Git("symbolic-ref", "HEAD", "refs/heads/main")
			return r, p, srv, cfg
		},
	},
}

func TestLayoutsEndToEnd(t *testing.T) {
	for _, lo := range layouts {
		for _, mode := range []string{"ferry.yaml", "flags"} {
			t.Run(lo.name+"/"+mode, func(t *testing.T) {
				reg := testreg.Start(t, nil)
				first, prod, srv, _ := lo.setUp(t, reg.Host)
				env := map[string]string{"FERRY_REPO": srv.RepoURL(first)}
				prodURL := srv.RepoURL(prod)
				img := reg.Host + "/team/hello"
				digests := map[string]string{}
				for _, tag := range []string{"v1", "v2"} {
					digests[tag] = reg.Push(t, "team/hello:"+tag)
				}
				// The commands, in the mode's words.
				deploy := func(tag string) []string {
					if mode == "flags" {
						return []string{"deploy", "--env", lo.firstB, "--path", lo.firstDir, "--app", "hello", "--image", img + ":" + tag}
					}
					return []string{"deploy", "--app", "hello", "--image", img + ":" + tag}
				}
				promote := func(extra ...string) []string {
					args := []string{"promote", "--app", "hello", "--to", lo.prod}
					if mode == "flags" {
						args = []string{"promote", "--app", "hello", "--from", lo.firstB, "--to", lo.prodB, "--path", lo.prodDir, "--carry", lo.carry}
						if lo.firstDir != lo.prodDir {
							args = append(args, "--from-path", lo.firstDir)
						}
						if prod != first {
							args = append(args, "--repo", prodURL, "--from-repo", srv.RepoURL(first))
						}
					}
					return append(args, extra...)
				}
				onProd := func(cmd string, extra ...string) []string {
					if mode == "flags" {
						args := []string{cmd, "--env", lo.prodB, "--path", lo.prodDir}
						if prod != first {
							args = append(args, "--repo", prodURL)
						}
						return append(args, extra...)
					}
					return append([]string{cmd, "--app", "hello", "--env", lo.prod}, extra...)
				}
				mustRun := func(args ...string) string {
					t.Helper()
					code, out, errOut := run(t, env, append(args, "--output", "json")...)
					if code != 0 {
						t.Fatalf("ferry %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
					}
					return out
				}
				prodFile := func() string { return prod.Show(lo.prodB, lo.prodDir+"/kustomization.yaml") }
				prodBefore := map[string]string{}
				for _, name := range []string{"kustomization.yaml", "deployment.yaml", "replicas.yaml"} {
					if prod.Git("ls-tree", lo.prodB, lo.prodDir+"/"+name) != "" {
						prodBefore[name] = prod.Show(lo.prodB, lo.prodDir+"/"+name)
					}
				}

				// deploy v1 to the first environment.
				var rep struct {
					Changed bool
					Commit  string
					Branch  string
					Env     string
					Path    string
					Carry   string
					From    string
				}
				if err := json.Unmarshal([]byte(mustRun(deploy("v1")...)), &rep); err != nil {
					t.Fatal(err)
				}
				if !rep.Changed || rep.Path != lo.firstDir || rep.Branch != lo.firstB {
					t.Fatalf("deploy report %+v; want a change to %s on %s", rep, lo.firstDir, lo.firstB)
				}
				if got := first.Show(lo.firstB, lo.firstDir+"/kustomization.yaml"); !strings.Contains(got, digests["v1"]) {
					t.Fatalf("the first environment does not pin v1:\n%s", got)
				}
				verified := first.Tip(lo.firstB)

				// promote it.
				rep = struct {
					Changed bool
					Commit  string
					Branch  string
					Env     string
					Path    string
					Carry   string
					From    string
				}{}
				if err := json.Unmarshal([]byte(mustRun(promote()...)), &rep); err != nil {
					t.Fatal(err)
				}
				if !rep.Changed || rep.Path != lo.prodDir || rep.Carry != lo.carry || !strings.HasSuffix(rep.From, "@"+verified) {
					t.Fatalf("promote report %+v; want %s carried to %s from @%s", rep, lo.carry, lo.prodDir, verified)
				}
				if !strings.Contains(prodFile(), digests["v1"]) {
					t.Fatalf("production does not pin v1:\n%s", prodFile())
				}
				rec := audit.Parse(prod.Git("log", "-1", "--format=%B", lo.prodB))
				if mode == "ferry.yaml" && (rec.Env != lo.prod || !strings.HasPrefix(rec.PromotedFrom, lo.first+"@")) {
					t.Errorf("trailers name %q from %q; want the environments %s from %s", rec.Env, rec.PromotedFrom, lo.prod, lo.first)
				}
				if (prod != first) != (rec.PromotedFromRepo != "") {
					t.Errorf("Ferry-Promoted-From-Repo %q for a layout with production %s", rec.PromotedFromRepo, map[bool]string{true: "in its own repo", false: "beside the source"}[prod != first])
				}
				if lo.carry == "images" {
					// Every byte but the pin is production's own.
					for name, before := range prodBefore {
						got := prod.Show(lo.prodB, lo.prodDir+"/"+name)
						if name == "kustomization.yaml" {
							got, before = withoutPinLines(got), withoutPinLines(before)
						}
						if got != before {
							t.Errorf("promote changed production's %s beyond the pin:\n%s", name, got)
						}
					}
				}

				// v2 the same way: diff says what the promote will do, then
				// it does; then roll production back.
				mustRun(deploy("v2")...)
				diffArgs := promote()
				diffArgs[0] = "diff"
				var diff struct {
					Changed bool
					Apps    []struct {
						Images []struct{ Old, New string }
					}
				}
				if err := json.Unmarshal([]byte(mustRun(diffArgs...)), &diff); err != nil {
					t.Fatal(err)
				}
				if !diff.Changed || len(diff.Apps) != 1 || len(diff.Apps[0].Images) != 1 ||
					!strings.Contains(diff.Apps[0].Images[0].Old, digests["v1"]) || !strings.Contains(diff.Apps[0].Images[0].New, digests["v2"]) {
					t.Errorf("diff %+v; want hello v1 to v2", diff)
				}
				mustRun(promote()...)
				if !strings.Contains(prodFile(), digests["v2"]) {
					t.Fatalf("production does not pin v2:\n%s", prodFile())
				}
				mustRun(onProd("rollback")...)
				if !strings.Contains(prodFile(), digests["v1"]) {
					t.Fatalf("rollback did not restore v1:\n%s", prodFile())
				}
				held := prod.Tip(lo.prodB)

				// The hold: promote is refused; production does not move.
				code, _, errOut := run(t, env, promote()...)
				if code != 1 || !strings.Contains(errOut, "held by a rollback") {
					t.Errorf("promote onto the rollback: exit %d, %s; want 1, held", code, errOut)
				}
				if prod.Tip(lo.prodB) != held {
					t.Error("the held promote moved production")
				}
				// ... but the first environment is free.
				digests["v3"] = reg.Push(t, "team/hello:v3")
				mustRun(deploy("v3")...)

				// history of production: the rollback on top.
				var hist []struct{ Action, Commit string }
				if err := json.Unmarshal([]byte(mustRun(onProd("history")...)), &hist); err != nil {
					t.Fatal(err)
				}
				if len(hist) < 3 || hist[0].Action != "rollback" || hist[0].Commit != held || hist[1].Action != "promote" {
					t.Errorf("production's history %+v; want rollback, promote, promote", hist)
				}
				// The other carry mode, lifting the hold on purpose.
				other := map[string]string{"tree": "images", "images": "tree"}[lo.carry]
				args := promote("--override-rollback")
				if mode == "flags" {
					for i := range args {
						if args[i] == "--carry" {
							args[i+1] = other
						}
					}
				} else {
					args = append(args, "--carry", other)
				}
				rep.Carry = ""
				if err := json.Unmarshal([]byte(mustRun(args...)), &rep); err != nil {
					t.Fatal(err)
				}
				if rep.Carry != other || !rep.Changed {
					t.Errorf("promote --carry %s: %+v", other, rep)
				}
				if !strings.Contains(prodFile(), digests["v3"]) {
					t.Errorf("production does not pin v3 after promote --carry %s:\n%s", other, prodFile())
				}
				if other == "tree" {
					if a, b := first.Git("rev-parse", lo.firstB+":"+lo.firstDir), prod.Git("rev-parse", lo.prodB+":"+lo.prodDir); a != b {
						t.Errorf("carry tree: production's directory %s, want the source's %s", b, a)
					}
				}
				first.Fsck()
				prod.Fsck()
			})
		}
	}
}

// A ferry.yaml that is wrong is refused before anything is read or
// written, naming the file and the line.
func TestConfigErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "version: 1\nenvironments:\n  - name: staging\n    brnach: main\n", `:4: environments[0]: unknown key "brnach"`},
		{"path leaves the repo", "version: 1\nenvironments:\n  - name: staging\n    path: ../{app}\n", `:4: environments[0].path: "../{app}" has a ".." segment`},
		{"two environments in one directory", "version: 1\nenvironments:\n  - name: a\n    branch: main\n  - name: b\n    branch: main\n", ":5: environments[1] (b): the same directory as environments[0] (a, line 3)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(cfg, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := run(t, nil, "deploy", "--repo", filepath.Join(dir, "none.git"), "--config", cfg, "--app", "hello", "--image", "r.example/hello:v1")
			if code != 2 || !strings.Contains(errOut, cfg+tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

func withoutPinLines(s string) string {
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

// status in each layout, from its ferry.yaml: current, behind, held and
// drifted, in JSON, text, markdown and HTML.
func TestStatusLayouts(t *testing.T) {
	for _, lo := range layouts {
		t.Run(lo.name, func(t *testing.T) {
			reg := testreg.Start(t, nil)
			first, prod, srv, _ := lo.setUp(t, reg.Host)
			env := map[string]string{"FERRY_REPO": srv.RepoURL(first)}
			img := reg.Host + "/team/hello"
			for _, tag := range []string{"v1", "v2", "v3"} {
				reg.Push(t, "team/hello:"+tag)
			}
			mustRun := func(args ...string) string {
				t.Helper()
				code, out, errOut := run(t, env, args...)
				if code != 0 {
					t.Fatalf("ferry %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
				}
				return out
			}
			type cell struct {
				Env    string
				State  string
				Behind int
				Images []struct{ Tag string }
			}
			status := func() map[string]cell {
				t.Helper()
				var rep struct {
					Apps []struct {
						App   string
						Cells []cell
					}
				}
				if err := json.Unmarshal([]byte(mustRun("status", "--output", "json")), &rep); err != nil {
					t.Fatal(err)
				}
				if len(rep.Apps) != 1 || rep.Apps[0].App != "hello" || len(rep.Apps[0].Cells) != 2 {
					t.Fatalf("status %+v; want hello in two environments", rep)
				}
				return map[string]cell{lo.first: rep.Apps[0].Cells[0], lo.prod: rep.Apps[0].Cells[1]}
			}
			mustRun("deploy", "--app", "hello", "--image", img+":v1")
			mustRun("promote", "--app", "hello", "--to", lo.prod)
			s := status()
			if s[lo.prod].State != "current" || len(s[lo.prod].Images) != 1 || s[lo.prod].Images[0].Tag != "v1" {
				t.Errorf("after promoting v1: %+v; want production current at v1", s[lo.prod])
			}
			mustRun("deploy", "--app", "hello", "--image", img+":v2")
			mustRun("deploy", "--app", "hello", "--image", img+":v3")
			if s = status(); s[lo.prod].State != "behind" || s[lo.prod].Behind != 2 {
				t.Errorf("after two more deploys: %+v; want production behind 2", s[lo.prod])
			}
			mustRun("promote", "--app", "hello", "--to", lo.prod)
			mustRun("rollback", "--app", "hello", "--env", lo.prod)
			if s = status(); s[lo.prod].State != "held" {
				t.Errorf("after the rollback: %+v; want production held", s[lo.prod])
			}
			// A commit by hand in the first environment: drifted.
			first.Commit(lo.firstB, "hand edit", map[string]string{lo.firstDir + "/deployment.yaml": strings.Replace(helloDeployment, "replicas: 1", "replicas: 2", 1)})
			if s = status(); s[lo.first].State != "drifted" {
				t.Errorf("after a hand edit: %+v; want the first environment drifted", s[lo.first])
			}
			text := mustRun("status")
			for _, want := range []string{"hello", "held", "drifted", "v3"} {
				if !strings.Contains(text, want) {
					t.Errorf("text status lacks %q:\n%s", want, text)
				}
			}
			if md := mustRun("status", "--output", "markdown"); !strings.Contains(md, "| **hello** |") || !strings.Contains(md, "**held**") {
				t.Errorf("markdown status:\n%s", md)
			}
			if html := mustRun("status", "--output", "html"); !strings.Contains(html, `data-app="hello"`) || strings.Contains(html, "<script src") {
				t.Errorf("html status lacks the matrix or loads a script")
			}
			_ = prod
		})
	}
}

// In GitHub Actions every write with a ferry.yaml leaves the app's status
// across environments in the job summary, after the write's own section.
func TestStatusInJobSummary(t *testing.T) {
	reg := testreg.Start(t, nil)
	lo := layouts[1] // directories
	first, _, srv, _ := lo.setUp(t, reg.Host)
	reg.Push(t, "team/hello:v1")
	summary := filepath.Join(t.TempDir(), "summary.md")
	env := map[string]string{"FERRY_REPO": srv.RepoURL(first), "GITHUB_STEP_SUMMARY": summary}
	for _, args := range [][]string{
		{"deploy", "--app", "hello", "--image", reg.Host + "/team/hello:v1"},
		{"promote", "--app", "hello", "--to", "production"},
	} {
		if code, _, errOut := run(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if strings.Count(s, "#### hello across environments") != 2 || !strings.Contains(s, "| app | staging | production |") {
		t.Errorf("job summary lacks the status after each write:\n%s", s)
	}
	if i, j := strings.Index(s, "v1 @"), strings.LastIndex(s, "| **hello** |"); i < 0 || j < 0 {
		t.Errorf("job summary's status does not show hello at v1:\n%s", s)
	}
}

// Without a ferry.yaml, flags work as they always did: --app beside no
// --path names the app of a whole-branch deploy, and --env a branch.
func TestNoConfigFlagsAsBefore(t *testing.T) {
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	repo.Commit("candidate", "only hello", map[string]string{
		"apps/badyaml/notes.yaml": "", "apps/badyaml/deployment.yaml": "", "apps/broken/deployment.yaml": "", "apps/broken/kustomization.yaml": "",
	})
	srv := testgit.Serve(t, repo)
	digest := reg.Push(t, "team/hello:v1")
	code, out, errOut := run(t, map[string]string{"FERRY_REPO": srv.RepoURL(repo)},
		"deploy", "--env", "candidate", "--app", "hello", "--image", reg.Host+"/team/hello:v1", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var rep struct {
		Changed           bool
		Path, App, Branch string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Changed || rep.Path != "." || rep.App != "hello" || rep.Branch != "candidate" {
		t.Errorf("report %+v; want a whole-branch deploy of hello to candidate", rep)
	}
	if !strings.Contains(repo.Show("candidate", "apps/hello/kustomization.yaml"), digest) {
		t.Error("hello is not pinned")
	}
	// With --config, a missing file is an error, not a fallback.
	code, _, errOut = run(t, map[string]string{"FERRY_REPO": srv.RepoURL(repo)},
		"deploy", "--env", "candidate", "--app", "hello", "--config", filepath.Join(t.TempDir(), "nope.yaml"), "--image", reg.Host+"/team/hello:v1")
	if code != 2 || !strings.Contains(errOut, "no such file") {
		t.Errorf("--config missing: exit %d, %s; want 2", code, errOut)
	}
}
