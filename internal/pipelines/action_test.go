package pipelines

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/testenv"
)

// actionInputs says how each action.yml input reaches ferry: as the
// environment variable ferry reads for the flag, or in argv. Every input
// must be here, and nothing else.
var actionInputs = []struct {
	input   string
	command string // a command that has the flag
	flag    string // ferry's flag; "" when the input is not a flag
	env     string // the variable the action sets; "" when it goes in argv
	value   string // what the test sets it to
}{
	{input: "command", value: "history"},
	{input: "repo", command: "deploy", flag: "--repo", env: "FERRY_REPO", value: "https://git.example/acme/env.git"},
	{input: "git-token", command: "deploy", flag: "--git-token", env: "FERRY_GIT_TOKEN", value: "tok-1234"},
	{input: "env", command: "deploy", flag: "--env", env: "FERRY_ENV", value: "candidate"},
	{input: "image", command: "deploy", flag: "--image", value: "  reg.example/a:1\n\nreg.example/b@sha256:0123  \n"},
	{input: "path", command: "deploy", flag: "--path", env: "FERRY_PATH", value: "apps/hello world"},
	{input: "app", command: "deploy", flag: "--app", env: "FERRY_APP", value: "hello"},
	{input: "from", command: "promote", flag: "--from", env: "FERRY_FROM", value: "candidate"},
	{input: "to", command: "promote", flag: "--to", env: "FERRY_TO", value: "production"},
	{input: "commit", command: "promote", flag: "--commit", env: "FERRY_COMMIT", value: "0123abc"},
	{input: "steps", command: "rollback", flag: "--steps", env: "FERRY_STEPS", value: "2"},
	// rollback's --to, named apart from promote's --to.
	{input: "rollback-to", command: "rollback", flag: "--to", env: "FERRY_ROLLBACK_TO", value: "4567def"},
	{input: "dry-run", command: "deploy", flag: "--dry-run", env: "FERRY_DRY_RUN", value: "true"},
	{input: "allow-downgrade", command: "deploy", flag: "--allow-downgrade", env: "FERRY_ALLOW_DOWNGRADE", value: "true"},
	{input: "override-rollback", command: "promote", flag: "--override-rollback", env: "FERRY_OVERRIDE_ROLLBACK", value: "true"},
	{input: "author", command: "deploy", flag: "--author", env: "FERRY_AUTHOR", value: "Octo Cat <octo@example.com>"},
	{input: "notify-webhook", command: "deploy", flag: "--notify-webhook", env: "FERRY_NOTIFY_WEBHOOK", value: "https://hooks.example/ferry"},
	{input: "notify-slack", command: "deploy", flag: "--notify-slack", env: "FERRY_NOTIFY_SLACK", value: "https://hooks.slack.example/T/B/x"},
	{input: "extra-args", value: "--timeout=10m   -v\n--attempts 3 /bi?"}, // /bi? would glob to /bin
	// Not ferry's: they choose how ferry is installed (TestActionInstallStep,
	// TestActionInstallVersion, TestActionInstallInput); ferry sees neither.
	{input: "install", value: "false"},
	{input: "version", value: "v1.2.3"},
}

