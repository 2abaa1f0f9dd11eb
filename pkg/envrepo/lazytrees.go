package envrepo

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// objects is the storage trees are decoded from: the snapshot's own, or,
// after a fetch that left trees out, one that fetches a missing tree when
// it is read. A decoded tree keeps the storage it came from and reads its
// subtrees through it (object.DiffTree walks that way), so every tree read
// anywhere loads on demand, not only those read through s.tree.
func (s *Snapshot) objects() storer.EncodedObjectStorer {
	if s.lazyTrees == nil {
		return s.s
	}
	return lazyTreeStorer{EncodedObjectStorer: s.s, snap: s}
}

// lazyTreeStorer is a snapshot's storage that fetches a tree it lacks when
// asked for one by type. It fetches nothing else: blobs have their own path
// (readBlob, Prefetch), which batches a directory at a time, and a lookup
// of any type (copyObjects, the pack encoder) or of presence
// (HasEncodedObject) answers from memory only.
type lazyTreeStorer struct {
	storer.EncodedObjectStorer
	snap *Snapshot
}

func (l lazyTreeStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := l.EncodedObjectStorer.EncodedObject(t, h)
	if t != plumbing.TreeObject || !errors.Is(err, plumbing.ErrObjectNotFound) ||
		l.snap.lazy == nil || l.snap.lazyTrees == nil ||
		l.EncodedObjectStorer.HasEncodedObject(h) == nil { // there, but not a tree
		return o, err
	}
	if err := l.snap.lazyTrees([]plumbing.Hash{h}); err != nil {
		return nil, fmt.Errorf("fetching tree %s: %w", short(h), err)
	}
	return l.EncodedObjectStorer.EncodedObject(t, h)
}
