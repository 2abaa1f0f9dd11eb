package ferry

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferrycd/ferry/pkg/audit"
	"io/fs"
	"path"

	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/manifest"
)

// DiffRequest is one `ferry diff`.
type DiffRequest struct {
	From, To string
	Path     string
	// FromPath, FromRepo, FromEnv, ToEnv and Carry are PromoteRequest's:
	// the diff is what that promote would change.
	FromPath, FromRepo string
	FromEnv, ToEnv     string
	Carry              string
}

// DiffResult is what a promote from From to To would change.
type DiffResult struct {
	From    string    `json:"from"` // branch@sha
	To      string    `json:"to"`
	Path    string    `json:"path"`
	Changed bool      `json:"changed"`
	Apps    []AppDiff `json:"apps"`
	Patch   string    `json:"patch,omitempty"`
}

// AppDiff is the change to one app: a kustomization root, or for plain YAML
// the directory holding the files.
type AppDiff struct {
	Dir      string        `json:"dir"`
	Images   []ImageChange `json:"images"`
	Added    []string      `json:"added"`
	Removed  []string      `json:"removed"`
	Modified []string      `json:"modified"`
}

// ImageChange is one image whose reference a promote would change: Old is
// what To runs now (empty if none), New what From has.
type ImageChange struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// Diff computes what promoting Path from From's tip to To would change,
// without writing anything.
func Diff(ctx context.Context, e Env, req DiffRequest) (*DiffResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	fromName, toName := or(req.FromEnv, req.From), or(req.ToEnv, req.To)
	fromPath := or(req.FromPath, req.Path)
	srcRemote := e.remoteFor(req.FromRepo)
	src, err := envrepo.FetchHistory(ctx, srcRemote, req.From, 1)
	if err != nil {
		return nil, err
	}
	from, err := src.At(src.Tip)
	if err != nil {
		return nil, err
	}
	if err := from.CheckScope(fromPath); err != nil {
		return nil, scopeError(err)
	}
	tree, ok := from.Tree(fromPath)
	if !ok {
		return nil, fmt.Errorf("%s does not exist on %s", fromPath, fromName)
	}
	s, err := envrepo.Fetch(ctx, e.Remote, req.To)
	if err != nil {
		return nil, err
	}
	if err := s.CheckScope(req.Path); err != nil {
		return nil, scopeError(err)
	}
	switch {
	case req.Carry == CarryImages:
		edit, err := carryImages(e, from, fromPath, nil)
		if err != nil {
			return nil, err
		}
		if _, _, _, err := edit(ctx, s, audit.Record{Path: req.Path}); err != nil {
			return nil, err
		}
	default:
		if srcRemote.URL != e.Remote.URL {
			if err := from.Prefetch(fromPath); err != nil {
				return nil, err
			}
		}
		if err := s.Graft(req.Path, from, tree); err != nil {
			return nil, err
		}
	}
	res := &DiffResult{From: fromName + "@" + src.Tip.String(), To: toName + "@" + s.Base.String(), Path: req.Path, Changed: s.Changed(), Apps: []AppDiff{}}
	files, err := s.FileChanges()
	if err != nil {
		return nil, err
	}
	apps := map[string]*AppDiff{}
	for _, f := range files {
		dir := appDir(s.FS(), s.BaseFS(), f.Path, req.Path)
		a := apps[dir]
		if a == nil {
			a = &AppDiff{Dir: dir, Images: []ImageChange{}, Added: []string{}, Removed: []string{}, Modified: []string{}}
			apps[dir] = a
		}
		switch f.Action {
		case "added":
			a.Added = append(a.Added, f.Path)
		case "removed":
			a.Removed = append(a.Removed, f.Path)
		default:
			a.Modified = append(a.Modified, f.Path)
		}
	}
	for _, dir := range sortedKeys(apps) {
		a := apps[dir]
		old, err := imagesIn(s.BaseFS(), dir, e.readOptions()...)
		if err != nil {
			return nil, fmt.Errorf("reading the images of %s on %s: %w", dir, req.To, err)
		}
		now, err := imagesIn(s.FS(), dir, e.readOptions()...)
		if err != nil {
			return nil, fmt.Errorf("reading the images of %s on %s: %w", dir, req.From, err)
		}
		repos := map[string]bool{}
		for r := range old {
			repos[r] = true
		}
		for r := range now {
			repos[r] = true
		}
		for _, r := range sortedKeys(repos) {
			o, n := old[r], now[r]
			if o.Value == n.Value && o.Tag == n.Tag && o.Digest == n.Digest {
				continue
			}
			ch := ImageChange{Name: r}
			if o.Repo != "" {
				ch.Old = imageOf(o).Ref
			}
			if n.Repo != "" {
				ch.New = imageOf(n).Ref
			}
			if ch.Old != ch.New {
				a.Images = append(a.Images, ch)
			}
		}
		res.Apps = append(res.Apps, *a)
	}
	if res.Patch, err = s.Diff(); err != nil {
		return nil, err
	}
	return res, nil
}

// imagesIn maps repository to effective reference under dir; a dir that
// does not exist (added or removed by the promote) has none. Any other
// failure is an error: a diff that cannot read an image must not report it
// unchanged.
func imagesIn(fsys fs.FS, dir string, opts ...manifest.PinOption) (map[string]manifest.Ref, error) {
	if _, err := fs.Stat(fsys, dir); errors.Is(err, fs.ErrNotExist) {
		return map[string]manifest.Ref{}, nil
	} else if err != nil {
		return nil, err
	}
	refs, err := manifest.Images(fsys, dir, opts...)
	if err != nil {
		return nil, err
	}
	return manifest.Effective(refs), nil
}

// appDir is the app a file belongs to: the nearest directory at or above it,
// within scope, that holds a kustomization (in either state), else the
// file's own directory.
func appDir(now, before fs.FS, file, scope string) string {
	dir := path.Dir(file)
	for d := dir; ; d = path.Dir(d) {
		for _, fsys := range []fs.FS{now, before} {
			for _, k := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
				if _, err := fs.Stat(fsys, path.Join(d, k)); err == nil {
					return d
				}
			}
		}
		if d == scope || d == "." {
			break
		}
	}
	return dir
}
