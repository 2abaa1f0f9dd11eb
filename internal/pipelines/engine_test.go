package pipelines

// The test's own machinery, tested: the GitHub expression evaluator, Cloud
// Build's substitutions, GitLab's rules: conditions and extends:, the shell
// words of the Dockerfile's build line, and $GITHUB_OUTPUT. Each must
// refuse what it does not model.

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEvalExpr(t *testing.T) {
	ctx := map[string]any{
		"github": map[string]any{"sha": "abc", "ref_name": "candidate", "token": "tok"},
		"inputs": map[string]any{"dry-run": false, "steps": 2.0, "env": "production", "install": "true"},
		"steps":  map[string]any{"ferry": map[string]any{"outputs": lenient{"changed": "true"}}},
	}
	for _, tc := range []struct {
		expr string
		want any
		err  string
	}{
		{expr: "github.sha", want: "abc"},
		{expr: " inputs.dry-run ", want: false},
		{expr: "inputs.steps", want: 2.0},
		{expr: "inputs['env']", want: "production"},
		{expr: "github.ref_name == 'CANDIDATE'", want: true}, // strings compare ignoring case
		{expr: "github.ref_name != 'candidate'", want: false},
		{expr: "inputs.install == 'true' && github.sha", want: "abc"},
		{expr: "inputs.dry-run || 'no'", want: "no"},
		{expr: "!inputs.dry-run", want: true},
		{expr: "inputs.steps == '2'", want: true}, // numbers and strings compare as numbers
		{expr: "(github.sha == 'abc') && 'it''s'", want: "it's"},
		{expr: "steps.ferry.outputs.changed", want: "true"},
		{expr: "steps.ferry.outputs.missing", want: nil}, // a step output not written is null
		{expr: "github.shaa", err: `github has no property "shaa"`},
		{expr: "secrets.X", err: `unknown context "secrets"`},
		{expr: "success()", err: "function success() is not modelled"},
		{expr: "github.sha ==", err: "unexpected end"},
		{expr: "github.sha github", err: "unexpected"},
	} {
		got, err := evalExpr(tc.expr, ctx)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.expr, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %#v, %v; want %#v", tc.expr, got, err, tc.want)
		}
	}

	got, err := interpolate("apps/${{ inputs.env }}-${{ inputs.steps }}-${{ inputs.dry-run }}${{ steps.ferry.outputs.x }}", ctx, nil)
	if err != nil || got != "apps/production-2-false" {
		t.Errorf("interpolate = %q, %v", got, err)
	}
	if _, err := interpolate("${{ github }}", ctx, nil); err == nil {
		t.Error("interpolating an object: want an error")
	}
	if ok, err := evalIf("${{ github.ref_name == 'candidate' }}", ctx, nil); !ok || err != nil {
		t.Errorf("evalIf = %v, %v", ok, err)
	}
}

