package envrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/storage/memory"
)

// History is a branch's commits, fetched only as deep as a question needs:
// Search starts shallow and deepens until the answer is in reach or the
// whole history is there.
type History struct {
	Branch string
	Tip    plumbing.Hash
	// Depth is how many commits deep the fetch went; 0 means all of them.
	Depth   int
	s       *memory.Storage
	shallow map[plumbing.Hash]bool
	lazy    func(want []plumbing.Hash) error // after a partial fetch
	// loadTrees fetches trees (and their subtrees, no blobs) by hash.
	loadTrees func(want []plumbing.Hash) error
	// trees decodes each tree once for TreeAt, which a walk asks of every
	// commit, and status of every commit for every app.
	trees *treeCache
}

// treeCache is a snapshot used only for its cache of decoded trees, which
// a History and its extensions share (trees are named by their content).
type treeCache struct {
	mu   sync.Mutex
	snap *Snapshot
}

// LoadTrees makes sure the trees of the given commits are present, after
// FetchCommits, fetching the missing ones in one request.
func (h *History) LoadTrees(commits ...plumbing.Hash) error {
	var want []plumbing.Hash
	for _, ch := range commits {
		c, err := h.Commit(ch)
		if err != nil {
			return err
		}
		if h.s.HasEncodedObject(c.TreeHash) != nil {
			want = append(want, c.TreeHash)
		}
	}
	if len(want) == 0 || h.loadTrees == nil {
		return nil
	}
	return h.loadTrees(want)
}

// FetchHistory reads branch with up to depth commits of history (0: all).
func FetchHistory(ctx context.Context, r Remote, branch string, depth int) (*History, error) {
	return fetchHistory(ctx, r, branch, depth, packp.FilterBlobNone())
}

// FetchCommits is FetchHistory without trees (filter tree:0), where the
// server allows it: commit messages alone, a few hundred bytes a commit,
// for questions the trailers answer. Trees of chosen commits come later
// with LoadTrees; TreeAt of a commit whose trees are missing reports false.
func FetchCommits(ctx context.Context, r Remote, branch string, depth int) (*History, error) {
	return fetchHistory(ctx, r, branch, depth, packp.FilterTreeDepth(0))
}

func fetchHistory(ctx context.Context, r Remote, branch string, depth int, filter packp.Filter) (*History, error) {
	w, err := newWire(r)
	if err != nil {
		return nil, err
	}
	st := memory.NewStorage()
	var tip plumbing.Hash
	var filtered bool
	err = withContext(ctx, func() (err error) {
		tip, filtered, err = w.fetchTip(ctx, st, branch, depth, filter, plumbing.ZeroHash)
		return err
	}, w.abort)
	if err != nil {
		return nil, r.fetchError(branch, err)
	}
	h := &History{Branch: branch, Tip: tip, Depth: depth, s: st, shallow: map[plumbing.Hash]bool{}, trees: &treeCache{snap: &Snapshot{s: st}}}
	h.loadTrees = func(want []plumbing.Hash) error {
		return withContext(ctx, func() error { return w.fetchObjects(ctx, st, want, packp.FilterBlobNone()) }, w.abort)
	}
	if filtered {
		h.lazy = w.blobFetcher(ctx, st, branch)
	}
	sh, err := st.Shallow()
	if err != nil {
		return nil, err
	}
	for _, c := range sh {
		h.shallow[c] = true
	}
	return h, nil
}

// Complete reports whether the whole history of the branch is present.
func (h *History) Complete() bool { return len(h.shallow) == 0 }

// Search fetches branch at depth start, asks answered, and fetches four
// times deeper each time it cannot tell yet, until it can or the history is
// complete. A question is "answered" when the fetched commits settle it;
// once the history is complete, the caller's own result is final.
func Search(ctx context.Context, r Remote, branch string, start int, answered func(*History) (bool, error)) (*History, error) {
	return search(ctx, r, branch, start, FetchHistory, answered)
}

// SearchCommits is Search over FetchCommits: messages only.
func SearchCommits(ctx context.Context, r Remote, branch string, start int, answered func(*History) (bool, error)) (*History, error) {
	return search(ctx, r, branch, start, FetchCommits, answered)
}

func search(ctx context.Context, r Remote, branch string, start int,
	fetch func(context.Context, Remote, string, int) (*History, error), answered func(*History) (bool, error)) (*History, error) {
	depth := max(start, 1)
	for {
		h, err := fetch(ctx, r, branch, depth)
		if err != nil {
			return nil, err
		}
		ok, err := answered(h)
		if err != nil || ok || h.Complete() {
			return h, err
		}
		if depth >= 1<<20 {
			depth = 0 // stop deepening by steps; take it all
		} else {
			depth *= 4
		}
	}
}

// ErrTruncated is returned by walks that reach the edge of a shallow fetch.
var ErrTruncated = errors.New("history truncated")

// FirstParent calls fn for each commit on the first-parent chain from the
// tip, newest first, until fn returns false. parentTree is the first
// parent's root tree (zero for a root commit). It returns ErrTruncated when
// the chain runs past what was fetched.
func (h *History) FirstParent(fn func(c *object.Commit, parentTree plumbing.Hash) (bool, error)) error {
	c, err := object.GetCommit(h.s, h.Tip)
	if err != nil {
		return err
	}
	for {
		if h.shallow[c.Hash] {
			return ErrTruncated
		}
		var parent *object.Commit
		parentTree := plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			if parent, err = object.GetCommit(h.s, c.ParentHashes[0]); err != nil {
				return ErrTruncated
			}
			parentTree = parent.TreeHash
		}
		more, err := fn(c, parentTree)
		if err != nil || !more {
			return err
		}
		if parent == nil {
			return nil
		}
		c = parent
	}
}

