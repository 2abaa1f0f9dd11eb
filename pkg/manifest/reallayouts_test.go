package manifest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ferrycd/ferry/pkg/ref"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// layoutCase is testdata/layouts/<name>/CASE.
type layoutCase struct {
	Path   string   `yaml:"path"`
	Kind   string   `yaml:"kind"`
	Images []string `yaml:"images"`
}

// noBuild are the real layouts whose kustomizations do not build on their
// own, as their SOURCE notes say; they are pinned but not built.
var noBuild = map[string]string{
	"setters-iac-testdata":             "upstream: not intended to be a working kustomization",
	"configurations-rollout-transform": "its configurations file lies above the overlay (kustomize's load restrictor)",
	"renamed-online-boutique":          "two components build only through the root kustomization",
}

// TestRealLayouts pins every image the real kustomize and plain layouts
// under testdata/layouts name (see their SOURCE and CASE): bases outside
// the scope, renamed images, plain manifests. The rewriter's own checks
// hold (only image values change), the tree still validates, the reader
// sees the new digest, and pinning again changes nothing. The Helm and Argo
// CD layouts are TestLayoutsHelm's, the markers, kinds, configurations and
// placeholders TestLayoutsReach's; every layout belongs to one of them.
func TestRealLayouts(t *testing.T) {
	root := filepath.Join("..", "..", "testdata", "layouts")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("fe", 32)
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		t.Run(d.Name(), func(t *testing.T) {
			dir := filepath.Join(root, d.Name())
			raw, err := os.ReadFile(filepath.Join(dir, "CASE"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "SOURCE")); err != nil {
				t.Fatalf("no SOURCE note: %v", err)
			}
			var c layoutCase
			if err := yaml.Unmarshal(raw, &c); err != nil {
				t.Fatalf("CASE: %v", err)
			}
			switch c.Kind {
			case "base-outside", "renamed", "plain":
			case "helm-values", "helmrelease", "argocd-app", "argocd-source":
				return // TestLayoutsHelm
			case "setters", "workload-kind", "configurations", "placeholder":
				return // TestLayoutsReach
			default:
				t.Fatalf("kind %q is no test's", c.Kind)
			}
			tree := loadLayout(t, dir)
			for _, img := range c.Images {
				target := Target{Repo: img, Tag: "v9.9.9-ferry", Digest: digest}
				canon, ok := ref.Canonical(img)
				if !ok {
					// A placeholder for the repository itself
					// (PROJECT_ID, {username}) is no image to deploy:
					// asking for it is refused up front, naming it.
					if _, err := Pin(tree, c.Path, []Target{target}); err == nil || !strings.Contains(err.Error(), img) {
						t.Errorf("%s: a placeholder repository as target: %v, want a refusal naming it", img, err)
					}
					continue
				}
				touched := pinInto(t, tree, c.Path, target)
				if len(touched) == 0 {
					t.Fatalf("%s: nothing changed", img)
				}
				if again := pinInto(t, tree, c.Path, target); len(again) != 0 {
					t.Errorf("%s: pinning again changed %v", img, again)
				}
				refs, err := Images(tree, c.Path)
				if err != nil {
					t.Fatal(err)
				}
				seen := false
				for _, r := range refs {
					seen = seen || r.Repo == canon && r.Digest == digest
				}
				if !seen && c.Kind != "base-outside" {
					t.Errorf("%s: the reader does not see the pinned digest in %v", img, refs)
				}
				if why, skip := noBuild[d.Name()]; skip {
					t.Logf("not built: %s", why)
					continue
				}
				if err := Validate(context.Background(), tree, touched); err != nil {
					t.Errorf("%s: the pinned tree does not validate: %v", img, err)
				}
			}
		})
	}
	if n < 20 {
		t.Errorf("%d real layouts, want at least 20", n)
	}
}

// loadLayout reads a layout into memory, so pins can be applied to it.
func loadLayout(t *testing.T, dir string) fstest.MapFS {
	t.Helper()
	tree := fstest.MapFS{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		tree[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// pinInto pins target under scope in tree, as a deploy does (in the
// scope's files, else in its kustomization for a base outside it), and
// returns the files it changed.
func pinInto(t *testing.T, tree fstest.MapFS, scope string, target Target) []string {
	t.Helper()
	res, err := Pin(tree, scope, []Target{target})
	var changed []string
	switch {
	case errors.Is(err, ErrNotReferenced):
		added, aerr := AddImageEntries(context.Background(), tree, scope, []Target{target})
		if aerr != nil || added == nil {
			t.Fatalf("%s: %v (and in the bases: %v)", target.Repo, err, aerr)
		}
		tree[added.File] = &fstest.MapFile{Data: added.Data, Mode: 0o644}
		changed = append(changed, added.File)
	case err != nil:
		t.Fatalf("%s: %v", target.Repo, err)
	default:
		for f, data := range res.Files {
			tree[f] = &fstest.MapFile{Data: data, Mode: 0o644}
			changed = append(changed, f)
		}
	}
	for _, f := range changed {
		if !fs.ValidPath(f) || strings.HasPrefix(path.Clean(f), "..") {
			t.Fatalf("wrote outside the tree: %s", f)
		}
	}
	return changed
}
