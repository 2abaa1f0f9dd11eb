package manifest

// Flux image-automation setter markers.
//
// Flux's image-automation-controller (internal/update, "Setters" strategy)
// pins the scalars that carry a line comment such as
//
//	image: ghcr.io/stefanprodan/podinfo:5.0.0 # {"$imagepolicy": "flux-system:podinfo"}
//	tag: 5.0.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
//
// in any kind, at any path, and nothing else. The setter is NS:NAME, an
// ImagePolicy, for the whole reference, or NS:NAME:tag, :name or :digest for
// one part of it. ferry reads the markers the same way (readMarker) and, in
// a file that carries one, pins only the marked fields, through the
// FormSetter field spec of the one table that also serves every other form.
//
// Which image a marked field is: the target given with its policy
// (Target.Policy), when there is one; otherwise the target, among those
// given without a policy, whose repository the field names: for a whole
// reference, the repository of its value; for a part, the value of the field
// beside it (in the same mapping) marked NS:NAME:name, else, in a kustomize
// images entry, its newName or name, else, in a Helm values image map, its
// repository (after its registry). A target given with a policy claims the
// fields marked with it and leaves fields marked with other policies alone,
// as Flux would.
//
// What is written: a whole reference gets repo:tag@digest, as every other
// image field does. A :name field gets the target's repository, and is left
// as it is when it already names it. A :digest field gets the digest. A
// :tag field gets the tag alone when a field beside it is marked :digest,
// and tag@digest when none is: ferry pins digests, and a chart renders
// repository:tag, so tag@digest still names one image (Flux writes the tag
// alone). A target without a tag keeps the tag the field holds.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// setterKey is the key of a setter marker's JSON object; Flux reads only
// the files that hold it.
const setterKey = "$imagepolicy"

// unmarkedFields are the default fields but the setter markers': the image
// fields of a build's output, whose comments are no markers of a file.
var unmarkedFields = compileFields(slices.DeleteFunc(DefaultFieldSpecs(), func(s FieldSpec) bool { return s.Form == FormSetter }))

// Parts of an image a setter names; partImage is the whole reference.
const (
	partImage  = ""
	partTag    = "tag"
	partName   = "name"
	partDigest = "digest"
)

// marker is the setter marker on a scalar.
type marker struct {
	setter string // as written: NS:NAME[:part]
	policy string // NS:NAME; "" when the setter is none Flux defines
	part   string
}

// readMarker reads the setter marker on a scalar as Flux does (kyaml's
// fieldmeta with the "$imagepolicy" short hand): the line comment, or the
// head comment when there is no line comment, its leading '#'s removed,
// must be a JSON object of strings whose "$imagepolicy" is not empty. Flux
// defines the setters NS:NAME, NS:NAME:tag, NS:NAME:name and
// NS:NAME:digest for each policy; any other is a marker that marks nothing.
func readMarker(n *yaml.Node) (marker, bool) {
	c := n.LineComment
	if c == "" {
		c = n.HeadComment
	}
	if !strings.Contains(c, "{") {
		return marker{}, false
	}
	var obj map[string]string
	if err := json.Unmarshal([]byte(strings.TrimLeft(c, "#")), &obj); err != nil || obj[setterKey] == "" {
		return marker{}, false
	}
	m := marker{setter: obj[setterKey]}
	parts := strings.Split(m.setter, ":")
	named := len(parts) >= 2 && parts[0] != "" && parts[1] != ""
	switch {
	case named && len(parts) == 2:
		m.policy = m.setter
	case named && len(parts) == 3 && (parts[2] == partTag || parts[2] == partName || parts[2] == partDigest):
		m.policy, m.part = parts[0]+":"+parts[1], parts[2]
	}
	return m, true
}

