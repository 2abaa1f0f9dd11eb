package manifest

import (
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Form says how an image reference is written where a [FieldSpec] points.
type Form int

const (
	// FormImage is one scalar holding repo[:tag][@digest], as a container's
	// image does.
	FormImage Form = iota
	// FormKustomizeImage is an entry of a kustomization's images list: a
	// map whose name (or newName) is the repository and whose newTag and
	// digest pin it.
	FormKustomizeImage
	// FormSetter is a collection (mapping or sequence) whose scalar values
	// may carry a Flux image-automation setter marker, a line comment
	// {"$imagepolicy": "NS:NAME[:tag|:name|:digest]"}; the marked values
	// are what is pinned (see markers.go). In a file with any marker, only
	// the FormSetter fields apply, as Flux changes only marked fields.
	FormSetter
)

// FieldSpec says where image references live, in the spirit of kustomize's
// field specs: in documents whose kind is one of Kinds (any document when
// empty; [AnyKind] for any document that has a kind) and not one of
// ExceptKinds, whose apiVersion has Group and Version (any when empty),
// in files whose base name matches one of Files (path.Match patterns; any
// manifest when empty), at Path, written in Form.
//
// Path is a slash-separated list of steps from the document's root: a key
// ("spec"), alternative keys ("{containers,initContainers}"), "[]" for
// every item of a sequence, "**" for any depth, and "[]*" for any number of
// sequences entered on the way (as a kustomize field spec's path enters
// every sequence it meets, "[]" or not), so
// "**/{containers,initContainers}[]/image" finds a pod template wherever a
// kind keeps it (a CronJob's spec.jobTemplate.spec.template included).
type FieldSpec struct {
	Kinds       []string
	ExceptKinds []string
	Group       string
	Version     string
	Files       []string
	Path        string
	Form        Form
}

// AnyKind in [FieldSpec.Kinds] matches every document that has a kind, as
// every Kubernetes resource (and every resource kustomize reads) has one.
const AnyKind = "*"

// WorkloadKinds are Kubernetes' own kinds that carry a pod template (or are
// a pod). Their containers are pinned as every other kind's are; the list
// stays for callers that name them.
var WorkloadKinds = []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

// notImages are the kinds kustomize's images transformer never looks into:
// a CustomResourceDefinition's schema may hold example containers.
var notImages = []string{"CustomResourceDefinition"}

// DefaultFieldSpecs are the places ferry reads and pins images in, and so
// the places kustomize's images transformer (sigs.k8s.io/kustomize/api
// v0.21) rewrites: the image of every item of a containers or
// initContainers list at any depth of a document of any kind (a Rollout, a
// Knative Service, a CloneSet and a custom kind alike) but a
// CustomResourceDefinition; ferry adds ephemeralContainers, and image
// volumes (volumes[].image.reference, Kubernetes 1.31) at any depth, of
// which kustomize knows three paths; the images list of a kustomization;
// and, in files that carry them, the fields marked with Flux setter
// markers, alone. Reading (history, diff, the out-of-order guard) and
// writing (the byte-exact splice) both go through this one table; [Pin]
// adds the images field specs of the configurations files kustomizations
// name.
func DefaultFieldSpecs() []FieldSpec {
	// Helm values first: an image in a HelmRelease's values is a Helm
	// value, though it is also a container's (see expand).
	return append(HelmFieldSpecs(), []FieldSpec{
		{Files: konfig.RecognizedKustomizationFileNames(), Path: "images[]", Form: FormKustomizeImage},
		{Kinds: []string{AnyKind}, ExceptKinds: notImages, Path: "**/{containers,initContainers,ephemeralContainers}[]/image", Form: FormImage},
		{Kinds: []string{AnyKind}, ExceptKinds: notImages, Path: "**/volumes[]/image/reference", Form: FormImage},
		{Path: "**", Form: FormSetter},
	}...)
}

var defaultFields = compileFields(DefaultFieldSpecs())

// isKustomization reports whether p names a kustomization file, by the
// names kustomize itself recognises.
func isKustomization(p string) bool {
	return slices.Contains(konfig.RecognizedKustomizationFileNames(), path.Base(p))
}

// IsManifest reports whether a file of this base name holds manifests:
// *.yaml or *.yml in any case, or a kustomization file. Pinning, reading
// and validation all decide by it.
func IsManifest(base string) bool {
	switch strings.ToLower(path.Ext(base)) {
	case ".yaml", ".yml":
		return true
	}
	return isKustomization(base)
}

// field is a compiled FieldSpec.
type field struct {
	FieldSpec
	steps [][]string // each step's keys; nil for "[]", {"**"} for any depth, {"[]*"} for any sequences
	// images are, for the Helm forms, the image fields WithImageFields
	// names; nil to detect images (see helm.go).
	images []imageField
}

func compileFields(specs []FieldSpec) []field {
	out := make([]field, len(specs))
	for i, s := range specs {
		out[i].FieldSpec = s
		for _, st := range strings.Split(s.Path, "/") {
			for st != "" {
				switch {
				case st == "**" || st == "[]*":
					out[i].steps = append(out[i].steps, []string{st})
					st = ""
				case strings.HasPrefix(st, "[]"):
					out[i].steps = append(out[i].steps, nil)
					st = st[2:]
				default:
					key, rest, _ := strings.Cut(st, "[]")
					if rest != "" || strings.HasSuffix(st, "[]") {
						rest = "[]" + rest
					}
					if alts, ok := strings.CutPrefix(key, "{"); ok {
						out[i].steps = append(out[i].steps, strings.Split(strings.TrimSuffix(alts, "}"), ","))
					} else {
						out[i].steps = append(out[i].steps, []string{key})
					}
					st = rest
				}
			}
		}
	}
	return out
}

// applies reports whether f looks into a document of kind and apiVersion
// in file p.
func (f *field) applies(p, kind, apiVersion string) bool {
	if len(f.Files) > 0 && !slices.ContainsFunc(f.Files, func(pat string) bool {
		ok, _ := path.Match(pat, path.Base(p))
		return ok
	}) {
		return false
	}
	if slices.Contains(f.ExceptKinds, kind) {
		return false
	}
	if f.Group != "" || f.Version != "" {
		// As kustomize's resid.ParseGroupVersion: "v1" is the core group.
		group, version, ok := strings.Cut(apiVersion, "/")
		if !ok {
			group, version = "", apiVersion
		}
		if f.Group != "" && f.Group != group || f.Version != "" && f.Version != version {
			return false
		}
	}
	switch {
	case len(f.Kinds) == 0:
		return true
	case slices.Contains(f.Kinds, AnyKind) && kind != "":
		return true
	}
	return slices.Contains(f.Kinds, kind)
}

// site is one place a field spec points at in a document.
type site struct {
	field *field
	// node is the value as written: a scalar for FormImage, a mapping for
	// FormKustomizeImage, or an alias to one, which callers decide about.
	node *yaml.Node
	// keys is how many values the field's key has in its mapping (yaml.v3
	// keeps duplicate keys); more than one is ambiguous.
	keys int
	// values is the Helm values tree a site inside one lies in; param is
	// the image a helm.parameters list sets (see helm.go). nil otherwise.
	values *valuesTree
	param  *paramImage
}

// sites calls fn for each place one of fields points at in the document
// root of file p, once per node and form even where aliases or several
// fields reach it again. Values trees and helm.parameters lists are not
// places themselves: fn gets the images in them (see expand in helm.go).
// Aliases
// are followed on the way; a walk over a document with aliases remembers
// where it has been, so a crafted alias graph costs linear time (the
// document's expanded size is checked before, see checkAliases).
func sites(p string, root *yaml.Node, aliases bool, fields []field, fn func(site) error) error {
	fn = expand(p, aliases, fn) // values trees and parameter lists yield the images in them
	kind, apiVersion := scalarValue(root, "kind"), scalarValue(root, "apiVersion")
	seen := map[seenKey]bool{}
	for i := range fields {
		f := &fields[i]
		if !f.applies(p, kind, apiVersion) {
			continue
		}
		w := walker{f: f, seen: seen, fn: fn}
		if aliases {
			w.visited = map[visit]bool{}
		}
		if err := w.walk(root, 0, 1); err != nil {
			return err
		}
	}
	return nil
}

type seenKey struct {
	n    *yaml.Node
	form Form
}

type visit struct {
	n    *yaml.Node
	step int
}

type walker struct {
	f       *field
	seen    map[seenKey]bool // sites reported
	visited map[visit]bool   // nil when the document has no aliases
	fn      func(site) error
}

func (w *walker) walk(n *yaml.Node, step, keys int) error {
	if n == nil {
		return nil
	}
	if step == len(w.f.steps) {
		if w.seen[seenKey{n, w.f.Form}] {
			return nil
		}
		w.seen[seenKey{n, w.f.Form}] = true
		return w.fn(site{field: w.f, node: n, keys: keys})
	}
	if w.visited != nil {
		if w.visited[visit{n, step}] {
			return nil
		}
		w.visited[visit{n, step}] = true
	}
	d := deref(n)
	if d == nil {
		return nil
	}
	st := w.f.steps[step]
	switch {
	case len(st) == 1 && st[0] == "[]*":
		if err := w.walk(n, step+1, keys); err != nil {
			return err
		}
		if d.Kind == yaml.SequenceNode {
			for _, c := range d.Content {
				if err := w.walk(c, step, 1); err != nil {
					return err
				}
			}
		}
	case len(st) == 1 && st[0] == "**":
		if err := w.walk(n, step+1, keys); err != nil {
			return err
		}
		for i, c := range d.Content {
			if d.Kind == yaml.MappingNode && i%2 == 0 {
				continue // keys
			}
			if err := w.walk(c, step, 1); err != nil {
				return err
			}
		}
	case st == nil:
		if d.Kind != yaml.SequenceNode {
			return nil
		}
		for _, c := range d.Content {
			if err := w.walk(c, step+1, 1); err != nil {
				return err
			}
		}
	default:
		if d.Kind != yaml.MappingNode {
			return nil
		}
		// In document order, so what is read comes out in file order.
		for i := 0; i+1 < len(d.Content); i += 2 {
			k := d.Content[i]
			if k.Kind != yaml.ScalarNode || !slices.Contains(st, k.Value) {
				continue
			}
			if err := w.walk(d.Content[i+1], step+1, len(lookup(d, k.Value))); err != nil {
				return err
			}
		}
	}
	return nil
}
