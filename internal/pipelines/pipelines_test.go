package pipelines

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testforge"
)

// The files the rollouts run. TestEveryPipelineFileRuns checks that nothing
// under pipelines/ is left out.
const (
	cbApp        = "pipelines/cloudbuild/app.cloudbuild.yaml"
	cbCandidate  = "pipelines/cloudbuild/env-candidate.cloudbuild.yaml"
	cbProduction = "pipelines/cloudbuild/env-production.cloudbuild.yaml"
	cbRollback   = "pipelines/cloudbuild/rollback.cloudbuild.yaml"
	ghApp        = "pipelines/github/app.yml"
	ghEnv        = "pipelines/github/env.yml"
	ghRollback   = "pipelines/github/rollback.yml"
	glApp        = "pipelines/gitlab/app.gitlab-ci.yml"
	glEnv        = "pipelines/gitlab/env.gitlab-ci.yml"
)

// rollout drives one platform's pipelines.
type rollout struct {
	// setup, if set, prepares the platform once the rig is up.
	setup func(t *testing.T, r *rig)
	// deploy runs the app pipeline for a source commit; it returns the
	// digest it pushed and the trailers the deploy commit must carry.
	deploy func(t *testing.T, r *rig, sha string) (digest string, want map[string]string)
	// candidate runs the env repo's candidate pipeline for a pushed
	// candidate commit; it says whether it passed, and what ferry said.
	candidate func(t *testing.T, r *rig, commit string) (ok bool, log string)
	// production runs the env repo's production pipeline for a pushed
	// production commit.
	production func(t *testing.T, r *rig, commit string)
	// rollback runs the rollback pipeline for production's apps/hello;
	// nil for a variant that has none of its own (the rollout ends after
	// the second promote).
	rollback func(t *testing.T, r *rig, steps string)
}

// testRollout runs a platform's pipelines in the order of a real rollout
// and checks the env repo after each: two app builds deploy to candidate;
// the candidate pipeline of the first promotes exactly that commit although
// candidate has moved on, then the second's; the rollback pipeline (if
// any) rolls production back; the rollback holds against the next
// promote.
func testRollout(t *testing.T, p rollout) *rig {
	r := newRig(t)
	if p.setup != nil {
		p.setup(t, r)
	}
	seed := r.repo.Tip("production")
	shaA, shaB := strings.Repeat("a1", 20), strings.Repeat("b2", 20)

	dA, wantA := p.deploy(t, r, shaA)
	c1 := r.repo.Tip("candidate")
	checkDeploy(t, r, c1, seed, dA, wantA)
	dB, wantB := p.deploy(t, r, shaB)
	c2 := r.repo.Tip("candidate")
	checkDeploy(t, r, c2, c1, dB, wantB)

	if ok, log := p.candidate(t, r, c1); !ok {
		t.Fatalf("candidate pipeline for %s failed:\n%s", c1, log)
	}
	p1 := r.repo.Tip("production")
	checkPromote(t, r, p1, seed, c1, shaA)
	p.production(t, r, p1)

	if ok, log := p.candidate(t, r, c2); !ok {
		t.Fatalf("candidate pipeline for %s failed:\n%s", c2, log)
	}
	p2 := r.repo.Tip("production")
	checkPromote(t, r, p2, p1, c2, shaB)
	p.production(t, r, p2)
	if p.rollback == nil {
		checkUntouched(t, r, seed)
		r.repo.Fsck()
		return r
	}

	p.rollback(t, r, "1")
	rb := r.repo.Tip("production")
	if parent := r.repo.Git("rev-parse", rb+"^"); parent != p2 {
		t.Errorf("rollback commit %s has parent %s, want production's tip %s: history is append-only", rb, parent, p2)
	}
	if got, want := r.tree(rb, "apps/hello"), r.tree(p1, "apps/hello"); got != want {
		t.Errorf("after the rollback production's apps/hello is %s, want the first promote's %s", got, want)
	}
	tr := r.trailers(rb)
	if !slices.Equal(tr["Ferry-Rollback-To"], []string{p1}) || !slices.Equal(tr["Ferry-Action"], []string{"rollback"}) {
		t.Errorf("rollback commit trailers %v, want Ferry-Action: rollback and Ferry-Rollback-To: %s", tr, p1)
	}
	p.production(t, r, rb)

	// The rollback holds: the candidate pipeline run again for c2 (a retry)
	// fails at the promote, naming the rollback, and pushes nothing.
	ok, log := p.candidate(t, r, c2)
	if ok || !strings.Contains(log, "rolled back by "+rb[:12]) {
		t.Errorf("candidate pipeline for %s after the rollback: want a failure naming %s, got ok=%v:\n%s", c2, rb[:12], ok, log)
	}
	if tip := r.repo.Tip("production"); tip != rb {
		t.Errorf("production moved to %s despite the rollback's hold", tip)
	}
	checkUntouched(t, r, seed)
	r.repo.Fsck()
	return r
}

