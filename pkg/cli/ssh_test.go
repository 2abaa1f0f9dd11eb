package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/internal/testsshd"
)

// sshFixture is an env repo reachable over SSH through OpenSSH's sshd, and
// a registry holding team/hello:v1.
type sshFixture struct {
	sshd   *testsshd.Server
	reg    *testreg.Registry
	repo   *testgit.Repo
	url    string // ssh://USER@127.0.0.1:PORT/abs/path/env.git
	digest string // of team/hello:v1
	image  string // HOST/team/hello:v1
}

func newSSHFixture(t *testing.T, opts ...testsshd.Option) *sshFixture {
	t.Helper()
	sshd := testsshd.Start(t, opts...)
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	return &sshFixture{
		sshd: sshd, reg: reg, repo: repo,
		url:    sshd.URL(repo.Dir),
		digest: reg.Push(t, "team/hello:v1"),
		image:  reg.Host + "/team/hello:v1",
	}
}

// deploy runs `ferry deploy` of f.image over SSH with the extra flags.
func (f *sshFixture) deploy(t *testing.T, flags ...string) (code int, stdout, stderr string) {
	t.Helper()
	args := append([]string{"deploy", "--repo", f.url, "--env", "candidate", "--path", "apps/hello", "--image", f.image}, flags...)
	return run(t, nil, args...)
}

