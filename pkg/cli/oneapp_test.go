package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/audit"
)

// An env repo of one app, its environments as directories: a copy of
// kostis-codefresh/gitops-environment-promotion (testdata/layouts-env/
// one-app, see its SOURCE), each envs/<env> a kustomize overlay of base/,
// with a ferry.yaml naming the app (app: simple-app, path: envs/{env}).
// deploy, promote (images, the default between directories), rollback,
// the hold and status, with --app naming the one app or left out.
func TestLayoutOneAppEndToEnd(t *testing.T) {
	const tree = "../../testdata/layouts-env/one-app"
	reg := testreg.Start(t, nil)
	r := testgit.NewRepoFromTemplate(t, tree, []string{"REGISTRY", reg.Host}, "main")
	r.Git("symbolic-ref", "HEAD", "refs/heads/main")
	srv := testgit.Serve(t, r)
	env := map[string]string{"FERRY_REPO": srv.RepoURL(r)}
	img := reg.Host + "/kostiscodefresh/simple-env-app"
	digests := map[string]string{}
	for _, tag := range []string{"4.0", "5.0"} {
		digests[tag] = reg.Push(t, "kostiscodefresh/simple-env-app:"+tag)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(t, env, append(args, "--output", "json")...)
		if code != 0 {
			t.Fatalf("ferry %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	// dir is an environment's directory at the tip, every file of it.
	dir := func(name string) string {
		var b strings.Builder
		for _, f := range strings.Fields(r.Git("ls-tree", "-r", "--name-only", "main", "envs/"+name)) {
			b.WriteString("--- " + f + "\n" + r.Show("main", f) + "\n")
		}
		return b.String()
	}
	base, variants := r.Git("rev-parse", "main:base"), r.Git("rev-parse", "main:variants")
	type report struct {
		Changed bool
		App     string
		Branch  string
		Env     string
		Path    string
		Carry   string
		From    string
	}

	// deploy 4.0 to qa: the app named, as config mode from the repo's
	// ferry.yaml wants.
	var rep report
	if err := json.Unmarshal([]byte(mustRun("deploy", "--app", "simple-app", "--image", img+":4.0")), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Changed || rep.Path != "envs/qa" || rep.Branch != "main" || rep.App != "simple-app" {
		t.Fatalf("deploy report %+v; want simple-app changed in envs/qa on main", rep)
	}
	if got := dir("qa"); !strings.Contains(got, digests["4.0"]) {
		t.Fatalf("qa does not pin 4.0:\n%s", got)
	}
	qaAt := r.Tip("main")

	// promote it to staging-us: images, the default between directories;
	// staging-us keeps its own files.
	stagingBefore := dir("staging-us")
	rep = report{}
	if err := json.Unmarshal([]byte(mustRun("promote", "--app", "simple-app", "--to", "staging-us")), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Changed || rep.Path != "envs/staging-us" || rep.Carry != "images" || !strings.HasSuffix(rep.From, "@"+qaAt) {
		t.Fatalf("promote report %+v; want images carried to envs/staging-us from @%s", rep, qaAt)
	}
	stagingAfter := dir("staging-us")
	if !strings.Contains(stagingAfter, digests["4.0"]) {
		t.Fatalf("staging-us does not pin 4.0:\n%s", stagingAfter)
	}
	if a, b := withoutImageLines(stagingBefore), withoutImageLines(stagingAfter); a != b {
		t.Errorf("promote changed staging-us beyond the image:\nbefore\n%s\nafter\n%s", a, b)
	}
	rec := audit.Parse(r.Git("log", "-1", "--format=%B", "main"))
	if rec.Env != "staging-us" || rec.App != "simple-app" || !strings.HasPrefix(rec.PromotedFrom, "qa@") {
		t.Errorf("trailers: env %q, app %q, from %q; want staging-us, simple-app, qa@...", rec.Env, rec.App, rec.PromotedFrom)
	}

	// 5.0 the same way, then roll staging-us back: from --config, --app
	// left out, the file's one app stands in.
	mustRun("deploy", "--app", "simple-app", "--image", img+":5.0")
	mustRun("promote", "--app", "simple-app", "--to", "staging-us")
	if !strings.Contains(dir("staging-us"), digests["5.0"]) {
		t.Fatalf("staging-us does not pin 5.0:\n%s", dir("staging-us"))
	}
	rep = report{}
	if err := json.Unmarshal([]byte(mustRun("rollback", "--config", tree+"/ferry.yaml", "--env", "staging-us")), &rep); err != nil {
		t.Fatal(err)
	}
	if got := dir("staging-us"); !rep.Changed || rep.App != "simple-app" || rep.Path != "envs/staging-us" || !strings.Contains(got, digests["4.0"]) || strings.Contains(got, digests["5.0"]) {
		t.Fatalf("rollback %+v did not restore 4.0:\n%s", rep, got)
	}
	held := r.Tip("main")

	// The hold: a promote into staging-us is refused; nothing moves.
	code, _, errOut := run(t, env, "promote", "--app", "simple-app", "--to", "staging-us")
	if code != 1 || !strings.Contains(errOut, "held by a rollback") {
		t.Errorf("promote onto the rollback: exit %d, %s; want 1, held", code, errOut)
	}
	if r.Tip("main") != held {
		t.Error("the held promote moved main")
	}
	// Another app is no app of this repo: a usage error naming it.
	code, _, errOut = run(t, env, "deploy", "--app", "other", "--image", img+":5.0")
	if want := "--app other: ferry.yaml holds one app, simple-app"; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("deploy --app other: exit %d, %s; want 2 and %q", code, errOut, want)
	}

	// status: the one app, a row of its own; base/ and variants/ are no
	// apps, and ferry never wrote them.
	var st struct {
		Apps []struct {
			App   string
			Cells []struct {
				Env, Path, State string
			}
		}
	}
	if err := json.Unmarshal([]byte(mustRun("status", "--config", tree+"/ferry.yaml")), &st); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range st.Apps {
		for _, c := range a.Cells {
			got = append(got, a.App+" "+c.Env+" "+c.Path+" "+c.State)
		}
	}
	want := []string{
		"simple-app qa envs/qa current",
		"simple-app staging-us envs/staging-us held",
		"simple-app prod-eu envs/prod-eu unmanaged",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("status:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	code, _, errOut = run(t, env, "status", "--app", "base")
	if want := "--app base: ferry.yaml holds one app, simple-app"; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("status --app base: exit %d, %s; want 2 and %q", code, errOut, want)
	}
	if r.Git("rev-parse", "main:base") != base || r.Git("rev-parse", "main:variants") != variants {
		t.Error("base/ or variants/, outside every environment's directory, changed")
	}
	r.Fsck()
}

// withoutImageLines drops the lines that pin an image, wherever ferry
// writes the pin.
func withoutImageLines(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "image:") || strings.HasPrefix(t, "newTag:") || strings.HasPrefix(t, "newName:") || strings.HasPrefix(t, "digest:") || strings.HasPrefix(t, "- name: "+"REGISTRY") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}
