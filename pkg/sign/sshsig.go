package sign

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
)

// The SSHSIG format, as OpenSSH's PROTOCOL.sshsig defines it. A signature
// is
//
//	byte[6] "SSHSIG"  uint32 1  string publickey  string namespace
//	string reserved  string hash_algorithm  string signature
//
// armored as base64 between the BEGIN and END lines, and what is signed is
//
//	byte[6] "SSHSIG"  string namespace  string reserved
//	string hash_algorithm  string H(message)
//
// so a signature made for one purpose (a file, an email) cannot pass for
// another (a git commit): git signs and verifies in namespace "git".
const (
	sshMagic     = "SSHSIG"
	sshVersion   = 1
	sshBegin     = "-----BEGIN SSH SIGNATURE-----"
	sshEnd       = "-----END SSH SIGNATURE-----"
	sshLineWidth = 70 // ssh-keygen's
	// GitNamespace is the namespace git signs and verifies commits in.
	GitNamespace = "git"
)

// sshSigBlob is an SSHSIG signature after the magic preamble.
type sshSigBlob struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  string
	HashAlg   string
	Signature []byte
}

// sshSignedData is what the key signs, after the magic preamble.
type sshSignedData struct {
	Namespace string
	Reserved  string
	HashAlg   string
	Hash      []byte
}

func sshHash(alg string) (hash.Hash, error) {
	switch alg {
	case "sha512":
		return sha512.New(), nil
	case "sha256":
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("unsupported hash algorithm %q (SSHSIG allows sha256 and sha512)", alg)
}

// signedData is the preamble and the blob the key signs for message.
func signedData(namespace, hashAlg string, message io.Reader) ([]byte, error) {
	h, err := sshHash(hashAlg)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(h, message); err != nil {
		return nil, err
	}
	return append([]byte(sshMagic), ssh.Marshal(sshSignedData{Namespace: namespace, HashAlg: hashAlg, Hash: h.Sum(nil)})...), nil
}

// sshSigner signs as `ssh-keygen -Y sign -n git` does: sha512, and for RSA
// keys rsa-sha2-512 (SSHSIG refuses SHA-1's ssh-rsa).
type sshSigner struct {
	key ssh.Signer
}

func (s *sshSigner) Format() string { return FormatSSH }

func (s *sshSigner) ID() string { return ssh.FingerprintSHA256(s.key.PublicKey()) }

// Sign returns the armored SSH signature of message in namespace "git",
// ending in a newline as ssh-keygen's does.
func (s *sshSigner) Sign(message io.Reader) ([]byte, error) {
	data, err := signedData(GitNamespace, "sha512", message)
	if err != nil {
		return nil, err
	}
	var sig *ssh.Signature
	if as, ok := s.key.(ssh.AlgorithmSigner); ok && s.key.PublicKey().Type() == ssh.KeyAlgoRSA {
		sig, err = as.SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = s.key.Sign(rand.Reader, data)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	blob := append([]byte(sshMagic), ssh.Marshal(sshSigBlob{
		Version:   sshVersion,
		PublicKey: s.key.PublicKey().Marshal(),
		Namespace: GitNamespace,
		HashAlg:   "sha512",
		Signature: ssh.Marshal(sig),
	})...)
	return armorSSH(blob), nil
}

func armorSSH(blob []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString(blob)
	var out bytes.Buffer
	out.WriteString(sshBegin + "\n")
	for len(b64) > sshLineWidth {
		out.WriteString(b64[:sshLineWidth] + "\n")
		b64 = b64[sshLineWidth:]
	}
	out.WriteString(b64 + "\n" + sshEnd + "\n")
	return out.Bytes()
}

// sshSig is a parsed SSH signature.
type sshSig struct {
	key     ssh.PublicKey
	ns      string
	hashAlg string
	sig     *ssh.Signature
}

// parseSSH reads an armored SSH signature: one block, nothing around it
// but white space.
func parseSSH(armored string) (*sshSig, error) {
	body, ok := armorBody(armored, sshBegin, sshEnd)
	if !ok {
		return nil, errors.New("not one armored SSH signature")
	}
	blob, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		return nil, errors.New("the armored SSH signature is not base64")
	}
	rest, ok := bytes.CutPrefix(blob, []byte(sshMagic))
	if !ok {
		return nil, errors.New("no SSHSIG preamble")
	}
	var b sshSigBlob
	if err := ssh.Unmarshal(rest, &b); err != nil {
		return nil, fmt.Errorf("malformed SSHSIG blob: %v", err)
	}
	if b.Version != sshVersion {
		return nil, fmt.Errorf("SSHSIG version %d, not %d", b.Version, sshVersion)
	}
	key, err := ssh.ParsePublicKey(b.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("the signature's public key: %v", err)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(b.Signature, &sig); err != nil {
		return nil, fmt.Errorf("malformed signature in the SSHSIG blob: %v", err)
	}
	return &sshSig{key: key, ns: b.Namespace, hashAlg: b.HashAlg, sig: &sig}, nil
}

// check reports whether s is a valid signature of message by its own key,
// in namespace ns, with the rules ssh-keygen -Y verify applies.
func (s *sshSig) check(ns string, message io.Reader) error {
	if s.ns != ns {
		return fmt.Errorf("signed for namespace %q, not %q", s.ns, ns)
	}
	if s.key.Type() == ssh.KeyAlgoRSA && s.sig.Format != ssh.KeyAlgoRSASHA256 && s.sig.Format != ssh.KeyAlgoRSASHA512 {
		return fmt.Errorf("RSA signature made with %s; SSHSIG accepts only rsa-sha2-256 and rsa-sha2-512", s.sig.Format)
	}
	data, err := signedData(s.ns, s.hashAlg, message)
	if err != nil {
		return err
	}
	if err := s.key.Verify(data, s.sig); err != nil {
		return errMismatch
	}
	return nil
}

// errMismatch: the signature is well formed but not of this content.
var errMismatch = errors.New("the signature does not match the commit: it was altered after signing, or the signature was made for something else")

// armorBody returns what lies between the begin and end lines of the one
// armored block s holds, and false unless s is exactly one such block
// (white space around it aside). A second block, or text around the one,
// is refused: it would be trusted on the strength of the other.
func armorBody(s, begin, end string) (string, bool) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, begin)
	if !ok {
		return "", false
	}
	body, ok := strings.CutSuffix(rest, end)
	if !ok || strings.Contains(body, "-----") {
		return "", false
	}
	return body, true
}
