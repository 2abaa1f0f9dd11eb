package pipelines

// A GitHub Actions runner for the test: it reads a workflow, evaluates the
// expressions it uses (expr_test.go), and runs each job's steps: ferry's
// composite action (action.yml) with bash, run: steps that call ferry with
// bash, and every other kind through the tables ghUses and ghRunKinds,
// which say why it cannot run here and what stands in for it.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type ghWorkflow struct {
	Name        string            `json:"name"`
	On          any               `json:"on"`
	OnYAML11    any               `json:"true"` // `on:` read as YAML 1.1's boolean
	Permissions any               `json:"permissions"`
	Env         map[string]any    `json:"env"`
	Concurrency any               `json:"concurrency"`
	Jobs        map[string]*ghJob `json:"jobs"`
}

type ghJob struct {
	Name           string         `json:"name"`
	RunsOn         any            `json:"runs-on"`
	Needs          any            `json:"needs"`
	If             string         `json:"if"`
	Environment    any            `json:"environment"`
	Concurrency    any            `json:"concurrency"`
	Permissions    any            `json:"permissions"`
	Env            map[string]any `json:"env"`
	TimeoutMinutes any            `json:"timeout-minutes"`
	Steps          []ghStep       `json:"steps"`
}

type ghStep struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	If               string         `json:"if"`
	Uses             string         `json:"uses"`
	With             map[string]any `json:"with"`
	Run              string         `json:"run"`
	Shell            string         `json:"shell"`
	Env              map[string]any `json:"env"`
	WorkingDirectory string         `json:"working-directory"`
	TimeoutMinutes   any            `json:"timeout-minutes"`
}

func (s ghStep) label() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Uses != "":
		return s.Uses
	}
	return strings.SplitN(strings.TrimSpace(s.Run), "\n", 2)[0]
}

type ghAction struct {
	Name        string                    `json:"name"`
	Description string                    `json:"description"`
	Author      string                    `json:"author"`
	Branding    map[string]string         `json:"branding"`
	Inputs      map[string]ghActionInput  `json:"inputs"`
	Outputs     map[string]ghActionOutput `json:"outputs"`
	Runs        struct {
		Using string   `json:"using"`
		Steps []ghStep `json:"steps"`
	} `json:"runs"`
}

type ghActionInput struct {
	Description        string `json:"description"`
	Required           bool   `json:"required"`
	Default            string `json:"default"`
	DeprecationMessage string `json:"deprecationMessage"`
}

type ghActionOutput struct {
	Description string `json:"description"`
	Value       string `json:"value"`
}

// isFerryAction says whether uses: names ferry's own action.
func isFerryAction(uses string) bool {
	return uses == "./" || strings.HasPrefix(uses, "ferrycd/ferry@")
}

// ghUse is a kind of `uses:` step other than ferry's action.
type ghUse struct {
	action  string // owner/repo, without @ref
	why     string
	standIn func(j *ghJobRun, with map[string]string) (map[string]string, error)
}

// ghUses is every action the pipelines may use besides ferry's. A step
// using any other fails the test.
var ghUses = []ghUse{
	{action: "actions/checkout", why: "checks out the repository; ferry needs no checkout"},
	{action: "actions/setup-go", why: "installs Go on the runner"},
	{action: "docker/setup-buildx-action", why: "needs a Docker engine"},
	{action: "docker/login-action", why: "logs in to GHCR; the test registry needs no login"},
	{action: "docker/build-push-action", why: "needs a Docker engine; stand-in pushes a random image to each tag", standIn: buildPushStandIn},
	{action: "google-github-actions/auth", why: "needs Google Cloud (Workload Identity Federation)"},
	{action: "google-github-actions/get-gke-credentials", why: "needs a GKE cluster"},
}

// ghRunKinds are the commands a run: step may use without ferry; a script
// with any other command fails the test.
var ghRunKinds = map[string]string{
	"kubectl": "needs a Kubernetes cluster",
	"go":      "the app's own tests",
}

// ghSkipByName are the steps of action.yml that do not run here.
var ghSkipByName = map[string]string{
	"Install ferry": "builds ferry from the action's source; ferry built the Dockerfile's way is on PATH instead (TestActionInstallStep runs this step)",
}

