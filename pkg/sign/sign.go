package sign

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/ssh"
)

// The signature formats, as Result.Format and Signer.Format name them.
const (
	FormatSSH     = "ssh"
	FormatOpenPGP = "openpgp"
	FormatX509    = "x509" // recognised, never verified
)

// Signer signs git objects. Its Sign is go-git's git.Signer: message is the
// object encoded without a signature, the result its armored signature.
type Signer interface {
	Sign(message io.Reader) ([]byte, error)
	// Format is FormatSSH or FormatOpenPGP.
	Format() string
	// ID names the key, safe to print: an SSH key's SHA256 fingerprint,
	// an OpenPGP key's user ID and fingerprint.
	ID() string
}

// Errors of Load and Parse that a caller words in its own terms.
var (
	// ErrPassphraseNeeded: the key is encrypted and no passphrase was
	// given.
	ErrPassphraseNeeded = errors.New("the key is encrypted and no passphrase was given")
	// ErrWrongPassphrase: the passphrase does not decrypt the key.
	ErrWrongPassphrase = errors.New("the passphrase does not decrypt the key")
)

// Load reads the private key in the file at path; see Parse. Errors never
// quote the file's content.
func Load(path string, passphrase []byte) (Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse reads a private key: an OpenSSH private key (ed25519, ecdsa or
// rsa, in OpenSSH's or PEM's form) signs with git's SSH signatures, an
// armored OpenPGP secret key with detached OpenPGP signatures. passphrase
// decrypts an encrypted key and is ignored for one that is not. Errors
// never quote the key.
func Parse(data, passphrase []byte) (Signer, error) {
	if bytes.Contains(data, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
		return loadPGP(data, passphrase)
	}
	if bytes.Contains(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		return nil, errors.New("an OpenPGP public key: give the secret key (gpg --armor --export-secret-keys)")
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey(data); err == nil {
		return nil, errors.New("an SSH public key: give the private key (the file without .pub)")
	}
	key, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if len(passphrase) == 0 {
			return nil, ErrPassphraseNeeded
		}
		key, err = ssh.ParsePrivateKeyWithPassphrase(data, passphrase)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, ErrWrongPassphrase
		}
	}
	if err != nil {
		// x/crypto's parse errors name formats, never key bytes.
		return nil, fmt.Errorf("not an OpenSSH or OpenPGP private key: %v", err)
	}
	switch t := key.PublicKey().Type(); t {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA:
	default:
		return nil, fmt.Errorf("a %s key; git's SSH signatures are made with ed25519, ecdsa or rsa keys", t)
	}
	return &sshSigner{key: key}, nil
}
