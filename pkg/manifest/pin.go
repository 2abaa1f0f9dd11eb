package manifest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// ErrNotReferenced is returned, wrapped, by [Pin] when a target is referenced
// nowhere in scope: a deploy that changes nothing because of a typo in the
// repository name must not pass as "nothing to do".
var ErrNotReferenced = errors.New("image not referenced")

// NotReferencedError names the targets Pin found nowhere under Dir. It
// matches ErrNotReferenced.
type NotReferencedError struct {
	Dir   string
	Repos []string // the targets' repositories, as given
	// Near says where values would match but for capital letters, and
	// where Flux setter markers keep an image from being pinned.
	Near []string
	// Held are those of Repos that are referenced under Dir, but only in
	// fields that setter markers keep from being pinned: an unmarked image
	// in a file with markers, a field marked for another policy than the
	// image's. Pinning them any other way would go against the markers.
	Held []string
}

func (e *NotReferencedError) Error() string {
	msg := fmt.Sprintf("%v under %s: %s", ErrNotReferenced, e.Dir, strings.Join(e.Repos, ", "))
	if len(e.Near) > 0 {
		msg += " (" + strings.Join(e.Near, "; ") + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrNotReferenced) true.
func (e *NotReferencedError) Is(target error) bool { return target == ErrNotReferenced }

// Result of pinning a tree.
type Result struct {
	Files   map[string][]byte // path -> new content, only files whose bytes changed
	Changes []Change          // every reference found, in path order then line order
}

// Pin rewrites every manifest (see [IsManifest]: *.yaml and *.yml in any
// case, and kustomization files) under dir in fsys; see [RewriteFile]. dir
// is a slash path relative to the root of fsys, "." for the whole tree; a
// dir that leaves the tree or passes through a symbolic link is refused.
//
// To the fields of [DefaultFieldSpecs] Pin adds, for each file, the images
// field specs of the configurations files that the kustomizations in the
// file's directory and the directories above it name (kustomize's
// transformer configurations, declaring where a custom kind keeps an
// image). A configurations file that is missing, lies outside its
// kustomization's directory or does not parse is an error.
//
// Pin reads fsys and never writes it: the new contents come back in
// Result.Files. It does not follow symbolic links (fs.ModeSymlink entries are
// skipped). Outside dir it reads only the kustomization files of the
// directories above dir and the configurations files they name.
//
// It returns an error wrapping [ErrNotReferenced], naming the repository and
// dir, when any target is referenced nowhere under dir (or only where
// setter markers keep it from being pinned, which the error then says). A
// file that does not parse, or is larger than [MaxFileSize], is an error
// naming the file.
//
// Helm charts (directories holding a Chart.yaml) are read as Helm reads
// them: their values*.yaml are values files, and their templates directory
// and Chart.yaml hold no image to pin. A file of a chart that holds {{ and
// does not parse is a template too, and is skipped. opts name more values
// files and the image fields of values; see [WithValuesFiles] and
// [WithImageFields].
func Pin(fsys fs.FS, dir string, targets []Target, opts ...PinOption) (*Result, error) {
	ts, err := compileTargets(targets)
	if err != nil {
		return nil, err
	}
	cfg, err := newPinConfig(opts)
	if err != nil {
		return nil, err
	}
	if !fs.ValidPath(dir) {
		return nil, fmt.Errorf("pinning images: %q is not a slash path inside the tree", dir)
	}
	if err := noSymlinkIn(fsys, dir); err != nil {
		return nil, err
	}
	fieldsFor, err := treeFields(fsys, dir, true)
	if err != nil {
		return nil, fmt.Errorf("pinning images under %s: %w", dir, err)
	}
	res := &Result{Files: map[string][]byte{}}
	lay := newLayout(fsys)
	err = fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !IsManifest(path.Base(p)) {
			return nil // directories, and symbolic links to anything
		}
		fields, ok := lay.fields(p, cfg, fieldsFor(p))
		if !ok {
			return nil // a chart's templates and Chart.yaml
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > MaxFileSize {
			return fmt.Errorf("%s: %d bytes is over the %d-byte limit for manifests", p, info.Size(), MaxFileSize)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if lay.templated(p, data) {
			return nil
		}
		out, changes, err := rewrite(p, data, ts, fields)
		if err != nil {
			return err
		}
		if len(changes) > 0 && !bytes.Equal(out, data) {
			res.Files[p] = out
		}
		res.Changes = append(res.Changes, changes...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pinning images under %s: %w", dir, err)
	}
	// WalkDir orders "a/x.yaml" before "a.yaml"; callers get plain path order.
	slices.SortStableFunc(res.Changes, func(a, b Change) int {
		return cmp.Or(strings.Compare(a.File, b.File), a.Line-b.Line)
	})
	var missing []string
	for _, t := range ts {
		if !slices.ContainsFunc(res.Changes, func(c Change) bool { return c.Repo == t.Repo }) {
			missing = append(missing, t.Repo)
		}
	}
	if len(missing) > 0 {
		hints, held := markerHints(fsys, dir, ts, missing, fieldsFor)
		return nil, &NotReferencedError{Dir: dir, Repos: missing, Near: append(miscased(fsys, dir, missing), hints...), Held: held}
	}
	return res, nil
}

// miscased finds the image values under dir that would name one of repos
// but for capital letters, which no reference may have, so nothing matched
// them: "not referenced" then says where they are instead of leaving the
// user to wonder. Aliases are not followed, so it costs linear time.
func miscased(fsys fs.FS, dir string, repos []string) []string {
	var out []string
	_ = fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !IsManifest(path.Base(p)) {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > MaxFileSize {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		docs, err := decodeAll(data)
		if err != nil {
			return nil
		}
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					k, v := n.Content[i], n.Content[i+1]
					if v.Kind != yaml.ScalarNode || (k.Value != "image" && k.Value != "name" && k.Value != "newName" && k.Value != "repository") {
						continue
					}
					if _, ok := parseImage(v.Value); ok {
						continue
					}
					if r, ok := parseImage(strings.ToLower(v.Value)); ok && slices.Contains(repos, r.Repo) {
						out = append(out, fmt.Sprintf("%s:%d has %q, which is not a valid image reference: repository names are lowercase", p, v.Line, v.Value))
					}
				}
			}
			for _, c := range n.Content {
				walk(c)
			}
		}
		for _, doc := range docs {
			walk(doc)
		}
		return nil
	})
	return out
}

// noSymlinkIn refuses a dir reached through a symbolic link. fs.Stat, which
// fs.WalkDir uses for its root, follows links, so each element is checked in
// its parent's listing, which reports links as links in every fs.FS.
func noSymlinkIn(fsys fs.FS, dir string) error {
	if dir == "." {
		return nil
	}
	parent := "."
	for _, elem := range strings.Split(dir, "/") {
		entries, err := fs.ReadDir(fsys, parent)
		if err != nil {
			return fmt.Errorf("pinning images under %s: %w", dir, err)
		}
		i := slices.IndexFunc(entries, func(e fs.DirEntry) bool { return e.Name() == elem })
		if i < 0 {
			return fmt.Errorf("pinning images under %s: %w", dir, notExistError(path.Join(parent, elem)))
		}
		if entries[i].Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("pinning images under %s: %s is a symbolic link", dir, path.Join(parent, elem))
		}
		parent = path.Join(parent, elem)
	}
	return nil
}

// notExistError names a directory that is not there; it matches
// fs.ErrNotExist.
type notExistError string

func (e notExistError) Error() string { return string(e) + " does not exist" }

func (e notExistError) Unwrap() error { return fs.ErrNotExist }
