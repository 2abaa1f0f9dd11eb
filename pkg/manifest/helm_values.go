package manifest

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// valuesTree is a Helm values tree that image sites lie in.
type valuesTree struct {
	root     *yaml.Node
	at       string    // the field spec's path, for messages
	global   string    // global.imageRegistry (or global.image.registry), when set
	explicit bool      // the site is named by an image field
	embed    *embedded // nil when the tree's nodes are the file's own
	// err says, on a FormHelmValuesString site, why its text is not a
	// values tree the writer can work in.
	err     error
	parents map[*yaml.Node]*yaml.Node // see parentOf
}

// embedded is the text of a string in the file, parsed as YAML.
type embedded struct {
	block *yaml.Node // the string in the file
	src   *source    // its text
	// why is non-nil when positions in the text cannot be mapped to the
	// file's bytes: the string is not a literal block scalar, or an alias.
	why error
}

// expand wraps a site callback so that values trees and helm.parameters
// lists yield the image sites in them instead of themselves: reading and
// writing only ever see images. An image string in values that is also a
// container's image (a pod template in a HelmRelease's values) is a Helm
// value: the values come first in the table, and the container's site of
// the same node is dropped.
func expand(p string, aliases bool, fn func(site) error) func(site) error {
	inValues := map[*yaml.Node]bool{}
	claim := func(st site) error {
		inValues[st.node] = true
		return fn(st)
	}
	return func(st site) error {
		switch st.field.Form {
		case FormHelmValues:
			root := deref(st.node)
			if root == nil || root.Kind != yaml.MappingNode {
				return nil
			}
			return valuesSites(p, &valuesTree{root: root, at: st.field.Path}, aliases, st.field.images, claim)
		case FormHelmValuesString:
			tree, inner, ok := parseValuesString(st)
			switch {
			case !ok:
				return nil
			case tree.err != nil:
				st.values = tree
				return fn(st) // for the writer to refuse
			}
			return valuesSites(p, tree, inner, st.field.images, fn)
		case FormHelmParameters:
			return parameterSites(st, st.field.images, fn)
		case FormImage:
			if inValues[st.node] {
				return nil
			}
		}
		return fn(st)
	}
}

func valuesSites(p string, tree *valuesTree, aliases bool, images []imageField, fn func(site) error) error {
	if g := deref(single(tree.root, "global")); g != nil && g.Kind == yaml.MappingNode {
		tree.global = scalarValue(g, "imageRegistry")
		if gi := deref(single(g, "image")); tree.global == "" && gi != nil && gi.Kind == yaml.MappingNode {
			tree.global = scalarValue(gi, "registry") // ingress-nginx
		}
	}
	if images == nil {
		// A node once, to the first spec that reaches it: an image map
		// is the image key's, not also any map's.
		seen := map[*yaml.Node]bool{}
		return sites(p, tree.root, aliases, helmImageFields, func(st site) error {
			if seen[st.node] {
				return nil
			}
			seen[st.node] = true
			st.values = tree
			return fn(st)
		})
	}
	named := *tree
	named.explicit = true
	seen := map[*yaml.Node]bool{}
	for _, f := range images {
		n, keys := f.resolve(tree.root)
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		if err := fn(site{field: imageFieldSite, node: n, keys: keys, values: &named}); err != nil {
			return err
		}
	}
	return nil
}

// parseValuesString reads the values document a string holds. It reports
// false when there is nothing to read: not a string, empty, or not a map.
func parseValuesString(st site) (tree *valuesTree, aliases, ok bool) {
	n := deref(st.node)
	if n == nil || n.Kind != yaml.ScalarNode || strings.TrimSpace(n.Value) == "" {
		return nil, false, false
	}
	data := []byte(n.Value)
	emb := &embedded{block: n, src: newSource(data)}
	switch {
	case st.node.Kind == yaml.AliasNode:
		emb.why = fmt.Errorf("the values are a YAML alias (*%s); write them in place to have images in them pinned", st.node.Value)
	case n.Style&yaml.LiteralStyle == 0:
		emb.why = errors.New("the values string is not a literal block scalar (|); write it as one to have images in it pinned")
	}
	tree = &valuesTree{at: st.field.Path, embed: emb}
	docs, err := decodeAll(data)
	switch {
	case err != nil:
		tree.err = fmt.Errorf("values string does not parse as YAML: %w", err)
		return tree, false, true
	case len(docs) > 1:
		tree.err = fmt.Errorf("values string holds %d YAML documents, not one", len(docs))
		return tree, false, true
	case len(docs) == 0 || len(docs[0].Content) == 0 || docs[0].Content[0].Kind != yaml.MappingNode:
		return nil, false, false
	}
	if aliases = hasAlias(docs[0]); aliases {
		if err := checkAliases(docs[0]); err != nil {
			tree.err = fmt.Errorf("values string: %w", err)
			return tree, false, true
		}
	}
	tree.root = docs[0].Content[0]
	return tree, aliases, true
}

