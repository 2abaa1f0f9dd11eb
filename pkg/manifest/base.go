package manifest

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/ferrycd/ferry/pkg/ref"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Entries is what AddImageEntries adds to a scope's kustomization.
type Entries struct {
	File    string   // the kustomization file, slash path in fsys
	Data    []byte   // its new content
	Changes []Change // one per entry added: Old is the image the build rendered
	Covered []Target // the targets an entry now pins
}

// AddImageEntries pins targets that no file under dir names but that the
// kustomization at dir renders, because a base outside dir holds them: it
// adds to that kustomization's images list one entry per such target,
// naming the image as the build renders it, with newTag and digest, as
// `kustomize edit set image` and Kargo do. Everything else in the file stays
// byte-exact: an existing images list gets the entries appended in its own
// indentation, a file without one gets the list at its end.
//
// Targets the build does not render are left out of Covered; when none is
// covered, or dir holds no kustomization, the result is nil. A
// kustomization that does not build is an error, as validation would find.
func AddImageEntries(ctx context.Context, fsys fs.FS, dir string, targets []Target, opts ...Option) (*Entries, error) {
	ts, err := compileTargets(targets)
	if err != nil {
		return nil, err
	}
	file := ""
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if fi, err := fs.Stat(fsys, path.Join(dir, n)); err == nil && fi.Mode().IsRegular() {
			file = path.Join(dir, n)
			break
		}
	}
	if file == "" {
		return nil, nil
	}
	rendered, err := Build(ctx, fsys, dir, opts...)
	if err != nil {
		return nil, err
	}
	// The names as the build renders them: what an images entry matches.
	names := map[string]string{} // canonical repository -> rendered value
	for _, r := range fileImages(path.Join(dir, "(rendered)"), rendered, unmarkedFields) {
		if _, ok := names[r.Repo]; !ok && r.Kind == KindContainer {
			names[r.Repo] = r.Value
		}
	}
	out := &Entries{File: file}
	var add []newEntry
	for _, t := range ts {
		v, ok := names[t.canonical]
		if !ok {
			continue
		}
		name := ref.Split(v).Repo
		out.Covered = append(out.Covered, t.Target)
		out.Changes = append(out.Changes, Change{File: file, Kind: KindKustomization, Repo: t.Repo, Old: v,
			New: ref.Ref{Repo: name, Tag: t.Tag, Digest: t.Digest}.String()})
		add = append(add, newEntry{name, entryBody(t)})
	}
	if len(add) == 0 {
		return nil, nil
	}
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	if out.Data, err = appendImageEntries(file, data, add); err != nil {
		return nil, err
	}
	return out, nil
}

// newEntry is one images entry to add.
type newEntry struct {
	name   string
	fields []keyValue
}

// entryBody is what an added entry says besides its name.
func entryBody(t target) []keyValue {
	var kv []keyValue
	if t.Tag != "" {
		kv = append(kv, keyValue{"newTag", t.Tag})
	}
	return append(kv, keyValue{"digest", t.Digest})
}

// appendImageEntries adds one images entry per name, each with its
// newTag and digest, to a kustomization's text without touching anything
// else.
func appendImageEntries(file string, data []byte, entries []newEntry) ([]byte, error) {
	docs, err := decodeAll(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	if len(docs) != 1 || len(docs[0].Content) == 0 || docs[0].Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a single kustomization document; add the images entry by hand", file)
	}
	root := docs[0].Content[0]
	src := newSource(data)
	eol := "\n"
	if bytes.Contains(data, []byte("\r\n")) {
		eol = "\r\n"
	}
	lists := lookup(root, "images")
	if len(lists) > 1 {
		return nil, fmt.Errorf("%s has %d images keys; refusing to guess which one counts", file, len(lists))
	}
	if len(lists) == 1 {
		list := lists[0]
		if list.Kind != yaml.SequenceNode || list.Style&yaml.FlowStyle != 0 || len(list.Content) == 0 {
			return nil, fmt.Errorf("%s:%d: images is not a block list with entries; write its entries in block style to have one added", file, list.Line)
		}
		last := list.Content[len(list.Content)-1]
		dash, keyCol, err := entryIndent(src, last)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, last.Line, err)
		}
		end, err := nodeEnd(src, last)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: the last images entry cannot be located: %v", file, last.Line, err)
		}
		at, eolHere := src.lineEnd(end)
		text := renderEntries(entries, eolHere, dash, keyCol)
		return apply(data, []edit{{at, at, text}})
	}
	// No images list: add one at the end, indented as the file's other
	// top-level lists are.
	dash := 0
	for i := 1; i < len(root.Content); i += 2 {
		if v := root.Content[i]; v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
			if d, _, err := entryIndent(src, v.Content[0]); err == nil {
				dash = d
				break
			}
		}
	}
	var b strings.Builder
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		b.WriteString(eol)
	}
	b.WriteString("images:")
	b.WriteString(renderEntries(entries, eol, dash, dash+2))
	b.WriteString(eol)
	return apply(data, []edit{{len(data), len(data), b.String()}})
}

// renderEntries writes entries as block-list items, each line starting
// with eol: "- name: x" at dash, the other keys at keyCol.
func renderEntries(entries []newEntry, eol string, dash, keyCol int) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(eol)
		b.WriteString(strings.Repeat(" ", dash))
		b.WriteString("- ")
		b.WriteString(strings.Repeat(" ", max(keyCol-dash-2, 0)))
		b.WriteString("name: ")
		b.WriteString(render(e.name, 0))
		for _, kv := range e.fields {
			b.WriteString(eol)
			b.WriteString(strings.Repeat(" ", keyCol))
			b.WriteString(kv.key)
			b.WriteString(": ")
			b.WriteString(render(kv.value, 0))
		}
	}
	return b.String()
}

// entryIndent finds, for a block-list item, the column of its dash and of
// its first key, or of itself when it is a scalar (0-based).
func entryIndent(src *source, item *yaml.Node) (dash, key int, err error) {
	k := item
	if item.Kind == yaml.MappingNode {
		if len(item.Content) == 0 || item.Style&yaml.FlowStyle != 0 {
			return 0, 0, fmt.Errorf("the entry is not a block mapping")
		}
		k = item.Content[0]
	}
	off, err := src.position(k.Line, k.Column)
	if err != nil {
		return 0, 0, err
	}
	start := src.lines[k.Line-1]
	i := bytes.LastIndexByte(src.data[start:off], '-')
	if i < 0 {
		return 0, 0, fmt.Errorf("the entry's dash is not on the line of its first key")
	}
	return i, k.Column - 1, nil
}

// nodeEnd returns the byte offset just after the last scalar of n.
func nodeEnd(src *source, n *yaml.Node) (int, error) {
	for n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			return 0, fmt.Errorf("empty collection")
		}
		n = n.Content[len(n.Content)-1]
	}
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("ends in an alias")
	}
	sp, err := src.scalarSpan(n)
	if err != nil {
		return 0, err
	}
	return sp.end, nil
}
