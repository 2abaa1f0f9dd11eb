package envrepo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testsign"
)

// keygenSigner signs with ssh-keygen -Y sign -n git, as git itself does
// with gpg.format=ssh: the reference implementation, so this test checks
// the writer's plumbing and not pkg/sign.
type keygenSigner struct {
	key   string
	calls int
}

func (k *keygenSigner) Sign(message io.Reader) ([]byte, error) {
	k.calls++
	cmd := exec.Command("ssh-keygen", "-Y", "sign", "-q", "-n", "git", "-f", k.key)
	cmd.Stdin = message
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	return out, nil
}

type failingSigner struct{}

func (failingSigner) Sign(io.Reader) ([]byte, error) {
	return nil, errors.New("the key is on a token that is unplugged")
}

// A writer with a Signer pushes commits that git verify-commit accepts;
// one whose signer fails pushes nothing.
func TestUpdateSigned(t *testing.T) {
	key := testsign.SSHKey(t, "ed25519", 0, "")
	allowed := testsign.AllowedSigners(t, "ferry@example.com "+key.Line)
	edit := func(content string) EditFunc {
		return func(ctx context.Context, s *Snapshot) (string, error) {
			return "deploy\n\nFerry-Action: deploy\n", s.WriteFile("apps/hello/deploy.yaml", []byte(content))
		}
	}
	r := seedRepo(t)
	srv := testgit.Serve(t, r)
	w := writer(srv.RepoURL(r), "candidate")
	signer := &keygenSigner{key: key.Private}
	w.Signer = signer
	res, err := w.Update(context.Background(), edit("kind: Deployment # v2\n"))
	must(t, err)
	r.Fsck()
	if signer.calls != 1 {
		t.Errorf("Sign called %d times, want 1", signer.calls)
	}
	_, out, err := testsign.Git(r.Dir, nil, "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", res.Commit.String())
	if err != nil || !strings.Contains(out, `Good "git" signature for ferry@example.com`) {
		t.Errorf("git verify-commit: %v\n%s", err, out)
	}

	before := r.Tip("candidate")
	w.Signer = failingSigner{}
	_, err = w.Update(context.Background(), edit("kind: Deployment # v3\n"))
	if err == nil || !strings.Contains(err.Error(), "signing the commit: the key is on a token that is unplugged") {
		t.Errorf("error %v, want the signer's", err)
	}
	if got := r.Tip("candidate"); got != before {
		t.Errorf("the branch moved to %s although signing failed", got)
	}
}
