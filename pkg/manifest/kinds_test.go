package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// Golden cases for image fields of every kind (issue 11): containers of
// any kind, ephemeral containers, image volumes, and placeholder values.
// Each case directory has a SOURCE note naming the public input it is
// built from.

const (
	digestRollouts = "sha256:6a3db1f6cbfedc5094b30a88eb7b836e9a572c6b108ca3ab35c7134416762d34"
	digestKnative  = "sha256:be6d9270de402b9ffbae7b6aeab4fd750ae279c39465180fc6b9f83da16c6593"
	digestKeda     = "sha256:308c477e9c541a4df316e7b2e7d02b5e7348c25f5910f7e82b582f7a4c8d9b85"
	digestBusybox  = "sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91"
	digestArtifact = "sha256:c7c5c1d70c5dec4416ab6158afd0b223ef40c29b1dc1f97ed9428b94d4cadb1c"
	digestAlpine   = "sha256:54c5b3dd459d5ef778bb2fa1e23a5fb0e1b62ae66970bcb436e8f81a1a1a8e41"
	digestMyImage  = "sha256:7471095e564d669dd964845e555b50752b30caa9d6d46e71d2e9278d63c57628"
)

var (
	rolloutsDemo = Target{Repo: "argoproj/rollouts-demo", Tag: "yellow", Digest: digestRollouts}
	helloworldGo = Target{Repo: "gcr.io/knative-samples/helloworld-go", Digest: digestKnative}
	rabbitClient = Target{Repo: "demo-rabbitmq-client", Tag: "2", Digest: digestKeda}
	busybox      = Target{Repo: "busybox", Tag: "1.36", Digest: digestBusybox}
	artifact     = Target{Repo: "quay.io/crio/artifact", Tag: "v3", Digest: digestArtifact}
	alpine       = Target{Repo: "alpine", Tag: "3.20", Digest: digestAlpine}
	myImage      = Target{Repo: "some.registry.io/my-image", Tag: "my-fixed-tag", Digest: digestMyImage}
)

// The cases join the table of rewrite_test.go, so the golden test, its
// idempotence pass and changed-lines check, and the fuzz seeds cover them.
func init() {
	goldenCases = append(goldenCases, []struct {
		dir     string
		file    string
		targets []Target
		changes []string
	}{
		{"rollout", "rollout.yaml", []Target{rolloutsDemo}, []string{
			"21 container argoproj/rollouts-demo:blue",
		}},
		{"knative-service", "service.yaml", []Target{helloworldGo}, []string{
			"9 container gcr.io/knative-samples/helloworld-go",
		}},
		{"kruise-cloneset", "cloneset.yaml", []Target{nginx}, []string{
			"19 container nginx:alpine",
		}},
		{"keda-scaledjob", "scaledjob.yaml", []Target{rabbitClient}, []string{
			"19 container demo-rabbitmq-client:1",
		}},
		{"ephemeral-containers", "pod.yaml", []Target{busybox}, []string{
			"10 container busybox:1.28",
		}},
		{"image-volume", "image-volumes.yaml", []Target{artifact, alpine}, []string{
			"24 container quay.io/crio/artifact:v2",
			"46 container alpine",
		}},
		{"placeholders", "deploy.yaml", []Target{myImage, nginx}, []string{
			"10 container some.registry.io/my-image:{GENERATED_TAG}",
			"18 container nginx",
			"20 container nginx@sha256:111111111111111111",
		}},
	}...)
}

// matchImage matches by repository, as kustomize's images transformer does
// (image.IsImageMatched): a placeholder or malformed tag or digest still
// names the repository; a placeholder in the repository, or characters
// kustomize does not take for a tag, do not.
func TestMatchImage(t *testing.T) {
	ts, err := compileTargets([]Target{hello, nginx})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		image string
		want  string // the target's Repo, or ""
	}{
		{"127.0.0.1:5000/team/hello:v1", hello.Repo},
		{"127.0.0.1:5000/team/hello", hello.Repo},
		{"127.0.0.1:5000/team/hello:{GENERATED_TAG}", hello.Repo},
		{"127.0.0.1:5000/team/hello:COMMIT_SHA", hello.Repo},
		{"127.0.0.1:5000/team/hello@sha256:1111", hello.Repo},
		{"127.0.0.1:5000/team/hello:v1@sha256:xyz", hello.Repo},
		{"127.0.0.1:5000/team/hello:", hello.Repo},
		{" nginx:1.25 ", nginx.Repo},
		{"docker.io/library/nginx@sha512:abc", nginx.Repo},
		{"127.0.0.1:5000/team/hello:${TAG}", ""},
		{"127.0.0.1:5000/team/hello:$(TAG)", ""},
		{"127.0.0.1:5000/team/hello:{{ .Values.tag }}", ""},
		{"127.0.0.1:5000/team/hello@", ""},
		{"127.0.0.1:5000/TEAM/hello:v1", ""},
		{"gcr.io/PROJECT_ID/hello:v1", ""},
		{"${IMAGE}", ""},
		{"127.0.0.1:5000/team/hello:v1:v2", ""},
		{"busybox:1.36", ""},
	} {
		got := ""
		if m := matchImage(ts, tc.image); m != nil {
			got = m.Repo
		}
		if got != tc.want {
			t.Errorf("matchImage(%q) = %q, want %q", tc.image, got, tc.want)
		}
	}
}

