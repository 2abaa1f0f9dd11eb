package pipelines

// A GitLab CI runner for the test: it reads a .gitlab-ci.yml, resolves
// extends:, decides the pipeline (workflow: rules) and its jobs (rules:,
// when:, needs:, stages:), gives each job GitLab's predefined variables and
// the file's and the project's, expanded as GitLab does, and runs its
// before_script: and script: lines in one shell, as the runner does, with
// runScript, the GitHub runner's shell. A command that cannot run here
// (docker, kubectl, go) is a stand-in on PATH named after it: it records
// each call, and the table glCommands says why the command cannot run here
// and what, if anything, stands in for it. ferry runs for real; the go
// stand-in's `go install` of ferry puts the binary the Dockerfile builds
// where the golang image's go would.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ferrycd/ferry/internal/testforge"
)

// glConfig is a .gitlab-ci.yml, extends: resolved.
type glConfig struct {
	Stages    []string
	Variables map[string]glVar
	Workflow  *glWorkflow
	Jobs      map[string]*glJob // hidden jobs (.name) only feed extends:
}

type glWorkflow struct {
	Rules []glRule `json:"rules"`
}

type glRule struct {
	If           string `json:"if"`
	When         string `json:"when"`
	AllowFailure *bool  `json:"allow_failure"`
}

type glJob struct {
	Stage         string           `json:"stage"`
	Image         *glImage         `json:"image"`
	Services      []glImage        `json:"services"`
	Variables     map[string]glVar `json:"variables"`
	BeforeScript  []string         `json:"before_script"`
	Script        []string         `json:"script"`
	Rules         []glRule         `json:"rules"`
	When          string           `json:"when"`
	Needs         *[]glNeed        `json:"needs"` // nil: the stages order it
	AllowFailure  *bool            `json:"allow_failure"`
	ResourceGroup string           `json:"resource_group"`
	Environment   *glEnvironment   `json:"environment"`
}

// glVar is a variables: entry: a string (or number), or {value,
// description, expand, options}.
type glVar struct {
	Value       string   `json:"value"`
	Description string   `json:"description"`
	Expand      *bool    `json:"expand"`
	Options     []string `json:"options"`
}

func (v *glVar) UnmarshalJSON(b []byte) error {
	type plain glVar
	if b[0] != '{' && b[0] != '"' {
		var f float64
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("variable value %s: want a string, a number or {value: ...}", b)
		}
		v.Value = format(f)
		return nil
	}
	return stringOr(b, &v.Value, (*plain)(v))
}

// glImage is image: or a services: entry: a name, or {name, entrypoint}.
type glImage struct {
	Name       string   `json:"name"`
	Entrypoint []string `json:"entrypoint"` // nil: the image's own
}

func (im *glImage) UnmarshalJSON(b []byte) error {
	type plain glImage
	return stringOr(b, &im.Name, (*plain)(im))
}

// glNeed is a needs: entry: a job name, or {job, optional}.
type glNeed struct {
	Job      string `json:"job"`
	Optional bool   `json:"optional"`
}

func (n *glNeed) UnmarshalJSON(b []byte) error {
	type plain glNeed
	return stringOr(b, &n.Job, (*plain)(n))
}

// glEnvironment is environment:: a name, or {name, url, action}.
type glEnvironment struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Action string `json:"action"`
}

func (e *glEnvironment) UnmarshalJSON(b []byte) error {
	type plain glEnvironment
	return stringOr(b, &e.Name, (*plain)(e))
}

// stringOr decodes b, GitLab's short form (a string) into short, or its
// long form (an object) strictly into long.
func stringOr(b []byte, short *string, long any) error {
	if b[0] == '"' {
		return json.Unmarshal(b, short)
	}
	return strictJSON(b, long)
}

// strictJSON decodes b into v, refusing fields v does not know.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// glDefaultStages are the stages of a file that names none.
var glDefaultStages = []string{"build", "test", "deploy"}

