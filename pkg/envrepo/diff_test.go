package envrepo

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// referenceDiff is how Diff was made before it reused the change list:
// go-git's tree diff over the whole trees, then its patch. Diff must print
// exactly this.
func referenceDiff(s *Snapshot) (string, error) {
	// Not s.tree: the trees writeTree caches cannot load their subtrees.
	from, err := object.GetTree(s.s, s.baseTree)
	if err != nil {
		return "", err
	}
	to, err := object.GetTree(s.s, s.root)
	if err != nil {
		return "", err
	}
	changes, err := object.DiffTree(from, to)
	if err != nil || len(changes) == 0 {
		return "", err
	}
	p, err := changes.Patch()
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := p.Encode(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// referenceFileChanges is FileChanges as it was before the change list:
// a walk of both trees through maps of their entries, sorted by path.
func referenceFileChanges(s *Snapshot) ([]FileChange, error) {
	var out []FileChange
	var walk func(dir string, now, before plumbing.Hash) error
	entries := func(h plumbing.Hash) (map[string]object.TreeEntry, error) {
		m := map[string]object.TreeEntry{}
		if h.IsZero() {
			return m, nil
		}
		t, err := s.tree(h)
		if err != nil {
			return nil, err
		}
		for _, e := range t.Entries {
			m[e.Name] = e
		}
		return m, nil
	}
	walk = func(dir string, now, before plumbing.Hash) error {
		if now == before {
			return nil
		}
		a, err := entries(now)
		if err != nil {
			return err
		}
		b, err := entries(before)
		if err != nil {
			return err
		}
		names := map[string]bool{}
		for n := range a {
			names[n] = true
		}
		for n := range b {
			names[n] = true
		}
		for n := range names {
			ea, inA := a[n]
			eb, inB := b[n]
			if inA && inB && ea.Hash == eb.Hash && ea.Mode == eb.Mode {
				continue
			}
			p := path.Join(dir, n)
			subA, subB := plumbing.ZeroHash, plumbing.ZeroHash
			if inA && ea.Mode == filemode.Dir {
				subA = ea.Hash
			}
			if inB && eb.Mode == filemode.Dir {
				subB = eb.Hash
			}
			if !subA.IsZero() || !subB.IsZero() {
				if err := walk(p, subA, subB); err != nil {
					return err
				}
			}
			fileA := inA && ea.Mode != filemode.Dir
			fileB := inB && eb.Mode != filemode.Dir
			switch {
			case fileA && fileB:
				out = append(out, FileChange{p, "modified"})
			case fileA:
				out = append(out, FileChange{p, "added"})
			case fileB:
				out = append(out, FileChange{p, "removed"})
			}
		}
		return nil
	}
	if err := walk("", s.root, s.baseTree); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// memSnapshot commits files (path: content) in memory and returns a
// snapshot of that commit.
func memSnapshot(t testing.TB, files map[string]string) *Snapshot {
	t.Helper()
	st := memory.NewStorage()
	s := &Snapshot{s: st}
	root, err := s.writeTree(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.root = root
	for _, name := range sortedNames(files) {
		if err := s.WriteFile(name, []byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	c := &object.Commit{Author: object.Signature{Name: "t"}, Committer: object.Signature{Name: "t"}, Message: "seed", TreeHash: s.root}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := newSnapshot(st, "main", h)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func sortedNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// setEntry puts an entry of any mode (symlink, submodule, 100664) at name.
func setEntry(t testing.TB, s *Snapshot, name string, mode filemode.FileMode, data string) {
	t.Helper()
	h := plumbing.NewHash(fmt.Sprintf("%040x", len(data)+1)) // a submodule's commit
	if mode != filemode.Submodule {
		obj := s.s.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, _ := obj.Writer()
		w.Write([]byte(data))
		w.Close()
		var err error
		if h, err = s.s.SetEncodedObject(obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.set(name, &object.TreeEntry{Name: name[strings.LastIndexByte(name, '/')+1:], Mode: mode, Hash: h}); err != nil {
		t.Fatal(err)
	}
}

// Diff prints what go-git's tree diff and patch print, in every shape of
// change: edits, additions, removals, a file turned directory and back,
// names that sort differently by path than by tree ("a-b" and "a/c"),
// modes, symlinks, submodules, binary and empty files.
func TestDiffMatchesTreeDiff(t *testing.T) {
	base := map[string]string{
		"README.md":                 "env\n",
		"apps/a/deploy.yaml":        "kind: Deployment\nimage: a:1\nreplicas: 1\n",
		"apps/a/kustomization.yaml": "resources:\n- deploy.yaml\n",
		"apps/b/deploy.yaml":        "kind: Deployment\nimage: b:1\n",
		"apps/c/x":                  "x\n",
		"apps/d":                    "a file\n",
		"a/c":                       "c\n",
		"bin/tool":                  "\x00\x01binary\n",
		"long.txt":                  strings.Repeat("line\n", 40),
	}
	cases := []struct {
		name string
		edit func(t *testing.T, s *Snapshot)
	}{
		{"modify", func(t *testing.T, s *Snapshot) {
			must(t, s.WriteFile("apps/a/deploy.yaml", []byte("kind: Deployment\nimage: a:2\nreplicas: 1\n")))
		}},
		{"add and remove", func(t *testing.T, s *Snapshot) {
			must(t, s.WriteFile("apps/new/deploy.yaml", []byte("kind: Deployment\n")))
			must(t, s.Remove("apps/b"))
			must(t, s.Remove("README.md"))
		}},
		{"file to dir and back", func(t *testing.T, s *Snapshot) {
			must(t, s.Remove("apps/d"))
			must(t, s.WriteFile("apps/d/inner.yaml", []byte("now a dir\n")))
			must(t, s.Remove("apps/c"))
			must(t, s.WriteFile("apps/c", []byte("now a file\n")))
		}},
		{"path order is not tree order", func(t *testing.T, s *Snapshot) {
			must(t, s.WriteFile("a-b", []byte("dash\n")))
			must(t, s.WriteFile("a.b/z", []byte("dot\n")))
			must(t, s.WriteFile("a/c", []byte("c2\n")))
			must(t, s.WriteFile("a0", []byte("zero\n")))
		}},
		{"modes", func(t *testing.T, s *Snapshot) {
			setEntry(t, s, "apps/a/deploy.yaml", filemode.Executable, base["apps/a/deploy.yaml"])
			setEntry(t, s, "apps/b/deploy.yaml", filemode.Executable, "changed\n")
			setEntry(t, s, "README.md", filemode.Deprecated, base["README.md"])
		}},
		{"symlinks and submodules", func(t *testing.T, s *Snapshot) {
			setEntry(t, s, "link", filemode.Symlink, "apps/a")
			setEntry(t, s, "apps/a/deploy.yaml", filemode.Symlink, "../b/deploy.yaml")
			setEntry(t, s, "vendor/sub", filemode.Submodule, "x")
			setEntry(t, s, "apps/c/x", filemode.Submodule, "xy")
		}},
		{"binary and empty", func(t *testing.T, s *Snapshot) {
			must(t, s.WriteFile("bin/tool", []byte("\x00\x02binary\n")))
			must(t, s.WriteFile("empty", nil))
			must(t, s.WriteFile("apps/c/x", nil))
			must(t, s.WriteFile("apps/b/deploy.yaml", []byte("no newline at the end")))
		}},
		{"hunks", func(t *testing.T, s *Snapshot) {
			lines := strings.Split(base["long.txt"], "\n")
			lines[3], lines[30] = "third", "thirtieth"
			must(t, s.WriteFile("long.txt", []byte(strings.Join(lines, "\n"))))
		}},
		{"back to the base", func(t *testing.T, s *Snapshot) {
			must(t, s.WriteFile("README.md", []byte("other\n")))
			must(t, s.WriteFile("README.md", []byte("env\n")))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := memSnapshot(t, base)
			tc.edit(t, s)
			want, err := referenceDiff(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Diff()
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("Diff:\n%s\ngo-git's tree diff:\n%s", got, want)
			}
			fc, err := s.FileChanges()
			if err != nil {
				t.Fatal(err)
			}
			if ref, _ := referenceFileChanges(s); !slices.Equal(fc, ref) {
				t.Fatalf("FileChanges = %v, want %v", fc, ref)
			}
			if tc.name != "back to the base" && got == "" {
				t.Fatal("empty diff")
			}
		})
	}
}

// The change list is computed once per working tree and follows edits.
func TestChangeListCached(t *testing.T) {
	s := memSnapshot(t, map[string]string{"a/x": "1\n", "b/y": "2\n"})
	must(t, s.WriteFile("a/x", []byte("3\n")))
	first, err := s.changeList()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Touched(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Diff(); err != nil {
		t.Fatal(err)
	}
	again, _ := s.changeList()
	if &first[0] != &again[0] {
		t.Fatal("the change list was computed again for the same tree")
	}
	must(t, s.Remove("b"))
	got, err := s.Touched()
	if err != nil || !slices.Equal(got, []string{"a/x", "b/y"}) {
		t.Fatalf("after another edit: %v, %v", got, err)
	}
	s.Reset()
	if got, _ := s.Touched(); len(got) != 0 {
		t.Fatalf("after Reset: %v", got)
	}
}
