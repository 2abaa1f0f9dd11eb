package manifest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Golden cases and tests for Flux image-automation setter markers (issue
// 11). Each case directory has a SOURCE note naming the public input it is
// built from.

const (
	digestPodinfo = "sha256:04d1b7ec0eaa8700acbf2951a468e3c4376422d3807247296e669d6c0439690c"
	digestGolang  = "sha256:d754ed9f64ac293b10268157f283ee23256fb32a4f8dedb25c8446ca5bcb0bb3"
	digestUpdated = "sha256:9ff7d52d53b3639b959907155509b1795020364a2db9fdf186ba499792689655"
	digestImage   = "sha256:0604fdb7edd7a8eacbcbdebdf7aad00db03650efd7f927f4b16f6cd0e0c3747e"
)

var (
	podinfo = Target{Repo: "ghcr.io/stefanprodan/podinfo", Tag: "5.0.3", Digest: digestPodinfo}
	golang  = Target{Repo: "docker.io/golang", Tag: "1.15.7", Digest: digestGolang}
	myApp   = Target{Repo: "ghcr.io/my-org/my-app", Tag: "4.0.7", Digest: digestUpdated}
	// The policies of image-automation-controller's setters test.
	fakeUpdated = Target{Repo: "index.repo.fake/updated", Tag: "v1.0.1", Digest: digestUpdated, Policy: "automation-ns:policy"}
	withDigest  = Target{Repo: "image", Tag: "v1.0.0", Digest: digestImage, Policy: "automation-ns:policy-with-digest"}
	imagePolicy = Target{Repo: "image", Tag: "v1.0.1", Digest: digestImage, Policy: "automation-ns:policy"}
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
		{"setter-full", "podinfo.yaml", []Target{podinfo, golang}, []string{
			"17 setter ghcr.io/stefanprodan/podinfo:5.0.0",
			"32 setter docker.io/golang:1.15.6",
			"40 setter ghcr.io/stefanprodan/podinfo:5.0.0",
		}},
		{"setter-tag", "podinfo.yaml", []Target{podinfo}, []string{
			"10 setter ghcr.io/stefanprodan/podinfo:5.0.0",
			"21 setter ghcr.io/stefanprodan/podinfo:5.0.0",
			"29 setter ghcr.io/stefanprodan/podinfo:latest",
			"39 setter ghcr.io/stefanprodan/podinfo:latest",
		}},
		{"setter-name-tag", "podinfo.yaml", []Target{podinfo}, []string{
			"9 setter ghcr.io/stefanprodan/podinfo:5.0.0",
			"20 setter ghcr.io/stefanprodan/podinfo:5.0.0",
		}},
		{"setter-digest", "helmrelease.yaml", []Target{myApp}, []string{
			"9 setter ghcr.io/my-org/my-app:4.0.6@sha256:6129bb944cada32b4662eafd13fd9904d34c77286bf2ec4523eaedb711757cb0",
		}},
		{"setter-kustomization", "kustomization.yml", []Target{fakeUpdated, withDigest}, []string{
			"8 setter replaced:v1",
			"10 setter image@sha256:1234567890abcdef",
			"28 setter image",
		}},
		{"setter-mixed", "cronjob.yaml", []Target{imagePolicy}, []string{
			"17 setter image:v1.0.0",
		}},
	}...)
}

