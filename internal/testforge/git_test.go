package testforge

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
)

// lines is a file of n numbered lines, line i replaced by s where given.
func lines(n int, edits map[int]string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if s, ok := edits[i]; ok {
			b.WriteString(s + "\n")
			continue
		}
		b.WriteString("line " + string(rune('a'+i)) + "\n")
	}
	return b.String()
}

// branchy makes a repository whose main moved after head branched off:
// head has two commits, main one, touching different lines of one file
// and different files.
func branchy(t *testing.T) *testgit.Repo {
	t.Helper()
	r := testgit.NewRepo(t, "", "main")
	r.Commit("main", "base", map[string]string{"f": lines(20, nil)})
	r.Git("branch", "head", "main")
	r.Commit("head", "head one\n\nFerry-Action: deploy", map[string]string{"f": lines(20, map[int]string{2: "head"}), "h": "h\n"})
	r.Commit("head", "head two", map[string]string{"h2": "h2\n"})
	r.Commit("main", "main moved", map[string]string{"f": lines(20, map[int]string{18: "main"}), "m": "m\n"})
	return r
}

// The stand-in's rebase is what git's own rebase makes: the same trees,
// messages and authors, one commit after another on main.
func TestRebaseMatchesGit(t *testing.T) {
	t.Parallel()
	r := branchy(t)
	b := bare{dir: r.Dir}
	got, err := b.rebaseOnto(r.Tip("main"), r.Tip("head"), githubCommitter)
	if err != nil {
		t.Fatalf("rebaseOnto: %v", err)
	}
	work := t.TempDir()
	testgit.Run(t, work, "clone", "-q", "-b", "head", r.Dir, ".")
	testgit.Run(t, work, "rebase", "-q", "origin/main")
	want := testgit.Run(t, work, "rev-parse", "HEAD")
	for _, f := range []string{"%T", "%B", "%an %ae %ad"} {
		for i, rev := range []string{"", "~1"} {
			w := testgit.Run(t, work, "log", "-1", "--format="+f, want+rev)
			g := r.Git("log", "-1", "--format="+f, got+rev)
			if w != g {
				t.Errorf("commit %d's %s: %q; git rebase made %q", 2-i, f, g, w)
			}
		}
	}
	if p := r.Git("rev-parse", got+"~2"); p != r.Tip("main") {
		t.Errorf("the rebased commits sit on %s; want main %s", p, r.Tip("main"))
	}
	if c := r.Git("log", "-1", "--format=%cn", got); c != "GitHub" {
		t.Errorf("committer %q; want GitHub", c)
	}
}

// A push that lands on the base while a merge is built: the merge is
// built again on it, and the push survives.
func TestMergeIntoKeepsAConcurrentPush(t *testing.T) {
	t.Parallel()
	r := branchy(t)
	b := bare{dir: r.Dir}
	builds := 0
	m, err := b.mergeInto("main", "head", "", func(old, head string) (merged, error) {
		builds++
		if builds == 1 {
			r.Commit("main", "pushed meanwhile", map[string]string{"p": "p\n"})
		}
		c, err := b.squashOnto(old, head, "squash\n", githubCommitter)
		return merged{tip: c, merge: c}, err
	})
	if err != nil {
		t.Fatalf("mergeInto: %v", err)
	}
	if builds != 2 {
		t.Errorf("built %d times; want 2 (once more after the push)", builds)
	}
	if m.tip != r.Tip("main") {
		t.Errorf("main at %s; want the merge %s", r.Tip("main"), m.tip)
	}
	if r.Show("main", "p") != "p" || r.Show("main", "h2") != "h2" {
		t.Errorf("main lost the push or the head's change")
	}
	r.Fsck()
}

func TestMergeConflict(t *testing.T) {
	t.Parallel()
	r := testgit.NewRepo(t, "", "main")
	r.Git("branch", "head", "main")
	r.Commit("head", "head", map[string]string{"README.md": "head\n"})
	r.Commit("main", "main", map[string]string{"README.md": "main\n"})
	old := r.Tip("main")
	b := bare{dir: r.Dir}
	_, err := b.mergeInto("main", "head", "", func(old, head string) (merged, error) {
		c, err := b.squashOnto(old, head, "x\n", githubCommitter)
		return merged{tip: c}, err
	})
	if !errors.Is(err, errConflict) {
		t.Errorf("mergeInto: %v; want errConflict", err)
	}
	if r.Tip("main") != old {
		t.Errorf("a conflicting merge moved main")
	}
}