// fakeFerry writes a ferry that records its argv and environment and writes
// every output the action declares, and returns its directory.
func fakeFerry(t *testing.T, a ghAction) string {
	t.Helper()
	dir := t.TempDir()
	var outs []string
	for name := range a.Outputs {
		outs = append(outs, name)
	}
	sort.Strings(outs)
	script := "#!/bin/sh\n# A stand-in for ferry: it records how it was called.\n" +
		`for a in "$@"; do printf '%s\0' "$a"; done >"$FAKE_FERRY_RECORD.argv"` + "\n" +
		`env -0 >"$FAKE_FERRY_RECORD.env"` + "\n"
	for _, o := range outs {
		script += fmt.Sprintf("echo %s=fake-%s >>\"$GITHUB_OUTPUT\"\n", o, o)
	}
	if err := os.WriteFile(filepath.Join(dir, "ferry"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ferryCallRecord is how the fake ferry was called.
type ferryCallRecord struct {
	argv []string
	env  map[string]string
}

func readRecord(t *testing.T, prefix string) ferryCallRecord {
	t.Helper()
	argv, err := os.ReadFile(prefix + ".argv")
	if err != nil {
		t.Fatalf("ferry was not run: %v", err)
	}
	env, err := os.ReadFile(prefix + ".env")
	if err != nil {
		t.Fatal(err)
	}
	rec := ferryCallRecord{env: map[string]string{}}
	for _, a := range bytes.Split(argv, []byte{0}) {
		rec.argv = append(rec.argv, string(a))
	}
	rec.argv = rec.argv[:len(rec.argv)-1] // after the last NUL
	for _, kv := range bytes.Split(env, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			rec.env[k] = v
		}
	}
	return rec
}

// actionEvent is a push to an app repo, for running the action directly.
func actionEvent() ghEvent {
	return ghEvent{Name: "push", Ref: "main", SHA: strings.Repeat("e5", 20), Repo: "acme/hello", Server: "https://github.com",
		RunID: "4242", Actor: "octocat", ActorID: "1", Token: "ghs_the-workflow-token"}
}

// runAction runs action.yml as a `uses:` step with these inputs and step
// env, with pathDir first on PATH.
func (r *rig) runAction(t *testing.T, with, env map[string]string, pathDir string) (map[string]string, ghStepRun, bool) {
	t.Helper()
	ev := actionEvent()
	j := &ghJobRun{t: t, r: r, file: "(a workflow)", in: "(a workflow)", job: "job", ev: ev, github: githubContext(ev),
		env: env, steps: map[string]any{}, pathDir: pathDir, inputs: map[string]any{}, run: &ghRun{}}
	rec := ghStepRun{Step: "ferry"}
	out, ok := j.runAction(&rec, with, env, "v1")
	return out, rec, ok
}

// Each input reaches ferry as the flag it names, through the variable ferry
// reads for that flag or in argv, and nothing else does; each output the
// action declares is the ferry step's output of the same name.
func TestActionInputsReachFerry(t *testing.T) {
	a := loadAction(t)
	var declared, listed []string
	for name := range a.Inputs {
		declared = append(declared, name)
	}
	for _, in := range actionInputs {
		listed = append(listed, in.input)
	}
	sort.Strings(declared)
	sort.Strings(listed)
	if diff := cmp.Diff(listed, declared); diff != "" {
		t.Fatalf("action.yml's inputs and actionInputs differ (-actionInputs +action.yml); say how each new input reaches ferry:\n%s", diff)
	}

	r := newRig(t)
	fake := fakeFerry(t, a)
	// What ferry sees when no input is given but command: the defaults.
	// git-token's, the workflow's token, is only the job's ambient
	// GITHUB_TOKEN, which a GitHub App takes the place of.
	defaults := map[string]string{
		"GITHUB_TOKEN":            "ghs_the-workflow-token", // ${{ github.token }}
		"FERRY_DRY_RUN":           "false",
		"FERRY_ALLOW_DOWNGRADE":   "false",
		"FERRY_OVERRIDE_ROLLBACK": "false",
	}
	helps := map[string]string{}
	for _, tc := range actionInputs {
		t.Run(tc.input, func(t *testing.T) {
			record := filepath.Join(t.TempDir(), "call")
			command := tc.command
			if command == "" {
				command = "deploy"
			}
			with := map[string]string{"command": command, tc.input: tc.value}
			outputs, step, ok := r.runAction(t, with, map[string]string{"FAKE_FERRY_RECORD": record}, fake)
			if !ok {
				t.Fatalf("the action failed:\n%s", step.Res)
			}
			call := readRecord(t, record)

			wantArgv := []string{with["command"]}
			wantEnv := map[string]string{}
			for k, v := range defaults {
				wantEnv[k] = v
			}
			switch tc.input {
			case "image":
				wantArgv = append(wantArgv, "--image", "reg.example/a:1", "--image", "reg.example/b@sha256:0123")
			case "extra-args":
				wantArgv = append(wantArgv, "--timeout=10m", "-v", "--attempts", "3", "/bi?")
			default:
				if tc.env != "" {
					wantEnv[tc.env] = tc.value
				}
			}
			if diff := cmp.Diff(wantArgv, call.argv); diff != "" {
				t.Errorf("ferry's argv (-want +got):\n%s", diff)
			}
			gotEnv := map[string]string{}
			for k, v := range call.env {
				if strings.HasPrefix(k, "FERRY_") || k == "GITHUB_TOKEN" {
					gotEnv[k] = v
				}
			}
			if diff := cmp.Diff(wantEnv, gotEnv); diff != "" {
				t.Errorf("ferry's FERRY_* and GITHUB_TOKEN environment (-want +got):\n%s", diff)
			}
			for name := range a.Outputs {
				if outputs[name] != "fake-"+name {
					t.Errorf("action output %s = %q, want ferry's output %s (%q)", name, outputs[name], name, "fake-"+name)
				}
			}

			// The variable is the one ferry reads for the flag it names.
			if tc.flag == "" {
				return
			}
			if tc.flag != "--"+tc.input && tc.input != "rollback-to" {
				t.Errorf("input %s sets %s: an input is named after its flag", tc.input, tc.flag)
			}
			if helps[tc.command] == "" {
				res := runCmd(t, exec.Command(ferryBin, tc.command, "--help"))
				helps[tc.command] = res.Stdout
			}
			block, ok := flagHelp(helps[tc.command], tc.flag)
			if !ok {
				t.Fatalf("ferry %s has no %s flag:\n%s", tc.command, tc.flag, helps[tc.command])
			}
			// The help ends each flag with ($FERRY_X) or ($FERRY_X, $OTHER).
			if tc.env != "" && !regexp.MustCompile(`\(\$`+tc.env+`[,)]`).MatchString(block) {
				t.Errorf("ferry %s %s does not read $%s:\n%s", tc.command, tc.flag, tc.env, block)
			}
		})
	}
	if missed := r.unevaluated("action.yml"); len(missed) > 0 {
		t.Errorf("action.yml: expressions never evaluated: %q", missed)
	}
}

// flagHelp returns the help text of one flag from `ferry CMD --help`.
func flagHelp(help, flag string) (string, bool) {
	start := regexp.MustCompile(`^\s+(-\w, )?--[a-z]`)
	var block []string
	in := false
	for _, line := range strings.Split(help, "\n") {
		if start.MatchString(line) {
			f := strings.Fields(line)
			name := f[0]
			if strings.HasSuffix(name, ",") && len(f) > 1 {
				name = f[1]
			}
			name, _, _ = strings.Cut(name, "=")
			in = name == flag
		}
		if in {
			block = append(block, strings.TrimSpace(line))
		}
	}
	return strings.Join(block, " "), len(block) > 0
}

// Inputs are data, never code: each reaches ferry byte for byte, nothing
// in them runs, and a bad command is reported without echoing raw newlines
// into workflow commands.
func TestActionHostileInputs(t *testing.T) {
	a := loadAction(t)
	r := newRig(t)
	fake := fakeFerry(t, a)
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	hostile := "$(touch " + marker + ")`touch " + marker + "`;touch " + marker + " \"'\\\n::set-output name=changed::pwned\n${{ github.token }}"
	with := map[string]string{"command": "deploy", "extra-args": "--dry-run"}
	for _, in := range actionInputs {
		if in.env != "" && in.input != "dry-run" && in.input != "allow-downgrade" && in.input != "override-rollback" {
			with[in.input] = hostile
		}
	}
	record := filepath.Join(dir, "call")
	_, step, ok := r.runAction(t, with, map[string]string{"FAKE_FERRY_RECORD": record}, fake)
	if !ok {
		t.Fatalf("the action failed:\n%s", step.Res)
	}
	call := readRecord(t, record)
	for _, in := range actionInputs {
		if _, set := with[in.input]; set && in.env != "" && call.env[in.env] != hostile {
			t.Errorf("input %s reached ferry as %q, want it verbatim", in.input, call.env[in.env])
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("an input was executed as shell code")
	}

	_, step, ok = r.runAction(t, map[string]string{"command": "deploy\n::set-output name=changed::pwned"}, nil, fake)
	if ok || step.Res.Code != 2 {
		t.Fatalf("a bad command: want exit 2, got\n%s", step.Res)
	}
	for _, line := range strings.Split(step.Res.Stdout, "\n") {
		if strings.HasPrefix(line, "::") && !strings.HasPrefix(line, "::error title=ferry::") {
			t.Errorf("the input injected a workflow command: %q", line)
		}
	}
}

// Every output the action declares is written by ferry itself.
func TestActionOutputsWritten(t *testing.T) {
	a := loadAction(t)
	r := newRig(t)
	ref := r.reg.Host + "/team/hello:v1"
	r.build(ref)
	digest, err := r.push(ref)
	if err != nil {
		t.Fatal(err)
	}
	outputs, step, ok := r.runAction(t, map[string]string{
		"command": "deploy", "repo": r.url, "git-token": r.token, "env": "candidate", "path": "apps/hello", "image": ref,
	}, nil, ferryDir)
	if !ok {
		t.Fatalf("deploy through the action failed:\n%s", step.Res)
	}
	if strings.TrimSpace(step.RawOutput) == "" {
		t.Fatalf("ferry wrote nothing to $GITHUB_OUTPUT, so the action's outputs are empty:\n%s", step.Res)
	}
	written, err := parseOutputs(step.RawOutput)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range a.Outputs {
		m := regexp.MustCompile(`^\$\{\{ steps\.ferry\.outputs\.([a-z-]+) \}\}$`).FindStringSubmatch(o.Value)
		if m == nil {
			t.Errorf("output %s: value %q, want ${{ steps.ferry.outputs.NAME }}", name, o.Value)
			continue
		}
		if _, ok := written[m[1]]; !ok {
			t.Errorf("output %s: ferry did not write %s to $GITHUB_OUTPUT:\n%s", name, m[1], step.RawOutput)
		}
	}
	if outputs["changed"] != "true" || outputs["result"] != "success" || outputs["commit"] != r.repo.Tip("candidate") || outputs["digest"] != digest {
		t.Errorf("outputs %v, want changed true, result success, commit %s, digest %s", outputs, r.repo.Tip("candidate"), digest)
	}
	if !strings.Contains(outputs["images"], ref+"@"+digest) || !strings.Contains(outputs["digests"], digest) {
		t.Errorf("outputs images %q, digests %q: want %s@%s", outputs["images"], outputs["digests"], ref, digest)
	}
}

// action.yml's shape: what GitHub requires of a composite action, kebab-case
// inputs, and no expression pasted into a script.
func TestActionShape(t *testing.T) {
	a := loadAction(t)
	if a.Name == "" || a.Description == "" || a.Runs.Using != "composite" || len(a.Runs.Steps) == 0 {
		t.Fatalf("action.yml needs name, description and runs.using: composite with steps")
	}
	kebab := regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	for name, in := range a.Inputs {
		if !kebab.MatchString(name) {
			t.Errorf("input %q is not kebab-case", name)
		}
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
	}
	ids := map[string]bool{}
	for _, st := range a.Runs.Steps {
		ids[st.ID] = st.ID != ""
		if st.Run == "" {
			continue
		}
		if st.Shell != "bash" {
			t.Errorf("step %q: shell %q; a composite run step needs shell: bash", st.label(), st.Shell)
		}
		if strings.Contains(st.Run, "${{") {
			t.Errorf("step %q pastes an expression into its script; pass it through env:", st.label())
		}
		for name := range st.Env {
			// GITHUB_TOKEN: ferry reads it too, as the job's own token.
			if !strings.HasPrefix(name, "FERRY_") && !strings.HasPrefix(name, "INPUT_") && name != "ACTION_REF" && name != "GITHUB_TOKEN" {
				t.Errorf("step %q: env %s: name it FERRY_* (ferry reads it) or INPUT_*", st.label(), name)
			}
		}
	}
	for name, o := range a.Outputs {
		m := regexp.MustCompile(`^\$\{\{ steps\.([a-z-]+)\.outputs\.[a-z-]+ \}\}$`).FindStringSubmatch(o.Value)
		if o.Description == "" || m == nil || !ids[m[1]] {
			t.Errorf("output %s: want a description and value ${{ steps.<a step's id>.outputs.NAME }}, got %q", name, o.Value)
		}
	}
	// Every input is used.
	data, err := os.ReadFile(filepath.Join(repoRoot, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range a.Inputs {
		if !strings.Contains(string(data), "inputs."+name+" ") {
			t.Errorf("input %s is never used", name)
		}
	}
}

// The install step builds ferry from the action's own source, as a runner
// would after actions/setup-go, and puts it on the job's PATH.
func TestActionInstallStep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry; skipped with -short")
	}
	a := loadAction(t)
	i := slices.IndexFunc(a.Runs.Steps, func(s ghStep) bool { return s.Name == "Install ferry" })
	if i < 0 {
		t.Fatal(`action.yml has no step "Install ferry"`)
	}
	st := a.Runs.Steps[i]
	r := newRig(t)
	ev := actionEvent()
	j := &ghJobRun{t: t, r: r, file: "action.yml", in: "action.yml", job: "job", ev: ev, github: githubContext(ev),
		env: map[string]string{}, steps: map[string]any{}, pathDir: filepath.Dir(goTool(t)), inputs: map[string]any{}, run: &ghRun{}}
	env := j.evalMap(st.Env, map[string]any{
		"inputs": map[string]any{"version": ""},
		"github": map[string]any{"action_ref": "v1"},
	})
	env["GITHUB_ACTION_PATH"] = repoRoot
	env["GOFLAGS"] = os.Getenv("GOFLAGS")
	env["GOCACHE"] = goEnv(t, "GOCACHE")
	env["GOMODCACHE"] = goEnv(t, "GOMODCACHE")
	env["GOTOOLCHAIN"] = "local"
	// Capture the runner temp and GITHUB_PATH by reporting them.
	script := st.Run + "\necho \"bin=$RUNNER_TEMP/ferry-bin\" >>\"$GITHUB_OUTPUT\"\necho \"path=$(cat \"$GITHUB_PATH\")\" >>\"$GITHUB_OUTPUT\"\n"
	res, raw, _ := j.bash(script, env)
	if res.Code != 0 {
		t.Fatalf("install step:\n%s", res)
	}
	out, err := parseOutputs(raw)
	if err != nil {
		t.Fatal(err)
	}
	if out["path"] != out["bin"] {
		t.Errorf("install step added %q to GITHUB_PATH, want %q", out["path"], out["bin"])
	}
	if !strings.Contains(res.Stdout, "ferry v1 (commit") {
		t.Errorf("the installed ferry does not report the action's ref v1:\n%s", res.Stdout)
	}
}

// version: installs that ferry with go install from the module proxy, into
// the same directory, instead of building the action's source.
func TestActionInstallVersion(t *testing.T) {
	a := loadAction(t)
	i := slices.IndexFunc(a.Runs.Steps, func(s ghStep) bool { return s.Name == "Install ferry" })
	if i < 0 {
		t.Fatal(`action.yml has no step "Install ferry"`)
	}
	st := a.Runs.Steps[i]
	// A go that records how it was called and installs a ferry that says
	// where it came from.
	fakeGo := t.TempDir()
	record := filepath.Join(t.TempDir(), "go-call")
	script := "#!/bin/sh\n" +
		`printf '%s\n' "$*" "GOBIN=$GOBIN" >"$FAKE_GO_RECORD"` + "\n" +
		`printf '#!/bin/sh\necho "ferry from go install"\n' >"$GOBIN/ferry"` + "\n" +
		`chmod +x "$GOBIN/ferry"` + "\n"
	if err := os.WriteFile(filepath.Join(fakeGo, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	ev := actionEvent()
	j := &ghJobRun{t: t, r: r, file: "action.yml", in: "action.yml", job: "job", ev: ev, github: githubContext(ev),
		env: map[string]string{}, steps: map[string]any{}, pathDir: fakeGo, inputs: map[string]any{}, run: &ghRun{}}
	env := j.evalMap(st.Env, map[string]any{
		"inputs": map[string]any{"version": "v1.2.3"},
		"github": map[string]any{"action_ref": "v1"},
	})
	env["GITHUB_ACTION_PATH"] = repoRoot
	env["FAKE_GO_RECORD"] = record
	script = st.Run + "\necho \"bin=$RUNNER_TEMP/ferry-bin\" >>\"$GITHUB_OUTPUT\"\necho \"path=$(cat \"$GITHUB_PATH\")\" >>\"$GITHUB_OUTPUT\"\n"
	res, raw, _ := j.bash(script, env)
	if res.Code != 0 {
		t.Fatalf("install step:\n%s", res)
	}
	out, err := parseOutputs(raw)
	if err != nil {
		t.Fatal(err)
	}
	call, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the install step did not run go: %v\n%s", err, res)
	}
	want := "install github.com/ferrycd/ferry/cmd/ferry@v1.2.3\nGOBIN=" + out["bin"] + "\n"
	if string(call) != want {
		t.Errorf("the install step ran go as\n%s\nwant\n%s", call, want)
	}
	if out["path"] != out["bin"] {
		t.Errorf("install step added %q to GITHUB_PATH, want %q", out["path"], out["bin"])
	}
	if !strings.Contains(res.Stdout, "ferry from go install") {
		t.Errorf("the install step did not run the ferry go installed:\n%s", res.Stdout)
	}
}

// install: 'true' (the default) sets up Go and builds ferry; 'false' runs
// neither step and uses the ferry on PATH.
func TestActionInstallInput(t *testing.T) {
	a := loadAction(t)
	r := newRig(t)
	fake := fakeFerry(t, a)
	installSteps := func(with map[string]string) []string {
		t.Helper()
		r.mu.Lock()
		before := len(r.skipped)
		r.mu.Unlock()
		record := filepath.Join(t.TempDir(), "call")
		_, step, ok := r.runAction(t, with, map[string]string{"FAKE_FERRY_RECORD": record}, fake)
		if !ok {
			t.Fatalf("the action failed with %v:\n%s", with, step.Res)
		}
		readRecord(t, record) // ferry ran
		r.mu.Lock()
		defer r.mu.Unlock()
		var ran []string
		for _, s := range r.skipped[before:] {
			for _, name := range []string{"Set up Go", "Install ferry"} {
				if strings.HasPrefix(s, fmt.Sprintf("action.yml: %q ", name)) {
					ran = append(ran, name)
				}
			}
		}
		return ran
	}
	both := []string{"Set up Go", "Install ferry"}
	for _, tc := range []struct {
		with map[string]string
		want []string
	}{
		{map[string]string{"command": "history"}, both},
		{map[string]string{"command": "history", "install": "true"}, both},
		{map[string]string{"command": "history", "install": "false"}, nil},
	} {
		// A step that reaches the runner here is recorded as skipped: by its
		// uses: (setup-go) or by name (Install ferry, TestActionInstallStep).
		if diff := cmp.Diff(tc.want, installSteps(tc.with)); diff != "" {
			t.Errorf("with %v, the install steps that ran (-want +got):\n%s", tc.with, diff)
		}
	}
}

func goTool(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "go", "the install step builds ferry with it")
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// toolPath finds a linter on PATH or in GOPATH/bin, where .ci/run installs
// actionlint.
func toolPath(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join(goEnv(t, "GOPATH"), "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// actionlint checks the workflows (and with shellcheck on PATH, their
// scripts). action.yml is not a workflow; TestActionShape and
// TestShellcheckAction check it.
func TestActionlint(t *testing.T) {
	bin := toolPath(t, "actionlint")
	if bin == "" {
		testenv.NeedServer(t, "actionlint", "not on PATH or in GOPATH/bin; .ci/run installs it (go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)")
	}
	files := pipelineFiles(t, "github/*.yml")
	if len(files) == 0 {
		t.Fatal("no workflows under pipelines/github")
	}
	cmd := exec.Command(bin, append([]string{"-no-color"}, files...)...)
	cmd.Dir = repoRoot
	if res := runCmd(t, cmd); res.Code != 0 {
		t.Errorf("actionlint:\n%s%s", res.Stdout, res.Stderr)
	}
	if _, err := exec.LookPath("shellcheck"); err != nil {
		testenv.NeedServer(t, "shellcheck", "not on PATH, so actionlint did not check the run: scripts; .ci/run installs it (apt-get install shellcheck)")
	}
}

// shellcheck checks action.yml's scripts, which actionlint does not read.
func TestShellcheckAction(t *testing.T) {
	bin := toolPath(t, "shellcheck")
	if bin == "" {
		testenv.NeedServer(t, "shellcheck", "not on PATH or in GOPATH/bin; .ci/run installs it (apt-get install shellcheck)")
	}
	a := loadAction(t)
	for _, st := range a.Runs.Steps {
		if st.Run == "" {
			continue
		}
		f := filepath.Join(t.TempDir(), "step.sh")
		if err := os.WriteFile(f, []byte("#!/usr/bin/env bash\nset -eo pipefail\n"+st.Run), 0o644); err != nil {
			t.Fatal(err)
		}
		if res := runCmd(t, exec.Command(bin, "-s", "bash", f)); res.Code != 0 {
			t.Errorf("shellcheck, step %q:\n%s%s", st.label(), res.Stdout, res.Stderr)
		}
	}
}
