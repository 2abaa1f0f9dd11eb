package manifest

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Forms of Helm values and Argo CD sources. They are numbered apart from
// those in fields.go so that either list can grow without touching the
// other.
const (
	// FormHelmValues is a Helm values tree, a mapping. It is no image
	// itself: the walker yields the images in it, found by detection (see
	// [HelmFieldSpecs]) or, with [WithImageFields], at the fields named.
	FormHelmValues Form = 100 + iota
	// FormHelmValuesString is a string holding a values document, as Argo
	// CD's spec.source.helm.values does, read as FormHelmValues. Images in
	// it are pinned in place when it is a literal block scalar (|).
	FormHelmValuesString
	// FormHelmImage is, in a values tree, the value of an image key: a
	// string [registry/]repository[:tag][@digest], or a map of repository
	// (or name), with registry, tag and digest optional.
	FormHelmImage
	// FormHelmImageMap is, in a values tree, any other map that has a
	// repository (or an image string) and at least one of registry, tag
	// and digest, such as podinfo's redis: {repository, tag}.
	FormHelmImageMap
	// FormHelmParameters is Argo CD's helm.parameters list of {name,
	// value}. An image in it is a P.tag parameter beside a P.repository,
	// P.image or P.name one (P.registry and P.digest optional), or an
	// image or P.image parameter, with no such siblings, holding a whole
	// reference.
	FormHelmParameters
	// FormArgoKustomizeImage is an entry of Argo CD's kustomize.images
	// list: [name=]newName[:tag][@digest].
	FormArgoKustomizeImage
	// formHelmParameter is one image of a helm.parameters list.
	formHelmParameter
)

// Kinds of [Change] and [Ref] for Helm values and Argo CD sources.
const (
	KindHelmValues    = "helm-values"      // image in Helm values: a values file, a HelmRelease's spec.values, an Application's helm values
	KindHelmParameter = "helm-parameter"   // image set by Argo CD helm.parameters
	KindArgoKustomize = "argocd-kustomize" // entry of Argo CD's kustomize.images
)

// ArgoSourceFiles are the names (path.Match patterns) of Argo CD's
// parameter override files, which Argo CD Image Updater's git write-back
// writes: .argocd-source-<app>.yaml, and .argocd-source.yaml for every
// application of a path.
var ArgoSourceFiles = []string{".argocd-source.yaml", ".argocd-source-*.yaml"}

// HelmFieldSpecs are the places of [DefaultFieldSpecs] where Helm values
// and Argo CD sources keep images: the spec.values of a Flux HelmRelease
// (helm.toolkit.fluxcd.io); the helm valuesObject, values, parameters and
// kustomize images of an Argo CD Application (argoproj.io), in
// spec.source and in each of spec.sources; and the same fields at the top
// of an Argo CD parameter override file (ArgoSourceFiles).
//
// Helm values files (values*.yaml beside a Chart.yaml, and those named by
// [WithValuesFiles]) are values trees from their root.
//
// In a values tree, unless [WithImageFields] names the fields, an image is
//
//   - the value of an image key at any depth: a string, read as a whole
//     reference unless its map has a repository, registry, tag or digest;
//     or a map with a repository (lacking one, a name);
//   - any other map with a repository string and at least one of
//     registry, tag and digest (images.<name>, podinfo's redis:);
//   - a map with an image string and at least one of registry, tag and
//     digest, the image string being the repository (ingress-nginx's
//     controller.image, argo-cd's redis-ha.exporter).
//
// A map's repository is registry/repository when it has a non-empty
// registry. A global registry (global.imageRegistry, or ingress-nginx's
// global.image.registry) is the registry of the maps without one, unless
// their repository names a host. For a map with its own registry, charts
// disagree on which wins (Bitnami's common.images.image: the global;
// ingress-nginx's merge: the map's), so a map that would name a target
// either way is refused, listing both, unless an image field names it.
func HelmFieldSpecs() []FieldSpec {
	hr, app := []string{"HelmRelease"}, []string{"Application"}
	specs := []FieldSpec{{Kinds: hr, Group: "helm.toolkit.fluxcd.io", Path: "spec/values", Form: FormHelmValues}}
	source := func(kinds []string, group string, files []string, at string) {
		specs = append(specs,
			FieldSpec{Kinds: kinds, Group: group, Files: files, Path: at + "helm/valuesObject", Form: FormHelmValues},
			FieldSpec{Kinds: kinds, Group: group, Files: files, Path: at + "helm/values", Form: FormHelmValuesString},
			FieldSpec{Kinds: kinds, Group: group, Files: files, Path: at + "helm/parameters", Form: FormHelmParameters},
			FieldSpec{Kinds: kinds, Group: group, Files: files, Path: at + "kustomize/images[]", Form: FormArgoKustomizeImage},
		)
	}
	source(app, "argoproj.io", nil, "spec/source/")
	source(app, "argoproj.io", nil, "spec/sources[]/")
	source(nil, "", ArgoSourceFiles, "")
	return specs
}

var (
	// valuesFileFields read a values file: its whole document is a values
	// tree, unless setter markers say which fields Flux pins in it.
	valuesFileFields = compileFields([]FieldSpec{{Form: FormHelmValues}, {Path: "**", Form: FormSetter}})
	// helmImageFields detect images in a values tree. image values come
	// first: the walker reports a node once, to the first spec reaching it.
	helmImageFields = compileFields([]FieldSpec{
		{Path: "**/image", Form: FormHelmImage},
		{Path: "**", Form: FormHelmImageMap},
	})
	imageFieldSite = &field{FieldSpec: FieldSpec{Path: "(image field)", Form: FormHelmImage}}
	parameterSite  = &field{FieldSpec: FieldSpec{Path: "(helm parameter)", Form: formHelmParameter}}
)

