package envrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// This file holds what compares a snapshot with its base or another
// commit: the files changed, the diff, the objects a push must send, and
// the grafting of a subtree from elsewhere.

// Touched returns the files whose content or mode differs between the base
// and the working tree (added, changed or removed), sorted. Only subtrees
// whose hashes differ are looked into. A tree it cannot read is an error,
// never an empty list: what validates the change must see all of it.
func (s *Snapshot) Touched() ([]string, error) {
	fc, err := s.FileChanges()
	if err != nil {
		return nil, fmt.Errorf("listing the files changed on %s: %w", s.Branch, err)
	}
	out := make([]string, len(fc))
	for i, c := range fc {
		out[i] = c.Path
	}
	return out, nil
}

// FileChange is one file that differs between the base and the working tree.
type FileChange struct {
	Path   string `json:"path"`
	Action string `json:"action"` // added, removed or modified
}

// FileChanges lists the files that differ between the base and the working
// tree, sorted by path. It walks both trees together and skips every
// subtree whose hash is unchanged, so its cost follows the size of the
// change, not of the repository.
func (s *Snapshot) FileChanges() ([]FileChange, error) {
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

func (s *Snapshot) changes() (object.Changes, error) {
	if !s.Changed() {
		return nil, nil
	}
	return s.treeChanges(s.baseTree, s.root)
}

// Diff returns a unified diff from the base to the working tree, as
// `git diff` would print it.
func (s *Snapshot) Diff() (string, error) {
	changes, err := s.changes()
	if err != nil || len(changes) == 0 {
		return "", err
	}
	if s.lazy != nil {
		// The patch reads both sides of every changed file.
		var want []plumbing.Hash
		for _, c := range changes {
			for _, e := range []object.ChangeEntry{c.From, c.To} {
				if e.Name != "" && e.TreeEntry.Mode.IsFile() && s.s.HasEncodedObject(e.TreeEntry.Hash) != nil {
					want = append(want, e.TreeEntry.Hash)
				}
			}
		}
		if len(want) > 0 {
			if err := s.lazy(want); err != nil {
				return "", err
			}
		}
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

// Graft makes dir in the working tree the subtree tree from src (the zero
// hash removes dir), copying the objects it needs from src's storage. It
// replaces the directory whole, so files src lacks are gone afterwards.
func (s *Snapshot) Graft(dir string, src *Snapshot, tree plumbing.Hash) error {
	if tree.IsZero() {
		if dir == "." {
			return errors.New("refusing to empty the whole repository")
		}
		return s.Remove(dir)
	}
	if err := copyObjects(s.s, src.s, tree); err != nil {
		return fmt.Errorf("copying %s: %w", dir, err)
	}
	if dir == "." {
		s.root = tree
		return nil
	}
	if err := checkPath(dir); err != nil {
		return err
	}
	return s.set(dir, &object.TreeEntry{Name: dir[strings.LastIndexByte(dir, '/')+1:], Mode: filemode.Dir, Hash: tree})
}

// copyObjects copies the tree h and everything below it from src to dst,
// skipping what dst already has (an unchanged subtree costs one lookup).
func copyObjects(dst, src storer.EncodedObjectStorer, h plumbing.Hash) error {
	if dst.HasEncodedObject(h) == nil {
		return nil
	}
	obj, err := src.EncodedObject(plumbing.AnyObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// A blob a partial fetch left out. The server has it (it is in
		// the history of a branch of the same repository), and dst fetches
		// it on demand like its own.
		return nil
	}
	if err != nil {
		return err
	}
	if obj.Type() == plumbing.TreeObject {
		t, err := object.DecodeTree(src, obj)
		if err != nil {
			return err
		}
		for _, e := range t.Entries {
			if e.Mode == filemode.Submodule {
				continue // a commit in another repository
			}
			if err := copyObjects(dst, src, e.Hash); err != nil {
				return err
			}
		}
	}
	// Copy the bytes: memory storage objects must not be shared.
	r, err := obj.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	n := dst.NewEncodedObject()
	n.SetType(obj.Type())
	w, err := n.Writer()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	_, err = dst.SetEncodedObject(n)
	return err
}

// newObjects lists what the server lacks to have commit: the commit and,
// walking its tree against the base's, every tree and blob whose hash
// differs at its path. Objects the snapshot never had (blobs left out by a
// partial fetch) are, by construction, in the base, so the server has them.
func (s *Snapshot) newObjects(commit plumbing.Hash) ([]plumbing.Hash, error) {
	c, err := object.GetCommit(s.s, commit)
	if err != nil {
		return nil, err
	}
	out := []plumbing.Hash{commit}
	var walk func(now, before plumbing.Hash) error
	walk = func(now, before plumbing.Hash) error {
		if now == before {
			return nil
		}
		out = append(out, now)
		t, err := s.tree(now)
		if err != nil {
			return err
		}
		old := map[string]object.TreeEntry{}
		if !before.IsZero() {
			if bt, err := s.tree(before); err == nil {
				for _, e := range bt.Entries {
					old[e.Name] = e
				}
			}
		}
		for _, e := range t.Entries {
			prev, had := old[e.Name]
			if had && prev.Hash == e.Hash {
				continue
			}
			switch {
			case e.Mode == filemode.Submodule:
			case e.Mode == filemode.Dir:
				base := plumbing.ZeroHash
				if had && prev.Mode == filemode.Dir {
					base = prev.Hash
				}
				if err := walk(e.Hash, base); err != nil {
					return err
				}
			case s.s.HasEncodedObject(e.Hash) == nil:
				out = append(out, e.Hash)
			}
		}
		return nil
	}
	if err := walk(c.TreeHash, s.baseTree); err != nil {
		return nil, err
	}
	return out, nil
}
