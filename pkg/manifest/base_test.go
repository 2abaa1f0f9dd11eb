package manifest

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const baseDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
        - name: hello
          image: 127.0.0.1:5000/team/hello:v0
        - name: proxy
          image: nginx:1.25
`

func TestAddImageEntries(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	hello := Target{Repo: "127.0.0.1:5000/team/hello", Tag: "v2", Digest: d}
	tests := []struct {
		name    string
		overlay string
		targets []Target
		want    string // the overlay's kustomization after; "" when nothing is covered
	}{
		{
			name:    "no images list: one is added at the end, indented as resources",
			overlay: "# production\nresources:\n  - ../../base\nnamePrefix: prod-\n",
			targets: []Target{hello},
			want:    "# production\nresources:\n  - ../../base\nnamePrefix: prod-\nimages:\n  - name: 127.0.0.1:5000/team/hello\n    newTag: v2\n    digest: " + d + "\n",
		},
		{
			name:    "an images list: the entry is appended in its indentation",
			overlay: "resources:\n- ../../base\nimages:\n- name: other\n  newTag: \"1.0\" # keep\n\nreplicas: []\n",
			targets: []Target{hello},
			want:    "resources:\n- ../../base\nimages:\n- name: other\n  newTag: \"1.0\" # keep\n- name: 127.0.0.1:5000/team/hello\n  newTag: v2\n  digest: " + d + "\n\nreplicas: []\n",
		},
		{
			name:    "CRLF and no final newline",
			overlay: "resources:\r\n- ../../base",
			targets: []Target{{Repo: "index.docker.io/library/nginx", Tag: "1.27", Digest: d}},
			want:    "resources:\r\n- ../../base\r\nimages:\r\n- name: nginx\r\n  newTag: \"1.27\"\r\n  digest: " + d + "\r\n",
		},
		{
			name:    "a target the build does not render is not covered",
			overlay: "resources:\n- ../../base\n",
			targets: []Target{{Repo: "127.0.0.1:5000/team/other", Tag: "v1", Digest: d}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"base/kustomization.yaml":          {Data: []byte("resources:\n- deployment.yaml\n")},
				"base/deployment.yaml":             {Data: []byte(baseDeployment)},
				"overlays/prod/kustomization.yaml": {Data: []byte(tc.overlay)},
			}
			got, err := AddImageEntries(context.Background(), fsys, "overlays/prod", tc.targets)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if got != nil {
					t.Fatalf("covered %v, want nothing", got.Covered)
				}
				return
			}
			if got == nil {
				t.Fatal("nothing covered")
			}
			if diff := cmp.Diff(tc.want, string(got.Data)); diff != "" {
				t.Errorf("kustomization (-want +got):\n%s", diff)
			}
			// The overlay renders the pinned image, and pinning again
			// finds the entry: nothing left to add or change.
			fsys["overlays/prod/kustomization.yaml"] = &fstest.MapFile{Data: got.Data}
			out, err := Build(context.Background(), fsys, "overlays/prod")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), ":"+tc.targets[0].Tag+"@"+d) {
				t.Errorf("the overlay does not render the pinned image:\n%s", out)
			}
			res, err := Pin(fsys, "overlays/prod", tc.targets)
			if err != nil {
				t.Fatalf("pinning again: %v", err)
			}
			if len(res.Files) != 0 {
				t.Errorf("pinning again changed %v", res.Files)
			}
		})
	}
}