// overrides reports whether references of kind replace, as kustomize's
// images transformer does, the container images they name.
func overrides(kind string) bool { return kind == KindKustomization || kind == KindArgoKustomize }

// PinOption changes where [Pin], [Images] and [RewriteFile] look for images.
type PinOption func(*pinConfig)

// WithValuesFiles names Helm values files beyond those found by layout
// (values*.yaml in a directory holding a Chart.yaml). A pattern without a
// slash matches a file's base name ("values-prod.yaml", "*.values.yaml");
// one with a slash matches its whole slash path from the tree's root
// ("envs/*/values.yaml"); both by path.Match. A chart's templates are
// never read, whatever the patterns say.
func WithValuesFiles(patterns ...string) PinOption {
	return func(c *pinConfig) { c.valuesFiles = append(c.valuesFiles, patterns...) }
}

// WithImageFields names, in Argo CD Image Updater's syntax
// ("frontend.image", "sidecars[0].image"), the fields of Helm values that
// hold images. A field holding a string is a whole reference; one holding
// a map has repository, registry, tag and digest as detection reads them,
// and may lack the repository (an override file setting only image.tag)
// when exactly one target is pinned. The fields replace detection in every
// values tree (values files, HelmRelease spec.values, Application helm
// values); they change nothing for containers, kustomizations and
// helm.parameters.
func WithImageFields(fields ...string) PinOption {
	return func(c *pinConfig) { c.imageFields = append(c.imageFields, fields...) }
}

type pinConfig struct {
	valuesFiles []string
	imageFields []string
	images      []imageField // compiled imageFields
	values      []field      // the field specs of a values file
}

func newPinConfig(opts []PinOption) (*pinConfig, error) {
	c := &pinConfig{values: valuesFileFields}
	for _, o := range opts {
		o(c)
	}
	for _, p := range c.valuesFiles {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return nil, fmt.Errorf("values file pattern %q is not a path.Match pattern", p)
		}
	}
	for _, s := range c.imageFields {
		f, err := parseImageField(s)
		if err != nil {
			return nil, err
		}
		c.images = append(c.images, f)
	}
	if c.images != nil {
		c.values = withImages(valuesFileFields, c.images)
	}
	return c, nil
}

func withImages(fields []field, images []imageField) []field {
	out := slices.Clone(fields)
	for i := range out {
		switch out[i].Form {
		case FormHelmValues, FormHelmValuesString, FormHelmParameters:
			out[i].images = images
		}
	}
	return out
}

// namesValues reports whether a WithValuesFiles pattern names p.
func (c *pinConfig) namesValues(p string) bool {
	for _, pat := range c.valuesFiles {
		name := p
		if !strings.Contains(pat, "/") {
			name = path.Base(p)
		}
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// fieldsFor returns the field specs to read p with: a values file's when
// a WithValuesFiles pattern names it, else base (nil: the defaults) with
// the image fields.
func (c *pinConfig) fieldsFor(p string, base []field) []field {
	if c.namesValues(p) {
		return c.values
	}
	if base == nil {
		base = defaultFields
	}
	if c.images == nil {
		return base
	}
	return withImages(base, c.images)
}

// imageField is a field named by WithImageFields.
type imageField struct {
	text string
	path []pathElem
}

// pathElem is a key, or an index (key "", index >= 0).
type pathElem struct {
	key   string
	index int
}

// parseImageField reads Argo CD Image Updater's key syntax: keys joined by
// dots, each followed by any number of [N] indexes.
func parseImageField(s string) (imageField, error) {
	f := imageField{text: s}
	bad := func(why string) (imageField, error) {
		return imageField{}, fmt.Errorf("image field %q: %s; write keys joined by dots, with [N] for a list item, as in sidecars[0].image", s, why)
	}
	if s == "" {
		return bad("empty")
	}
	for _, part := range strings.Split(s, ".") {
		key, rest, hasIndex := strings.Cut(part, "[")
		if key == "" {
			return bad("empty key")
		}
		if strings.ContainsAny(key, "]") {
			return bad("unexpected ]")
		}
		f.path = append(f.path, pathElem{key: key, index: -1})
		for hasIndex {
			idx, after, ok := strings.Cut(rest, "]")
			n, err := strconv.Atoi(idx)
			if !ok || err != nil || n < 0 || idx != strconv.Itoa(n) {
				return bad("an index is not [N]")
			}
			f.path = append(f.path, pathElem{index: n})
			if after == "" {
				break
			}
			if !strings.HasPrefix(after, "[") {
				return bad("text after an index")
			}
			rest = after[1:]
		}
	}
	return f, nil
}

// resolve returns the node f names in root, and how many values its last
// key has (more than one is ambiguous), or nil.
func (f imageField) resolve(root *yaml.Node) (*yaml.Node, int) {
	n, keys := root, 1
	for _, e := range f.path {
		d := deref(n)
		if d == nil {
			return nil, 0
		}
		switch {
		case e.index >= 0:
			if d.Kind != yaml.SequenceNode || e.index >= len(d.Content) {
				return nil, 0
			}
			n, keys = d.Content[e.index], 1
		default:
			if d.Kind != yaml.MappingNode {
				return nil, 0
			}
			vs := lookup(d, e.key)
			if len(vs) == 0 {
				return nil, 0
			}
			n, keys = vs[0], len(vs)
		}
	}
	return n, keys
}
