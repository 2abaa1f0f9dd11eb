// Package depcheck holds the one test of what each of ferry's packages may
// depend on. Data flows one way: the leaf packages (audit, config, envrepo,
// forge, ghapp, image, manifest, notify, sign) never import each other; only
// pkg/ferry, pkg/demo and pkg/cli combine them, and cmd/ferry is the
// binary around pkg/cli. No shipped package links the test support under
// internal/.
package depcheck

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ferrycd/ferry"

// leafShared are the module's packages that every leaf, and every package
// above the leaves, may import: small dependency-free packages (standard
// library only, no other ferry package; the test checks that too). Adding
// one is adding its path here, e.g. "pkg/imageref".
var leafShared = []string{"pkg/ref", "internal/backoff"}

// unruled are the module's directories whose packages have no rule: test
// support and benchmarks, which no shipped package may import (no rule
// allows them).
var unruled = []string{"internal/", "bench/"}

// rule says what one package may depend on, directly or through others.
type rule struct {
	pkg string // relative to the module: "pkg/image"
	// may are the module's packages it may depend on; any other is a
	// failure.
	may []string
	// stdlibOnly: no package outside the module and the standard library.
	stdlibOnly bool
	// forbid are path prefixes outside the module it must not depend on.
	forbid []string
	why    string
}

// rules is the table, with shared as the packages everyone may import.
func rules(shared []string) []rule {
	with := func(pkgs ...string) []string { return append(slices.Clone(shared), pkgs...) }
	leaves := []string{"pkg/audit", "pkg/config", "pkg/envrepo", "pkg/forge", "pkg/ghapp", "pkg/image", "pkg/manifest", "pkg/notify", "pkg/sign"}
	t := []rule{
		{pkg: "pkg/audit", may: with(), why: "a leaf: the audit trailers, nothing else of ferry"},
		{pkg: "pkg/config", may: with(), why: "a leaf: it reads ferry.yaml, and knows nothing of git, manifests or registries",
			forbid: []string{"github.com/go-git/", "github.com/google/go-containerregistry", "sigs.k8s.io/kustomize/api"}},
		{pkg: "pkg/envrepo", may: with(), why: "a leaf: the env repo's git, nothing else of ferry"},
		{pkg: "pkg/forge", may: []string{"internal/backoff"}, stdlibOnly: true,
			why: "a leaf on the standard library and backoff alone: it speaks to git hosts' APIs and knows nothing of git objects, YAML or the rest of ferry"},
		{pkg: "pkg/ghapp", may: with(), stdlibOnly: true,
			why: "a leaf on the standard library alone: a GitHub App's key, JWT and installation tokens, nothing of git or the rest of ferry"},
		{pkg: "pkg/image", may: with(), why: "a leaf: it parses references and talks to registries, nothing more",
			forbid: []string{"github.com/go-git/", "sigs.k8s.io/", "gopkg.in/yaml", "go.yaml.in/"}},
		{pkg: "pkg/manifest", may: with(), why: "a leaf: manifests and kustomize, nothing else of ferry"},
		{pkg: "pkg/notify", may: with(), stdlibOnly: true,
			why: "a leaf on the standard library alone: it consumes a finished run and knows nothing of git, YAML, registries or the rest of ferry"},
		{pkg: "pkg/sign", may: with(), why: "a leaf: it signs and verifies commits, and knows nothing of remotes, manifests or registries",
			forbid: []string{"github.com/go-git/go-git/v5/plumbing/transport", "github.com/google/go-containerregistry", "sigs.k8s.io/"}},
		{pkg: "pkg/ferry", may: with(leaves...), why: "combines the leaves; knows nothing of the CLI or the demo"},
		{pkg: "pkg/demo", may: with(append(leaves, "pkg/ferry")...), why: "runs ferry offline; knows nothing of the CLI"},
		{pkg: "pkg/cli", may: with(append(leaves, "pkg/ferry", "pkg/demo")...), why: "the commands, over ferry and the demo"},
		{pkg: "cmd/ferry", may: with(append(leaves, "pkg/ferry", "pkg/demo", "pkg/cli")...), why: "the binary around pkg/cli"},
	}
	for _, s := range shared {
		t = append(t, rule{pkg: s, stdlibOnly: true, why: "shared by every leaf, so it depends on nothing"})
	}
	return t
}

// pkgInfo is what go list says of one package.
type pkgInfo struct {
	standard bool
	deps     []string
}