// paramImage is an image a helm.parameters list sets: the items (maps of
// name and value) that write it.
type paramImage struct {
	name                        string // of the tag parameter, or of the whole-reference one
	whole                       *yaml.Node
	tag, repo, registry, digest *yaml.Node
	dup                         string // a name given twice
	field                       bool   // P is an image field
}

// parameterSites yields each image of a helm.parameters list. With image
// fields, a P.tag parameter without a repository beside it is an image
// too when P is one of the fields: it overrides the tag of that field.
func parameterSites(st site, images []imageField, fn func(site) error) error {
	seq := deref(st.node)
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	byName, count := map[string]*yaml.Node{}, map[string]int{}
	var items []*yaml.Node
	for _, c := range seq.Content {
		m := deref(c)
		if m == nil || m.Kind != yaml.MappingNode || scalarValue(m, "name") == "" {
			continue
		}
		name := scalarValue(m, "name")
		items = append(items, m)
		byName[name] = m
		count[name]++
	}
	for _, m := range items {
		name := scalarValue(m, "name")
		pi := &paramImage{name: name}
		names := []string{name}
		switch {
		case name == "tag" || strings.HasSuffix(name, ".tag"):
			prefix := strings.TrimSuffix(name, "tag")
			pi.tag, pi.registry, pi.digest = m, byName[prefix+"registry"], byName[prefix+"digest"]
			names = append(names, prefix+"registry", prefix+"digest")
			for _, k := range []string{"repository", "image", "name"} {
				if pi.repo = byName[prefix+k]; pi.repo != nil {
					names = append(names, prefix+k)
					break
				}
			}
			named := slices.ContainsFunc(images, func(f imageField) bool { return f.text+"." == prefix })
			if pi.repo == nil && !named {
				continue
			}
			pi.field = named
		case name == "image" || strings.HasSuffix(name, ".image"):
			prefix := strings.TrimSuffix(name, "image")
			if slices.ContainsFunc([]string{"repository", "registry", "tag", "digest"}, func(k string) bool { return byName[prefix+k] != nil }) {
				continue // the repository of the P.tag group
			}
			pi.whole = m
		default:
			continue
		}
		for _, n := range names {
			if count[n] > 1 {
				pi.dup = n
			}
		}
		if err := fn(site{field: parameterSite, node: m, keys: 1, param: pi}); err != nil {
			return err
		}
	}
	return nil
}

// paramValue is the value of a parameter item, "" when absent or not a scalar.
func paramValue(m *yaml.Node) string {
	if m == nil {
		return ""
	}
	return scalarValue(m, "value")
}

// helmImage is an image in a values tree, as written.
type helmImage struct {
	node  *yaml.Node // the string, or the map
	whole bool       // a string holding the whole reference
	// A map's values, nil when absent; repoKey is "repository", or "name"
	// in an image map without one.
	registry, repository, tag, digest *yaml.Node
	repoKey                           string
	bad                               string // why the map cannot be pinned
}

