package envrepo

import (
	"bytes"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	fdiff "github.com/go-git/go-git/v5/plumbing/format/diff"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/utils/diff"
	dmp "github.com/sergi/go-diff/diffmatchpatch"
)

// This file turns the snapshot's change list into a unified diff. It is
// what go-git's object.DiffTree followed by Changes.Patch prints, file for
// file and byte for byte (the same line diff and the same encoder), without
// walking the whole tree again: the change list already holds every
// changed file and both its entries.

// patch encodes the unified diff of list, fetching first the blobs a
// partial fetch left out.
func (s *Snapshot) patch(list []change) (string, error) {
	var fps []fdiff.FilePatch
	var want []plumbing.Hash
	for _, c := range list {
		if c.from.Mode != filemode.Empty && c.to.Mode != filemode.Empty &&
			c.from.Hash == c.to.Hash && sameMode(c.from.Mode, c.to.Mode) {
			continue // git's tree diff takes 100664 for 100644
		}
		for _, e := range []object.TreeEntry{c.from, c.to} {
			if e.Mode.IsFile() && s.lazy != nil && s.s.HasEncodedObject(e.Hash) != nil {
				want = append(want, e.Hash)
			}
		}
		fps = append(fps, &filePatch{from: c.from, to: c.to, path: c.path})
	}
	if len(fps) == 0 {
		return "", nil
	}
	if len(want) > 0 {
		if err := s.lazy(want); err != nil {
			return "", err
		}
	}
	for _, fp := range fps {
		if err := s.chunk(fp.(*filePatch)); err != nil {
			return "", err
		}
	}
	var b bytes.Buffer
	if err := fdiff.NewUnifiedEncoder(&b, fdiff.DefaultContextLines).Encode(patchOf(fps)); err != nil {
		return "", err
	}
	return b.String(), nil
}

func sameMode(a, b filemode.FileMode) bool {
	norm := func(m filemode.FileMode) filemode.FileMode {
		if m == filemode.Deprecated {
			return filemode.Regular
		}
		return m
	}
	return norm(a) == norm(b)
}

// chunk fills in fp's line diff, as go-git's filePatchWithContext does: a
// side that is not a file (a submodule) makes both sides empty, a binary
// side (a NUL in the first 8,000 bytes) leaves no chunks, which the encoder
// prints as "Binary files ... differ".
func (s *Snapshot) chunk(fp *filePatch) error {
	present := func(m filemode.FileMode) bool { return m != filemode.Empty }
	if (present(fp.to.Mode) && !fp.to.Mode.IsFile()) || (present(fp.from.Mode) && !fp.from.Mode.IsFile()) {
		return nil
	}
	read := func(e object.TreeEntry) ([]byte, bool, error) {
		if !present(e.Mode) {
			return nil, false, nil
		}
		b, err := object.GetBlob(s.s, e.Hash)
		if err != nil {
			return nil, false, err
		}
		r, err := b.Reader()
		if err != nil {
			return nil, false, err
		}
		defer r.Close()
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, false, err
		}
		return data, bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0, nil
	}
	from, fromBin, err := read(fp.from)
	if err != nil {
		return err
	}
	to, toBin, err := read(fp.to)
	if err != nil {
		return err
	}
	if fromBin || toBin {
		return nil
	}
	for _, d := range diff.Do(string(from), string(to)) {
		op := fdiff.Equal
		switch d.Type {
		case dmp.DiffDelete:
			op = fdiff.Delete
		case dmp.DiffInsert:
			op = fdiff.Add
		}
		fp.chunks = append(fp.chunks, textChunk{d.Text, op})
	}
	return nil
}

type patchOf []fdiff.FilePatch

func (p patchOf) FilePatches() []fdiff.FilePatch { return p }
func (p patchOf) Message() string                { return "" }

// filePatch is one file's fdiff.FilePatch; no chunks means binary.
type filePatch struct {
	from, to object.TreeEntry
	path     string
	chunks   []fdiff.Chunk
}

func (fp *filePatch) IsBinary() bool        { return len(fp.chunks) == 0 }
func (fp *filePatch) Chunks() []fdiff.Chunk { return fp.chunks }

// Files returns a side only if it is a file (not absent, not a submodule).
func (fp *filePatch) Files() (from, to fdiff.File) {
	if fp.from.Mode.IsFile() {
		from = patchFile{fp.from, fp.path}
	}
	if fp.to.Mode.IsFile() {
		to = patchFile{fp.to, fp.path}
	}
	return from, to
}

type patchFile struct {
	e    object.TreeEntry
	path string
}

func (f patchFile) Hash() plumbing.Hash     { return f.e.Hash }
func (f patchFile) Mode() filemode.FileMode { return f.e.Mode }
func (f patchFile) Path() string            { return f.path }

type textChunk struct {
	content string
	op      fdiff.Operation
}

func (c textChunk) Content() string       { return c.content }
func (c textChunk) Type() fdiff.Operation { return c.op }
