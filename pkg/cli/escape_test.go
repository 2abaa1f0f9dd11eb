package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
)

// Strings from a hostile env repo: an OSC that retitles the terminal, a CSI
// that clears it, a bell, DEL and a C1 CSI (U+009B).
const (
	evilAuthor  = "evil\x1b]0;pwned\x07\x1b[2J"
	evilSubject = "retitle \x1b]0;owned\x07 clear \x1b[2J\x1b[H c1 \u009b31m del \x7f end"
	// go-git refuses C0 in tree paths (as git's verify_path does), so the
	// file name carries a C1 CSI.
	evilName    = "notes\u009b2J.txt"
	evilContent = "line \x1b]0;pwned\x07 and \u009b2J\n"
)

// controls returns the control characters in s that a terminal acts on:
// C0 except newline, tab and carriage return, DEL, and C1 (as UTF-8 or as
// a bare byte).
func controls(s string) []string {
	var found []string
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1 && s[i] >= 0x80 && s[i] <= 0x9f:
			found = append(found, s[i:i+1])
		case r < 0x20 && r != '\n' && r != '\t' && r != '\r', r == 0x7f, r >= 0x80 && r <= 0x9f:
			found = append(found, string(r))
		}
		i += n
	}
	return found
}

// commitAs makes a commit with the git command line as a person with a
// hostile name would: author and subject exactly as given.
func commitAs(t *testing.T, repo *testgit.Repo, branch, author, subject string, files map[string]string) {
	t.Helper()
	work := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_DATE=2026-01-03T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-03T00:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("clone", "-q", "-b", branch, repo.Dir, ".")
	for p, c := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "-A")
	git("-c", "user.name="+author, "-c", "user.email=evil@example.com", "commit", "-q", "-m", subject)
	git("push", "-q", "origin", "HEAD:refs/heads/"+branch)
}

// Text output shows the control characters of repo content escaped
// (\u001b, the form JSON uses), so a hostile commit cannot retitle or clear
// the terminal of whoever reads the history or a diff or an error; JSON
// output keeps the original strings.
func TestTerminalEscapes(t *testing.T) {
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	srv := testgit.Serve(t, repo)
	reg.Push(t, "team/evil:v1")
	reg.Push(t, "team/kevil:v1")
	deployment := func(name string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: " + reg.Host + "/team/" + name + ":v0\n"
	}
	commitAs(t, repo, "candidate", evilAuthor, evilSubject, map[string]string{
		"apps/hello/" + evilName: evilContent,
		// A manifest whose file name the YAML parser's error quotes.
		"apps/evil/deployment.yaml":                 deployment("evil"),
		"apps/evil/bad\x1b]0;pwned\x07\x1b[2J.yaml": "a: [\n",
		// A kustomization whose content kustomize's error quotes.
		"apps/kevil/deployment.yaml":    deployment("kevil"),
		"apps/kevil/kustomization.yaml": "resources:\n  - deployment.yaml\n  - \"gone\\e]0;pwned\\a\\e[2J.yaml\"\n",
	})
	env := map[string]string{"FERRY_REPO": srv.RepoURL(repo)}

	texts := []struct {
		name string
		args []string
		code int
		// shown is what the escaped text must hold.
		shown []string
		// stderr: the text is an error message, not a result.
		stderr bool
	}{
		{name: "history", args: []string{"history", "--env", "candidate", "--path", "apps/hello"},
			shown: []string{`evil\u001b]0;pwned\u0007\u001b[2J`, `retitle \u001b]0;owned\u0007 clear \u001b[2J\u001b[H c1 \u009b31m del \u007f end`}},
		{name: "diff", args: []string{"diff", "--from", "candidate", "--to", "production", "--path", "apps/hello", "--patch"},
			shown: []string{`added     apps/hello/notes\u009b2J.txt`, `+line \u001b]0;pwned\u0007 and \u009b2J`}},
		{name: "dry-run diff", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello", "--dry-run"},
			shown: []string{`-line \u001b]0;pwned\u0007 and \u009b2J`}},
		{name: "error quoting a file name", args: []string{"deploy", "--env", "candidate", "--path", "apps/evil", "--image", reg.Host + "/team/evil:v1"},
			code: 1, stderr: true, shown: []string{`parsing apps/evil/bad\u001b]0;pwned\u0007\u001b[2J.yaml: yaml:`}},
		{name: "error quoting file content", args: []string{"deploy", "--env", "candidate", "--path", "apps/kevil", "--image", reg.Host + "/team/kevil:v1"},
			code: 1, stderr: true, shown: []string{`gone\u001b]0;pwned\u0007\u001b[2J.yaml`}},
		{name: "error with JSON logs", args: []string{"deploy", "--env", "candidate", "--path", "apps/kevil", "--image", reg.Host + "/team/kevil:v1", "--log-format", "json", "-v"},
			code: 1, stderr: true, shown: []string{`gone\u001b]0;pwned\u0007\u001b[2J.yaml`}},
	}
	for _, tc := range texts {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, env, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut)
			}
			for stream, s := range map[string]string{"stdout": out, "stderr": errOut} {
				if c := controls(s); len(c) > 0 {
					t.Errorf("%s holds control characters %q:\n%s", stream, c, s)
				}
			}
			text := out
			if tc.stderr {
				text = errOut
			}
			for _, want := range tc.shown {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %s:\n%s", want, text)
				}
			}
		})
	}

	// JSON keeps the strings as they are: a program gets what git holds.
	t.Run("history json", func(t *testing.T) {
		code, out, errOut := run(t, env, "history", "--env", "candidate", "--path", "apps/hello", "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var entries []struct{ Author, Subject string }
		if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) == 0 {
			t.Fatalf("not a JSON array (%v):\n%s", err, out)
		}
		if want := evilAuthor + " <evil@example.com>"; entries[0].Author != want || entries[0].Subject != evilSubject {
			t.Errorf("author %q, subject %q; want %q, %q", entries[0].Author, entries[0].Subject, want, evilSubject)
		}
		if c := controls(out); len(c) > 0 {
			t.Errorf("raw control characters %q in the JSON:\n%s", c, out)
		}
	})
	t.Run("diff json", func(t *testing.T) {
		code, out, errOut := run(t, env, "diff", "--from", "candidate", "--to", "production", "--path", "apps/hello", "--patch", "--output", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var res struct {
			Apps  []struct{ Added []string }
			Patch string
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Apps) != 1 {
			t.Fatalf("not the JSON diff (%v):\n%s", err, out)
		}
		if got := res.Apps[0].Added; len(got) != 1 || got[0] != "apps/hello/"+evilName {
			t.Errorf("added %q, want %q", got, "apps/hello/"+evilName)
		}
		if !strings.Contains(res.Patch, "+"+evilContent) {
			t.Errorf("patch lacks the file's content as it is:\n%q", res.Patch)
		}
	})
}
