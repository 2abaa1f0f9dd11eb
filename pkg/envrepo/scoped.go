package envrepo

import (
	"context"
	"errors"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/storage/memory"
)

// A scoped fetch brings the trees on the way to one directory and that
// directory whole, and leaves the rest of the repository on the server:
//
//  1. the tip with filter tree:<d>: the commit, and the trees (and blobs)
//     whose depth from the root is below d, d = min(depth of the scope,
//     scopeTipDepth). For apps/app0042 that is the root and apps/, with
//     the hashes of all the apps in it but none of their trees;
//  2. each tree still missing on the path to the scope's parent, by hash,
//     with filter tree:0 (that tree alone), one request a level;
//  3. the scope's tree by hash, unfiltered: every tree and blob below it.
//
// Anything else the snapshot reads later (a kustomize base elsewhere, a
// diff or graft walking out of the scope) is fetched when read: a tree with
// its subtrees and no blob (lazyTrees), blobs a directory at a time (lazy).
//
// A server that offers no filter sends everything in step 1, as for Fetch;
// one that offers filters but refuses tree:<d> gets Fetch's blob:none, or,
// when it caps the depth (uploadpackfilter.tree.maxDepth), tree:0 and the
// path's trees one a request.

// scopeTipDepth bounds the tree depth of the tip fetch. tree:<d> takes
// every tree above depth d in the whole repository, not only those on the
// scope's path: up to 2 that is the root and its directories, few and
// small in the layouts env repos use (apps/<app>, <env>/<app>,
// clusters/<c>/...). Deeper, a level can be the fan-out of another branch
// of the repository (apps/<app>/overlays/<env> at tree:4 would bring every
// app's overlays), so deeper levels are fetched one tree at a time.
const scopeTipDepth = 2

// FetchScoped is Fetch for a caller that reads and edits under scope, a
// directory ("." or "" for the whole repository; a scope CleanScope refuses
// is fetched as the whole repository, and CheckScope reports it). Where
// the server serves partial fetches, it brings the trees on the path to
// scope and everything under scope, not the rest of the repository's
// trees; whatever the snapshot reads outside scope is fetched when read,
// so the snapshot behaves as Fetch's does, at the cost of a request per
// read outside.
func FetchScoped(ctx context.Context, r Remote, branch, scope string) (*Snapshot, error) {
	return fetchScoped(ctx, r, branch, scope, nil)
}

// fetchScoped is FetchScoped; with prev, the snapshot of an attempt that
// lost a race on branch, it fetches into prev's storage, so what prev
// holds (the scope whole, what was read outside it) is not fetched again
// where the new tip has it unchanged.
func fetchScoped(ctx context.Context, r Remote, branch, scope string, prev *Snapshot) (*Snapshot, error) {
	w, err := newWire(r)
	if err != nil {
		return nil, err
	}
	parts := scopeParts(scope)
	filter := packp.FilterBlobNone()
	if len(parts) > 0 {
		filter = packp.FilterTreeDepth(uint64(min(len(parts), scopeTipDepth)))
	}
	reuse, whole := prev.reusable()
	var st *memory.Storage
	var tip plumbing.Hash
	var filtered bool
	if reuse != nil {
		// The commits since the lost attempt's tip, with their trees
		// down to the scope's parent: a have saves what did not change,
		// and the hold's history extends from the same fetch.
		st = reuse
		err = withContext(ctx, func() (err error) {
			tip, filtered, err = w.fetchTip(ctx, st, branch, 0, filter, prev.Base)
			return err
		}, w.abort)
		if err != nil && ctx.Err() == nil {
			reuse = nil // whatever went wrong, the first attempt's way
		}
	}
	if reuse == nil {
		st, tip, filtered, err = fetchTipFiltered(ctx, w, branch, filter, nil)
	}
	if err != nil && len(parts) > 0 && filterRefused(err) && strings.Contains(err.Error(), "max depth") && ctx.Err() == nil {
		// uploadpackfilter.tree.maxDepth below d: the commit alone, and
		// every tree on the path by hash.
		st, tip, filtered, err = fetchTipFiltered(ctx, w, branch, packp.FilterTreeDepth(0), reuse)
	}
	if err != nil && len(parts) > 0 && filterRefused(err) && ctx.Err() == nil {
		// Filters, but not tree:<d> (uploadpackfilter.tree.allow=false):
		// what Fetch does.
		parts = nil
		st, tip, filtered, err = fetchTipFiltered(ctx, w, branch, packp.FilterBlobNone(), reuse)
	}
	if err != nil {
		return nil, r.fetchError(branch, err)
	}
	snap, err := newSnapshot(st, branch, tip)
	if err != nil {
		return nil, err
	}
	snap.wire = w
	if reuse != nil {
		snap.trees, snap.index, snap.whole = prev.trees, prev.index, whole
	}
	if !filtered {
		return snap, nil
	}
	// Blobs come later, only those that are read, a directory at a time;
	// trees likewise, after a tree:<d> fetch.
	snap.lazy = w.blobFetcher(ctx, st, branch)
	if len(parts) == 0 {
		return snap, nil
	}
	snap.lazyTrees = w.treeFetcher(ctx, st, branch)
	fetch := func(want plumbing.Hash, filter ...packp.Filter) error {
		err := withContext(ctx, func() error { return w.fetchObjects(ctx, st, []plumbing.Hash{want}, filter...) }, w.abort)
		if err != nil {
			return r.fetchError(branch, err)
		}
		return nil
	}
	if err := snap.fetchScope(parts, fetch); err != nil {
		return nil, err
	}
	return snap, nil
}

