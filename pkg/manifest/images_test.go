package manifest

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestImages(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	fsys := fstest.MapFS{
		"apps/hello/kustomization.yaml": {Data: []byte("resources: [d.yaml]\nimages:\n  - name: hello\n    newName: r.example/team/hello\n    newTag: v2\n    digest: " + d1 + "\n")},
		"apps/hello/d.yaml":             {Data: []byte("kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: r.example/team/hello:v1\n        - image: nginx:1.27\n        - image: hello\n")},
		"apps/job/cron.yaml":            {Data: []byte("kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers:\n            - image: r.example/team/job@" + d1 + "\n")},
		"apps/job/broken.yaml":          {Data: []byte("kind: [\n")},
		"apps/job/cm.yaml":              {Data: []byte("kind: ConfigMap\ndata:\n  image: r.example/not/this:v1\n")},
		"other/x.yaml":                  {Data: []byte("kind: Pod\nspec:\n  containers:\n    - image: r.example/outside:v1\n")},
	}
	got, err := Images(fsys, "apps")
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{File: "apps/hello/d.yaml", Kind: KindContainer, Repo: "r.example/team/hello", Tag: "v1", Value: "r.example/team/hello:v1"},
		{File: "apps/hello/d.yaml", Kind: KindContainer, Repo: "index.docker.io/library/nginx", Tag: "1.27", Value: "nginx:1.27"},
		{File: "apps/hello/d.yaml", Kind: KindContainer, Repo: "index.docker.io/library/hello", Value: "hello"},
		{File: "apps/hello/kustomization.yaml", Kind: KindKustomization, Repo: "r.example/team/hello", Tag: "v2", Digest: d1, Value: "r.example/team/hello:v2@" + d1, Replaces: "index.docker.io/library/hello"},
		{File: "apps/job/cron.yaml", Kind: KindContainer, Repo: "r.example/team/job", Digest: d1, Value: "r.example/team/job@" + d1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Images (-want +got):\n%s", diff)
	}
	eff := Effective(got)
	if eff["r.example/team/hello"].Tag != "v2" || len(eff) != 3 {
		t.Errorf("Effective = %+v", eff)
	}
	if _, err := Images(fsys, "missing"); err == nil {
		t.Error("missing dir: no error")
	}
}

// failingFS fails to read one file, as a blob fetch that breaks would.
type failingFS struct {
	fstest.MapFS
	bad string
}

func (f failingFS) Open(name string) (fs.File, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("connection reset")}
	}
	return f.MapFS.Open(name)
}

func (f failingFS) ReadFile(name string) ([]byte, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("connection reset")}
	}
	return f.MapFS.ReadFile(name)
}

// A file that cannot be read is an error, not a file without images: a
// diff or a guard built on the list must not take it for complete.
func TestImagesFailsClosed(t *testing.T) {
	fsys := failingFS{MapFS: fstest.MapFS{
		"apps/hello/a.yaml": {Data: []byte("kind: Pod\nspec:\n  containers:\n    - image: r.example/a:v1\n")},
		"apps/hello/b.yaml": {Data: []byte("kind: Pod\nspec:\n  containers:\n    - image: r.example/b:v1\n")},
	}, bad: "apps/hello/b.yaml"}
	refs, err := Images(fsys, "apps")
	if err == nil || !strings.Contains(err.Error(), "apps/hello/b.yaml") {
		t.Errorf("Images over an unreadable file = %v, %v; want an error naming it", refs, err)
	}
}

// A renamed image whose entry sets no tag shows the tag it renders with:
// the container's (Online Boutique's adservice, for one).
func TestEffectiveRenamedKeepsTag(t *testing.T) {
	fsys := fstest.MapFS{
		"app/kustomization.yaml": {Data: []byte("resources: [d.yaml]\nimages:\n- name: adservice\n  newName: us-docker.pkg.dev/acme/boutique/adservice\n")},
		"app/d.yaml":             {Data: []byte("kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: adservice:v0.10.6\n")},
	}
	refs, err := Images(fsys, "app")
	if err != nil {
		t.Fatal(err)
	}
	eff := Effective(refs)
	got := eff["us-docker.pkg.dev/acme/boutique/adservice"]
	if got.Tag != "v0.10.6" || got.Value != "us-docker.pkg.dev/acme/boutique/adservice:v0.10.6" || len(eff) != 1 {
		t.Errorf("Effective = %+v", eff)
	}
}
