package sign_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testsign"
	"github.com/ferrycd/ferry/pkg/sign"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// when is every test commit's time: fixed, so valid-after and
// valid-before have something to compare with.
var when = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// repo is a git repository on disk that tests store commit objects in
// and ask git about.
type repo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	testgit.RequireGit(t)
	dir := t.TempDir()
	testgit.Run(t, dir, "init", "-q")
	return &repo{t: t, dir: dir}
}

// emptyTree is git's empty tree; every test commit points at it.
func (r *repo) emptyTree() plumbing.Hash {
	return plumbing.NewHash(testgit.Run(r.t, r.dir, "mktree"))
}

// commit is an unsigned commit in memory.
func (r *repo) commit(msg string) *object.Commit {
	who := object.Signature{Name: "ferry", Email: "ferry@noreply.invalid", When: when}
	return &object.Commit{Author: who, Committer: who, Message: msg, TreeHash: r.emptyTree()}
}

// signed is c signed by s, the way envrepo signs: the commit encoded
// without a signature is the message.
func signed(t *testing.T, s sign.Signer, c *object.Commit) *object.Commit {
	t.Helper()
	var o plumbing.MemoryObject
	if err := c.EncodeWithoutSignature(&o); err != nil {
		t.Fatal(err)
	}
	rd, _ := o.Reader()
	sig, err := s.Sign(rd)
	if err != nil {
		t.Fatal(err)
	}
	c.PGPSignature = string(sig)
	return c
}

// raw encodes c with its signature.
func raw(t *testing.T, c *object.Commit) []byte {
	t.Helper()
	var o plumbing.MemoryObject
	if err := c.Encode(&o); err != nil {
		t.Fatal(err)
	}
	rd, _ := o.Reader()
	var b bytes.Buffer
	b.ReadFrom(rd)
	return b.Bytes()
}

// store writes a raw commit object into r with git hash-object, which
// checks its format, and returns its hash.
func (r *repo) store(data []byte) string {
	r.t.Helper()
	cmd := exec.Command("git", "hash-object", "-t", "commit", "-w", "--stdin")
	cmd.Dir, cmd.Stdin = r.dir, bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git hash-object: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// load decodes the commit h as git stored it, for Verify.
func (r *repo) load(h string) *object.Commit {
	r.t.Helper()
	o := &plumbing.MemoryObject{}
	o.SetType(plumbing.CommitObject)
	o.Write([]byte(testgit.Run(r.t, r.dir, "cat-file", "commit", h) + "\n"))
	var c object.Commit
	if err := c.Decode(o); err != nil {
		r.t.Fatal(err)
	}
	return &c
}

// catFile is the raw commit as git has it.
func (r *repo) catFile(h string) []byte {
	r.t.Helper()
	out, err := exec.Command("git", "-C", r.dir, "cat-file", "commit", h).Output()
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// gitVerify runs git verify-commit on h with the allowed signers file
// (SSH) or the environment env (GNUPGHOME, OpenPGP).
func (r *repo) gitVerify(h, allowedSigners string, env []string) (string, error) {
	args := []string{"-c", "gpg.format=ssh"}
	if allowedSigners != "" {
		args = append(args, "-c", "gpg.ssh.allowedSignersFile="+allowedSigners)
	}
	_, stderr, err := testsign.Git(r.dir, env, append(args, "verify-commit", h)...)
	return stderr, err
}

func verifier(t *testing.T, allowedSigners, keyring string) sign.Verifier {
	t.Helper()
	v, err := sign.LoadVerifier(allowedSigners, keyring)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Each key type signs a commit that git verify-commit, git log
// --show-signature and ssh-keygen -Y verify accept, and Verify accepts a
// commit git itself signed with the same key: the format is SSHSIG as
// OpenSSH writes and reads it, in both directions.
func TestSSHSignaturesAsGitMakesThem(t *testing.T) {
	for _, tc := range []struct {
		name, typ string
		bits      int
	}{
		{"ed25519", "ed25519", 0}, {"ecdsa-p256", "ecdsa", 256}, {"ecdsa-p384", "ecdsa", 384}, {"ecdsa-p521", "ecdsa", 521}, {"rsa-2048", "rsa", 2048},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t)
			key := testsign.SSHKey(t, tc.typ, tc.bits, "")
			allowed := testsign.AllowedSigners(t, `alice@example.com namespaces="git" `+key.Line)
			s, err := sign.Load(key.Private, nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.Format() != sign.FormatSSH || s.ID() != key.Fingerprint {
				t.Errorf("Format %q, ID %q; want ssh, %s", s.Format(), s.ID(), key.Fingerprint)
			}
			h := r.store(raw(t, signed(t, s, r.commit("deploy hello\n"))))

			out, err := r.gitVerify(h, allowed, nil)
			if want := `Good "git" signature for alice@example.com`; err != nil || !strings.Contains(out, want) {
				t.Errorf("git verify-commit: %v\n%s\nwant %q", err, out, want)
			}
			if log, _, err := testsign.Git(r.dir, nil, "-c", "gpg.ssh.allowedSignersFile="+allowed, "log", "--show-signature", "-1", h); err != nil || !strings.Contains(log, `Good "git" signature for alice@example.com`) {
				t.Errorf("git log --show-signature: %v\n%s", err, log)
			}
			sig, payload := testsign.SplitCommit(r.catFile(h))
			if out, err := testsign.KeygenVerify(t, allowed, "alice@example.com", sig, payload); err != nil {
				t.Errorf("ssh-keygen -Y verify: %v\n%s", err, out)
			}
			if lines := strings.Split(strings.TrimSpace(string(sig)), "\n"); len(lines[1]) != 70 {
				t.Errorf("armor lines are %d wide, ssh-keygen's 70:\n%s", len(lines[1]), sig)
			}

			want := sign.Result{Signed: true, Verified: true, Format: "ssh", Signer: "alice@example.com", Key: key.Fingerprint}
			got, err := sign.Verify(r.load(h), verifier(t, allowed, ""))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Verify of ferry's signature (-want +got):\n%s", diff)
			}

			// git signs, Verify checks.
			work := t.TempDir()
			testgit.Run(t, work, "init", "-q")
			testgit.Run(t, work, "-c", "gpg.format=ssh", "-c", "user.signingKey="+key.Private, "commit", "-q", "-S", "--allow-empty", "-m", "by git")
			gitCommit := &repo{t: t, dir: work}
			got, err = sign.Verify(gitCommit.load("HEAD"), verifier(t, allowed, ""))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Verify of git's signature (-want +got):\n%s", diff)
			}
		})
	}
}