// Images reads containers of every kind, ephemeral containers and image
// volumes, and leaves what kustomize leaves.
func TestImagesKinds(t *testing.T) {
	read := func(dir string) []byte { return readFile(t, rewriteDir+"/"+dir+"/input.yaml") }
	fsys := fstest.MapFS{}
	for _, d := range []string{"rollout", "knative-service", "kruise-cloneset", "keda-scaledjob", "ephemeral-containers", "image-volume", "placeholders", "other-kinds-untouched"} {
		fsys["apps/"+d+".yaml"] = &fstest.MapFile{Data: read(d)}
	}
	got, err := Images(fsys, "apps")
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, r := range got {
		summary = append(summary, fmt.Sprintf("%s %s %s", r.File, r.Kind, r.Value))
	}
	want := []string{
		"apps/ephemeral-containers.yaml container registry.k8s.io/pause:3.1",
		"apps/ephemeral-containers.yaml container busybox:1.28",
		"apps/image-volume.yaml container debian",
		"apps/image-volume.yaml container quay.io/crio/artifact:v2",
		"apps/image-volume.yaml container debian",
		"apps/image-volume.yaml container alpine",
		"apps/keda-scaledjob.yaml container demo-rabbitmq-client:1",
		"apps/knative-service.yaml container gcr.io/knative-samples/helloworld-go",
		"apps/kruise-cloneset.yaml container nginx:alpine",
		// other-kinds-untouched.yaml: nothing.
		"apps/placeholders.yaml container some.registry.io/my-image:{GENERATED_TAG}",
		// gcr.io/PROJECT_ID/... is no repository.
		"apps/placeholders.yaml container some.registry.io/my-image:${IMAGE_TAG}",
		"apps/placeholders.yaml container nginx",
		"apps/placeholders.yaml container nginx@sha256:111111111111111111",
		"apps/placeholders.yaml container alpine:1.8.0",
		"apps/rollout.yaml container argoproj/rollouts-demo:blue",
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("Images (-want +got):\n%s", diff)
	}
}

// kustomizeImagesExample is kubernetes-sigs/kustomize
// examples/transformerconfigs/images/README.md: a custom kind whose image
// lives where only the configurations file says, beside containers kustomize
// finds in any kind.
func kustomizeImagesExample() fstest.MapFS {
	return fstest.MapFS{
		"app/kustomizeconfig/mykind.yaml": {Data: []byte(`
images:
- path: spec/runLatest/container/image
  kind: MyKind
`)},
		"app/resources.yaml": {Data: []byte(`
apiVersion: config/v1
kind: MyKind
metadata:
  name: testSvc
spec:
  runLatest:
    container:
      image: crd-image
  containers:
    - image: docker
      name: ecosystem
    - image: my-mysql
      name: testing-1
---
group: apps
apiVersion: v1
kind: Deployment
metadata:
  name: deploy1
spec:
  template:
    spec:
      initContainers:
      - name: nginx2
        image: my-app
      - name: init-alpine
        image: alpine:1.8.0
`)},
		"app/kustomization.yaml": {Data: []byte(`resources:
- resources.yaml

images:
- name: crd-image
  newName: new-crd-image
  newTag: new-v1-tag
- name: my-app
  newName: new-app-1
  newTag: MYNEWTAG-1
- name: my-mysql
  newName: prod-mysql
  newTag: v3
- name: docker
  newName: my-docker2
  digest: sha256:25a0d4
configurations:
- kustomizeconfig/mykind.yaml
`)},
	}
}

var crdImage = Target{Repo: "crd-image", Tag: "v2", Digest: digestMyImage}

