package envrepo

import (
	"fmt"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// bigSnapshot builds, in memory, a tree of apps × 5 files and a commit.
func bigSnapshot(b *testing.B, apps int) *Snapshot {
	b.Helper()
	st := memory.NewStorage()
	s := &Snapshot{s: st}
	root, err := s.writeTree(nil)
	if err != nil {
		b.Fatal(err)
	}
	s.root = root
	for a := range apps {
		for _, f := range []string{"kustomization.yaml", "deployment.yaml", "service.yaml", "configmap.yaml", "hpa.yaml"} {
			if err := s.WriteFile(fmt.Sprintf("apps/app%04d/%s", a, f), fmt.Appendf(nil, "# app %d\nkind: %s\n", a, f)); err != nil {
				b.Fatal(err)
			}
		}
	}
	c := &object.Commit{Author: object.Signature{Name: "b"}, Committer: object.Signature{Name: "b"}, Message: "seed", TreeHash: s.root}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		b.Fatal(err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := newSnapshot(st, "candidate", h)
	if err != nil {
		b.Fatal(err)
	}
	return snap
}

// BenchmarkTreeSurgery: replace one file deep in a 2,000-app tree and list
// what changed: the cost of a deploy's edit, independent of the network.
func BenchmarkTreeSurgery(b *testing.B) {
	s := bigSnapshot(b, 2000)
	base := s.root
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.root = base
		i++
		if err := s.WriteFile("apps/app1234/deployment.yaml", fmt.Appendf(nil, "kind: Deployment\nv: %d\n", i)); err != nil {
			b.Fatal(err)
		}
		if got, err := s.Touched(); err != nil || len(got) != 1 {
			b.Fatalf("touched %v", got)
		}
	}
}

// BenchmarkNewObjects: what a push of that edit sends (commit, 3 trees, 1 blob).
func BenchmarkNewObjects(b *testing.B) {
	s := bigSnapshot(b, 2000)
	if err := s.WriteFile("apps/app1234/deployment.yaml", []byte("kind: Deployment\nv: 2\n")); err != nil {
		b.Fatal(err)
	}
	c, err := s.commit("edit", object.Signature{Name: "b"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		hs, err := s.newObjects(c)
		if err != nil || len(hs) != 5 {
			b.Fatal(err, len(hs))
		}
	}
	_ = plumbing.ZeroHash
}
