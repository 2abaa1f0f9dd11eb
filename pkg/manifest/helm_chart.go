package manifest

import (
	"bytes"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// layout tells how to read each file of a tree, by where it sits among
// Helm charts (directories holding a Chart.yaml).
type layout struct {
	fsys  fs.FS
	chart map[string]bool // directory -> holds a Chart.yaml
}

func newLayout(fsys fs.FS) *layout { return &layout{fsys: fsys, chart: map[string]bool{}} }

// chartRoot returns the nearest directory at or above dir that holds a
// Chart.yaml. Directory listings answer it, so it reads no file.
func (l *layout) chartRoot(dir string) (string, bool) {
	for d := dir; ; d = path.Dir(d) {
		has, ok := l.chart[d]
		if !ok {
			entries, _ := fs.ReadDir(l.fsys, d)
			has = slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == "Chart.yaml" && e.Type().IsRegular() })
			l.chart[d] = has
		}
		if has {
			return d, true
		}
		if d == "." || d == "/" {
			return "", false
		}
	}
}

// inChart returns p's path relative to its chart's root.
func (l *layout) inChart(p string) (string, bool) {
	root, ok := l.chartRoot(path.Dir(p))
	if !ok {
		return "", false
	}
	if root == "." {
		return p, true
	}
	return strings.TrimPrefix(p, root+"/"), true
}

// template reports whether p lies in a chart's templates directory: Go
// templates, which are not YAML until Helm renders them.
func (l *layout) template(p string) bool {
	rel, ok := l.inChart(p)
	return ok && strings.HasPrefix(rel, "templates/")
}

// templated reports whether a file of a chart is a Go template outside
// its templates directory: it holds {{ and does not parse as YAML.
func (l *layout) templated(p string, data []byte) bool {
	if _, ok := l.inChart(p); !ok || !bytes.Contains(data, []byte("{{")) {
		return false
	}
	_, err := decodeAll(data)
	return err != nil
}

// fields returns the field specs to read the manifest file p with (base:
// those of the tree, nil for the defaults), or false when no image is to
// be read in it: a chart's templates and its Chart.yaml.
func (l *layout) fields(p string, c *pinConfig, base []field) ([]field, bool) {
	if rel, ok := l.inChart(p); ok {
		if strings.HasPrefix(rel, "templates/") || rel == "Chart.yaml" {
			return nil, false
		}
		if !strings.Contains(rel, "/") && isValuesName(rel) {
			return c.values, true
		}
	}
	return c.fieldsFor(p, base), true
}

func isValuesName(base string) bool {
	yamlOK, _ := path.Match("values*.yaml", base)
	ymlOK, _ := path.Match("values*.yml", base)
	return yamlOK || ymlOK
}

// templatedFile is templated for a file read from fsys.
func (l *layout) templatedFile(fsys fs.FS, p string) bool {
	data, err := fs.ReadFile(fsys, p)
	return err == nil && l.templated(p, data)
}
