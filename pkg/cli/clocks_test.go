package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/cli"
)

// bound is how long these tests wait for a run that should end: a safety
// net that turns a hang into a failure, not a measurement of speed.
const bound = 20 * time.Second

// hangingListener accepts TCP connections on 127.0.0.1 and never answers,
// as a stalled server does. The listener and every connection it accepted
// are closed when the test ends, which also frees anything left blocked
// reading from it.
type hangingListener struct {
	addr     string
	accepted chan struct{} // closed at the first connection

	mu    sync.Mutex
	conns []net.Conn
}

func newHangingListener(t *testing.T) *hangingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingListener{addr: ln.Addr().String(), accepted: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			if len(h.conns) == 0 {
				close(h.accepted)
			}
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			c.Close()
		}
	})
	return h
}

// count is the number of connections accepted so far.
func (h *hangingListener) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// waitConn waits, at most bound, for a first connection.
func (h *hangingListener) waitConn(t *testing.T) {
	t.Helper()
	select {
	case <-h.accepted:
	case <-time.After(bound):
		t.Fatalf("nothing connected to %s within %v", h.addr, bound)
	}
}

// runBounded is run, failing the test if the CLI has not returned within
// bound (the run is then left behind, blocked; the test's cleanup frees it).
func runBounded(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
		done <- result{code, out.String(), errb.String()}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.errOut
	case <-time.After(bound):
		t.Fatalf("ferry %s still running after %v", strings.Join(args, " "), bound)
		return 0, "", ""
	}
}

// ferryBinary builds cmd/ferry once per test binary and returns its path.
var ferryBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ferry-cli-test-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "ferry")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ferrycd/ferry/cmd/ferry").CombinedOutput()
	if err != nil {
		return "", &buildError{err, out}
	}
	return bin, nil
})

// binDir is removed by TestMain.
var binDir string

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return "building ferry: " + e.err.Error() + "\n" + string(e.out) }

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is a running ferry binary.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
	done           chan struct{} // closed when it has exited
	err            error         // of Wait, once done
}

// startBinary starts the real ferry binary with only env (and PATH, HOME).
// It is killed, if still running, when the test ends.
func startBinary(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	bin, err := ferryBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin, args...), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits at most bound for the process to end and returns its exit
// status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(bound):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("ferry still running %v later; stderr so far:\n%s", bound, p.stderr)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("waiting for ferry: %v", p.err)
	return -1
}

// remoteFixture is an env repo on git http-backend whose apps name remote
// resources on a server that accepts connections and never answers.
type remoteFixture struct {
	reg  *testreg.Registry
	repo *testgit.Repo
	url  string
	hang *hangingListener
}

func remoteDeployment(name, host string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: " + host + "/team/" + name + ":v0\n"
}

func newRemoteFixture(t *testing.T) *remoteFixture {
	t.Helper()
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	srv := testgit.Serve(t, repo)
	f := &remoteFixture{reg: reg, repo: repo, url: srv.RepoURL(repo), hang: newHangingListener(t)}
	addr := f.hang.addr
	files := map[string]string{
		// A plain file over HTTP, in the app's own kustomization.
		"apps/remote/kustomization.yaml": "resources:\n- deployment.yaml\n- http://" + addr + "/remote.yaml\n",
		// A git base, two kustomizations down: the app's local base names it.
		"apps/viabase/kustomization.yaml":   "resources:\n- deployment.yaml\n- ../../bases/remote\n",
		"bases/remote/kustomization.yaml":   "bases:\n- https://" + addr + "/acme/envs.git//base?ref=main\n",
		"apps/component/kustomization.yaml": "resources:\n- deployment.yaml\ncomponents:\n- ssh://git@" + addr + "/acme/envs.git//component\n",
	}
	for _, app := range []string{"remote", "viabase", "component"} {
		files["apps/"+app+"/deployment.yaml"] = remoteDeployment(app, reg.Host)
		reg.Push(t, "team/"+app+":v1")
	}
	repo.Commit("candidate", "apps with remote resources", files)
	return f
}

func (f *remoteFixture) deploy(app string, args ...string) []string {
	return append([]string{"deploy", "--env", "candidate", "--path", "apps/" + app, "--image", f.reg.Host + "/team/" + app + ":v1"}, args...)
}

