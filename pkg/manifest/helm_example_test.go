package manifest_test

import (
	"fmt"
	"log"
	"testing/fstest"

	"github.com/ferrycd/ferry/pkg/manifest"
)

// A chart's values.yaml is read as Helm values; its templates are not read.
func ExamplePin_helmChart() {
	fsys := fstest.MapFS{
		"charts/podinfo/Chart.yaml": {Data: []byte("apiVersion: v2\nname: podinfo\nversion: 6.14.1\n")},
		"charts/podinfo/values.yaml": {Data: []byte(`image:
  repository: ghcr.io/stefanprodan/podinfo
  tag: 6.14.1 # set by CI
  pullPolicy: IfNotPresent
`)},
		"charts/podinfo/templates/deployment.yaml": {Data: []byte(`image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
{{ toYaml .Values.resources | indent 12 }}
`)},
	}
	target := manifest.Target{
		Repo:   "ghcr.io/stefanprodan/podinfo",
		Tag:    "6.14.2",
		Digest: "sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e",
	}
	res, err := manifest.Pin(fsys, "charts", []manifest.Target{target})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(res.Files["charts/podinfo/values.yaml"]))
	for _, c := range res.Changes {
		fmt.Printf("%s:%d %s: %s\n", c.File, c.Line, c.Kind, c.Old)
	}
	// Output:
	// image:
	//   repository: ghcr.io/stefanprodan/podinfo
	//   tag: 6.14.2@sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e # set by CI
	//   pullPolicy: IfNotPresent
	// charts/podinfo/values.yaml:2 helm-values: ghcr.io/stefanprodan/podinfo:6.14.1
}

// An override file that sets only the tag names the field that holds it;
// the repository is the chart's.
func ExampleWithImageFields() {
	in := []byte("frontend:\n  image:\n    tag: v1\n")
	target := manifest.Target{
		Repo:   "us-docker.pkg.dev/acme/apps/frontend",
		Tag:    "v2",
		Digest: "sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e",
	}
	out, _, err := manifest.RewriteFile("envs/prod/values-prod.yaml", in, []manifest.Target{target},
		manifest.WithValuesFiles("values-prod.yaml"), manifest.WithImageFields("frontend.image"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output:
	// frontend:
	//   image:
	//     tag: v2@sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e
}
