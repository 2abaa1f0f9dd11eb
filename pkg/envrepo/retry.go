package envrepo

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// A retry after a lost race costs what changed, not the whole attempt
// again: the new tip is fetched into the storage of the attempt that lost,
// so the scope's trees and blobs, and whatever was read outside it, are
// not fetched again unless they changed; the edit runs again (it must: the
// tip is new); and Verify, when its verdict depends only on what it reads
// (Writer.VerifyReads), is skipped when the edit left every path it read
// as it was.

// retry is what one attempt leaves to the next.
type retry struct {
	prev     *Snapshot // the snapshot the lost attempt edited
	verified *readSet  // what its passing Verify read
}

// readSet is what a verification read, and what each path then was: a
// verification that reads the same content at the same paths, for the
// same touched files, reaches the same verdict.
type readSet struct {
	touched []string
	at      map[string]pathState
}

// readKind is how a path was read: what of it the reader could see.
type readKind uint8

const (
	readStat readKind = 1 << iota // Stat, Open, ReadFile: a file's content, a directory's being one
	readList                      // ReadDir: a directory's names and modes
)

// pathState is one path as a read saw it: for a file its hash and mode,
// for a directory its mode and, if listed, a digest of its names and
// modes (not of what they hold: that is read, and recorded, path by
// path), or absent. A directory's own hash changes with any file below
// it, and the directories above every scope (".", "apps") would then
// never read the same on a retry.
type pathState struct {
	how    readKind
	hash   plumbing.Hash
	mode   filemode.FileMode
	absent bool
}

// stateOf looks name up in the working tree. ok is false when the lookup
// failed for a reason other than absence (a fetch that failed): such a
// read cannot vouch for anything.
func (s *Snapshot) stateOf(name string, how readKind) (st pathState, ok bool) {
	st.how = how
	var e object.TreeEntry
	if name == "." {
		e = object.TreeEntry{Mode: filemode.Dir, Hash: s.root}
	} else {
		found, err := s.entry(name)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid):
			st.absent = true
			return st, true
		case err != nil:
			return st, false
		}
		e = *found
	}
	st.mode = e.Mode
	if e.Mode != filemode.Dir {
		st.hash = e.Hash
		return st, true
	}
	if how&readList != 0 {
		t, err := s.tree(e.Hash)
		if err != nil {
			return st, false
		}
		h := plumbing.NewHasher(plumbing.AnyObject, 0)
		for _, c := range t.Entries {
			fmt.Fprintf(h, "%o %s\x00", c.Mode, c.Name)
		}
		st.hash = h.Sum()
	}
	return st, true
}

// logReads starts collecting the paths read through FS.
func (s *Snapshot) logReads() { s.reads = map[string]readKind{} }

// readsSince stops collecting and returns what was read, as it is now; nil
// when some path cannot be stated.
func (s *Snapshot) readsSince(touched []string) *readSet {
	names := s.reads
	s.reads = nil
	rs := &readSet{touched: touched, at: make(map[string]pathState, len(names))}
	for name, how := range names {
		st, ok := s.stateOf(name, how)
		if !ok {
			return nil
		}
		rs.at[name] = st
	}
	return rs
}

// same reports whether s, touching touched, reads exactly as rs did.
func (rs *readSet) same(s *Snapshot, touched []string) bool {
	if rs == nil || !slices.Equal(rs.touched, touched) {
		return false
	}
	for name, want := range rs.at {
		if got, ok := s.stateOf(name, want.how); !ok || got != want {
			return false
		}
	}
	return true
}

// reusable returns the storage, decoded trees and whole trees of a
// snapshot a retry may fetch into; nil storage when there is none to reuse.
func (s *Snapshot) reusable() (*memory.Storage, map[plumbing.Hash]bool) {
	if s == nil {
		return nil, nil
	}
	st, ok := s.s.(*memory.Storage)
	if !ok {
		return nil, nil
	}
	return st, s.whole
}

// Extend returns the history of the branch at s, which a retry fetched
// after h's tip moved: h's commits and the ones s holds since, copied from
// s's storage. It fails when s does not lead back to a commit of h through
// commits s holds (the branch was rewritten past h, or s was not fetched
// from h's tip on): the caller then reads the history afresh.
func (h *History) Extend(s *Snapshot) (*History, error) {
	queue := []plumbing.Hash{s.Base}
	seen := map[plumbing.Hash]bool{}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if seen[c] || h.Has(c) {
			continue
		}
		seen[c] = true
		o, err := s.s.EncodedObject(plumbing.CommitObject, c)
		if err != nil {
			return nil, fmt.Errorf("extending the history of %s to %s: %w", h.Branch, short(s.Base), err)
		}
		if _, err := h.s.SetEncodedObject(o); err != nil {
			return nil, err
		}
		commit, err := object.DecodeCommit(h.s, o)
		if err != nil {
			return nil, err
		}
		queue = append(queue, commit.ParentHashes...)
	}
	out := *h
	out.Tip = s.Base
	return &out, nil
}