func buildPushStandIn(j *ghJobRun, with map[string]string) (map[string]string, error) {
	if with["push"] != "true" {
		return nil, nil
	}
	var digest string
	for _, tag := range strings.FieldsFunc(with["tags"], func(r rune) bool { return r == ',' || r == '\n' }) {
		tag = strings.TrimSpace(tag)
		j.r.build(tag)
		d, err := j.r.push(tag)
		if err != nil {
			return nil, err
		}
		digest = d
	}
	return map[string]string{"digest": digest, "imageid": digest}, nil
}

// ghEvent is what starts a workflow run.
type ghEvent struct {
	Name    string // push or workflow_dispatch
	Ref     string // the branch
	SHA     string
	Repo    string // owner/name
	Server  string // github.server_url
	API     string // github.api_url (default https://api.github.com)
	RunID   string
	Actor   string
	ActorID string
	Inputs  map[string]string // workflow_dispatch, as typed in the form
	Vars    map[string]string
	Secrets map[string]string
	Token   string // github.token
}

// ghStepRun is what one step did.
type ghStepRun struct {
	Job, Step string
	Ran       bool
	Res       execResult
	Outputs   map[string]string // the step's outputs (an action's: its outputs)
	RawOutput string            // what the step wrote to $GITHUB_OUTPUT
	Summary   string            // what it wrote to $GITHUB_STEP_SUMMARY
}

// ghRun is a finished workflow run.
type ghRun struct {
	Jobs  map[string]string // job -> success, failure or skipped
	Steps []ghStepRun
}

func (g ghRun) step(name string) ghStepRun {
	for _, s := range g.Steps {
		if s.Step == name {
			return s
		}
	}
	return ghStepRun{}
}

// ghJobRun is a job under way.
type ghJobRun struct {
	t       *testing.T
	r       *rig
	file    string
	job     string
	ev      ghEvent
	github  map[string]any
	env     map[string]string // workflow and job env
	steps   map[string]any
	pathDir string // what PATH starts with: where ferry is
	inputs  map[string]any
	run     *ghRun
	in      string // the file whose expressions are being evaluated
}

func (j *ghJobRun) seen(expr string) { j.r.saw(j.in, expr) }

func (j *ghJobRun) ctx(extra map[string]any) map[string]any {
	env := map[string]any{}
	for k, v := range j.env {
		env[k] = v
	}
	c := map[string]any{
		"github":  j.github,
		"vars":    strMap(j.ev.Vars),
		"secrets": strMap(j.ev.Secrets),
		"inputs":  j.inputs,
		"env":     env,
		"steps":   j.steps,
		"runner":  map[string]any{"os": "Linux", "temp": "/tmp"},
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func strMap(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// evalMap interpolates every value of a with: or env: block.
func (j *ghJobRun) evalMap(m map[string]any, ctx map[string]any) map[string]string {
	j.t.Helper()
	out := map[string]string{}
	for k, v := range m {
		s, err := interpolate(format(v), ctx, j.seen)
		if err != nil {
			j.t.Fatalf("%s: job %s: %s: %v", j.file, j.job, k, err)
		}
		out[k] = s
	}
	return out
}

// evalAny interpolates every string inside v (job-level environment:,
// concurrency: and the like), only to check its expressions.
func (j *ghJobRun) evalAny(v any, ctx map[string]any) {
	j.t.Helper()
	switch v := v.(type) {
	case string:
		if _, err := interpolate(v, ctx, j.seen); err != nil {
			j.t.Fatalf("%s: job %s: %v", j.file, j.job, err)
		}
	case map[string]any:
		for _, x := range v {
			j.evalAny(x, ctx)
		}
	case []any:
		for _, x := range v {
			j.evalAny(x, ctx)
		}
	}
}

// baseEnv is what the runner puts in every step's environment.
func (j *ghJobRun) baseEnv(tmp string) map[string]string {
	return map[string]string{
		"PATH":                j.pathDir + ":/usr/local/bin:/usr/bin:/bin",
		"HOME":                filepath.Join(tmp, "home"),
		"CI":                  "true",
		"GITHUB_ACTIONS":      "true",
		"GITHUB_REPOSITORY":   j.ev.Repo,
		"GITHUB_SHA":          j.ev.SHA,
		"GITHUB_REF":          "refs/heads/" + j.ev.Ref,
		"GITHUB_REF_NAME":     j.ev.Ref,
		"GITHUB_RUN_ID":       j.ev.RunID,
		"GITHUB_SERVER_URL":   j.ev.Server,
		"GITHUB_API_URL":      j.ev.apiURL(),
		"GITHUB_ACTOR":        j.ev.Actor,
		"GITHUB_EVENT_NAME":   j.ev.Name,
		"GITHUB_WORKSPACE":    filepath.Join(tmp, "workspace"),
		"GITHUB_OUTPUT":       filepath.Join(tmp, "output"),
		"GITHUB_STEP_SUMMARY": filepath.Join(tmp, "summary"),
		"GITHUB_ENV":          filepath.Join(tmp, "env"),
		"GITHUB_PATH":         filepath.Join(tmp, "path"),
		"RUNNER_TEMP":         filepath.Join(tmp, "runner-temp"),
		"RUNNER_OS":           "Linux",
	}
}

// bash runs a run: step as the runner does: bash --noprofile --norc -eo
// pipefail on a script file, with fresh output and summary files.
func (j *ghJobRun) bash(script string, env map[string]string) (execResult, string, string) {
	j.t.Helper()
	tmp := j.t.TempDir()
	base := j.baseEnv(tmp)
	for _, d := range []string{"home", "workspace", "runner-temp"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			j.t.Fatal(err)
		}
	}
	for k, v := range env {
		base[k] = v
	}
	for _, f := range []string{base["GITHUB_OUTPUT"], base["GITHUB_STEP_SUMMARY"], base["GITHUB_ENV"], base["GITHUB_PATH"]} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			j.t.Fatal(err)
		}
	}
	res := runScript(j.t, script, base["GITHUB_WORKSPACE"], base, "-eo", "pipefail")
	out, _ := os.ReadFile(base["GITHUB_OUTPUT"])
	sum, _ := os.ReadFile(base["GITHUB_STEP_SUMMARY"])
	return res, string(out), string(sum)
}

