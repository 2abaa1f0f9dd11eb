package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/internal/testsign"
	"github.com/ferrycd/ferry/pkg/cli"
	"github.com/google/go-cmp/cmp"
)

// signFixture is an env repo over smart HTTP, a registry with
// team/hello:v1 and v2, and every output of the CLI runs so far, for the
// check that no secret reached them.
type signFixture struct {
	reg     *testreg.Registry
	repo    *testgit.Repo
	env     map[string]string
	outputs []string
}

func newSignFixture(t *testing.T) *signFixture {
	t.Helper()
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	srv := testgit.Serve(t, repo)
	reg.Push(t, "team/hello:v1")
	reg.Push(t, "team/hello:v2")
	return &signFixture{reg: reg, repo: repo, env: map[string]string{"FERRY_REPO": srv.RepoURL(repo), "FERRY_AUTHOR": "Release Bot <bot@example.com>"}}
}

// run runs the CLI with f.env and extra variables, and keeps its output.
func (f *signFixture) run(t *testing.T, extra map[string]string, args ...string) (int, string, string) {
	t.Helper()
	env := map[string]string{}
	for k, v := range f.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	code, out, errOut := run(t, env, args...)
	f.outputs = append(f.outputs, out, errOut)
	return code, out, errOut
}

// deploy deploys team/hello:tag to candidate with the flags, and returns
// the commit.
func (f *signFixture) deploy(t *testing.T, extra map[string]string, tag string, flags ...string) string {
	t.Helper()
	args := append([]string{"deploy", "-v", "--env", "candidate", "--path", "apps/hello", "--image", f.reg.Host + "/team/hello:" + tag, "--output", "json"}, flags...)
	code, out, errOut := f.run(t, extra, args...)
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, errOut)
	}
	var rep struct{ Commit string }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Commit == "" {
		t.Fatalf("deploy printed %q: %v", out, err)
	}
	return rep.Commit
}

// noSecrets fails the test if any output so far holds a secret: a
// passphrase, or any line of a private key file.
func (f *signFixture) noSecrets(t *testing.T, passphrases []string, keyFiles ...string) {
	t.Helper()
	var secrets []string
	for _, p := range passphrases {
		if p != "" {
			secrets = append(secrets, p)
		}
	}
	for _, k := range keyFiles {
		data, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			// The armor's lines and its blank ones are no secret; every
			// line of the key's body is.
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
	}
	all := strings.Join(f.outputs, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("a secret reached the output: %q", s)
		}
	}
}

// clone is a clone of the env repo's branch, where git is asked about it.
func (f *signFixture) clone(t *testing.T, branch string) string {
	t.Helper()
	work := t.TempDir()
	testgit.Run(t, work, "clone", "-q", "-b", branch, f.repo.Dir, ".")
	return work
}

