package pipelines

// The pull-request variants of the env repo's pipelines, on GitHub:
// production changes only by a pull request that GitHub merges. They run
// in the rollouts of pipelines_test.go, with GitHub's API stood in by
// internal/testforge (pull requests over the env repo's own bare
// repository, whose merges really move production) and, for ferry as a
// GitHub App, internal/testgithub (the App's JWT checked against its key,
// the installation, the token exchange; the git host then takes only
// tokens it minted).

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferrycd/ferry/internal/testforge"
	"github.com/ferrycd/ferry/internal/testgithub"
	"github.com/ferrycd/ferry/pkg/ghapp"
	"sigs.k8s.io/yaml"
)

// The pull-request variants, also run by the rollouts.
const (
	cbCandidatePR = "pipelines/cloudbuild/env-candidate-pull-request.cloudbuild.yaml"
	cbRollbackPR  = "pipelines/cloudbuild/rollback-pull-request.cloudbuild.yaml"
	ghEnvPR       = "pipelines/github/env-pull-request.yml"
	ghRollbackPR  = "pipelines/github/rollback-pull-request.yml"
)

// ferrysHead is the head branch of ferry's promotions of apps/hello;
// rollbackHead its rollbacks', which never rewrite an open promotion.
const (
	ferrysHead   = "ferry/production/hello"
	rollbackHead = "ferry/production/hello-rollback"
)

// Cloud Build, production by pull request: the app build deploys to
// candidate; the candidate trigger runs env-candidate-pull-request, whose
// ferry step promotes by pull request with a token from Secret Manager and
// --auto-merge squash --wait 30m. Nothing holds the request back (no
// required checks), so GitHub refuses auto-merge ("clean status") and
// ferry merges it at once with the same method and message; production
// moves to the squash commit, whose push runs env-production, whose
// history step lists it. The manual rollback-pull-request rolls back the
// same way, from ferry/production/hello-rollback with --auto-merge merge:
// its merge commit carries ferry's trailers, so the rollback holds.
func TestRolloutCloudBuildPullRequest(t *testing.T) {
	p, buildID := cloudBuildRollout()
	var api *testforge.GitHub
	merged := 0
	p.setup = func(t *testing.T, r *rig) {
		api = testforge.NewGitHub(t, r.root)
		api.Token = r.token // one fine-grained token: git and the API
	}
	p.candidate = func(t *testing.T, r *rig, commit string) (bool, string) {
		b := r.runCloudBuild(t, cbCandidatePR, cbTrigger{
			Builtins: cbBuiltinsFor("acme/env", "candidate", commit, buildID()),
			Subs:     map[string]string{"_ENV_REPO": r.url, "_GITHUB_API_URL": api.URL},
		})
		if b.Failed != "" {
			return false, b.step(b.Failed).Res.String()
		}
		merged++
		checkSquash(t, r, lastPR(t, r, api.Host, merged, ferrysHead))
		return true, b.step("promote").Res.String()
	}
	p.rollback = func(t *testing.T, r *rig, steps string) {
		// A manual trigger: no commit.
		b := r.runCloudBuild(t, cbRollbackPR, cbTrigger{
			Builtins: cbBuiltinsFor("acme/env", "production", "", buildID()),
			Subs:     map[string]string{"_ENV_REPO": r.url, "_STEPS": steps, "_GITHUB_API_URL": api.URL},
		})
		if b.Failed != "" {
			t.Fatalf("%s: step %s failed:\n%s", cbRollbackPR, b.Failed, b.step(b.Failed).Res)
		}
		merged++
		checkRollbackMerge(t, r, lastPR(t, r, api.Host, merged, rollbackHead))
	}
	r := testRollout(t, p)
	if n := len(api.PRs()); n != merged {
		t.Errorf("%d pull requests, want %d: the held promote opened one", n, merged)
	}
	checkPRHistory(t, history(t, r, map[string]string{"FERRY_GIT_TOKEN": r.token}, 3), api.PRs(), "rollback", "promote", "promote")
	// Auto-merge asked for, refused on a clean request, so ferry merged.
	if got := merges(api); !slices.Equal(got, []string{"auto-merge", "merge", "auto-merge", "merge", "auto-merge", "merge"}) {
		t.Errorf("the merges went %q; want ferry to ask for auto-merge, then merge (GitHub refuses auto-merge on a clean request)", got)
	}
	if leaked := r.leaks([]string{r.token}); len(leaked) > 0 {
		t.Errorf("the token is in the build log: %q", leaked)
	}
}

