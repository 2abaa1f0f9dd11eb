package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kfsMaxLinks bounds the symbolic links followed while resolving one path,
// as the kernel's MAXSYMLINKS does.
const kfsMaxLinks = 40

var (
	// kfsErrReadOnly is returned by every method that would write.
	kfsErrReadOnly error = kfsReadOnlyError{}
	// errKfsEscape is returned for paths (or link targets) that climb above
	// the root of the tree.
	errKfsEscape = errors.New("path escapes the root of the tree")
	// errKfsLink is returned for a symbolic link that cannot be followed
	// inside the tree.
	errKfsLink = errors.New("symbolic link cannot be followed inside the tree")
)

type kfsReadOnlyError struct{}

func (kfsReadOnlyError) Error() string { return "read-only file system" }

// Is makes errors.Is(err, fs.ErrPermission) true for writes.
func (kfsReadOnlyError) Is(target error) bool { return target == fs.ErrPermission }

// NewFS adapts a read-only fs.FS to kustomize's filesys.FileSystem
// (sigs.k8s.io/kustomize/kyaml/filesys).
//
// Paths are presented to kustomize as absolute under "/": the fs path
// "apps/hello" is "/apps/hello", and the root "." is "/". A relative path
// given to a method is taken relative to the root, as kustomize's in-memory
// file system does. Paths that climb above the root ("/..", "../x") are
// refused with an error.
//
// Reads happen lazily: only the files kustomize actually opens are read from
// fsys. fsys must not change while the FileSystem is in use (results of
// looking paths up are cached).
//
// Symbolic links are followed, like kustomize's on-disk file system does, if
// fsys implements fs.ReadLinkFS; a link whose target is absolute or climbs
// above the root is refused. If fsys does not implement fs.ReadLinkFS, a path
// that fsys reports as a symbolic link is refused.
//
// Every method that would write (Create, Mkdir, MkdirAll, RemoveAll,
// WriteFile, and Write on an opened file) returns an error that matches
// fs.ErrPermission; kustomize does not write during a build.
func NewFS(fsys fs.FS) filesys.FileSystem {
	return kfsNew(fsys)
}

// kfsAdapter is the filesys.FileSystem returned by NewFS.
type kfsAdapter struct {
	fsys  fs.FS
	links fs.ReadLinkFS // nil if fsys cannot read links

	mu    sync.Mutex
	lstat map[string]kfsLstat // cache of links.Lstat, keyed by fs path

	// remote, if set, sees every kustomization file read before kustomize
	// does, and may refuse it (see Build).
	remote *remoteGuard
}

type kfsLstat struct {
	fi  fs.FileInfo
	err error
}

var (
	_ filesys.FileSystem = (*kfsAdapter)(nil)
	_ filesys.File       = (*kfsFile)(nil)
)

func kfsNew(fsys fs.FS) *kfsAdapter {
	a := &kfsAdapter{fsys: fsys}
	if l, ok := fsys.(fs.ReadLinkFS); ok {
		a.links = l
		a.lstat = make(map[string]kfsLstat)
	}
	return a
}

