package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Kinds of [Change].
const (
	KindContainer     = "container"     // an image scalar: a container's (init, ephemeral), an image volume's, one a configurations file declares
	KindKustomization = "kustomization" // entry of a kustomization's images list
	KindSetter        = "setter"        // field(s) marked with a Flux setter marker
)

// Change is one rewritten (or already-correct) reference.
type Change struct {
	File string // slash path as given
	Line int    // 1-based line of the scalar; for kustomization entries, the entry's first line
	Kind string // KindContainer, KindKustomization or KindSetter
	Repo string // Target.Repo it matched
	// Old and New are the image the reference resolved to before and after.
	// For kustomization entries they are the effective newName:newTag@digest,
	// which kustomize (v5.5) renders as such even with both tag and digest set.
	Old string
	New string
}

// MaxFileSize is the largest file, in bytes, that is rewritten. Manifests are
// far smaller; the limit keeps a stray generated file or a hostile input from
// costing unbounded memory.
const MaxFileSize = 4 << 20

// maxExpandedNodes bounds the size of a document once its aliases are
// expanded. The rewriter itself never expands aliases, but kustomize and
// kubectl do, so a "billion laughs" document is refused here instead of
// hanging whatever reads the result.
const maxExpandedNodes = 1 << 20

// RewriteFile rewrites, in one file's bytes, every reference to any target. It
// returns the new bytes, one Change per reference found (including references
// already pinned correctly, with Old == New), and an error when the YAML does
// not parse or a reference cannot be rewritten safely. Only the scalars that
// change differ between data and the result; see the package documentation.
// When nothing changes the result is data itself.
//
// RewriteFile has no tree to find Helm charts in: it reads path as a Helm
// values file when a WithValuesFiles pattern names it, and as manifests
// otherwise.
func RewriteFile(path string, data []byte, targets []Target, opts ...PinOption) ([]byte, []Change, error) {
	ts, err := compileTargets(targets)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := newPinConfig(opts)
	if err != nil {
		return nil, nil, err
	}
	return rewrite(path, data, ts, cfg.fieldsFor(path, nil))
}

// rewrite pins ts in one file, looking where fields point (nil: the
// defaults).
func rewrite(path string, data []byte, ts []target, fields []field) ([]byte, []Change, error) {
	found, err := scan(path, data, ts, fields)
	if err != nil {
		return nil, nil, err
	}
	changes := make([]Change, len(found))
	var edits []edit
	for i, f := range found {
		changes[i] = f.change
		edits = append(edits, f.edits...)
	}
	if len(edits) == 0 {
		return data, changes, nil
	}
	out, err := apply(data, edits)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	// The splice is checked, not trusted: the result must parse and every
	// reference in it must now read as intended.
	again, err := scan(path, out, ts, fields)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: rewritten file does not check out, refusing it: %w", path, err)
	}
	if len(again) != len(found) {
		return nil, nil, fmt.Errorf("%s: rewritten file has %d references instead of %d, refusing it", path, len(again), len(found))
	}
	for i, g := range again {
		if g.change.Old != g.change.New || g.change.New != found[i].change.New {
			return nil, nil, fmt.Errorf("%s:%d: rewritten reference reads %q, want %q, refusing it", path, g.change.Line, g.change.Old, found[i].change.New)
		}
	}
	// And nothing but image values changed: the same documents, keys,
	// kinds and scalar types (a tag must not turn into a number).
	before, err := decodeAll(data)
	if err != nil {
		return nil, nil, err
	}
	after, err := decodeAll(out)
	if err != nil {
		return nil, nil, err
	}
	if len(before) != len(after) {
		return nil, nil, fmt.Errorf("%s: rewritten file has %d documents instead of %d, refusing it", path, len(after), len(before))
	}
	for i := range before {
		if err := sameShape(before[i], after[i], ""); err != nil {
			return nil, nil, fmt.Errorf("%s: rewritten file changed more than image values, refusing it: %w", path, err)
		}
	}
	return out, changes, nil
}

// addable are the keys a pin may add to a mapping: an images entry's
// newTag and digest, a values map's tag and digest.
var addable = map[string]bool{"newTag": true, "digest": true, "tag": true}