// readHelmImage reads the image at a site in a values tree.
func readHelmImage(st site) (helmImage, bool) {
	n := deref(st.node)
	if n == nil {
		return helmImage{}, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if st.field.Form != FormHelmImage || n.ShortTag() != "!!str" || strings.TrimSpace(n.Value) == "" {
			return helmImage{}, false
		}
		if st.values != nil && hasImageKeys(st.values.parentOf(st.node)) {
			// A repository beside its tag: the map it is in is the image.
			return helmImage{}, false
		}
		return helmImage{node: n, whole: true}, true
	case yaml.MappingNode:
	default:
		return helmImage{}, false
	}
	img := helmImage{node: n, repoKey: "repository"}
	get := func(key string) *yaml.Node {
		vs := lookup(n, key)
		switch {
		case len(vs) == 0:
			return nil
		case len(vs) > 1 && img.bad == "":
			img.bad = fmt.Sprintf("has %d %s keys; refusing to guess which one counts", len(vs), key)
		case vs[0].Kind != yaml.ScalarNode && img.bad == "":
			img.bad = key + " is not a scalar but an alias or a collection; write the value in place to have it pinned"
		}
		return vs[0]
	}
	img.registry, img.tag, img.digest = get("registry"), get("tag"), get("digest")
	if img.tag == nil {
		img.tag = get("imageTag") // elastic's charts: image: repo, imageTag: 8.5.1
	}
	beside := img.registry != nil || img.tag != nil || img.digest != nil
	img.repository = get("repository")
	if v := deref(single(n, "image")); img.repository == nil && beside && v != nil && v.Kind == yaml.ScalarNode {
		// ingress-nginx's {registry, image, tag, digest}; argo-cd's
		// redis-ha exporter {image, tag}.
		img.repository, img.repoKey = get("image"), "image"
	}
	if img.repository == nil && st.field.Form == FormHelmImage {
		img.repository, img.repoKey = get("name"), "name"
	}
	explicit := st.values != nil && st.values.explicit
	switch {
	case explicit:
		return img, img.repository != nil || beside
	case img.repository == nil || scalarText(img.repository) == "":
		return helmImage{}, false
	case st.field.Form == FormHelmImageMap && !beside:
		return helmImage{}, false
	}
	return img, true
}

// hasImageKeys reports whether m is a map with a key that only an image
// map has beside its image: repository, registry, tag (imageTag) or digest.
func hasImageKeys(m *yaml.Node) bool {
	if m == nil || m.Kind != yaml.MappingNode {
		return false
	}
	for _, k := range []string{"repository", "registry", "tag", "imageTag", "digest"} {
		if len(lookup(m, k)) > 0 {
			return true
		}
	}
	return false
}

// parentOf returns the collection n is in, in the tree as written.
func (tree *valuesTree) parentOf(n *yaml.Node) *yaml.Node {
	if tree.parents == nil {
		tree.parents = map[*yaml.Node]*yaml.Node{}
		var walk func(m *yaml.Node)
		walk = func(m *yaml.Node) {
			for i, c := range m.Content {
				if m.Kind == yaml.MappingNode && i%2 == 0 {
					continue
				}
				tree.parents[c] = m
				walk(c)
			}
		}
		walk(tree.root)
	}
	return tree.parents[n]
}

// scalarText is the value of a scalar, looking through aliases; "" for
// anything else.
func scalarText(n *yaml.Node) string {
	if d := deref(n); d != nil && d.Kind == yaml.ScalarNode {
		return d.Value
	}
	return ""
}

// repos returns the repository a map names, and another when the tree's
// global registry may replace the map's own. Charts agree that a global
// registry is the registry of a map without one (unless its repository
// names a host), and disagree when the map has one: Bitnami's
// common.images.image lets the global win, ingress-nginx's merge lets the
// map win.
func (img helmImage) repos(tree *valuesTree) (own, alt string) {
	reg, repo := scalarText(img.registry), scalarText(img.repository)
	global := ""
	if tree != nil {
		global = tree.global
	}
	switch {
	case global == "" || repo == "":
		return joinRepo(reg, repo), ""
	case reg == "" && !hasHost(repo):
		return joinRepo(global, repo), ""
	case reg != "" && reg != global:
		return joinRepo(reg, repo), joinRepo(global, repo)
	}
	return joinRepo(reg, repo), ""
}

