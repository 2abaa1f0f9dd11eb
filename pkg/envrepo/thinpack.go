package envrepo

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// This file writes the thin pack a push sends: each new tree and blob as a
// delta against the object at the same path in the base commit, which the
// server has, since the push only lands while the branch points at the
// base. Rewriting one file of an 8,000-app tree makes a new 300 KB apps/
// tree that differs from the old one in 20 bytes; git sends that as a delta
// of a few dozen bytes, and so does this. git's receive-pack completes a
// thin pack with the bases it has (index-pack --fix-thin, or
// unpack-objects for small pushes); a server that cannot says "no-thin"
// (protocol-capabilities.txt: a client MUST NOT send a thin pack then).

// noThin is the receive-pack capability that forbids thin packs.
const noThin = "no-thin"

// newObject is one object a push sends, with the object at its path in the
// base (zero for none, or for the commit) to try as its delta base.
type newObject struct {
	hash, base plumbing.Hash
}

// newObjectsWithBases lists what the server lacks to have commit, as
// newObjects does, each object once, with its delta base candidate.
func (s *Snapshot) newObjectsWithBases(commit plumbing.Hash) ([]newObject, error) {
	c, err := object.GetCommit(s.s, commit)
	if err != nil {
		return nil, err
	}
	out := []newObject{{hash: commit}}
	seen := map[plumbing.Hash]bool{commit: true}
	add := func(h, base plumbing.Hash) {
		if !seen[h] {
			seen[h] = true
			out = append(out, newObject{hash: h, base: base})
		}
	}
	var walk func(now, before plumbing.Hash) error
	walk = func(now, before plumbing.Hash) error {
		if now == before {
			return nil
		}
		add(now, before)
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
				base := plumbing.ZeroHash
				if had && prev.Mode != filemode.Dir && prev.Mode != filemode.Submodule {
					base = prev.Hash
				}
				add(e.Hash, base)
			}
		}
		return nil
	}
	if err := walk(c.TreeHash, s.baseTree); err != nil {
		return nil, err
	}
	return out, nil
}

// writeThinPack writes a version 2 pack of objs to w: an object with a base
// the snapshot holds is sent as a REF_DELTA against it when that is
// smaller, any other whole. A base that is itself sent in the pack is not
// used, so deltas never chain within the pack. It returns how many objects
// went as deltas.
func (s *Snapshot) writeThinPack(w io.Writer, objs []newObject) (deltas int, err error) {
	inPack := make(map[plumbing.Hash]bool, len(objs))
	for _, o := range objs {
		inPack[o.hash] = true
	}
	h := sha1.New()
	out := io.MultiWriter(w, h)
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(objs)))
	if _, err := out.Write(hdr[:]); err != nil {
		return 0, err
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	for _, o := range objs {
		obj, err := s.s.EncodedObject(plumbing.AnyObject, o.hash)
		if err != nil {
			return deltas, fmt.Errorf("object %s: %w", o.hash, err)
		}
		data, err := objectBytes(obj)
		if err != nil {
			return deltas, err
		}
		typ := obj.Type()
		var base []byte
		if !o.base.IsZero() && !inPack[o.base] {
			if b, err := s.s.EncodedObject(obj.Type(), o.base); err == nil {
				if bdata, err := objectBytes(b); err == nil {
					if d := packfile.DiffDelta(bdata, data); len(d)+len(o.base) < len(data) {
						typ, data, base = plumbing.REFDeltaObject, d, o.base[:]
						deltas++
					}
				}
			}
		}
		z.Reset()
		zw.Reset(&z)
		if _, err := zw.Write(data); err != nil {
			return deltas, err
		}
		if err := zw.Close(); err != nil {
			return deltas, err
		}
		if _, err := out.Write(append(entryHeader(typ, len(data)), base...)); err != nil {
			return deltas, err
		}
		if _, err := out.Write(z.Bytes()); err != nil {
			return deltas, err
		}
	}
	_, err = w.Write(h.Sum(nil))
	return deltas, err
}

// entryHeader is a pack entry's type and (inflated) size: 3 bits of type
// and 4 of size, then 7 bits of size a byte, low bits first.
func entryHeader(t plumbing.ObjectType, n int) []byte {
	b := byte(t)<<4 | byte(n&0x0f)
	n >>= 4
	var out []byte
	for n != 0 {
		out = append(out, b|0x80)
		b = byte(n & 0x7f)
		n >>= 7
	}
	return append(out, b)
}

func objectBytes(o plumbing.EncodedObject) ([]byte, error) {
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