// loadGitLab reads a .gitlab-ci.yml of the repository. A keyword the test
// does not model fails it, as does a key a job does not have.
func loadGitLab(t *testing.T, file string) *glConfig {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := yaml.UnmarshalStrict(data, &top); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	cfg := &glConfig{Jobs: map[string]*glJob{}}
	raw := map[string]map[string]any{}
	for k, v := range top {
		var err error
		switch k {
		case "stages":
			err = remarshal(v, &cfg.Stages)
		case "variables":
			err = remarshal(v, &cfg.Variables)
		case "workflow":
			err = remarshal(v, &cfg.Workflow)
		case "default", "include", "image", "services", "before_script", "after_script", "cache", "spec":
			t.Fatalf("%s: the global keyword %s is not modelled", file, k)
		default:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s: job %s is not a map", file, k)
			}
			raw[k] = m
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", file, k, err)
		}
	}
	for name := range raw {
		if strings.HasPrefix(name, ".") {
			continue
		}
		job := &glJob{}
		if err := remarshal(glExtends(t, file, name, raw, 0), job); err != nil {
			t.Fatalf("%s: job %s: %v", file, name, err)
		}
		if len(job.Script) == 0 {
			t.Fatalf("%s: job %s has no script:", file, name)
		}
		cfg.Jobs[name] = job
	}
	if cfg.Stages == nil {
		cfg.Stages = glDefaultStages
	}
	cfg.Stages = append(append([]string{".pre"}, cfg.Stages...), ".post")
	return cfg
}

// remarshal decodes a YAML-read value into out, strictly.
func remarshal(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return strictJSON(b, out)
}

// glExtends is job name with what it extends: merged under it, as GitLab
// merges: maps key by key, deeply; anything else (lists included) replaced.
func glExtends(t *testing.T, file, name string, raw map[string]map[string]any, depth int) map[string]any {
	t.Helper()
	if depth > 10 {
		t.Fatalf("%s: job %s: extends: nests more than 11 deep, or in a cycle", file, name)
	}
	m := raw[name]
	var parents []string
	switch e := m["extends"].(type) {
	case nil:
	case string:
		parents = []string{e}
	case []any:
		for _, p := range e {
			parents = append(parents, format(p))
		}
	default:
		t.Fatalf("%s: job %s: extends: %v", file, name, e)
	}
	out := map[string]any{}
	for _, p := range parents {
		if _, ok := raw[p]; !ok {
			t.Fatalf("%s: job %s extends %s, which does not exist", file, name, p)
		}
		out = deepMerge(out, glExtends(t, file, p, raw, depth+1))
	}
	out = deepMerge(out, m)
	delete(out, "extends")
	return out
}