// A deploy with --sign-key makes a commit that git verify-commit and git
// log --show-signature accept in a clone, that ssh-keygen -Y verify accepts
// on the signature and payload as git splits them, and that history
// --verify reports as verified; no passphrase or key byte is printed.
func TestSignedDeployVerifiesWithGit(t *testing.T) {
	type key struct {
		file, pass string
		// check verifies HEAD of a clone with git; flag is history's.
		git       func(t *testing.T, dir string)
		trustFlag []string
		want      string
	}
	sshKey := func(typ string, bits int, pass string) func(t *testing.T) key {
		return func(t *testing.T) key {
			k := testsign.SSHKey(t, typ, bits, pass)
			allowed := testsign.AllowedSigners(t, `alice@example.com namespaces="git" `+k.Line)
			return key{
				file: k.Private, pass: pass, trustFlag: []string{"--allowed-signers", allowed},
				want: "verified ssh alice@example.com",
				git: func(t *testing.T, dir string) {
					_, out, err := testsign.Git(dir, nil, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", "HEAD")
					if err != nil || !strings.Contains(out, `Good "git" signature for alice@example.com`) {
						t.Errorf("git verify-commit HEAD: %v\n%s", err, out)
					}
					log, _, err := testsign.Git(dir, nil, "-c", "gpg.ssh.allowedSignersFile="+allowed, "log", "--show-signature", "-1")
					if err != nil || !strings.Contains(log, `Good "git" signature for alice@example.com`) {
						t.Errorf("git log --show-signature -1: %v\n%s", err, log)
					}
					raw, err := exec.Command("git", "-C", dir, "cat-file", "commit", "HEAD").Output()
					if err != nil {
						t.Fatal(err)
					}
					sig, payload := testsign.SplitCommit(raw)
					if out, err := testsign.KeygenVerify(t, allowed, "alice@example.com", sig, payload); err != nil {
						t.Errorf("ssh-keygen -Y verify: %v\n%s", err, out)
					}
					if out, err := testsign.KeygenVerify(t, allowed, "alice@example.com", sig, bytes.Replace(payload, []byte("hello"), []byte("hellO"), 1)); err == nil {
						t.Errorf("ssh-keygen -Y verify accepts an altered payload:\n%s", out)
					}
				},
			}
		}
	}
	for _, tc := range []struct {
		name string
		key  func(t *testing.T) key
	}{
		{"ed25519", sshKey("ed25519", 0, "")},
		{"ecdsa with a passphrase", sshKey("ecdsa", 256, "ecdsa passphrase 42")},
		{"rsa", sshKey("rsa", 2048, "")},
		{"openpgp with a passphrase", func(t *testing.T) key {
			g := testsign.NewGPG(t)
			const pass = "openpgp passphrase 42"
			k := g.Key(t, "Alice <alice@example.com>", "ed25519", pass)
			return key{
				file: k.Secret, pass: pass, trustFlag: []string{"--keyring", k.Public},
				want: "verified openpgp Alice <alice@example.com>",
				git: func(t *testing.T, dir string) {
					env := []string{"GNUPGHOME=" + g.Home}
					_, out, err := testsign.Git(dir, env, "verify-commit", "HEAD")
					if err != nil || !strings.Contains(out, `Good signature from "Alice <alice@example.com>"`) {
						t.Errorf("git verify-commit HEAD: %v\n%s", err, out)
					}
					log, _, err := testsign.Git(dir, env, "log", "--show-signature", "-1")
					if err != nil || !strings.Contains(log, `Good signature from "Alice <alice@example.com>"`) {
						t.Errorf("git log --show-signature -1: %v\n%s", err, log)
					}
				},
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSignFixture(t)
			k := tc.key(t)
			secrets := map[string]string{"FERRY_SIGN_KEY_PASSPHRASE": k.pass}
			commit := f.deploy(t, secrets, "v1", "--sign-key", k.file)
			work := f.clone(t, "candidate")
			if head := testgit.Run(t, work, "rev-parse", "HEAD"); head != commit {
				t.Fatalf("HEAD %s, want the deploy %s", head, commit)
			}
			k.git(t, work)
			f.repo.Fsck()

			// The key from the environment, as a pipeline passes it.
			f.deploy(t, map[string]string{"FERRY_SIGN_KEY": k.file, "FERRY_SIGN_KEY_PASSPHRASE": k.pass}, "v2")
			k.git(t, f.clone(t, "candidate"))

			code, out, errOut := f.run(t, nil, append([]string{"history", "--env", "candidate", "--path", "apps/hello", "--verify", "--output", "json"}, k.trustFlag...)...)
			if code != 0 {
				t.Fatalf("history --verify: exit %d\n%s", code, errOut)
			}
			var entries []struct {
				Commit    string
				Signature *struct {
					Signed, Verified bool
					Format, Signer   string
				}
			}
			if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 3 {
				t.Fatalf("history json: %v\n%s", err, out)
			}
			if s := entries[1].Signature; entries[1].Commit != commit || s == nil || !s.Signed || !s.Verified {
				t.Errorf("history entry of %s: %+v", commit, entries[1])
			}
			if s := entries[2].Signature; s == nil || s.Signed || s.Verified {
				t.Errorf("the unsigned seed: %+v", entries[2])
			}
			code, out, _ = f.run(t, nil, append([]string{"history", "--env", "candidate", "--path", "apps/hello", "--verify"}, k.trustFlag...)...)
			if lines := strings.Split(out, "\n"); code != 0 || !strings.Contains(lines[0], "SIGNATURE") ||
				!strings.Contains(lines[1], k.want) || !strings.Contains(lines[2], k.want) || !strings.Contains(lines[3], "unsigned") {
				t.Errorf("history --verify: exit %d\n%s", code, out)
			}

			// An encrypted key without its passphrase, or with a wrong
			// one, is refused before anything is written.
			if k.pass != "" {
				before := f.repo.Tip("candidate")
				for _, pass := range []string{"", "not the passphrase"} {
					code, _, errOut := f.run(t, map[string]string{"FERRY_SIGN_KEY_PASSPHRASE": pass}, "rollback", "--env", "candidate", "--path", "apps/hello", "--sign-key", k.file)
					if code != cli.ExitUsage || !strings.Contains(errOut, "FERRY_SIGN_KEY_PASSPHRASE") {
						t.Errorf("passphrase %q: exit %d\n%s", pass, code, errOut)
					}
				}
				if after := f.repo.Tip("candidate"); after != before {
					t.Errorf("candidate moved to %s", after)
				}
			}
			f.noSecrets(t, []string{k.pass, "not the passphrase"}, k.file)
		})
	}
}

// history --verify tells verified, unsigned, altered and foreign commits
// apart; promote --require-signed carries only a verified one, and refuses
// the others before writing anything.
func TestRequireSigned(t *testing.T) {
	f := newSignFixture(t)
	alice := testsign.SSHKey(t, "ed25519", 0, "")
	mallory := testsign.SSHKey(t, "ed25519", 0, "")
	allowed := testsign.AllowedSigners(t, "alice@example.com "+alice.Line)
	trust := []string{"--allowed-signers", allowed}

	byAlice := f.deploy(t, nil, "v1", "--sign-key", alice.Private)
	// The same commit, its message altered after signing.
	raw := []byte(f.repo.Git("cat-file", "commit", byAlice) + "\n")
	altered := bytes.Replace(raw, []byte("Ferry-Action: deploy"), []byte("Ferry-Action: deploy\nFerry-Note: approved"), 1)
	cmd := exec.Command("git", "-C", f.repo.Dir, "hash-object", "-t", "commit", "-w", "--stdin")
	cmd.Stdin = bytes.NewReader(altered)
	out, err := cmd.Output()
	if err != nil || bytes.Equal(altered, raw) {
		t.Fatalf("writing the altered commit: %v", err)
	}
	tampered := strings.TrimSpace(string(out))
	byMallory := f.deploy(t, nil, "v2", "--sign-key", mallory.Private)
	byHand := f.repo.Commit("candidate", "scale hello by hand", map[string]string{"apps/hello/note.txt": "scaled\n"})

	// history, text: one line per commit, newest first.
	code, hist, errOut := f.run(t, nil, append([]string{"history", "--env", "candidate", "--path", "apps/hello", "--verify"}, trust...)...)
	if code != 0 {
		t.Fatalf("history --verify: exit %d\n%s", code, errOut)
	}
	t.Logf("history --verify:\n%s", hist)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(hist), "\n")[1:] {
		for _, w := range []string{"unsigned", "BAD ssh: signed by SSH key " + mallory.Fingerprint + ", which is not among the allowed signers", "verified ssh alice@example.com"} {
			if strings.Contains(line, w) {
				got = append(got, w)
			}
		}
	}
	want := []string{"unsigned", "BAD ssh: signed by SSH key " + mallory.Fingerprint + ", which is not among the allowed signers", "verified ssh alice@example.com", "unsigned"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history --verify (-want +got):\n%s\n%s", diff, hist)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string // "" for a promote that goes through
	}{
		{name: "no keys", args: []string{"--require-signed"}, code: cli.ExitUsage, stderr: "--require-signed needs --allowed-signers"},
		{name: "unsigned tip", args: append([]string{"--require-signed"}, trust...), code: cli.ExitError,
			stderr: "refusing to promote candidate@" + byHand[:12] + ": the commit is not signed, and signed commits are required; sign the commits ferry makes there with --sign-key"},
		{name: "signed by a key not allowed", args: append([]string{"--require-signed", "--commit", byMallory}, trust...), code: cli.ExitError,
			stderr: "refusing to promote candidate@" + byMallory[:12] + ": its signature does not verify: signed by SSH key " + mallory.Fingerprint + ", which is not among the allowed signers"},
		{name: "altered after signing", args: append([]string{"--require-signed", "--commit", tampered, "--from", "tampered"}, trust...), code: cli.ExitError,
			stderr: "refusing to promote tampered@" + tampered[:12] + ": its signature does not verify: the signature does not match the commit"},
		{name: "dry run refused too", args: append([]string{"--require-signed", "--dry-run"}, trust...), code: cli.ExitError,
			stderr: "the commit is not signed"},
		{name: "verified", args: append([]string{"--require-signed", "--commit", byAlice, "--sign-key", alice.Private}, trust...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "altered after signing" {
				f.repo.Git("update-ref", "refs/heads/tampered", tampered)
			}
			before := f.repo.Tip("production")
			args := append([]string{"promote", "--from", "candidate", "--to", "production", "--path", "apps/hello"}, tc.args...)
			code, _, errOut := f.run(t, nil, args...)
			t.Logf("stderr: %s", errOut)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, want %d; stderr:\n%s\nwant %q", code, tc.code, errOut, tc.stderr)
			}
			if tc.stderr != "" {
				if after := f.repo.Tip("production"); after != before {
					t.Errorf("production moved from %s to %s", before, after)
				}
				return
			}
			// The promote's commit is signed too, and git says so.
			dir := f.clone(t, "production")
			if _, out, err := testsign.Git(dir, nil, "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", "HEAD"); err != nil || !strings.Contains(out, `Good "git" signature for alice@example.com`) {
				t.Errorf("git verify-commit of the promote: %v\n%s", err, out)
			}
		})
	}
	f.repo.Fsck()
	// git agrees about the altered commit.
	if _, out, err := testsign.Git(f.repo.Dir, nil, "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", tampered); err == nil {
		t.Errorf("git verify-commit accepts the altered commit:\n%s", out)
	}
	f.noSecrets(t, nil, alice.Private, mallory.Private)
}