// sameShape checks that b has a's keys, kinds and scalar types, allowing b
// extra addable keys; scalar values may differ, and a scalar may become a
// string (a tag YAML read as a number, written back quoted or as
// tag@digest), never the reverse. A values string (a literal block holding
// YAML) is compared the same way inside.
func sameShape(a, b *yaml.Node, at string) error {
	switch {
	case a.Kind != b.Kind:
		return fmt.Errorf("%s: a %s became a %s", or(at, "document"), kindName(a), kindName(b))
	case a.Kind == yaml.ScalarNode:
		if a.ShortTag() != b.ShortTag() && b.ShortTag() != "!!str" {
			return fmt.Errorf("%s: %s %q became %s %q", or(at, "document"), a.ShortTag(), a.Value, b.ShortTag(), b.Value)
		}
		return sameEmbeddedShape(a, b, at)
	case a.Kind == yaml.AliasNode:
		return nil
	case a.Kind == yaml.MappingNode:
		j := 0
		for i := 0; i+1 < len(a.Content); i += 2 {
			for j+1 < len(b.Content) && b.Content[j].Value != a.Content[i].Value && addable[b.Content[j].Value] {
				j += 2
			}
			if j+1 >= len(b.Content) || b.Content[j].Value != a.Content[i].Value {
				return fmt.Errorf("%s: key %q is gone", or(at, "document"), a.Content[i].Value)
			}
			if err := sameShape(a.Content[i+1], b.Content[j+1], at+"/"+a.Content[i].Value); err != nil {
				return err
			}
			j += 2
		}
		for ; j+1 < len(b.Content); j += 2 {
			if !addable[b.Content[j].Value] {
				return fmt.Errorf("%s: key %q appeared", or(at, "document"), b.Content[j].Value)
			}
		}
		return nil
	}
	if len(a.Content) != len(b.Content) {
		return fmt.Errorf("%s: %d items became %d", or(at, "document"), len(a.Content), len(b.Content))
	}
	for i := range a.Content {
		if err := sameShape(a.Content[i], b.Content[i], fmt.Sprintf("%s[%d]", at, i)); err != nil {
			return err
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// finding is one reference, with the edits that pin it (none when it already is).
type finding struct {
	change Change
	offset int // byte offset, to order findings within a line
	edits  []edit
}

type scanner struct {
	path    string
	src     *source
	targets []target
	found   []finding
	table   []field           // nil: defaultFields
	bound   map[string]string // policy -> repository, in a file with setter markers
}

func (s *scanner) fields() []field {
	if s.table == nil {
		return defaultFields
	}
	return s.table
}

// site turns one place an image lives into a finding, when it refers to a
// target.
func (s *scanner) site(st site) error {
	switch st.field.Form {
	case FormKustomizeImage:
		e := st.node
		if e.Kind == yaml.AliasNode {
			if d := deref(e); d != nil && d.Kind == yaml.MappingNode && s.entryTarget(d) != nil {
				return s.errorf(e.Line, "images entry *%s is a YAML alias; write it in place to have it pinned", e.Value)
			}
			return nil
		}
		if e.Kind != yaml.MappingNode {
			return nil
		}
		return s.kustomizeEntry(e)
	case FormSetter:
		return s.setters(st.node)
	case FormHelmValuesString:
		return s.valuesError(st) // reached only when its text is no values tree
	case FormHelmImage, FormHelmImageMap:
		return s.helmImage(st)
	case formHelmParameter:
		return s.helmParameter(st)
	case FormArgoKustomizeImage:
		return s.argoKustomizeImage(st)
	default:
		t := s.matchNode(st.node)
		if t == nil {
			return nil
		}
		if st.keys > 1 {
			return s.errorf(st.node.Line, "container has %d image keys; refusing to guess which one counts", st.keys)
		}
		return s.image(st.node, t)
	}
}

// scan finds every reference to a target in data, in file order, where
// fields point (nil: the defaults).
func scan(path string, data []byte, ts []target, fields []field) ([]finding, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes is over the %d-byte limit for manifests", path, len(data), MaxFileSize)
	}
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		// yaml.v3 transcodes UTF-16 to UTF-8, so its positions would not be
		// positions in data.
		return nil, fmt.Errorf("%s: UTF-16 is not supported, only UTF-8", path)
	}
	docs, err := decodeAll(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	s := &scanner{path: path, src: newSource(data), targets: ts, table: fields}
	table := fileFields(data, docs, s.fields())
	if slices.ContainsFunc(table, func(f field) bool { return f.Form == FormSetter }) {
		s.bound = policyRepos(docs)
	}
	for _, doc := range docs {
		aliases := hasAlias(doc)
		if aliases {
			if err := checkAliases(doc); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, doc.Line, err)
			}
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		if err := sites(path, doc.Content[0], aliases, table, s.site); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(s.found, func(a, b finding) int {
		if a.change.Line != b.change.Line {
			return a.change.Line - b.change.Line
		}
		return a.offset - b.offset
	})
	return s.found, nil
}

// decodeAll parses every document of data into nodes.
func decodeAll(data []byte) (docs []*yaml.Node, err error) {
	defer func() {
		// yaml.v3 turns its own errors into returned errors but lets internal
		// panics through; a manifest must never crash the caller.
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, err
		}
		docs = append(docs, &doc)
	}
}

// checkAliases refuses documents whose aliases expand to more than
// maxExpandedNodes nodes, or refer to a node that contains them.
func checkAliases(doc *yaml.Node) error {
	const inProgress = -1
	size := map[*yaml.Node]int{}
	var expand func(n *yaml.Node) (int, error)
	expand = func(n *yaml.Node) (int, error) {
		switch s, ok := size[n]; {
		case ok && s == inProgress:
			return 0, fmt.Errorf("alias *%s refers to a node that contains it", n.Anchor)
		case ok:
			return s, nil
		}
		size[n] = inProgress
		total := 1
		kids := n.Content
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			kids = []*yaml.Node{n.Alias}
		}
		for _, k := range kids {
			s, err := expand(k)
			if err != nil {
				return 0, err
			}
			total += s
			if total > maxExpandedNodes {
				return 0, fmt.Errorf("aliases expand to more than %d nodes; refusing the document", maxExpandedNodes)
			}
		}
		size[n] = total
		return total, nil
	}
	_, err := expand(doc)
	return err
}