// GitHub Actions, production by pull request, ferry as a GitHub App: the
// app workflow deploys to candidate with an installation token of the App
// (ENV_REPO_TOKEN, as actions/create-github-app-token mints one); the env
// workflow on candidate (env-pull-request.yml) promotes with ferry's
// action, which mints its own installation token, pushes ferry's head
// branch, opens the pull request and turns on auto-merge (squash) through
// GITHUB_API_URL, and waits. Production requires a status check, which
// passes on ferry's head once auto-merge is on; GitHub then merges, and
// the merge's push runs the workflow on production, which applies it.
// rollback-pull-request.yml, run by hand, rolls back the same way, from
// ferry/production/hello-rollback with auto-merge (merge): its merge
// commit carries ferry's trailers, so the rollback holds.
// The git host takes only tokens the App minted, and GitHub's API (the
// App's endpoints and the pull requests) is one host.
func TestRolloutGitHubActionsPullRequest(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	const appID = "424242"
	var (
		app    *testgithub.Server
		api    *testforge.GitHub
		apiURL string
		merged int
	)
	// What the app repo's workflow gets as ENV_REPO_TOKEN: an installation
	// token of the App for the env repo, minted for the run.
	mint := func(r *rig) string {
		tok, err := (&ghapp.App{ID: appID, Key: key, BaseURL: apiURL}).Token(context.Background(), "acme", "env")
		if err != nil {
			r.t.Fatalf("minting the app workflow's token: %v", err)
		}
		return tok.Value
	}
	p, baseEvent := githubRollout(mint)
	envEvent := func(r *rig, branch, sha string) ghEvent {
		ev := baseEvent(r, branch, sha)
		ev.API = apiURL
		ev.Vars["FERRY_APP_ID"] = appID
		ev.Secrets = map[string]string{"FERRY_APP_PRIVATE_KEY": keyPEM, "GITHUB_TOKEN": ev.Token}
		return ev
	}
	p.setup = func(t *testing.T, r *rig) {
		app = testgithub.New(t, appID, &key.PublicKey)
		app.Install("acme", 4242, "env")
		r.guardGit(app.GitAuth)
		api = testforge.NewGitHub(t, r.root)
		api.Accept = func(tok string) bool { return slices.Contains(app.Tokens(), tok) }
		api.RequireChecks = true
		apiURL = githubAPI(t, app, api, func() { passChecks(api) })
	}
	p.candidate = func(t *testing.T, r *rig, commit string) (bool, string) {
		run := r.runWorkflow(t, ghEnvPR, envEvent(r, "candidate", commit), ferryDir)
		if run.Jobs["apply"] != "success" {
			t.Fatalf("%s: apply job %s", ghEnvPR, run.Jobs["apply"])
		}
		step := run.step("Promote to production")
		if run.Jobs["promote"] != "success" {
			return false, step.Res.String()
		}
		merged++
		pr := lastPR(t, r, api.Host, merged, ferrysHead)
		if pr.ChecksPassed != pr.HeadSHA {
			t.Errorf("pull request #%d merged without its required check passing on its head %s", pr.Number, pr.HeadSHA)
		}
		checkSquash(t, r, pr)
		checkActionOutputs(t, step, map[string]string{
			"changed": "true", "result": "success", "commit": pr.HeadSHA,
			"pull-request-url":    fmt.Sprintf("%s/acme/env/pull/%d", api.URL, pr.Number),
			"pull-request-number": strconv.Itoa(pr.Number),
			"pull-request-state":  "merged",
			"merge-commit":        pr.MergeCommit,
		}, "")
		return true, step.Res.String()
	}
	p.production = func(t *testing.T, r *rig, commit string) {
		run := r.runWorkflow(t, ghEnvPR, envEvent(r, "production", commit), ferryDir)
		if run.Jobs["apply"] != "success" || run.Jobs["promote"] != "skipped" {
			t.Fatalf("%s on production: jobs %v, want apply success and promote skipped", ghEnvPR, run.Jobs)
		}
	}
	p.rollback = func(t *testing.T, r *rig, steps string) {
		ev := envEvent(r, "main", strings.Repeat("c3", 20))
		ev.Name, ev.Actor, ev.ActorID = "workflow_dispatch", "octocat", "583231"
		ev.Inputs = map[string]string{"env": "production", "steps": steps}
		run := r.runWorkflow(t, ghRollbackPR, ev, ferryDir)
		step := run.step("Roll back")
		if run.Jobs["rollback"] != "success" {
			t.Fatalf("%s: %v\n%s", ghRollbackPR, run.Jobs, step.Res)
		}
		merged++
		pr := lastPR(t, r, api.Host, merged, rollbackHead)
		if pr.ChecksPassed != pr.HeadSHA {
			t.Errorf("pull request #%d merged without its required check passing on its head %s", pr.Number, pr.HeadSHA)
		}
		checkRollbackMerge(t, r, pr)
		// Whoever pressed the button is the author of ferry's rollback
		// commit, which the merge brought.
		if got, want := r.repo.Git("log", "-1", "--format=%an <%ae>", pr.HeadSHA), "octocat <583231+octocat@users.noreply.github.com>"; got != want {
			t.Errorf("rollback author %q, want %q", got, want)
		}
		checkActionOutputs(t, step, map[string]string{
			"changed": "true", "result": "success", "commit": pr.HeadSHA,
			"pull-request-url":    fmt.Sprintf("%s/acme/env/pull/%d", api.URL, pr.Number),
			"pull-request-number": strconv.Itoa(pr.Number),
			"pull-request-state":  "merged",
			"merge-commit":        pr.MergeCommit,
		}, "")
	}
	r := testRollout(t, p)
	if n := len(api.PRs()); n != merged {
		t.Errorf("%d pull requests, want %d: the held promote opened one", n, merged)
	}
	if got := merges(api); !slices.Equal(got, []string{"auto-merge", "auto-merge", "auto-merge"}) {
		t.Errorf("the merges went %q; want auto-merge turned on, and GitHub, not ferry, to merge", got)
	}

	// ferry's history, as the App, reads the squash and merge commits as
	// ferry's own promotes and rollback.
	checkPRHistory(t, history(t, r, map[string]string{
		"FERRY_GITHUB_APP_ID": appID, "FERRY_GITHUB_APP_PRIVATE_KEY": keyPEM, "FERRY_GITHUB_API_URL": apiURL,
	}, 3), api.PRs(), "rollback", "promote", "promote")
	for _, f := range []string{ghEnvPR, ghRollbackPR} {
		if missed := r.unevaluated(f); len(missed) > 0 {
			t.Errorf("%s: expressions the rollout never evaluated: %q", f, missed)
		}
	}
	// Every token the App minted (five runs of ferry and the two the app
	// workflow got) was for the env repo alone.
	for _, req := range app.Requests() {
		if req.Method == http.MethodPost && req.Body != `{"repositories":["env"]}` {
			t.Errorf("token request %s, want it scoped to env", req.Body)
		}
	}
	if n := len(app.Tokens()); n != 7 {
		t.Errorf("%d tokens minted, want 7: two deploys' (the app workflow's), two promotes', the rollback's, the held promote's, history's", n)
	}
	if leaked := r.leaks(appSecrets(app, keyPEM, "ghs_env-repo-own-token")); len(leaked) > 0 {
		t.Errorf("a token, JWT or key line is in a job log: %q", leaked)
	}
}

