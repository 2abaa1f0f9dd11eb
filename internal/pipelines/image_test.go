package pipelines

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ferrycd/ferry/internal/testenv"
	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/google/go-cmp/cmp"
)

// The Dockerfile says what the image promises: a static binary built from
// the build stage, on distroless static as nonroot, run as /ferry.
func TestDockerfile(t *testing.T) {
	if len(dockerfile) != 2 {
		t.Fatalf("want 2 stages (build, final), got %d", len(dockerfile))
	}
	build, final := dockerfile[0], dockerfile[1]
	if build.From != "golang:1.26" || build.Name == "" {
		t.Errorf("build stage: FROM %s AS %q, want FROM golang:1.26 AS <name>", build.From, build.Name)
	}
	if final.From != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static-debian12:nonroot", final.From)
	}
	for _, arg := range []string{"VERSION", "COMMIT"} {
		if _, ok := imageBuild.Vars[arg]; !ok {
			t.Errorf("build stage has no ARG %s", arg)
		}
	}
	var copied bool
	for _, in := range build.find("COPY") {
		copied = copied || in.Args == ". ."
	}
	if !copied {
		t.Error("build stage never copies the context (COPY . .)")
	}

	// The build line, as the Dockerfile has it.
	if !slices.Contains(imageBuild.Env, "CGO_ENABLED=0") {
		t.Errorf("build line %d: env %q, want CGO_ENABLED=0", imageBuild.Line, imageBuild.Env)
	}
	if !slices.Contains(imageBuild.Args, "-trimpath") {
		t.Errorf("build line %d: no -trimpath in %q", imageBuild.Line, imageBuild.Args)
	}
	ldflags := ""
	for i, a := range imageBuild.Args {
		if a == "-ldflags" && i+1 < len(imageBuild.Args) {
			ldflags = imageBuild.Args[i+1]
		}
	}
	wantLd := "-s -w -X github.com/ferrycd/ferry/pkg/cli.version=" + testVersion + " -X github.com/ferrycd/ferry/pkg/cli.commit=" + testCommit
	if ldflags != wantLd {
		t.Errorf("build line %d: -ldflags %q, want %q", imageBuild.Line, ldflags, wantLd)
	}
	if imageBuild.Pkg != "./cmd/ferry" {
		t.Errorf("build line %d builds %s, want ./cmd/ferry", imageBuild.Line, imageBuild.Pkg)
	}

	// The final stage takes exactly that binary.
	want := []instruction{
		{Cmd: "COPY", Args: "--from=" + build.Name + " " + imageBuild.Out + " /ferry"},
		{Cmd: "USER", Args: "nonroot:nonroot"},
		{Cmd: "ENTRYPOINT", Args: `["/ferry"]`},
	}
	var got []instruction
	for _, in := range final.Instrs {
		got = append(got, instruction{Cmd: in.Cmd, Args: in.Args})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final stage (-want +got):\n%s", diff)
	}
	var entry []string
	if err := json.Unmarshal([]byte(final.find("ENTRYPOINT")[0].Args), &entry); err != nil || !slices.Equal(entry, []string{"/ferry"}) {
		t.Errorf("ENTRYPOINT must be the exec form [\"/ferry\"] (no shell in distroless): %v", err)
	}
}