// checkUntouched checks that no pipeline touched apps/other.
func checkUntouched(t *testing.T, r *rig, seed string) {
	t.Helper()
	for _, b := range []string{"candidate", "production"} {
		if got, want := r.tree(b, "apps/other"), r.tree(seed, "apps/other"); got != want {
			t.Errorf("%s's apps/other changed; no pipeline may touch it", b)
		}
	}
}

func checkDeploy(t *testing.T, r *rig, commit, parent, digest string, want map[string]string) {
	t.Helper()
	if commit == parent {
		t.Fatalf("the app pipeline did not move candidate from %s", parent)
	}
	if got := r.repo.Git("rev-parse", commit+"^"); got != parent {
		t.Errorf("deploy commit %s has parent %s, want %s", commit, got, parent)
	}
	if k := r.repo.Show(commit, "apps/hello/kustomization.yaml"); !strings.Contains(k, "digest: "+digest) {
		t.Errorf("candidate's apps/hello does not pin the pushed %s:\n%s", digest, k)
	}
	tr := r.trailers(commit)
	for k, v := range want {
		if !slices.Equal(tr[k], []string{v}) {
			t.Errorf("deploy commit %s: trailer %s = %q, want %q", commit[:12], k, tr[k], v)
		}
	}
}

func checkPromote(t *testing.T, r *rig, commit, parent, from, sourceSHA string) {
	t.Helper()
	if commit == parent {
		t.Fatalf("the candidate pipeline did not move production from %s", parent)
	}
	if got := r.repo.Git("rev-parse", commit+"^"); got != parent {
		t.Errorf("promote commit %s has parent %s, want %s", commit, got, parent)
	}
	if got, want := r.tree(commit, "apps/hello"), r.tree(from, "apps/hello"); got != want {
		t.Errorf("production's apps/hello is tree %s, want exactly candidate@%s's %s", got, from[:12], want)
	}
	tr := r.trailers(commit)
	if !slices.Equal(tr["Ferry-Promoted-From"], []string{"candidate@" + from}) || !slices.Equal(tr["Ferry-Source-Commit"], []string{sourceSHA}) {
		t.Errorf("promote commit trailers %v, want Ferry-Promoted-From: candidate@%s and Ferry-Source-Commit: %s", tr, from, sourceSHA)
	}
}

// cbBuiltinsFor is what a Cloud Build trigger sets for a push of sha to
// branch of repo (owner/name).
func cbBuiltinsFor(repo, branch, sha, buildID string) map[string]string {
	b := map[string]string{
		"PROJECT_ID": "test-project", "PROJECT_NUMBER": "123456789012", "LOCATION": "us-central1",
		"BUILD_ID": buildID, "TRIGGER_NAME": strings.ReplaceAll(repo, "/", "-") + "-" + branch,
		"REPO_FULL_NAME": repo, "REPO_NAME": strings.Split(repo, "/")[1],
		"BRANCH_NAME": branch, "REF_NAME": branch,
		"SERVICE_ACCOUNT_EMAIL": "builder@test-project.iam.gserviceaccount.com",
	}
	if sha != "" {
		b["COMMIT_SHA"], b["REVISION_ID"], b["SHORT_SHA"] = sha, sha, sha[:7]
	}
	return b
}

func TestRolloutCloudBuild(t *testing.T) {
	p, _ := cloudBuildRollout()
	testRollout(t, p)
}

