package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Target is an image to pin: every reference to Repo is rewritten to
// Repo:Tag@Digest (Repo@Digest when Tag is empty).
type Target struct {
	Repo   string // repository, e.g. "127.0.0.1:5000/team/hello" or "us-docker.pkg.dev/acme/apps/hello"
	Tag    string // may be empty
	Digest string // "sha256:<64 hex>"
}

// Ref returns the reference written for t: Repo:Tag@Digest, or Repo@Digest
// when Tag is empty.
func (t Target) Ref() string {
	if t.Tag == "" {
		return t.Repo + "@" + t.Digest
	}
	return t.Repo + ":" + t.Tag + "@" + t.Digest
}

// Kinds of [Change].
const (
	KindContainer     = "container"     // image of a container or initContainer
	KindKustomization = "kustomization" // entry of a kustomization's images list
)

// Change is one rewritten (or already-correct) reference.
type Change struct {
	File string // slash path as given
	Line int    // 1-based line of the scalar; for kustomization entries, the entry's first line
	Kind string // KindContainer or KindKustomization
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

// workloadKinds are the kinds whose containers are rewritten. They all carry a
// pod template (or are a pod), wherever it sits in the document.
var workloadKinds = map[string]bool{
	"Pod": true, "Deployment": true, "StatefulSet": true, "DaemonSet": true,
	"ReplicaSet": true, "Job": true, "CronJob": true,
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// refChars are the only bytes a written value may contain, which makes every
// value safe to put between double or single quotes without escaping.
var refChars = regexp.MustCompile(`^[A-Za-z0-9._:/@-]+$`)

// target is a validated Target with the canonical repository name that
// references are compared by, so "nginx" matches "index.docker.io/library/nginx".
type target struct {
	Target
	canonical string
}

func compileTargets(targets []Target) ([]target, error) {
	out := make([]target, 0, len(targets))
	for _, t := range targets {
		repo, err := name.NewRepository(t.Repo, name.WeakValidation)
		if err != nil {
			return nil, fmt.Errorf("target repository %q: %w", t.Repo, err)
		}
		if t.Tag != "" {
			if _, err := name.NewTag(t.Repo+":"+t.Tag, name.WeakValidation); err != nil {
				return nil, fmt.Errorf("target %q tag %q: %w", t.Repo, t.Tag, err)
			}
		}
		if !digestRE.MatchString(t.Digest) {
			return nil, fmt.Errorf("target %q: digest %q is not sha256:<64 lowercase hex>", t.Repo, t.Digest)
		}
		if !refChars.MatchString(t.Ref()) {
			return nil, fmt.Errorf("target %q: unexpected characters in %q", t.Repo, t.Ref())
		}
		c := target{Target: t, canonical: repo.Name()}
		if i := slices.IndexFunc(out, func(o target) bool { return o.canonical == c.canonical }); i >= 0 {
			if out[i].Target == t {
				continue
			}
			return nil, fmt.Errorf("targets %q and %q name the same repository with different tags or digests", out[i].Ref(), t.Ref())
		}
		out = append(out, c)
	}
	return out, nil
}

// matchImage returns the target whose repository image refers to, or nil.
// References that do not parse (templating placeholders, say) match nothing.
func matchImage(targets []target, image string) *target {
	ref, err := name.ParseReference(strings.TrimSpace(image), name.WeakValidation)
	if err != nil {
		return nil
	}
	return matchCanonical(targets, ref.Context().Name())
}

// matchRepo is matchImage for a bare repository (kustomization name/newName).
func matchRepo(targets []target, repo string) *target {
	r, err := name.NewRepository(strings.TrimSpace(repo), name.WeakValidation)
	if err != nil {
		return nil
	}
	return matchCanonical(targets, r.Name())
}

func matchCanonical(targets []target, canonical string) *target {
	for i := range targets {
		if targets[i].canonical == canonical {
			return &targets[i]
		}
	}
	return nil
}

// RewriteFile rewrites, in one file's bytes, every reference to any target. It
// returns the new bytes, one Change per reference found (including references
// already pinned correctly, with Old == New), and an error when the YAML does
// not parse or a reference cannot be rewritten safely. Only the scalars that
// change differ between data and the result; see the package documentation.
// When nothing changes the result is data itself.
func RewriteFile(path string, data []byte, targets []Target) ([]byte, []Change, error) {
	ts, err := compileTargets(targets)
	if err != nil {
		return nil, nil, err
	}
	return rewrite(path, data, ts)
}

func rewrite(path string, data []byte, ts []target) ([]byte, []Change, error) {
	found, err := scan(path, data, ts)
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
	again, err := scan(path, out, ts)
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
	return out, changes, nil
}

// edit replaces data[start:end] with text; start == end inserts.
type edit struct {
	start, end int
	text       string
}

func apply(data []byte, edits []edit) ([]byte, error) {
	// Stable, so insertions at one offset keep the order they were made in.
	slices.SortStableFunc(edits, func(a, b edit) int { return a.start - b.start })
	var b bytes.Buffer
	b.Grow(len(data) + 128*len(edits))
	pos := 0
	for _, e := range edits {
		if e.start < pos || e.end < e.start || e.end > len(data) {
			return nil, fmt.Errorf("internal error: overlapping edits at byte %d", e.start)
		}
		b.Write(data[pos:e.start])
		b.WriteString(e.text)
		pos = e.end
	}
	b.Write(data[pos:])
	return b.Bytes(), nil
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
	visited map[*yaml.Node]bool // nodes walked, so aliases cost nothing extra; nil when the document has none
	pinned  map[*yaml.Node]bool // image scalars found, so an aliased container list counts once
}

func isKustomization(p string) bool {
	switch path.Base(p) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return true
	}
	return false
}

// scan finds every reference to a target in data, in file order.
func scan(path string, data []byte, ts []target) ([]finding, error) {
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
	s := &scanner{path: path, src: newSource(data), targets: ts, pinned: map[*yaml.Node]bool{}}
	kustomization := isKustomization(path)
	for _, doc := range docs {
		s.visited = nil
		if hasAlias(doc) {
			if err := checkAliases(doc); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, doc.Line, err)
			}
			s.visited = map[*yaml.Node]bool{}
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		root := doc.Content[0]
		if kustomization {
			if err := s.kustomization(root); err != nil {
				return nil, err
			}
		}
		if kind := scalarValue(root, "kind"); workloadKinds[kind] {
			if err := s.workload(root); err != nil {
				return nil, err
			}
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

// workload visits every node of a workload document once, aliases included,
// so a pod template anywhere (CronJob's spec.jobTemplate.spec.template) is
// found and a crafted alias graph costs linear time.
func (s *scanner) workload(n *yaml.Node) error {
	if n == nil || s.visited[n] {
		return nil
	}
	if s.visited != nil {
		s.visited[n] = true
	}
	if n.Kind == yaml.AliasNode {
		return s.workload(n.Alias)
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode && (k.Value == "containers" || k.Value == "initContainers") {
				if err := s.containers(deref(n.Content[i+1])); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range n.Content {
		if err := s.workload(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) containers(seq *yaml.Node) error {
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	for _, c := range seq.Content {
		c = deref(c)
		if c == nil || c.Kind != yaml.MappingNode {
			continue
		}
		images := lookup(c, "image")
		for _, v := range images {
			t := s.matchNode(v)
			if t == nil {
				continue
			}
			if len(images) > 1 {
				return s.errorf(c.Line, "container has %d image keys; refusing to guess which one counts", len(images))
			}
			if err := s.image(v, t); err != nil {
				return err
			}
		}
	}
	return nil
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
	if s.pinned[v] {
		return nil
	}
	s.pinned[v] = true
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

func (s *scanner) kustomization(root *yaml.Node) error {
	for _, list := range lookup(root, "images") {
		list = deref(list)
		if list == nil || list.Kind != yaml.SequenceNode {
			continue
		}
		for _, e := range list.Content {
			if e.Kind == yaml.AliasNode {
				if d := deref(e); d != nil && d.Kind == yaml.MappingNode && s.entryTarget(d) != nil {
					return s.errorf(e.Line, "images entry *%s is a YAML alias; write it in place to have it pinned", e.Value)
				}
				continue
			}
			if e.Kind == yaml.MappingNode {
				if err := s.kustomizeEntry(e); err != nil {
					return err
				}
			}
		}
	}
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
			Old: imageString(eff, oldTag, oldDigest),
			New: imageString(eff, newTag, t.Digest),
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

func imageString(repo, tag, digest string) string {
	s := repo
	if tag != "" {
		s += ":" + tag
	}
	if digest != "" {
		s += "@" + digest
	}
	return s
}

// render writes v in the quoting style of the scalar it replaces. Values are
// limited to refChars, so no escaping is ever needed.
func render(v string, style yaml.Style) string {
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		return `"` + v + `"`
	case style&yaml.SingleQuotedStyle != 0:
		return "'" + v + "'"
	case plainIsString(v):
		return v
	default:
		// A tag such as 1.0 or 20240101 would read back as a number.
		return `"` + v + `"`
	}
}

var yaml11Words = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true, "~": true,
}

var sexagesimal = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$`)

// plainIsString reports whether v, written unquoted, reads back as the string
// v under both YAML 1.2 (yaml.v3, kyaml) and YAML 1.1 (yaml.v2, which
// sigs.k8s.io/yaml and so kubectl use).
func plainIsString(v string) bool {
	if v == "" || yaml11Words[strings.ToLower(v)] || sexagesimal.MatchString(v) {
		return false
	}
	u := strings.ReplaceAll(v, "_", "")
	if _, err := strconv.ParseFloat(u, 64); err == nil {
		return false
	}
	if _, err := strconv.ParseInt(u, 0, 64); err == nil {
		return false
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(v), &n); err != nil || len(n.Content) != 1 {
		return false
	}
	c := n.Content[0]
	return c.Kind == yaml.ScalarNode && c.ShortTag() == "!!str" && c.Value == v && c.Style == 0
}

// source maps yaml.v3 positions (1-based line, 1-based column in characters)
// to byte offsets in the original text.
type source struct {
	data  []byte
	lines []int // byte offset at which each line starts
	last  struct{ line, col, off int }
}

func newSource(data []byte) *source {
	s := &source{data: data}
	start := 0
	if bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
		// yaml.v3 drops a leading byte order mark before counting columns.
		start = 3
	}
	s.lines = append(s.lines, start)
	for i := start; i < len(data); {
		if n := breakLen(data, i); n > 0 {
			i += n
			s.lines = append(s.lines, i)
			continue
		}
		i++
	}
	return s
}

// breakLen returns the length of the line break at data[i], or 0. It counts
// what yaml.v3 counts as a line break (CRLF, CR, LF, NEL, LS, PS), so line
// numbers agree even with those characters in comments.
func breakLen(data []byte, i int) int {
	switch {
	case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
		return 2
	case data[i] == '\r' || data[i] == '\n':
		return 1
	case data[i] == 0xC2 && i+1 < len(data) && data[i+1] == 0x85:
		return 2
	case data[i] == 0xE2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9):
		return 3
	}
	return 0
}

// position returns the byte offset of a line and column.
func (s *source) position(line, col int) (int, error) {
	if line < 1 || line > len(s.lines) || col < 1 {
		return 0, fmt.Errorf("position %d:%d is outside the file", line, col)
	}
	off, c := s.lines[line-1], 1
	// Lookups come in file order, so resume from the last one on the same
	// line: a long flow-style line with many images stays linear.
	if line == s.last.line && col >= s.last.col {
		off, c = s.last.off, s.last.col
	}
	for ; c < col; c++ {
		if off >= len(s.data) || breakLen(s.data, off) > 0 {
			return 0, fmt.Errorf("column %d is past the end of line %d", col, line)
		}
		_, w := utf8.DecodeRune(s.data[off:])
		off += w
	}
	s.last.line, s.last.col, s.last.off = line, col, off
	return off, nil
}

// lineEnd returns the offset of the line break at or after off and the break
// itself; at the end of a file without a final newline, the file's usual break.
func (s *source) lineEnd(off int) (int, string) {
	for i := off; i < len(s.data); i++ {
		if n := breakLen(s.data, i); n > 0 {
			return i, string(s.data[i : i+n])
		}
	}
	if bytes.Contains(s.data, []byte("\r\n")) {
		return len(s.data), "\r\n"
	}
	return len(s.data), "\n"
}

type span struct{ start, end int }

var errBlockScalar = errors.New("written as a block scalar (| or >); rewrite it as a single-line value to have it pinned")

// scalarSpan returns the bytes of a scalar's token in the original text,
// quotes included. It accepts only scalars on a single line, and checks that
// the text found reads as the node's value.
func (s *source) scalarSpan(n *yaml.Node) (span, error) {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return span{}, errBlockScalar
	}
	off, err := s.position(n.Line, n.Column)
	if err != nil {
		return span{}, err
	}
	d := s.data
	// The position of a node with an anchor or a tag is that of the
	// property, not of the value.
	for off < len(d) && (d[off] == '&' || d[off] == '!') {
		for off < len(d) && d[off] != ' ' && d[off] != '\t' && breakLen(d, off) == 0 {
			off++
		}
		for off < len(d) && (d[off] == ' ' || d[off] == '\t') {
			off++
		}
	}
	if off >= len(d) || breakLen(d, off) > 0 {
		return span{}, errors.New("value is not on the line of its anchor or tag")
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		return s.quoted(off, n.Value, '"')
	case n.Style&yaml.SingleQuotedStyle != 0:
		return s.quoted(off, n.Value, '\'')
	}
	end := off + len(n.Value)
	if n.Value == "" || end > len(d) || string(d[off:end]) != n.Value {
		return span{}, errors.New("value spans several lines or cannot be located; write it on one line to have it pinned")
	}
	if end < len(d) && d[end] != ' ' && d[end] != '\t' && d[end] != ',' && d[end] != ']' && d[end] != '}' && breakLen(d, end) == 0 {
		return span{}, errors.New("value cannot be located in the text")
	}
	return span{off, end}, nil
}

// quoted finds a quoted scalar starting at off and checks it reads as value.
func (s *source) quoted(off int, value string, q byte) (span, error) {
	d := s.data
	if d[off] != q {
		return span{}, errors.New("value cannot be located in the text")
	}
	for i := off + 1; i < len(d); i++ {
		if breakLen(d, i) > 0 {
			return span{}, errors.New("quoted value spans several lines; write it on one line to have it pinned")
		}
		switch {
		case q == '"' && d[i] == '\\':
			i++ // skip the escaped character; a break here is caught above on the next round
			if i < len(d) && breakLen(d, i) > 0 {
				return span{}, errors.New("quoted value spans several lines; write it on one line to have it pinned")
			}
		case q == '\'' && d[i] == '\'' && i+1 < len(d) && d[i+1] == '\'':
			i++
		case d[i] == q:
			sp := span{off, i + 1}
			var got string
			if err := yaml.Unmarshal(d[sp.start:sp.end], &got); err != nil || got != value {
				return span{}, errors.New("quoted value does not read back as parsed")
			}
			return sp, nil
		}
	}
	return span{}, errors.New("quoted value is not closed")
}