// deepMerge is base with over on top: maps merged key by key, anything
// else replaced.
func deepMerge(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = deepMerge(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}

// glIfs lists every rules: if: of a file, the workflow's included.
func (c *glConfig) glIfs() []string {
	var out []string
	if c.Workflow != nil {
		for _, r := range c.Workflow.Rules {
			out = append(out, r.If)
		}
	}
	for _, j := range c.Jobs {
		for _, r := range j.Rules {
			out = append(out, r.If)
		}
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// glIf evaluates a rules: if: as GitLab does: $VAR, "string" and 'string'
// literals, null, /regex/, ==, !=, =~, !~, && (binding before ||) and
// parentheses; a variable alone is true when set and not empty, and an
// unset variable is null. GitLab refuses ${VAR} there, and so does this;
// anything else unmodelled is an error too.
func glIf(src string, vars map[string]string) (bool, error) {
	p := &exprParser{src: src}
	v, err := glOr(p, vars)
	if err == nil {
		if p.space(); p.pos != len(p.src) {
			err = fmt.Errorf("unexpected %q", p.src[p.pos:])
		}
	}
	if err != nil {
		return false, fmt.Errorf("if: %s: %v", src, err)
	}
	return v, nil
}

func glOr(p *exprParser, vars map[string]string) (bool, error) {
	l, err := glAnd(p, vars)
	for err == nil && p.eat("||") {
		var r bool
		r, err = glAnd(p, vars)
		l = l || r
	}
	return l, err
}

func glAnd(p *exprParser, vars map[string]string) (bool, error) {
	l, err := glCmp(p, vars)
	for err == nil && p.eat("&&") {
		var r bool
		r, err = glCmp(p, vars)
		l = l && r
	}
	return l, err
}

// glOperand is a value in a rules: if:: a variable's (nil if unset), a
// string, null (nil), or a regular expression.
type glOperand struct {
	isVar bool
	val   *string
	re    *regexp.Regexp
}

func glCmp(p *exprParser, vars map[string]string) (bool, error) {
	if p.eat("(") {
		v, err := glOr(p, vars)
		if err == nil && !p.eat(")") {
			err = fmt.Errorf("missing )")
		}
		return v, err
	}
	l, err := glValue(p, vars)
	if err != nil {
		return false, err
	}
	for _, op := range []string{"==", "!=", "=~", "!~"} {
		if !p.eat(op) {
			continue
		}
		r, err := glValue(p, vars)
		if err != nil {
			return false, err
		}
		switch op {
		case "==", "!=":
			if l.re != nil || r.re != nil {
				return false, fmt.Errorf("%s with a regular expression (use =~)", op)
			}
			eq := (l.val == nil) == (r.val == nil) && (l.val == nil || *l.val == *r.val)
			return eq == (op == "=="), nil
		default:
			if r.re == nil || l.re != nil {
				return false, fmt.Errorf("%s takes a value on the left and a /regex/ on the right", op)
			}
			m := l.val != nil && r.re.MatchString(*l.val)
			return m == (op == "=~"), nil
		}
	}
	if !l.isVar {
		return false, fmt.Errorf("a literal alone is not a condition")
	}
	return l.val != nil && *l.val != "", nil
}

var glVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

func glValue(p *exprParser, vars map[string]string) (glOperand, error) {
	p.space()
	rest := p.src[p.pos:]
	switch {
	case rest == "":
		return glOperand{}, fmt.Errorf("unexpected end")
	case strings.HasPrefix(rest, "${"):
		return glOperand{}, fmt.Errorf("${...} is not allowed in rules (GitLab refuses it): write $NAME")
	case rest[0] == '$':
		name := glVarName.FindString(rest[1:])
		if name == "" {
			return glOperand{}, fmt.Errorf("a lone $")
		}
		p.pos += 1 + len(name)
		o := glOperand{isVar: true}
		if v, ok := vars[name]; ok {
			o.val = &v
		}
		return o, nil
	case rest[0] == '"' || rest[0] == '\'':
		end := strings.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return glOperand{}, fmt.Errorf("unterminated string")
		}
		s := rest[1 : end+1]
		p.pos += end + 2
		return glOperand{val: &s}, nil
	case strings.HasPrefix(rest, "null"):
		p.pos += 4
		return glOperand{}, nil
	case rest[0] == '/':
		end := -1
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\\' {
				i++
				continue
			}
			if rest[i] == '/' {
				end = i
				break
			}
		}
		if end < 0 {
			return glOperand{}, fmt.Errorf("unterminated /regex/")
		}
		pat := rest[1:end]
		p.pos += end + 1
		if p.pos < len(p.src) && p.src[p.pos] == 'i' {
			pat = "(?i)" + pat
			p.pos++
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return glOperand{}, err
		}
		return glOperand{re: re}, nil
	}
	return glOperand{}, fmt.Errorf("unexpected %q", rest)
}

// glExpand expands $NAME, ${NAME} and $$ in a variable's value, as the
// runner does, with cbExpand. Unlike GitLab, which makes an unknown name
// empty, a name no variable has is an error: it is most likely misspelt.
func glExpand(s string, lookup func(string) (string, error)) (string, error) {
	return cbExpand(s, lookup)
}

// glImageKind is what the test knows of an image a job runs in.
type glImageKind struct {
	// entrypoint is the image's own ENTRYPOINT when it is not a shell:
	// the job must override it with entrypoint: [""], as the runner
	// starts a shell in the container.
	entrypoint string
	// env is what the image puts in the environment, under the job's tmp.
	env func(tmp string) map[string]string
}

// glImages are the images jobs may run in, by repository. A job in any
// other fails the test.
var glImages = map[string]glImageKind{
	// GOPATH=/go, with /go/bin first on PATH: where `go install` puts a
	// binary, and the go stand-in puts ferry.
	"golang": {env: func(tmp string) map[string]string {
		return map[string]string{"GOPATH": filepath.Join(tmp, "go"), "PATH": filepath.Join(tmp, "go", "bin")}
	}},
	"docker":          {},
	"bitnami/kubectl": {entrypoint: "kubectl"},
}

