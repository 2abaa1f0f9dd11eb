package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	sigsyaml "sigs.k8s.io/yaml"
)

// IsValuesFile reports whether p is a Helm values file of a chart kept in
// the tree: values*.yaml (or .yml) at the root of a directory holding a
// Chart.yaml, by the same rule that pinning reads values files with.
func IsValuesFile(fsys fs.FS, p string) bool {
	rel, ok := newLayout(fsys).inChart(p)
	return ok && !strings.Contains(rel, "/") && isValuesName(rel)
}

// checkValuesSchema validates a chart's values file against the chart's
// values.schema.json, when there is one, as helm does before it renders:
// values.yaml alone, and any other values file merged over values.yaml.
func checkValuesSchema(fsys fs.FS, file string) error {
	dir := path.Dir(file)
	schemaFile := path.Join(dir, "values.schema.json")
	raw, err := fs.ReadFile(fsys, schemaFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	// A chart's schema names no remote schema ferry should fetch.
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaFile, doc); err != nil {
		return fmt.Errorf("%s: %w", schemaFile, err)
	}
	sch, err := c.Compile(schemaFile)
	if err != nil {
		return fmt.Errorf("%s: %w", schemaFile, err)
	}
	values, err := readValues(fsys, path.Join(dir, "values.yaml"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if path.Base(file) != "values.yaml" {
		over, err := readValues(fsys, file)
		if err != nil {
			return err
		}
		values = mergeValues(values, over)
	}
	if values == nil {
		values = map[string]any{}
	}
	if err := sch.Validate(values); err != nil {
		return fmt.Errorf("%s does not satisfy %s: %v", file, schemaFile, err)
	}
	return nil
}

// readValues reads a values file as JSON would see it.
func readValues(fsys fs.FS, file string) (map[string]any, error) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	// sigs.k8s.io/yaml reads YAML as helm does (YAML 1.1 types).
	js, err := sigsyaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	return normalizeNumbers(v).(map[string]any), nil
}

// normalizeNumbers turns json.Number into what the schema library expects.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalizeNumbers(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = normalizeNumbers(x)
		}
		return t
	case json.Number:
		var out any
		_ = json.Unmarshal([]byte(t.String()), &out)
		return out
	}
	return v
}

// mergeValues is helm's coalescing for maps: over's keys win, maps merge.
func mergeValues(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = mergeValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// noLoader refuses every schema reference outside the chart's own file.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("not loading %s: a chart's schema is validated on its own, without fetching", url)
}
