package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// A kustomization's configurations field names transformer configuration
// files; the images field specs in them tell kustomize's images transformer
// where a custom kind keeps an image:
//
//	images:
//	- path: spec/runLatest/container/image
//	  kind: MyKind
//
// ferry reads them as extra FieldSpecs (FormImage) for the manifests in the
// kustomization's directory and below: those are, in the usual layout, the
// resources the kustomization builds, and a field a kustomization declares
// an image is an image wherever the tree keeps that kind. The specs are
// matched the way kustomize matches a field spec: by kind, group and
// version, and along a path that enters every sequence it meets.

// kustomizationConfigurations is the part of a kustomization ferry reads here.
type kustomizationConfigurations struct {
	Configurations []string `yaml:"configurations"`
}

// transformerConfig is the part of a transformer configuration file ferry
// reads: its images field specs (kustomize's types.FieldSpec).
type transformerConfig struct {
	Images []struct {
		Group   string `yaml:"group"`
		Version string `yaml:"version"`
		Kind    string `yaml:"kind"`
		Path    string `yaml:"path"`
	} `yaml:"images"`
}

// treeFields reads the configurations of the kustomizations under dir, and
// in the directories above it, and returns the field table of each
// manifest under dir: nil (the defaults) where no kustomization at or above
// the file's directory declares images field specs, the defaults and those
// specs where some do. With strict, a configurations file that cannot be
// read or understood is an error; without (for reading history, which must
// show broken states too), it adds nothing.
func treeFields(fsys fs.FS, dir string, strict bool) (func(p string) []field, error) {
	extra := map[string][]FieldSpec{} // kustomization directory -> its specs
	read := func(k string) error {
		specs, err := configurationSpecs(fsys, k)
		if err != nil && strict {
			return err
		}
		if len(specs) > 0 {
			extra[path.Dir(k)] = append(extra[path.Dir(k)], specs...)
		}
		return nil
	}
	for a := path.Dir(dir); dir != "."; a = path.Dir(a) {
		entries, err := fs.ReadDir(fsys, a)
		if err != nil && strict {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && isKustomization(e.Name()) {
				if err := read(path.Join(a, e.Name())); err != nil {
					return nil, err
				}
			}
		}
		if a == "." {
			break
		}
	}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if strict {
				return err
			}
			return nil
		}
		if d.Type().IsRegular() && isKustomization(p) {
			return read(p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(extra) == 0 {
		return func(string) []field { return nil }, nil
	}
	tables := map[string][]field{}
	return func(p string) []field {
		d := path.Dir(p)
		if t, ok := tables[d]; ok {
			return t
		}
		var specs []FieldSpec
		for a := d; ; a = path.Dir(a) {
			specs = append(specs, extra[a]...)
			if a == "." {
				break
			}
		}
		var t []field
		if len(specs) > 0 {
			t = compileFields(append(DefaultFieldSpecs(), specs...))
		}
		tables[d] = t
		return t
	}, nil
}

// configurationSpecs returns the images field specs of the configurations
// files the kustomization k names. A kustomization that does not parse
// declares nothing here (the rewrite, or validation, reports it).
func configurationSpecs(fsys fs.FS, k string) ([]FieldSpec, error) {
	data, err := fs.ReadFile(fsys, k)
	if err != nil {
		return nil, err
	}
	var kust kustomizationConfigurations
	if err := yaml.Unmarshal(data, &kust); err != nil {
		return nil, nil
	}
	kdir := path.Dir(k)
	var specs []FieldSpec
	for _, c := range kust.Configurations {
		p := path.Join(kdir, c)
		// kustomize loads a configurations file with its default load
		// restrictions: from the kustomization's directory or below.
		if strings.Contains(c, "://") || path.IsAbs(c) || !(kdir == "." && fs.ValidPath(p) || strings.HasPrefix(p, kdir+"/")) {
			return nil, fmt.Errorf("%s: configurations entry %q is not a file in the kustomization's directory or below, which kustomize refuses too", k, c)
		}
		info, err := fs.Stat(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("%s: configurations entry %q: %w", k, c, err)
		}
		if info.Size() > MaxFileSize {
			return nil, fmt.Errorf("%s: %d bytes is over the %d-byte limit for manifests", p, info.Size(), MaxFileSize)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("%s: configurations entry %q: %w", k, c, err)
		}
		var tc transformerConfig
		if err := yaml.Unmarshal(data, &tc); err != nil {
			return nil, fmt.Errorf("parsing %s (a configurations file of %s): %w", p, k, err)
		}
		for _, im := range tc.Images {
			fp, err := kustomizePath(im.Path)
			if err != nil {
				return nil, fmt.Errorf("%s: images path %q: %w", p, im.Path, err)
			}
			kinds := []string{AnyKind}
			if im.Kind != "" {
				kinds = []string{im.Kind}
			}
			specs = append(specs, FieldSpec{Kinds: kinds, ExceptKinds: notImages, Group: im.Group, Version: im.Version, Path: fp, Form: FormImage})
		}
	}
	return specs, nil
}

// kustomizePath turns the path of a kustomize field spec into a FieldSpec
// path. kustomize looks each key up in a mapping and enters every sequence
// it meets on the way, whether the path says "[]" or not; "[]*" before each
// key says the same.
func kustomizePath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "", errors.New("empty")
	}
	keys := strings.Split(p, "/")
	steps := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		k = strings.TrimSuffix(k, "[]")
		switch {
		case k == "":
			return "", errors.New("has an empty field name")
		case strings.ContainsAny(k, `\{},*[]`):
			return "", fmt.Errorf("field name %q has characters ferry does not read in a path (escaped slashes, brackets, braces, commas, stars)", k)
		}
		steps = append(steps, "[]*", k)
	}
	return strings.Join(steps, "/"), nil
}
