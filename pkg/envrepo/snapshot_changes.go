package envrepo

import (
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
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
// change, not of the repository. The walk is done once per working tree:
// Touched, FileChanges and Diff share it until the next edit.
func (s *Snapshot) FileChanges() ([]FileChange, error) {
	list, err := s.changeList()
	if err != nil {
		return nil, err
	}
	out := make([]FileChange, len(list))
	for i, c := range list {
		out[i] = FileChange{Path: c.path, Action: c.action()}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// change is one file that differs, with its entry on either side; a side
// where the file is absent has the zero entry (mode filemode.Empty).
type change struct {
	path     string
	from, to object.TreeEntry
}

func (c change) action() string {
	switch {
	case c.from.Mode == filemode.Empty:
		return "added"
	case c.to.Mode == filemode.Empty:
		return "removed"
	}
	return "modified"
}

// changeCache is the change list of one working tree. A tree's hash names
// its content, so the list holds for as long as the root is that hash.
type changeCache struct {
	root, base plumbing.Hash
	list       []change
}

// changeList returns the files that differ between the base and the working
// tree in the order git's tree diff (go-git's object.DiffTree) reports
// them: siblings by name, a file replaced by a directory (or the reverse)
// as the removal of the one then the addition of the other. It is cached
// until the working tree changes; callers must not modify it.
func (s *Snapshot) changeList() ([]change, error) {
	if c := s.changed; c != nil && c.root == s.root && c.base == s.baseTree {
		return c.list, nil
	}
	var out []change
	if err := s.diffTrees(&out, "", s.baseTree, s.root); err != nil {
		return nil, err
	}
	s.changed = &changeCache{root: s.root, base: s.baseTree, list: out}
	return out, nil
}

// byName returns the entries of tree h sorted by plain name (git stores a
// directory as if named "name/"), without copying when they already are.
func (s *Snapshot) byName(h plumbing.Hash) ([]object.TreeEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	t, err := s.tree(h)
	if err != nil {
		return nil, err
	}
	cmp := func(a, b object.TreeEntry) int { return strings.Compare(a.Name, b.Name) }
	if slices.IsSortedFunc(t.Entries, cmp) {
		return t.Entries, nil
	}
	es := slices.Clone(t.Entries)
	slices.SortFunc(es, cmp)
	return es, nil
}

// diffTrees appends the files that differ between the trees before and now
// (either may be zero: absent) under dir, looking only into subtrees whose
// hashes differ.
func (s *Snapshot) diffTrees(out *[]change, dir string, before, now plumbing.Hash) error {
	if before == now {
		return nil
	}
	a, err := s.byName(before)
	if err != nil {
		return err
	}
	b, err := s.byName(now)
	if err != nil {
		return err
	}
	for len(a) > 0 || len(b) > 0 {
		var ea, eb object.TreeEntry
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0].Name < b[0].Name):
			ea, a = a[0], a[1:]
		case len(a) == 0 || b[0].Name < a[0].Name:
			eb, b = b[0], b[1:]
		default:
			ea, eb, a, b = a[0], b[0], a[1:], b[1:]
		}
		if ea.Hash == eb.Hash && ea.Mode == eb.Mode {
			continue
		}
		name := ea.Name
		if name == "" {
			name = eb.Name
		}
		p := path.Join(dir, name)
		dirA, dirB := ea.Mode == filemode.Dir, eb.Mode == filemode.Dir
		switch {
		case dirA && dirB:
			err = s.diffTrees(out, p, ea.Hash, eb.Hash)
		case ea.Mode != filemode.Empty && eb.Mode != filemode.Empty && !dirA && !dirB:
			*out = append(*out, change{path: p, from: ea, to: eb})
		default:
			// Added, removed, or a file replaced by a directory or the
			// reverse: the old side goes, then the new one comes.
			if dirA {
				err = s.diffTrees(out, p, ea.Hash, plumbing.ZeroHash)
			} else if ea.Mode != filemode.Empty {
				*out = append(*out, change{path: p, from: ea})
			}
			if err != nil {
				return err
			}
			if dirB {
				err = s.diffTrees(out, p, plumbing.ZeroHash, eb.Hash)
			} else if eb.Mode != filemode.Empty {
				*out = append(*out, change{path: p, to: eb})
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Diff returns a unified diff from the base to the working tree, as
// `git diff` would print it: the text go-git's object.DiffTree and Patch
// make, built from the snapshot's own change list (see snapshot_patch.go).
func (s *Snapshot) Diff() (string, error) {
	if !s.Changed() {
		return "", nil
	}
	list, err := s.changeList()
	if err != nil {
		return "", err
	}
	return s.patch(list)
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
// differs at its path, each once. Objects the snapshot never had (blobs
// left out by a partial fetch) are, by construction, in the base, so the
// server has them.
func (s *Snapshot) newObjects(commit plumbing.Hash) ([]plumbing.Hash, error) {
	objs, err := s.newObjectsWithBases(commit)
	if err != nil {
		return nil, err
	}
	out := make([]plumbing.Hash, len(objs))
	for i, o := range objs {
		out[i] = o.hash
	}
	return out, nil
}