// readMarker reads what Flux's kyaml fieldmeta reads: the line comment, else
// the head comment, as a JSON object of strings after its '#'s.
func TestReadMarker(t *testing.T) {
	for _, tc := range []struct {
		yaml   string
		marker bool   // a marker (the file is one Flux automates)
		want   string // policy:part, "" for a marker naming no setter
	}{
		{`x: a # {"$imagepolicy": "flux-system:podinfo"}`, true, "flux-system:podinfo:"},
		{`x: a #{"$imagepolicy":"flux-system:podinfo:tag"}`, true, "flux-system:podinfo:tag"},
		{`x: a ## {"$imagepolicy": "ns:n:name"}`, true, "ns:n:name"},
		{`x: a # {"$imagepolicy": "ns:n:digest", "note": "kept"}`, true, "ns:n:digest"},
		{"- # {\"$imagepolicy\": \"ns:n\"}\n  a", true, "ns:n:"},
		{`x: a # {"$imagepolicy": "ns:n:other"}`, true, ""},
		{`x: a # {"$imagepolicy": "podinfo"}`, true, ""},
		{`x: a # {"$imagepolicy": "ns::tag"}`, true, ""},
		{`x: a # {"$imagepolicy": ""}`, false, ""},
		{`x: a # {"$imagepolicy": "ns:n", "replicas": 3}`, false, ""},
		{`x: a # $imagepolicy: ns:n`, false, ""},
		{`x: a # {"$ImagePolicy": "ns:n"}`, false, ""},
		{"x: a # not a marker\n", false, ""},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tc.yaml), &doc); err != nil {
			t.Fatal(err)
		}
		root := doc.Content[0]
		v := root.Content[len(root.Content)-1]
		m, ok := readMarker(v)
		got := ""
		if m.policy != "" {
			got = m.policy + ":" + m.part
		}
		if ok != tc.marker || got != tc.want {
			t.Errorf("readMarker(%q) = %q, %v; want %q, %v", tc.yaml, got, ok, tc.want, tc.marker)
		}
	}
}