// cloudBuildRollout is the Cloud Build pipelines: the app build deploys,
// the env repo's candidate and production triggers, the manual rollback;
// and the build IDs they count up.
func cloudBuildRollout() (rollout, func() string) {
	builds := 0
	buildID := func() string {
		builds++
		return "0000000" + string(rune('0'+builds)) + "-b11d-4c3a-9e1f-feedfacecafe"
	}
	envRepo := func(r *rig) map[string]string { return map[string]string{"_ENV_REPO": r.url} }
	return rollout{
		deploy: func(t *testing.T, r *rig, sha string) (string, map[string]string) {
			id := buildID()
			b := r.runCloudBuild(t, cbApp, cbTrigger{
				Builtins: cbBuiltinsFor("acme/hello", "main", sha, id),
				Subs:     map[string]string{"_IMAGE": r.reg.Host + "/team/hello", "_ENV_REPO": r.url},
			})
			if b.Failed != "" {
				t.Fatalf("%s: step %s failed:\n%s", cbApp, b.Failed, b.step(b.Failed).Res)
			}
			ref := r.reg.Host + "/team/hello:" + sha[:7]
			return r.pushed[ref], map[string]string{
				"Ferry-Action": "deploy", "Ferry-Env": "candidate", "Ferry-App": "hello",
				"Ferry-Image":         ref + "@" + r.pushed[ref],
				"Ferry-Source-Repo":   "https://github.com/acme/hello",
				"Ferry-Source-Commit": sha,
				"Ferry-Build-ID":      id,
				"Ferry-Build-URL":     "https://console.cloud.google.com/cloud-build/builds;region=us-central1/" + id + "?project=test-project",
			}
		},
		candidate: func(t *testing.T, r *rig, commit string) (bool, string) {
			b := r.runCloudBuild(t, cbCandidate, cbTrigger{Builtins: cbBuiltinsFor("acme/env", "candidate", commit, buildID()), Subs: envRepo(r)})
			if b.Failed != "" {
				return false, b.step(b.Failed).Res.String()
			}
			return true, b.step("promote").Res.String()
		},
		production: func(t *testing.T, r *rig, commit string) {
			b := r.runCloudBuild(t, cbProduction, cbTrigger{Builtins: cbBuiltinsFor("acme/env", "production", commit, buildID()), Subs: envRepo(r)})
			if b.Failed != "" {
				t.Fatalf("%s: step %s failed:\n%s", cbProduction, b.Failed, b.step(b.Failed).Res)
			}
			if h := b.step("history").Res.Stdout; !strings.Contains(h, commit[:12]) {
				t.Errorf("%s: the history step does not list %s:\n%s", cbProduction, commit[:12], h)
			}
		},
		rollback: func(t *testing.T, r *rig, steps string) {
			// A manual trigger: no commit.
			b := r.runCloudBuild(t, cbRollback, cbTrigger{
				Builtins: cbBuiltinsFor("acme/env", "production", "", buildID()),
				Subs:     map[string]string{"_ENV_REPO": r.url, "_STEPS": steps},
			})
			if b.Failed != "" {
				t.Fatalf("%s: step %s failed:\n%s", cbRollback, b.Failed, b.step(b.Failed).Res)
			}
		},
	}, buildID
}

func TestRolloutGitHubActions(t *testing.T) {
	p, _ := githubRollout(func(r *rig) string { return r.token })
	r := testRollout(t, p)
	for _, f := range []string{ghApp, ghEnv, ghRollback} {
		if missed := r.unevaluated(f); len(missed) > 0 {
			t.Errorf("%s: expressions the rollout never evaluated: %q", f, missed)
		}
	}
}