// fetchTipFiltered is fetchTip of depth 1 into st, or a new storage when
// st is nil.
func fetchTipFiltered(ctx context.Context, w *wire, branch string, filter packp.Filter, st *memory.Storage) (_ *memory.Storage, tip plumbing.Hash, filtered bool, err error) {
	if w.up != nil { // a session kept from a refused attempt
		_ = w.up.Close()
		w.up, w.upCaps = nil, nil
	}
	if st == nil {
		st = memory.NewStorage()
	}
	err = withContext(ctx, func() (err error) {
		tip, filtered, err = w.fetchTip(ctx, st, branch, 1, filter, plumbing.ZeroHash)
		return err
	}, w.abort)
	return st, tip, filtered, err
}

// scopeParts splits a scope into its directories; nil for the whole
// repository or a scope that is not clean.
func scopeParts(scope string) []string {
	if scope == "" || scope == "." || CleanScope(scope) != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(scope, "/"), "/")
}

// filterRefused tells a server's refusal of a filter it does not allow
// (git: "filter 'tree' not supported", "tree filter allows max depth 1,
// but got 2") from other failures.
func filterRefused(err error) bool {
	if err == nil || transient(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "filter") && (strings.Contains(msg, "not supported") || strings.Contains(msg, "max depth") || strings.Contains(msg, "not allowed"))
}

// fetchScope completes a tree:<d> fetch of the tip for the scope parts:
// the trees on the path that are missing, one request each, then the
// scope's tree with everything below it. It stops quietly where the path
// does not lead to a directory: a scope may not exist yet, and CheckScope
// says what is wrong with one that goes through a file or a symlink.
func (s *Snapshot) fetchScope(parts []string, fetch func(plumbing.Hash, ...packp.Filter) error) error {
	h := s.baseTree
	for _, part := range parts {
		if s.s.HasEncodedObject(h) != nil {
			// This tree alone: tree:0 sends what is wanted and nothing
			// it reaches.
			if err := fetch(h, packp.FilterTreeDepth(0)); err != nil {
				return err
			}
		}
		t, err := s.tree(h)
		if err != nil {
			return err
		}
		next := plumbing.ZeroHash
		for _, e := range t.Entries {
			if e.Name == part {
				if e.Mode == filemode.Dir {
					next = e.Hash
				}
				break
			}
		}
		if next.IsZero() {
			return nil
		}
		h = next
	}
	// The scope whole: its trees and blobs, what the edit and the build
	// read. Wanted even when its tree is there (the same content higher
	// up), for its blobs, unless an earlier fetch brought it whole.
	if s.whole[h] {
		return nil
	}
	if err := fetch(h); err != nil {
		return err
	}
	if s.whole == nil {
		s.whole = map[plumbing.Hash]bool{}
	}
	s.whole[h] = true
	return nil
}