// checkSquash checks that a merged pull request of ferry's landed as one
// squash commit on production's previous tip that carries exactly the
// trailers of ferry's own commit, Ferry-Action: promote among them.
func checkSquash(t *testing.T, r *rig, pr testforge.PR) {
	t.Helper()
	if parents := strings.Fields(r.repo.Git("log", "-1", "--format=%P", pr.MergeCommit)); len(parents) != 1 {
		t.Errorf("pull request #%d's merge %s has parents %v; want a squash commit, one parent", pr.Number, pr.MergeCommit, parents)
	}
	got, want := r.trailers(pr.MergeCommit), r.trailers(pr.HeadSHA)
	if !slices.Equal(got["Ferry-Action"], []string{"promote"}) || !reflect.DeepEqual(got, want) {
		t.Errorf("squash commit %s's trailers %v; want ferry's commit %s's %v, Ferry-Action: promote", pr.MergeCommit, got, pr.HeadSHA, want)
	}
}

// checkRollbackMerge checks that ferry's merged rollback request landed as
// a merge commit that brought ferry's commit (its second parent) and
// carries exactly that commit's trailers, Ferry-Action: rollback among
// them: what history and the hold read.
func checkRollbackMerge(t *testing.T, r *rig, pr testforge.PR) {
	t.Helper()
	if parents := strings.Fields(r.repo.Git("log", "-1", "--format=%P", pr.MergeCommit)); len(parents) != 2 || parents[1] != pr.HeadSHA {
		t.Errorf("pull request #%d's merge %s has parents %v; want a merge commit of ferry's %s", pr.Number, pr.MergeCommit, parents, pr.HeadSHA)
	}
	got, want := r.trailers(pr.MergeCommit), r.trailers(pr.HeadSHA)
	if !slices.Equal(got["Ferry-Action"], []string{"rollback"}) || !reflect.DeepEqual(got, want) {
		t.Errorf("merge commit %s's trailers %v; want ferry's commit %s's %v, Ferry-Action: rollback", pr.MergeCommit, got, pr.HeadSHA, want)
	}
}