// glServices are the services jobs may start, by repository, and why they
// do not start here.
var glServices = map[string]string{
	"docker": "docker:dind, the Docker engine; the docker stand-in replaces it",
}

// glCommand is a command a job's script may run that cannot run here; a
// stand-in on PATH records its calls.
type glCommand struct {
	why     string
	standIn func(r *rig, args []string) error
}

// glCommands are those commands, by name, or name and first argument. A
// script that calls anything else runs it for real.
var glCommands = map[string]glCommand{
	"docker":  {why: "needs a Docker engine; stand-in: build records the tags, push pushes a random image to the test registry", standIn: dockerStandIn},
	"kubectl": {why: "needs a Kubernetes cluster"},
	"go test": {why: "the app's own tests"},
	"go install": {why: "fetches ferry from the module proxy and builds it; stand-in: puts the ferry built the Dockerfile's way where go install would", standIn: func(_ *rig, args []string) error {
		if len(args) != 2 || !regexp.MustCompile(`^github\.com/ferrycd/ferry/cmd/ferry@(latest|v\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?)$`).MatchString(args[1]) {
			return fmt.Errorf("go %s: the stand-in installs github.com/ferrycd/ferry/cmd/ferry@VERSION only", strings.Join(args, " "))
		}
		return nil
	}},
}

