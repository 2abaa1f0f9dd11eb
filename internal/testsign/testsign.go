// Package testsign gives tests real signing keys and the real tools that
// check signatures: SSH keys from ssh-keygen, OpenPGP keys from gpg in a
// temporary GNUPGHOME, allowed_signers files, and the split of a raw commit
// into its signature and the payload it signs, done as git does it and
// without go-git, so what ferry writes is checked by something other than
// itself.
//
// A missing ssh-keygen or gpg skips the test, or fails it under
// FERRY_REQUIRE_SERVERS=1 (internal/testenv).
package testsign

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testenv"
)

// Key is an SSH key pair on disk, made by ssh-keygen.
type Key struct {
	Private, Public string // paths
	// Line is the public key without its comment: "ssh-ed25519 AAAA…".
	Line string
	// Fingerprint is ssh-keygen's: "SHA256:…".
	Fingerprint string
}

// SSHKey makes a key pair with ssh-keygen -t typ ("ed25519", "ecdsa",
// "rsa"; bits 0 for ssh-keygen's default size), encrypted with passphrase
// unless it is "".
func SSHKey(t testing.TB, typ string, bits int, passphrase string) Key {
	t.Helper()
	keygen := Keygen(t)
	dir := t.TempDir()
	k := Key{Private: filepath.Join(dir, "id_"+typ)}
	k.Public = k.Private + ".pub"
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", "testsign", "-f", k.Private}
	if bits > 0 {
		args = append(args, "-b", fmt.Sprint(bits))
	}
	if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -t %s: %v\n%s", typ, err, out)
	}
	pub, err := os.ReadFile(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	if len(f) < 2 {
		t.Fatalf("ssh-keygen wrote an odd public key: %q", pub)
	}
	k.Line = f[0] + " " + f[1]
	out, err := exec.Command(keygen, "-l", "-E", "sha256", "-f", k.Public).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v", err)
	}
	if f := strings.Fields(string(out)); len(f) >= 2 {
		k.Fingerprint = f[1]
	}
	return k
}

// Keygen is the path of ssh-keygen.
func Keygen(t testing.TB) string {
	t.Helper()
	return testenv.LookPath(t, "ssh-keygen", "Debian: apt-get install openssh-client; .ci/run installs openssh-server, which brings it")
}

// AllowedSigners writes an allowed_signers file of the given lines and
// returns its path.
func AllowedSigners(t testing.TB, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "allowed_signers")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// GPG is a gpg with a keyring of its own, in a temporary GNUPGHOME.
type GPG struct {
	Home string
	bin  string
}

// PGPKey is an OpenPGP key gpg made, exported to files.
type PGPKey struct {
	Fingerprint string
	// Secret is the armored secret key (gpg --armor --export-secret-keys),
	// encrypted with the passphrase it was made with; Public the armored
	// public key.
	Secret, Public string
}

// NewGPG starts an empty GNUPGHOME; its agent is stopped when the test
// ends.
func NewGPG(t testing.TB) *GPG {
	t.Helper()
	g := &GPG{bin: testenv.LookPath(t, "gpg", "Debian: apt-get install gnupg; .ci/run installs it")}
	// gpg-agent's socket must fit a sockaddr_un: a short directory.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g.Home = home
	t.Cleanup(func() {
		if p, err := exec.LookPath("gpgconf"); err == nil {
			cmd := exec.Command(p, "--kill", "gpg-agent")
			cmd.Env = g.Env()
			_ = cmd.Run()
		}
		os.RemoveAll(home)
	})
	return g
}

// Env is the process environment with GNUPGHOME set to g's.
func (g *GPG) Env() []string { return append(os.Environ(), "GNUPGHOME="+g.Home) }

// Run runs gpg in batch mode and fails the test on error.
func (g *GPG) Run(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(g.bin, append([]string{"--batch", "--no-tty", "--pinentry-mode", "loopback"}, args...)...)
	cmd.Env = g.Env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Key makes a signing key for uid ("Alice <alice@example.com>") of algo
// (gpg's --quick-gen-key names: "ed25519", "rsa2048"), protected with
// passphrase unless it is "", and exports it.
func (g *GPG) Key(t testing.TB, uid, algo, passphrase string) PGPKey {
	t.Helper()
	g.Run(t, "--passphrase", passphrase, "--quick-gen-key", uid, algo, "sign", "never")
	var k PGPKey
	for _, line := range strings.Split(g.Run(t, "--with-colons", "--list-keys", uid), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			k.Fingerprint = f[9]
			break
		}
	}
	if k.Fingerprint == "" {
		t.Fatalf("gpg listed no fingerprint for %s", uid)
	}
	dir := t.TempDir()
	k.Secret, k.Public = filepath.Join(dir, "secret.asc"), filepath.Join(dir, "public.asc")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(k.Secret, g.Run(t, "--passphrase", passphrase, "--armor", "--export-secret-keys", k.Fingerprint))
	write(k.Public, g.Run(t, "--armor", "--export", k.Fingerprint))
	return k
}

// Git runs git in dir with env added to the process environment, and
// returns what it printed and how it ended, for tests that expect it to
// fail.
func Git(dir string, env []string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1"), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// SplitCommit splits a raw commit object (git cat-file commit) as git
// does before it verifies: the gpgsig header's value is the signature, and
// the object without that header is the payload it signs.
func SplitCommit(raw []byte) (sig, payload []byte) {
	head, msg, _ := bytes.Cut(raw, []byte("\n\n"))
	var p, s bytes.Buffer
	in := false
	for _, line := range bytes.SplitAfter(append(head, '\n'), []byte("\n")) {
		switch {
		case bytes.HasPrefix(line, []byte("gpgsig ")):
			in = true
			s.Write(line[len("gpgsig "):])
		case in && bytes.HasPrefix(line, []byte(" ")):
			s.Write(line[1:])
		default:
			in = false
			p.Write(line)
		}
	}
	p.WriteString("\n")
	p.Write(msg)
	return s.Bytes(), p.Bytes()
}

// KeygenVerify runs `ssh-keygen -Y verify -f allowedSigners -I principal
// -n git -s SIG` with payload on its stdin, and returns its output and
// how it ended.
func KeygenVerify(t testing.TB, allowedSigners, principal string, sig, payload []byte) (string, error) {
	t.Helper()
	sigFile := filepath.Join(t.TempDir(), "commit.sig")
	if err := os.WriteFile(sigFile, sig, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Keygen(t), "-Y", "verify", "-f", allowedSigners, "-I", principal, "-n", "git", "-s", sigFile)
	cmd.Stdin = bytes.NewReader(payload)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
