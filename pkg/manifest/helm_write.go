package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// locator finds the bytes, in the file, of the nodes of a values tree:
// the file's own nodes, or those of a values string parsed on its own.
type locator struct {
	src *source   // the file
	emb *embedded // nil when the nodes are the file's own
}

func (s *scanner) locator(tree *valuesTree) locator {
	l := locator{src: s.src}
	if tree != nil {
		l.emb = tree.embed
	}
	return l
}

// line is the line of n in the file.
func (l locator) line(n *yaml.Node) int {
	if l.emb == nil {
		return n.Line
	}
	return l.emb.block.Line + n.Line
}

// span is scalarSpan in the file. Inside a literal block scalar, line L
// of its text is line block.Line+L of the file, behind the block's
// indentation; each line used is checked to be exactly that, and the
// bytes found to be the scalar's.
func (l locator) span(n *yaml.Node) (span, error) {
	if l.emb == nil {
		return l.src.scalarSpan(n)
	}
	if l.emb.why != nil {
		return span{}, l.emb.why
	}
	sp, err := l.emb.src.scalarSpan(n)
	if err != nil {
		return span{}, err
	}
	off, _, err := l.outer(n.Line, sp.start-l.emb.src.lines[n.Line-1])
	if err != nil {
		return span{}, err
	}
	end := off + sp.end - sp.start
	if end > len(l.src.data) || !bytes.Equal(l.src.data[off:end], l.emb.src.data[sp.start:sp.end]) {
		return span{}, errors.New("value cannot be located in the file")
	}
	return span{off, end}, nil
}

// outer maps a byte of a line of the embedded text to the file, and
// returns the indentation the block gives that line.
func (l locator) outer(line, byteInLine int) (off, indent int, err error) {
	e := l.emb
	at := e.block.Line + line
	if line < 1 || line > len(e.src.lines) || at > len(l.src.lines) {
		return 0, 0, fmt.Errorf("line %d of the values string is outside the file", line)
	}
	start := l.src.lines[at-1]
	end, _ := l.src.lineEnd(start)
	innerStart := e.src.lines[line-1]
	innerEnd, _ := e.src.lineEnd(innerStart)
	o, in := l.src.data[start:end], e.src.data[innerStart:innerEnd]
	if !bytes.HasSuffix(o, in) || strings.Trim(string(o[:len(o)-len(in)]), " ") != "" {
		return 0, 0, fmt.Errorf("line %d of the values string is not line %d of the file behind its indentation; write the string as a plain literal block (|) to have images in it pinned", line, at)
	}
	indent = len(o) - len(in)
	return start + indent + byteInLine, indent, nil
}

// indent is the indentation, in the file, of a key at key's column.
func (l locator) indent(key *yaml.Node) (string, error) {
	col := key.Column - 1
	if l.emb != nil {
		_, ind, err := l.outer(key.Line, 0)
		if err != nil {
			return "", err
		}
		col += ind
	}
	return strings.Repeat(" ", col), nil
}

// offset is where n starts in the file, to order findings; 0 when unknown.
func (l locator) offset(n *yaml.Node) int {
	first := n
	if n.Kind == yaml.MappingNode && len(n.Content) > 0 {
		first = n.Content[0]
	}
	if first.Kind == yaml.ScalarNode {
		if sp, err := l.span(first); err == nil {
			return sp.start
		}
	}
	if l.emb == nil {
		if off, err := l.src.position(n.Line, n.Column); err == nil {
			return off
		}
	}
	return 0
}

// name says where n is in a values tree, for messages: the tree's field
// and n's key path in it, as in spec.values.redis or image.
func (tree *valuesTree) name(n *yaml.Node) string {
	at := strings.ReplaceAll(tree.at, "/", ".")
	p := keyPath(tree.root, n)
	switch {
	case at == "" && p == "":
		return "values"
	case at == "":
		return p
	case p == "":
		return at
	}
	return at + "." + p
}