func hasAlias(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c) {
			return true
		}
	}
	return false
}

// scalarValue returns the value of key in mapping m when it is a scalar.
func scalarValue(m *yaml.Node, key string) string {
	vs := lookup(m, key)
	if len(vs) != 1 || vs[0].Kind != yaml.ScalarNode {
		return ""
	}
	return vs[0].Value
}

// lookup returns every value of key in mapping m. yaml.v3 keeps duplicate
// keys in the node tree; callers must not pick one silently.
func lookup(m *yaml.Node, key string) []*yaml.Node {
	var vs []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			vs = append(vs, m.Content[i+1])
		}
	}
	return vs
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (s *scanner) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", s.path, line, fmt.Sprintf(format, args...))
}

// matchNode returns the target an image value refers to, looking through aliases.
func (s *scanner) matchNode(v *yaml.Node) *target {
	if d := deref(v); d != nil && d.Kind == yaml.ScalarNode {
		return matchImage(s.targets, d.Value)
	}
	return nil
}

func (s *scanner) image(v *yaml.Node, t *target) error {
	if v.Kind == yaml.AliasNode {
		return s.errorf(v.Line, "image *%s is a YAML alias; write the image in place to have it pinned", v.Value)
	}
	sp, err := s.src.scalarSpan(v)
	if err != nil {
		return s.errorf(v.Line, "image %q: %v", v.Value, err)
	}
	f := finding{
		change: Change{File: s.path, Line: v.Line, Kind: KindContainer, Repo: t.Repo, Old: v.Value, New: t.Ref()},
		offset: sp.start,
	}
	if v.Value != t.Ref() {
		f.edits = []edit{{sp.start, sp.end, render(t.Ref(), v.Style)}}
	}
	s.found = append(s.found, f)
	return nil
}

// entryFields are the keys of a kustomization images entry that matter here.
var entryFields = []string{"name", "newName", "newTag", "digest"}

// effectiveName is what kustomize writes as the repository: newName when set,
// else name.
func effectiveName(e *yaml.Node) string {
	if v := deref(single(e, "newName")); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
		return v.Value
	}
	if v := deref(single(e, "name")); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func firstNonNil(ns ...*yaml.Node) *yaml.Node {
	for _, n := range ns {
		if n != nil {
			return n
		}
	}
	return nil
}

func single(m *yaml.Node, key string) *yaml.Node {
	if vs := lookup(m, key); len(vs) > 0 {
		return vs[0]
	}
	return nil
}

func (s *scanner) entryTarget(e *yaml.Node) *target {
	return matchRepo(s.targets, effectiveName(e))
}

