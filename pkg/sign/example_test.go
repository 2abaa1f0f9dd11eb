package sign_test

import (
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/ferrycd/ferry/pkg/sign"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// A commit signed the way ferry signs its own, and verified against an
// allowed_signers file.
func ExampleVerify() {
	// A key as ssh-keygen -t ed25519 writes it.
	pub, priv, _ := ed25519.GenerateKey(nil)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	signer, err := sign.Parse(pem.EncodeToMemory(block), nil)
	if err != nil {
		panic(err)
	}
	who := object.Signature{Name: "ferry", Email: "ferry@noreply.invalid", When: time.Unix(1767323045, 0)}
	c := &object.Commit{Author: who, Committer: who, Message: "deploy hello\n", TreeHash: plumbing.ZeroHash}
	var payload plumbing.MemoryObject
	_ = c.EncodeWithoutSignature(&payload)
	r, _ := payload.Reader()
	sig, err := signer.Sign(r)
	if err != nil {
		panic(err)
	}
	c.PGPSignature = string(sig)

	sshPub, _ := ssh.NewPublicKey(pub)
	allowed, _ := sign.ParseAllowedSigners(strings.NewReader(`alice@example.com namespaces="git" ` + string(ssh.MarshalAuthorizedKey(sshPub))))
	res, _ := sign.Verify(c, sign.Verifier{AllowedSigners: allowed})
	fmt.Println(res.Format, res.Verified, res.Signer)

	c.Message = "deploy something else\n"
	res, _ = sign.Verify(c, sign.Verifier{AllowedSigners: allowed})
	fmt.Println(res.Verified, res.Reason)
	// Output:
	// ssh true alice@example.com
	// false the signature does not match the commit: it was altered after signing, or the signature was made for something else
}
