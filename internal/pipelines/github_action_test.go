package pipelines

// A GitHub Actions runner for the test: it reads a workflow, evaluates the
// expressions it uses (expr_test.go), and runs each job's steps: ferry's
// composite action (action.yml) with bash, run: steps that call ferry with
// bash, and every other kind through the tables ghUses and ghRunKinds,
// which say why it cannot run here and what stands in for it.

import (
	"strings"
	"testing"
)

// step runs one workflow step and says whether it succeeded.
func (j *ghJobRun) step(st ghStep) bool {
	t := j.t
	t.Helper()
	label := st.label()
	if strings.Contains(st.Run, "${{") {
		t.Fatalf("%s: step %q pastes an expression into its script; pass it through env:", j.file, label)
	}
	stepEnv := j.evalMap(st.Env, j.ctx(nil))
	ctx := j.ctx(nil)
	for k, v := range stepEnv {
		ctx["env"].(map[string]any)[k] = v
	}
	with := j.evalMap(st.With, ctx)
	cond, err := evalIf(st.If, ctx, j.seen)
	if err != nil {
		t.Fatalf("%s: step %q: if: %v", j.file, label, err)
	}
	rec := ghStepRun{Job: j.job, Step: label}
	defer func() { j.run.Steps = append(j.run.Steps, rec) }()
	setOutputs := func(out map[string]string) {
		rec.Outputs = out
		if st.ID != "" {
			j.steps[st.ID] = map[string]any{"outputs": lenient(out)}
		}
	}
	if !cond {
		t.Logf("%s: step %q skipped: if: %s is false", j.file, label, st.If)
		return true
	}

	switch {
	case isFerryAction(st.Uses):
		_, ref, _ := strings.Cut(st.Uses, "@")
		env := map[string]string{}
		for k, v := range j.env {
			env[k] = v
		}
		for k, v := range stepEnv {
			env[k] = v
		}
		out, ok := j.runAction(&rec, with, env, ref)
		setOutputs(out)
		return ok
	case st.Uses != "":
		action, _, _ := strings.Cut(st.Uses, "@")
		for _, u := range ghUses {
			if u.action != action {
				continue
			}
			j.r.skip(j.file, label, action, u.why)
			if u.standIn != nil {
				out, err := u.standIn(j, with)
				if err != nil {
					t.Fatalf("%s: step %q: stand-in: %v", j.file, label, err)
				}
				setOutputs(out)
			}
			return true
		}
		t.Fatalf("%s: step %q uses %s, which this test does not know; add it to ghUses with why it cannot run here", j.file, label, st.Uses)
	case ferryCall.MatchString(st.Run):
		env := map[string]string{}
		for k, v := range j.env {
			env[k] = v
		}
		for k, v := range stepEnv {
			env[k] = v
		}
		res, raw, sum := j.bash(st.Run, env)
		out, err := parseOutputs(raw)
		if err != nil {
			t.Fatalf("%s: step %q: %v", j.file, label, err)
		}
		rec.Ran, rec.Res, rec.RawOutput, rec.Summary = true, res, raw, sum
		setOutputs(out)
		t.Logf("%s: step %q:\n%s%s", j.file, label, res.Stdout, res.Stderr)
		return res.Code == 0
	case st.Run != "":
		kind := ""
		for _, line := range strings.Split(st.Run, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			why, ok := ghRunKinds[f[0]]
			if !ok {
				t.Fatalf("%s: step %q runs %s, which this test does not know; add it to ghRunKinds with why it cannot run here", j.file, label, f[0])
			}
			if kind == "" {
				kind = f[0]
				j.r.skip(j.file, label, "run: "+kind, why)
			}
		}
		return true
	}
	t.Fatalf("%s: step %q has neither uses: nor run:", j.file, label)
	return false
}

// loadAction reads action.yml.
func loadAction(t *testing.T) ghAction {
	t.Helper()
	var a ghAction
	readYAML(t, "action.yml", &a)
	return a
}

