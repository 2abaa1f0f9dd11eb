package ferry

import (
	"errors"
	"fmt"

	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/ferrycd/ferry/pkg/sign"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// SignatureStatus is what a commit's signature says, checked against
// Env.Verifier: history --verify shows it per commit, and a promote with
// RequireSigned refuses a source commit whose status is not Verified.
type SignatureStatus struct {
	Signed   bool `json:"signed"`
	Verified bool `json:"verified"`
	// Format is ssh, openpgp or x509; empty when unsigned.
	Format string `json:"format,omitempty"`
	// Signer is who signed, when verified: the allowed_signers principals
	// or the OpenPGP key's user ID.
	Signer string `json:"signer,omitempty"`
	// Key is the signing key's fingerprint (or OpenPGP key ID), when the
	// signature names it.
	Key string `json:"key,omitempty"`
	// Reason says why the commit is not verified.
	Reason string `json:"reason,omitempty"`
}

// String is the status in a word or three: "verified ssh alice@example.com",
// "unsigned", "BAD ssh: <reason>".
func (s SignatureStatus) String() string {
	switch {
	case s.Verified:
		return "verified " + s.Format + " " + s.Signer
	case !s.Signed:
		return "unsigned"
	case s.Format == "":
		return "BAD: " + s.Reason
	}
	return "BAD " + s.Format + ": " + s.Reason
}

// pkg/sign's signers are what Env.Signer takes.
var _ envrepo.Signer = sign.Signer(nil)

// signatureOf checks c's signature against e.Verifier.
func signatureOf(e Env, c *object.Commit) (*SignatureStatus, error) {
	r, err := sign.Verify(c, e.Verifier)
	if err != nil {
		return nil, err
	}
	return &SignatureStatus{Signed: r.Signed, Verified: r.Verified, Format: r.Format, Signer: r.Signer, Key: r.Key, Reason: r.Reason}, nil
}

// ErrUnverified: a promote that requires signed commits was asked to carry
// one whose signature does not verify.
var ErrUnverified = errors.New("the source commit's signature does not verify")

// UnverifiedError is a promote refused by RequireSigned: the source
// commit, and what its signature says. It matches ErrUnverified.
type UnverifiedError struct {
	Env    string // the environment promoted from
	Commit string
	Status SignatureStatus
}

func (e *UnverifiedError) Error() string {
	what := e.Env + "@" + ref.ShortSHA(e.Commit)
	if !e.Status.Signed {
		return fmt.Sprintf("refusing to promote %s: the commit is not signed, and signed commits are required", what)
	}
	return fmt.Sprintf("refusing to promote %s: its signature does not verify: %s", what, e.Status.Reason)
}

// Is makes errors.Is(err, ErrUnverified) true.
func (e *UnverifiedError) Is(target error) bool { return target == ErrUnverified }

// requireSigned refuses c unless its signature verifies against
// e.Verifier, which must hold keys.
func requireSigned(e Env, env string, c *object.Commit) error {
	if e.Verifier.Empty() {
		return errors.New("signed commits are required, but no key to verify them was given (Env.Verifier is empty)")
	}
	st, err := signatureOf(e, c)
	if err != nil {
		return err
	}
	if !st.Verified {
		return &UnverifiedError{Env: env, Commit: c.Hash.String(), Status: *st}
	}
	logger(e).Info("source commit verified", "commit", c.Hash.String(), "format", st.Format, "signer", st.Signer)
	return nil
}