// parseOutputs reads $GITHUB_OUTPUT: name=value lines and name<<DELIM
// heredocs.
func parseOutputs(s string) (map[string]string, error) {
	out := map[string]string{}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				val = append(val, lines[i])
			}
			if i == len(lines) {
				return nil, fmt.Errorf("output %s: no closing %s", name, delim)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("output line %q is neither name=value nor name<<DELIM", line)
		}
		out[name] = val
	}
	return out, nil
}

// ferryCall matches a shell line that runs ferry.
var ferryCall = regexp.MustCompile(`(^|[\s;&|(])ferry(\s|$)`)

// runWorkflow runs the workflow at file (relative to the repository root)
// for ev, with pathDir first on PATH (where a ferry is).
func (r *rig) runWorkflow(t *testing.T, file string, ev ghEvent, pathDir string) ghRun {
	t.Helper()
	var wf ghWorkflow
	readYAML(t, file, &wf)
	on := wf.On
	if on == nil {
		on = wf.OnYAML11
	}
	triggers, _ := on.(map[string]any)
	trig, ok := triggers[ev.Name]
	if !ok {
		t.Fatalf("%s: not started by %s", file, ev.Name)
	}
	switch ev.Name {
	case "push":
		branches, _ := trig.(map[string]any)["branches"].([]any)
		match := false
		for _, b := range branches {
			match = match || b == ev.Ref
		}
		if !match {
			t.Fatalf("%s: a push to %s does not start it (branches: %v)", file, ev.Ref, branches)
		}
	}
	inputs := map[string]any{}
	if ev.Name == "workflow_dispatch" {
		inputs = dispatchInputs(t, file, trig, ev.Inputs)
	}
	run := &ghRun{Jobs: map[string]string{}}
	for _, name := range jobOrder(t, file, wf.Jobs) {
		job := wf.Jobs[name]
		j := &ghJobRun{t: t, r: r, file: file, in: file, job: name, ev: ev, github: githubContext(ev), env: map[string]string{}, steps: map[string]any{}, pathDir: pathDir, inputs: inputs, run: run}
		wfEnv := j.evalMap(wf.Env, j.ctx(nil))
		for k, v := range wfEnv {
			j.env[k] = v
		}
		needsOK := true
		needs := map[string]any{}
		for _, n := range needList(job.Needs) {
			needsOK = needsOK && run.Jobs[n] == "success"
			needs[n] = map[string]any{"result": run.Jobs[n], "outputs": lenient{}}
		}
		cond, err := evalIf(job.If, j.ctx(map[string]any{"needs": needs}), j.seen)
		if err != nil {
			t.Fatalf("%s: job %s: if: %v", file, name, err)
		}
		for k, v := range j.evalMap(job.Env, j.ctx(nil)) {
			j.env[k] = v
		}
		j.evalAny(job.Environment, j.ctx(nil))
		j.evalAny(job.Concurrency, j.ctx(nil))
		j.evalAny(wf.Concurrency, j.ctx(nil))
		if !needsOK || !cond {
			run.Jobs[name] = "skipped"
			t.Logf("%s: job %s skipped (if: %q, needs: %v)", file, name, job.If, job.Needs)
			// Check the skipped job's expressions all the same.
			for _, st := range job.Steps {
				j.evalMap(st.With, j.ctx(nil))
				j.evalMap(st.Env, j.ctx(nil))
			}
			continue
		}
		run.Jobs[name] = "success"
		for _, st := range job.Steps {
			if !j.step(st) {
				run.Jobs[name] = "failure"
				break
			}
		}
	}
	for _, s := range run.Steps {
		if s.Ran {
			r.log(file, s.Job+": "+s.Step, s.Res)
		}
	}
	return *run
}