// Find returns the commit whose hash is sha or starts with it (at least 7
// hex digits), among the fetched commits, all of which are reachable from
// the tip. It reports false when no fetched commit matches.
func (h *History) Find(sha string) (*object.Commit, bool, error) {
	sha = strings.ToLower(strings.TrimSpace(sha))
	if len(sha) == 40 {
		c, err := object.GetCommit(h.s, plumbing.NewHash(sha))
		if err == nil {
			return c, true, nil
		}
		return nil, false, nil
	}
	iter, err := h.s.IterEncodedObjects(plumbing.CommitObject)
	if err != nil {
		return nil, false, err
	}
	var found []plumbing.Hash
	err = iter.ForEach(func(o plumbing.EncodedObject) error {
		if strings.HasPrefix(o.Hash().String(), sha) {
			found = append(found, o.Hash())
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	switch len(found) {
	case 0:
		return nil, false, nil
	case 1:
		c, err := object.GetCommit(h.s, found[0])
		return c, err == nil, err
	}
	return nil, false, fmt.Errorf("commit %s is ambiguous on %s: %d commits start with it", sha, h.Branch, len(found))
}

// TreeAt returns the hash of dir's subtree in commit c ("." is the root),
// and false when dir does not exist there.
func (h *History) TreeAt(root plumbing.Hash, dir string) (plumbing.Hash, bool) {
	if root.IsZero() {
		return plumbing.ZeroHash, false
	}
	if dir == "." || dir == "" {
		return root, true
	}
	s := &Snapshot{s: h.s}
	if h.trees != nil {
		h.trees.mu.Lock()
		defer h.trees.mu.Unlock()
		s = h.trees.snap
	}
	e, err := s.entryIn(root, dir)
	if err != nil || e.Mode != filemode.Dir {
		return plumbing.ZeroHash, false
	}
	return e.Hash, true
}

// ChangedNames returns the names of the entries that differ (hash, mode,
// presence) between two directory trees a and b, which TreeAt returned:
// one comparison a commit answers "did this app change" for every app
// beside it. It fails when a tree cannot be read.
func (h *History) ChangedNames(a, b plumbing.Hash) (map[string]bool, error) {
	out := map[string]bool{}
	if a == b {
		return out, nil
	}
	s := &Snapshot{s: h.s}
	if h.trees != nil {
		h.trees.mu.Lock()
		defer h.trees.mu.Unlock()
		s = h.trees.snap
	}
	entries := func(t plumbing.Hash) (map[string]object.TreeEntry, error) {
		m := map[string]object.TreeEntry{}
		if t.IsZero() {
			return m, nil
		}
		tr, err := s.tree(t)
		if err != nil {
			return nil, err
		}
		for _, e := range tr.Entries {
			m[e.Name] = e
		}
		return m, nil
	}
	ea, err := entries(a)
	if err != nil {
		return nil, err
	}
	eb, err := entries(b)
	if err != nil {
		return nil, err
	}
	for name, e := range ea {
		if o, ok := eb[name]; !ok || o.Hash != e.Hash || o.Mode != e.Mode {
			out[name] = true
		}
	}
	for name := range eb {
		if _, ok := ea[name]; !ok {
			out[name] = true
		}
	}
	return out, nil
}

// At returns a read-only snapshot of commit c, sharing h's objects.
func (h *History) At(c plumbing.Hash) (*Snapshot, error) {
	s, err := newSnapshot(h.s, h.Branch, c)
	if err != nil {
		return nil, err
	}
	s.lazy = h.lazy
	return s, nil
}

// Commit returns a fetched commit.
func (h *History) Commit(c plumbing.Hash) (*object.Commit, error) {
	return object.GetCommit(h.s, c)
}

// Walk calls fn for from and its first parents, newest first, until fn
// returns false or the branch's first commit is reached. It returns
// ErrTruncated when fn still wants more at the edge of the fetch, and any
// other failure to read a commit as it is: a walk that could not read what
// it walks must not look like one that saw everything.
func (h *History) Walk(from plumbing.Hash, fn func(c *object.Commit) bool) error {
	for {
		c, err := object.GetCommit(h.s, from)
		if err != nil {
			return fmt.Errorf("reading commit %s of %s: %w", from, h.Branch, err)
		}
		if !fn(c) || len(c.ParentHashes) == 0 {
			return nil
		}
		if h.shallow[c.Hash] {
			return ErrTruncated
		}
		from = c.ParentHashes[0]
	}
}

// Has reports whether commit c was fetched.
func (h *History) Has(c plumbing.Hash) bool {
	_, err := object.GetCommit(h.s, c)
	return err == nil
}

// Prefetch fetches, in one request, the blobs under dir in each of the
// given commits that a partial fetch left out.
func (h *History) Prefetch(commits []plumbing.Hash, dir string) error {
	if h.lazy == nil {
		return nil
	}
	seen := map[plumbing.Hash]bool{}
	var want []plumbing.Hash
	for _, c := range commits {
		snap, err := h.At(c)
		if err != nil {
			return err
		}
		snap.lazy = func(more []plumbing.Hash) error {
			for _, m := range more {
				if !seen[m] {
					seen[m] = true
					want = append(want, m)
				}
			}
			return nil
		}
		if err := snap.Prefetch(dir); err != nil {
			return err
		}
	}
	if len(want) == 0 {
		return nil
	}
	return h.lazy(want)
}

// Shallow reports whether c is at the edge of the fetch (its parents were
// not fetched).
func (h *History) Shallow(c plumbing.Hash) bool { return h.shallow[c] }