// githubRollout is the GitHub Actions workflows: the app repo's deploys
// with envRepoToken as its ENV_REPO_TOKEN secret, the env repo's on
// pushes to candidate and production, the rollback by hand; and the event
// of an env repo workflow run, with the env repo's settings.
func githubRollout(envRepoToken func(r *rig) string) (rollout, func(r *rig, branch, sha string) ghEvent) {
	runs := 0
	runID := func() string {
		runs++
		return "1500" + string(rune('0'+runs))
	}
	envEvent := func(r *rig, branch, sha string) ghEvent {
		return ghEvent{
			Name: "push", Ref: branch, SHA: sha, Repo: "acme/env", Server: r.server, RunID: runID(),
			Actor: "ferry-bot", ActorID: "7", Token: "ghs_env-repo-own-token",
			Vars: map[string]string{
				"WIF_PROVIDER": "projects/123/locations/global/workloadIdentityPools/gh/providers/gh",
				"DEPLOY_SA":    "deployer@test-project.iam.gserviceaccount.com",
				"CLUSTER":      branch, "CLUSTER_LOCATION": "us-central1",
			},
			Secrets: map[string]string{"ENV_REPO_TOKEN": r.token, "GITHUB_TOKEN": "ghs_env-repo-own-token"},
		}
	}
	return rollout{
		deploy: func(t *testing.T, r *rig, sha string) (string, map[string]string) {
			id := runID()
			run := r.runWorkflow(t, ghApp, ghEvent{
				Name: "push", Ref: "main", SHA: sha, Repo: "acme/hello", Server: "https://github.com", RunID: id,
				Actor: "octocat", ActorID: "1", Token: "ghs_app-repo-own-token",
				Vars:    map[string]string{"IMAGE": r.reg.Host + "/team/hello", "ENV_REPO": r.url},
				Secrets: map[string]string{"ENV_REPO_TOKEN": envRepoToken(r), "GITHUB_TOKEN": "ghs_app-repo-own-token"},
			}, ferryDir)
			if run.Jobs["build"] != "success" {
				t.Fatalf("%s: %v\n%s", ghApp, run.Jobs, run.step("Deploy to candidate").Res)
			}
			ref := r.reg.Host + "/team/hello:" + sha
			checkActionOutputs(t, run.step("Deploy to candidate"), map[string]string{
				"changed": "true", "result": "success", "commit": r.repo.Tip("candidate"), "digest": r.pushed[ref],
			}, r.pushed[ref])
			return r.pushed[ref], map[string]string{
				"Ferry-Action": "deploy", "Ferry-Env": "candidate", "Ferry-App": "hello",
				"Ferry-Image":         ref + "@" + r.pushed[ref],
				"Ferry-Source-Repo":   "https://github.com/acme/hello",
				"Ferry-Source-Commit": sha,
				"Ferry-Build-ID":      id,
				"Ferry-Build-URL":     "https://github.com/acme/hello/actions/runs/" + id,
			}
		},
		candidate: func(t *testing.T, r *rig, commit string) (bool, string) {
			run := r.runWorkflow(t, ghEnv, envEvent(r, "candidate", commit), ferryDir)
			if run.Jobs["apply"] != "success" {
				t.Fatalf("%s: apply job %s", ghEnv, run.Jobs["apply"])
			}
			step := run.step("Promote to production")
			if run.Jobs["promote"] == "success" {
				checkActionOutputs(t, step, map[string]string{"changed": "true", "result": "success", "commit": r.repo.Tip("production")}, "")
			} else {
				checkActionOutputs(t, step, map[string]string{"changed": "false", "result": "failure", "commit": ""}, "")
			}
			return run.Jobs["promote"] == "success", step.Res.String()
		},
		production: func(t *testing.T, r *rig, commit string) {
			run := r.runWorkflow(t, ghEnv, envEvent(r, "production", commit), ferryDir)
			if run.Jobs["apply"] != "success" || run.Jobs["promote"] != "skipped" {
				t.Fatalf("%s on production: jobs %v, want apply success and promote skipped", ghEnv, run.Jobs)
			}
		},
		rollback: func(t *testing.T, r *rig, steps string) {
			ev := envEvent(r, "main", strings.Repeat("c3", 20))
			ev.Name, ev.Actor, ev.ActorID = "workflow_dispatch", "octocat", "583231"
			ev.Inputs = map[string]string{"env": "production", "steps": steps}
			run := r.runWorkflow(t, ghRollback, ev, ferryDir)
			if run.Jobs["rollback"] != "success" {
				t.Fatalf("%s: %v\n%s", ghRollback, run.Jobs, run.step("Roll back").Res)
			}
			// Whoever pressed the button is the rollback's author.
			if got, want := r.repo.Git("log", "-1", "--format=%an <%ae>", "production"), "octocat <583231+octocat@users.noreply.github.com>"; got != want {
				t.Errorf("rollback author %q, want %q", got, want)
			}
		},
	}, envEvent
}

// GitLab CI: the app pipeline deploys to candidate; the env pipeline on
// candidate promotes by merge request with auto-merge (the stand-in merges
// as GitLab does when nothing holds the merge back), moving production;
// the env pipeline on production applies and offers the manual rollback,
// which goes by merge request too. Under each merge method a project may
// choose: "merge" (GitLab's default: a squash commit and a merge commit),
// "rebase_merge" (semi-linear: the same, as ferry's branch is on
// production's tip) and "ff" (the squash commit itself lands).
func TestRolloutGitLabCI(t *testing.T) {
	for _, method := range []string{"merge", "rebase_merge", "ff"} {
		t.Run(method, func(t *testing.T) { testRolloutGitLab(t, method) })
	}
}