// hasMarker reports whether a value under n (mapping values and sequence
// items, the places Flux visits; aliases are not followed) carries a setter
// marker.
func hasMarker(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		_, ok := readMarker(n)
		return ok
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if hasMarker(n.Content[i]) {
				return true
			}
		}
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if hasMarker(c) {
				return true
			}
		}
	}
	return false
}

// fileFields is the part of fields that applies to a file: its FormSetter
// fields when one of the file's documents carries a setter marker (Flux
// changes nothing but marked fields in a file it automates, and neither
// does ferry), all the others when none does, or when fields has no
// FormSetter field (as for reading a build's output, which is no file Flux
// automates).
func fileFields(data []byte, docs []*yaml.Node, fields []field) []field {
	marked := slices.ContainsFunc(fields, func(f field) bool { return f.Form == FormSetter }) &&
		bytes.Contains(data, []byte(setterKey)) && slices.ContainsFunc(docs, hasMarker)
	out := make([]field, 0, len(fields))
	for _, f := range fields {
		if (f.Form == FormSetter) == marked {
			out = append(out, f)
		}
	}
	return out
}

// markedField is a scalar value that carries a setter marker.
type markedField struct {
	node *yaml.Node
	key  string // its key in a mapping; "" in a sequence
	marker
}

// markerGroup is the fields of one collection marked with parts of one
// policy's image.
type markerGroup struct {
	policy            string
	first             *yaml.Node // the first field, in document order
	name, tag, digest *markedField
}

// markerSets splits the marked values of a mapping or sequence into whole
// references and groups of parts by policy, in document order. Markers
// that name no setter are left out. Two fields marked with the same part of
// one policy's image in one collection are an error.
func markerSets(c *yaml.Node) (images []markedField, groups []*markerGroup, err error) {
	var fields []markedField
	add := func(key string, v *yaml.Node) {
		if v.Kind != yaml.ScalarNode {
			return
		}
		if m, ok := readMarker(v); ok && m.policy != "" {
			fields = append(fields, markedField{node: v, key: key, marker: m})
		}
	}
	switch c.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(c.Content); i += 2 {
			add(c.Content[i].Value, c.Content[i+1])
		}
	case yaml.SequenceNode:
		for _, v := range c.Content {
			add("", v)
		}
	}
	for i := range fields {
		f := &fields[i]
		if f.part == partImage {
			images = append(images, *f)
			continue
		}
		j := slices.IndexFunc(groups, func(g *markerGroup) bool { return g.policy == f.policy })
		if j < 0 {
			groups = append(groups, &markerGroup{policy: f.policy, first: f.node})
			j = len(groups) - 1
		}
		g := groups[j]
		slot := map[string]**markedField{partName: &g.name, partTag: &g.tag, partDigest: &g.digest}[f.part]
		if *slot != nil {
			return nil, nil, fmt.Errorf("lines %d and %d are both marked %s; refusing to guess which one counts", (*slot).node.Line, f.node.Line, f.setter)
		}
		*slot = f
	}
	return images, groups, nil
}

// groupRepo returns the repository of a group's image as written: the
// value of its :name field; else, in a kustomize images entry (a mapping
// with name and one of newName, newTag or digest, as in kustomization
// files and Flux Kustomizations), its newName or name; else, in a Helm
// values image map, its repository, after its registry when it has one;
// else the repository that the file's whole-reference and :name markers of
// the policy name (bound, see policyRepos); else "". derived reports that
// the repository comes from an unmarked field.
func groupRepo(c *yaml.Node, g *markerGroup, bound map[string]string) (repo string, derived bool) {
	if g.name != nil {
		return strings.TrimSpace(g.name.node.Value), false
	}
	if c.Kind == yaml.MappingNode {
		// A field marked for another policy names that policy's image.
		unmarked := func(keys ...string) bool {
			for _, k := range keys {
				for _, v := range lookup(c, k) {
					if _, ok := readMarker(v); ok {
						return false
					}
				}
			}
			return true
		}
		if scalarValue(c, "name") != "" && (len(lookup(c, "newName")) > 0 || len(lookup(c, "newTag")) > 0 || len(lookup(c, "digest")) > 0) {
			if unmarked("name", "newName") {
				return effectiveName(c), true
			}
		} else if r := scalarValue(c, "repository"); r != "" && unmarked("repository", "registry") {
			if reg := scalarValue(c, "registry"); reg != "" {
				r = reg + "/" + r
			}
			return r, true
		}
	}
	return bound[g.policy], false
}