func TestSSHDeployAndHistory(t *testing.T) {
	f := newSSHFixture(t)
	before := f.repo.Tip("candidate")
	known := f.sshd.KnownHosts(t)

	code, out, errOut := f.deploy(t, "--ssh-key", f.sshd.ClientKey.Private, "--known-hosts", known, "--output", "json")
	if code != 0 {
		t.Fatalf("deploy over ssh: exit %d\nstderr: %s\nsshd log:\n%s", code, errOut, f.sshd.Log())
	}
	var rep struct {
		Changed bool
		Commit  string
		Parent  string
		Images  []struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	after := f.repo.Tip("candidate")
	if !rep.Changed || rep.Commit != after || rep.Parent != before || after == before ||
		len(rep.Images) != 1 || rep.Images[0].Digest != f.digest {
		t.Errorf("report %+v; tip %s -> %s, digest %s", rep, before, after, f.digest)
	}
	if got, want := f.repo.Show("candidate", "apps/hello/kustomization.yaml"), "digest: "+f.digest; !strings.Contains(got, want) {
		t.Errorf("kustomization.yaml lacks %q:\n%s", want, got)
	}
	f.repo.Fsck()
	if strings.Contains(errOut, "WARN") {
		t.Errorf("unexpected warnings on stderr: %s", errOut)
	}

	// The read path: history fetches deeper over the same transport.
	code, out, errOut = run(t, nil, "history", "--repo", f.url, "--env", "candidate", "--path", "apps/hello",
		"--ssh-key", f.sshd.ClientKey.Private, "--known-hosts", known, "--output", "json")
	if code != 0 {
		t.Fatalf("history over ssh: exit %d\n%s", code, errOut)
	}
	var hist []struct{ Commit, Action string }
	if err := json.Unmarshal([]byte(out), &hist); err != nil {
		t.Fatalf("history is not a JSON array: %v\n%s", err, out)
	}
	if len(hist) != 2 || hist[0].Commit != after || hist[0].Action != "deploy" || hist[1].Commit != before || hist[1].Action != "manual" {
		t.Errorf("history = %+v; want the deploy %s, then the seed %s", hist, after, before)
	}
}

// A known_hosts entry for this host and port with another key is a possible
// man in the middle: nothing is fetched or pushed.
func TestSSHHostKeyMismatchRefused(t *testing.T) {
	f := newSSHFixture(t)
	before := f.repo.Tip("candidate")
	impostor := testsshd.NewKey(t, "ed25519")
	known := f.sshd.KnownHosts(t, impostor)

	code, out, errOut := f.deploy(t, "--ssh-key", f.sshd.ClientKey.Private, "--known-hosts", known)
	if code != 1 {
		t.Errorf("exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "key mismatch") {
		t.Errorf("stderr does not name the host key mismatch:\n%s", errOut)
	}
	if got := f.repo.Tip("candidate"); got != before {
		t.Errorf("remote moved %s -> %s despite the host key mismatch", before, got)
	}
	// Refused during the handshake, before any authentication.
	if log := f.sshd.Log(); strings.Contains(log, "Accepted publickey") {
		t.Errorf("client authenticated to a server whose host key did not match:\n%s", log)
	}
}

// A known_hosts file that does not know the host at all is refused too:
// nothing is trusted on first use.
func TestSSHUnknownHostRefused(t *testing.T) {
	f := newSSHFixture(t)
	before := f.repo.Tip("candidate")
	other := testsshd.NewKey(t, "ed25519")
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte("[127.0.0.1]:1 "+other.Line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, _, errOut := f.deploy(t, "--ssh-key", f.sshd.ClientKey.Private, "--known-hosts", known)
	if code != 1 || !strings.Contains(errOut, "key is unknown") {
		t.Errorf("exit %d, stderr %q; want 1 and the host key unknown", code, errOut)
	}
	if got := f.repo.Tip("candidate"); got != before {
		t.Errorf("remote moved %s -> %s for an unknown host", before, got)
	}
}

func TestSSHInsecureSkipHostKeyCheck(t *testing.T) {
	f := newSSHFixture(t)
	before := f.repo.Tip("candidate")
	known := f.sshd.KnownHosts(t, testsshd.NewKey(t, "ed25519")) // mismatching

	code, _, errOut := f.deploy(t, "--ssh-key", f.sshd.ClientKey.Private, "--known-hosts", known, "--insecure-skip-host-key-check")
	if code != 0 {
		t.Fatalf("exit %d\nstderr: %s\nsshd log:\n%s", code, errOut, f.sshd.Log())
	}
	if f.repo.Tip("candidate") == before {
		t.Errorf("remote did not move")
	}
	f.repo.Fsck()
	if !strings.Contains(errOut, "WARN") || !strings.Contains(errOut, "host key verification is OFF") {
		t.Errorf("stderr does not warn that host keys are not verified:\n%s", errOut)
	}
}

// The flag's help says what skipping the check exposes one to.
func TestInsecureSkipHostKeyCheckHelp(t *testing.T) {
	code, out, errOut := run(t, nil, "deploy", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, help, ok := strings.Cut(out, "--insecure-skip-host-key-check")
	if !ok {
		t.Fatalf("deploy --help lacks --insecure-skip-host-key-check:\n%s", out)
	}
	help, _, _ = strings.Cut(help, "\n  -") // up to the next flag
	help = strings.Join(strings.Fields(help), " ")
	for _, want := range []string{"DANGEROUS", "accept any SSH host key", "intercept", "read and rewrite your environments"} {
		if !strings.Contains(help, want) {
			t.Errorf("help of --insecure-skip-host-key-check lacks %q: %q", want, help)
		}
	}
}

func TestSSHWrongClientKeyRefused(t *testing.T) {
	f := newSSHFixture(t)
	before := f.repo.Tip("candidate")
	stranger := testsshd.NewKey(t, "ed25519")

	code, out, errOut := f.deploy(t, "--ssh-key", stranger.Private, "--known-hosts", f.sshd.KnownHosts(t))
	if code != 1 {
		t.Errorf("exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "unable to authenticate") || !strings.Contains(errOut, "publickey") {
		t.Errorf("stderr does not say the key was refused:\n%s", errOut)
	}
	if got := f.repo.Tip("candidate"); got != before {
		t.Errorf("remote moved %s -> %s with an unauthorized key", before, got)
	}
	if log := f.sshd.Log(); strings.Contains(log, "Accepted publickey") {
		t.Errorf("sshd accepted a key it does not authorize:\n%s", log)
	}
}

// Git hosts offer several host keys (GitHub: ed25519, ECDSA and RSA), and a
// known_hosts file often lists only one of them, as `ssh-keyscan -t ed25519`
// writes it. OpenSSH's client then negotiates the type it knows; ferry must
// too, rather than pick the server's favourite and call it a mismatch.
func TestSSHKnownHostsListsOneOfSeveralHostKeys(t *testing.T) {
	f := newSSHFixture(t, testsshd.WithHostKeyTypes("ecdsa", "ed25519"))
	before := f.repo.Tip("candidate")
	known := f.sshd.KnownHosts(t, f.sshd.HostKeys[1]) // ed25519 only

	code, _, errOut := f.deploy(t, "--ssh-key", f.sshd.ClientKey.Private, "--known-hosts", known)
	if code != 0 {
		t.Fatalf("exit %d with the server's ed25519 key in known_hosts\nstderr: %s", code, errOut)
	}
	f.repo.Fsck()
	if f.repo.Tip("candidate") == before {
		t.Errorf("remote did not move")
	}
}
