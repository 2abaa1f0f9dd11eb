package manifest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/testenv"
)

// The -update flag may be defined by another test file of this package too;
// register it only if nobody has (init runs after every package-level var).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata")
	}
}

func buildUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const (
	buildTreeDir   = "../../testdata/kustomize/envrepo"
	buildGoldenDir = "../../testdata/kustomize/golden"
)

// buildTestTree loads testdata/kustomize/envrepo into memory, so that the
// code under test cannot reach the disk.
func buildTestTree(t testing.TB) fstest.MapFS {
	t.Helper()
	tree := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(buildTreeDir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(buildTreeDir, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		tree[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// buildGood lists the kustomization roots of the test tree that build, with
// their golden files.
var buildGood = []struct{ dir, golden string }{
	{"base", "base.yaml"},
	{"overlays/candidate", "candidate.yaml"},
	{"overlays/production", "production.yaml"},
	{"regions/eu", "eu.yaml"},
	{"legacy", "legacy.yaml"},
}

func TestBuildGolden(t *testing.T) {
	tree := buildTestTree(t)
	for _, tc := range buildGood {
		t.Run(tc.dir, func(t *testing.T) {
			got, err := Build(t.Context(), tree, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(buildGoldenDir, tc.golden)
			if buildUpdating() {
				if err := os.MkdirAll(buildGoldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Build(%q) differs from %s (-want +got):\n%s", tc.dir, golden, diff)
			}
		})
	}
}

// TestBuildMatchesKubectl checks Build byte for byte against the kustomize
// that kubectl embeds, run on the same tree on disk.
func TestBuildMatchesKubectl(t *testing.T) {
	kubectl := testenv.LookPath(t, "kubectl", "Google's kubectl package, which the go machine image ships (Debian's kubernetes-client 1.20 embeds too old a kustomize)")
	tree := buildTestTree(t)
	for _, tc := range buildGood {
		t.Run(tc.dir, func(t *testing.T) {
			got, err := Build(t.Context(), tree, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(kubectl, "kustomize", filepath.Join(buildTreeDir, filepath.FromSlash(tc.dir)))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			want, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", tc.dir, err, stderr.Bytes())
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Build(%q) differs from kubectl kustomize (-want +got):\n%s", tc.dir, diff)
			}
		})
	}
}

func TestBuildTreeRoot(t *testing.T) {
	tree := buildTestTree(t)
	tree["kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- overlays/candidate\n- plain/configmap.yaml\n")}
	got, err := Build(t.Context(), tree, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: plain\n", "name: plain-two\n", "image: us-docker.pkg.dev/acme/apps/hello:abc1234\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("Build(\".\") = %s\nwant it to contain %q", got, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tree := buildTestTree(t)
	tree["apps/lost/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- ../../nothere\n")}
	tree["apps/outside/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- ../../../../etc/passwd\n")}
	tree["apps/remote/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- https://127.0.0.1:1/deployment.yaml\n")}
	tree["apps/badyaml/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- deployment.yaml\n")}
	tree["apps/badyaml/deployment.yaml"] = &fstest.MapFile{Data: []byte("kind: Deployment\nmetadata: {name: x\n")}
	tests := []struct {
		dir  string
		want []string // substrings of the error
	}{
		{"overlays/broken", []string{"kustomization overlays/broken does not build", "missing.yaml"}},
		{"overlays/badpatch", []string{"kustomization overlays/badpatch does not build", "Deployment.v1.apps/goodbye"}},
		{"plain", []string{"kustomization plain does not build", "unable to find one of 'kustomization.yaml'"}},
		{"nothere", []string{"kustomization nothere does not build", "/nothere"}},
		{"apps/lost", []string{"kustomization apps/lost does not build", "../../nothere"}},
		// ../ above the root stays at the root: this is /etc/passwd of the tree.
		{"apps/outside", []string{"kustomization apps/outside does not build", "/etc/passwd"}},
		// Refused before kustomize sees it (TestBuildRemoteRefused has more).
		{"apps/remote", []string{"kustomization apps/remote does not build: apps/remote/kustomization.yaml names a remote resource, https://127.0.0.1:1/deployment.yaml (resources); remote resources are not fetched"}},
		{"apps/badyaml", []string{"kustomization apps/badyaml does not build", "deployment.yaml"}},
		{"../overlays/candidate", []string{"kustomization ../overlays/candidate does not build", "invalid argument"}},
		{"/overlays/candidate", []string{"kustomization /overlays/candidate does not build", "invalid argument"}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			start := time.Now()
			out, err := Build(t.Context(), tree, tc.dir)
			if err == nil {
				t.Fatalf("Build(%q) = %q, want an error", tc.dir, out)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Build(%q) took %v to fail, want it fast", tc.dir, d)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Build(%q) error = %q, want it to contain %q", tc.dir, err, w)
				}
			}
		})
	}
}