// The build context is only what the build needs, and enough for it: the
// TestMain build ran in a copy of exactly these files.
func TestDockerignore(t *testing.T) {
	files, err := buildContext(repoRoot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The internal packages the binary links may be in it too, and only they.
	list := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./cmd/ferry")
	list.Dir = repoRoot
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var linked []string
	for _, p := range strings.Fields(string(out)) {
		if rel, ok := strings.CutPrefix(p, "github.com/ferrycd/ferry/internal/"); ok {
			linked = append(linked, "internal/"+rel+"/")
		}
	}
	// Files a package embeds (//go:embed) are sources too.
	embeds := map[string]bool{}
	le := exec.Command("go", "list", "-f", `{{$d := .Dir}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}`, "./cmd/...", "./pkg/...")
	le.Dir = repoRoot
	out, err = le.Output()
	if err != nil {
		t.Fatalf("go list (embeds): %v", err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		if rel, err := filepath.Rel(root, f); err == nil {
			embeds[filepath.ToSlash(rel)] = true
		}
	}
	inLinked := func(f string) bool {
		return slices.ContainsFunc(linked, func(dir string) bool {
			return strings.HasPrefix(f, dir) && !strings.Contains(f[len(dir):], "/")
		})
	}
	for _, f := range files {
		switch {
		case f == "go.mod" || f == "go.sum":
		case strings.HasSuffix(f, "_test.go"), strings.Contains(f, "testdata/"):
			t.Errorf("%s is in the build context; tests and test data are not built", f)
		case (strings.HasPrefix(f, "cmd/") || strings.HasPrefix(f, "pkg/") || inLinked(f)) && strings.HasSuffix(f, ".go"):
		case embeds[f]:
		default:
			t.Errorf("%s is in the build context; it only needs go.mod, go.sum, cmd/ and pkg/ sources and the internal packages ferry links (%v)", f, linked)
		}
	}
	if !slices.Contains(files, "cmd/ferry/main.go") {
		t.Errorf("cmd/ferry/main.go is not in the build context: %q", files)
	}

	rules, err := parseDockerignore("*\n!go.mod\n!pkg\n**/*_test.go\n/bin/\n")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"go.mod": false, "go.sum": true, "pkg/a/a.go": false, "pkg/a/a_test.go": true,
		"README.md": true, ".git/config": true, "bin/ferry": true,
	} {
		if got := ignored(rules, path); got != want {
			t.Errorf("ignored(%q) = %v, want %v", path, got, want)
		}
	}
}

// The binary needs no dynamic loader and no shared library, so it runs on
// distroless static, which has neither.
func TestImageBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(ferryBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Error("the binary has a PT_INTERP program header: it needs a dynamic loader")
		case elf.PT_DYNAMIC:
			t.Error("the binary has a PT_DYNAMIC program header: it is dynamically linked")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries (DT_NEEDED): %q", libs)
	}

	info, err := buildinfo.ReadFile(ferryBin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if info.Path != "github.com/ferrycd/ferry/cmd/ferry" || settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build info: path %s, CGO_ENABLED=%q, -trimpath=%q; want cmd/ferry, 0, true", info.Path, settings["CGO_ENABLED"], settings["-trimpath"])
	}
}

// distrolessEnv is the environment gcr.io/distroless/static-debian12 sets.
var distrolessEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
}

// nonroot is distroless's nonroot user and group.
const nonroot = 65532

// emptyRoot makes a root directory holding only /ferry, the CA bundle at
// /etc/ssl/certs/ca-certificates.crt and a world-writable /tmp: less than
// distroless static has.
func emptyRoot(t *testing.T, caBundle []byte) string {
	t.Helper()
	root := t.TempDir()
	bin, err := os.ReadFile(ferryBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{
		os.Chmod(root, 0o755),
		os.WriteFile(filepath.Join(root, "ferry"), bin, 0o755),
		os.MkdirAll(filepath.Join(root, "etc/ssl/certs"), 0o755),
		os.WriteFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), caBundle, 0o644),
		os.Mkdir(filepath.Join(root, "tmp"), 0o755),
		os.Chmod(filepath.Join(root, "tmp"), 0o1777),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	return root
}

// inRoot runs /ferry chrooted into root as distroless's nonroot user, with
// the image's environment: no shell, no git, no curl, nothing but ferry.
// The network namespace is shared, so 127.0.0.1 reaches the test servers.
func inRoot(t *testing.T, root string, args ...string) execResult {
	t.Helper()
	cmd := exec.Command("/ferry", args...)
	cmd.Dir = "/"
	cmd.Env = distrolessEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot},
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return execResult{Stdout: out.String(), Stderr: errb.String()}
	case errors.As(err, &ee):
		return execResult{Stdout: out.String(), Stderr: errb.String(), Code: ee.ExitCode()}
	default:
		testenv.NeedServer(t, "chroot", fmt.Sprintf("cannot chroot here (%v); TestImageRunsInEmptyRoot needs CAP_SYS_CHROOT", err))
		return execResult{}
	}
}

