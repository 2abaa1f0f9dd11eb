package envrepo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// MaxBlobSize bounds what ReadFile loads into memory. Environment repos hold
// manifests, not artifacts; a larger file is almost certainly a mistake.
const MaxBlobSize = 16 << 20

// Snapshot is one environment branch held in memory: the commit it was read
// from and a working root tree that edits replace along their paths only.
// Every entry an edit does not touch keeps its hash and mode, so submodules,
// symlinks and executable bits survive untouched.
type Snapshot struct {
	Branch string
	// Base is the commit the snapshot was read from; a push requires the
	// remote branch to still point at it.
	Base plumbing.Hash

	s    storer.EncodedObjectStorer
	wire *wire // set by Fetch; pushes go through it
	// trees holds decoded trees; a hash names one content forever. Only
	// their Entries may be used: the trees writeTree puts here have no
	// storer, so go-git methods that load subtrees (Tree.Tree, Files,
	// object.DiffTree) would fail on them.
	trees map[plumbing.Hash]*object.Tree
	// lazy fetches the blobs a partial fetch left out. It holds the
	// context of the Fetch that made the snapshot, against STYLE's rule,
	// because blobs are read through fs.FS (kustomize reads that way), which
	// carries no context; a snapshot lives only within the run that
	// fetched it, so the run's deadline and signals still bound every read.
	lazy func(want []plumbing.Hash) error
	// lazyTrees fetches trees a filtered fetch left out (tree:<depth>,
	// FetchScoped), each with every tree below it and no blob. It works
	// only while lazy is set: a snapshot fetches on demand or not at all.
	lazyTrees func(want []plumbing.Hash) error
	baseTree  plumbing.Hash
	root      plumbing.Hash
	changed   *changeCache // the files root changes, once listed
	// reads, while not nil, collects every path read through FS
	// (logReads).
	reads map[string]readKind
	// index maps, for the large trees looked up, each name to its entry.
	index map[plumbing.Hash]map[string]int
	// whole holds the trees fetched with everything below them, so a
	// retry that reuses this snapshot's objects does not fetch them again.
	whole map[plumbing.Hash]bool
}

// tree decodes a tree once: every path lookup walks from the root, and the
// directory holding thousands of apps would otherwise be decoded on every
// file kustomize stats.
func (s *Snapshot) tree(h plumbing.Hash) (*object.Tree, error) {
	if t, ok := s.trees[h]; ok {
		return t, nil
	}
	t, err := object.GetTree(s.objects(), h)
	if err != nil {
		return nil, err
	}
	if s.trees == nil {
		s.trees = map[plumbing.Hash]*object.Tree{}
	}
	s.trees[h] = t
	return t, nil
}

func newSnapshot(s storer.EncodedObjectStorer, branch string, base plumbing.Hash) (*Snapshot, error) {
	c, err := object.GetCommit(s, base)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", base, err)
	}
	return &Snapshot{Branch: branch, Base: base, s: s, baseTree: c.TreeHash, root: c.TreeHash}, nil
}

// Changed reports whether the edits so far change the tree. Identical
// content hashes to the identical tree, so this is exact and free.
func (s *Snapshot) Changed() bool { return s.root != s.baseTree }

// Reset drops every edit: the working tree is the base's again.
func (s *Snapshot) Reset() { s.root = s.baseTree }

// Root is the hash of the working root tree.
func (s *Snapshot) Root() plumbing.Hash { return s.root }

// ReadFile returns a file's content from the working tree. It is the one
// place blob contents are read, so that blobs can later be fetched lazily.
func (s *Snapshot) ReadFile(name string) ([]byte, error) {
	return s.readFileIn(s.root, name)
}

func (s *Snapshot) readFileIn(root plumbing.Hash, name string) ([]byte, error) {
	e, err := s.entryIn(root, name)
	if err != nil {
		return nil, err
	}
	if !e.Mode.IsFile() || e.Mode == filemode.Symlink {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("not a regular file")}
	}
	return s.readBlob(name, e.Hash)
}