// policyRepos returns, for each policy, the repository that the fields
// marked with it as a whole reference or as :name name in docs, when they
// all name the same one: a policy is one image, so a part marked elsewhere
// in the file with nothing beside it to name its repository belongs to it.
func policyRepos(docs []*yaml.Node) map[string]string {
	repos := map[string]string{}
	var conflicts []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		case yaml.ScalarNode:
			m, ok := readMarker(n)
			if !ok || m.policy == "" || m.part != partImage && m.part != partName {
				return
			}
			repo := strings.TrimSpace(n.Value)
			if m.part == partImage {
				repo = ref.Split(repo).Repo
			}
			canonical, ok := ref.Canonical(repo)
			if !ok {
				return
			}
			if prev, seen := repos[m.policy]; !seen {
				repos[m.policy] = repo
			} else if c, _ := ref.Canonical(prev); c != canonical {
				conflicts = append(conflicts, m.policy)
			}
		}
	}
	for _, d := range docs {
		walk(d)
	}
	for _, p := range conflicts {
		delete(repos, p)
	}
	return repos
}

// markerTarget returns the target of a field marked with policy: the one
// given with that policy, else byRepo (the target the field's repository
// names) when it was given without a policy.
func (s *scanner) markerTarget(policy string, byRepo *target) *target {
	if t := policyTarget(s.targets, policy); t != nil {
		return t
	}
	if byRepo != nil && byRepo.Policy == "" {
		return byRepo
	}
	return nil
}

// setters pins the marked values of a mapping or sequence that refer to a
// target.
func (s *scanner) setters(c *yaml.Node) error {
	if c.Kind != yaml.MappingNode && c.Kind != yaml.SequenceNode {
		return nil
	}
	images, groups, err := markerSets(c)
	if err != nil {
		return s.errorf(c.Line, "%v", err)
	}
	for _, f := range images {
		t := s.markerTarget(f.policy, matchImage(s.targets, f.node.Value))
		if t == nil {
			continue
		}
		fd := finding{change: Change{File: s.path, Line: f.node.Line, Kind: KindSetter, Repo: t.Repo, Old: f.node.Value, New: t.Ref()}}
		if err := s.setMarked(&fd, f, t.Ref(), t); err != nil {
			return err
		}
		s.found = append(s.found, fd)
	}
	for _, g := range groups {
		if err := s.setterGroup(c, g); err != nil {
			return err
		}
	}
	return nil
}