// hasHost reports whether a repository as written starts with a registry
// host, as the container runtimes read it.
func hasHost(repo string) bool {
	first, _, ok := strings.Cut(repo, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// tagDigest returns the tag and digest a map pins: its tag (which may be
// tag@digest, Argo CD Image Updater's form) and its digest, which wins.
func (img helmImage) tagDigest() (tag, digest string) {
	tag, digest = splitTag(scalarText(img.tag))
	if d := scalarText(img.digest); d != "" {
		digest = d
	}
	return tag, digest
}

func joinRepo(registry, repository string) string {
	if registry == "" {
		return repository
	}
	return strings.TrimSuffix(registry, "/") + "/" + repository
}

// splitTag cuts a tag value of the form tag@digest.
func splitTag(v string) (tag, digest string) {
	tag, digest, _ = strings.Cut(strings.TrimSpace(v), "@")
	return tag, digest
}

// helmRef reads the reference at a site of the Helm and Argo CD forms.
func helmRef(p string, st site) (Ref, bool) {
	switch st.field.Form {
	case FormHelmImage, FormHelmImageMap:
		if st.keys != 1 || st.node.Kind == yaml.AliasNode {
			return Ref{}, false
		}
		img, ok := readHelmImage(st)
		if !ok || img.bad != "" {
			return Ref{}, false
		}
		if img.whole {
			return wholeRef(p, KindHelmValues, img.node.Value)
		}
		own, _ := img.repos(st.values)
		tag, digest := img.tagDigest()
		return mapRef(p, KindHelmValues, own, tag, digest)
	case formHelmParameter:
		pi := st.param
		if pi.whole != nil {
			return wholeRef(p, KindHelmParameter, paramValue(pi.whole))
		}
		tag, digest := splitTag(paramValue(pi.tag))
		if d := paramValue(pi.digest); d != "" {
			digest = d
		}
		if pi.repo == nil {
			return Ref{}, false // the repository is in the chart
		}
		return mapRef(p, KindHelmParameter, joinRepo(paramValue(pi.registry), paramValue(pi.repo)), tag, digest)
	case FormArgoKustomizeImage:
		n := deref(st.node)
		if n == nil || n.Kind != yaml.ScalarNode {
			return Ref{}, false
		}
		from, image := cutArgoImage(n.Value)
		r, ok := wholeRef(p, KindArgoKustomize, image)
		if c, okFrom := ref.Canonical(from); ok && from != "" && okFrom && c != r.Repo {
			r.Replaces = c
		}
		r.Value = strings.TrimSpace(n.Value)
		return r, ok
	}
	return Ref{}, false
}

func wholeRef(p, kind, v string) (Ref, bool) {
	if strings.TrimSpace(v) == "" {
		return Ref{}, false
	}
	r, ok := parseImage(v)
	r.File, r.Kind = p, kind
	return r, ok
}

func mapRef(p, kind, repo, tag, digest string) (Ref, bool) {
	canonical, ok := ref.Canonical(repo)
	if !ok {
		return Ref{}, false
	}
	return Ref{File: p, Kind: kind, Repo: canonical, Tag: tag, Digest: digest,
		Value: ref.Ref{Repo: repo, Tag: tag, Digest: digest}.String()}, true
}

// cutArgoImage splits an Argo CD kustomize image, [name=]image.
func cutArgoImage(v string) (from, image string) {
	if f, img, ok := strings.Cut(v, "="); ok {
		return strings.TrimSpace(f), img
	}
	return "", v
}

// sameEmbeddedShape is sameShape for two versions of a literal block
// scalar that held a values document, as Argo CD's helm.values does.
func sameEmbeddedShape(a, b *yaml.Node, at string) error {
	if a.Value == b.Value || a.Style&yaml.LiteralStyle == 0 {
		return nil
	}
	before, err := decodeAll([]byte(a.Value))
	if err != nil || len(before) != 1 || len(before[0].Content) == 0 || before[0].Content[0].Kind != yaml.MappingNode {
		return nil // no values document: the rewriter did not work in it
	}
	after, err := decodeAll([]byte(b.Value))
	if err != nil || len(after) != 1 {
		return fmt.Errorf("%s: the values string no longer parses as one document", or(at, "document"))
	}
	return sameShape(before[0], after[0], at+"|")
}

// siteLine is the line of a site in the file, inside a values string too.
func siteLine(st site) int {
	if st.values != nil && st.values.embed != nil {
		return st.values.embed.block.Line + st.node.Line
	}
	return st.node.Line
}