func testRolloutGitLab(t *testing.T, method string) {
	var h *glHost
	pusher := glUser{Login: "dev", Name: "Dev Eloper", Email: "dev@example.com"}
	bot := glUser{Login: "project_7_bot_1", Name: "ferry", Email: "project_7_bot_1@noreply.gitlab.example"}
	operator := glUser{Login: "jane", Name: "Jane Operator", Email: "jane@example.com"}
	envEvent := func(r *rig, branch, sha string) glEvent {
		return glEvent{Project: "acme/env", Branch: branch, SHA: sha, User: bot, Vars: glEnvSettings(r)}
	}
	lastMR := func(t *testing.T, r *rig, n int, head string) testforge.PR {
		t.Helper()
		return lastPR(t, r, h.api.Host, n, head)
	}
	// ferrys is the commit ferry made (or GitLab squashed) that a merge
	// brought to production: the tip itself after a fast-forward, else
	// the merge commit's second parent.
	ferrys := func(r *rig) string {
		if method == "ff" {
			return r.repo.Tip("production")
		}
		return r.repo.Git("rev-parse", "production^2")
	}
	var production *glPipeline // the newest production pipeline: its rollback job is the button
	merged := 0
	r := testRollout(t, rollout{
		setup: func(t *testing.T, r *rig) {
			h = newGLHost(t, r)
			h.api.MergeMethod = method
		},
		deploy: func(t *testing.T, r *rig, sha string) (string, map[string]string) {
			p := h.runPipeline(t, glApp, glEvent{Project: "team/hello", Branch: "main", SHA: sha, User: pusher, Vars: glAppSettings(r)})
			if p.Status != "success" {
				t.Fatalf("%s: pipeline %s:\n%s", glApp, p.Status, p.log())
			}
			ref := r.reg.Host + "/team/hello:" + sha // $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA
			want := []string{"docker login " + r.reg.Host + " --username gitlab-ci-token --password-stdin", "docker build --tag " + ref + " .", "docker push " + ref}
			if got := p.Jobs["build"].calls("docker"); !slices.Equal(got, want) {
				t.Errorf("the build job ran %q, want %q", got, want)
			}
			project := r.server + "/team/hello"
			return r.pushed[ref], map[string]string{
				"Ferry-Action": "deploy", "Ferry-Env": "candidate", "Ferry-App": "hello",
				"Ferry-Image":         ref + "@" + r.pushed[ref],
				"Ferry-Source-Repo":   project,
				"Ferry-Source-Commit": sha,
				"Ferry-Build-ID":      p.ID,
				"Ferry-Build-URL":     project + "/-/pipelines/" + p.ID,
			}
		},
		candidate: func(t *testing.T, r *rig, commit string) (bool, string) {
			p := h.runPipeline(t, glEnv, envEvent(r, "candidate", commit))
			checkApply(t, p, "candidate")
			if _, ok := p.Jobs["rollback"]; ok {
				t.Errorf("%s: the candidate pipeline offers the production rollback", glEnv)
			}
			promote := p.Jobs["promote"]
			if promote == nil {
				t.Fatalf("%s: no promote job on candidate:\n%s", glEnv, p.log())
			}
			if promote.Status != "success" {
				return false, promote.Res.String()
			}
			merged++
			mr := lastMR(t, r, merged, "ferry/production/hello")
			// The promote is GitLab's squash of ferry's commit, with
			// ferry's message: what history and the hold read.
			if mr.SquashCommit == "" || ferrys(r) != mr.SquashCommit {
				t.Errorf("production brought %s, want the squash commit %q", ferrys(r), mr.SquashCommit)
			}
			if got, want := r.trailers(mr.SquashCommit), r.trailers(mr.MergeCommit); !reflect.DeepEqual(got, want) {
				t.Errorf("the squash commit's trailers %v differ from the merge's %v", got, want)
			}
			return true, promote.Res.String()
		},
		production: func(t *testing.T, r *rig, commit string) {
			p := h.runPipeline(t, glEnv, envEvent(r, "production", commit))
			checkApply(t, p, "production")
			if _, ok := p.Jobs["promote"]; ok {
				t.Errorf("%s: the production pipeline promotes", glEnv)
			}
			if rb := p.Jobs["rollback"]; rb == nil || rb.Status != "manual" {
				t.Fatalf("%s: the production pipeline has no manual rollback job:\n%s", glEnv, p.log())
			}
			if p.Status != "success" {
				t.Errorf("%s: production pipeline %s; an unplayed rollback must not block it", glEnv, p.Status)
			}
			production = p
		},
		rollback: func(t *testing.T, r *rig, steps string) {
			j := h.play(t, production, "rollback", operator, map[string]string{"ROLLBACK_STEPS": steps})
			if j.Status != "success" {
				t.Fatalf("%s: rollback job:\n%s", glEnv, j.Res)
			}
			merged++
			lastMR(t, r, merged, "ferry/production/hello-rollback") // a rollback's own head: it never rewrites an open promotion
			// Whoever pressed play is the rollback's author.
			if got, want := r.repo.Git("log", "-1", "--format=%an <%ae>", ferrys(r)), "Jane Operator <jane@example.com>"; got != want {
				t.Errorf("rollback author %q, want %q", got, want)
			}
		},
	})
	if n := len(h.api.PRs()); n != merged {
		t.Errorf("%d merge requests, want %d: the held promote opened one", n, merged)
	}
	for _, f := range []string{glApp, glEnv} {
		var missed []string
		for _, cond := range loadGitLab(t, f).glIfs() {
			if !r.seen[f][cond] {
				missed = append(missed, cond)
			}
		}
		if len(missed) > 0 {
			t.Errorf("%s: rules the rollout never evaluated: %q", f, missed)
		}
	}
	// ferry's own branch starts no pipeline.
	if p := h.runPipeline(t, glEnv, envEvent(r, "ferry/production/hello", r.repo.Tip("ferry/production/hello"))); p.Status != "" {
		t.Errorf("%s: a push to ferry/production/hello made a pipeline: %s", glEnv, p.Status)
	}

	// ferry's history of production reads the merges as ferry's own
	// writes: newest first, the rollback and the two promotes.
	hist := history(t, r, map[string]string{"FERRY_GIT_TOKEN": r.token}, 3)
	prs := h.api.PRs()
	for i, want := range []string{"rollback", "promote", "promote"} {
		mr := prs[len(prs)-1-i]
		if e := hist[i]; e.Action != want || e.Commit != mr.MergeCommit {
			t.Errorf("history entry %d: %s %s, want %s %s (merge request !%d)", i, e.Action, e.Commit, want, mr.MergeCommit, mr.Number)
		}
	}
	if hist[1].PromotedFrom == "" || hist[0].RollbackTo == "" {
		t.Errorf("history lost the trailers: %+v", hist[:3])
	}
}