// setterGroup pins the parts of one image marked in a collection.
func (s *scanner) setterGroup(c *yaml.Node, g *markerGroup) error {
	repo, derived := groupRepo(c, g, s.bound)
	t := s.markerTarget(g.policy, matchRepo(s.targets, repo))
	if t == nil {
		return nil
	}
	if repo == "" {
		repo = t.Repo
	}
	canonical, ok := ref.Canonical(repo)
	if derived && ok && canonical != t.canonical {
		return s.errorf(g.first.Line, "field marked %s:%s is to be pinned to %s, but the image it belongs to is %s; mark the field naming it %s:name, or give the policy with its own image",
			g.policy, partOf(g), t.Repo, repo, g.policy)
	}
	// A repository named by a marked field (this group's :name, or the
	// file's other markers of the policy) becomes the target's when it is
	// another: those fields are rewritten to it.
	newRepo := repo
	if !derived && (!ok || canonical != t.canonical) {
		newRepo = t.Repo
	}
	fd := finding{change: Change{File: s.path, Line: g.first.Line, Kind: KindSetter, Repo: t.Repo}}
	if f := g.name; f != nil {
		if err := s.setMarked(&fd, *f, newRepo, t); err != nil {
			return err
		}
	}
	var oldTag, oldDigest, newTag, newDigest string
	if f := g.tag; f != nil {
		oldTag, oldDigest, _ = strings.Cut(f.node.Value, "@")
		newTag, newDigest = t.Tag, t.Digest
		if newTag == "" {
			newTag = oldTag
			if _, err := ref.Parse("x:" + newTag); newTag != "" && err != nil {
				return s.errorf(f.node.Line, "field marked %s holds %q, which is not a tag, and %s comes without one; give the image with a tag", f.setter, f.node.Value, t.Repo)
			}
		}
		value := newTag
		if g.digest == nil {
			if newTag == "" {
				return s.errorf(f.node.Line, "field marked %s is empty and %s comes without a tag; give the image with a tag, or mark a field beside it %s:digest", f.setter, t.Repo, g.policy)
			}
			if c.Kind == yaml.MappingNode {
				for _, v := range lookup(c, "digest") {
					if v.Kind == yaml.ScalarNode && v.Value != "" {
						return s.errorf(v.Line, "digest %q beside the field marked %s is not marked and would outweigh the pinned tag; mark it %s:digest or empty it", v.Value, f.setter, g.policy)
					}
				}
			}
			value += "@" + t.Digest
		}
		if err := s.setMarked(&fd, *f, value, t); err != nil {
			return err
		}
	}
	if f := g.digest; f != nil {
		oldDigest, newDigest = f.node.Value, t.Digest
		if err := s.setMarked(&fd, *f, t.Digest, t); err != nil {
			return err
		}
	}
	fd.change.Old = ref.Ref{Repo: repo, Tag: oldTag, Digest: oldDigest}.String()
	fd.change.New = ref.Ref{Repo: newRepo, Tag: newTag, Digest: newDigest}.String()
	s.found = append(s.found, fd)
	return nil
}

// partOf names the first marked part of a group, for messages.
func partOf(g *markerGroup) string {
	for _, f := range []*markedField{g.name, g.tag, g.digest} {
		if f != nil && f.node == g.first {
			return f.part
		}
	}
	return ""
}

// setMarked makes fd write value into a marked field, unless it holds it
// already. The first field set places the finding in the file.
func (s *scanner) setMarked(fd *finding, f markedField, value string, t *target) error {
	sp, err := s.src.scalarSpan(f.node)
	if err != nil {
		return s.errorf(f.node.Line, "field marked %s for %s: %v", f.setter, t.Repo, err)
	}
	if fd.offset == 0 || sp.start < fd.offset {
		fd.offset = sp.start
	}
	if f.node.Value != value {
		fd.edits = append(fd.edits, edit{sp.start, sp.end, render(value, f.node.Style)})
	}
	return nil
}

// lineRef is a reference read from a marked field, with its line.
type lineRef struct {
	line int
	Ref
}

// setterRefs reads the references that the marked values of a mapping or
// sequence hold: a whole reference as written, parts of one image when
// their repository can be told (see groupRepo).
func setterRefs(p string, c *yaml.Node, bound map[string]string) []lineRef {
	if c.Kind != yaml.MappingNode && c.Kind != yaml.SequenceNode {
		return nil
	}
	images, groups, err := markerSets(c)
	if err != nil {
		return nil
	}
	var out []lineRef
	for _, f := range images {
		if r, ok := parseImage(f.node.Value); ok {
			r.File, r.Kind = p, KindSetter
			out = append(out, lineRef{f.node.Line, r})
		}
	}
	for _, g := range groups {
		repo, _ := groupRepo(c, g, bound)
		canonical, ok := ref.Canonical(repo)
		if !ok {
			continue
		}
		r := Ref{File: p, Kind: KindSetter, Repo: canonical}
		if g.tag != nil {
			r.Tag, r.Digest, _ = strings.Cut(g.tag.node.Value, "@")
		}
		if g.digest != nil {
			r.Digest = g.digest.node.Value
		}
		r.Value = ref.Ref{Repo: repo, Tag: r.Tag, Digest: r.Digest}.String()
		out = append(out, lineRef{g.first.Line, r})
	}
	return out
}

