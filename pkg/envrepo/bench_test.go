package envrepo

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// bigSnapshot builds, in memory, a tree of apps × 5 files and a commit.
// It writes each tree once (the same trees WriteFile would make, file by
// file, in quadratic time).
func bigSnapshot(b testing.TB, apps int) *Snapshot {
	b.Helper()
	st := memory.NewStorage()
	s := &Snapshot{s: st}
	blob := func(data []byte) plumbing.Hash {
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, _ := obj.Writer()
		w.Write(data)
		w.Close()
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	var appEntries []object.TreeEntry
	for a := range apps {
		var files []object.TreeEntry
		for _, f := range []string{"kustomization.yaml", "deployment.yaml", "service.yaml", "configmap.yaml", "hpa.yaml"} {
			files = append(files, object.TreeEntry{Name: f, Mode: filemode.Regular, Hash: blob(fmt.Appendf(nil, "# app %d\nkind: %s\n", a, f))})
		}
		h, err := s.writeTree(files)
		if err != nil {
			b.Fatal(err)
		}
		appEntries = append(appEntries, object.TreeEntry{Name: fmt.Sprintf("app%04d", a), Mode: filemode.Dir, Hash: h})
	}
	appsTree, err := s.writeTree(appEntries)
	if err != nil {
		b.Fatal(err)
	}
	root, err := s.writeTree([]object.TreeEntry{{Name: "apps", Mode: filemode.Dir, Hash: appsTree}})
	if err != nil {
		b.Fatal(err)
	}
	c := &object.Commit{Author: object.Signature{Name: "b"}, Committer: object.Signature{Name: "b"}, Message: "seed", TreeHash: root}
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
	c, err := s.commit("edit", object.Signature{Name: "b"}, nil)
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

// editedSnapshot is bigSnapshot(apps) with one file edited.
func editedSnapshot(b testing.TB, apps int) *Snapshot {
	s := bigSnapshot(b, apps)
	if err := s.WriteFile(fmt.Sprintf("apps/app%04d/deployment.yaml", apps*5/8), []byte("kind: Deployment\nv: 2\n")); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkDiff: the report's diff of a one-file edit in an 8,000-app
// tree, the change list computed anew each round.
func BenchmarkDiff(b *testing.B) {
	s := editedSnapshot(b, 8000)
	b.ReportAllocs()
	for b.Loop() {
		s.changed = nil
		if d, err := s.Diff(); err != nil || d == "" {
			b.Fatal(err, d)
		}
	}
}

// BenchmarkDiffReference: BenchmarkDiff the way Diff was made before,
// go-git's tree diff over the whole trees (referenceDiff), for the ratio.
func BenchmarkDiffReference(b *testing.B) {
	s := editedSnapshot(b, 8000)
	b.ReportAllocs()
	for b.Loop() {
		if d, err := referenceDiff(s); err != nil || d == "" {
			b.Fatal(err, d)
		}
	}
}

// BenchmarkAttempt: what one Writer attempt computes of the change after
// the edit: the files touched (for validation), then the diff.
func BenchmarkAttempt(b *testing.B) {
	s := editedSnapshot(b, 8000)
	b.ReportAllocs()
	for b.Loop() {
		s.changed = nil
		if got, err := s.Touched(); err != nil || len(got) != 1 {
			b.Fatal(err, got)
		}
		if d, err := s.Diff(); err != nil || d == "" {
			b.Fatal(err, d)
		}
	}
}

// BenchmarkAttemptReference: BenchmarkAttempt as it was: the map-based
// walk for Touched, then go-git's tree diff.
func BenchmarkAttemptReference(b *testing.B) {
	s := editedSnapshot(b, 8000)
	b.ReportAllocs()
	for b.Loop() {
		if got, err := referenceFileChanges(s); err != nil || len(got) != 1 {
			b.Fatal(err, got)
		}
		if d, err := referenceDiff(s); err != nil || d == "" {
			b.Fatal(err, d)
		}
	}
}

// BenchmarkPushPack: the pack a push of a one-file edit sends, whole
// objects (as before, and to servers that take no thin pack) and thin, at
// 2,000 and 8,000 apps; pack-bytes is its size.
func BenchmarkPushPack(b *testing.B) {
	for _, apps := range []int{2000, 8000} {
		s := editedSnapshot(b, apps)
		c, err := s.commit("edit", object.Signature{Name: "b"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, thin := range []bool{false, true} {
			b.Run(fmt.Sprintf("apps=%d/thin=%v", apps, thin), func(b *testing.B) {
				b.ReportAllocs()
				var n int
				for b.Loop() {
					var pack bytes.Buffer
					if err := s.pack(&pack, c, thin, false); err != nil {
						b.Fatal(err)
					}
					n = pack.Len()
				}
				b.ReportMetric(float64(n), "pack-bytes")
			})
		}
	}
}