// apiURL is the REST API of the GitHub the run is on.
func (ev ghEvent) apiURL() string {
	if ev.API == "" {
		return "https://api.github.com"
	}
	return ev.API
}

// githubContext is the github context of a run started by ev.
func githubContext(ev ghEvent) map[string]any {
	return map[string]any{
		"sha": ev.SHA, "repository": ev.Repo, "server_url": ev.Server, "api_url": ev.apiURL(), "ref_name": ev.Ref,
		"ref": "refs/heads/" + ev.Ref, "event_name": ev.Name, "run_id": ev.RunID,
		"actor": ev.Actor, "actor_id": ev.ActorID, "token": ev.Token,
		"repository_owner": strings.Split(ev.Repo, "/")[0],
	}
}

// dispatchInputs fills a workflow_dispatch's inputs as the form would:
// defaults, choices checked, booleans and numbers typed.
func dispatchInputs(t *testing.T, file string, trig any, given map[string]string) map[string]any {
	t.Helper()
	decl, _ := trig.(map[string]any)["inputs"].(map[string]any)
	for k := range given {
		if _, ok := decl[k]; !ok {
			t.Fatalf("%s: workflow_dispatch has no input %s", file, k)
		}
	}
	out := map[string]any{}
	for k, d := range decl {
		d := d.(map[string]any)
		v, ok := given[k]
		if !ok {
			v = format(d["default"])
		}
		if d["required"] == true && v == "" {
			t.Fatalf("%s: input %s is required", file, k)
		}
		switch d["type"] {
		case "choice":
			ok := false
			for _, o := range d["options"].([]any) {
				ok = ok || format(o) == v
			}
			if !ok {
				t.Fatalf("%s: input %s: %q is not one of %v", file, k, v, d["options"])
			}
		case "boolean":
			if v != "true" && v != "false" {
				t.Fatalf("%s: input %s: %q is not a boolean", file, k, v)
			}
			out[k] = v == "true"
			continue
		case "number":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: input %s: %q is not a number", file, k, v)
			}
			out[k] = f
			continue
		}
		out[k] = v
	}
	return out
}

func needList(n any) []string {
	switch n := n.(type) {
	case string:
		return []string{n}
	case []any:
		var out []string
		for _, x := range n {
			out = append(out, format(x))
		}
		return out
	}
	return nil
}

// jobOrder sorts jobs so that each comes after what it needs.
func jobOrder(t *testing.T, file string, jobs map[string]*ghJob) []string {
	t.Helper()
	var names []string
	for n := range jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	return depOrder(t, file, names, func(n string) []string { return needList(jobs[n].Needs) })
}

// depOrder orders names so that each comes after its deps, otherwise
// keeping the order given.
func depOrder(t *testing.T, file string, names []string, deps func(string) []string) []string {
	t.Helper()
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	var order []string
	done := map[string]bool{}
	for len(order) < len(names) {
		progress := false
		for _, n := range names {
			if done[n] {
				continue
			}
			ready := true
			for _, need := range deps(n) {
				if !known[need] {
					t.Fatalf("%s: job %s needs %s, which does not exist", file, n, need)
				}
				ready = ready && done[need]
			}
			if ready {
				order, done[n], progress = append(order, n), true, true
				break // the first ready one, then look again from the start
			}
		}
		if !progress {
			t.Fatalf("%s: jobs need each other in a cycle", file)
		}
	}
	return order
}