// A kustomization's configurations files add image fields for the files in
// its directory and below, where Pin and Images both look.
func TestPinConfigurations(t *testing.T) {
	fsys := kustomizeImagesExample()
	res, err := Pin(fsys, "app", []Target{crdImage})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(fsys["app/resources.yaml"].Data), "image: crd-image\n", "image: "+crdImage.Ref()+"\n", 1)
	if diff := cmp.Diff(want, string(res.Files["app/resources.yaml"])); diff != "" {
		t.Errorf("resources.yaml (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"app/resources.yaml:9 crd-image"}, summarize(res.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	// The configurations of a kustomization above the scope count too.
	if _, err := Pin(fsys, "app/kustomizeconfig", []Target{crdImage}); !errors.Is(err, ErrNotReferenced) {
		t.Errorf("Pin of a directory without the resource: %v, want ErrNotReferenced", err)
	}
	deeper := kustomizeImagesExample()
	deeper["app/sub/more.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: config/v1\nkind: MyKind\nspec:\n  runLatest:\n    container:\n    - image: crd-image:v1\n")}
	res, err = Pin(deeper, "app/sub", []Target{crdImage})
	if err != nil {
		t.Fatal(err)
	}
	// The path enters the container list as kustomize's does, "[]" or not.
	if diff := cmp.Diff([]string{"app/sub/more.yaml:6 crd-image:v1"}, summarize(res.Changes)); diff != "" {
		t.Errorf("changes below the kustomization (-want +got):\n%s", diff)
	}

	// Without the configurations entry, the field is no image.
	plain := kustomizeImagesExample()
	plain["app/kustomization.yaml"] = &fstest.MapFile{Data: []byte(strings.Split(string(plain["app/kustomization.yaml"].Data), "configurations:")[0])}
	if _, err := Pin(plain, "app", []Target{crdImage}); !errors.Is(err, ErrNotReferenced) {
		t.Errorf("Pin without configurations: %v, want ErrNotReferenced", err)
	}
	refs, err := Images(fsys, "app")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, r := range refs {
		values = append(values, r.Value)
	}
	wantValues := []string{"new-crd-image:new-v1-tag", "new-app-1:MYNEWTAG-1", "prod-mysql:v3", "my-docker2@sha256:25a0d4",
		"crd-image", "docker", "my-mysql", "my-app", "alpine:1.8.0"}
	if diff := cmp.Diff(wantValues, values); diff != "" {
		t.Errorf("Images (-want +got):\n%s", diff)
	}
}

// A configurations spec with a group or version applies to that group and
// version only, as kustomize's field specs do.
func TestPinConfigurationsGroupVersion(t *testing.T) {
	for _, tc := range []struct {
		spec string
		hit  bool
	}{
		{"group: config.example.com\n  version: v1", true},
		{"group: config.example.com", true},
		{"version: v1", true},
		{"group: other.example.com", false},
		{"version: v2", false},
	} {
		fsys := fstest.MapFS{
			"app/kustomization.yaml": {Data: []byte("resources: [r.yaml]\nconfigurations: [c.yaml]\n")},
			"app/c.yaml":             {Data: []byte("images:\n- kind: MyKind\n  " + tc.spec + "\n  path: spec/runner/image\n")},
			"app/r.yaml":             {Data: []byte("apiVersion: config.example.com/v1\nkind: MyKind\nspec:\n  runner:\n    image: crd-image:v1\n")},
		}
		_, err := Pin(fsys, "app", []Target{crdImage})
		if hit := err == nil; hit != tc.hit {
			t.Errorf("%q: Pin = %v, want a hit: %v", tc.spec, err, tc.hit)
		}
	}
}

// A configurations file Pin cannot read or understand is an error; Images
// reads on without it.
func TestPinConfigurationsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, entry, file, want string
	}{
		{"missing", "nothere.yaml", "", "configurations entry \"nothere.yaml\""},
		{"leaves the directory", "../c.yaml", "", "is not a file in the kustomization's directory or below"},
		{"absolute", "/c.yaml", "", "is not a file in the kustomization's directory or below"},
		{"remote", "https://example.com/c.yaml", "", "is not a file in the kustomization's directory or below"},
		{"does not parse", "c.yaml", "images: [", "parsing app/c.yaml (a configurations file of app/kustomization.yaml)"},
		{"escaped slash", "c.yaml", "images:\n- path: metadata/annotations/a\\/b\n", "images path \"metadata/annotations/a\\\\/b\""},
		{"empty field name", "c.yaml", "images:\n- path: spec//image\n", "has an empty field name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"app/kustomization.yaml": {Data: []byte("resources: [r.yaml]\nconfigurations:\n- " + tc.entry + "\n")},
				"app/r.yaml":             {Data: []byte("kind: Pod\nspec:\n  containers:\n  - image: crd-image:v1\n")},
				"c.yaml":                 {Data: []byte("images: []\n")},
			}
			if tc.file != "" {
				fsys["app/c.yaml"] = &fstest.MapFile{Data: []byte(tc.file)}
			}
			_, err := Pin(fsys, "app", []Target{crdImage})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Pin = %v; want an error containing %q", err, tc.want)
			}
			refs, err := Images(fsys, "app")
			if err != nil || len(refs) != 1 {
				t.Errorf("Images = %v, %v; want the one container", refs, err)
			}
		})
	}
}

// kustomizePath makes a kustomize field spec's path one that enters every
// sequence on the way.
func TestKustomizePath(t *testing.T) {
	for in, want := range map[string]string{
		"spec/template/spec/containers[]/image": "[]*/spec/[]*/template/[]*/spec/[]*/containers/[]*/image",
		"/spec/runLatest/container/image":       "[]*/spec/[]*/runLatest/[]*/container/[]*/image",
	} {
		got, err := kustomizePath(in)
		if err != nil || got != want {
			t.Errorf("kustomizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "a//b", "a/{b,c}", "a/**/b", "a[0]/b"} {
		if got, err := kustomizePath(in); err == nil {
			t.Errorf("kustomizePath(%q) = %q, want an error", in, got)
		}
	}
}
