package envrepo

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// FS returns the working tree as a read-only fs.FS. Symlinks and submodules
// appear in directory listings with their own modes and are never followed.
func (s *Snapshot) FS() fs.FS { return snapFS{s: s} }

// BaseFS is FS for the base commit, before any edit.
func (s *Snapshot) BaseFS() fs.FS { return snapFS{s: s, base: true} }

type snapFS struct {
	s    *Snapshot
	base bool
}

func (f snapFS) root() plumbing.Hash {
	if f.base {
		return f.s.baseTree
	}
	return f.s.root
}

var (
	_ fs.ReadFileFS = snapFS{}
	_ fs.ReadDirFS  = snapFS{}
	_ fs.StatFS     = snapFS{}
)

// note records a path read through FS while a read log is kept: see
// Snapshot.logReads.
func (f snapFS) note(name string, how readKind) {
	if !f.base && f.s.reads != nil {
		f.s.reads[name] |= how
	}
}

func (f snapFS) Open(name string) (fs.File, error) {
	info, err := f.Stat(name)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		ents, err := f.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &dirFile{info: info, ents: ents}, nil
	}
	if !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	data, err := f.s.readFileIn(f.root(), name)
	if err != nil {
		return nil, err
	}
	return &blobFile{info: info, r: bytes.NewReader(data)}, nil
}

func (f snapFS) ReadFile(name string) ([]byte, error) {
	f.note(name, readStat)
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrInvalid}
	}
	return f.s.readFileIn(f.root(), name)
}

func (f snapFS) Stat(name string) (fs.FileInfo, error) {
	f.note(name, readStat)
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return entryInfo{e: object.TreeEntry{Name: ".", Mode: filemode.Dir, Hash: f.root()}}, nil
	}
	e, err := f.s.entryIn(f.root(), name)
	if err != nil {
		return nil, err
	}
	info := entryInfo{e: *e}
	if e.Mode.IsFile() {
		if sz, err := f.s.s.EncodedObjectSize(e.Hash); err == nil {
			info.size = sz
		}
	}
	return info, nil
}

func (f snapFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.note(name, readList)
	h, ok := f.s.Tree(name)
	if f.base {
		h, ok = f.s.BaseTree(name)
	}
	if !fs.ValidPath(name) || !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	t, err := f.s.tree(h)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(t.Entries))
	for _, e := range t.Entries {
		out = append(out, fs.FileInfoToDirEntry(entryInfo{e: e}))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

type entryInfo struct {
	e    object.TreeEntry
	size int64
}

func (i entryInfo) Name() string       { return i.e.Name }
func (i entryInfo) Size() int64        { return i.size }
func (i entryInfo) ModTime() time.Time { return time.Time{} }
func (i entryInfo) IsDir() bool        { return i.e.Mode == filemode.Dir }
func (i entryInfo) Sys() any           { return i.e }
func (i entryInfo) Mode() fs.FileMode {
	switch i.e.Mode {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Submodule:
		return fs.ModeIrregular
	case filemode.Executable:
		return 0o755
	default:
		return 0o644
	}
}

type blobFile struct {
	info fs.FileInfo
	r    *bytes.Reader
}

func (f *blobFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *blobFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *blobFile) Close() error               { return nil }

type dirFile struct {
	info fs.FileInfo
	ents []fs.DirEntry
	off  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return nil }
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.ents[d.off:]
	if n <= 0 {
		d.off = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return rest[:n], nil
}
