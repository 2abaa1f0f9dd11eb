package manifest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kfsTestTree is the test tree plus symbolic links and a hidden file.
func kfsTestTree(t testing.TB) fstest.MapFS {
	t.Helper()
	tree := buildTestTree(t)
	link := func(target string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
	}
	tree["links/base"] = link("../base")
	tree["links/deployment.yaml"] = link("../base/deployment.yaml")
	tree["links/chain"] = link("base")
	tree["links/absolute"] = link("/etc")
	tree["links/escape"] = link("../../etc")
	tree["links/loop-a"] = link("loop-b")
	tree["links/loop-b"] = link("loop-a")
	tree["links/dangling"] = link("nothere")
	tree["links/up"] = link("..")
	tree["links/self"] = link(".")
	tree["links/overlay/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- ../base\nnamespace: linked\n")}
	tree["base/.hidden.yaml"] = &fstest.MapFile{Data: []byte("a: b\n")}
	return tree
}

func TestFSRel(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "/", want: "."},
		{in: ".", want: "."},
		{in: "//", want: "."},
		{in: "/base", want: "base"},
		{in: "base", want: "base"},
		{in: "base/", want: "base"},
		{in: "/base/./x//y/", want: "base/x/y"},
		{in: "/overlays/candidate/../../base", want: "base"},
		{in: "a/..", want: "."},
		{in: "", err: fs.ErrInvalid},
		{in: "..", err: errKfsEscape},
		{in: "../base", err: errKfsEscape},
		{in: "/../base", err: errKfsEscape},
		{in: "/base/../../etc/passwd", err: errKfsEscape},
	}
	for _, tc := range tests {
		got, err := kfsRel(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("kfsRel(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFSCleanedAbs(t *testing.T) {
	a := NewFS(kfsTestTree(t))
	tests := []struct {
		in, dir, file string
		err           error
	}{
		{in: "/", dir: "/"},
		{in: ".", dir: "/"},
		{in: "/base", dir: "/base"},
		{in: "base", dir: "/base"},
		{in: "/base/", dir: "/base"},
		{in: "/base/deployment.yaml", dir: "/base", file: "deployment.yaml"},
		{in: "base/deployment.yaml", dir: "/base", file: "deployment.yaml"},
		{in: "/overlays/candidate/../../base/service.yaml", dir: "/base", file: "service.yaml"},
		{in: "/legacy/Kustomization", dir: "/legacy", file: "Kustomization"},
		{in: "/links/base", dir: "/base"},
		{in: "/links/base/service.yaml", dir: "/base", file: "service.yaml"},
		{in: "/links/chain/service.yaml", dir: "/base", file: "service.yaml"},
		{in: "/links/deployment.yaml", dir: "/base", file: "deployment.yaml"},
		{in: "/links/up", dir: "/"},
		{in: "/links/up/base/kustomization.yaml", dir: "/base", file: "kustomization.yaml"},
		{in: "/links/self/self/chain", dir: "/base"},
		{in: "/links/base/../overlay", dir: "/links/overlay"}, // cleaned before links are read, as on disk
		{in: "/nothere", err: fs.ErrNotExist},
		{in: "/base/nothere.yaml", err: fs.ErrNotExist},
		{in: "/links/dangling", err: fs.ErrNotExist},
		{in: "", err: fs.ErrInvalid},
		{in: "/../base", err: errKfsEscape},
		{in: "../base", err: errKfsEscape},
		{in: "/links/escape", err: errKfsEscape},
		{in: "/links/absolute", err: errKfsLink},
		{in: "/links/loop-a", err: errKfsLink},
	}
	for _, tc := range tests {
		dir, file, err := a.CleanedAbs(tc.in)
		if string(dir) != tc.dir || file != tc.file || !errors.Is(err, tc.err) {
			t.Errorf("CleanedAbs(%q) = %q, %q, %v; want %q, %q, %v", tc.in, dir, file, err, tc.dir, tc.file, tc.err)
		}
	}
}

// TestFSMatchesDisk compares the adapter over the test tree with kustomize's
// own on-disk file system over the same tree on disk.
func TestFSMatchesDisk(t *testing.T) {
	root, err := filepath.Abs(buildTreeDir)
	if err != nil {
		t.Fatal(err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		t.Fatal(err)
	}
	disk := filesys.MakeFsOnDisk()
	mem := NewFS(buildTestTree(t))
	strip := func(s string) string {
		if s == root {
			return "/"
		}
		return strings.TrimPrefix(s, root)
	}
	for _, p := range []string{
		"/", "/base", "/base/", "/base/deployment.yaml", "/overlays/production/replicas.yaml",
		"/overlays/candidate/../../base", "/legacy/Kustomization", "/plain", "/nothere", "/base/nothere.yaml",
	} {
		t.Run(p, func(t *testing.T) {
			dp := root + p
			type result struct {
				Dir, File     string
				Err           bool
				IsDir, Exists bool
				Names         []string
				NamesErr      bool
				Data          string
				DataErr       bool
			}
			var want, got result
			d, f, err := disk.CleanedAbs(dp)
			want.Dir, want.File, want.Err = strip(string(d)), f, err != nil
			d, f, err = mem.CleanedAbs(p)
			got.Dir, got.File, got.Err = string(d), f, err != nil
			want.IsDir, got.IsDir = disk.IsDir(dp), mem.IsDir(p)
			want.Exists, got.Exists = disk.Exists(dp), mem.Exists(p)
			want.Names, err = disk.ReadDir(dp)
			want.NamesErr = err != nil
			got.Names, err = mem.ReadDir(p)
			got.NamesErr = err != nil
			b, err := disk.ReadFile(dp)
			want.Data, want.DataErr = string(b), err != nil
			b, err = mem.ReadFile(p)
			got.Data, got.DataErr = string(b), err != nil
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("adapter differs from disk (-disk +adapter):\n%s", diff)
			}
		})
	}
	for _, pat := range []string{"/*", "/base/*.yaml", "/overlays/*/kustomization.yaml", "/*/*/k*", "/nothere/*"} {
		t.Run("glob "+pat, func(t *testing.T) {
			want, err := disk.Glob(root + pat)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				want[i] = strip(want[i])
			}
			got, err := mem.Glob(pat)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Glob(%q) (-disk +adapter):\n%s", pat, diff)
			}
		})
	}
	t.Run("walk", func(t *testing.T) {
		walk := func(fsys filesys.FileSystem, start string) []string {
			var seen []string
			err := fsys.Walk(start, func(p string, info fs.FileInfo, err error) error {
				if err != nil {
					return err
				}
				seen = append(seen, strip(p)+" "+info.Name()+" "+info.Mode().Type().String())
				if info.Name() == "badpatch" {
					return filepath.SkipDir
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return seen
		}
		want := walk(disk, root)
		want[0] = "/ . d---------" // the disk root's own name is its base name
		if diff := cmp.Diff(want, walk(mem, "/")); diff != "" {
			t.Errorf("Walk (-disk +adapter):\n%s", diff)
		}
		if diff := cmp.Diff(walk(disk, root+"/overlays"), walk(mem, "/overlays")); diff != "" {
			t.Errorf("Walk /overlays (-disk +adapter):\n%s", diff)
		}
	})
}

func TestFSIsDirExists(t *testing.T) {
	a := NewFS(kfsTestTree(t))
	tests := []struct {
		in            string
		isDir, exists bool
	}{
		{"/", true, true},
		{"", false, false},
		{"/base", true, true},
		{"overlays/candidate", true, true},
		{"/base/deployment.yaml", false, true},
		{"/links/base", true, true},
		{"/links/deployment.yaml", false, true},
		{"/nothere", false, false},
		{"/base/deployment.yaml/x", false, false},
		{"/links/dangling", false, false},
		{"/links/escape", false, false},
		{"/links/absolute", false, false},
		{"/../base", false, false},
		{"../base/deployment.yaml", false, false},
	}
	for _, tc := range tests {
		if got := a.IsDir(tc.in); got != tc.isDir {
			t.Errorf("IsDir(%q) = %v, want %v", tc.in, got, tc.isDir)
		}
		if got := a.Exists(tc.in); got != tc.exists {
			t.Errorf("Exists(%q) = %v, want %v", tc.in, got, tc.exists)
		}
	}
}

func TestFSReadDir(t *testing.T) {
	a := NewFS(kfsTestTree(t))
	tests := []struct {
		in      string
		want    []string
		wantErr bool
		err     error
	}{
		{in: "/base", want: []string{".hidden.yaml", "deployment.yaml", "kustomization.yaml", "service.yaml"}},
		{in: "/links/base", want: []string{".hidden.yaml", "deployment.yaml", "kustomization.yaml", "service.yaml"}},
		{in: "overlays", want: []string{"badpatch", "broken", "candidate", "production"}},
		{in: "/", want: []string{"base", "legacy", "links", "overlays", "plain", "regions"}},
		{in: "/nothere", wantErr: true, err: fs.ErrNotExist},
		{in: "/base/deployment.yaml", wantErr: true},
		{in: "/../base", wantErr: true, err: errKfsEscape},
	}
	for _, tc := range tests {
		got, err := a.ReadDir(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ReadDir(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
		}
		if tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("ReadDir(%q) error = %v, want %v", tc.in, err, tc.err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ReadDir(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestFSGlob(t *testing.T) {
	a := NewFS(kfsTestTree(t))
	tests := []struct {
		pattern string
		want    []string
		err     bool
	}{
		{pattern: "/base/*.yaml", want: []string{"/base/deployment.yaml", "/base/kustomization.yaml", "/base/service.yaml"}},
		{pattern: "base/*.yaml", want: []string{"base/deployment.yaml", "base/kustomization.yaml", "base/service.yaml"}},
		{pattern: "/base/.*", want: []string{"/base/.hidden.yaml"}},
		{pattern: "/overlays/*", want: []string{"/overlays/badpatch", "/overlays/broken", "/overlays/candidate", "/overlays/production"}},
		{pattern: "/overlays/candidate/../../base/s*", want: []string{"/base/service.yaml"}},
		{pattern: "/nothere/*", want: nil},
		{pattern: "/base/[", err: true},
		{pattern: "/../*", err: true},
	}
	for _, tc := range tests {
		got, err := a.Glob(tc.pattern)
		if (err != nil) != tc.err {
			t.Errorf("Glob(%q) error = %v, want error %v", tc.pattern, err, tc.err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Glob(%q) (-want +got):\n%s", tc.pattern, diff)
		}
	}
}

func TestFSWalk(t *testing.T) {
	a := NewFS(kfsTestTree(t))
	var got []string
	err := a.Walk("overlays/candidate/../production", func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		got = append(got, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/overlays/production", "/overlays/production/kustomization.yaml", "/overlays/production/replicas.yaml"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Walk (-want +got):\n%s", diff)
	}

	// Through a link the paths stay under the name given; links below the
	// root are not followed.
	got = nil
	err = a.Walk("/links", func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		got = append(got, p+" "+info.Mode().Type().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"/links d---------", "/links/absolute L---------", "/links/base L---------", "/links/chain L---------",
		"/links/dangling L---------", "/links/deployment.yaml L---------", "/links/escape L---------",
		"/links/loop-a L---------", "/links/loop-b L---------",
		"/links/overlay d---------", "/links/overlay/kustomization.yaml ----------",
		"/links/self L---------", "/links/up L---------",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Walk /links (-want +got):\n%s", diff)
	}
	got = nil
	err = a.Walk("/links/base", func(p string, info fs.FileInfo, err error) error {
		got = append(got, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"/links/base", "/links/base/.hidden.yaml", "/links/base/deployment.yaml", "/links/base/kustomization.yaml", "/links/base/service.yaml"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Walk /links/base (-want +got):\n%s", diff)
	}

	// A missing root and an escaping root are reported to walkFn.
	for _, root := range []string{"/nothere", "/../x"} {
		var calls int
		sentinel := errors.New("stop")
		err = a.Walk(root, func(p string, info fs.FileInfo, err error) error {
			calls++
			if err == nil || info != nil {
				t.Errorf("Walk(%q) called walkFn(%q, %v, %v), want an error and no info", root, p, info, err)
			}
			return sentinel
		})
		if calls != 1 || !errors.Is(err, sentinel) {
			t.Errorf("Walk(%q) = %v after %d calls, want the walkFn's error after 1", root, err, calls)
		}
	}
}

func TestFSEscapeRefused(t *testing.T) {
	a := NewFS(kfsTestTree(t))
	for _, p := range []string{"..", "../base", "/../base/deployment.yaml", "/base/../../base/deployment.yaml", "/links/escape/passwd"} {
		if _, err := a.ReadFile(p); err == nil {
			t.Errorf("ReadFile(%q) succeeded", p)
		}
		if _, err := a.Open(p); err == nil {
			t.Errorf("Open(%q) succeeded", p)
		}
		if _, _, err := a.CleanedAbs(p); err == nil {
			t.Errorf("CleanedAbs(%q) succeeded", p)
		}
		if _, err := a.ReadDir(p); err == nil {
			t.Errorf("ReadDir(%q) succeeded", p)
		}
		if a.Exists(p) || a.IsDir(p) {
			t.Errorf("Exists(%q) or IsDir(%q) is true", p, p)
		}
	}
}

func TestFSWritesRefused(t *testing.T) {
	tree := kfsTestTree(t)
	before := len(tree)
	a := NewFS(tree)
	errs := map[string]error{
		"Mkdir":     a.Mkdir("/new"),
		"MkdirAll":  a.MkdirAll("/new/dir"),
		"RemoveAll": a.RemoveAll("/base"),
		"WriteFile": a.WriteFile("/base/deployment.yaml", []byte("x")),
	}
	_, errs["Create"] = a.Create("/new.yaml")
	f, err := a.Open("/base/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, errs["Write"] = f.Write([]byte("x"))
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	for name, err := range errs {
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "read-only file system") {
			t.Errorf("%s: error = %v, want a read-only error matching fs.ErrPermission", name, err)
		}
	}
	if len(tree) != before || string(tree["base/deployment.yaml"].Data) == "x" || !a.Exists("/base") {
		t.Error("the tree changed")
	}
}

func TestFSOpen(t *testing.T) {
	tree := kfsTestTree(t)
	a := NewFS(tree)
	for _, p := range []string{"/base/deployment.yaml", "base/deployment.yaml", "/links/deployment.yaml", "/links/chain/deployment.yaml"} {
		f, err := a.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(tree["base/deployment.yaml"].Data), string(b)); diff != "" {
			t.Errorf("Open(%q) read (-want +got):\n%s", p, diff)
		}
		fi, err := f.Stat()
		if err != nil || fi.Name() != "deployment.yaml" || fi.IsDir() || fi.Size() != int64(len(b)) {
			t.Errorf("Open(%q).Stat() = %v, %v", p, fi, err)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
		rb, err := a.ReadFile(p)
		if err != nil || string(rb) != string(b) {
			t.Errorf("ReadFile(%q) = %q, %v", p, rb, err)
		}
	}
	if _, err := a.Open("/nothere.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := a.ReadFile("/base"); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
	d, err := a.Open("/base")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := d.Stat(); err != nil || !fi.IsDir() {
		t.Errorf("Open(/base).Stat() = %v, %v; want a directory", fi, err)
	}
	d.Close()
}

// kfsNoLinks hides ReadLink and reports links as they are, as an fs.FS over
// a git tree may do.
type kfsNoLinks struct{ m fstest.MapFS }

func (n kfsNoLinks) Open(name string) (fs.File, error)          { return n.m.Open(name) }
func (n kfsNoLinks) Stat(name string) (fs.FileInfo, error)      { return n.m.Lstat(name) }
func (n kfsNoLinks) ReadFile(name string) ([]byte, error)       { return n.m.ReadFile(name) }
func (n kfsNoLinks) ReadDir(name string) ([]fs.DirEntry, error) { return n.m.ReadDir(name) }

func TestFSWithoutReadLink(t *testing.T) {
	a := NewFS(kfsNoLinks{kfsTestTree(t)})
	if _, err := a.ReadFile("/links/deployment.yaml"); !errors.Is(err, errKfsLink) {
		t.Errorf("ReadFile of a link = %v, want it refused", err)
	}
	if a.Exists("/links/base") {
		t.Error("Exists of a link is true")
	}
	if _, err := a.ReadFile("/base/deployment.yaml"); err != nil {
		t.Error(err)
	}
	if _, _, err := a.CleanedAbs("/base/deployment.yaml"); err != nil {
		t.Error(err)
	}
}

func TestFSBuildThroughLinks(t *testing.T) {
	tree := kfsTestTree(t)
	got, err := Build(t.Context(), tree, "links/overlay")
	if err != nil {
		t.Fatal(err)
	}
	tree["direct/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- ../base\nnamespace: linked\n")}
	want, err := Build(t.Context(), tree, "direct")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("Build through a linked base (-direct +linked):\n%s", diff)
	}
}

// kfsCounting records every path asked of it.
type kfsCounting struct {
	m fstest.MapFS

	mu     sync.Mutex
	read   []string // files opened or read
	looked []string // every path passed to any method
}

func (c *kfsCounting) note(name string, read bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.looked = append(c.looked, name)
	if read {
		c.read = append(c.read, name)
	}
}

func (c *kfsCounting) Open(name string) (fs.File, error) {
	f, err := c.m.Open(name)
	isFile := false
	if err == nil {
		if fi, err := f.Stat(); err == nil && !fi.IsDir() {
			isFile = true
		}
	}
	c.note(name, isFile)
	return f, err
}

func (c *kfsCounting) ReadFile(name string) ([]byte, error) {
	c.note(name, true)
	return c.m.ReadFile(name)
}

func (c *kfsCounting) ReadDir(name string) ([]fs.DirEntry, error) {
	c.note(name, false)
	return c.m.ReadDir(name)
}

func (c *kfsCounting) Stat(name string) (fs.FileInfo, error) {
	c.note(name, false)
	return c.m.Stat(name)
}

func (c *kfsCounting) Lstat(name string) (fs.FileInfo, error) {
	c.note(name, false)
	return c.m.Lstat(name)
}

func (c *kfsCounting) ReadLink(name string) (string, error) {
	c.note(name, false)
	return c.m.ReadLink(name)
}

func TestFSBuildReadsOnlyWhatItNeeds(t *testing.T) {
	c := &kfsCounting{m: buildUnrelatedTree(t, 200)}
	if _, err := Build(t.Context(), c, "overlays/production"); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.looked {
		if strings.HasPrefix(p, "apps/") && p != "apps" {
			t.Errorf("Build looked at %s, in an unrelated app", p)
		}
	}
	slices.Sort(c.read)
	want := []string{
		"base/deployment.yaml",
		"base/kustomization.yaml",
		"base/service.yaml",
		"overlays/production/kustomization.yaml",
		"overlays/production/replicas.yaml",
	}
	if diff := cmp.Diff(want, slices.Compact(c.read)); diff != "" {
		t.Errorf("files read (-want +got):\n%s", diff)
	}
	t.Logf("%d lookups, %d reads (%d distinct files)", len(c.looked), len(c.read), len(want))
}

func TestFSDoesNotTouchDisk(t *testing.T) {
	// A tree whose paths exist on disk too must still be served from fsys.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	p := strings.TrimPrefix(filepath.ToSlash(wd), "/") + "/fsys_test.go"
	tree := fstest.MapFS{p: {Data: []byte("in memory")}}
	b, err := NewFS(tree).ReadFile("/" + p)
	if err != nil || string(b) != "in memory" {
		t.Errorf("ReadFile(%q) = %q, %v; want the in-memory file", "/"+p, b, err)
	}
	if NewFS(tree).Exists(wd + "/build.go") {
		t.Errorf("Exists(%q) is true: the adapter reached the disk", wd+"/build.go")
	}
}
