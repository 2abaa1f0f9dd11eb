package manifest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// build_test.go registers -update in init only when nobody else has; this
// package-level var runs first, so one flag serves both golden suites.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const rewriteDir = "../../testdata/rewrite"

const (
	digestHello = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	digestNginx = "sha256:5be1ecc7935f1dd85635d4feedaf660594030253cc97c9e9ca3819ffeac36b65"
	digestGAR   = "sha256:b974ebb9a97901339d70cbd59a98baeb15228d9f39e326d41014aa938512c4e9"
	digestOld   = "sha256:cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4"
)

var (
	hello      = Target{Repo: "127.0.0.1:5000/team/hello", Tag: "v2", Digest: digestHello}
	helloNoTag = Target{Repo: "127.0.0.1:5000/team/hello", Digest: digestHello}
	helloNum   = Target{Repo: "127.0.0.1:5000/team/hello", Tag: "1.0", Digest: digestHello}
	nginx      = Target{Repo: "nginx", Tag: "1.27", Digest: digestNginx}
	gar        = Target{Repo: "us-docker.pkg.dev/acme/apps/hello", Tag: "abc1234", Digest: digestGAR}
)

// goldenCases are the directories under testdata/rewrite. changes lists
// "line kind old" for every reference the rewrite must report.
var goldenCases = []struct {
	dir     string
	file    string // path given to RewriteFile; decides kustomization handling
	targets []Target
	changes []string
}{
	{"deployment-comments", "deploy.yaml", []Target{hello}, []string{
		"22 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"quoted-double", "deploy.yaml", []Target{hello}, []string{
		"10 container 127.0.0.1:5000/team/hello:v1",
		"12 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"quoted-single", "pod.yaml", []Target{hello}, []string{
		"8 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"init-containers", "sts.yaml", []Target{hello, nginx}, []string{
		"11 container 127.0.0.1:5000/team/hello:v1",
		"14 container nginx:1.25",
		"17 container nginx",
	}},
	{"cronjob", "cronjob.yaml", []Target{gar}, []string{
		"14 container us-docker.pkg.dev/acme/apps/hello:old",
		"17 container us-docker.pkg.dev/acme/apps/hello",
	}},
	{"multidoc-configmap", "all.yaml", []Target{hello}, []string{
		"29 container 127.0.0.1:5000/team/hello:v1",
		"41 container 127.0.0.1:5000/team/hello",
	}},
	{"kustomization-insert", "apps/hello/kustomization.yaml", []Target{hello, gar, nginx}, []string{
		"9 kustomization 127.0.0.1:5000/team/hello",
		"11 kustomization us-docker.pkg.dev/acme/apps/hello",
		"14 kustomization nginx:1.25",
		"17 kustomization 127.0.0.1:5000/team/hello:v1@" + digestOld,
	}},
	{"kustomization-flow-complete", "kustomization.yml", []Target{hello}, []string{
		"1 kustomization 127.0.0.1:5000/team/hello:v1@" + digestOld,
	}},
	{"kustomization-empty-tag", "kustomization.yaml", []Target{helloNoTag}, []string{
		"2 kustomization 127.0.0.1:5000/team/hello:v1",
		"5 kustomization 127.0.0.1:5000/team/hello",
	}},
	{"kustomization-no-trailing-newline", "Kustomization", []Target{hello}, []string{
		"4 kustomization 127.0.0.1:5000/team/hello",
	}},
	{"already-pinned-old-digest", "deploy.yaml", []Target{hello}, []string{
		"10 container 127.0.0.1:5000/team/hello:v1@" + digestOld,
		"12 container 127.0.0.1:5000/team/hello:v2@" + digestHello,
	}},
	{"crlf", "deploy.yaml", []Target{hello}, []string{
		"22 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"crlf-kustomization", "kustomization.yaml", []Target{hello}, []string{
		"2 kustomization 127.0.0.1:5000/team/hello",
	}},
	{"no-trailing-newline", "pod.yaml", []Target{hello}, []string{
		"8 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"indent-4", "deploy.yaml", []Target{hello}, []string{
		"10 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"block-scalar-elsewhere", "deploy.yaml", []Target{hello}, []string{
		"15 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"port-registry", "deploy.yaml", []Target{hello}, []string{
		"10 container 127.0.0.1:5000/team/hello:v1",
		"12 container 127.0.0.1:5000/team/hello",
	}},
	{"dockerhub-short-names", "rs.yaml", []Target{nginx}, []string{
		"10 container nginx",
		"12 container nginx:1.25",
		"14 container library/nginx:1.25",
		"16 container docker.io/library/nginx:1.25-alpine",
		"18 container index.docker.io/nginx",
	}},
	{"digest-only", "job.yaml", []Target{helloNoTag}, []string{
		"11 container 127.0.0.1:5000/team/hello@" + digestOld,
		"13 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"non-ascii", "deploy.yaml", []Target{hello}, []string{
		"15 container 127.0.0.1:5000/team/hello:v1",
		"16 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"flow-containers", "pod.yaml", []Target{hello}, []string{
		"5 container 127.0.0.1:5000/team/hello:v1",
		"5 container 127.0.0.1:5000/team/hello",
		"6 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"numeric-tag", "kustomization.yaml", []Target{helloNum}, []string{
		"2 kustomization 127.0.0.1:5000/team/hello:v1",
		"4 kustomization 127.0.0.1:5000/team/hello",
	}},
	{"anchor-and-tag", "deploy.yaml", []Target{hello}, []string{
		"10 container 127.0.0.1:5000/team/hello:v1",
		"12 container 127.0.0.1:5000/team/hello:v1",
		"14 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"utf8-bom", "pod.yaml", []Target{hello}, []string{
		"7 container 127.0.0.1:5000/team/hello:v1",
	}},
	{"other-kinds-untouched", "rollout.yaml", []Target{hello}, nil},
}

func TestRewriteGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.dir, func(t *testing.T) {
			input := readFile(t, filepath.Join(rewriteDir, tc.dir, "input.yaml"))
			goldenPath := filepath.Join(rewriteDir, tc.dir, "golden.yaml")

			got, changes, err := RewriteFile(tc.file, input, tc.targets)
			if err != nil {
				t.Fatalf("RewriteFile: %v", err)
			}
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(string(readFile(t, goldenPath)), string(got)); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", goldenPath, diff)
			}

			var summary []string
			for _, c := range changes {
				summary = append(summary, fmt.Sprintf("%d %s %s", c.Line, c.Kind, c.Old))
				if c.File != tc.file {
					t.Errorf("change %+v: File = %q, want %q", c, c.File, tc.file)
				}
			}
			if diff := cmp.Diff(tc.changes, summary); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			checkChangedLines(t, input, got, tc.targets)

			// Idempotence: the output is already pinned, so a second pass
			// changes no byte and reports every reference as unchanged.
			again, changes2, err := RewriteFile(tc.file, got, tc.targets)
			if err != nil {
				t.Fatalf("second RewriteFile: %v", err)
			}
			if diff := cmp.Diff(string(got), string(again)); diff != "" {
				t.Errorf("second pass changed the output (-first +second):\n%s", diff)
			}
			if len(changes2) != len(changes) {
				t.Errorf("second pass found %d references, first found %d", len(changes2), len(changes))
			}
			for i, c := range changes2 {
				if c.Old != c.New {
					t.Errorf("second pass: %+v is not pinned", c)
				}
				if i < len(changes) && c.New != changes[i].New {
					t.Errorf("second pass: New = %q, first pass wrote %q", c.New, changes[i].New)
				}
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkChangedLines asserts that output differs from input only in lines that
// hold a pinned value: lines removed held an image, newTag, digest or an
// image volume's reference (or a setter marker), and lines added hold a
// target's digest or tag, or, on a line that keeps its setter marker, a
// target's tag or repository.
func checkChangedLines(t *testing.T, input, output []byte, targets []Target) {
	t.Helper()
	removed, added := lineDiff(splitLines(input), splitLines(output))
	for _, l := range removed {
		if !strings.Contains(l, "image") && !strings.Contains(l, "newTag") && !strings.Contains(l, "digest") && !strings.Contains(l, "reference:") {
			t.Errorf("line changed that holds no image: %q", l)
		}
	}
	for _, l := range added {
		ok := false
		for _, tg := range targets {
			if strings.Contains(l, tg.Digest) || strings.Contains(l, "newTag") && strings.Contains(l, tg.Tag) ||
				strings.Contains(l, `{"$imagepolicy": "`) && (tg.Tag != "" && strings.Contains(l, ": "+tg.Tag+" ") || strings.Contains(l, tg.Repo)) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("line added that holds no pinned value: %q", l)
		}
	}
	if len(added) < len(removed) {
		t.Errorf("%d lines removed but only %d added", len(removed), len(added))
	}
}

// splitLines drops line terminators: an insertion after a last line without
// a newline gives that line one. The golden files pin the exact bytes.
func splitLines(b []byte) []string {
	return strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
}

// lineDiff returns the lines only in a and only in b, by longest common
// subsequence; the inputs are small.
func lineDiff(a, b []string) (onlyA, onlyB []string) {
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			onlyA = append(onlyA, a[i])
			i++
		default:
			onlyB = append(onlyB, b[j])
			j++
		}
	}
	return append(onlyA, a[i:]...), append(onlyB, b[j:]...)
}

