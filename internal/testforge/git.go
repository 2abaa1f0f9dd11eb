package testforge

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// bare is a bare repository under the stand-in's root, worked on with the
// git command line, as the git http-backend serving the same root sees it.
type bare struct {
	dir string
	// sign, when set, is the SSH private key the host signs the commits
	// it makes with (merges, squashes, rebases, API commits), as GitHub
	// signs them with its web-flow key.
	sign string
}

// ident is a commit's author or committer.
type ident struct{ name, email, date string }

// The stand-ins commit merges as the hosts do: GitHub as "GitHub", which
// signs them; GitLab as the user who merged.
var (
	githubCommitter = ident{name: "GitHub", email: "noreply@github.com"}
	gitlabCommitter = ident{name: "Stand-in Maintainer", email: "maintainer@gitlab.example"}
	// appAuthor is who a git data API commit without an author is by: the
	// GitHub App the token belongs to.
	appAuthor = ident{name: "ferry-test[bot]", email: "ferry-test[bot]@users.noreply.github.com"}
)

var (
	errConflict = errors.New("merge conflict")
	errNotFF    = errors.New("not a fast-forward")
	errNoBranch = errors.New("no such branch")
)

// run runs git in the repository with stdin and extra environment, and
// returns its trimmed stdout and its exit code (0, or a git failure's
// code with err set to its stderr).
func (b bare) run(stdin string, env []string, args ...string) (string, int, error) {
	cmd := exec.Command("git", append([]string{"-C", b.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		code := -1
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return strings.TrimSpace(string(out)), code, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), 0, nil
}

func (b bare) git(args ...string) (string, error) {
	out, _, err := b.run("", nil, args...)
	return out, err
}

// tip is the commit a branch points at, "" if there is no such branch.
func (b bare) tip(branch string) (string, error) {
	out, code, err := b.run("", nil, "rev-parse", "--verify", "-q", "refs/heads/"+branch+"^{commit}")
	if code == 1 {
		return "", nil
	}
	return out, err
}

// exists says whether obj names an object of type typ ("blob", "tree",
// "commit").
func (b bare) exists(obj, typ string) bool {
	out, err := b.git("cat-file", "-t", obj)
	return err == nil && out == typ
}

// isAncestor says whether a is c or an ancestor of it.
func (b bare) isAncestor(a, c string) (bool, error) {
	_, code, err := b.run("", nil, "merge-base", "--is-ancestor", a, c)
	if code == 1 {
		return false, nil
	}
	return err == nil, err
}

// mergeTree merges theirs into ours without a work tree (git 2.38's
// merge-tree --write-tree) and returns the tree, or errConflict.
func (b bare) mergeTree(ours, theirs string) (string, error) {
	out, code, err := b.run("", nil, "merge-tree", "--write-tree", "--no-messages", ours, theirs)
	switch code {
	case 0:
		return strings.SplitN(out, "\n", 2)[0], nil
	case 1:
		return "", errConflict
	}
	return "", err
}

// pickTree is the tree of applying commit c's change onto onto, as a
// cherry-pick does. git 2.39's merge-tree has no --merge-base, so the
// merge base is arranged: a throwaway commit with onto's tree whose parent
// is c's parent makes that parent the merge base of it and c. The
// throwaway commit is left dangling, as a cherry-pick's index would be.
func (b bare) pickTree(onto, c string) (string, error) {
	parent, err := b.git("rev-parse", c+"^")
	if err != nil {
		return "", err
	}
	if parent == onto {
		return b.git("rev-parse", c+"^{tree}")
	}
	ontoTree, err := b.git("rev-parse", onto+"^{tree}")
	if err != nil {
		return "", err
	}
	stage, err := b.commitTree(ontoTree, []string{parent}, "stand-in: cherry-pick base\n", githubCommitter, githubCommitter)
	if err != nil {
		return "", err
	}
	return b.mergeTree(stage, c)
}

// commitTree writes a commit; msg is stored exactly as given.
func (b bare) commitTree(tree string, parents []string, msg string, author, committer ident) (string, error) {
	args := []string{"commit-tree", tree}
	for _, p := range parents {
		args = append(args, "-p", p)
	}
	env := []string{
		"GIT_AUTHOR_NAME=" + author.name, "GIT_AUTHOR_EMAIL=" + author.email,
		"GIT_COMMITTER_NAME=" + committer.name, "GIT_COMMITTER_EMAIL=" + committer.email,
	}
	if author.date != "" {
		env = append(env, "GIT_AUTHOR_DATE="+author.date)
	}
	if committer.date != "" {
		env = append(env, "GIT_COMMITTER_DATE="+committer.date)
	}
	if b.sign != "" {
		env = append(env, "GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=gpg.format", "GIT_CONFIG_VALUE_0=ssh",
			"GIT_CONFIG_KEY_1=user.signingkey", "GIT_CONFIG_VALUE_1="+b.sign)
		args = append(args, "-S")
	}
	out, _, err := b.run(msg, env, append(args, "-F", "-")...)
	return out, err
}

// message is a commit's message, exactly as stored.
func (b bare) message(c string) (string, error) {
	raw, err := b.rawCommit(c)
	if err != nil {
		return "", err
	}
	_, msg, _ := strings.Cut(raw, "\n\n")
	return msg, nil
}

// rawCommit is the commit object's text (untrimmed).
func (b bare) rawCommit(c string) (string, error) {
	cmd := exec.Command("git", "-C", b.dir, "cat-file", "commit", c)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git cat-file commit %s: %w", c, err)
	}
	return string(out), nil
}

// author is a commit's author, its date kept as git's raw time.
func (b bare) author(c string) (ident, error) {
	out, err := b.git("log", "-1", "--format=%an%x00%ae%x00%ad", "--date=raw", c)
	if err != nil {
		return ident{}, err
	}
	f := strings.Split(out, "\x00")
	if len(f) != 3 {
		return ident{}, fmt.Errorf("author of %s: %q", c, out)
	}
	return ident{name: f[0], email: f[1], date: "@" + f[2]}, nil
}

// updateRef moves ref from old to new, atomically: git refuses if the ref
// is no longer old (old "" means it must not exist yet).
func (b bare) updateRef(ref, new, old string) error {
	if old == "" {
		old = strings.Repeat("0", 40)
	}
	_, err := b.git("update-ref", "-m", "stand-in", ref, new, old)
	return err
}

// merged is what a merge did.
type merged struct {
	tip    string // the base branch's new tip
	merge  string // the merge commit (GitHub's merge_commit_sha, GitLab's)
	squash string // GitLab's squash commit, if one was made
}

// mergeInto runs build on the base's tip and the head's, then moves the
// base from that tip to the result with a compare-and-swap; if a push
// moved the base meanwhile, it builds again on the new tip, so a merge
// never loses a concurrent push. head is the head branch, pinned to
// headSHA when that is not "".
func (b bare) mergeInto(base, head, headSHA string, build func(old, head string) (merged, error)) (merged, error) {
	for try := 0; ; try++ {
		old, err := b.tip(base)
		if err != nil {
			return merged{}, err
		}
		h := headSHA
		if h == "" {
			if h, err = b.tip(head); err != nil {
				return merged{}, err
			}
		}
		if old == "" || h == "" {
			return merged{}, errNoBranch
		}
		m, err := build(old, h)
		if err != nil {
			return merged{}, err
		}
		err = b.updateRef("refs/heads/"+base, m.tip, old)
		if err == nil {
			return m, nil
		}
		if now, _ := b.tip(base); now == old || try >= 10 {
			return merged{}, err
		}
	}
}

// squashOnto is one commit on old with the merge of old and head's tree.
func (b bare) squashOnto(old, head, msg string, committer ident) (string, error) {
	tree, err := b.mergeTree(old, head)
	if err != nil {
		return "", err
	}
	author, err := b.author(head)
	if err != nil {
		return "", err
	}
	return b.commitTree(tree, []string{old}, msg, author, committer)
}

// mergeCommit is a two-parent commit merging head into old.
func (b bare) mergeCommit(old, head, msg string, author, committer ident) (string, error) {
	tree, err := b.mergeTree(old, head)
	if err != nil {
		return "", err
	}
	return b.commitTree(tree, []string{old, head}, msg, author, committer)
}

// rebaseOnto replays the commits of head not on old onto old, each with
// its own message and author and the stand-in as committer, as GitHub's
// "rebase and merge" does (it rewrites them even when they are on top
// already). It returns the last.
func (b bare) rebaseOnto(old, head string, committer ident) (string, error) {
	list, err := b.git("rev-list", "--reverse", "--topo-order", "--parents", old+".."+head)
	if err != nil {
		return "", err
	}
	if list == "" {
		return "", fmt.Errorf("%w: the head has no commits the base lacks", errConflict)
	}
	cur := old
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			return "", fmt.Errorf("%w: the head has merge commits, which a rebase cannot replay", errConflict)
		}
		tree, err := b.pickTree(cur, f[0])
		if err != nil {
			return "", err
		}
		msg, err := b.message(f[0])
		if err != nil {
			return "", err
		}
		author, err := b.author(f[0])
		if err != nil {
			return "", err
		}
		if cur, err = b.commitTree(tree, []string{cur}, msg, author, committer); err != nil {
			return "", err
		}
	}
	return cur, nil
}

// repoDir finds the bare repository for a path under root ("acme/env"):
// root/acme/env.git, or root/acme/env. ok is false if neither is one.
func repoDir(root, path string) (string, bool) {
	if path == "" || strings.Contains(path, "..") {
		return "", false
	}
	for _, d := range []string{path + ".git", path} {
		full := filepath.Join(root, filepath.FromSlash(d))
		if st, err := os.Stat(filepath.Join(full, "objects")); err == nil && st.IsDir() {
			if _, err := os.Stat(filepath.Join(full, "HEAD")); err == nil {
				return full, true
			}
		}
	}
	return "", false
}