// By default a kustomization that names a remote resource, directly or
// through a base or a component, is refused before anything connects to
// it: exit 1, the file and the URL named, the branch where it was.
func TestRemoteResourcesRefusedByDefault(t *testing.T) {
	f := newRemoteFixture(t)
	t.Setenv("GIT_TERMINAL_PROMPT", "0")
	t.Setenv("TMPDIR", t.TempDir()) // where kustomize would clone
	t.Setenv("HOME", t.TempDir())   // where ssh would note host keys
	addr := f.hang.addr
	tests := []struct {
		app  string
		want []string
	}{
		{"remote", []string{"apps/remote/kustomization.yaml", "http://" + addr + "/remote.yaml", "--allow-remote-resources"}},
		{"viabase", []string{"kustomization apps/viabase does not build", "bases/remote/kustomization.yaml", "https://" + addr + "/acme/envs.git//base?ref=main"}},
		{"component", []string{"apps/component/kustomization.yaml", "ssh://git@" + addr + "/acme/envs.git//component"}},
	}
	for _, tc := range tests {
		t.Run(tc.app, func(t *testing.T) {
			before := f.repo.Tip("candidate")
			code, _, errOut := runBounded(t, map[string]string{"FERRY_REPO": f.url}, f.deploy(tc.app)...)
			if code != cli.ExitError {
				t.Errorf("exit %d, want %d: %s", code, cli.ExitError, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if n := f.hang.count(); n != 0 {
				t.Errorf("%d connections to the remote resource's server; want none", n)
			}
			if f.repo.Tip("candidate") != before {
				t.Error("the branch moved")
			}
		})
	}
}

// With remote resources allowed, a server that never answers holds the
// validation only until --timeout, or --remote-timeout: the run ends, exit
// 1, saying why, and nothing is pushed.
func TestRemoteResourcesHangBoundedByTimeout(t *testing.T) {
	f := newRemoteFixture(t)
	url := "http://" + f.hang.addr + "/remote.yaml"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"--timeout", map[string]string{"FERRY_ALLOW_REMOTE_RESOURCES": "true"}, []string{"--timeout", "5s"},
			[]string{"stopped while fetching remote resources " + url + " (in apps/remote/kustomization.yaml)", "gave up after --timeout 5s"}},
		{"--remote-timeout", nil, []string{"--allow-remote-resources", "--remote-timeout", "1s"},
			[]string{"remote resources still being fetched after 1s: " + url + " (in apps/remote/kustomization.yaml)", "--remote-timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"FERRY_REPO": f.url}
			for k, v := range tc.env {
				env[k] = v
			}
			before := f.repo.Tip("candidate")
			code, _, errOut := runBounded(t, env, f.deploy("remote", tc.args...)...)
			if code != cli.ExitError {
				t.Errorf("exit %d, want %d: %s", code, cli.ExitError, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if f.repo.Tip("candidate") != before {
				t.Error("the branch moved")
			}
		})
	}
}

// With --allow-remote-resources, a remote resource that answers is fetched
// and the deploy goes through.
func TestRemoteResourcesFetchedWhenAllowed(t *testing.T) {
	f := newRemoteFixture(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\n")
	}))
	defer srv.Close()
	f.repo.Commit("candidate", "an app with a remote resource that answers", map[string]string{
		"apps/fetched/kustomization.yaml": "resources:\n- deployment.yaml\n- " + srv.URL + "/cm.yaml\n",
		"apps/fetched/deployment.yaml":    remoteDeployment("fetched", f.reg.Host),
	})
	f.reg.Push(t, "team/fetched:v1")
	before := f.repo.Tip("candidate")
	code, out, errOut := runBounded(t, map[string]string{"FERRY_REPO": f.url}, f.deploy("fetched", "--allow-remote-resources")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if tip := f.repo.Tip("candidate"); tip == before || !strings.Contains(out, tip) {
		t.Errorf("the branch did not move to the reported commit:\n%s", out)
	}
}

// SIGTERM during a validation that waits on a remote resource ends the
// real binary promptly, with a non-zero status and nothing pushed.
func TestRemoteResourcesSignal(t *testing.T) {
	f := newRemoteFixture(t)
	env := map[string]string{"FERRY_REPO": f.url, "FERRY_ALLOW_REMOTE_RESOURCES": "true"}
	before := f.repo.Tip("candidate")
	p := startBinary(t, env, f.deploy("remote")...)
	f.hang.waitConn(t) // validation is fetching, and would wait forever
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code == 0 {
		t.Errorf("exit 0 after SIGTERM; stderr:\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", p.stderr)
	}
	if f.repo.Tip("candidate") != before {
		t.Error("the branch moved")
	}
}

// hookFixture is the env repo of testdata/envrepo on git http-backend, an
// image to deploy, and a webhook that accepts connections and never
// answers.
type hookFixture struct {
	repo  *testgit.Repo
	url   string
	image string
	hang  *hangingListener
}

func newHookFixture(t *testing.T) *hookFixture {
	t.Helper()
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	srv := testgit.Serve(t, repo)
	reg.Push(t, "team/hello:v1")
	return &hookFixture{repo: repo, url: srv.RepoURL(repo), image: reg.Host + "/team/hello:v1", hang: newHangingListener(t)}
}

func (f *hookFixture) deploy(args ...string) []string {
	return append([]string{"deploy", "--repo", f.url, "--env", "candidate", "--path", "apps/hello", "--image", f.image,
		"--notify-webhook", "http://" + f.hang.addr + "/hook"}, args...)
}

// SIGTERM while a webhook hangs stops the real binary promptly, with a
// non-zero status, saying the push stands; the push is not undone.
func TestHooksStopOnSignal(t *testing.T) {
	f := newHookFixture(t)
	before := f.repo.Tip("candidate")
	p := startBinary(t, nil, f.deploy()...)
	f.hang.waitConn(t) // pushed, and the webhook is waiting for an answer
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := p.wait(t)
	if code == 0 {
		t.Errorf("exit 0 after SIGTERM; stderr:\n%s", p.stderr)
	}
	tip := f.repo.Tip("candidate")
	if tip == before {
		t.Fatalf("nothing was pushed; stderr:\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "the push of "+tip+" stands") {
		t.Errorf("stderr does not say the push of %s stands:\n%s", tip, p.stderr)
	}
}

// --timeout bounds the whole run, hooks included, whatever --hook-timeout
// says: a webhook that never answers is given up at --timeout, the report
// says the push stands, and the exit status is that of a failed hook (0
// without --strict-hooks).
func TestHooksBoundedByTimeout(t *testing.T) {
	f := newHookFixture(t)
	before := f.repo.Tip("candidate")
	p := startBinary(t, nil, f.deploy("--timeout", "3s", "--hook-timeout", "60s")...)
	code := p.wait(t)
	tip := f.repo.Tip("candidate")
	if tip == before {
		t.Fatalf("nothing was pushed; exit %d, stderr:\n%s", code, p.stderr)
	}
	if code != 0 {
		t.Errorf("exit %d, want 0 (a hook failed, without --strict-hooks); stderr:\n%s", code, p.stderr)
	}
	for _, want := range []string{"the push of " + tip + " stands", "--timeout 3s"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, p.stderr)
		}
	}
}