// keyPath is the path of target in root, in Argo CD Image Updater's
// syntax, without following aliases; "" when it is not found.
func keyPath(root, target *yaml.Node) string {
	var walk func(n *yaml.Node, p string) (string, bool)
	walk = func(n *yaml.Node, p string) (string, bool) {
		if n == target {
			return p, true
		}
		for i, c := range n.Content {
			var q string
			switch {
			case n.Kind == yaml.MappingNode && i%2 == 0:
				continue
			case n.Kind == yaml.MappingNode:
				q = n.Content[i-1].Value
				if p != "" {
					q = p + "." + q
				}
			case n.Kind == yaml.SequenceNode:
				q = fmt.Sprintf("%s[%d]", p, i)
			default:
				continue
			}
			if r, ok := walk(c, q); ok {
				return r, true
			}
		}
		return "", false
	}
	r, _ := walk(root, "")
	return r
}

// valuesError refuses a values string that cannot be read: the writer
// cannot tell whether it names a target.
func (s *scanner) valuesError(st site) error {
	return s.errorf(st.node.Line, "%s: %v", strings.ReplaceAll(st.field.Path, "/", "."), st.values.err)
}

// helmImage pins an image in a values tree.
func (s *scanner) helmImage(st site) error {
	tree := st.values
	img, ok := readHelmImage(st)
	if !ok {
		return nil
	}
	loc := s.locator(tree)
	if img.whole {
		t := matchImage(s.targets, img.node.Value)
		switch {
		case t == nil:
			return nil
		case st.keys > 1:
			return s.errorf(loc.line(st.node), "%s: %d image keys; refusing to guess which one counts", tree.name(st.node), st.keys)
		case st.node.Kind == yaml.AliasNode:
			return s.errorf(loc.line(st.node), "%s: image *%s is a YAML alias; write the image in place to have it pinned", tree.name(st.node), st.node.Value)
		}
		return s.pinWhole(st.node, loc, KindHelmValues, t, "", img.node.Value)
	}
	t, eff, err := s.mapTarget(img, tree, loc)
	if t == nil || err != nil {
		return err
	}
	what := tree.name(st.node)
	switch {
	case st.node.Kind == yaml.AliasNode:
		return s.errorf(loc.line(st.node), "%s: image map *%s is a YAML alias; write it in place to have it pinned", what, st.node.Value)
	case img.bad != "":
		return s.errorf(loc.line(img.node), "%s: image map for %s %s", what, t.Repo, img.bad)
	}
	td := tagDigest{
		what: what, line: loc.line(img.node), offset: loc.offset(img.node), kind: KindHelmValues,
		eff: eff, tag: img.tag, digest: img.digest,
		insert: func(value string) (edit, error) { return s.insertTag(img, loc, value, what) },
	}
	return s.pinTagDigest(td, t, loc)
}

// mapTarget returns the target an image map names, and its repository as
// written. global.imageRegistry makes a map ambiguous unless an image
// field names it.
func (s *scanner) mapTarget(img helmImage, tree *valuesTree, loc locator) (*target, string, error) {
	if img.repository == nil {
		// Only an image field reaches here: the map sets a tag (or digest)
		// for a repository given elsewhere, in the chart's defaults.
		if len(s.targets) == 1 {
			return &s.targets[0], s.targets[0].Repo, nil
		}
		return nil, "", s.errorf(loc.line(img.node), "%s has no repository, and %d images are being pinned; pin one at a time to say which it is", tree.name(img.node), len(s.targets))
	}
	own, alt := img.repos(tree)
	t := matchRepo(s.targets, own)
	if alt == "" {
		return t, own, nil
	}
	ta := matchRepo(s.targets, alt)
	switch {
	case t == nil && ta == nil:
		return nil, "", nil
	case tree.explicit && t != nil:
		return t, own, nil
	case tree.explicit:
		return ta, alt, nil
	}
	return nil, "", s.errorf(loc.line(img.node), "%s names %s, or %s with global.imageRegistry %q, depending on the chart's templates; refusing to guess: name the field as an image field to have it pinned", tree.name(img.node), own, alt, tree.global)
}

