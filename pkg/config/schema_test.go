package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/ferrycd/ferry/pkg/config"
)

// compileSchema compiles the embedded schema, which checks it against
// draft 2020-12's metaschema.
func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(config.Schema()))
	if err != nil {
		t.Fatalf("ferry.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("ferry.schema.json", doc); err != nil {
		t.Fatalf("ferry.schema.json: %v", err)
	}
	sch, err := c.Compile("ferry.schema.json")
	if err != nil {
		t.Fatalf("ferry.schema.json: %v", err)
	}
	return sch
}

// jsonValue reads a YAML file as an editor's schema validation sees it:
// YAML 1.2 types (go.yaml.in/yaml/v3, as Parse), then JSON.
func jsonValue(data []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(js))
}

// validate reports the schema's verdict on a YAML file.
func validate(t *testing.T, sch *jsonschema.Schema, data []byte) error {
	t.Helper()
	v, err := jsonValue(data)
	if err != nil {
		t.Fatalf("reading as JSON: %v", err)
	}
	return sch.Validate(v)
}

func TestSchemaAcceptsWhatParseAccepts(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	files := map[string]string{"ExampleParse": exampleFile}
	for _, tc := range parseCases {
		files[tc.name] = tc.in
	}
	for name, in := range files {
		if _, err := config.Parse("ferry.yaml", []byte(in)); err != nil {
			t.Errorf("%s: Parse: %v", name, err)
		}
		if err := validate(t, sch, []byte(in)); err != nil {
			t.Errorf("%s: the schema rejects what Parse accepts: %v", name, err)
		}
	}
}

// Parse and the schema reject the same files, where the schema can say
// the rule; where only Parse can, the schema accepts, so that a rule
// added to either shows here.
func TestSchemaRejectsWhatParseRejects(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	for _, tc := range errorCases {
		if tc.schema == noValue {
			continue
		}
		if _, err := config.Parse("ferry.yaml", []byte(tc.in)); err == nil {
			t.Errorf("%s: Parse accepts it", tc.name)
		}
		err := validate(t, sch, []byte(tc.in))
		switch {
		case tc.schema == schemaRejects && err == nil:
			t.Errorf("%s: Parse rejects it (%s) but the schema accepts it", tc.name, tc.want)
		case tc.schema == schemaAccepts && err != nil:
			t.Errorf("%s: the schema now rejects it too, so mark it schemaRejects: %v", tc.name, err)
		}
	}
}

// The schema's pattern for paths is Go's checkTemplate as a regular
// expression; they must agree on every template.
func TestSchemaPathPattern(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	for _, tc := range templateCases {
		// app: lets a template without {app} be: the pattern alone decides.
		file := fmt.Sprintf("version: 1\napp: web\nenvironments: [{name: a, path: %q}]\n", tc.in)
		err := validate(t, sch, []byte(file))
		if (err == nil) != (tc.wantErr == "") {
			t.Errorf("path %q: the schema says %v, ParseTemplate says %q", tc.in, err, tc.wantErr)
		}
	}
}