func TestCloudBuildSubstitutions(t *testing.T) {
	cfg := &cbConfig{
		Substitutions: map[string]string{"_REGISTRY": "us-docker.pkg.dev/${PROJECT_ID}/ferry", "_IMAGE": "${_REGISTRY}/app", "_APP": "hello"},
		Options:       cbOptions{DynamicSubstitutions: true},
	}
	s, err := newCBSubst(cfg, cbTrigger{Builtins: map[string]string{"PROJECT_ID": "p1", "SHORT_SHA": "abc1234"}, Subs: map[string]string{"_APP": "world"}})
	if err != nil {
		t.Fatal(err)
	}
	for tmpl, want := range map[string]string{
		"${_IMAGE}:$SHORT_SHA":  "us-docker.pkg.dev/p1/ferry/app:abc1234",
		"apps/${_APP}":          "apps/world",
		"$_APPx ${_APP}X":       "worldx worldX", // names are upper case
		"$_APPX":                "",              // another name: undefined
		"$$HOME and $$$_APP":    "$HOME and $world",
		"tag: $TAG_NAME.":       "tag: .", // a built-in the trigger lacks is empty
		"${_APP:-x}":            "",
		"$PATH":                 "",
		"price: $5":             "",
		"${_UNDEFINED}":         "",
		"projects/$PROJECT_ID/": "projects/p1/",
	} {
		got, err := s.expand(tmpl)
		if want == "" {
			if err == nil {
				t.Errorf("expand(%q) = %q; want an error", tmpl, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
	if !s.used["_APP"] || !s.used["_REGISTRY"] {
		t.Errorf("used %v: want _APP, and _REGISTRY through _IMAGE", s.used)
	}

	// Without dynamic substitutions a value is taken as it is.
	cfg.Options.DynamicSubstitutions = false
	s, err = newCBSubst(cfg, cbTrigger{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.vals["_IMAGE"]; got != "${_REGISTRY}/app" {
		t.Errorf("_IMAGE = %q without dynamicSubstitutions", got)
	}
	for _, trig := range []cbTrigger{
		{Subs: map[string]string{"_lower": "x"}},
		{Builtins: map[string]string{"NOT_BUILTIN": "x"}},
	} {
		if _, err := newCBSubst(cfg, trig); err == nil {
			t.Errorf("trigger %+v: want an error", trig)
		}
	}
	cyc := &cbConfig{Substitutions: map[string]string{"_A": "${_B}", "_B": "${_A}"}, Options: cbOptions{DynamicSubstitutions: true}}
	if _, err := newCBSubst(cyc, cbTrigger{}); err == nil {
		t.Error("substitutions that refer to each other: want an error")
	}
}

func TestGitLabIf(t *testing.T) {
	vars := map[string]string{"CI_COMMIT_BRANCH": "candidate", "CI_DEFAULT_BRANCH": "main", "EMPTY": "", "MAIN": "main"}
	for _, tc := range []struct {
		expr string
		want bool
		err  string
	}{
		{expr: `$CI_COMMIT_BRANCH == "candidate"`, want: true},
		{expr: `$CI_COMMIT_BRANCH == 'production'`, want: false},
		{expr: `$CI_COMMIT_BRANCH != "production"`, want: true},
		{expr: `$CI_DEFAULT_BRANCH == $MAIN`, want: true},
		{expr: `$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH`, want: false},
		{expr: `$CI_COMMIT_BRANCH == "production" || $CI_COMMIT_BRANCH == "candidate"`, want: true},
		{expr: `$CI_COMMIT_BRANCH == "production" || $MAIN && $EMPTY`, want: false}, // && binds first
		{expr: `($CI_COMMIT_BRANCH == "production" || $MAIN) && $EMPTY`, want: false},
		{expr: `($CI_COMMIT_BRANCH == "candidate" || $EMPTY) && $MAIN`, want: true},
		{expr: `$CI_COMMIT_BRANCH`, want: true},
		{expr: `$EMPTY`, want: false}, // set, but empty
		{expr: `$UNSET`, want: false},
		{expr: `$UNSET == null`, want: true},
		{expr: `$EMPTY == null`, want: false},
		{expr: `$EMPTY == ""`, want: true},
		{expr: `$UNSET == ""`, want: false},
		{expr: `$CI_COMMIT_BRANCH =~ /^cand/`, want: true},
		{expr: `$CI_COMMIT_BRANCH =~ /^CAND/i`, want: true},
		{expr: `$CI_COMMIT_BRANCH !~ /^prod/`, want: true},
		{expr: `$UNSET =~ /.*/`, want: false},
		{expr: `${CI_COMMIT_BRANCH} == "candidate"`, err: "not allowed in rules"},
		{expr: `"candidate"`, err: "literal alone"},
		{expr: `$CI_COMMIT_BRANCH == /cand/`, err: "use =~"},
		{expr: `$CI_COMMIT_BRANCH =~ "cand"`, err: "/regex/"},
		{expr: `$CI_COMMIT_BRANCH == "candidate`, err: "unterminated"},
		{expr: `($CI_COMMIT_BRANCH == "candidate"`, err: "missing )"},
		{expr: `$CI_COMMIT_BRANCH == "candidate" and $MAIN`, err: "unexpected"},
		{expr: `!$MAIN`, err: "unexpected"},
	} {
		got, err := glIf(tc.expr, vars)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.expr, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
}

func TestGitLabExtends(t *testing.T) {
	raw := map[string]map[string]any{
		".base": {"image": "golang:1.26", "variables": map[string]any{"A": "1", "B": "1"}, "before_script": []any{"one"}},
		".more": {"extends": ".base", "variables": map[string]any{"B": "2"}, "tags": []any{"x"}},
		"job":   {"extends": []any{".more"}, "variables": map[string]any{"C": "3"}, "before_script": []any{"two"}, "script": []any{"run"}},
	}
	got := glExtends(t, "x.yml", "job", raw, 0)
	want := map[string]any{
		"image":         "golang:1.26",
		"variables":     map[string]any{"A": "1", "B": "2", "C": "3"}, // maps merge
		"before_script": []any{"two"},                                 // lists are replaced
		"tags":          []any{"x"},
		"script":        []any{"run"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if raw[".base"]["variables"].(map[string]any)["B"] != "1" {
		t.Error("merging changed what was extended")
	}
}

func TestGitLabGoInstallStandIn(t *testing.T) {
	install := glCommands["go install"].standIn
	for _, mod := range []string{"github.com/ferrycd/ferry/cmd/ferry@v1", "github.com/ferrycd/ferry/cmd/ferry@v1.4.2", "github.com/ferrycd/ferry/cmd/ferry@latest"} {
		if err := install(nil, []string{"install", mod}); err != nil {
			t.Errorf("%s: %v", mod, err)
		}
	}
	for _, args := range [][]string{
		{"install", "github.com/ferrycd/ferry/cmd/ferry"}, // no version: not outside a module
		{"install", "example.com/other@v1"},
		{"install", "github.com/ferrycd/ferry/cmd/ferry@$FERRY_VERSION"},
		{"install", "-v", "github.com/ferrycd/ferry/cmd/ferry@v1"},
	} {
		if err := install(nil, args); err == nil {
			t.Errorf("go %v: want an error", args)
		}
	}
}

func TestShellWords(t *testing.T) {
	vars := map[string]string{"VERSION": "v1", "SPACE": "a b"}
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: `CGO_ENABLED=0 go build -ldflags "-s -X a.v=${VERSION}" -o /out/x ./cmd/x`, want: []string{"CGO_ENABLED=0", "go", "build", "-ldflags", "-s -X a.v=v1", "-o", "/out/x", "./cmd/x"}},
		{in: `echo '$VERSION' "\$VERSION" $VERSION \"`, want: []string{"echo", "$VERSION", "$VERSION", "v1", `"`}},
		{in: `echo "$SPACE"`, want: []string{"echo", "a b"}},
		{in: `echo $SPACE`, err: true}, // would split
		{in: `go build && echo`, err: true},
		{in: `go build; echo`, err: true},
		{in: `go build $(pwd)`, err: true},
		{in: "go build `pwd`", err: true},
		{in: `go build ${NOPE}`, err: true},
		{in: `go build ${VERSION:-x}`, err: true},
		{in: `go build ./...`, want: []string{"go", "build", "./..."}},
		{in: `go build ./*`, err: true},
		{in: `echo "unterminated`, err: true},
	} {
		got, err := shellWords(tc.in, vars)
		if tc.err {
			if err == nil {
				t.Errorf("shellWords(%q) = %q; want an error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("shellWords(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("shellWords(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseDockerfile(t *testing.T) {
	src := "# c\nFROM golang:1.26 AS build\nARG VERSION=dev\nRUN CGO_ENABLED=0 go build \\\n  # a comment\n  -ldflags \"-X a.v=${VERSION}\" \\\n  -o /out/f ./cmd/f\nFROM scratch\nCOPY --from=build /out/f /f\n"
	stages, err := parseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 2 || stages[0].Name != "build" || stages[1].From != "scratch" {
		t.Fatalf("stages %+v", stages)
	}
	b, err := findGoBuild(stages[0], map[string]string{"VERSION": "v2"})
	if err != nil {
		t.Fatal(err)
	}
	want := &goBuild{Line: 4, Env: []string{"CGO_ENABLED=0"}, Args: []string{"build", "-ldflags", "-X a.v=v2", "-o", "/out/f", "./cmd/f"}, Out: "/out/f", Pkg: "./cmd/f", Vars: map[string]string{"VERSION": "v2"}}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("build (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		"# syntax=docker/dockerfile:1\nFROM a\n",
		"RUN x\n",
		"FROM a\nRUN <<EOF\nx\nEOF\n",
	} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("parseDockerfile(%q): want an error", bad)
		}
	}
	for _, bad := range []string{
		"FROM a\nRUN go build -o out ./x\n",                        // -o not absolute
		"FROM a\nRUN go build -o /o ./x\nRUN go build -o /p ./y\n", // two builds
		"FROM a\nRUN apt-get install -y x\n",                       // no build
		"FROM a\nENV X=1\nRUN go build -o /o ./x\n",                // ENV not modelled
	} {
		st, err := parseDockerfile(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := findGoBuild(st[0], nil); err == nil {
			t.Errorf("findGoBuild(%q): want an error", bad)
		}
	}
}

func TestParseOutputs(t *testing.T) {
	got, err := parseOutputs("changed=true\nimages<<ghadelimiter_1\n[\n{\"a\": \"b=c\"}]\nghadelimiter_1\ncommit=\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"changed": "true", "images": "[\n{\"a\": \"b=c\"}]", "commit": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"x<<EOF\nnever closed\n", "no equals sign\n"} {
		if _, err := parseOutputs(bad); err == nil {
			t.Errorf("parseOutputs(%q): want an error", bad)
		}
	}
}

// Workflows and the action pass every expression through env:, never into
// a script, including in jobs a rollout skips.
func TestNoExpressionInScripts(t *testing.T) {
	var errs []error
	for _, f := range pipelineFiles(t, "github/*.yml") {
		var wf ghWorkflow
		readYAML(t, f, &wf)
		for name, job := range wf.Jobs {
			for _, st := range job.Steps {
				if strings.Contains(st.Run, "${{") {
					errs = append(errs, errors.New(f+": job "+name+": step "+st.label()))
				}
			}
		}
	}
	for _, st := range loadAction(t).Runs.Steps {
		if strings.Contains(st.Run, "${{") {
			errs = append(errs, errors.New("action.yml: step "+st.label()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("expressions pasted into scripts (use env:):\n%v", err)
	}
}