// insertTag adds a tag key after a block map's repository line, indented
// like it.
func (s *scanner) insertTag(img helmImage, loc locator, value, what string) (edit, error) {
	if img.node.Style&yaml.FlowStyle != 0 {
		return edit{}, s.errorf(loc.line(img.node), "%s is in flow style ({...}) and has no tag; write it in block style, or add a tag, to have it pinned", what)
	}
	var key *yaml.Node
	for i := 0; i+1 < len(img.node.Content); i += 2 {
		if img.node.Content[i+1] == img.repository {
			key = img.node.Content[i]
		}
	}
	sp, err := loc.span(img.repository)
	if err != nil || key == nil {
		return edit{}, s.errorf(loc.line(img.node), "%s has no tag, and its %s cannot be located to add one after it: %v", what, img.repoKey, err)
	}
	indent, err := loc.indent(key)
	if err != nil {
		return edit{}, s.errorf(loc.line(img.node), "%s has no tag: %v", what, err)
	}
	at, eol := s.src.lineEnd(sp.end)
	// Before the line's break, so a missing final newline stays missing.
	return edit{at, at, eol + indent + "tag: " + render(value, img.repository.Style)}, nil
}

// tagDigest is an image written as a repository beside a tag and maybe a
// digest: a values map, or helm.parameters.
type tagDigest struct {
	what         string // names the image in messages
	line, offset int
	kind         string
	eff          string     // the repository as written
	tag, digest  *yaml.Node // scalar values, nil when absent
	// insert adds a tag when there is none; nil when it cannot.
	insert func(value string) (edit, error)
}

// pinTagDigest pins td to t. With a digest value, the tag and the digest
// are set apart, as Bitnami's charts read them (the digest wins when
// set). Without one, the tag becomes tag@digest, Argo CD Image Updater's
// form, which charts writing repository:tag render as a pinned reference.
func (s *scanner) pinTagDigest(td tagDigest, t *target, loc locator) error {
	oldTag, oldDigest := splitTag(scalarText(td.tag))
	if d := scalarText(td.digest); d != "" {
		oldDigest = d
	}
	newTag := t.Tag
	if newTag == "" {
		newTag = oldTag
	}
	f := finding{
		change: Change{File: s.path, Line: td.line, Kind: td.kind, Repo: t.Repo,
			Old: ref.Ref{Repo: td.eff, Tag: oldTag, Digest: oldDigest}.String()},
		offset: td.offset,
	}
	set := func(n *yaml.Node, key, value string) error {
		if n.Value == value {
			return nil
		}
		if n.Value == "" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			// yaml.v3 places an empty value wherever the next token starts.
			return s.errorf(loc.line(n), "%s: %s is empty; remove the key or give it a value to have it pinned", td.what, key)
		}
		sp, err := loc.span(n)
		if err != nil {
			return s.errorf(loc.line(n), "%s: %s %q: %v", td.what, key, n.Value, err)
		}
		f.edits = append(f.edits, edit{sp.start, sp.end, render(value, n.Style)})
		return nil
	}
	written := newTag
	switch {
	case td.digest != nil:
		if td.tag == nil {
			written = ""
		} else if err := set(td.tag, "tag", newTag); err != nil {
			return err
		}
		if err := set(td.digest, "digest", t.Digest); err != nil {
			return err
		}
	case newTag == "":
		return s.errorf(td.line, "%s: no tag to write %s's digest after (neither the file nor the target has one); add a tag or a digest key to have it pinned", td.what, t.Repo)
	case td.tag != nil:
		if err := set(td.tag, "tag", newTag+"@"+t.Digest); err != nil {
			return err
		}
	case td.insert == nil:
		return s.errorf(td.line, "%s has no tag to pin", td.what)
	default:
		e, err := td.insert(newTag + "@" + t.Digest)
		if err != nil {
			return err
		}
		f.edits = append(f.edits, e)
	}
	f.change.New = ref.Ref{Repo: td.eff, Tag: written, Digest: t.Digest}.String()
	s.found = append(s.found, f)
	return nil
}