// kustomizeEntry pins one images entry by setting newTag and digest. name and
// newName stay as they are: they say which images the entry applies to.
//
// kustomize v5.5 renders an entry with both newTag and digest as
// newName:newTag@digest (for example 127.0.0.1:5000/team/hello:v2@sha256:...),
// and one with digest alone as newName@digest, dropping the tag the resource
// had. Setting both keeps the tag readable in the rendered manifests.
func (s *scanner) kustomizeEntry(e *yaml.Node) error {
	t := s.entryTarget(e)
	if t == nil {
		return nil
	}
	fields := map[string]*yaml.Node{}
	for _, k := range entryFields {
		vs := lookup(e, k)
		if len(vs) > 1 {
			return s.errorf(e.Line, "images entry for %s has %d %s keys; refusing to guess which one counts", t.Repo, len(vs), k)
		}
		if len(vs) == 1 {
			if vs[0].Kind != yaml.ScalarNode {
				return s.errorf(vs[0].Line, "images entry for %s: %s is not a scalar but an alias or a collection; write the value in place to have it pinned", t.Repo, k)
			}
			fields[k] = vs[0]
		}
	}
	eff := effectiveName(e)
	oldTag, oldDigest := "", ""
	if n := fields["newTag"]; n != nil {
		oldTag = n.Value
	}
	if n := fields["digest"]; n != nil {
		oldDigest = n.Value
	}
	newTag := oldTag
	if t.Tag != "" {
		newTag = t.Tag
	}
	f := finding{
		change: Change{
			File: s.path, Line: e.Line, Kind: KindKustomization, Repo: t.Repo,
			Old: ref.Ref{Repo: eff, Tag: oldTag, Digest: oldDigest}.String(),
			New: ref.Ref{Repo: eff, Tag: newTag, Digest: t.Digest}.String(),
		},
	}
	if sp, err := s.src.position(e.Line, e.Column); err == nil {
		f.offset = sp
	}
	// The inserted values take the quoting of the entry's own values.
	var style yaml.Style
	if n := firstNonNil(fields["name"], fields["newName"]); n != nil {
		style = n.Style
	}
	var missing []keyValue
	set := func(key, value string) error {
		n := fields[key]
		if n == nil {
			missing = append(missing, keyValue{key, value})
			return nil
		}
		if n.Value == value {
			return nil
		}
		if n.Value == "" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			// An empty value has no text to replace, and yaml.v3 places it
			// wherever the next token starts.
			return s.errorf(n.Line, "images entry for %s: %s is empty; remove the key or give it a value to have it pinned", t.Repo, key)
		}
		sp, err := s.src.scalarSpan(n)
		if err != nil {
			return s.errorf(n.Line, "images entry for %s: %s %q: %v", t.Repo, key, n.Value, err)
		}
		f.edits = append(f.edits, edit{sp.start, sp.end, render(value, n.Style)})
		return nil
	}
	if t.Tag != "" {
		if err := set("newTag", t.Tag); err != nil {
			return err
		}
	}
	if err := set("digest", t.Digest); err != nil {
		return err
	}
	if len(missing) > 0 {
		ins, err := s.insertion(e, t, missing, style)
		if err != nil {
			return err
		}
		f.edits = append(f.edits, ins)
	}
	s.found = append(s.found, f)
	return nil
}

type keyValue struct{ key, value string }

// insertion adds keys to a block-style entry as new lines after its last line,
// indented like its other keys.
func (s *scanner) insertion(e *yaml.Node, t *target, kvs []keyValue, style yaml.Style) (edit, error) {
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.key
	}
	what := strings.Join(keys, " and ")
	if e.Style&yaml.FlowStyle != 0 {
		return edit{}, s.errorf(e.Line, "images entry for %s is in flow style ({...}) and lacks %s; write it in block style, or add the keys, to have it pinned", t.Repo, what)
	}
	last := e.Content[len(e.Content)-1]
	if last.Kind != yaml.ScalarNode {
		return edit{}, s.errorf(e.Line, "images entry for %s lacks %s and does not end in a plain value; add the keys to have it pinned", t.Repo, what)
	}
	sp, err := s.src.scalarSpan(last)
	if err != nil {
		return edit{}, s.errorf(last.Line, "images entry for %s lacks %s, and its last value cannot be located: %v", t.Repo, what, err)
	}
	at, eol := s.src.lineEnd(sp.end)
	indent := strings.Repeat(" ", e.Content[0].Column-1)
	var b strings.Builder
	for _, kv := range kvs {
		b.WriteString(eol)
		b.WriteString(indent)
		b.WriteString(kv.key)
		b.WriteString(": ")
		b.WriteString(render(kv.value, style))
	}
	// Inserting before the last line's break keeps a missing final newline missing.
	return edit{at, at, b.String()}, nil
}