// runAction runs ferry's composite action as the runner does: inputs from
// with: and the defaults, then each step, then the outputs.
func (j *ghJobRun) runAction(rec *ghStepRun, with, env map[string]string, ref string) (map[string]string, bool) {
	t := j.t
	t.Helper()
	j.in = "action.yml"
	defer func() { j.in = j.file }()
	a := loadAction(t)
	github := map[string]any{}
	for k, v := range j.github {
		github[k] = v
	}
	github["action_path"] = repoRoot
	github["action_ref"] = ref
	base := map[string]any{"github": github, "runner": map[string]any{"os": "Linux", "temp": "/tmp"}}
	for k := range with {
		if _, ok := a.Inputs[k]; !ok {
			t.Fatalf("%s: step %q: action.yml has no input %q", j.file, rec.Step, k)
		}
	}
	inputs := map[string]any{}
	for name, in := range a.Inputs {
		v, ok := with[name]
		if !ok {
			var err error
			if v, err = interpolate(in.Default, base, j.seen); err != nil {
				t.Fatalf("action.yml: input %s: default: %v", name, err)
			}
		}
		if in.Required && v == "" {
			t.Fatalf("%s: step %q: input %s is required", j.file, rec.Step, name)
		}
		inputs[name] = v
	}
	steps := map[string]any{}
	envCtx := map[string]any{}
	for k, v := range env {
		envCtx[k] = v
	}
	ctx := map[string]any{"github": github, "inputs": inputs, "steps": steps, "env": envCtx, "runner": base["runner"]}
	if a.Runs.Using != "composite" {
		t.Fatalf("action.yml: runs.using %q, want composite", a.Runs.Using)
	}
	ok := true
	for _, st := range a.Runs.Steps {
		label := st.label()
		if strings.Contains(st.Run, "${{") {
			t.Fatalf("action.yml: step %q pastes an expression into its script; pass it through env:", label)
		}
		stepEnv := j.evalMap(st.Env, ctx)
		j.evalMap(st.With, ctx)
		cond, err := evalIf(st.If, ctx, j.seen)
		if err != nil {
			t.Fatalf("action.yml: step %q: if: %v", label, err)
		}
		if !ok || !cond {
			continue
		}
		if why, skip := ghSkipByName[label]; skip {
			j.r.skip("action.yml", label, "by name", why)
			continue
		}
		if st.Uses != "" {
			action, _, _ := strings.Cut(st.Uses, "@")
			known := false
			for _, u := range ghUses {
				if u.action == action && u.standIn == nil {
					j.r.skip("action.yml", label, action, u.why)
					known = true
				}
			}
			if !known {
				t.Fatalf("action.yml: step %q uses %s, which this test does not know", label, st.Uses)
			}
			continue
		}
		if st.Shell != "bash" {
			t.Fatalf("action.yml: step %q: shell %q, want bash", label, st.Shell)
		}
		runEnv := map[string]string{"GITHUB_ACTION_PATH": repoRoot}
		for k, v := range env {
			runEnv[k] = v
		}
		for k, v := range stepEnv {
			runEnv[k] = v
		}
		res, raw, sum := j.bash(st.Run, runEnv)
		out, err := parseOutputs(raw)
		if err != nil {
			t.Fatalf("action.yml: step %q: %v", label, err)
		}
		if st.ID != "" {
			steps[st.ID] = map[string]any{"outputs": lenient(out)}
		}
		rec.Ran, rec.Res, rec.RawOutput, rec.Summary = true, res, rec.RawOutput+raw, rec.Summary+sum
		t.Logf("%s: step %q: action.yml step %q:\n%s%s", j.file, rec.Step, label, res.Stdout, res.Stderr)
		ok = res.Code == 0
	}
	outputs := map[string]string{}
	for name, o := range a.Outputs {
		v, err := interpolate(o.Value, ctx, j.seen)
		if err != nil {
			t.Fatalf("action.yml: output %s: %v", name, err)
		}
		outputs[name] = v
	}
	return outputs, ok
}