func (s *Snapshot) readBlob(name string, h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(s.s, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) && s.lazy != nil {
		// Fetch the file's missing siblings with it: what reads one file
		// of a directory (kustomize, the rewriter) reads the others.
		if err := s.prefetch(path.Dir(name), false); err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if s.s.HasEncodedObject(h) != nil {
			if err := s.lazy([]plumbing.Hash{h}); err != nil {
				return nil, &fs.PathError{Op: "read", Path: name, Err: err}
			}
		}
		b, err = object.GetBlob(s.s, h)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if b.Size > MaxBlobSize {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file is %d bytes, more than the %d ferry reads", b.Size, MaxBlobSize)}
	}
	r, err := b.Reader()
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Prefetch makes sure the blobs of the regular files under dir ("." for all)
// are in memory, fetching the missing ones in one request. After a full
// fetch it does nothing.
func (s *Snapshot) Prefetch(dir string) error { return s.prefetch(dir, true) }

func (s *Snapshot) prefetch(dir string, recursive bool) error {
	if s.lazy == nil {
		return nil
	}
	root, ok := s.Tree(dir)
	if !ok {
		return nil
	}
	if recursive && s.s.HasEncodedObject(root) != nil {
		// A directory outside what was fetched: wanted whole, it comes
		// with every tree and blob below it, in one request.
		return s.lazy([]plumbing.Hash{root})
	}
	var want []plumbing.Hash
	var walk func(h plumbing.Hash) error
	walk = func(h plumbing.Hash) error {
		t, err := s.tree(h)
		if err != nil {
			return err
		}
		for _, e := range t.Entries {
			switch {
			case e.Mode == filemode.Dir:
				if !recursive {
					continue
				}
				if err := walk(e.Hash); err != nil {
					return err
				}
			case e.Mode == filemode.Regular || e.Mode == filemode.Executable:
				if s.s.HasEncodedObject(e.Hash) != nil {
					want = append(want, e.Hash)
				}
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return err
	}
	if len(want) == 0 {
		return nil
	}
	return s.lazy(want)
}

// WriteFile replaces or creates a regular file. An existing file keeps its
// mode (an executable stays executable); writing over a directory, symlink
// or submodule is refused.
func (s *Snapshot) WriteFile(name string, data []byte) error {
	if err := checkPath(name); err != nil {
		return err
	}
	mode := filemode.Regular
	if e, err := s.entry(name); err == nil {
		if e.Mode != filemode.Regular && e.Mode != filemode.Executable {
			return &fs.PathError{Op: "write", Path: name, Err: fmt.Errorf("not a regular file (mode %s)", e.Mode)}
		}
		mode = e.Mode
	}
	obj := s.s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	h, err := s.s.SetEncodedObject(obj)
	if err != nil {
		return err
	}
	return s.set(name, &object.TreeEntry{Name: path.Base(name), Mode: mode, Hash: h})
}

// Remove deletes a file or a whole subtree. Removing what does not exist is
// not an error.
func (s *Snapshot) Remove(name string) error {
	if err := checkPath(name); err != nil {
		return err
	}
	return s.set(name, nil)
}

// Tree returns the hash of the subtree at dir ("." for the root) in the
// working tree, and false if there is none.
func (s *Snapshot) Tree(dir string) (plumbing.Hash, bool) {
	if dir == "." || dir == "" {
		return s.root, true
	}
	e, err := s.entry(dir)
	if err != nil || e.Mode != filemode.Dir {
		return plumbing.ZeroHash, false
	}
	return e.Hash, true
}

// BaseTree is Tree for the snapshot's base commit.
func (s *Snapshot) BaseTree(dir string) (plumbing.Hash, bool) {
	if dir == "." || dir == "" {
		return s.baseTree, true
	}
	e, err := s.entryIn(s.baseTree, dir)
	if err != nil || e.Mode != filemode.Dir {
		return plumbing.ZeroHash, false
	}
	return e.Hash, true
}

// CheckScope refuses a scope that is not a clean relative path inside the
// repository or that passes through a symlink or submodule. A scope that
// does not exist yet is allowed (a first deploy may create it); the rewriter
// decides whether there is anything to edit.
func (s *Snapshot) CheckScope(dir string) error {
	if err := CleanScope(dir); err != nil {
		return err
	}
	if dir == "." {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		e, err := s.entry(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		switch e.Mode {
		case filemode.Dir:
		case filemode.Symlink:
			return fmt.Errorf("path %q goes through the symlink %q; ferry does not follow symlinks out of the scope you name", dir, cur)
		case filemode.Submodule:
			return fmt.Errorf("path %q is inside the submodule %q, which ferry does not edit", dir, cur)
		default:
			if cur != dir {
				return fmt.Errorf("path %q: %q is a file, not a directory", dir, cur)
			}
			parent := path.Dir(dir)
			return fmt.Errorf("path %q is a file; ferry works on directories: give its directory, %q", dir, parent)
		}
	}
	return nil
}

// CleanScope checks a --path value without looking at any repository: it
// must be relative, in slash form, and stay inside the repository.
func CleanScope(dir string) error {
	switch {
	case dir == "":
		return errors.New("path is empty; use \".\" for the whole repository")
	case strings.HasPrefix(dir, "/") || (len(dir) > 1 && dir[1] == ':') || strings.HasPrefix(dir, `\`):
		return fmt.Errorf("path %q is absolute; give it relative to the repository root", dir)
	case strings.Contains(dir, `\`):
		return fmt.Errorf("path %q contains a backslash; use forward slashes", dir)
	}
	for _, part := range strings.Split(dir, "/") {
		if part == ".." {
			return fmt.Errorf("path %q leaves the repository; give a directory inside it", dir)
		}
		if part == ".git" {
			return fmt.Errorf("path %q points into .git", dir)
		}
	}
	if path.Clean(dir) != dir && path.Clean(dir)+"/" != dir {
		return fmt.Errorf("path %q is not clean; did you mean %q?", dir, path.Clean(dir))
	}
	return nil
}

// NormalScope checks a --path value as CleanScope does and returns the one
// form ferry works with and records: a trailing slash, as a shell's tab
// completion adds it, is dropped ("apps/hello/" is "apps/hello", "./" is
// "."). Other unclean forms ("./apps/hello", "apps//hello") are refused.
func NormalScope(dir string) (string, error) {
	if err := CleanScope(dir); err != nil {
		return "", err
	}
	return path.Clean(dir), nil
}

func checkPath(name string) error {
	if name == "." || name == "" {
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrInvalid}
	}
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrInvalid}
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".git" {
			return &fs.PathError{Op: "write", Path: name, Err: fs.ErrPermission}
		}
	}
	return nil
}

func (s *Snapshot) entry(name string) (*object.TreeEntry, error) {
	return s.entryIn(s.root, name)
}

func (s *Snapshot) entryIn(root plumbing.Hash, name string) (*object.TreeEntry, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	t, err := s.tree(root)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(name, "/")
	h := root
	for i, part := range parts {
		found := s.lookup(h, t, part)
		if found == nil {
			return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
		}
		if i == len(parts)-1 {
			e := *found
			return &e, nil
		}
		if found.Mode != filemode.Dir {
			return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
		}
		h = found.Hash
		if t, err = s.tree(h); err != nil {
			return nil, err
		}
	}
	panic("unreachable")
}

// indexFrom is the size from which a tree's entries are looked up by an
// index rather than a scan: the directory holding thousands of apps is
// looked up on every path kustomize stats, and status looks up every app in
// every commit's.
const indexFrom = 32

// lookup finds the entry name in t, the tree h.
func (s *Snapshot) lookup(h plumbing.Hash, t *object.Tree, name string) *object.TreeEntry {
	if len(t.Entries) < indexFrom {
		for j := range t.Entries {
			if t.Entries[j].Name == name {
				return &t.Entries[j]
			}
		}
		return nil
	}
	idx, ok := s.index[h]
	if !ok {
		idx = make(map[string]int, len(t.Entries))
		for j, e := range t.Entries {
			idx[e.Name] = j
		}
		if s.index == nil {
			s.index = map[plumbing.Hash]map[string]int{}
		}
		s.index[h] = idx
	}
	if j, ok := idx[name]; ok {
		return &t.Entries[j]
	}
	return nil
}

// set replaces the entry at name (nil removes it) and rebuilds the trees on
// the path to the root; nothing else is re-encoded.
func (s *Snapshot) set(name string, e *object.TreeEntry) error {
	root, err := s.setIn(s.root, strings.Split(name, "/"), e)
	if err != nil {
		return fmt.Errorf("updating %s: %w", name, err)
	}
	if root.IsZero() {
		if root, err = s.writeTree(nil); err != nil {
			return err
		}
	}
	s.root = root
	return nil
}

func (s *Snapshot) setIn(tree plumbing.Hash, parts []string, e *object.TreeEntry) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !tree.IsZero() {
		t, err := s.tree(tree)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, t.Entries...)
	}
	idx := -1
	for i := range entries {
		if entries[i].Name == parts[0] {
			idx = i
			break
		}
	}
	var next *object.TreeEntry
	if len(parts) == 1 {
		next = e
	} else {
		sub := plumbing.ZeroHash
		if idx >= 0 {
			if entries[idx].Mode != filemode.Dir {
				if e == nil {
					return tree, nil // nothing to remove below a file
				}
				return plumbing.ZeroHash, fmt.Errorf("%s is not a directory", parts[0])
			}
			sub = entries[idx].Hash
		} else if e == nil {
			return tree, nil
		}
		h, err := s.setIn(sub, parts[1:], e)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if h != plumbing.ZeroHash {
			next = &object.TreeEntry{Name: parts[0], Mode: filemode.Dir, Hash: h}
		}
	}
	switch {
	case next == nil && idx >= 0:
		entries = append(entries[:idx], entries[idx+1:]...)
	case next == nil:
		return tree, nil
	case idx >= 0:
		entries[idx] = *next
	default:
		entries = append(entries, *next)
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil // git has no empty trees: drop the directory
	}
	return s.writeTree(entries)
}

func (s *Snapshot) writeTree(entries []object.TreeEntry) (plumbing.Hash, error) {
	// git orders entries by name with a directory compared as "name/";
	// Tree.Encode writes them in the order given.
	sort.Slice(entries, func(i, j int) bool { return gitName(entries[i]) < gitName(entries[j]) })
	t := &object.Tree{Entries: entries}
	obj := s.s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := s.s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	// What is about to be diffed, listed and pushed need not be decoded
	// again (the tree cache is only ever read for its entries).
	if s.trees == nil {
		s.trees = map[plumbing.Hash]*object.Tree{}
	}
	if _, ok := s.trees[h]; !ok {
		t.Hash = h
		s.trees[h] = t
	}
	return h, nil
}

func gitName(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// commit writes a commit of the working tree on top of Base, signed by
// signer unless it is nil.
func (s *Snapshot) commit(message string, author object.Signature, signer Signer) (plumbing.Hash, error) {
	c := &object.Commit{
		Author:       author,
		Committer:    author,
		Message:      message,
		TreeHash:     s.root,
		ParentHashes: []plumbing.Hash{s.Base},
	}
	if signer != nil {
		// What git verifies: the commit encoded without its gpgsig
		// header, which is where the signature then goes.
		var payload plumbing.MemoryObject
		if err := c.EncodeWithoutSignature(&payload); err != nil {
			return plumbing.ZeroHash, err
		}
		r, err := payload.Reader()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		sig, err := signer.Sign(r)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("signing the commit: %w", err)
		}
		c.PGPSignature = string(sig)
	}
	obj := s.s.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.s.SetEncodedObject(obj)
}
