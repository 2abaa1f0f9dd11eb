package manifest

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Ref is one image reference found in a tree: a container's image or a
// kustomization images entry.
type Ref struct {
	File   string `json:"file"`
	Kind   string `json:"kind"` // KindContainer, KindKustomization, KindSetter, or a Helm or Argo CD kind (helm.go)
	Repo   string `json:"name"` // canonical repository, e.g. index.docker.io/library/nginx
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest,omitempty"`
	Value  string `json:"ref"` // as written; for kustomization entries newName[:newTag][@digest]
	// Replaces is, for a kustomization entry with newName, the canonical
	// repository of its name: the images it renames.
	Replaces string `json:"-"`
}

// Images lists every image reference under dir, in path and file order. It
// reads what Pin would rewrite, with the same options (the fields of
// [DefaultFieldSpecs], Helm values and Argo CD sources included, those
// that configurations files of kustomizations declare, and in files with
// Flux setter markers the marked fields alone) and never fails on a file it cannot parse,
// one too big to be a manifest, or a value that is not a reference: history
// must show any past state, broken ones included. A file it cannot read is
// an error: what it lists must not look complete when it is not.
func Images(fsys fs.FS, dir string, opts ...PinOption) ([]Ref, error) {
	if !fs.ValidPath(dir) {
		return nil, fmt.Errorf("listing images: %q is not a slash path inside the tree", dir)
	}
	cfg, err := newPinConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	fieldsFor, err := treeFields(fsys, dir, false)
	if err != nil {
		return nil, err
	}
	lay := newLayout(fsys)
	var out []Ref
	err = fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !IsManifest(path.Base(p)) {
			return nil
		}
		fields, ok := lay.fields(p, cfg, fieldsFor(p))
		if !ok {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > MaxFileSize {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out = append(out, fileImages(p, data, fields)...)
		return nil
	})
	return out, err
}

// Effective reduces refs to one reference per repository, as the rendered
// manifests would show it: a kustomization entry overrides the containers
// it applies to. The result maps canonical repository to Ref.
func Effective(refs []Ref) map[string]Ref {
	m := map[string]Ref{}
	renamed := map[string]bool{}
	for _, r := range refs {
		if r.Replaces != "" {
			renamed[r.Replaces] = true
		}
	}
	// An entry without newTag or digest keeps the tag and digest the
	// container had, as kustomize renders it: adservice:v0.10.6 renamed to
	// registry/adservice shows as registry/adservice:v0.10.6.
	rendered := map[string]Ref{} // container repository -> its reference
	for _, r := range refs {
		if r.Kind == KindContainer {
			if _, ok := rendered[r.Repo]; !ok {
				rendered[r.Repo] = r
			}
		}
	}
	for _, r := range refs {
		if r.Kind == KindContainer && renamed[r.Repo] {
			continue // kustomize renders it under the entry's newName
		}
		if prev, ok := m[r.Repo]; ok && overrides(prev.Kind) && r.Kind == KindContainer {
			continue
		}
		if r.Kind == KindKustomization && r.Tag == "" && r.Digest == "" {
			from := r.Repo
			if r.Replaces != "" {
				from = r.Replaces
			}
			if c, ok := rendered[from]; ok {
				r.Tag, r.Digest = c.Tag, c.Digest
				r.Value = ref.Ref{Repo: ref.Split(r.Value).Repo, Tag: c.Tag, Digest: c.Digest}.String()
			}
		}
		m[r.Repo] = r
	}
	return m
}

// fileImages reads the references in one file through the same field specs
// the rewriter uses (fields; nil: the defaults). What cannot be read as a
// reference (a file that does not parse, an aliased or duplicated image key,
// a value that is not a reference) is left out: history shows broken states
// too.
func fileImages(p string, data []byte, fields []field) []Ref {
	docs, err := decodeAll(data)
	if err != nil {
		return nil
	}
	if fields == nil {
		fields = defaultFields
	}
	table := fileFields(data, docs, fields)
	var bound map[string]string
	if bytes.Contains(data, []byte(setterKey)) {
		bound = policyRepos(docs)
	}
	var out []Ref
	for _, doc := range docs {
		aliases := hasAlias(doc)
		if aliases && checkAliases(doc) != nil {
			continue
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		var refs []lineRef
		_ = sites(p, doc.Content[0], aliases, table, func(st site) error {
			if st.field.Form == FormSetter {
				refs = append(refs, setterRefs(p, st.node, bound)...)
				return nil
			}
			if r, ok := siteRef(p, st); ok {
				refs = append(refs, lineRef{siteLine(st), r})
			}
			return nil
		})
		// Each field spec walks the document on its own, and the walk meets
		// a collection before those inside it: put them in file order.
		slices.SortStableFunc(refs, func(a, b lineRef) int { return a.line - b.line })
		for _, r := range refs {
			out = append(out, r.Ref)
		}
	}
	return out
}

// siteRef reads the reference at one site.
func siteRef(p string, st site) (Ref, bool) {
	switch st.field.Form {
	case FormKustomizeImage:
		e := deref(st.node)
		if e == nil || e.Kind != yaml.MappingNode {
			return Ref{}, false
		}
		repo, ok := ref.Canonical(effectiveName(e))
		if !ok {
			return Ref{}, false
		}
		r := Ref{File: p, Kind: KindKustomization, Repo: repo, Tag: scalarValue(e, "newTag"), Digest: scalarValue(e, "digest")}
		r.Value = ref.Ref{Repo: effectiveName(e), Tag: r.Tag, Digest: r.Digest}.String()
		if from, ok := ref.Canonical(scalarValue(e, "name")); ok && from != r.Repo {
			r.Replaces = from
		}
		return r, true
	case FormHelmValuesString:
		return Ref{}, false // reached only when its text is no values tree
	case FormHelmImage, FormHelmImageMap, formHelmParameter, FormArgoKustomizeImage:
		return helmRef(p, st)
	default:
		if st.keys != 1 || st.node.Kind != yaml.ScalarNode || st.node.Value == "" {
			return Ref{}, false
		}
		r, ok := parseImage(st.node.Value)
		r.File = p
		return r, ok
	}
}

func parseImage(v string) (Ref, bool) {
	r, ok := ref.Loose(v)
	if !ok {
		return Ref{}, false
	}
	return Ref{Kind: KindContainer, Repo: r.Repo, Tag: r.Tag, Digest: r.Digest, Value: strings.TrimSpace(v)}, true
}

// SortedRepos returns the keys of an Effective map in order.
func SortedRepos(m map[string]Ref) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