// Which target a marked field gets: the one given with its policy, else one
// given without a policy whose repository the field names.
func TestSetterPolicy(t *testing.T) {
	helloWeb := hello
	helloWeb.Policy = "flux-system:web"
	for _, tc := range []struct {
		name    string
		in      string
		targets []Target
		want    string // the image line after
	}{
		{"policy wins over the repository", `image: nginx:1.25 # {"$imagepolicy": "flux-system:web"}`,
			[]Target{helloWeb, nginx}, "image: " + hello.Ref() + ` # {"$imagepolicy": "flux-system:web"}`},
		{"another policy is left alone", `image: 127.0.0.1:5000/team/hello:v1 # {"$imagepolicy": "flux-system:api"}`,
			[]Target{helloWeb}, `image: 127.0.0.1:5000/team/hello:v1 # {"$imagepolicy": "flux-system:api"}`},
		{"by repository without a policy", `image: 127.0.0.1:5000/team/hello:v1 # {"$imagepolicy": "flux-system:api"}`,
			[]Target{hello}, "image: " + hello.Ref() + ` # {"$imagepolicy": "flux-system:api"}`},
		{"a marker naming no setter pins nothing", `image: 127.0.0.1:5000/team/hello:v1 # {"$imagepolicy": "hello"}`,
			[]Target{hello}, `image: 127.0.0.1:5000/team/hello:v1 # {"$imagepolicy": "hello"}`},
		{"placeholder tag", `image: 127.0.0.1:5000/team/hello:{TAG} # {"$imagepolicy": "flux-system:api"}`,
			[]Target{hello}, "image: " + hello.Ref() + ` # {"$imagepolicy": "flux-system:api"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := "kind: Pod\nspec:\n  containers:\n  - name: a\n    " + tc.in + "\n  - name: b\n    image: 127.0.0.1:5000/team/hello:v1\n"
			got, _, err := RewriteFile("pod.yaml", []byte(in), tc.targets)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Replace(in, tc.in, tc.want, 1)
			if diff := cmp.Diff(want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// What a :tag field gets, and when ferry refuses to guess.
func TestSetterParts(t *testing.T) {
	helloWeb := hello
	helloWeb.Policy = "ns:web"
	helloBare := helloNoTag
	helloBare.Policy = "ns:web"
	const (
		name   = ` # {"$imagepolicy": "ns:web:name"}`
		tag    = ` # {"$imagepolicy": "ns:web:tag"}`
		digest = ` # {"$imagepolicy": "ns:web:digest"}`
	)
	for _, tc := range []struct {
		name    string
		values  string // the lines of a values image map, from line 10
		targets []Target
		want    string // the map after, or the error
	}{
		{"tag beside a repository", "repository: 127.0.0.1:5000/team/hello\ntag: v1" + tag, []Target{hello},
			"repository: 127.0.0.1:5000/team/hello\ntag: v2@" + digestHello + tag},
		{"tag and digest", "repository: 127.0.0.1:5000/team/hello" + name + "\ntag: v1" + tag + "\ndigest: \"\"" + digest, []Target{hello},
			"repository: 127.0.0.1:5000/team/hello" + name + "\ntag: v2" + tag + "\ndigest: \"" + digestHello + "\"" + digest},
		{"registry and repository", "registry: 127.0.0.1:5000\nrepository: team/hello\ntag: v1" + tag, []Target{hello},
			"registry: 127.0.0.1:5000\nrepository: team/hello\ntag: v2@" + digestHello + tag},
		{"name renamed by the policy", "repository: nginx" + name + "\ntag: v1" + tag, []Target{helloWeb},
			"repository: 127.0.0.1:5000/team/hello" + name + "\ntag: v2@" + digestHello + tag},
		{"numeric tag is quoted", "repository: 127.0.0.1:5000/team/hello" + name + "\ntag: '0.9'" + tag + "\ndigest: x" + digest, []Target{helloNum},
			"repository: 127.0.0.1:5000/team/hello" + name + "\ntag: '1.0'" + tag + "\ndigest: " + digestHello + digest},
		{"a target without a tag keeps the tag", "repository: 127.0.0.1:5000/team/hello\ntag: v1@" + digestOld + tag, []Target{helloNoTag},
			"repository: 127.0.0.1:5000/team/hello\ntag: v1@" + digestHello + tag},
		{"no repository: policy needed", "tag: v1" + tag, []Target{hello}, "tag: v1" + tag},
		{"no repository: policy given", "tag: v1" + tag, []Target{helloWeb}, "tag: v2@" + digestHello + tag},
		{"unmarked digest would win", "repository: 127.0.0.1:5000/team/hello\ntag: v1" + tag + "\ndigest: " + digestOld, []Target{hello},
			"error: digest \"" + digestOld + "\" beside the field marked ns:web:tag is not marked"},
		{"unmarked repository disagrees with the policy", "repository: nginx\ntag: v1" + tag, []Target{helloWeb},
			"error: field marked ns:web:tag is to be pinned to 127.0.0.1:5000/team/hello, but the image it belongs to is nginx"},
		{"two tags", "repository: 127.0.0.1:5000/team/hello\ntag: v1" + tag + "\nversion: v1" + tag, []Target{hello},
			"error: lines 11 and 12 are both marked ns:web:tag"},
		{"no tag to keep", "repository: 127.0.0.1:5000/team/hello\ntag: ''" + tag, []Target{helloBare},
			"error: field marked ns:web:tag is empty and 127.0.0.1:5000/team/hello comes without a tag"},
		{"placeholder tag to keep", "repository: 127.0.0.1:5000/team/hello\ntag: '{TAG}'" + tag, []Target{helloBare},
			"error: field marked ns:web:tag holds \"{TAG}\", which is not a tag"},
		{"block scalar", "repository: 127.0.0.1:5000/team/hello\ntag: |-" + tag + "\n  v1", []Target{hello},
			"error: pin.yaml:11: field marked ns:web:tag for 127.0.0.1:5000/team/hello: written as a block scalar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const head = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\nspec:\n  chart: {spec: {chart: web}}\n  values:\n    replicas: 2\n    image:\n"
			indent := func(s string) string { return "      " + strings.ReplaceAll(s, "\n", "\n      ") + "\n" }
			in := head + indent(tc.values)
			got, _, err := RewriteFile("pin.yaml", []byte(in), tc.targets)
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("RewriteFile = %v; want an error containing %q\n%s", err, want, in)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, in)
			}
			want := head + indent(tc.want)
			if diff := cmp.Diff(want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// ErrNotReferenced still fires when markers keep an image from being
// pinned, and says where and why.
func TestPinSetterNotReferenced(t *testing.T) {
	helloWeb := hello
	helloWeb.Policy = "flux-system:web"
	marked := "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n" +
		"      - image: nginx:1.25 # {\"$imagepolicy\": \"flux-system:nginx\"}\n" +
		"      - image: 127.0.0.1:5000/team/hello:v1\n"
	for _, tc := range []struct {
		name    string
		file    string
		targets []Target
		want    string
	}{
		{"unmarked image in a file with markers", marked, []Target{hello},
			"apps/web/d.yaml:7 refers to 127.0.0.1:5000/team/hello but is not marked"},
		{"marked for another policy", "kind: Pod\nspec:\n  containers:\n  - image: 127.0.0.1:5000/team/hello:v1 # {\"$imagepolicy\": \"flux-system:api\"}\n",
			[]Target{helloWeb}, "apps/web/d.yaml:4 is marked flux-system:api, but 127.0.0.1:5000/team/hello was given with policy flux-system:web"},
		{"tag without its image", "kind: HelmRelease\nspec:\n  values:\n    image:\n      tag: v1 # {\"$imagepolicy\": \"flux-system:web:tag\"}\n",
			[]Target{hello}, "apps/web/d.yaml:5 is marked flux-system:web:tag, and ferry cannot tell its image"},
		{"placeholder in the repository", "kind: Pod\nspec:\n  containers:\n  - image: 127.0.0.1:5000/TEAM/hello:v1\n",
			[]Target{hello}, "image not referenced under apps: 127.0.0.1:5000/team/hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"apps/web/d.yaml": {Data: []byte(tc.file)}}
			_, err := Pin(fsys, "apps", tc.targets)
			if !errors.Is(err, ErrNotReferenced) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Pin = %v; want ErrNotReferenced containing %q", err, tc.want)
			}
		})
	}
}

// Images reads marked fields, and in a file with markers nothing else.
func TestImagesSetters(t *testing.T) {
	read := func(dir string) []byte { return readFile(t, rewriteDir+"/"+dir+"/input.yaml") }
	fsys := fstest.MapFS{
		"a/full.yaml":          {Data: read("setter-full")},
		"a/mixed.yaml":         {Data: read("setter-mixed")},
		"a/parts.yaml":         {Data: read("setter-name-tag")},
		"a/tag.yaml":           {Data: read("setter-tag")},
		"b/helmrelease.yaml":   {Data: read("setter-digest")},
		"b/kustomization.yml":  {Data: read("setter-kustomization")},
		"b/unknown-image.yaml": {Data: []byte("kind: X\nspec:\n  tag: v1 # {\"$imagepolicy\": \"ns:x:tag\"}\n")},
	}
	got, err := Images(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, r := range got {
		if r.Kind != KindSetter {
			t.Errorf("%+v: kind %q, want %q", r, r.Kind, KindSetter)
		}
		summary = append(summary, fmt.Sprintf("%s %s %s|%s|%s", r.File, r.Value, r.Repo, r.Tag, r.Digest))
	}
	const p = "ghcr.io/stefanprodan/podinfo"
	want := []string{
		"a/full.yaml " + p + ":5.0.0 " + p + "|5.0.0|",
		"a/full.yaml docker.io/golang:1.15.6 index.docker.io/library/golang|1.15.6|",
		"a/full.yaml " + p + ":5.0.0 " + p + "|5.0.0|",
		// The unmarked initContainer is not read.
		"a/mixed.yaml image:v1.0.0 index.docker.io/library/image|v1.0.0|",
		"a/mixed.yaml image:v1.0.0 index.docker.io/library/image|v1.0.0|",
		"a/parts.yaml " + p + ":5.0.0 " + p + "|5.0.0|",
		"a/parts.yaml " + p + ":5.0.0 " + p + "|5.0.0|",
		"a/tag.yaml " + p + ":5.0.0 " + p + "|5.0.0|",
		"a/tag.yaml " + p + ":5.0.0 " + p + "|5.0.0|",
		"a/tag.yaml " + p + ":latest " + p + "|latest|",
		"a/tag.yaml " + p + ":latest " + p + "|latest|",
		"b/helmrelease.yaml ghcr.io/my-org/my-app:4.0.6@sha256:6129bb944cada32b4662eafd13fd9904d34c77286bf2ec4523eaedb711757cb0 ghcr.io/my-org/my-app|4.0.6|sha256:6129bb944cada32b4662eafd13fd9904d34c77286bf2ec4523eaedb711757cb0",
		"b/kustomization.yml replaced:v1 index.docker.io/library/replaced|v1|",
		"b/kustomization.yml image@sha256:1234567890abcdef index.docker.io/library/image||sha256:1234567890abcdef",
		"b/kustomization.yml image index.docker.io/library/image||",
		// unknown-image.yaml: a tag whose image cannot be told is not read.
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("Images (-want +got):\n%s", diff)
	}
}

// kustomize renders a newTag that ferry wrote through a :tag marker
// (tag@digest) as one image: the name, the tag and the digest.
func TestSetterKustomizationBuilds(t *testing.T) {
	kust := "resources:\n- deploy.yaml\nimages:\n- name: hello\n  newName: 127.0.0.1:5000/team/hello # {\"$imagepolicy\": \"ns:hello:name\"}\n  newTag: v1 # {\"$imagepolicy\": \"ns:hello:tag\"}\n"
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: hello\nspec:\n  template:\n    spec:\n      containers:\n      - name: hello\n        image: hello\n"
	fsys := fstest.MapFS{"app/kustomization.yaml": {Data: []byte(kust)}, "app/deploy.yaml": {Data: []byte(deploy)}}
	res, err := Pin(fsys, "app", []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	if _, changed := res.Files["app/deploy.yaml"]; changed {
		t.Error("deploy.yaml changed; its image is the kustomization's to set")
	}
	fsys["app/kustomization.yaml"] = &fstest.MapFile{Data: res.Files["app/kustomization.yaml"]}
	out, err := Build(context.Background(), fsys, "app")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "image: "+hello.Ref()+"\n") {
		t.Errorf("kustomize build does not show %s:\n%s", hello.Ref(), out)
	}
}

// A tag with no repository beside it belongs to the image the file's other
// markers of its policy name; when the policy renames that image, the tag's
// reference is reported under the new name, as the re-scan reads it. (The
// tag is quoted: a plain 1.25 is a number, which the rewriter refuses to
// turn into a string.)
func TestSetterPolicyRenamesFileBinding(t *testing.T) {
	helloWeb := hello
	helloWeb.Policy = "flux-system:web"
	in := "kind: HelmRelease\nmetadata:\n  annotations:\n    event.toolkit.fluxcd.io/image: nginx:1.25 # {\"$imagepolicy\": \"flux-system:web\"}\n" +
		"spec:\n  values:\n    image:\n      tag: \"1.25\" # {\"$imagepolicy\": \"flux-system:web:tag\"}\n"
	got, changes, err := RewriteFile("hr.yaml", []byte(in), []Target{helloWeb})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer("nginx:1.25", hello.Ref(), `tag: "1.25"`, `tag: "v2@`+digestHello+`"`).Replace(in)
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var summary []string
	for _, c := range changes {
		summary = append(summary, fmt.Sprintf("%d %s -> %s", c.Line, c.Old, c.New))
	}
	wantChanges := []string{
		"4 nginx:1.25 -> " + hello.Ref(),
		"8 nginx:1.25 -> " + hello.Ref(),
	}
	if diff := cmp.Diff(wantChanges, summary); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

// A policy is NAMESPACE:NAME, and names one image.
func TestTargetPolicyErrors(t *testing.T) {
	withPolicy := func(t Target, p string) Target { t.Policy = p; return t }
	for _, tc := range []struct {
		name    string
		targets []Target
		want    string
	}{
		{"no namespace", []Target{withPolicy(hello, "hello")}, `policy "hello" is not NAMESPACE:NAME`},
		{"a part", []Target{withPolicy(hello, "ns:hello:tag")}, `policy "ns:hello:tag" is not NAMESPACE:NAME`},
		{"capitals", []Target{withPolicy(hello, "Flux-System:hello")}, "is not NAMESPACE:NAME"},
		{"two images", []Target{withPolicy(hello, "ns:web"), withPolicy(nginx, "ns:web")}, "name the same policy ns:web"},
		{"one image, two policies", []Target{withPolicy(hello, "ns:a"), withPolicy(hello, "ns:b")}, "name the same repository with different tags, digests or policies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := RewriteFile("pod.yaml", []byte("kind: Pod\n"), tc.targets)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RewriteFile = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
