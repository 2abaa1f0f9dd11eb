package manifest

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// loadTree reads a directory of testdata into memory.
func loadTree(t testing.TB, dir string) fstest.MapFS {
	t.Helper()
	tree := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		tree[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// A Helm chart under --path used to fail every deploy in scope: its
// templates were parsed as YAML ("parsing helm-guestbook/templates/
// deployment.yaml: yaml: line 40: could not find expected ':'"). Pin,
// Images and Validate now read the chart as Helm does: values.yaml is
// values, the templates are no YAML at all.
func TestPinChartInScope(t *testing.T) {
	tree := loadTree(t, filepath.Join(helmDir, "chart-tree"))
	const tmpl = "helm-guestbook/templates/deployment.yaml"
	if _, err := decodeAll(tree[tmpl].Data); err == nil {
		t.Fatalf("%s parses as YAML; the test needs a template that does not", tmpl)
	}
	// A Go template outside templates/ is skipped too; one outside a chart is not.
	tree["helm-guestbook/ci/extra.yaml"] = tree[tmpl]

	res, err := Pin(tree, ".", []Target{e2e})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"apps/hello/deployment.yaml:14 quay.io/argoprojlabs/argocd-e2e-container:0.1",
		"apps/hello/kustomization.yaml:4 quay.io/argoprojlabs/argocd-e2e-container:0.1",
		"helm-guestbook/values.yaml:8 quay.io/argoprojlabs/argocd-e2e-container:0.1",
	}
	if diff := cmp.Diff(want, summarize(res.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if got := slices.Sorted(maps.Keys(res.Files)); !slices.Equal(got, []string{"apps/hello/deployment.yaml", "apps/hello/kustomization.yaml", "helm-guestbook/values.yaml"}) {
		t.Errorf("files written: %q", got)
	}
	wantValues := strings.Replace(string(tree["helm-guestbook/values.yaml"].Data), "tag: 0.1\n", "tag: 0.2@"+digestHello+"\n", 1)
	if diff := cmp.Diff(wantValues, string(res.Files["helm-guestbook/values.yaml"])); diff != "" {
		t.Errorf("values.yaml (-want +got):\n%s", diff)
	}

	// Scoped to the chart alone.
	if res, err := Pin(tree, "helm-guestbook", []Target{e2e}); err != nil || len(res.Changes) != 1 {
		t.Errorf("Pin(helm-guestbook) = %+v, %v; want the values.yaml change", res, err)
	}
	// Scoped to the templates: nothing there to pin.
	if _, err := Pin(tree, "helm-guestbook/templates", []Target{e2e}); !errors.Is(err, ErrNotReferenced) {
		t.Errorf("Pin(templates) = %v, want ErrNotReferenced", err)
	}

	// Validation of a change touching every file of the chart, templates
	// included (as a promote copying the directory would).
	for p, b := range res.Files {
		tree[p] = &fstest.MapFile{Data: b}
	}
	var all []string
	for p := range tree {
		all = append(all, p)
	}
	slices.Sort(all)
	if err := Validate(t.Context(), tree, all); err != nil {
		t.Errorf("Validate over the chart and the app: %v", err)
	}
	// Outside a chart, a file that does not parse is still an error.
	tree["plain/broken.yaml"] = tree[tmpl]
	if err := Validate(t.Context(), tree, []string{"plain/broken.yaml"}); err == nil {
		t.Error("Validate(plain/broken.yaml) = nil, want a parse error")
	}
	if _, err := Pin(tree, "plain", []Target{e2e}); err == nil || !strings.Contains(err.Error(), "parsing plain/broken.yaml") {
		t.Errorf("Pin(plain) = %v, want a parse error", err)
	}

	refs, err := Images(tree, "helm-guestbook")
	if err != nil {
		t.Fatal(err)
	}
	wantRefs := []Ref{{File: "helm-guestbook/values.yaml", Kind: KindHelmValues, Repo: e2e.Repo, Tag: "0.2", Digest: digestHello, Value: e2e.Ref()}}
	if diff := cmp.Diff(wantRefs, refs); diff != "" {
		t.Errorf("Images (-want +got):\n%s", diff)
	}
}

// values*.yaml are values only beside a Chart.yaml; other files are values
// when WithValuesFiles names them, by base name or by path.
func TestPinValuesFiles(t *testing.T) {
	const values = "image:\n  repository: 127.0.0.1:5000/team/hello\n  tag: v1\n"
	tree := fstest.MapFS{
		"charts/hello/Chart.yaml":        {Data: []byte("apiVersion: v2\nname: hello\nversion: 0.1.0\n")},
		"charts/hello/values.yaml":       {Data: []byte(values)},
		"charts/hello/values-prod.yml":   {Data: []byte(values)},
		"charts/hello/files/values.yaml": {Data: []byte(values)}, // not beside Chart.yaml
		"envs/prod/values.yaml":          {Data: []byte(values)},
		"envs/prod/hello.values.yaml":    {Data: []byte(values)},
		"envs/dev/values.yaml":           {Data: []byte(values)},
	}
	files := func(opts ...PinOption) []string {
		t.Helper()
		res, err := Pin(tree, ".", []Target{hello}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(res.Files))
	}
	if diff := cmp.Diff([]string{"charts/hello/values-prod.yml", "charts/hello/values.yaml"}, files()); diff != "" {
		t.Errorf("by layout (-want +got):\n%s", diff)
	}
	got := files(WithValuesFiles("envs/prod/*.yaml"), WithValuesFiles("*.values.yaml"))
	want := []string{"charts/hello/values-prod.yml", "charts/hello/values.yaml", "envs/prod/hello.values.yaml", "envs/prod/values.yaml"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with WithValuesFiles (-want +got):\n%s", diff)
	}
	if _, err := Pin(tree, ".", []Target{hello}, WithValuesFiles("[")); err == nil || !strings.Contains(err.Error(), `values file pattern "["`) {
		t.Errorf("bad pattern: %v", err)
	}
	if _, err := Images(tree, ".", WithImageFields("a..b")); err == nil || !strings.Contains(err.Error(), `image field "a..b"`) {
		t.Errorf("bad image field: %v", err)
	}
}

func TestImagesHelm(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	fsys := fstest.MapFS{
		"charts/web/Chart.yaml":            {Data: []byte("apiVersion: v2\nname: web\nversion: 1.0.0\n")},
		"charts/web/values.yaml":           {Data: []byte("image:\n  registry: r.example\n  repository: team/web\n  tag: v1\n  digest: " + d1 + "\nsidecars:\n- name: proxy\n  image: nginx:1.27\ncache:\n  repository: redis\n  tag: \"7.2\"\n")},
		"charts/web/templates/deploy.yaml": {Data: []byte("image: {{ .Values.image.repository }}\n")},
		"flux/release.yaml":                {Data: []byte("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image:\n      repository: r.example/team/api\n      tag: v2@" + d1 + "\n")},
		"flux/other.yaml":                  {Data: []byte("apiVersion: example.com/v1\nkind: HelmRelease\nspec:\n  values:\n    image: r.example/not/this:v1\n")},
		"argo/app.yaml":                    {Data: []byte("apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    helm:\n      values: |\n        image:\n          repository: r.example/team/job\n          tag: v3\n      parameters:\n      - name: worker.image.repository\n        value: r.example/team/worker\n      - name: worker.image.tag\n        value: v4\n    kustomize:\n      images:\n      - hello=r.example/team/hello:v5\n")},
		"argo/broken.yaml":                 {Data: []byte("apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    helm:\n      values: |\n        image: [\n")},
		"argo/.argocd-source.yaml":         {Data: []byte("helm:\n  parameters:\n  - name: image\n    value: r.example/team/cli:v6\n")},
		"argo/deploy.yaml":                 {Data: []byte("kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: hello:v0\n")},
	}
	got, err := Images(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{File: "argo/.argocd-source.yaml", Kind: KindHelmParameter, Repo: "r.example/team/cli", Tag: "v6", Value: "r.example/team/cli:v6"},
		{File: "argo/app.yaml", Kind: KindHelmValues, Repo: "r.example/team/job", Tag: "v3", Value: "r.example/team/job:v3"},
		{File: "argo/app.yaml", Kind: KindHelmParameter, Repo: "r.example/team/worker", Tag: "v4", Value: "r.example/team/worker:v4"},
		{File: "argo/app.yaml", Kind: KindArgoKustomize, Repo: "r.example/team/hello", Tag: "v5", Value: "hello=r.example/team/hello:v5", Replaces: "index.docker.io/library/hello"},
		{File: "argo/deploy.yaml", Kind: KindContainer, Repo: "index.docker.io/library/hello", Tag: "v0", Value: "hello:v0"},
		{File: "charts/web/values.yaml", Kind: KindHelmValues, Repo: "r.example/team/web", Tag: "v1", Digest: d1, Value: "r.example/team/web:v1@" + d1},
		{File: "charts/web/values.yaml", Kind: KindHelmValues, Repo: "index.docker.io/library/nginx", Tag: "1.27", Value: "nginx:1.27"},
		{File: "charts/web/values.yaml", Kind: KindHelmValues, Repo: "index.docker.io/library/redis", Tag: "7.2", Value: "redis:7.2"},
		{File: "flux/release.yaml", Kind: KindHelmValues, Repo: "r.example/team/api", Tag: "v2", Digest: d1, Value: "r.example/team/api:v2@" + d1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Images (-want +got):\n%s", diff)
	}
	eff := Effective(got)
	if _, ok := eff["index.docker.io/library/hello"]; ok {
		t.Errorf("Effective keeps the container that kustomize.images renames: %+v", eff)
	}
	for _, repo := range []string{"r.example/team/web", "r.example/team/api", "r.example/team/job", "r.example/team/worker", "r.example/team/hello", "r.example/team/cli"} {
		if _, ok := eff[repo]; !ok {
			t.Errorf("Effective lacks %s", repo)
		}
	}
}

func TestRewriteHelmErrors(t *testing.T) {
	globalValues := string(readFile(t, filepath.Join(helmDir, "global-registry", "input.yaml")))
	app := func(helm string) string {
		return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    helm:\n" + helm
	}
	for _, tc := range []struct {
		name    string
		file    string
		data    string
		opts    []PinOption
		targets []Target
		want    string // substring of the error
	}{
		{"global registry, mirror target", "values.yaml", globalValues, []PinOption{WithValuesFiles("values.yaml")}, []Target{mirrorNginx},
			`values.yaml:5: image names docker.io/bitnami/nginx, or mirror.example.com/bitnami/nginx with global.imageRegistry "mirror.example.com", depending on the chart's templates; refusing to guess`},
		{"global registry, own target", "values.yaml", globalValues, []PinOption{WithValuesFiles("values.yaml")}, []Target{bitnamiNginx}, "refusing to guess: name the field as an image field"},
		{"values string does not parse", "app.yaml", app("      values: |\n        image: [\n"), nil, []Target{hello},
			"app.yaml:6: spec.source.helm.values: values string does not parse as YAML"},
		{"values string of two documents", "app.yaml", app("      values: |\n        a: 1\n        ---\n        b: 2\n"), nil, []Target{hello},
			"values string holds 2 YAML documents"},
		{"folded values string", "app.yaml", app("      values: >\n        image: 127.0.0.1:5000/team/hello:v1\n"), nil, []Target{hello},
			"app.yaml:7: image \"127.0.0.1:5000/team/hello:v1\": the values string is not a literal block scalar (|)"},
		{"quoted values string", "app.yaml", app("      values: \"image: {repository: 127.0.0.1:5000/team/hello, tag: v1}\"\n"), nil, []Target{hello},
			"the values string is not a literal block scalar"},
		{"aliased values string", "app.yaml", "x: &v |\n  image: 127.0.0.1:5000/team/hello:v1\n" + app("      values: *v\n"), nil, []Target{hello},
			"the values are a YAML alias (*v)"},
		{"aliased image map", "values.yaml", "x: &img\n  repository: 127.0.0.1:5000/team/hello\n  pullPolicy: Always\nimage: *img\n", []PinOption{WithValuesFiles("values.yaml")}, []Target{hello},
			"values.yaml:4: image: image map *img is a YAML alias"},
		{"duplicate tag keys", "values.yaml", "image:\n  repository: 127.0.0.1:5000/team/hello\n  tag: v1\n  tag: v1\n", []PinOption{WithValuesFiles("values.yaml")}, []Target{hello},
			"image: image map for 127.0.0.1:5000/team/hello has 2 tag keys"},
		{"flow map without a tag", "values.yaml", "image: {repository: 127.0.0.1:5000/team/hello}\n", []PinOption{WithValuesFiles("values.yaml")}, []Target{hello},
			"values.yaml:1: image is in flow style ({...}) and has no tag"},
		{"empty tag", "values.yaml", "image:\n  repository: 127.0.0.1:5000/team/hello\n  tag:\n", []PinOption{WithValuesFiles("values.yaml")}, []Target{hello},
			"image: tag is empty"},
		{"no tag anywhere", "values.yaml", "image:\n  repository: 127.0.0.1:5000/team/hello\n  tag: \"\"\n", []PinOption{WithValuesFiles("values.yaml")}, []Target{helloNoTag},
			"no tag to write 127.0.0.1:5000/team/hello's digest after"},
		{"tag-only field, two targets", "values.yaml", "frontend:\n  image:\n    tag: v1\n", []PinOption{WithValuesFiles("values.yaml"), WithImageFields("frontend.image")}, []Target{hello, nginx},
			"frontend.image has no repository, and 2 images are being pinned"},
		{"duplicate image keys", "values.yaml", "image: 127.0.0.1:5000/team/hello:v1\nimage: nginx\n", []PinOption{WithValuesFiles("values.yaml")}, []Target{hello},
			"image: 2 image keys"},
		{"parameter named twice", ".argocd-source-app.yaml", "helm:\n  parameters:\n  - {name: image.repository, value: 127.0.0.1:5000/team/hello}\n  - {name: image.tag, value: v1}\n  - {name: image.tag, value: v2}\n", nil, []Target{hello},
			"helm parameters name image.tag more than once"},
		{"parameter without value", ".argocd-source-app.yaml", "helm:\n  parameters:\n  - {name: image.repository, value: 127.0.0.1:5000/team/hello}\n  - {name: image.tag}\n", nil, []Target{hello},
			"helm parameter image.tag for 127.0.0.1:5000/team/hello needs exactly one value"},
		{"kustomize image with an odd name", ".argocd-source-app.yaml", "kustomize:\n  images:\n  - \"my app=127.0.0.1:5000/team/hello:v1\"\n", nil, []Target{hello},
			`"my app" is not an image name`},
		{"bad image field", "values.yaml", "a: 1\n", []PinOption{WithImageFields("sidecars[x].image")}, []Target{hello}, `image field "sidecars[x].image": an index is not [N]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, changes, err := RewriteFile(tc.file, []byte(tc.data), tc.targets, tc.opts...)
			if err == nil {
				t.Fatalf("RewriteFile succeeded (%q, %+v); want an error containing %q", out, changes, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// What cannot be pinned is left alone when it names no target, and read
// where it can be.
func TestRewriteHelmUnrelated(t *testing.T) {
	in := "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    helm:\n      values: >\n        image: nginx:1.25\n" +
		"---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image: {repository: busybox}\n    global: {imageRegistry: mirror.example.com}\n    other:\n      registry: docker.io\n      repository: library/busybox\n      tag: \"1\"\n"
	got, changes, err := RewriteFile("all.yaml", []byte(in), []Target{hello})
	if err != nil || string(got) != in || len(changes) != 0 {
		t.Errorf("RewriteFile = %q, %+v, %v; want the input unchanged", got, changes, err)
	}
	refs := fileImages("all.yaml", []byte(in), defaultFields)
	var values []string
	for _, r := range refs {
		values = append(values, r.Kind+" "+r.Value)
	}
	// The global registry is the registry of a map without one.
	want := []string{"helm-values nginx:1.25", "helm-values mirror.example.com/busybox", "helm-values docker.io/library/busybox:1"}
	if diff := cmp.Diff(want, values); diff != "" {
		t.Errorf("read (-want +got):\n%s", diff)
	}
}

func TestParseImageField(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []pathElem
		err  bool
	}{
		{in: "image", want: []pathElem{{"image", -1}}},
		{in: "frontend.image", want: []pathElem{{"frontend", -1}, {"image", -1}}},
		{in: "sidecars[0].image", want: []pathElem{{"sidecars", -1}, {index: 0}, {"image", -1}}},
		{in: "m[1][2].x", want: []pathElem{{"m", -1}, {index: 1}, {index: 2}, {"x", -1}}},
		{in: "", err: true},
		{in: "a..b", err: true},
		{in: ".a", err: true},
		{in: "a[", err: true},
		{in: "a[-1]", err: true},
		{in: "a[01]", err: true},
		{in: "a[0]b", err: true},
		{in: "[0]", err: true},
		{in: "a]", err: true},
	} {
		f, err := parseImageField(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("parseImageField(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, f.path, cmp.AllowUnexported(pathElem{})); !tc.err && diff != "" {
			t.Errorf("parseImageField(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestLayoutsHelm reads and pins every image that the CASE of each Helm,
// HelmRelease and Argo CD layout lists, scoped as its --path, and checks
// that the result validates (parses, builds, satisfies values.schema.json)
// and that pinning again changes nothing.
func TestLayoutsHelm(t *testing.T) {
	// Where the layout needs more than detection, and why.
	opts := map[string][]PinOption{
		// The repository is only in the template; values.yaml and the
		// .argocd-source.yaml parameter carry image.tag alone.
		"argocd-source-helm": {WithImageFields("image")},
	}
	// Images a deploy scoped to the CASE's --path cannot reach, and why.
	unreachable := map[string]string{
		// The HelmRelease lives in apps/base, outside --path apps/production.
		"helmrelease-flux-podinfo public.ecr.aws/docker/library/redis": "base outside --path",
	}
	// Files that make a deploy in scope fail, as any file that does not
	// parse does; the layout is pinned again without them.
	broken := map[string]string{
		"argocd-source-kustomize": ".argocd-source-broken.yaml",
	}
	entries, err := os.ReadDir(layoutsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var c struct {
			Path   string   `yaml:"path"`
			Kind   string   `yaml:"kind"`
			Images []string `yaml:"images"`
		}
		data, err := os.ReadFile(filepath.Join(layoutsDir, e.Name(), "CASE"))
		if err != nil {
			continue
		}
		if err := yaml.Unmarshal(data, &c); err != nil {
			t.Fatalf("%s/CASE: %v", e.Name(), err)
		}
		switch c.Kind {
		case "helm-values", "helmrelease", "argocd-app", "argocd-source":
		default:
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			tree := loadTree(t, filepath.Join(layoutsDir, e.Name()))
			if f := broken[e.Name()]; f != "" {
				_, err := Pin(tree, c.Path, []Target{{Repo: c.Images[0], Digest: digestHello}})
				if err == nil || !strings.Contains(err.Error(), "parsing "+f) {
					t.Errorf("Pin = %v, want an error naming %s", err, f)
				}
				delete(tree, f)
			}
			refs, err := Images(tree, c.Path, opts[e.Name()]...)
			if err != nil {
				t.Fatal(err)
			}
			read := map[string]bool{}
			for _, r := range refs {
				read[r.Repo] = true
			}
			for _, image := range c.Images {
				canonical, _ := ref.Canonical(image)
				why := unreachable[e.Name()+" "+image]
				target := Target{Repo: image, Tag: "9.9.9", Digest: digestHello}
				res, err := Pin(tree, c.Path, []Target{target}, opts[e.Name()]...)
				if why != "" {
					if !errors.Is(err, ErrNotReferenced) {
						t.Errorf("%s (%s): Pin = %v, want ErrNotReferenced", image, why, err)
					}
					continue
				}
				if !read[canonical] && opts[e.Name()] == nil {
					t.Errorf("Images(%s) does not list %s; it lists %v", c.Path, image, refs)
				}
				if err != nil {
					t.Errorf("Pin %s: %v", image, err)
					continue
				}
				pinned := fstest.MapFS{}
				maps.Copy(pinned, tree)
				var touched []string
				for p, b := range res.Files {
					pinned[p] = &fstest.MapFile{Data: b}
					touched = append(touched, p)
				}
				if len(touched) == 0 {
					t.Errorf("Pin %s changed no file", image)
				}
				slices.Sort(touched)
				if err := Validate(t.Context(), pinned, touched); err != nil {
					t.Errorf("Pin %s: the result does not validate: %v", image, err)
				}
				again, err := Pin(pinned, c.Path, []Target{target}, opts[e.Name()]...)
				if err != nil || len(again.Files) != 0 {
					t.Errorf("Pin %s again = %v, %v; want no change", image, again, err)
				}
			}
		})
	}
}

// The rewriter's last check looks inside a values string too: only a tag
// key may appear there, and the text must still be one document.
func TestSameShapeInsideValuesString(t *testing.T) {
	doc := func(values string) *yaml.Node {
		docs, err := decodeAll([]byte("spec:\n  values: |\n" + values))
		if err != nil {
			t.Fatal(err)
		}
		return docs[0]
	}
	before := doc("    image:\n      repository: r/x\n")
	for _, tc := range []struct {
		after, want string
	}{
		{"    image:\n      repository: r/x\n      tag: v1@" + digestHello + "\n", ""},
		{"    image:\n      repository: 1.5\n", `!!str "r/x" became !!float "1.5"`},
		{"    image:\n      repository: r/x\n      pullPolicy: Always\n", `key "pullPolicy" appeared`},
		{"    image: r/x\n", "a map became a scalar"},
		{"    image: [\n", "no longer parses"},
	} {
		err := sameShape(before, doc(tc.after), "")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("sameShape(%q) = %v, want %q", tc.after, err, tc.want)
		}
	}
}

// A pod template in a HelmRelease's values is Helm values and a
// container's at once: it is read and pinned once, as a Helm value. A
// values file with setter markers is a file Flux automates: the marked
// fields alone.
func TestHelmReleasePodTemplateOnce(t *testing.T) {
	in := "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    template:\n      spec:\n        containers:\n          - name: runner\n            image: 127.0.0.1:5000/team/hello:v1\n"
	got, changes, err := RewriteFile("release.yaml", []byte(in), []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(in, "hello:v1", "hello:v2@"+digestHello, 1); string(got) != want || len(changes) != 1 || changes[0].Kind != KindHelmValues {
		t.Errorf("RewriteFile = %q, %+v", got, changes)
	}
	refs := fileImages("release.yaml", []byte(in), nil)
	if len(refs) != 1 || refs[0].Kind != KindHelmValues {
		t.Errorf("fileImages = %+v, want one helm-values reference", refs)
	}

	values := "image:\n  repository: 127.0.0.1:5000/team/hello\n  tag: v1 # {\"$imagepolicy\": \"flux-system:hello:tag\"}\nsidecar:\n  image: 127.0.0.1:5000/team/hello:v1\n"
	got, changes, err = RewriteFile("values.yaml", []byte(values), []Target{hello}, WithValuesFiles("values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(values, "tag: v1", "tag: v2@"+digestHello, 1)
	if string(got) != want || len(changes) != 1 || changes[0].Kind != KindSetter {
		t.Errorf("values with a marker: %q, %+v; want only the marked tag pinned", got, changes)
	}
}