// checkPRHistory checks that ferry's history of production lists the
// merges of the pull requests, newest first, as the actions want says:
// a promote (from somewhere) or a rollback (to somewhere).
func checkPRHistory(t *testing.T, hist []historyEntry, prs []testforge.PR, want ...string) {
	t.Helper()
	if len(prs) != len(want) {
		t.Fatalf("%d pull requests, want %d: %q", len(prs), len(want), want)
	}
	for i, action := range want {
		pr := prs[len(prs)-1-i]
		e := hist[i]
		if e.Action != action || e.Commit != pr.MergeCommit || (action == "promote") != (e.PromotedFrom != "") || (action == "rollback") != (e.RollbackTo != "") {
			t.Errorf("history entry %d: %+v, want the %s %s of pull request #%d", i, e, action, pr.MergeCommit, pr.Number)
		}
	}
}

// merges lists the requests on api that merge: "auto-merge" (GraphQL's
// enablePullRequestAutoMerge, which GitHub refuses on a request it could
// merge now) and "merge" (REST's merge, made by the client itself).
func merges(api *testforge.GitHub) []string {
	var out []string
	for _, req := range api.Requests() {
		switch {
		case req.Method == http.MethodPost && req.Path == "/graphql":
			out = append(out, "auto-merge")
		case req.Method == http.MethodPut && strings.HasSuffix(req.Path, "/merge") && req.Status == http.StatusOK:
			out = append(out, "merge")
		}
	}
	return out
}

// passChecks passes the required check of every open pull request that
// waits to be auto-merged, on its head: CI on ferry's pull request.
func passChecks(api *testforge.GitHub) {
	for _, pr := range api.PRs() {
		if pr.State == "open" && pr.AutoMerge != nil && pr.ChecksPassed != pr.HeadSHA {
			api.PassChecks(pr.Number)
		}
	}
}