// pinWhole pins a scalar holding a whole reference after prefix; old is
// the reference as written.
func (s *scanner) pinWhole(v *yaml.Node, loc locator, kind string, t *target, prefix, old string) error {
	sp, err := loc.span(v)
	if err != nil {
		return s.errorf(loc.line(v), "image %q: %v", v.Value, err)
	}
	f := finding{
		change: Change{File: s.path, Line: loc.line(v), Kind: kind, Repo: t.Repo, Old: strings.TrimSpace(old), New: t.Ref()},
		offset: sp.start,
	}
	if want := prefix + t.Ref(); v.Value != want {
		f.edits = []edit{{sp.start, sp.end, render(want, v.Style)}}
	}
	s.found = append(s.found, f)
	return nil
}

// helmParameter pins an image that Argo CD helm.parameters set.
func (s *scanner) helmParameter(st site) error {
	pi := st.param
	loc := locator{src: s.src}
	dup := func() error {
		return s.errorf(st.node.Line, "helm parameters name %s more than once; refusing to guess which one counts", pi.dup)
	}
	if pi.whole != nil {
		v := single(pi.whole, "value")
		t := s.matchNode(v)
		switch {
		case v == nil || t == nil:
			return nil
		case pi.dup != "":
			return dup()
		case v.Kind != yaml.ScalarNode:
			return s.errorf(v.Line, "helm parameter %s: value is not a scalar but an alias or a collection; write it in place to have it pinned", pi.name)
		}
		return s.pinWhole(v, loc, KindHelmParameter, t, "", v.Value)
	}
	eff := joinRepo(paramValue(pi.registry), paramValue(pi.repo))
	t := matchRepo(s.targets, eff)
	if pi.repo == nil {
		// An image field's tag, its repository in the chart.
		if len(s.targets) != 1 {
			return s.errorf(st.node.Line, "helm parameter %s names no repository, and %d images are being pinned; pin one at a time to say which it is", pi.name, len(s.targets))
		}
		t, eff = &s.targets[0], s.targets[0].Repo
	}
	if t == nil {
		return nil
	}
	if pi.dup != "" {
		return dup()
	}
	value := func(m *yaml.Node) (*yaml.Node, error) {
		if m == nil {
			return nil, nil
		}
		vs := lookup(m, "value")
		if len(vs) != 1 || vs[0].Kind != yaml.ScalarNode {
			return nil, s.errorf(m.Line, "helm parameter %s for %s needs exactly one value, written in place, to be pinned", scalarValue(m, "name"), t.Repo)
		}
		return vs[0], nil
	}
	tag, err := value(pi.tag)
	if err != nil {
		return err
	}
	digest, err := value(pi.digest)
	if err != nil {
		return err
	}
	td := tagDigest{what: "helm parameter " + pi.name, line: st.node.Line, offset: loc.offset(st.node),
		kind: KindHelmParameter, eff: eff, tag: tag, digest: digest}
	return s.pinTagDigest(td, t, loc)
}

// argoKustomizeImage pins an entry of Argo CD's kustomize.images,
// keeping the name= it applies to.
func (s *scanner) argoKustomizeImage(st site) error {
	d := deref(st.node)
	if d == nil || d.Kind != yaml.ScalarNode {
		return nil
	}
	from, image := cutArgoImage(d.Value)
	t := matchImage(s.targets, image)
	if t == nil {
		return nil
	}
	if st.node.Kind == yaml.AliasNode {
		return s.errorf(st.node.Line, "kustomize image *%s is a YAML alias; write it in place to have it pinned", st.node.Value)
	}
	prefix := ""
	if strings.Contains(d.Value, "=") {
		if from != "" && !refChars.MatchString(from) {
			return s.errorf(d.Line, "kustomize image %q: %q is not an image name", d.Value, from)
		}
		prefix = from + "="
	}
	return s.pinWhole(d, locator{src: s.src}, KindArgoKustomize, t, prefix, image)
}
