package manifest

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
)

const valuesSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "image": {
      "type": "object",
      "properties": {
        "repository": {"type": "string"},
        "tag": {"type": "string"},
        "digest": {"type": "string", "pattern": "^(sha256:[0-9a-f]{64})?$"}
      },
      "required": ["repository"]
    },
    "replicaCount": {"type": "integer"}
  }
}`

// A touched values file of a chart kept in the repo must still satisfy
// the chart's values.schema.json, merged over values.yaml as helm does.
func TestValidateValuesSchema(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name, file, content, wantErr string
	}{
		{"values.yaml as pinned", "chart/values.yaml", "image:\n  repository: r/app\n  tag: v2\n  digest: " + d + "\nreplicaCount: 2\n", ""},
		{"an environment's values over values.yaml", "chart/values-prod.yaml", "image:\n  tag: \"1.10\"\n", ""},
		{"a tag read as a number", "chart/values-prod.yaml", "image:\n  tag: 1.10\n", "does not satisfy chart/values.schema.json"},
		{"a malformed digest", "chart/values.yaml", "image:\n  repository: r/app\n  digest: sha256:1111\n", "does not satisfy"},
		{"a required key lost", "chart/values.yaml", "image:\n  tag: v2\n", "does not satisfy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"chart/Chart.yaml":          {Data: []byte("apiVersion: v2\nname: app\nversion: 1.0.0\n")},
				"chart/values.schema.json":  {Data: []byte(valuesSchema)},
				"chart/values.yaml":         {Data: []byte("image:\n  repository: r/app\n  tag: v1\nreplicaCount: 1\n")},
				"chart/templates/d.yaml":    {Data: []byte("kind: Deployment\n")},
				"other/values.yaml":         {Data: []byte("not: [a chart\n")},
				"chart/values-staging.yaml": {Data: []byte("image: {tag: v1}\n")},
			}
			fsys[tc.file] = &fstest.MapFile{Data: []byte(tc.content)}
			err := Validate(context.Background(), fsys, []string{tc.file})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if IsValuesFile(fstest.MapFS{"x/values.yaml": {}}, "x/values.yaml") {
		t.Error("a values.yaml without Chart.yaml is a values file")
	}
}