// lastPR is the newest of n pull (merge) requests on host, which must be
// ferry's from head into production, merged, production at its merge.
func lastPR(t *testing.T, r *rig, host *testforge.Host, n int, head string) testforge.PR {
	t.Helper()
	prs := host.PRs()
	if len(prs) != n {
		t.Fatalf("%d pull requests, want %d: %+v", len(prs), n, prs)
	}
	pr := prs[n-1]
	if pr.State != "merged" || pr.Base != "production" || pr.Head != head {
		t.Fatalf("pull request #%d: %s, %s into %s; want %s merged into production", pr.Number, pr.State, pr.Head, pr.Base, head)
	}
	if tip := r.repo.Tip("production"); tip != pr.MergeCommit {
		t.Errorf("production at %s, want the merge's %s", tip, pr.MergeCommit)
	}
	return pr
}

// historyEntry is an entry of `ferry history --output json`.
type historyEntry struct{ Commit, Action, PromotedFrom, RollbackTo string }

// history is ferry's history of production's apps/hello, newest first,
// read with the credentials in env; it must have at least n entries.
func history(t *testing.T, r *rig, env map[string]string, n int) []historyEntry {
	t.Helper()
	cmd := exec.Command(ferryBin, "history", "--repo", r.url, "--env", "production", "--path", "apps/hello", "--output", "json")
	env["HOME"] = t.TempDir()
	cmd.Env = envList(env)
	res := runCmd(t, cmd)
	var hist []historyEntry
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &hist) != nil || len(hist) < n {
		t.Fatalf("ferry history: %s", res)
	}
	return hist
}

