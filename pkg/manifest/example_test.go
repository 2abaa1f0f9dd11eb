package manifest_test

import (
	"fmt"
	"log"
	"testing/fstest"

	"github.com/ferrycd/ferry/pkg/manifest"
)

func ExampleRewriteFile() {
	in := []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello

spec:
  template:
    spec:
      containers:
      - name: hello
        image: "us-docker.pkg.dev/acme/apps/hello:v1" # set by CI
`)
	target := manifest.Target{
		Repo:   "us-docker.pkg.dev/acme/apps/hello",
		Tag:    "v2",
		Digest: "sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e",
	}
	out, changes, err := manifest.RewriteFile("deploy.yaml", in, []manifest.Target{target})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	for _, c := range changes {
		fmt.Printf("%s:%d %s: %s -> %s\n", c.File, c.Line, c.Kind, c.Old, c.New)
	}
	// Output:
	// apiVersion: apps/v1
	// kind: Deployment
	// metadata:
	//   name: hello
	//
	// spec:
	//   template:
	//     spec:
	//       containers:
	//       - name: hello
	//         image: "us-docker.pkg.dev/acme/apps/hello:v2@sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e" # set by CI
	// deploy.yaml:11 container: us-docker.pkg.dev/acme/apps/hello:v1 -> us-docker.pkg.dev/acme/apps/hello:v2@sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e
}

func ExamplePin() {
	fsys := fstest.MapFS{
		"apps/hello/kustomization.yaml": {Data: []byte(`resources:
- deployment.yaml
images:
- name: hello
  newName: 127.0.0.1:5000/team/hello # local registry
`)},
		"apps/hello/deployment.yaml": {Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
      - name: hello
        image: hello
`)},
		"apps/other/deployment.yaml": {Data: []byte("kind: Pod\nspec:\n  containers:\n  - image: 127.0.0.1:5000/team/hello:v1\n")},
	}
	res, err := manifest.Pin(fsys, "apps/hello", []manifest.Target{{
		Repo:   "127.0.0.1:5000/team/hello",
		Tag:    "v2",
		Digest: "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
	}})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range res.Changes {
		fmt.Printf("%s:%d %s\n", c.File, c.Line, c.New)
	}
	fmt.Print(string(res.Files["apps/hello/kustomization.yaml"]))
	// Output:
	// apps/hello/kustomization.yaml:4 127.0.0.1:5000/team/hello:v2@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
	// resources:
	// - deployment.yaml
	// images:
	// - name: hello
	//   newName: 127.0.0.1:5000/team/hello # local registry
	//   newTag: v2
	//   digest: sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
}

// A HelmRelease whose image Flux image automation updates through setter
// markers: the fields marked with the policy given with the image are
// pinned, the markers stay.
func ExampleTarget_policy() {
	in := []byte(`apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
spec:
  values:
    image:
      repository: ghcr.io/stefanprodan/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
      tag: 6.7.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
`)
	target := manifest.Target{
		Repo:   "ghcr.io/stefanprodan/podinfo",
		Tag:    "6.7.1",
		Digest: "sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e",
		Policy: "flux-system:podinfo",
	}
	out, changes, err := manifest.RewriteFile("podinfo.yaml", in, []manifest.Target{target})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	for _, c := range changes {
		fmt.Printf("%s:%d %s: %s -> %s\n", c.File, c.Line, c.Kind, c.Old, c.New)
	}
	// Output:
	// apiVersion: helm.toolkit.fluxcd.io/v2
	// kind: HelmRelease
	// metadata:
	//   name: podinfo
	// spec:
	//   values:
	//     image:
	//       repository: ghcr.io/stefanprodan/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
	//       tag: 6.7.1@sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e # {"$imagepolicy": "flux-system:podinfo:tag"}
	// podinfo.yaml:8 setter: ghcr.io/stefanprodan/podinfo:6.7.0 -> ghcr.io/stefanprodan/podinfo:6.7.1@sha256:4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e4f1c2a9e
}
