package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testenv"
)

// The demo runs with no git binary on PATH: git is served in-process.
func TestDemoWithoutGit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	t.Setenv("PATH", "")
	dir := t.TempDir()
	var out bytes.Buffer
	if err := Run(context.Background(), &out, Options{Dir: dir}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"==> registry: serving an in-process OCI registry at 127.0.0.1:",
		"+    newTag: v1",
		"+    newTag: v2",
		"nothing to do: already pinned",
		"Ferry-Action: deploy",
		"Ferry-Source-Commit: 2222222222222222222222222222222222222222",
		"(not made by ferry)",
		"==> ferry promote --from candidate --to production --path apps/hello --commit ",
		"promoted from candidate@",
		"image     127.0.0.1:",
		"restored the state of ",
		"refused: held by a rollback: apps/hello on production was rolled back by",
		"rollback  ferry demo",
		"promote   ferry demo",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^    commit [0-9a-f]{40} on candidate`).FindAllString(got, -1)); n != 2 {
		t.Errorf("%d commits on candidate reported, want 2", n)
	}
	if n := len(regexp.MustCompile(`(?m)^    commit [0-9a-f]{40} on production`).FindAllString(got, -1)); n != 3 {
		t.Errorf("%d commits on production reported, want 3 (promote, promote, rollback)", n)
	}

	// It ends with ferry status: after the rollback, hello runs v2 on
	// candidate and v1 on production, held there; and the page is written.
	_, status, ok := strings.Cut(got, "\n==> ferry status ")
	if !ok {
		t.Fatalf("demo output lacks the ferry status step:\n%s", got)
	}
	for _, re := range []string{
		`(?m)^    APP +candidate +production$`,
		`(?m)^    hello +v2 @[0-9a-f]{8}  ok +v1 @[0-9a-f]{8}  held  behind 1$`,
		`(?m)^    hello on production is held by rollback [0-9a-f]{12} \(roll back hello on production to [0-9a-f]{12}\)$`,
		`(?m)^    ferry status --output html: open ` + regexp.QuoteMeta(fileURL(filepath.Join(dir, "status.html"))) + ` in a browser$`,
	} {
		if !regexp.MustCompile(re).MatchString(status) {
			t.Errorf("the status step lacks %s:\n%s", re, status)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "status.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`data-app="hello"`, `data-app="hello" data-env="production" data-state="held"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("status.html (%d bytes) lacks the matrix (%s):\n%s", len(page), want, page)
		}
	}

	// The repo it leaves behind is one git itself accepts.
	git := testenv.LookPath(t, "/usr/bin/git", "git fsck checks the repo the demo leaves; Debian: apt-get install git")
	cmd := exec.Command(git, "-C", filepath.Join(dir, "env.git"), "fsck", "--strict")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("git fsck: %v\n%s", err, b)
	}
	b, err := exec.Command(git, "-C", filepath.Join(dir, "env.git"), "rev-list", "--count", "candidate").Output()
	if err != nil || strings.TrimSpace(string(b)) != "3" {
		t.Errorf("candidate has %s commits, want 3 (%v)", b, err)
	}
}

// Without Options.Dir the env repo goes, but the status page stays for the
// reader to open, at the path printed.
func TestDemoKeepsThePage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out bytes.Buffer
	if err := Run(context.Background(), &out, Options{}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(?m)^    ferry status --output html: open file://(/\S+) in a browser$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("demo output names no status page:\n%s", out.String())
	}
	page, err := os.ReadFile(filepath.FromSlash(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte(`data-app="hello"`)) {
		t.Errorf("%s (%d bytes) lacks the matrix", m[1], len(page))
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 1 || filepath.Join(tmp, left[0]) != filepath.FromSlash(m[1]) {
		t.Errorf("left in the temporary directory: %q, want only the page %s", left, m[1])
	}
}