func TestRewriteUnchangedReturnsInput(t *testing.T) {
	in := []byte("kind: Pod\nspec:\n  containers:\n  - image: busybox\n")
	got, changes, err := RewriteFile("pod.yaml", in, []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 || !bytes.Equal(got, in) {
		t.Errorf("RewriteFile = %q, %v; want the input and no changes", got, changes)
	}
}

func TestRewriteChangeFields(t *testing.T) {
	in := []byte("images:\n- name: hello\n  newName: 127.0.0.1:5000/team/hello\n  newTag: v1\n" +
		"---\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n      - image: nginx # web\n")
	_, got, err := RewriteFile("base/kustomization.yaml", in, []Target{hello, nginx})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{File: "base/kustomization.yaml", Line: 2, Kind: KindKustomization, Repo: hello.Repo,
			Old: "127.0.0.1:5000/team/hello:v1", New: "127.0.0.1:5000/team/hello:v2@" + digestHello},
		{File: "base/kustomization.yaml", Line: 11, Kind: KindContainer, Repo: "nginx",
			Old: "nginx", New: "nginx:1.27@" + digestNginx},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestTargetRef(t *testing.T) {
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{hello, "127.0.0.1:5000/team/hello:v2@" + digestHello},
		{helloNoTag, "127.0.0.1:5000/team/hello@" + digestHello},
		{gar, "us-docker.pkg.dev/acme/apps/hello:abc1234@" + digestGAR},
	} {
		if got := tc.t.Ref(); got != tc.want {
			t.Errorf("%+v.Ref() = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestRewriteErrors(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'j'; i++ {
		prev := string(i - 1)
		bomb += fmt.Sprintf("%c: &%c [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	bomb = "kind: Pod\nspec:\n  containers:\n  - image: 127.0.0.1:5000/team/hello:v1\n" + bomb

	for _, tc := range []struct {
		name    string
		file    string
		data    string
		targets []Target
		want    string // substring of the error
	}{
		{"unparsable", "bad.yaml", "kind: Pod\nspec: [unclosed\n", []Target{hello}, "parsing bad.yaml"},
		{"tab indentation", "bad.yaml", "kind: Pod\nspec:\n\tcontainers: []\n", []Target{hello}, "parsing bad.yaml"},
		{"block scalar image", "pod.yaml",
			"kind: Pod\nspec:\n  containers:\n  - name: a\n    image: |-\n      127.0.0.1:5000/team/hello:v1\n",
			[]Target{hello}, "pod.yaml:5: image \"127.0.0.1:5000/team/hello:v1\": written as a block scalar"},
		{"folded image", "pod.yaml",
			"kind: Pod\nspec:\n  containers:\n  - image: >\n      127.0.0.1:5000/team/hello:v1\n",
			[]Target{hello}, "block scalar"},
		{"multi-line double-quoted image", "pod.yaml",
			"kind: Pod\nspec:\n  containers:\n  - image: \"127.0.0.1:5000/team/\\\n      hello:v1\"\n",
			[]Target{hello}, "spans several lines"},
		{"flow kustomization entry needing insertion", "kustomization.yaml",
			"images:\n- {name: hello, newName: 127.0.0.1:5000/team/hello}\n",
			[]Target{hello}, "kustomization.yaml:2: images entry for 127.0.0.1:5000/team/hello is in flow style ({...}) and lacks newTag and digest"},
		{"alias bomb", "pod.yaml", bomb, []Target{hello}, "aliases expand to more than"},
		{"alias cycle", "pod.yaml", "kind: Pod\nspec: &a\n  containers: [*a]\n", []Target{hello}, "refers to a node that contains it"},
		{"aliased image", "pod.yaml",
			"kind: Pod\nx: &img 127.0.0.1:5000/team/hello:v1\nspec:\n  containers:\n  - image: *img\n",
			[]Target{hello}, "pod.yaml:5: image *img is a YAML alias"},
		{"duplicate image keys", "pod.yaml",
			"kind: Pod\nspec:\n  containers:\n  - image: busybox\n    image: 127.0.0.1:5000/team/hello:v1\n",
			[]Target{hello}, "2 image keys"},
		{"duplicate digest keys", "kustomization.yaml",
			"images:\n- name: 127.0.0.1:5000/team/hello\n  digest: " + digestOld + "\n  digest: " + digestOld + "\n",
			[]Target{hello}, "2 digest keys"},
		{"empty newTag", "kustomization.yaml",
			"images:\n- name: 127.0.0.1:5000/team/hello\n  newTag:\n", []Target{hello}, "newTag is empty"},
		{"over MaxFileSize", "big.yaml", "# " + strings.Repeat("x", MaxFileSize) + "\n", []Target{hello}, "over the 4194304-byte limit"},
		{"UTF-16", "pod.yaml", "\xFF\xFEk\x00i\x00", []Target{hello}, "UTF-16"},
		{"bad digest", "pod.yaml", "kind: Pod\n", []Target{{Repo: hello.Repo, Digest: "sha256:abc"}}, "is not sha256:<64 lowercase hex>"},
		{"bad repo", "pod.yaml", "kind: Pod\n", []Target{{Repo: "Not A Repo", Digest: digestHello}}, "target repository"},
		{"repo with tag", "pod.yaml", "kind: Pod\n", []Target{{Repo: "nginx:1.25", Digest: digestHello}}, "target repository"},
		{"conflicting targets", "pod.yaml", "kind: Pod\n",
			[]Target{nginx, {Repo: "docker.io/library/nginx", Digest: digestHello}}, "name the same repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, changes, err := RewriteFile(tc.file, []byte(tc.data), tc.targets)
			if err == nil {
				t.Fatalf("RewriteFile succeeded (%q, %v); want an error containing %q", out, changes, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// A block scalar that is not a target's image is none of the rewriter's
// business: only references it would have to change are refused.
func TestRewriteBlockScalarOtherImage(t *testing.T) {
	in := []byte("kind: Pod\nspec:\n  containers:\n  - image: |-\n      busybox\n  - image: 127.0.0.1:5000/team/hello:v1\n")
	got, changes, err := RewriteFile("pod.yaml", in, []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	want := "kind: Pod\nspec:\n  containers:\n  - image: |-\n      busybox\n  - image: " + hello.Ref() + "\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(changes) != 1 {
		t.Errorf("changes = %v, want 1", changes)
	}
}

// An aliased container list is one list: its image is reported and spliced once.
func TestRewriteAliasedContainers(t *testing.T) {
	in := []byte("kind: Pod\nx: &c\n- image: 127.0.0.1:5000/team/hello:v1\nspec:\n  containers: *c\n  initContainers: *c\n")
	got, changes, err := RewriteFile("pod.yaml", in, []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	want := "kind: Pod\nx: &c\n- image: " + hello.Ref() + "\nspec:\n  containers: *c\n  initContainers: *c\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(changes) != 1 || changes[0].Line != 3 {
		t.Errorf("changes = %+v, want one on line 3", changes)
	}
}

// Line numbers must count every document before the one holding the image,
// and the line breaks yaml.v3 counts inside comments (LS, NEL).
func TestRewriteLineNumbers(t *testing.T) {
	var b strings.Builder
	for i := range 7 {
		fmt.Fprintf(&b, "---\nkind: ConfigMap\nmetadata:\n  name: c%d # comment\u2028still a comment? no: a line\n", i)
	}
	b.WriteString("---\nkind: Pod\nspec:\n  containers:\n  - image: 127.0.0.1:5000/team/hello:v1\n")
	in := []byte(b.String())
	got, changes, err := RewriteFile("all.yaml", in, []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Line != 7*5+5 {
		t.Fatalf("changes = %+v, want one on line %d", changes, 7*5+5)
	}
	if !bytes.HasSuffix(got, []byte("  - image: "+hello.Ref()+"\n")) || !bytes.HasPrefix(got, in[:len(in)-len("127.0.0.1:5000/team/hello:v1\n")]) {
		t.Errorf("output:\n%s", got)
	}
}

// largeManifest is n Deployments in one file, every fifth one using the target.
func largeManifest(n int) []byte {
	var b strings.Builder
	for i := range n {
		image := "busybox:1.36"
		if i%5 == 0 {
			image = "127.0.0.1:5000/team/hello:v1"
		}
		fmt.Fprintf(&b, `---
# deployment %d
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%d
  labels: {app: app-%d}
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: app-%d
    spec:
      initContainers:
      - name: init
        image: busybox:1.36
      containers:
      - name: main
        image: %s # main image
        ports:
        - containerPort: 8080
        env:
        - {name: MODE, value: prod}
`, i, i, i, i, image)
	}
	return []byte(b.String())
}

func BenchmarkRewriteLarge(b *testing.B) {
	data := largeManifest(500)
	targets := []Target{hello}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		_, changes, err := RewriteFile("large.yaml", data, targets)
		if err != nil {
			b.Fatal(err)
		}
		if len(changes) != 100 {
			b.Fatalf("%d changes, want 100", len(changes))
		}
	}
}

// Many images on one flow-style line are located by resuming from the
// previous one; each must still land on its own bytes.
func TestRewriteLongFlowLine(t *testing.T) {
	var b strings.Builder
	b.WriteString("kind: Pod\nspec: {containers: [")
	const n = 2000
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{name: ü%d, image: '127.0.0.1:5000/team/hello:v1'}", i)
	}
	b.WriteString("]}\n")
	in := b.String()
	got, changes, err := RewriteFile("pod.yaml", []byte(in), []Target{hello})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != n {
		t.Errorf("%d changes, want %d", len(changes), n)
	}
	want := strings.ReplaceAll(in, "'127.0.0.1:5000/team/hello:v1'", "'"+hello.Ref()+"'")
	if string(got) != want {
		t.Errorf("output differs from the input with every image replaced")
	}
}
