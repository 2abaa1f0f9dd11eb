package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const (
	pinDeploy = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
      - name: hello
        image: 127.0.0.1:5000/team/hello:v1 # app
      - name: web
        image: nginx:1.25
`
	pinKustomization = `resources:
- deploy.yaml
images:
- name: 127.0.0.1:5000/team/hello
  newTag: v1
`
)

func pinTree() fstest.MapFS {
	return fstest.MapFS{
		"apps/hello/deploy.yaml":        {Data: []byte(pinDeploy)},
		"apps/hello/kustomization.yaml": {Data: []byte(pinKustomization)},
		"apps/hello/README.md":          {Data: []byte("image: 127.0.0.1:5000/team/hello:v1\n")},
		"apps/hello/notes.txt":          {Data: []byte("[not yaml\n")},
		"apps/hello.yaml":               {Data: []byte(pinDeploy)},
		"apps/other/deploy.yaml":        {Data: []byte(pinDeploy)},
		"apps/other/broken.yaml":        {Data: []byte("kind: [\n")},
		"apps/unrelated/svc.yml":        {Data: []byte("kind: Service\nmetadata: {name: svc}\n")},
	}
}

// summarize renders changes as "file:line old" for compact comparison.
func summarize(changes []Change) []string {
	var s []string
	for _, c := range changes {
		s = append(s, fmt.Sprintf("%s:%d %s", c.File, c.Line, c.Old))
	}
	return s
}

func TestPinScope(t *testing.T) {
	fsys := pinTree()
	res, err := Pin(fsys, "apps/hello", []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"apps/hello/deploy.yaml", "apps/hello/kustomization.yaml"}
	if diff := cmp.Diff(wantFiles, slices.Sorted(maps.Keys(res.Files))); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	wantChanges := []string{
		"apps/hello/deploy.yaml:10 127.0.0.1:5000/team/hello:v1",
		"apps/hello/kustomization.yaml:4 127.0.0.1:5000/team/hello:v1",
	}
	if diff := cmp.Diff(wantChanges, summarize(res.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	wantDeploy := strings.Replace(pinDeploy, "127.0.0.1:5000/team/hello:v1", hello.Ref(), 1)
	if diff := cmp.Diff(wantDeploy, string(res.Files["apps/hello/deploy.yaml"])); diff != "" {
		t.Errorf("deploy.yaml (-want +got):\n%s", diff)
	}
	wantKust := strings.Replace(pinKustomization, "newTag: v1\n", "newTag: v2\n  digest: "+digestHello+"\n", 1)
	if diff := cmp.Diff(wantKust, string(res.Files["apps/hello/kustomization.yaml"])); diff != "" {
		t.Errorf("kustomization.yaml (-want +got):\n%s", diff)
	}
	// Pin reads; it must not have changed the tree it was given.
	if diff := cmp.Diff(pinDeploy, string(fsys["apps/hello/deploy.yaml"].Data)); diff != "" {
		t.Errorf("input tree modified (-want +got):\n%s", diff)
	}
}

func TestPinWholeTreeUnparsable(t *testing.T) {
	_, err := Pin(pinTree(), ".", []Target{hello})
	if err == nil || !strings.Contains(err.Error(), "apps/other/broken.yaml") {
		t.Fatalf("Pin(.) error = %v, want one naming apps/other/broken.yaml", err)
	}
}

func TestPinNotReferenced(t *testing.T) {
	_, err := Pin(pinTree(), "apps/unrelated", []Target{hello, gar})
	if !errors.Is(err, ErrNotReferenced) {
		t.Fatalf("error = %v, want ErrNotReferenced", err)
	}
	for _, want := range []string{hello.Repo, gar.Repo, "apps/unrelated"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}

	// One referenced target does not excuse another.
	_, err = Pin(pinTree(), "apps/hello", []Target{hello, gar})
	if !errors.Is(err, ErrNotReferenced) || !strings.Contains(err.Error(), gar.Repo) || strings.Contains(err.Error(), hello.Repo+",") {
		t.Errorf("error = %v, want ErrNotReferenced naming only %s", err, gar.Repo)
	}
}

func TestPinAlreadyPinned(t *testing.T) {
	first, err := Pin(pinTree(), "apps/hello", []Target{hello, nginx})
	if err != nil {
		t.Fatal(err)
	}
	pinned := pinTree()
	for p, data := range first.Files {
		pinned[p] = &fstest.MapFile{Data: data}
	}
	res, err := Pin(pinned, "apps/hello", []Target{hello, nginx})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 0 {
		t.Errorf("Files = %v, want none", slices.Sorted(maps.Keys(res.Files)))
	}
	if len(res.Changes) != len(first.Changes) {
		t.Errorf("%d changes, want %d", len(res.Changes), len(first.Changes))
	}
	for _, c := range res.Changes {
		if c.Old != c.New {
			t.Errorf("%+v: Old != New on an already pinned tree", c)
		}
	}
}

func TestPinMultipleTargetsOrder(t *testing.T) {
	fsys := pinTree()
	delete(fsys, "apps/other/broken.yaml")
	res, err := Pin(fsys, "apps", []Target{nginx, hello})
	if err != nil {
		t.Fatal(err)
	}
	// Path order, then line order: "apps/hello.yaml" sorts before "apps/hello/...".
	want := []string{
		"apps/hello.yaml:10 127.0.0.1:5000/team/hello:v1",
		"apps/hello.yaml:12 nginx:1.25",
		"apps/hello/deploy.yaml:10 127.0.0.1:5000/team/hello:v1",
		"apps/hello/deploy.yaml:12 nginx:1.25",
		"apps/hello/kustomization.yaml:4 127.0.0.1:5000/team/hello:v1",
		"apps/other/deploy.yaml:10 127.0.0.1:5000/team/hello:v1",
		"apps/other/deploy.yaml:12 nginx:1.25",
	}
	if diff := cmp.Diff(want, summarize(res.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	for _, c := range res.Changes {
		wantRepo := hello.Repo
		if strings.HasPrefix(c.Old, "nginx") {
			wantRepo = nginx.Repo
		}
		if c.Repo != wantRepo {
			t.Errorf("%+v: Repo = %q, want %q", c, c.Repo, wantRepo)
		}
	}
	if len(res.Files) != 4 {
		t.Errorf("Files = %v, want 4", slices.Sorted(maps.Keys(res.Files)))
	}
}

func TestPinSymlinks(t *testing.T) {
	fsys := pinTree()
	// A link inside the scope to a file outside it, and a link to a directory.
	fsys["apps/unrelated/link.yaml"] = &fstest.MapFile{Data: []byte("../hello/deploy.yaml"), Mode: fs.ModeSymlink | 0o777}
	fsys["apps/unrelated/linkdir"] = &fstest.MapFile{Data: []byte("../hello"), Mode: fs.ModeSymlink | 0o777}
	fsys["apps/linked"] = &fstest.MapFile{Data: []byte("hello"), Mode: fs.ModeSymlink | 0o777}

	_, err := Pin(fsys, "apps/unrelated", []Target{hello})
	if !errors.Is(err, ErrNotReferenced) {
		t.Errorf("Pin through links: error = %v, want ErrNotReferenced (links not followed)", err)
	}

	_, err = Pin(fsys, "apps/linked", []Target{hello})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Pin(apps/linked) error = %v, want a refusal of the symbolic link", err)
	}
	_, err = Pin(fsys, "apps/linked/deploy.yaml", []Target{hello})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Pin(apps/linked/deploy.yaml) error = %v, want a refusal of the symbolic link", err)
	}
}

func TestPinBadDir(t *testing.T) {
	for _, dir := range []string{"../apps", "/apps", "apps/", "apps/../apps", "", "apps/missing"} {
		if _, err := Pin(pinTree(), dir, []Target{hello}); err == nil {
			t.Errorf("Pin(%q) succeeded, want an error", dir)
		}
	}
}

func TestPinSingleFile(t *testing.T) {
	res, err := Pin(pinTree(), "apps/hello/deploy.yaml", []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"apps/hello/deploy.yaml"}, slices.Sorted(maps.Keys(res.Files))); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestPinFileTooLarge(t *testing.T) {
	fsys := pinTree()
	fsys["apps/hello/big.yaml"] = &fstest.MapFile{Data: make([]byte, MaxFileSize+1)}
	_, err := Pin(fsys, "apps/hello", []Target{hello})
	if err == nil || !strings.Contains(err.Error(), "apps/hello/big.yaml") || !strings.Contains(err.Error(), "limit") {
		t.Errorf("error = %v, want one naming apps/hello/big.yaml and the limit", err)
	}
}

// What validation reads, pinning writes: a manifest named x.YAML is
// validated (build.go) and so must be pinned and read too, not skipped.
func TestManifestNamesAnyCase(t *testing.T) {
	fsys := fstest.MapFS{"apps/hello/Deploy.YAML": {Data: []byte(pinDeploy)}, "apps/hello/svc.Yml": {Data: []byte(pinDeploy)}}
	target := Target{Repo: "127.0.0.1:5000/team/hello", Tag: "v2", Digest: "sha256:" + strings.Repeat("ab", 32)}
	res, err := Pin(fsys, "apps", []Target{target})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(res.Files)); !slices.Equal(got, []string{"apps/hello/Deploy.YAML", "apps/hello/svc.Yml"}) {
		t.Errorf("pinned %v", got)
	}
	refs, err := Images(fsys, "apps")
	if err != nil || len(refs) != 4 {
		t.Errorf("Images read %d references (%v), want 4", len(refs), err)
	}
	for _, n := range []string{"x.yaml", "x.YML", "Kustomization", "kustomization.yml"} {
		if !IsManifest(n) {
			t.Errorf("IsManifest(%q) = false", n)
		}
	}
	for _, n := range []string{"x.json", "README.md", "kustomization"} {
		if IsManifest(n) {
			t.Errorf("IsManifest(%q) = true", n)
		}
	}
}

// A field spec is data: an image field no default covers (a custom kind's,
// as a kustomize configurations file declares it) is read and pinned by
// adding an entry, with no new code path.
func TestFieldSpecIsData(t *testing.T) {
	mykind := `apiVersion: config/v1
kind: MyKind
spec:
  runLatest:
    container:
      image: 127.0.0.1:5000/team/hello:v1 # app
`
	fields := compileFields(append(DefaultFieldSpecs(), FieldSpec{Kinds: []string{"MyKind"}, Path: "spec/runLatest/container/image"}))
	containers := slices.IndexFunc(fields, func(f field) bool { return f.Form == FormImage && strings.Contains(f.Path, "containers") })
	if got := fields[containers].steps; !cmp.Equal(got, [][]string{{"**"}, {"containers", "initContainers", "ephemeralContainers"}, nil, {"image"}}) {
		t.Errorf("steps of the containers spec: %q", got)
	}
	docs, err := decodeAll([]byte(mykind))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, fs := range [][]field{defaultFields, fields} {
		n := 0
		if err := sites("r.yaml", docs[0].Content[0], false, fs, func(st site) error {
			if st.field.Form == FormImage {
				n++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		found = append(found, fmt.Sprint(n))
	}
	if !slices.Equal(found, []string{"0", "1"}) {
		t.Errorf("image sites in a MyKind without and with its spec: %v, want [0 1]", found)
	}
}

// The rewriter's last check: only image values may change, never the
// keys, kinds or scalar types around them.
func TestSameShape(t *testing.T) {
	tests := []struct {
		before, after, wantErr string
	}{
		{"image: r/a:v1\ntag: \"1.10\"\n", "image: r/a:v2@sha256:x\ntag: \"1.11\"\n", ""},
		{"- name: r/a\n  newTag: v1\n", "- name: r/a\n  newTag: v2\n  digest: sha256:x\n", ""},
		{"tag: \"1.10\"\n", "tag: 1.10\n", `!!str "1.10" became !!float "1.10"`},
		{"a: 1\nb: 2\n", "a: 1\n", `key "b" is gone`},
		{"a: 1\n", "a: 1\nb: 2\n", `key "b" appeared`},
		{"a: [x, y]\n", "a: [x]\n", "2 items became 1"},
		{"a: {b: c}\n", "a: d\n", "a map became a scalar"},
	}
	for _, tc := range tests {
		a, err := decodeAll([]byte(tc.before))
		if err != nil {
			t.Fatal(err)
		}
		b, err := decodeAll([]byte(tc.after))
		if err != nil {
			t.Fatal(err)
		}
		err = sameShape(a[0], b[0], "")
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("sameShape(%q, %q) = %v, want %q", tc.before, tc.after, err, tc.wantErr)
		}
	}
}