// glFakes writes the stand-ins for glCommands into a directory for PATH;
// each appends its argv, NUL-separated and ended by \x01, to record.
func glFakes(t *testing.T, record string) string {
	t.Helper()
	dir := t.TempDir()
	names := map[string]bool{}
	for k := range glCommands {
		names[strings.Fields(k)[0]] = true
	}
	for name := range names {
		script := "#!/bin/sh\n# A stand-in for " + name + ": it records how it was called.\n" +
			"{ printf '%s\\0' " + name + " \"$@\"; printf '\\001'; } >>'" + record + "'\n"
		switch name {
		case "docker":
			// docker login --password-stdin reads the password, so the
			// echo that pipes it in is not cut off.
			script += `case " $* " in *" --password-stdin "*) cat >/dev/null ;; esac` + "\n"
		case "go":
			script += `case "$1" in
install) bin="${GOBIN:-${GOPATH:-$HOME/go}/bin}"; mkdir -p "$bin" && cp '` + ferryBin + `' "$bin/ferry" ;;
test) ;;
*) echo "go stand-in: go $* is not modelled" >&2; exit 1 ;;
esac
`
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// readCalls reads what the stand-ins recorded.
func readCalls(t *testing.T, record string) [][]string {
	t.Helper()
	data, err := os.ReadFile(record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, c := range strings.Split(string(data), "\x01") {
		if c == "" {
			continue
		}
		out = append(out, strings.Split(strings.TrimSuffix(c, "\x00"), "\x00"))
	}
	return out
}

// glHost is the GitLab instance the pipelines run on: its git server is
// the rig's, its API the testforge stand-in over the same repositories,
// its registry the rig's.
type glHost struct {
	r      *rig
	api    *testforge.GitLab
	nextID int
}

func newGLHost(t *testing.T, r *rig) *glHost {
	t.Helper()
	api := testforge.NewGitLab(t, r.root)
	// One project access token serves git and the API, as on GitLab.
	api.Token = r.token
	return &glHost{r: r, api: api, nextID: 4100}
}

func (h *glHost) id() string {
	h.nextID++
	return strconv.Itoa(h.nextID)
}

// glUser is who pushed, ran the pipeline or pressed play.
type glUser struct{ Login, Name, Email string }

// glProjectVar is a CI/CD variable of the project's settings.
type glProjectVar struct {
	Key, Value string
	// Scope is its environment scope: "" or "*" for every job, else
	// the jobs whose environment: is named so.
	Scope string
}

// glEvent is what starts a pipeline.
type glEvent struct {
	Source  string // push (the default) or web
	Project string // group/name
	Branch  string
	SHA     string
	User    glUser
	Vars    []glProjectVar
}

// glJobRun is one job of a pipeline.
type glJobRun struct {
	Name   string
	Status string // success, failed, skipped, manual, or created (waiting)
	Res    execResult
	Calls  [][]string // what the stand-ins were called with, in order
	Env    map[string]string
}

// glPipeline is a pipeline GitLab made for an event: none (Status "")
// when workflow: rules say so.
type glPipeline struct {
	file   string
	ev     glEvent
	cfg    *glConfig
	ID     string
	Status string // success, failed or blocked
	Jobs   map[string]*glJobRun
	order  []string
	when   map[string]string // the job's when:, rules applied
	allow  map[string]bool   // its allow_failure
	needs  map[string][]string
}

func (p *glPipeline) log() string {
	var b strings.Builder
	for _, n := range p.order {
		j := p.Jobs[n]
		fmt.Fprintf(&b, "job %s: %s\n", n, j.Status)
		if j.Status == "failed" {
			b.WriteString(j.Res.String())
		}
	}
	return b.String()
}

// pipelineVars are the predefined variables of a pipeline, those rules:
// see too.
func (h *glHost) pipelineVars(ev glEvent, id string) map[string]string {
	server := h.r.server
	project := server + "/" + ev.Project
	v := map[string]string{
		"CI": "true", "GITLAB_CI": "true",
		"CI_SERVER_URL": server, "CI_SERVER_HOST": strings.TrimPrefix(server, "http://"),
		"CI_API_V4_URL":      h.api.URL,
		"CI_PROJECT_PATH":    ev.Project,
		"CI_PROJECT_NAME":    ev.Project[strings.LastIndexByte(ev.Project, '/')+1:],
		"CI_PROJECT_URL":     project,
		"CI_DEFAULT_BRANCH":  "main",
		"CI_COMMIT_SHA":      ev.SHA,
		"CI_COMMIT_BRANCH":   ev.Branch,
		"CI_COMMIT_REF_NAME": ev.Branch,
		"CI_PIPELINE_ID":     id,
		"CI_PIPELINE_URL":    project + "/-/pipelines/" + id,
		"CI_PIPELINE_SOURCE": ev.Source,
		"CI_REGISTRY":        h.r.reg.Host,
		"CI_REGISTRY_IMAGE":  h.r.reg.Host + "/" + ev.Project,
		"GITLAB_USER_LOGIN":  ev.User.Login, "GITLAB_USER_NAME": ev.User.Name, "GITLAB_USER_EMAIL": ev.User.Email,
	}
	if len(ev.SHA) >= 8 {
		v["CI_COMMIT_SHORT_SHA"] = ev.SHA[:8]
	}
	return v
}

// vars are a job's variables (name "" for the pipeline's), lowest
// precedence first: predefined, the file's, the job's, the project's (its
// environment's too, if scoped to it), and those typed when playing a
// manual job; the file's expanded against all of them.
func (h *glHost) vars(t *testing.T, p *glPipeline, name string, pre map[string]string, extra map[string]string) map[string]string {
	t.Helper()
	what := "the pipeline"
	if name != "" {
		what = "job " + name
	}
	raw := map[string]string{}
	expand := map[string]bool{}
	for k, v := range pre {
		raw[k] = v
	}
	layers := []map[string]glVar{p.cfg.Variables}
	job := p.cfg.Jobs[name]
	if job != nil {
		layers = append(layers, job.Variables)
	}
	for _, vs := range layers {
		for k, v := range vs {
			raw[k], expand[k] = v.Value, v.Expand == nil || *v.Expand
		}
	}
	resolve := func() map[string]string {
		out := map[string]string{}
		var get func(k string, depth int) (string, error)
		get = func(k string, depth int) (string, error) {
			v, ok := raw[k]
			if !ok {
				return "", fmt.Errorf("$%s: no variable has that name", k)
			}
			if !expand[k] {
				return v, nil
			}
			if depth > len(raw) {
				return "", fmt.Errorf("variable %s refers to itself", k)
			}
			return glExpand(v, func(n string) (string, error) { return get(n, depth+1) })
		}
		for k := range raw {
			v, err := get(k, 0)
			if err != nil {
				t.Fatalf("%s: %s: variable %s: %v", p.file, what, k, err)
			}
			out[k] = v
		}
		return out
	}
	for _, pv := range p.ev.Vars {
		if pv.Scope == "" || pv.Scope == "*" {
			raw[pv.Key], expand[pv.Key] = pv.Value, false
		}
	}
	// The environment's name decides which scoped variables the job gets.
	if job != nil && job.Environment != nil {
		env, err := glExpandWith(job.Environment.Name, resolve())
		if err != nil {
			t.Fatalf("%s: %s: environment: %v", p.file, what, err)
		}
		raw["CI_ENVIRONMENT_NAME"] = env
		for _, pv := range p.ev.Vars {
			if pv.Scope == env {
				raw[pv.Key], expand[pv.Key] = pv.Value, false
			}
		}
	}
	for k, v := range extra {
		raw[k], expand[k] = v, false
	}
	return resolve()
}

// glExpandWith expands s with vars, strictly.
func glExpandWith(s string, vars map[string]string) (string, error) {
	return glExpand(s, func(n string) (string, error) {
		if v, ok := vars[n]; ok {
			return v, nil
		}
		return "", fmt.Errorf("$%s: no variable has that name", n)
	})
}

// runPipeline makes and runs the pipeline of file (relative to the
// repository root) for ev, as GitLab would: no pipeline if the workflow
// rules say so; then each job the rules keep, stage by stage and as
// needs: allow, up to the manual ones.
func (h *glHost) runPipeline(t *testing.T, file string, ev glEvent) *glPipeline {
	t.Helper()
	if ev.Source == "" {
		ev.Source = "push"
	}
	cfg := loadGitLab(t, file)
	p := &glPipeline{file: file, ev: ev, cfg: cfg, ID: h.id(), Jobs: map[string]*glJobRun{},
		when: map[string]string{}, allow: map[string]bool{}, needs: map[string][]string{}}
	pre := h.pipelineVars(ev, p.ID)
	globals := h.vars(t, p, "", pre, nil)
	if cfg.Workflow != nil {
		if r := h.rules(t, file, "workflow", cfg.Workflow.Rules, globals); r == nil || r.When == "never" {
			t.Logf("%s: no pipeline for a %s to %s (workflow: rules)", file, ev.Source, ev.Branch)
			return p
		}
	}
	stage := map[string]int{}
	for i, s := range cfg.Stages {
		stage[s] = i
	}
	var names []string
	for name, job := range cfg.Jobs {
		if job.Stage == "" {
			job.Stage = "test"
		}
		if _, ok := stage[job.Stage]; !ok {
			t.Fatalf("%s: job %s: stage %s is not in stages: %v", file, name, job.Stage, cfg.Stages)
		}
		when, allow := job.When, job.AllowFailure
		if len(job.Rules) > 0 {
			if job.When != "" {
				t.Fatalf("%s: job %s: when: beside rules: is not modelled; put it in the rule", file, name)
			}
			r := h.rules(t, file, "job "+name, job.Rules, h.vars(t, p, name, pre, nil))
			if r == nil || r.When == "never" {
				continue
			}
			when = r.When
			if r.AllowFailure != nil {
				allow = r.AllowFailure
			}
		}
		switch when {
		case "":
			when = "on_success"
		case "on_success", "manual":
		default:
			t.Fatalf("%s: job %s: when: %s is not modelled", file, name, when)
		}
		p.when[name] = when
		// A manual job may fail (or never run) without failing the
		// pipeline, unless rules: made it manual, as GitLab has it.
		p.allow[name] = when == "manual" && len(job.Rules) == 0
		if allow != nil {
			p.allow[name] = *allow
		}
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		if sa, sb := stage[cfg.Jobs[a].Stage], stage[cfg.Jobs[b].Stage]; sa != sb {
			return sa < sb
		}
		return a < b
	})
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	for _, n := range names {
		job := cfg.Jobs[n]
		if job.Needs == nil {
			// Every job of the earlier stages.
			for _, m := range names {
				if stage[cfg.Jobs[m].Stage] < stage[job.Stage] {
					p.needs[n] = append(p.needs[n], m)
				}
			}
			continue
		}
		p.needs[n] = []string{}
		for _, need := range *job.Needs {
			switch {
			case in[need.Job]:
				if stage[cfg.Jobs[need.Job].Stage] > stage[job.Stage] {
					t.Fatalf("%s: job %s needs %s, of a later stage", file, n, need.Job)
				}
				p.needs[n] = append(p.needs[n], need.Job)
			case need.Optional:
			default:
				// GitLab refuses to create the pipeline.
				t.Fatalf("%s: job %s needs %s, which is not in the pipeline for a %s to %s", file, n, need.Job, ev.Source, ev.Branch)
			}
		}
	}
	p.order = depOrder(t, file, names, func(n string) []string { return p.needs[n] })
	for _, n := range p.order {
		j := &glJobRun{Name: n}
		p.Jobs[n] = j
		switch {
		case p.when[n] == "manual":
			j.Status = "manual"
		case !p.ready(n, &j.Status):
		default:
			h.runJob(t, p, j, ev.User, nil)
		}
	}
	p.settle()
	return p
}

// ready says whether job n may start; if not, it sets why to skipped (a
// job it needs failed) or created (it waits for a manual one).
func (p *glPipeline) ready(n string, why *string) bool {
	explicit := p.cfg.Jobs[n].Needs != nil
	for _, d := range p.needs[n] {
		switch dj := p.Jobs[d]; dj.Status {
		case "success":
		case "failed":
			if !p.allow[d] {
				*why = "skipped"
				return false
			}
		case "manual":
			if explicit || !p.allow[d] {
				*why = "created"
				return false
			}
		case "created":
			*why = "created"
			return false
		default:
			*why = "skipped"
			return false
		}
	}
	return true
}

// settle sets the pipeline's status from its jobs'.
func (p *glPipeline) settle() {
	p.Status = "success"
	for _, n := range p.order {
		switch j := p.Jobs[n]; {
		case j.Status == "failed" && !p.allow[n]:
			p.Status = "failed"
			return
		case j.Status == "created", j.Status == "manual" && !p.allow[n]:
			p.Status = "blocked"
		}
	}
}

// rules returns the first rule that matches, or nil if none does.
func (h *glHost) rules(t *testing.T, file, what string, rules []glRule, vars map[string]string) *glRule {
	t.Helper()
	for i, r := range rules {
		if r.If != "" {
			ok, err := glIf(r.If, vars)
			if err != nil {
				t.Fatalf("%s: %s: %v", file, what, err)
			}
			h.r.saw(file, r.If)
			if !ok {
				continue
			}
		}
		return &rules[i]
	}
	return nil
}

// play runs a manual job of p, as user pressing its play button with
// these variables, and returns it.
func (h *glHost) play(t *testing.T, p *glPipeline, name string, user glUser, vars map[string]string) *glJobRun {
	t.Helper()
	j := p.Jobs[name]
	if j == nil || j.Status != "manual" {
		t.Fatalf("%s: pipeline %s has no manual job %s to play", p.file, p.ID, name)
	}
	var why string
	for _, d := range p.needs[name] {
		if st := p.Jobs[d].Status; st != "success" && !(st == "failed" && p.allow[d]) {
			why = d + " is " + st
		}
	}
	if why != "" {
		t.Fatalf("%s: job %s cannot be played: %s", p.file, name, why)
	}
	h.runJob(t, p, j, user, vars)
	p.settle()
	return j
}

// runJob runs job j of p as the runner does: its image, its variables,
// before_script: and script: in one shell, with the stand-ins on PATH;
// then what stands in for the stand-ins' calls.
func (h *glHost) runJob(t *testing.T, p *glPipeline, j *glJobRun, user glUser, extra map[string]string) {
	t.Helper()
	job := p.cfg.Jobs[j.Name]
	if job.Image == nil {
		t.Fatalf("%s: job %s names no image: (the runner's default is anyone's guess)", p.file, j.Name)
	}
	if isFerryImage(job.Image.Name) {
		t.Fatalf("%s: job %s runs in ferry's image, which has no shell for script: lines", p.file, j.Name)
	}
	kind, ok := glImages[imageRepo(job.Image.Name)]
	if !ok {
		t.Fatalf("%s: job %s runs in %s, an image this test does not know; add it to glImages", p.file, j.Name, job.Image.Name)
	}
	if kind.entrypoint != "" && !slices.Equal(job.Image.Entrypoint, []string{""}) {
		t.Fatalf("%s: job %s: %s's entrypoint is %s, not a shell: set entrypoint: [\"\"]", p.file, j.Name, job.Image.Name, kind.entrypoint)
	}
	for _, s := range job.Services {
		why, ok := glServices[imageRepo(s.Name)]
		if !ok {
			t.Fatalf("%s: job %s: service %s is one this test does not know; add it to glServices", p.file, j.Name, s.Name)
		}
		h.r.skip(p.file, j.Name+": service "+s.Name, "service", why)
	}

	tmp := t.TempDir()
	pre := h.pipelineVars(p.ev, p.ID)
	token := "glcbt-" + h.id() + "-job-token"
	jobID := h.id()
	for k, v := range map[string]string{
		"CI_JOB_ID": jobID, "CI_JOB_NAME": j.Name, "CI_JOB_STAGE": job.Stage,
		"CI_JOB_URL": pre["CI_PROJECT_URL"] + "/-/jobs/" + jobID, "CI_JOB_TOKEN": token,
		"CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": token,
		"CI_PROJECT_DIR": filepath.Join(tmp, "project"), "CI_BUILDS_DIR": tmp,
		"GITLAB_USER_LOGIN": user.Login, "GITLAB_USER_NAME": user.Name, "GITLAB_USER_EMAIL": user.Email,
	} {
		pre[k] = v
	}
	vars := h.vars(t, p, j.Name, pre, extra)
	if _, err := glExpandWith(job.ResourceGroup, vars); err != nil {
		t.Fatalf("%s: job %s: resource_group: %v", p.file, j.Name, err)
	}
	if vars["GIT_STRATEGY"] != "none" {
		h.r.skip(p.file, j.Name+": checkout", "checkout", "the runner clones the project; nothing here reads the clone (docker, kubectl and go are stand-ins)")
	}

	record := filepath.Join(tmp, "calls")
	env := map[string]string{}
	for k, v := range vars {
		env[k] = v
	}
	env["HOME"] = filepath.Join(tmp, "home")
	path := glFakes(t, record) + ":/usr/local/bin:/usr/bin:/bin"
	if kind.env != nil {
		for k, v := range kind.env(tmp) {
			if k == "PATH" {
				path = v + ":" + path
				continue
			}
			env[k] = v
		}
	}
	env["PATH"] = path
	for _, d := range []string{env["HOME"], vars["CI_PROJECT_DIR"]} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The job's registry credentials work while it runs, and are the only
	// ones the registry takes then.
	done := h.r.requireRegistryCreds("gitlab-ci-token", token)
	script := strings.Join(append(slices.Clone(job.BeforeScript), job.Script...), "\n") + "\n"
	// -u, stricter than GitLab's -eo pipefail: a misspelt variable fails.
	j.Res = runScript(t, script, vars["CI_PROJECT_DIR"], env, "-euo", "pipefail")
	done()
	j.Env, j.Calls = vars, readCalls(t, record)
	h.r.log(p.file, "pipeline "+p.ID+": job "+j.Name, j.Res)
	t.Logf("%s: pipeline %s: job %s:\n%s%s", p.file, p.ID, j.Name, j.Res.Stdout, j.Res.Stderr)
	for _, call := range j.Calls {
		c, ok := glCommands[strings.Join(call[:min(2, len(call))], " ")]
		if !ok {
			c, ok = glCommands[call[0]]
		}
		if !ok {
			t.Fatalf("%s: job %s: %s: no stand-in says what to do", p.file, j.Name, strings.Join(call, " "))
		}
		h.r.skip(p.file, j.Name+": "+strings.Join(call, " "), call[0], c.why)
		if c.standIn != nil {
			if err := c.standIn(h.r, call[1:]); err != nil {
				t.Fatalf("%s: job %s: stand-in: %v", p.file, j.Name, err)
			}
		}
	}
	j.Status = "success"
	if j.Res.Code != 0 {
		j.Status = "failed"
	}
}

// calls returns the calls of a job to command.
func (j *glJobRun) calls(command string) []string {
	var out []string
	for _, c := range j.Calls {
		if c[0] == command {
			out = append(out, strings.Join(c, " "))
		}
	}
	return out
}