// violations checks the packages go list found against the table.
func violations(table []rule, pkgs map[string]pkgInfo) []string {
	var out []string
	ruled := map[string]bool{}
	for _, r := range table {
		ruled[module+"/"+r.pkg] = true
	}
	for path := range pkgs {
		rel, ok := strings.CutPrefix(path, module+"/")
		if !ok || ruled[path] || slices.ContainsFunc(unruled, func(p string) bool { return strings.HasPrefix(rel, p) }) {
			continue
		}
		out = append(out, fmt.Sprintf("%s has no rule: add it to the table in internal/depcheck", rel))
	}
	for _, r := range table {
		info, ok := pkgs[module+"/"+r.pkg]
		if !ok {
			out = append(out, fmt.Sprintf("%s has a rule but go list did not list it: renamed or gone?", r.pkg))
			continue
		}
		for _, dep := range info.deps {
			if rel, ok := strings.CutPrefix(dep, module+"/"); ok {
				if !slices.Contains(r.may, rel) {
					out = append(out, fmt.Sprintf("%s depends on %s (%s)", r.pkg, rel, r.why))
				}
				continue
			}
			if pkgs[dep].standard {
				continue
			}
			if r.stdlibOnly {
				out = append(out, fmt.Sprintf("%s depends on %s, outside the standard library (%s)", r.pkg, dep, r.why))
				continue
			}
			for _, f := range r.forbid {
				if strings.HasPrefix(dep, f) {
					out = append(out, fmt.Sprintf("%s depends on %s (%s)", r.pkg, dep, r.why))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// goList lists every package of the module and everything they depend on.
func goList(t *testing.T) map[string]pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}\t{{.Standard}}\t{{join .Deps \" \"}}", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string]pkgInfo{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("go list printed %q", line)
		}
		pkgs[f[0]] = pkgInfo{standard: f[1] == "true", deps: strings.Fields(f[2])}
	}
	if len(pkgs) == 0 {
		t.Fatal("go list listed no packages")
	}
	return pkgs
}

// TestDependencies checks every package of the module against the table.
func TestDependencies(t *testing.T) {
	pkgs := goList(t)
	table := rules(leafShared)
	for _, r := range table {
		if _, ok := pkgs[module+"/"+r.pkg]; ok {
			t.Logf("%s: %d packages checked", r.pkg, len(pkgs[module+"/"+r.pkg].deps))
		}
	}
	for _, v := range violations(table, pkgs) {
		t.Error(v)
	}
}

// The check catches what it is for, on made-up dependency graphs.
func TestViolations(t *testing.T) {
	std := pkgInfo{standard: true}
	m := func(rel string) string { return module + "/" + rel }
	// A module where every package keeps its rule; each case breaks one.
	base := func() map[string]pkgInfo {
		return map[string]pkgInfo{
			"fmt":                                    std,
			"strings":                                std,
			"github.com/go-git/go-git/v5":            {},
			"sigs.k8s.io/kustomize/api/krusty":       {},
			"github.com/google/go-containerregistry": {},
			m("pkg/audit"):                           {deps: []string{"fmt"}},
			m("pkg/config"):                          {deps: []string{"fmt"}},
			m("pkg/envrepo"):                         {deps: []string{"fmt", "github.com/go-git/go-git/v5"}},
			m("pkg/forge"):                           {deps: []string{"fmt", m("internal/backoff")}},
			m("internal/backoff"):                    {deps: []string{"fmt"}},
			m("pkg/ghapp"):                           {deps: []string{"fmt", "strings"}},
			m("pkg/image"):                           {deps: []string{"github.com/google/go-containerregistry"}},
			m("pkg/manifest"):                        {deps: []string{"sigs.k8s.io/kustomize/api/krusty"}},
			m("pkg/notify"):                          {deps: []string{"fmt", "strings"}},
			m("pkg/sign"):                            {deps: []string{"fmt", "github.com/go-git/go-git/v5"}},
			m("pkg/ferry"):                           {deps: []string{m("pkg/audit"), m("pkg/envrepo"), m("pkg/image"), m("pkg/manifest")}},
			m("pkg/demo"):                            {deps: []string{m("pkg/ferry"), m("pkg/image")}},
			m("pkg/cli"):                             {deps: []string{m("pkg/demo"), m("pkg/ferry"), m("pkg/notify")}},
			m("cmd/ferry"):                           {deps: []string{m("pkg/cli"), m("pkg/ferry")}},
			m("internal/testgit"):                    {deps: []string{m("pkg/image"), "github.com/go-git/go-git/v5"}},
			m("bench/envbench"):                      {deps: []string{"github.com/google/go-containerregistry"}},
		}
	}
	// add makes pkg depend on deps too, adding pkg when it is new.
	add := func(pkg string, deps ...string) func(map[string]pkgInfo) {
		return func(p map[string]pkgInfo) {
			i := p[m(pkg)]
			i.deps = append(slices.Clone(i.deps), deps...)
			p[m(pkg)] = i
		}
	}
	both := func(fs ...func(map[string]pkgInfo)) func(map[string]pkgInfo) {
		return func(p map[string]pkgInfo) {
			for _, f := range fs {
				f(p)
			}
		}
	}
	imageref := add("pkg/imageref", "strings") // the package about to come
	for _, tc := range []struct {
		name   string
		shared []string
		change func(map[string]pkgInfo)
		want   []string // each violation's start, in order
	}{
		{name: "as it should be"},
		{name: "a leaf imports a leaf", change: add("pkg/audit", m("pkg/image")),
			want: []string{"pkg/audit depends on pkg/image"}},
		{name: "image imports go-git", change: add("pkg/image", "github.com/go-git/go-git/v5"),
			want: []string{"pkg/image depends on github.com/go-git/go-git/v5"}},
		{name: "config imports go-git", change: add("pkg/config", "github.com/go-git/go-git/v5"),
			want: []string{"pkg/config depends on github.com/go-git/go-git/v5"}},
		{name: "config imports a leaf", change: add("pkg/config", m("pkg/manifest")),
			want: []string{"pkg/config depends on pkg/manifest"}},
		{name: "image imports kustomize", change: add("pkg/image", "sigs.k8s.io/kustomize/api/krusty"),
			want: []string{"pkg/image depends on sigs.k8s.io/kustomize/api/krusty"}},
		{name: "notify imports a module", change: add("pkg/notify", "github.com/google/go-containerregistry"),
			want: []string{"pkg/notify depends on github.com/google/go-containerregistry, outside the standard library"}},
		{name: "forge imports a module", change: add("pkg/forge", "github.com/go-git/go-git/v5"),
			want: []string{"pkg/forge depends on github.com/go-git/go-git/v5, outside the standard library"}},
		{name: "forge imports a leaf", change: add("pkg/forge", m("pkg/envrepo")),
			want: []string{"pkg/forge depends on pkg/envrepo"}},
		{name: "forge imports a shared package other than backoff", shared: []string{"pkg/ref"},
			change: both(add("pkg/ref", "strings"), add("pkg/forge", m("pkg/ref"))),
			want:   []string{"pkg/forge depends on pkg/ref"}},
		{name: "ghapp imports a module", change: add("pkg/ghapp", "github.com/google/go-containerregistry"),
			want: []string{"pkg/ghapp depends on github.com/google/go-containerregistry, outside the standard library"}},
		{name: "ghapp imports envrepo", change: add("pkg/ghapp", m("pkg/envrepo")),
			want: []string{"pkg/ghapp depends on pkg/envrepo"}},
		{name: "notify imports ferry", change: add("pkg/notify", m("pkg/audit")),
			want: []string{"pkg/notify depends on pkg/audit"}},
		{name: "sign imports envrepo", change: add("pkg/sign", m("pkg/envrepo")),
			want: []string{"pkg/sign depends on pkg/envrepo"}},
		{name: "envrepo imports sign", change: add("pkg/envrepo", m("pkg/sign")),
			want: []string{"pkg/envrepo depends on pkg/sign"}},
		{name: "ferry imports the CLI", change: add("pkg/ferry", m("pkg/cli")),
			want: []string{"pkg/ferry depends on pkg/cli"}},
		{name: "demo imports the CLI", change: add("pkg/demo", m("pkg/cli")),
			want: []string{"pkg/demo depends on pkg/cli"}},
		{name: "the CLI links test support", change: add("pkg/cli", m("internal/testgit")),
			want: []string{"pkg/cli depends on internal/testgit"}},
		{name: "a new package needs a rule", change: add("pkg/newthing", "fmt"),
			want: []string{"pkg/newthing has no rule"}},
		{name: "a rule whose package is gone", change: func(p map[string]pkgInfo) { delete(p, m("pkg/manifest")) },
			want: []string{"pkg/manifest has a rule but go list did not list it"}},
		{name: "a package not shared is no leaf's", change: both(imageref, add("pkg/image", m("pkg/imageref"))),
			want: []string{"pkg/image depends on pkg/imageref", "pkg/imageref has no rule"}},
		{name: "a shared package is every leaf's", shared: []string{"pkg/imageref"},
			change: both(imageref, add("pkg/image", m("pkg/imageref")), add("pkg/notify", m("pkg/imageref")), add("pkg/ferry", m("pkg/imageref")))},
		{name: "a shared package depends on nothing", shared: []string{"pkg/imageref"},
			change: both(imageref, add("pkg/imageref", "github.com/go-git/go-git/v5", m("pkg/audit"))),
			want:   []string{"pkg/imageref depends on github.com/go-git/go-git/v5, outside the standard library", "pkg/imageref depends on pkg/audit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			if tc.change != nil {
				tc.change(p)
			}
			got := violations(rules(tc.shared), p)
			if len(got) != len(tc.want) {
				t.Fatalf("violations:\n%s\nwant %d, starting %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("violation %d: %q, want it to start %q", i, got[i], w)
				}
			}
		})
	}
}

// The command line speaks flags; git transports, auth and host keys are
// envrepo's. pkg/cli imports no go-git (nor SSH) itself.
func TestCLIImportsNoGit(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, module+"/pkg/cli").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "github.com/go-git/") || strings.HasPrefix(imp, "golang.org/x/crypto/ssh") {
			t.Errorf("pkg/cli imports %s; reach git through pkg/envrepo (envrepo.Open and its options)", imp)
		}
	}
}