// kfsRel converts a path as kustomize presents it (absolute under "/", or
// relative to the root) to a cleaned fs path ("." for the root). It refuses a
// path that climbs above the root.
func kfsRel(name string) (string, error) {
	if name == "" {
		return "", fs.ErrInvalid
	}
	parts := make([]string, 0, strings.Count(name, "/")+1)
	for seg := range strings.SplitSeq(filepath.ToSlash(name), "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", errKfsEscape
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, seg)
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

// kfsAbs converts a cleaned fs path to the absolute form kustomize sees.
func kfsAbs(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

// lookup cleans name, follows symbolic links inside the tree and returns the
// resolved fs path with its FileInfo. Errors are *fs.PathError with op and
// name, wrapping fs.ErrNotExist when nothing is there.
func (a *kfsAdapter) lookup(op, name string) (string, fs.FileInfo, error) {
	p, err := kfsRel(name)
	if err != nil {
		return "", nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	var fi fs.FileInfo
	if a.links == nil {
		fi, err = fs.Stat(a.fsys, p)
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			err = errKfsLink
		}
	} else {
		p, fi, err = a.evalLinks(p)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return p, fi, nil
}

// evalLinks resolves the symbolic links in the cleaned fs path p the way
// filepath.EvalSymlinks does, one element at a time, and keeps the result
// inside the tree.
func (a *kfsAdapter) evalLinks(p string) (string, fs.FileInfo, error) {
	if p == "." {
		fi, err := a.cachedLstat(".")
		return ".", fi, err
	}
	resolved := "."
	var fi fs.FileInfo
	rest := p
	links := 0
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		switch seg {
		case "", ".":
			continue
		case "..":
			if resolved == "." {
				return "", nil, errKfsEscape
			}
			resolved = path.Dir(resolved)
			fi = nil
			continue
		}
		next := path.Join(resolved, seg)
		info, err := a.cachedLstat(next)
		if err != nil {
			return "", nil, err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			resolved, fi = next, info
			continue
		}
		links++
		if links > kfsMaxLinks {
			return "", nil, fmt.Errorf("too many links: %w", errKfsLink)
		}
		target, err := a.links.ReadLink(next)
		if err != nil {
			return "", nil, err
		}
		if target == "" || path.IsAbs(target) || filepath.IsAbs(target) {
			return "", nil, fmt.Errorf("%s -> %s: %w", next, target, errKfsLink)
		}
		if rest != "" {
			target += "/" + rest
		}
		rest = target
	}
	if fi == nil {
		// The path ended with "..": look the directory up again.
		info, err := a.cachedLstat(resolved)
		if err != nil {
			return "", nil, err
		}
		fi = info
	}
	return resolved, fi, nil
}

func (a *kfsAdapter) cachedLstat(p string) (fs.FileInfo, error) {
	a.mu.Lock()
	r, ok := a.lstat[p]
	a.mu.Unlock()
	if ok {
		return r.fi, r.err
	}
	fi, err := a.links.Lstat(p)
	a.mu.Lock()
	a.lstat[p] = kfsLstat{fi: fi, err: err}
	a.mu.Unlock()
	return fi, err
}

// Create refuses: the file system is read-only.
func (a *kfsAdapter) Create(name string) (filesys.File, error) {
	return nil, &fs.PathError{Op: "create", Path: name, Err: kfsErrReadOnly}
}

// Mkdir refuses: the file system is read-only.
func (a *kfsAdapter) Mkdir(name string) error {
	return &fs.PathError{Op: "mkdir", Path: name, Err: kfsErrReadOnly}
}

// MkdirAll refuses: the file system is read-only.
func (a *kfsAdapter) MkdirAll(name string) error {
	return &fs.PathError{Op: "mkdir", Path: name, Err: kfsErrReadOnly}
}

// RemoveAll refuses: the file system is read-only.
func (a *kfsAdapter) RemoveAll(name string) error {
	return &fs.PathError{Op: "remove", Path: name, Err: kfsErrReadOnly}
}

// WriteFile refuses: the file system is read-only.
func (a *kfsAdapter) WriteFile(name string, _ []byte) error {
	return &fs.PathError{Op: "write", Path: name, Err: kfsErrReadOnly}
}

// Open opens the named file or directory for reading.
func (a *kfsAdapter) Open(name string) (filesys.File, error) {
	p, _, err := a.lookup("open", name)
	if err != nil {
		return nil, err
	}
	f, err := a.fsys.Open(p)
	if err != nil {
		return nil, err
	}
	return &kfsFile{File: f, name: name}, nil
}

// IsDir reports whether name is a directory.
func (a *kfsAdapter) IsDir(name string) bool {
	_, fi, err := a.lookup("stat", name)
	return err == nil && fi.IsDir()
}

// Exists reports whether name exists.
func (a *kfsAdapter) Exists(name string) bool {
	_, _, err := a.lookup("stat", name)
	return err == nil
}

// ReadDir returns the names of the entries of the directory name, sorted.
func (a *kfsAdapter) ReadDir(name string) ([]string, error) {
	p, fi, err := a.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	entries, err := fs.ReadDir(a.fsys, p)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// CleanedAbs splits name, cleaned, made absolute and with its links
// resolved, into a directory and a file name, as kustomize's own file
// systems do: a directory gives (dir, ""), a file gives (its dir, its base).
// A path that does not exist is an error.
func (a *kfsAdapter) CleanedAbs(name string) (filesys.ConfirmedDir, string, error) {
	p, fi, err := a.lookup("clean", name)
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		return filesys.ConfirmedDir(kfsAbs(p)), "", nil
	}
	return filesys.ConfirmedDir(kfsAbs(path.Dir(p))), path.Base(p), nil
}

// Glob returns the paths matching pattern, as filepath.Glob does (files and
// directories), leaving out hidden files unless the pattern's last element
// is itself hidden, as kustomize's on-disk file system does. Matches are
// absolute if the pattern is, and relative to the root otherwise.
func (a *kfsAdapter) Glob(pattern string) ([]string, error) {
	p, err := kfsRel(pattern)
	if err != nil {
		return nil, &fs.PathError{Op: "glob", Path: pattern, Err: err}
	}
	matches, err := fs.Glob(a.fsys, p)
	if err != nil {
		return nil, err
	}
	abs := strings.HasPrefix(filepath.ToSlash(pattern), "/")
	for i, m := range matches {
		if abs {
			matches[i] = kfsAbs(m)
		}
	}
	if !filesys.IsHiddenFilePath(pattern) {
		matches = filesys.RemoveHiddenFiles(matches)
	}
	return matches, nil
}

// ReadFile returns the contents of the named file.
func (a *kfsAdapter) ReadFile(name string) ([]byte, error) {
	p, fi, err := a.lookup("read", name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	b, err := fs.ReadFile(a.fsys, p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	// Named as asked for: the file may be a link to one of another name.
	if asked, _ := kfsRel(name); a.remote != nil && (isKustomizationFile(asked) || isKustomizationFile(p)) {
		if err := a.remote.check(asked, b); err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
	}
	return b, nil
}

// Walk walks the tree at root in lexical order, as filepath.Walk does: it
// does not follow symbolic links below root, and paths are absolute.
func (a *kfsAdapter) Walk(root string, walkFn filepath.WalkFunc) error {
	p, _, err := a.lookup("walk", root)
	if err != nil {
		err = walkFn(root, nil, err)
		if errors.Is(err, filepath.SkipDir) || errors.Is(err, filepath.SkipAll) {
			return nil
		}
		return err
	}
	// Present paths under the root as given (cleaned), not as resolved.
	shown, _ := kfsRel(root)
	shown = kfsAbs(shown)
	return fs.WalkDir(a.fsys, p, func(fp string, d fs.DirEntry, err error) error {
		name := shown
		if fp != p {
			rel := fp
			if p != "." {
				rel = fp[len(p)+1:]
			}
			name = path.Join(shown, rel)
		}
		if err != nil {
			var info fs.FileInfo
			if d != nil {
				info, _ = d.Info()
			}
			return walkFn(name, info, err)
		}
		info, err := d.Info()
		if err != nil {
			return walkFn(name, nil, err)
		}
		return walkFn(name, info, nil)
	})
}

// kfsFile is a read-only filesys.File.
type kfsFile struct {
	fs.File
	name string
}

// Write refuses: the file system is read-only.
func (f *kfsFile) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: f.name, Err: kfsErrReadOnly}
}
