package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Build runs an in-memory kustomize build of the kustomization root dir (an
// fs path, "." for the root of fsys) and returns the rendered YAML, the same
// bytes `kubectl kustomize` prints.
//
// It uses krusty with the options of `kustomize build` and `kubectl
// kustomize`: resources and patches must lie in or below the directory of
// the kustomization that names them (the load restrictor "root only"), bases
// (a directory such as ../../base) may be anywhere in fsys, plugins, KRM
// functions and Helm charts are off (a kustomization that needs them does not
// build), and resources come out in kustomize's legacy order unless the
// kustomization sets sortOptions. Files are read from fsys only (see NewFS):
// a path that climbs above its root stays at its root.
//
// Remote resources are refused by default, before anything is fetched:
// every kustomization file the build reads (the root's, and those of its
// bases and components) is checked first, and one that names something
// remote fails the build with an error that matches ErrRemoteResource and
// names the file and the URLs. Remote means a URL with a scheme (http://,
// https://, ssh://, file://, ...), go-getter's git:: prefix, git's
// scp-like user@host:path, or github.com/..., in any field whose entries
// kustomize loads: resources, bases, components, crds, configurations,
// generators, transformers, validators, patchesStrategicMerge, the path of
// patches, patchesJson6902 and replacements, openapi's path, and the files
// and env files of configMapGenerator and secretGenerator. Env repos should
// vendor what they use.
//
// WithRemoteResources lets kustomize fetch them, its own way: an http or
// https file with a plain net/http client, which has no timeout and no
// context; a git URL by running the git program into os.TempDir, each git
// command bounded by a 27s timeout, and such a base never builds here, as
// the clone is on disk and not in fsys (its directory is left behind, as
// kustomize removes it through the read-only fsys). Without git on PATH
// (ferry's distroless image) that step fails at once. As kustomize cannot
// be stopped, the build runs in a goroutine of its own, and Build returns
// when ctx is done, or when the limit of WithRemoteResources runs out after
// the first remote reference, naming the remote resources met; the build is
// then left behind, blocked until its connection ends (or, for git, its own
// timeout), or the process does, and may read fsys until then: fsys must
// not change after such a return.
//
// Errors name dir and say it does not build, wrapping kustomize's message.
//
// Build is safe for concurrent use, with one caveat from kustomize: the
// OpenAPI schema a kustomization may choose (its openapi field) is kept in a
// process-wide variable, so it leaks into builds running at the same time or
// later in the process.
func Build(ctx context.Context, fsys fs.FS, dir string, opts ...Option) ([]byte, error) {
	c := newBuildConfig(opts)
	a := kfsNew(fsys)
	a.remote = newRemoteGuard(c.allowRemote)
	return bounded(ctx, c, a.remote, "kustomization "+dir+" does not build", func() ([]byte, error) {
		return buildWith(a, dir)
	})
}

func buildWith(a *kfsAdapter, dir string) ([]byte, error) {
	if !fs.ValidPath(dir) {
		return nil, fmt.Errorf("kustomization %s does not build: %w", dir, &fs.PathError{Op: "build", Path: dir, Err: fs.ErrInvalid})
	}
	if a.remote != nil {
		a.remote.reset()
	}
	k := krusty.MakeKustomizer(buildOptions())
	m, err := k.Run(a, kfsAbs(dir))
	if a.remote != nil {
		// kustomize's own message for a kustomization it could not read
		// is "unable to find one of ...": say why instead.
		if refused := a.remote.takeRefused(); refused != nil {
			return nil, fmt.Errorf("kustomization %s does not build: %w", dir, refused)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kustomization %s does not build: %w", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomization %s does not build: %w", dir, err)
	}
	return out, nil
}

// buildOptions are krusty's defaults with the output order of the kustomize
// CLI (`kustomize build`, `kubectl kustomize`): the sortOptions of the
// kustomization if it has some, else kustomize's legacy order (namespaces
// and other cluster-wide kinds first, webhooks last). krusty's own default,
// ReorderOptionNone, keeps the order of the kustomization files instead.
func buildOptions() *krusty.Options {
	o := krusty.MakeDefaultOptions()
	o.Reorder = krusty.ReorderOptionUnspecified
	return o
}

// Roots returns, sorted and de-duplicated, the kustomization roots of the
// given files (fs paths): for each file, the nearest directory at or above it,
// up to the root of fsys ("."), that holds a kustomization file
// (kustomization.yaml, kustomization.yml or Kustomization). A file with no
// such directory contributes nothing. The files need not exist, so that the
// roots of deleted files can be found; a file that is a directory is its own
// first candidate.
func Roots(fsys fs.FS, files []string) ([]string, error) {
	return buildRoots(kfsNew(fsys), files)
}

func buildRoots(a *kfsAdapter, files []string) ([]string, error) {
	isRoot := make(map[string]bool) // dirs looked at so far
	var roots []string
	for _, f := range files {
		if !fs.ValidPath(f) {
			return nil, fmt.Errorf("finding the kustomization of %s: %w", f, &fs.PathError{Op: "roots", Path: f, Err: fs.ErrInvalid})
		}
		dir := path.Dir(f)
		if _, fi, err := a.lookup("stat", f); err == nil && fi.IsDir() {
			dir = f
		}
		for {
			found, ok := isRoot[dir]
			if !ok {
				var err error
				found, err = buildHasKustomization(a, dir)
				if err != nil {
					return nil, fmt.Errorf("finding the kustomization of %s: %w", f, err)
				}
				isRoot[dir] = found
			}
			if found {
				roots = append(roots, dir)
				break
			}
			if dir == "." {
				break
			}
			dir = path.Dir(dir)
		}
	}
	slices.Sort(roots)
	return slices.Compact(roots), nil
}

// buildHasKustomization reports whether dir holds a kustomization file.
func buildHasKustomization(a *kfsAdapter, dir string) (bool, error) {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		_, fi, err := a.lookup("stat", path.Join(dir, name))
		switch {
		case err == nil:
			if !fi.IsDir() {
				return true, nil
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return false, err
		}
	}
	return false, nil
}

// Validate checks that each YAML file among files (by name: *.yaml, *.yml
// and Kustomization) parses, every document of it, and that every root in
// Roots(fsys, files) builds. A file that is not in fsys (one the change
// deletes) is not parsed, but its root is still built. Validate returns one
// error that lists every failure (errors.Join), each naming its file or
// kustomization directory, or nil.
//
// Roots are built as Build does, with opts: remote resources are refused
// unless WithRemoteResources allows them, and then its limit bounds the
// whole validation from the first remote reference met. Validate returns
// when ctx is done, whatever kustomize is waiting for (and fsys must then
// not change, as for Build).
func Validate(ctx context.Context, fsys fs.FS, files []string, opts ...Option) error {
	c := newBuildConfig(opts)
	a := kfsNew(fsys)
	a.remote = newRemoteGuard(c.allowRemote)
	_, err := bounded(ctx, c, a.remote, "validating", func() (struct{}, error) {
		return struct{}{}, validate(a, fsys, files)
	})
	return err
}

func validate(a *kfsAdapter, fsys fs.FS, files []string) error {
	var errs []error
	valid := make([]string, 0, len(files))
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if seen[f] {
			continue
		}
		seen[f] = true
		if !fs.ValidPath(f) {
			errs = append(errs, fmt.Errorf("validating %s: %w", f, &fs.PathError{Op: "validate", Path: f, Err: fs.ErrInvalid}))
			continue
		}
		valid = append(valid, f)
		if !buildIsYAML(f) {
			continue
		}
		if err := buildParse(fsys, f); err != nil {
			errs = append(errs, err)
			continue
		}
		if IsValuesFile(fsys, f) {
			if err := checkValuesSchema(fsys, f); err != nil {
				errs = append(errs, err)
			}
		}
	}
	roots, err := buildRoots(a, valid)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, r := range roots {
		if _, err := buildWith(a, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func buildIsYAML(name string) bool { return IsManifest(path.Base(name)) }

// buildParse checks that every YAML document in the file parses.
func buildParse(fsys fs.FS, name string) error {
	fi, err := fs.Stat(fsys, name)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.IsDir() {
		return nil
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s does not parse as YAML (document %d): %w", name, doc, err)
		}
	}
}