// glAppSettings are the app repo's CI/CD variables, as its file's header
// asks: a token that may push to the env repo, and the env repo.
func glAppSettings(r *rig) []glProjectVar {
	return []glProjectVar{{Key: "FERRY_GIT_TOKEN", Value: r.token}, {Key: "ENV_REPO", Value: r.url}}
}

// glEnvSettings are the env repo's CI/CD variables, as its file's header
// asks: its own token (git and the API) and each environment's kubectl
// context.
func glEnvSettings(r *rig) []glProjectVar {
	return []glProjectVar{
		{Key: "FERRY_GIT_TOKEN", Value: r.token},
		{Key: "KUBE_CONTEXT", Value: "acme/env:candidate", Scope: "candidate"},
		{Key: "KUBE_CONTEXT", Value: "acme/env:production", Scope: "production"},
	}
}

// checkApply checks that p applied its branch's apps/hello with the
// environment's kubectl context.
func checkApply(t *testing.T, p *glPipeline, env string) {
	t.Helper()
	apply := p.Jobs["apply"]
	if apply == nil || apply.Status != "success" {
		t.Fatalf("%s: apply on %s:\n%s", p.file, env, p.log())
	}
	want := []string{"kubectl config use-context acme/env:" + env, "kubectl apply -k apps/hello", "kubectl rollout status deployment/hello --timeout=5m"}
	if got := apply.calls("kubectl"); !slices.Equal(got, want) {
		t.Errorf("%s: apply on %s ran %q, want %q", p.file, env, got, want)
	}
	if apply.Env["CI_ENVIRONMENT_NAME"] != env {
		t.Errorf("%s: apply on %s is in environment %q", p.file, env, apply.Env["CI_ENVIRONMENT_NAME"])
	}
}

// checkActionOutputs checks what the action's ferry step left for the
// workflow: its outputs, and a job summary that names the digest (if any).
// ferry writes both itself; should it write none, the checks say so and
// skip.
func checkActionOutputs(t *testing.T, step ghStepRun, want map[string]string, digest string) {
	t.Helper()
	if strings.TrimSpace(step.RawOutput) == "" {
		t.Logf("SKIPPED output checks of %q: ferry wrote nothing to $GITHUB_OUTPUT", step.Step)
	} else {
		for k, v := range want {
			if step.Outputs[k] != v {
				t.Errorf("%q: action output %s = %q, want %q (ferry wrote:\n%s)", step.Step, k, step.Outputs[k], v, step.RawOutput)
			}
		}
	}
	if strings.TrimSpace(step.Summary) == "" {
		t.Logf("SKIPPED summary check of %q: ferry wrote nothing to $GITHUB_STEP_SUMMARY", step.Step)
	} else if digest != "" && (!strings.Contains(step.Summary, "|") || !strings.Contains(step.Summary, digest)) {
		t.Errorf("%q: job summary: want a Markdown table naming %q:\n%s", step.Step, digest, step.Summary)
	} else if !strings.Contains(step.Summary, "ferry ") || !strings.Contains(step.Summary, want["result"]) {
		t.Errorf("%q: job summary does not say ferry's result %q:\n%s", step.Step, want["result"], step.Summary)
	}
}

