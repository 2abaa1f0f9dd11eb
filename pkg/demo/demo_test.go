package demo

import (
	"bytes"
	"context"
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
