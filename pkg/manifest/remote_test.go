package manifest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"
)

// remoteBound is how long these tests wait for a call that should return:
// a safety net that turns a hang into a failure, not a measurement.
const remoteBound = 20 * time.Second

// remoteHang listens on 127.0.0.1, accepts connections and never answers.
// It returns the address and a function that counts the connections so far,
// and closes everything when the test ends.
func remoteHang(t *testing.T) (addr string, accepted <-chan struct{}, count func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	first := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if len(conns) == 0 {
				close(first)
			}
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), first, func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// within runs f, failing the test if it has not returned within remoteBound.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(remoteBound):
		t.Fatalf("still running after %v", remoteBound)
		return nil
	}
}

// noNetworkForGit keeps a git that kustomize might run (if the refusal
// regressed) off the network and out of the way.
func noNetworkForGit(t *testing.T) {
	t.Setenv("GIT_ALLOW_PROTOCOL", "file")
	t.Setenv("GIT_TERMINAL_PROMPT", "0")
	t.Setenv("GIT_SSH_COMMAND", "false")
	t.Setenv("TMPDIR", t.TempDir())
}

func TestIsRemote(t *testing.T) {
	remote := []string{
		"http://127.0.0.1:1/cm.yaml",
		"HTTPS://example.com/cm.yaml",
		" https://example.com/cm.yaml ",
		"https://github.com/acme/envs//base?ref=v1",
		"ssh://git@example.com/acme/envs.git//base",
		"file:///srv/git/envs.git",
		"s3://bucket/cm.yaml",
		"git::https://example.com/acme/envs",
		"GIT::ssh://example.com/acme/envs",
		"git@github.com:acme/envs.git//base",
		"git@example.com:acme/envs",
		"deploy@example.com/acme/envs/base",
		"github.com/acme/envs//base?ref=v1",
		"GitHub.com/acme/envs/base",
		"github.com:acme/envs",
	}
	local := []string{
		"",
		"deployment.yaml",
		"../../base",
		"./github.com/acme",
		"github.company/acme/envs",
		"app@v2.yaml",
		"dir/http://x",
		"key=value",
		"patch.yaml",
	}
	for _, s := range remote {
		if !isRemote(s) {
			t.Errorf("isRemote(%q) = false, want true", s)
		}
	}
	for _, s := range local {
		if isRemote(s) {
			t.Errorf("isRemote(%q) = true, want false", s)
		}
	}
}

// Every kustomization a build reads, at its root or down its bases and
// components, is refused if it names a remote resource in any field
// kustomize loads, and nothing connects to the remote server.
func TestBuildRemoteRefused(t *testing.T) {
	noNetworkForGit(t)
	addr, _, count := remoteHang(t)
	k := func(s string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(strings.ReplaceAll(s, "ADDR", addr))}
	}
	cm := k("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: local\n")
	tree := fstest.MapFS{
		"resources/kustomization.yaml":  k("resources:\n- cm.yaml\n- http://ADDR/cm.yaml\n"),
		"capitals/kustomization.yaml":   k("Resources:\n- http://ADDR/cm.yaml\n"),
		"bases/kustomization.yaml":      k("bases:\n- https://ADDR/acme/envs//base?ref=main\n"),
		"components/kustomization.yaml": k("components:\n- ssh://git@ADDR/acme/envs.git//component\n"),
		"scp/kustomization.yml":         k("resources:\n- git@127.0.0.1:acme/envs.git//base\n"),
		"github/Kustomization":          k("resources:\n- github.com/acme/envs//base?ref=v1\n"),
		"getter/kustomization.yaml":     k("resources:\n- git::http://ADDR/acme/envs\n"),
		"patch/kustomization.yaml":      k("resources:\n- cm.yaml\npatches:\n- path: http://ADDR/patch.yaml\n"),
		"json6902/kustomization.yaml":   k("resources:\n- cm.yaml\npatchesJson6902:\n- path: http://ADDR/patch.json\n  target: {kind: ConfigMap, name: local}\n"),
		"crds/kustomization.yaml":       k("crds:\n- https://ADDR/crd.yaml\n"),
		"openapi/kustomization.yaml":    k("openapi:\n  path: https://ADDR/schema.json\n"),
		"generated/kustomization.yaml":  k("configMapGenerator:\n- name: conf\n  files:\n  - app.conf=http://ADDR/app.conf\n"),
		"envfile/kustomization.yaml":    k("secretGenerator:\n- name: s\n  envs:\n  - https://ADDR/.env\n"),
		"several/kustomization.yaml":    k("resources:\n- http://ADDR/a.yaml\ncomponents:\n- https://ADDR/acme/envs//c\n"),
		"overlay/kustomization.yaml":    k("resources:\n- ../base\n"),
		"base/kustomization.yaml":       k("resources:\n- cm.yaml\n- https://ADDR/more.yaml\n"),
		"withcomp/kustomization.yaml":   k("resources:\n- cm.yaml\ncomponents:\n- ../comp\n"),
		"comp/kustomization.yaml":       k("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- http://ADDR/comp.yaml\n"),
	}
	for _, d := range []string{"resources", "patch", "json6902", "base", "withcomp"} {
		tree[d+"/cm.yaml"] = cm
	}
	tests := []struct {
		dir  string
		want string // after "kustomization DIR does not build: "
	}{
		{"resources", "resources/kustomization.yaml names a remote resource, http://ADDR/cm.yaml (resources); remote resources are not fetched"},
		{"capitals", "capitals/kustomization.yaml names a remote resource, http://ADDR/cm.yaml (resources)"},
		{"bases", "bases/kustomization.yaml names a remote resource, https://ADDR/acme/envs//base?ref=main (bases)"},
		{"components", "components/kustomization.yaml names a remote resource, ssh://git@ADDR/acme/envs.git//component (components)"},
		{"scp", "scp/kustomization.yml names a remote resource, git@127.0.0.1:acme/envs.git//base (resources)"},
		{"github", "github/Kustomization names a remote resource, github.com/acme/envs//base?ref=v1 (resources)"},
		{"getter", "getter/kustomization.yaml names a remote resource, git::http://ADDR/acme/envs (resources)"},
		{"patch", "patch/kustomization.yaml names a remote resource, http://ADDR/patch.yaml (patches[].path)"},
		{"json6902", "http://ADDR/patch.json (patchesJson6902[].path)"},
		{"crds", "https://ADDR/crd.yaml (crds)"},
		{"openapi", "https://ADDR/schema.json (openapi.path)"},
		{"generated", "http://ADDR/app.conf (configMapGenerator[].files)"},
		{"envfile", "https://ADDR/.env (secretGenerator[].envs)"},
		{"several", "several/kustomization.yaml names remote resources: http://ADDR/a.yaml (resources), https://ADDR/acme/envs//c (components)"},
		{"overlay", "base/kustomization.yaml names a remote resource, https://ADDR/more.yaml (resources)"},
		{"withcomp", "comp/kustomization.yaml names a remote resource, http://ADDR/comp.yaml (resources)"},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			want := "kustomization " + tc.dir + " does not build: "
			if !strings.Contains(tc.want, " names ") {
				want = ""
			}
			want += strings.ReplaceAll(tc.want, "ADDR", addr)
			var out []byte
			err := within(t, func() (err error) {
				out, err = Build(t.Context(), tree, tc.dir)
				return err
			})
			if err == nil {
				t.Fatalf("Build(%q) = %q, want an error", tc.dir, out)
			}
			if !errors.Is(err, ErrRemoteResource) {
				t.Errorf("Build(%q) error %q does not match ErrRemoteResource", tc.dir, err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Build(%q) error = %q\nwant it to contain %q", tc.dir, err, want)
			}
			// Validate refuses the same way.
			err = within(t, func() error { return Validate(t.Context(), tree, []string{tc.dir + "/kustomization.yaml"}) })
			if !errors.Is(err, ErrRemoteResource) || !strings.Contains(err.Error(), want) {
				t.Errorf("Validate of %s = %v\nwant it to contain %q", tc.dir, err, want)
			}
		})
	}
	if n := count(); n != 0 {
		t.Errorf("%d connections to the remote server; want none", n)
	}
}