// What must not verify does not, and git agrees on every case.
func TestSSHVerifyRefuses(t *testing.T) {
	r := newRepo(t)
	alice := testsign.SSHKey(t, "ed25519", 0, "")
	mallory := testsign.SSHKey(t, "ed25519", 0, "")
	s, err := sign.Load(alice.Private, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := sign.Load(mallory.Private, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := raw(t, signed(t, s, r.commit("deploy hello v1\n")))
	// sshSigned signs payload with ssh-keygen in namespace ns and puts the
	// signature in the commit's header.
	foreignNamespace := func() []byte {
		c := r.commit("deploy hello v1\n")
		var o plumbing.MemoryObject
		c.EncodeWithoutSignature(&o)
		rd, _ := o.Reader()
		var payload bytes.Buffer
		payload.ReadFrom(rd)
		cmd := exec.Command(testsign.Keygen(t), "-Y", "sign", "-q", "-n", "file", "-f", alice.Private)
		cmd.Stdin = &payload
		sig, err := cmd.Output()
		if err != nil {
			t.Fatalf("ssh-keygen -Y sign: %v", err)
		}
		c.PGPSignature = string(sig)
		return raw(t, c)
	}
	for _, tc := range []struct {
		name    string
		commit  []byte
		allowed []string // allowed_signers lines; nil for none
		want    sign.Result
		reason  string
	}{
		{name: "unsigned", commit: raw(t, r.commit("by hand\n")), allowed: []string{"alice@example.com " + alice.Line},
			want: sign.Result{}, reason: "not signed"},
		{name: "key not allowed", commit: raw(t, signed(t, ms, r.commit("deploy hello v1\n"))), allowed: []string{"alice@example.com " + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh", Key: mallory.Fingerprint}, reason: "not among the allowed signers"},
		{name: "message altered", commit: bytes.Replace(good, []byte("hello v1"), []byte("hello v6"), 1), allowed: []string{"alice@example.com " + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh", Key: alice.Fingerprint}, reason: "does not match the commit"},
		{name: "author altered", commit: bytes.Replace(good, []byte("author ferry"), []byte("author ferrx"), 1), allowed: []string{"alice@example.com " + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh", Key: alice.Fingerprint}, reason: "does not match the commit"},
		{name: "key for another namespace", commit: good, allowed: []string{`alice@example.com namespaces="file,email" ` + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh", Key: alice.Fingerprint}, reason: `may not sign in namespace "git"`},
		{name: "key expired before the commit", commit: good, allowed: []string{`alice@example.com valid-before="20250101Z" ` + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh", Key: alice.Fingerprint}, reason: "valid only before 2025-01-01"},
		{name: "key valid only after the commit", commit: good, allowed: []string{`alice@example.com valid-after="20270101Z" ` + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh", Key: alice.Fingerprint}, reason: "valid only after 2027-01-01"},
		{name: "a CA line is not the key", commit: good, allowed: []string{`alice@example.com cert-authority ` + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh", Key: alice.Fingerprint}, reason: "not among the allowed signers"},
		{name: "signed for another namespace", commit: foreignNamespace(), allowed: []string{"alice@example.com " + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh", Key: alice.Fingerprint}, reason: `signed for namespace "file"`},
		{name: "no allowed signers", commit: good,
			want: sign.Result{Signed: true, Format: "ssh", Key: alice.Fingerprint}, reason: "no allowed signers"},
		{name: "garbage signature", commit: bytes.Replace(good, []byte("\n U1NIU0lH"), []byte("\n AAAAAAAA"), 1), allowed: []string{"alice@example.com " + alice.Line},
			want: sign.Result{Signed: true, Format: "ssh"}, reason: "malformed SSH signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := r.store(tc.commit)
			var v sign.Verifier
			allowed := ""
			if tc.allowed != nil {
				allowed = testsign.AllowedSigners(t, tc.allowed...)
				v = verifier(t, allowed, "")
			}
			got, err := sign.Verify(r.load(h), v)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("Reason %q, want it to say %q", got.Reason, tc.reason)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(sign.Result{}, "Reason")); diff != "" {
				t.Errorf("Verify (-want +got):\n%s", diff)
			}
			if allowed == "" {
				allowed = testsign.AllowedSigners(t, "# nobody")
			}
			out, err := r.gitVerify(h, allowed, nil)
			if err == nil {
				t.Errorf("git verify-commit accepts what Verify refuses:\n%s", out)
			}
			t.Logf("git verify-commit: %v\n%s", err, out)
		})
	}
}

// An encrypted key needs its passphrase, and says so; no error quotes the
// passphrase or the key.
func TestLoadPassphrase(t *testing.T) {
	const pass = "correct horse battery staple"
	key := testsign.SSHKey(t, "ed25519", 0, pass)
	pgp := testsign.NewGPG(t).Key(t, "Carol <carol@example.com>", "ed25519", pass)
	secret, _ := os.ReadFile(key.Private)
	pgpSecret, _ := os.ReadFile(pgp.Secret)
	for _, tc := range []struct {
		name, file, pass string
		want             error
		says             string
	}{
		{name: "ssh without", file: key.Private, want: sign.ErrPassphraseNeeded},
		{name: "ssh wrong", file: key.Private, pass: "wrong horse", want: sign.ErrWrongPassphrase},
		{name: "ssh right", file: key.Private, pass: pass},
		{name: "openpgp without", file: pgp.Secret, want: sign.ErrPassphraseNeeded},
		{name: "openpgp wrong", file: pgp.Secret, pass: "wrong horse", want: sign.ErrWrongPassphrase},
		{name: "openpgp right", file: pgp.Secret, pass: pass},
		{name: "ssh public key", file: key.Public, says: "an SSH public key"},
		{name: "openpgp public key", file: pgp.Public, says: "an OpenPGP public key"},
		{name: "not a key", file: writeFile(t, "key", "hello\n"), says: "not an OpenSSH or OpenPGP private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sign.Load(tc.file, []byte(tc.pass))
			switch {
			case tc.want == nil && tc.says == "":
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Sign(strings.NewReader("x")); err != nil {
					t.Fatal(err)
				}
				return
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("error %v, want %v", err, tc.want)
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("error %v, want it to say %q", err, tc.says)
			}
			for _, secret := range [][]byte{[]byte(pass), []byte("wrong horse"), secret[40:80], pgpSecret[100:140]} {
				if err != nil && strings.Contains(err.Error(), string(secret)) {
					t.Errorf("the error quotes a secret: %v", err)
				}
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// An OpenPGP key from gpg signs a commit that git verify-commit (running
// gpg) accepts, and Verify accepts a commit git signed with gpg; a key
// missing from the keyring and an altered commit do not verify, for git
// either.
func TestOpenPGPSignaturesAsGitMakesThem(t *testing.T) {
	r := newRepo(t)
	g := testsign.NewGPG(t)
	const pass = "s3cret passphrase"
	alice := g.Key(t, "Alice <alice@example.com>", "ed25519", pass)
	bob := g.Key(t, "Bob <bob@example.com>", "rsa2048", "") // git signs with it: no passphrase to ask for
	outsider := testsign.NewGPG(t).Key(t, "Eve <eve@example.com>", "ed25519", "")

	s, err := sign.Load(alice.Secret, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	if s.Format() != sign.FormatOpenPGP || !strings.Contains(s.ID(), alice.Fingerprint) {
		t.Errorf("Format %q, ID %q", s.Format(), s.ID())
	}
	good := raw(t, signed(t, s, r.commit("deploy hello v1\n")))
	h := r.store(good)
	if out, err := r.gitVerify(h, "", []string{"GNUPGHOME=" + g.Home}); err != nil || !strings.Contains(out, `Good signature from "Alice <alice@example.com>"`) {
		t.Errorf("git verify-commit: %v\n%s", err, out)
	}
	if log, _, err := testsign.Git(r.dir, []string{"GNUPGHOME=" + g.Home}, "log", "--show-signature", "-1", h); err != nil || !strings.Contains(log, `Good signature from "Alice <alice@example.com>"`) {
		t.Errorf("git log --show-signature: %v\n%s", err, log)
	}
	keyring := writeFile(t, "keyring.asc", read(t, alice.Public)+read(t, bob.Public))
	got, err := sign.Verify(r.load(h), verifier(t, "", keyring))
	if err != nil {
		t.Fatal(err)
	}
	want := sign.Result{Signed: true, Verified: true, Format: "openpgp", Signer: "Alice <alice@example.com>", Key: alice.Fingerprint}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify of ferry's signature (-want +got):\n%s", diff)
	}

	// git signs with gpg, Verify checks.
	work := t.TempDir()
	testgit.Run(t, work, "init", "-q")
	if _, errOut, err := testsign.Git(work, []string{"GNUPGHOME=" + g.Home}, "-c", "user.signingKey="+bob.Fingerprint,
		"-c", "user.name=Bob", "-c", "user.email=bob@example.com", "commit", "-q", "-S", "--allow-empty", "-m", "by git"); err != nil {
		t.Fatalf("git commit -S: %v\n%s", err, errOut)
	}
	got, err = sign.Verify((&repo{t: t, dir: work}).load("HEAD"), verifier(t, "", keyring))
	if err != nil {
		t.Fatal(err)
	}
	want = sign.Result{Signed: true, Verified: true, Format: "openpgp", Signer: "Bob <bob@example.com>", Key: bob.Fingerprint}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify of git's signature (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name    string
		commit  []byte
		keyring string
		want    sign.Result
		reason  string
	}{
		{name: "key not in the keyring", commit: good, keyring: outsider.Public,
			want: sign.Result{Signed: true, Format: "openpgp", Key: alice.Fingerprint}, reason: "not in the keyring"},
		{name: "message altered", commit: bytes.Replace(good, []byte("hello v1"), []byte("hello v6"), 1), keyring: alice.Public,
			want: sign.Result{Signed: true, Format: "openpgp", Key: alice.Fingerprint}, reason: "does not match the commit"},
		{name: "no keyring", commit: good,
			want: sign.Result{Signed: true, Format: "openpgp", Key: alice.Fingerprint}, reason: "no OpenPGP keyring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := r.store(tc.commit)
			var v sign.Verifier
			if tc.keyring != "" {
				v = verifier(t, "", tc.keyring)
			}
			got, err := sign.Verify(r.load(h), v)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("Reason %q, want it to say %q", got.Reason, tc.reason)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(sign.Result{}, "Reason")); diff != "" {
				t.Errorf("Verify (-want +got):\n%s", diff)
			}
		})
	}
	// git, with gpg's keyring holding alice, refuses the altered commit.
	altered := r.store(bytes.Replace(good, []byte("hello v1"), []byte("hello v6"), 1))
	if out, err := r.gitVerify(altered, "", []string{"GNUPGHOME=" + g.Home}); err == nil {
		t.Errorf("git verify-commit accepts the altered commit:\n%s", out)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A Signer is go-git's git.Signer: go-git's own commits signed with it
// verify with git.
func TestSignerSignsForGoGit(t *testing.T) {
	var _ git.Signer = sign.Signer(nil)
	key := testsign.SSHKey(t, "ed25519", 0, "")
	allowed := testsign.AllowedSigners(t, "alice@example.com "+key.Line)
	s, err := sign.Load(key.Private, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := newRepo(t).dir
	r, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	who := &object.Signature{Name: "ferry", Email: "ferry@noreply.invalid", When: when}
	if _, err := wt.Commit("by go-git\n", &git.CommitOptions{AllowEmptyCommits: true, Author: who, Signer: s}); err != nil {
		t.Fatal(err)
	}
	_, out, err := testsign.Git(dir, nil, "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", "HEAD")
	if err != nil || !strings.Contains(out, `Good "git" signature for alice@example.com`) {
		t.Errorf("git verify-commit: %v\n%s", err, out)
	}
}