// TestBuildRemoteResource records what kustomize does with a URL in
// resources once WithRemoteResources allows it: it fetches a plain file over
// HTTP, and a bad status fails at once without trying git.
func TestBuildRemoteResource(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cm.yaml" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\n")
	}))
	defer srv.Close()
	t.Setenv("TMPDIR", t.TempDir()) // in case kustomize makes a clone dir

	tree := fstest.MapFS{
		"ok/kustomization.yaml":      {Data: []byte("resources:\n- " + srv.URL + "/cm.yaml\n")},
		"missing/kustomization.yaml": {Data: []byte("resources:\n- " + srv.URL + "/nothere.yaml\n")},
	}
	got, err := Build(t.Context(), tree, "ok", WithRemoteResources(0))
	if err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Build of a remote file (-want +got):\n%s", diff)
	}

	start := time.Now()
	_, err = Build(t.Context(), tree, "missing", WithRemoteResources(0))
	if err == nil || !strings.Contains(err.Error(), "status code 404") {
		t.Errorf("Build of a missing remote file: error = %v, want status code 404", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Build of a missing remote file took %v", d)
	}
}

// TestBuildRemoteBase records what kustomize does with a git URL in
// resources, once allowed: it runs git to clone it into os.TempDir (here refused at once),
// and leaves that directory behind, as it cleans up through the read-only
// fsys.
func TestBuildRemoteBase(t *testing.T) {
	testenv.LookPath(t, "git", "kustomize runs it to clone a remote base; Debian: apt-get install git")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("GIT_TERMINAL_PROMPT", "0")
	const url = "https://127.0.0.1:1/acme/envs.git//base?ref=main"
	tree := fstest.MapFS{"app/kustomization.yaml": {Data: []byte("resources:\n- " + url + "\n")}}
	start := time.Now()
	_, err := Build(t.Context(), tree, "app", WithRemoteResources(0))
	if err == nil || !strings.Contains(err.Error(), "git fetch --depth=1 https://127.0.0.1:1/acme/envs.git main") {
		t.Errorf("Build with a remote base: error = %v, want the failed git fetch", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Build with a remote base took %v", d)
	}
	left, err := filepath.Glob(filepath.Join(tmp, "kustomize-*"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kustomize left %q behind", left)
}

func TestBuildConcurrent(t *testing.T) {
	tree := buildTestTree(t)
	want, err := Build(t.Context(), tree, "overlays/production")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			dir := buildGood[i%len(buildGood)].dir
			got, err := Build(t.Context(), tree, dir)
			switch {
			case err != nil:
				errs[i] = err
			case dir == "overlays/production" && !bytes.Equal(got, want):
				errs[i] = fmt.Errorf("%s: output differs", dir)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

func TestRoots(t *testing.T) {
	k := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	nested := fstest.MapFS{
		"base/kustomization.yaml":              k("resources: [deployment.yaml]\n"),
		"base/deployment.yaml":                 k("kind: Deployment\n"),
		"base/extra/notes.yaml":                k("a: b\n"),
		"overlays/prod/kustomization.yml":      k("resources: [../../base]\n"),
		"overlays/prod/eu/Kustomization":       k("resources: [../../../base]\n"),
		"overlays/prod/eu/patch.yaml":          k("a: b\n"),
		"overlays/prod/eu/deep/dir/patch.yaml": k("a: b\n"),
		"overlays/README.md":                   k("# overlays\n"),
		"plain/cm.yaml":                        k("kind: ConfigMap\n"),
		"README.md":                            k("# env\n"),
		"odd/kustomization.yaml/x":             k("a directory named like a kustomization\n"),
	}
	rooted := fstest.MapFS{
		"kustomization.yaml":          k("resources: [apps/hello]\n"),
		"README.md":                   k("# env\n"),
		"apps/hello/service.yaml":     k("kind: Service\n"),
		"apps/web/kustomization.yaml": k("resources: []\n"),
		"apps/web/cm.yaml":            k("kind: ConfigMap\n"),
	}
	tests := []struct {
		name  string
		fsys  fs.FS
		files []string
		want  []string
	}{
		{"file in a root", nested, []string{"base/deployment.yaml"}, []string{"base"}},
		{"kustomization file itself", nested, []string{"base/kustomization.yaml"}, []string{"base"}},
		{"file below a root", nested, []string{"base/extra/notes.yaml"}, []string{"base"}},
		{"kustomization.yml", nested, []string{"overlays/prod/kustomization.yml"}, []string{"overlays/prod"}},
		{"nested Kustomization wins over its parent", nested, []string{"overlays/prod/eu/patch.yaml"}, []string{"overlays/prod/eu"}},
		{"deep below a nested root", nested, []string{"overlays/prod/eu/deep/dir/patch.yaml"}, []string{"overlays/prod/eu"}},
		{"a directory is its own candidate", nested, []string{"overlays/prod/eu"}, []string{"overlays/prod/eu"}},
		{"no kustomization anywhere", nested, []string{"plain/cm.yaml", "overlays/README.md", "README.md"}, nil},
		{"deleted file still has a root", nested, []string{"base/gone.yaml", "overlays/prod/eu/gone/x.yaml"}, []string{"base", "overlays/prod/eu"}},
		{"a directory named kustomization.yaml is not one", nested, []string{"odd/kustomization.yaml/x"}, nil},
		{"sorted and de-duplicated", nested, []string{
			"overlays/prod/eu/patch.yaml", "base/deployment.yaml", "plain/cm.yaml",
			"base/extra/notes.yaml", "overlays/prod/kustomization.yml", "base/kustomization.yaml",
		}, []string{"base", "overlays/prod", "overlays/prod/eu"}},
		{"file at the root", rooted, []string{"README.md"}, []string{"."}},
		{"root kustomization catches the rest", rooted, []string{"apps/hello/service.yaml", "apps/web/cm.yaml"}, []string{".", "apps/web"}},
		{"no files", rooted, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Roots(tc.fsys, tc.files)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Roots(%q) (-want +got):\n%s", tc.files, diff)
			}
		})
	}
}

func TestRootsInvalidPath(t *testing.T) {
	tree := fstest.MapFS{"kustomization.yaml": {Data: []byte("resources: []\n")}}
	for _, f := range []string{"../x.yaml", "/x.yaml", "a/../x.yaml", ""} {
		if got, err := Roots(tree, []string{f}); err == nil {
			t.Errorf("Roots(%q) = %q, want an error", f, got)
		}
	}
}

func TestValidate(t *testing.T) {
	tree := buildTestTree(t)
	tree["plain/bad.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\n---\nmetadata:\n  name: x: y\n")}
	tree["base/notes.txt"] = &fstest.MapFile{Data: []byte("key: value: not yaml, but not a YAML file either\n")}
	tests := []struct {
		name     string
		files    []string
		want     []string // substrings of the error; nil for no error
		failures int      // errors joined
	}{
		{"good overlay", []string{"overlays/candidate/kustomization.yaml"}, nil, 0},
		{"good base and its overlays' files", []string{"base/deployment.yaml", "overlays/production/replicas.yaml", "regions/eu/kustomization.yml"}, nil, 0},
		{"plain YAML without kustomization", []string{"plain/configmap.yaml"}, nil, 0},
		{"non-YAML file is not parsed", []string{"base/notes.txt"}, nil, 0},
		{"deleted file", []string{"overlays/candidate/gone.yaml"}, nil, 0},
		{"unparsable file", []string{"plain/bad.yaml"}, []string{"plain/bad.yaml does not parse as YAML (document 2)", "line 5"}, 1},
		{"broken overlay", []string{"overlays/broken/kustomization.yaml"}, []string{"kustomization overlays/broken does not build", "missing.yaml"}, 1},
		{"bad patch", []string{"overlays/badpatch/patch.yaml"}, []string{"kustomization overlays/badpatch does not build"}, 1},
		{"every failure reported", []string{
			"overlays/candidate/kustomization.yaml",
			"plain/bad.yaml",
			"overlays/broken/kustomization.yaml",
			"overlays/badpatch/patch.yaml",
			"plain/bad.yaml",
		}, []string{
			"plain/bad.yaml does not parse",
			"kustomization overlays/broken does not build",
			"kustomization overlays/badpatch does not build",
		}, 3},
		{"invalid path", []string{"../escape.yaml", "plain/configmap.yaml"}, []string{"validating ../escape.yaml"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(t.Context(), tree, tc.files)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want nil", tc.files, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%q) = nil, want an error", tc.files)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate(%q) = %q, want it to contain %q", tc.files, err, w)
				}
			}
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				if got := len(joined.Unwrap()); got != tc.failures {
					t.Errorf("Validate(%q) reported %d failures, want %d:\n%v", tc.files, got, tc.failures, err)
				}
			}
		})
	}
}

// buildUnrelatedTree is the test tree with n unrelated apps beside it, each
// a small kustomization.
func buildUnrelatedTree(tb testing.TB, n int) fstest.MapFS {
	tree := buildTestTree(tb)
	for i := range n {
		dir := fmt.Sprintf("apps/unrelated-%03d", i)
		tree[path.Join(dir, "kustomization.yaml")] = &fstest.MapFile{Data: []byte("resources:\n- deployment.yaml\n")}
		tree[path.Join(dir, "deployment.yaml")] = &fstest.MapFile{Data: fmt.Appendf(nil,
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%03d\n", i)}
	}
	return tree
}

func BenchmarkBuildOverlay(b *testing.B) {
	tree := buildUnrelatedTree(b, 200)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(b.Context(), tree, "overlays/production"); err != nil {
			b.Fatal(err)
		}
	}
}