// Allowed, remote resources are fetched; a server that never answers holds
// the build only until WithRemoteResources' limit, and the error names the
// URL; ctx ends a validation waiting on one at once.
func TestBuildRemoteBounded(t *testing.T) {
	noNetworkForGit(t)
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprint(w, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\n")
	}))
	defer srv.Close()
	addr, _, _ := remoteHang(t)
	hung := "http://" + addr + "/cm.yaml"
	tree := fstest.MapFS{
		"ok/kustomization.yaml":   {Data: []byte("resources:\n- " + srv.URL + "/cm.yaml\n")},
		"hang/kustomization.yaml": {Data: []byte("resources:\n- " + hung + "\n")},
	}

	if err := Validate(t.Context(), tree, []string{"ok/kustomization.yaml"}); !errors.Is(err, ErrRemoteResource) || served.Load() != 0 {
		t.Errorf("Validate without the option = %v after %d requests; want ErrRemoteResource and none", err, served.Load())
	}
	if err := Validate(t.Context(), tree, []string{"ok/kustomization.yaml"}, WithRemoteResources(0)); err != nil {
		t.Errorf("Validate with remote resources allowed = %v", err)
	}

	err := within(t, func() error {
		_, err := Build(t.Context(), tree, "hang", WithRemoteResources(200*time.Millisecond))
		return err
	})
	want := "kustomization hang does not build: remote resources still being fetched after 200ms: " + hung + " (in hang/kustomization.yaml)"
	if !errors.Is(err, ErrRemoteTimeout) || err.Error() != want {
		t.Errorf("Build of a hanging remote resource = %v\nwant %q, matching ErrRemoteTimeout", err, want)
	}

	// Another server, so that the cancel follows this connection, and
	// another tree: the build left behind above still reads the first.
	addr2, accepted2, _ := remoteHang(t)
	hung2 := "http://" + addr2 + "/cm.yaml"
	tree2 := fstest.MapFS{"hang2/kustomization.yaml": {Data: []byte("resources:\n- " + hung2 + "\n")}}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-accepted2
		cancel()
	}()
	err = within(t, func() error {
		return Validate(ctx, tree2, []string{"hang2/kustomization.yaml"}, WithRemoteResources(time.Hour))
	})
	want = "validating: stopped while fetching remote resources " + hung2 + " (in hang2/kustomization.yaml): context canceled"
	if !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Errorf("Validate, cancelled = %v\nwant %q, matching context.Canceled", err, want)
	}
}
