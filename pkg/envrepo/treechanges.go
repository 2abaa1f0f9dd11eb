package envrepo

import (
	"path"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeChanges is object.DiffTree(before, now) for two root trees, walking
// only the subtrees whose hashes differ. DiffTree lists a tree's children
// through a TreeWalker, which reads every child tree, changed or not:
// after a scoped fetch that would fetch every sibling of the scope (8,000
// requests for apps/ at 8,000 apps), and where a tree is missing and
// cannot be fetched, the walker ends the listing early without an error.
// Each change names the file by its path, with the tree holding it, as
// DiffTree's do, so Changes.Patch reads both sides the same way; changes
// come in path order, which is git's.
func (s *Snapshot) treeChanges(before, now plumbing.Hash) (object.Changes, error) {
	var out object.Changes
	type side struct {
		t       *object.Tree
		entries map[string]object.TreeEntry
	}
	load := func(h plumbing.Hash) (side, error) {
		sd := side{entries: map[string]object.TreeEntry{}}
		if h.IsZero() {
			return sd, nil
		}
		t, err := s.tree(h)
		if err != nil {
			return sd, err
		}
		sd.t = t
		for _, e := range t.Entries {
			sd.entries[e.Name] = e
		}
		return sd, nil
	}
	var walk func(dir string, before, now plumbing.Hash) error
	walk = func(dir string, before, now plumbing.Hash) error {
		if before == now {
			return nil
		}
		a, err := load(before)
		if err != nil {
			return err
		}
		b, err := load(now)
		if err != nil {
			return err
		}
		names := map[string]bool{}
		for n := range a.entries {
			names[n] = true
		}
		for n := range b.entries {
			names[n] = true
		}
		for n := range names {
			ea, inA := a.entries[n]
			eb, inB := b.entries[n]
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
			var c object.Change
			if inA && ea.Mode != filemode.Dir {
				c.From = object.ChangeEntry{Name: p, Tree: a.t, TreeEntry: ea}
			}
			if inB && eb.Mode != filemode.Dir {
				c.To = object.ChangeEntry{Name: p, Tree: b.t, TreeEntry: eb}
			}
			if c.From.Name != "" || c.To.Name != "" {
				out = append(out, &c)
			}
		}
		return nil
	}
	if err := walk("", before, now); err != nil {
		return nil, err
	}
	name := func(c *object.Change) string {
		if c.To.Name != "" {
			return c.To.Name
		}
		return c.From.Name
	}
	sort.SliceStable(out, func(i, j int) bool { return name(out[i]) < name(out[j]) })
	return out, nil
}
