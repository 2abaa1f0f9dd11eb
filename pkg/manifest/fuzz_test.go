package manifest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzCorpusDir holds hand-written seeds in Go's corpus format. It sits in the
// repository's testdata with the other corpora rather than in this package's
// testdata, so the seeds are loaded here; crashers the fuzzer finds still land
// in ./testdata/fuzz/FuzzRewrite and should be moved there.
const fuzzCorpusDir = "../../testdata/fuzz/FuzzRewrite"

// FuzzRewrite checks that RewriteFile never panics and that what it accepts
// it rewrites faithfully: the result parses, a second pass changes nothing,
// and only lines holding a pinned value differ from the input.
func FuzzRewrite(f *testing.F) {
	for _, tc := range goldenCases {
		data, err := os.ReadFile(filepath.Join(rewriteDir, tc.dir, "input.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, isKustomization(tc.file))
	}
	addCorpus(f, fuzzCorpusDir)

	// hello comes with a Flux policy, so setter markers are matched both
	// by policy (flux-system:hello) and by repository (nginx).
	helloPolicy := hello
	helloPolicy.Policy = "flux-system:hello"
	targets := []Target{helloPolicy, nginx}
	// pinned reports whether a changed line holds a pinned value: a digest,
	// or on a line with a setter marker a tag or repository (a :tag field
	// beside a :digest one, a :name field).
	pinned := func(l string) bool {
		return strings.Contains(l, digestHello) || strings.Contains(l, digestNginx) ||
			strings.Contains(l, setterKey) && (strings.Contains(l, hello.Tag) || strings.Contains(l, nginx.Tag) || strings.Contains(l, hello.Repo))
	}
	f.Fuzz(func(t *testing.T, data []byte, kustomization bool) {
		file := "deploy.yaml"
		if kustomization {
			file = "kustomization.yaml"
		}
		out, changes, err := RewriteFile(file, data, targets)
		if err != nil {
			return
		}
		if _, err := decodeAll(out); err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		edited := false
		for _, c := range changes {
			edited = edited || c.Old != c.New
			if c.Kind == KindContainer && c.New != hello.Ref() && c.New != nginx.Ref() {
				t.Errorf("container change to %q, not a target's ref", c.New)
			}
		}
		if !edited && !bytes.Equal(out, data) {
			t.Fatalf("no reference changed but the bytes did:\n%q\n%q", data, out)
		}
		again, changes2, err := RewriteFile(file, out, targets)
		if err != nil {
			t.Fatalf("second pass: %v", err)
		}
		if !bytes.Equal(again, out) || len(changes2) != len(changes) {
			t.Fatalf("second pass is not a no-op:\n%q\n%q", out, again)
		}

		in, got := splitLines(data), splitLines(out)
		if !kustomization {
			// Nothing is inserted, so lines pair up one to one.
			if len(in) != len(got) {
				t.Fatalf("line count changed from %d to %d", len(in), len(got))
			}
			for i := range in {
				if in[i] != got[i] && !pinned(got[i]) {
					t.Fatalf("line %d changed without a pinned value: %q -> %q", i+1, in[i], got[i])
				}
			}
			return
		}
		if len(in)*len(got) > 1<<20 {
			return // too big for the quadratic diff; the checks above still ran
		}
		_, added := lineDiff(in, got)
		for _, l := range added {
			if !pinned(l) && !strings.Contains(l, "newTag") && !strings.Contains(l, "image") {
				t.Fatalf("line added without a pinned value: %q", l)
			}
		}
	})
}

// addCorpus adds the seeds in dir, each a file in the "go test fuzz v1"
// format with a []byte and a bool value.
func addCorpus(f *testing.F, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		b, k, err := parseCorpusFile(data)
		if err != nil {
			f.Fatalf("%s: %v", e.Name(), err)
		}
		f.Add(b, k)
	}
}

func parseCorpusFile(data []byte) ([]byte, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, MaxFileSize*4)
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, err
	}
	if len(lines) != 3 || lines[0] != "go test fuzz v1" {
		return nil, false, fmt.Errorf("want a header, a []byte and a bool; got %d lines", len(lines))
	}
	quoted, ok := strings.CutPrefix(lines[1], "[]byte(")
	if !ok || !strings.HasSuffix(quoted, ")") {
		return nil, false, fmt.Errorf("second value is not []byte(...): %q", lines[1])
	}
	s, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
	if err != nil {
		return nil, false, fmt.Errorf("[]byte value: %w", err)
	}
	var k bool
	switch lines[2] {
	case "bool(true)":
		k = true
	case "bool(false)":
	default:
		return nil, false, fmt.Errorf("third value is not bool(...): %q", lines[2])
	}
	return []byte(s), k, nil
}

// FuzzRewriteValues is FuzzRewrite for Helm values and Argo CD sources:
// values files (values true) and manifests holding values (a HelmRelease's
// spec.values, an Application's helm values string), whose rewriting may
// insert a tag line and maps positions inside literal block scalars.
func FuzzRewriteValues(f *testing.F) {
	for _, tc := range helmCases {
		data, err := os.ReadFile(filepath.Join(helmDir, tc.dir, "input.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, tc.values)
	}
	addCorpus(f, "../../testdata/fuzz/FuzzRewriteValues")

	targets := []Target{hello, nginx, e2e, podinfoChart, fluxRedis, ingressNginx, sealed, dex, exporter, argocd, bitnamiNginx, flagBool}
	f.Fuzz(func(t *testing.T, data []byte, values bool) {
		file, opts := "apps/app.yaml", []PinOption(nil)
		if values {
			file, opts = "values.yaml", []PinOption{WithValuesFiles("values.yaml")}
		}
		out, changes, err := RewriteFile(file, data, targets, opts...)
		if err != nil {
			return
		}
		if _, err := decodeAll(out); err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		edited := false
		for _, c := range changes {
			edited = edited || c.Old != c.New
		}
		if !edited && !bytes.Equal(out, data) {
			t.Fatalf("no reference changed but the bytes did:\n%q\n%q", data, out)
		}
		again, changes2, err := RewriteFile(file, out, targets, opts...)
		if err != nil {
			t.Fatalf("second pass: %v\n%q", err, out)
		}
		if !bytes.Equal(again, out) || len(changes2) != len(changes) {
			t.Fatalf("second pass is not a no-op:\n%q\n%q", out, again)
		}
		in, got := splitLines(data), splitLines(out)
		if len(in)*len(got) > 1<<20 {
			return // too big for the quadratic diff; the checks above still ran
		}
		removed, added := lineDiff(in, got)
		for _, l := range added {
			ok := false
			for _, tg := range targets {
				ok = ok || strings.Contains(l, tg.Digest) || strings.Contains(l, tg.Tag)
			}
			if !ok {
				t.Fatalf("line added without a pinned value: %q", l)
			}
		}
		if len(removed) > len(added) {
			t.Fatalf("%d lines removed, %d added", len(removed), len(added))
		}
	})
}