// The image's promise, without Docker: ferry runs from a root that holds
// nothing but itself, the CA bundle and /tmp, as the nonroot user; it needs
// no git, curl or shell, and it trusts exactly the CA bundle.
func TestImageRunsInEmptyRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.NeedServer(t, "root", "chroot needs root; run as root (CI does) to run ferry in an empty root")
	}
	hostCAs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		testenv.NeedServer(t, "a CA bundle", fmt.Sprintf("none on this machine to put in the root (%v); Debian: apt-get install ca-certificates", err))
	}

	t.Run("version", func(t *testing.T) {
		res := inRoot(t, emptyRoot(t, hostCAs), "version")
		want := "ferry " + testVersion + " (commit " + testCommit + ","
		if res.Code != 0 || !strings.HasPrefix(res.Stdout, want) {
			t.Errorf("ferry version: want stdout starting %q\n%s", want, res)
		}
	})

	t.Run("demo", func(t *testing.T) {
		res := inRoot(t, emptyRoot(t, hostCAs), "demo")
		if res.Code != 0 {
			t.Fatalf("ferry demo failed in an empty root:\n%s", res)
		}
		for _, want := range []string{
			"==> registry: serving an in-process OCI registry at 127.0.0.1:",
			"==> ferry deploy --env candidate --path apps/hello --image 127.0.0.1:",
			"nothing to do",
		} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("demo output lacks %q:\n%s", want, res.Stdout)
			}
		}
		history := false
		for _, line := range strings.Split(res.Stdout, "\n") {
			history = history || (strings.HasPrefix(line, "==> ") && strings.Contains(line, "history"))
		}
		if !history {
			t.Errorf("demo output has no \"==> ... history\" section:\n%s", res.Stdout)
		}
	})

	t.Run("deploy over https", func(t *testing.T) {
		reg := testreg.Start(t, nil)
		digest := reg.Push(t, "team/hello:v1")
		repo := testgit.NewRepo(t, writeSeed(t, reg.Host), "candidate", "production")
		seed := repo.Tip("candidate")
		const token = "chroot-token-1234"
		srv := httptest.NewUnstartedServer(requireToken(token, &cgi.Handler{
			Path: gitPath(t),
			Args: []string{"http-backend"},
			Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo.Dir), "GIT_HTTP_EXPORT_ALL=1"},
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
		srv.StartTLS()
		t.Cleanup(srv.Close)
		url := srv.URL + "/" + repo.Name // https://127.0.0.1:PORT/env.git

		// The server's certificate is not in the host's CA bundle: ferry
		// refuses it, so it reads the bundle and trusts nothing else.
		res := inRoot(t, emptyRoot(t, hostCAs), "deploy", "--repo", url, "--git-token", token,
			"--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v1")
		if res.Code != 1 || !strings.Contains(res.Stderr, "certificate") {
			t.Errorf("deploy to a server the CA bundle does not vouch for: want exit 1 and a certificate error\n%s", res)
		}
		if tip := repo.Tip("candidate"); tip != seed {
			t.Fatalf("candidate moved to %s after a refused deploy", tip)
		}

		// With the server's CA in the bundle, the whole flow runs.
		ca := append(append([]byte(nil), hostCAs...), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})...)
		root := emptyRoot(t, ca)
		res = inRoot(t, root, "deploy", "--repo", url, "--git-token", token, "--output", "json",
			"--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v1")
		if res.Code != 0 {
			t.Fatalf("deploy in an empty root:\n%s", res)
		}
		var rep struct {
			Changed bool
			Commit  string
		}
		if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
			t.Fatalf("deploy output: %v\n%s", err, res.Stdout)
		}
		if !rep.Changed || rep.Commit != repo.Tip("candidate") {
			t.Errorf("deploy reported %+v; candidate is at %s", rep, repo.Tip("candidate"))
		}
		if got := repo.Show("candidate", "apps/hello/kustomization.yaml"); !strings.Contains(got, "digest: "+digest) {
			t.Errorf("candidate's kustomization does not pin %s:\n%s", digest, got)
		}
		candidate := repo.Tip("candidate")

		res = inRoot(t, root, "promote", "--repo", url, "--git-token", token,
			"--from", "candidate", "--to", "production", "--commit", candidate, "--path", "apps/hello")
		if res.Code != 0 {
			t.Fatalf("promote in an empty root:\n%s", res)
		}
		if got, want := repo.Git("rev-parse", "production:apps/hello"), repo.Git("rev-parse", candidate+":apps/hello"); got != want {
			t.Errorf("production's apps/hello is %s, want the candidate's %s", got, want)
		}
		res = inRoot(t, root, "history", "--repo", url, "--git-token", token, "--env", "production", "--path", "apps/hello")
		if res.Code != 0 || !strings.Contains(res.Stdout, "promote") {
			t.Errorf("history in an empty root: want a promote line\n%s", res)
		}
		repo.Fsck()
	})
}

// requireToken demands HTTP basic auth with token as the password, as a git
// host does, and hands the user to git http-backend.
func requireToken(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); !ok || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		r.Header.Set("REMOTE_USER", "ferry")
		h.ServeHTTP(w, r)
	})
}

func gitPath(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "git", "Debian: apt-get install git; .ci/run installs it")
}

// writeSeed writes the env repo every test starts from: apps/hello, a
// kustomize app whose image lives on host, and apps/other, which no
// pipeline may touch.
func writeSeed(t *testing.T, host string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"README.md": "# environments\n",
		"apps/hello/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: hello # set by ferry
    newName: ` + host + `/team/hello
    newTag: v0
`,
		"apps/hello/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  selector:
    matchLabels:
      app: hello
  template:
    metadata:
      labels:
        app: hello
    spec:
      containers:
        - name: hello
          image: hello
`,
		"apps/other/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: other
spec:
  selector:
    matchLabels:
      app: other
  template:
    metadata:
      labels:
        app: other
    spec:
      containers:
        - name: other
          image: ` + host + `/team/other:v0
`,
	}
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