// markerHints says, for a run in which the repositories missing were
// referenced nowhere pinnable under dir, where setter markers kept them
// from being pinned: image fields left alone in files that carry markers,
// fields marked for another policy than the one they were given with, and
// marked parts of an image whose repository ferry cannot tell.
//
// held are the repositories of missing that such fields refer to.
func markerHints(fsys fs.FS, dir string, ts []target, missing []string, fieldsFor func(string) []field) (hints, held []string) {
	var lost []target
	for _, t := range ts {
		if slices.Contains(missing, t.Repo) {
			lost = append(lost, t)
		}
	}
	_ = fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !IsManifest(path.Base(p)) {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > MaxFileSize {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil || !bytes.Contains(data, []byte(setterKey)) {
			return nil
		}
		docs, err := decodeAll(data)
		if err != nil || !slices.ContainsFunc(docs, hasMarker) {
			return nil
		}
		fields := fieldsFor(p)
		if fields == nil {
			fields = defaultFields
		}
		bound := policyRepos(docs)
		for _, doc := range docs {
			if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode || hasAlias(doc) {
				continue
			}
			_ = sites(p, doc.Content[0], false, fields, func(st site) error {
				for _, h := range siteHints(p, st, ts, lost, bound) {
					hints = append(hints, h.text)
					if h.repo != "" && !slices.Contains(held, h.repo) {
						held = append(held, h.repo)
					}
				}
				return nil
			})
		}
		return nil
	})
	return hints, held
}

// hint is one reason markers give for an image not being pinned; repo is
// the image's, when the reason names one.
type hint struct{ text, repo string }

// siteHints is markerHints for one site of a file that carries markers.
func siteHints(p string, st site, ts, lost []target, bound map[string]string) []hint {
	n := st.node
	unmarked := func(line int, t *target) []hint {
		return []hint{{fmt.Sprintf("%s:%d refers to %s but is not marked, and in a file with Flux setter markers only marked fields are pinned", p, line, t.Repo), t.Repo}}
	}
	switch st.field.Form {
	case FormImage:
		if n.Kind != yaml.ScalarNode {
			return nil
		}
		if t := matchImage(lost, n.Value); t != nil {
			return unmarked(n.Line, t)
		}
	case FormKustomizeImage:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		if t := matchRepo(lost, effectiveName(n)); t != nil {
			return unmarked(n.Line, t)
		}
	case FormSetter:
		images, groups, err := markerSets(n)
		if err != nil {
			return nil
		}
		var out []hint
		other := func(line int, setter string, t *target) {
			if t != nil && t.Policy != "" {
				out = append(out, hint{fmt.Sprintf("%s:%d is marked %s, but %s was given with policy %s", p, line, setter, t.Repo, t.Policy), t.Repo})
			}
		}
		for _, f := range images {
			if policyTarget(ts, f.policy) == nil {
				other(f.node.Line, f.setter, matchImage(lost, f.node.Value))
			}
		}
		for _, g := range groups {
			if policyTarget(ts, g.policy) != nil {
				continue
			}
			repo, _ := groupRepo(n, g, bound)
			if repo == "" {
				out = append(out, hint{text: fmt.Sprintf("%s:%d is marked %s:%s, and ferry cannot tell its image: no field beside it is marked %s:name; give the policy with the image", p, g.first.Line, g.policy, partOf(g), g.policy)})
				continue
			}
			other(g.first.Line, g.policy+":"+partOf(g), matchRepo(lost, repo))
		}
		return out
	}
	return nil
}
