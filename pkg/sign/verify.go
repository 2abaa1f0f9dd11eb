package sign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// Verifier holds the keys signatures are checked against. The zero
// Verifier holds none: every signed commit fails to verify, with a reason
// saying so.
type Verifier struct {
	// AllowedSigners check SSH signatures, as git's
	// gpg.ssh.allowedSignersFile does.
	AllowedSigners []AllowedSigner
	// Keyring checks OpenPGP signatures; its keys are trusted as they
	// are (no web of trust).
	Keyring openpgp.EntityList
}

// Empty reports whether v holds no key at all.
func (v Verifier) Empty() bool { return len(v.AllowedSigners) == 0 && len(v.Keyring) == 0 }

// LoadVerifier reads an allowed_signers file and an OpenPGP keyring file;
// either name may be "".
func LoadVerifier(allowedSigners, keyring string) (Verifier, error) {
	var v Verifier
	if allowedSigners != "" {
		f, err := os.Open(allowedSigners)
		if err != nil {
			return v, err
		}
		defer f.Close()
		if v.AllowedSigners, err = ParseAllowedSigners(f); err != nil {
			return v, fmt.Errorf("%s: %w", allowedSigners, err)
		}
		if len(v.AllowedSigners) == 0 {
			return v, fmt.Errorf("%s lists no signer", allowedSigners)
		}
	}
	if keyring != "" {
		f, err := os.Open(keyring)
		if err != nil {
			return v, err
		}
		defer f.Close()
		if v.Keyring, err = ReadKeyring(f); err != nil {
			return v, fmt.Errorf("%s: not an OpenPGP keyring: %w", keyring, err)
		}
		if len(v.Keyring) == 0 {
			return v, fmt.Errorf("%s holds no OpenPGP key", keyring)
		}
	}
	return v, nil
}

// Result is what Verify found.
type Result struct {
	// Signed: the commit carries a signature (a gpgsig header).
	Signed bool
	// Verified: the signature is good, made by a key the Verifier trusts
	// for git commits at the commit's time.
	Verified bool
	// Format is FormatSSH, FormatOpenPGP or FormatX509; "" when unsigned
	// or unrecognised.
	Format string
	// Signer is who signed, when verified: the principals of the
	// allowed_signers line, or the OpenPGP key's primary user ID.
	Signer string
	// Key names the signing key when the signature names it: an SSH
	// key's SHA256 fingerprint, an OpenPGP fingerprint or key ID.
	Key string
	// Reason says why the commit is not verified; "" when it is.
	Reason string
}

// Verify checks the signature of c, its gpgsig header (c.PGPSignature,
// whatever the format), over c encoded without it, against v. Whatever the
// signature holds, the answer is a Result; the error is for failing to
// encode c.
func Verify(c *object.Commit, v Verifier) (Result, error) {
	sig := c.PGPSignature
	if sig == "" {
		return Result{Reason: "the commit is not signed"}, nil
	}
	var buf plumbing.MemoryObject
	if err := c.EncodeWithoutSignature(&buf); err != nil {
		return Result{}, fmt.Errorf("encoding commit %s: %w", c.Hash, err)
	}
	r, err := buf.Reader()
	if err != nil {
		return Result{}, err
	}
	payload, err := io.ReadAll(r)
	if err != nil {
		return Result{}, err
	}
	head := strings.TrimSpace(sig)
	switch {
	case strings.HasPrefix(head, sshBegin):
		return verifySSH(sig, payload, c.Committer.When, v.AllowedSigners), nil
	case strings.HasPrefix(head, pgpBegin):
		return verifyPGP(sig, payload, v.Keyring), nil
	case strings.HasPrefix(head, "-----BEGIN SIGNED MESSAGE-----"):
		return Result{Signed: true, Format: FormatX509, Reason: "X.509 (gpgsm) signatures are not supported"}, nil
	}
	return Result{Signed: true, Reason: "the signature is in no format git knows"}, nil
}

func verifySSH(armored string, payload []byte, when time.Time, signers []AllowedSigner) Result {
	res := Result{Signed: true, Format: FormatSSH}
	sig, err := parseSSH(armored)
	if err != nil {
		res.Reason = "malformed SSH signature: " + err.Error()
		return res
	}
	res.Key = ssh.FingerprintSHA256(sig.key)
	if _, ok := sig.key.(*ssh.Certificate); ok {
		res.Reason = "signed with an SSH certificate, which ferry does not verify"
		return res
	}
	if err := sig.check(GitNamespace, bytes.NewReader(payload)); err != nil {
		if !errors.Is(err, errMismatch) {
			err = fmt.Errorf("invalid SSH signature: %w", err)
		}
		res.Reason = err.Error()
		return res
	}
	if len(signers) == 0 {
		res.Reason = fmt.Sprintf("signed by SSH key %s; no allowed signers to check it against", res.Key)
		return res
	}
	why := ""
	for _, s := range signers {
		ok, reason := s.allows(sig.key, sig.ns, when)
		if ok {
			res.Signer, res.Verified = s.Principals, true
			return res
		}
		if why == "" {
			why = reason
		}
	}
	if why == "" {
		why = fmt.Sprintf("signed by SSH key %s, which is not among the allowed signers", res.Key)
	}
	res.Reason = why
	return res
}