// githubAPI serves GitHub's REST and GraphQL API as one host, as GitHub
// does: the App's endpoints (the installation lookup, the token exchange)
// from app, the rest (pull requests, auto-merge) from forge. Once a
// GraphQL request (auto-merge) is answered, afterAutoMerge runs before the
// answer goes back. It returns the API's URL.
func githubAPI(t *testing.T, app *testgithub.Server, forge *testforge.GitHub, afterAutoMerge func()) string {
	t.Helper()
	proxy := func(to string) *httputil.ReverseProxy {
		u, err := url.Parse(to)
		if err != nil {
			t.Fatal(err)
		}
		return httputil.NewSingleHostReverseProxy(u)
	}
	toApp, toForge := proxy(app.URL), proxy(forge.URL)
	var mu sync.Mutex // one auto-merge's checks at a time
	toForge.ModifyResponse = func(resp *http.Response) error {
		if req := resp.Request; req.Method == http.MethodPost && req.URL.Path == "/graphql" {
			mu.Lock()
			defer mu.Unlock()
			afterAutoMerge()
		}
		return nil
	}
	installation := regexp.MustCompile(`^/repos/[^/]+/[^/]+/installation$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/app/") || installation.MatchString(req.URL.Path) {
			toApp.ServeHTTP(w, req)
			return
		}
		toForge.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// appSecrets are what no log may show: every token the App minted (also
// without its prefix), every JWT presented (also its signature alone),
// the private key line by line, and more.
func appSecrets(app *testgithub.Server, keyPEM string, more ...string) []string {
	out := slices.Clone(more)
	for _, tok := range app.Tokens() {
		out = append(out, tok, strings.TrimPrefix(tok, "ghs_"))
	}
	for _, jwt := range app.JWTs() {
		out = append(out, jwt, jwt[strings.LastIndexByte(jwt, '.')+1:])
	}
	for _, l := range strings.Split(keyPEM, "\n") {
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// The README's recipes for pull requests are what the files under
// pipelines/ hold, and so what the rollouts run: each names its file in
// its first line, and each of its list items (a step) is, key for key, an
// item of a list in that file, and each of its keys (a job) the file's.
func TestReadmeRecipes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Pull requests, Apps and signing\n")
	if !ok {
		t.Fatal(`README.md has no "## Pull requests, Apps and signing"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1)
	named := regexp.MustCompile(`pipelines/[\w./-]+\.ya?ml`)
	var files []string
	for _, b := range blocks {
		first, _, _ := strings.Cut(b[1], "\n")
		file := named.FindString(first)
		if file == "" {
			t.Errorf("recipe %q names no file under pipelines/", first)
			continue
		}
		files = append(files, file)
		var recipe, whole any
		if err := yaml.Unmarshal([]byte(b[1]), &recipe); err != nil {
			t.Fatalf("recipe for %s: %v", file, err)
		}
		readYAML(t, file, &whole)
		switch recipe := recipe.(type) {
		case []any:
			for _, item := range recipe {
				if !anyItem(whole, func(x any) bool { return subset(item, x) }) {
					t.Errorf("README.md: the recipe's step is not in %s:\n%s", file, b[1])
				}
			}
		case map[string]any:
			if !subset(recipe, whole) {
				t.Errorf("README.md: the recipe is not what %s holds:\n%s", file, b[1])
			}
		default:
			t.Errorf("recipe for %s: neither a list of steps nor jobs", file)
		}
	}
	if want := []string{ghEnvPR, cbCandidatePR, glEnv}; !slices.Equal(files, want) {
		t.Errorf("README.md's recipes are of %q, want %q", files, want)
	}
}

// subset says whether every key of a (recursively) is in b with the same
// value; lists are equal item for item, other values equal.
func subset(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range a {
			if w, ok := bm[k]; !ok || !subset(v, w) {
				return false
			}
		}
		return true
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !subset(a[i], bl[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// anyItem says whether some item of a list anywhere in v satisfies f.
func anyItem(v any, f func(any) bool) bool {
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			if anyItem(x, f) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if f(x) || anyItem(x, f) {
				return true
			}
		}
	}
	return false
}
