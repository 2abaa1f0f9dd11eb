package sign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

const (
	pgpBegin = "-----BEGIN PGP SIGNATURE-----"
	pgpEnd   = "-----END PGP SIGNATURE-----"
)

// pgpSigner makes detached armored OpenPGP signatures, as gpg
// --detach-sign --armor does for git.
type pgpSigner struct {
	entity *openpgp.Entity
}

func (s *pgpSigner) Format() string { return FormatOpenPGP }

func (s *pgpSigner) ID() string {
	id := fmt.Sprintf("%X", s.entity.PrimaryKey.Fingerprint)
	if uid := s.entity.PrimaryIdentity(); uid != nil {
		id = uid.Name + " " + id
	}
	return id
}

// Sign returns the armored detached signature of message, ending in a
// newline as gpg's does.
func (s *pgpSigner) Sign(message io.Reader) ([]byte, error) {
	var out bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&out, s.entity, message, nil); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// loadPGP reads an armored private key; the first entity with a private
// key signs.
func loadPGP(data, passphrase []byte) (Signer, error) {
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a readable OpenPGP private key: %v", err)
	}
	for _, e := range el {
		if e.PrivateKey == nil {
			continue
		}
		if encrypted(e) {
			if len(passphrase) == 0 {
				return nil, ErrPassphraseNeeded
			}
			if err := e.DecryptPrivateKeys(passphrase); err != nil {
				return nil, ErrWrongPassphrase
			}
		}
		if _, ok := e.SigningKey(time.Now()); !ok {
			return nil, errors.New("the OpenPGP key has no valid signing key (expired, revoked, or not for signing)")
		}
		return &pgpSigner{entity: e}, nil
	}
	return nil, errors.New("an OpenPGP key without its private part: give the secret key (gpg --armor --export-secret-keys)")
}

func encrypted(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && e.PrivateKey.Encrypted {
		return true
	}
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && s.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// ReadKeyring reads OpenPGP public keys, armored or binary (gpg --export,
// with or without --armor). Private keys are read for their public parts.
func ReadKeyring(r io.Reader) (openpgp.EntityList, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	const begin = "-----BEGIN PGP"
	if !bytes.Contains(data, []byte(begin)) {
		return openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	// Armored files are often concatenated (cat alice.asc bob.asc), and
	// ReadArmoredKeyRing reads the first block only.
	var out openpgp.EntityList
	blocks := bytes.Split(data, []byte(begin))
	for _, b := range blocks[1:] {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(append([]byte(begin), b...)))
		if err != nil {
			return nil, err
		}
		out = append(out, el...)
	}
	return out, nil
}

// verifyPGP checks an armored detached signature of payload against
// keyring.
func verifyPGP(armored string, payload []byte, keyring openpgp.EntityList) Result {
	res := Result{Signed: true, Format: FormatOpenPGP}
	if _, ok := armorBody(armored, pgpBegin, pgpEnd); !ok {
		res.Reason = "malformed OpenPGP signature: not one armored signature block"
		return res
	}
	block, err := armor.Decode(strings.NewReader(strings.TrimSpace(armored) + "\n"))
	if err != nil {
		res.Reason = fmt.Sprintf("malformed OpenPGP signature: %v", err)
		return res
	}
	raw, err := io.ReadAll(block.Body)
	if err != nil {
		res.Reason = fmt.Sprintf("malformed OpenPGP signature: %v", err)
		return res
	}
	issuer, err := pgpIssuer(raw)
	if err != nil {
		res.Reason = fmt.Sprintf("malformed OpenPGP signature: %v", err)
		return res
	}
	res.Key = issuer
	if len(keyring) == 0 {
		res.Reason = fmt.Sprintf("signed by OpenPGP key %s; no OpenPGP keyring to check it against", issuer)
		return res
	}
	sig, signer, err := openpgp.VerifyDetachedSignature(keyring, bytes.NewReader(payload), bytes.NewReader(raw), nil)
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		res.Reason = fmt.Sprintf("signed by OpenPGP key %s, which is not in the keyring", issuer)
		return res
	case errors.As(err, new(pgperrors.SignatureError)) && sig == nil:
		res.Reason = errMismatch.Error()
		return res
	case err != nil:
		res.Reason = fmt.Sprintf("OpenPGP key %s: %v", issuer, err)
		return res
	}
	if sig.IssuerFingerprint != nil {
		res.Key = fmt.Sprintf("%X", sig.IssuerFingerprint)
	}
	if uid := signer.PrimaryIdentity(); uid != nil {
		res.Signer = uid.Name
	} else {
		res.Signer = fmt.Sprintf("%X", signer.PrimaryKey.Fingerprint)
	}
	res.Verified = true
	return res
}

// pgpIssuer names the key that made a signature packet: its fingerprint
// where the packet records it, else its 64-bit key ID.
func pgpIssuer(raw []byte) (string, error) {
	p, err := packet.Read(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return "", fmt.Errorf("a %T, not a signature packet", p)
	}
	switch {
	case sig.IssuerFingerprint != nil:
		return fmt.Sprintf("%X", sig.IssuerFingerprint), nil
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sig.IssuerKeyId), nil
	}
	return "", errors.New("the signature names no issuer")
}