// ferry's own build: vet, test and the image, with the build's stand-ins;
// the image it builds takes every build arg the Dockerfile declares.
func TestCloudBuildSelf(t *testing.T) {
	r := newRig(t)
	sha := strings.Repeat("d4", 20)
	b := r.runCloudBuild(t, "cloudbuild.yaml", cbTrigger{
		Builtins: cbBuiltinsFor("ferrycd/ferry", "main", sha, "self-build"),
		Subs:     map[string]string{"_REGISTRY": r.reg.Host + "/ferrycd", "_VERSION": "v9.9.9"},
	})
	if b.Failed != "" {
		t.Fatalf("step %s failed", b.Failed)
	}
	for _, tag := range []string{sha[:7], "v9.9.9"} {
		if _, ok := r.pushed[r.reg.Host+"/ferrycd/ferry:"+tag]; !ok {
			t.Errorf("the build pushed no image tagged %s: %v", tag, r.pushed)
		}
	}
	args := b.step("image").Args
	buildArgs := map[string]string{}
	for _, a := range args {
		if kv, ok := strings.CutPrefix(a, "--build-arg="); ok {
			k, v, _ := strings.Cut(kv, "=")
			buildArgs[k] = v
		}
	}
	if want := map[string]string{"VERSION": "v9.9.9", "COMMIT": sha}; !mapsEqual(buildArgs, want) {
		t.Errorf("docker build --build-arg %v, want %v", buildArgs, want)
	}
	for k := range buildArgs {
		if _, ok := imageBuild.Vars[k]; !ok {
			t.Errorf("--build-arg %s: the Dockerfile's build stage has no ARG %s", k, k)
		}
	}
	if args[len(args)-1] != "." {
		t.Errorf("docker build context %q, want . (the repository, with .dockerignore)", args[len(args)-1])
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Every pipeline under pipelines/ (all but its README) is run by a rollout
// above.
func TestEveryPipelineFileRuns(t *testing.T) {
	var all []string
	err := filepath.WalkDir(filepath.Join(repoRoot, "pipelines"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(repoRoot, p)
			all = append(all, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	run := []string{cbApp, cbCandidate, cbCandidatePR, cbProduction, cbRollback, cbRollbackPR, ghApp, ghEnv, ghEnvPR, ghRollback, ghRollbackPR, glApp, glEnv}
	sort.Strings(all)
	sort.Strings(run)
	if !slices.Equal(all, run) {
		t.Errorf("files under pipelines/ %q, but the rollouts run %q; run every file", all, run)
	}
}

// Each Cloud Build file says in its leading comment what every
// substitution it uses means.
func TestCloudBuildSubstitutionsDocumented(t *testing.T) {
	files := append([]string{"cloudbuild.yaml"}, pipelineFiles(t, "cloudbuild/*.yaml")...)
	used := regexp.MustCompile(`\$\{?(_[A-Z0-9_]+)`)
	for _, f := range files {
		doc, body := splitHeader(t, f)
		var cfg cbConfig
		readYAML(t, f, &cfg)
		names := map[string]bool{}
		for k := range cfg.Substitutions {
			names[k] = true
		}
		for _, m := range used.FindAllStringSubmatch(body, -1) {
			names[m[1]] = true
		}
		for n := range names {
			if !regexp.MustCompile(`(?m)^#\s+` + n + `\s`).MatchString(doc) {
				t.Errorf("%s: substitution %s is not described in the comment block at the top", f, n)
			}
		}
		if !strings.Contains(doc, "Substitutions") {
			t.Errorf("%s: no Substitutions section in the comment block at the top", f)
		}
	}
}

// splitHeader splits a file of the repository into its leading comment
// block and the rest.
func splitHeader(t *testing.T, file string) (head, body string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	var h, b []string
	inHead := true
	for _, line := range strings.Split(string(data), "\n") {
		if inHead && (strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "") {
			h = append(h, line)
			continue
		}
		inHead = false
		b = append(b, line)
	}
	return strings.Join(h, "\n"), strings.Join(b, "\n")
}

// Each GitLab file says in its leading comment what every CI/CD variable
// it needs means: those the rollout sets in the project's settings, and
// any the file uses but neither defines nor gets from GitLab (CI_*,
// GITLAB_*).
func TestGitLabVariablesDocumented(t *testing.T) {
	used := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	for f, settings := range map[string][]glProjectVar{glApp: glAppSettings(&rig{}), glEnv: glEnvSettings(&rig{})} {
		doc, body := splitHeader(t, f)
		cfg := loadGitLab(t, f)
		defined := map[string]bool{"HOME": true}
		for k := range cfg.Variables {
			defined[k] = true
		}
		for _, j := range cfg.Jobs {
			for k := range j.Variables {
				defined[k] = true
			}
		}
		names := map[string]bool{}
		for _, v := range settings {
			names[v.Key] = true
		}
		for _, m := range used.FindAllStringSubmatch(body, -1) {
			if n := m[1]; !defined[n] && !strings.HasPrefix(n, "CI_") && !strings.HasPrefix(n, "GITLAB_") {
				names[n] = true
			}
		}
		for n := range names {
			if !regexp.MustCompile(`(?m)^#\s+` + n + `\s`).MatchString(doc) {
				t.Errorf("%s: CI/CD variable %s is not described in the comment block at the top", f, n)
			}
		}
	}
}