// A write that runs out of --timeout still reports its failure: with hooks
// configured it stops a tenth of --timeout early and the hooks get the rest.
func TestHooksFireAfterWriteTimeout(t *testing.T) {
	release := make(chan struct{})
	reg := testreg.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select { // a registry that never answers
			case <-release:
			case <-r.Context().Done():
			}
		})
	})
	t.Cleanup(func() { close(release) })
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	srv := testgit.Serve(t, repo)
	events := make(chan map[string]any, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		events <- ev
	}))
	defer hook.Close()
	before := repo.Tip("candidate")
	code, _, errOut := runBounded(t, map[string]string{"FERRY_REPO": srv.RepoURL(repo)},
		"deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v1",
		"--timeout", "3s", "--notify-on", "failure", "--notify-webhook", hook.URL)
	if code != cli.ExitError {
		t.Errorf("exit %d, want %d: %s", code, cli.ExitError, errOut)
	}
	for _, want := range []string{"stopped 300ms before --timeout, to leave the hooks time", "gave up after --timeout 3s"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	select {
	case ev := <-events:
		if ev["result"] != "failure" || !strings.Contains(fmt.Sprint(ev["error"]), "deadline exceeded") {
			t.Errorf("webhook event: result %v, error %v; want failure and the deadline", ev["result"], ev["error"])
		}
	default:
		t.Errorf("the failure was not reported to the webhook; stderr:\n%s", errOut)
	}
	if repo.Tip("candidate") != before {
		t.Error("the branch moved")
	}
}
