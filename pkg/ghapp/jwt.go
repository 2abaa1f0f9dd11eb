package ghapp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// KeyError is a private key that cannot be used. Its message says what is
// wrong with the file's shape, never what the file holds.
type KeyError struct{ Reason string }

func (e *KeyError) Error() string { return "GitHub App private key: " + e.Reason }

// LoadKey reads a GitHub App's private key from PEM: PKCS#1 ("BEGIN RSA
// PRIVATE KEY", the form GitHub's "Generate a private key" downloads) or
// PKCS#8 ("BEGIN PRIVATE KEY", what openssl pkcs8 -topk8 -nocrypt makes).
// Text around the block (a comment, a trailing newline) is ignored; an
// encrypted key, a public key, a certificate or a non-RSA key is refused
// with a *KeyError saying which.
func LoadKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	// Skip blocks that are no key (EC PARAMETERS before an EC key, as
	// openssl writes them), to say what the key is.
	var block *pem.Block
	for rest := pemBytes; ; {
		if block, rest = pem.Decode(rest); block == nil || strings.Contains(block.Type, "KEY") || block.Type == "CERTIFICATE" {
			break
		}
	}
	if block == nil {
		return nil, &KeyError{"no PEM block found: want the .pem file GitHub's \"Generate a private key\" downloads (-----BEGIN RSA PRIVATE KEY-----)"}
	}
	if _, enc := block.Headers["Proc-Type"]; enc || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, &KeyError{"the key is encrypted with a passphrase; GitHub issues it unencrypted: give that file, or decrypt it (openssl pkey -in KEY -out PLAIN)"}
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			// x509's own message is left out: it may quote the bytes it
			// choked on.
			return nil, &KeyError{"the RSA PRIVATE KEY block is not a valid PKCS#1 key (truncated or altered?)"}
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, &KeyError{"the PRIVATE KEY block is not a valid PKCS#8 key (truncated or altered?)"}
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, &KeyError{fmt.Sprintf("the key is %s, not RSA: GitHub Apps sign with RSA keys", keyKind(k))}
		}
		return rk, nil
	case "EC PRIVATE KEY":
		return nil, &KeyError{"the key is ECDSA, not RSA: GitHub Apps sign with RSA keys"}
	case "OPENSSH PRIVATE KEY":
		return nil, &KeyError{"the key is in OpenSSH's format: give the .pem file GitHub downloads (-----BEGIN RSA PRIVATE KEY-----)"}
	case "CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, &KeyError{fmt.Sprintf("the PEM block is a %s: want the App's private key", block.Type)}
	}
	return nil, &KeyError{fmt.Sprintf("the PEM block is a %s: want an RSA PRIVATE KEY (PKCS#1) or PRIVATE KEY (PKCS#8)", block.Type)}
}

func keyKind(k any) string {
	t := fmt.Sprintf("%T", k) // *ecdsa.PrivateKey, ed25519.PrivateKey
	t = strings.TrimPrefix(t, "*")
	t, _, _ = strings.Cut(t, ".")
	return strings.ToUpper(t)
}

// JWT lifetimes, as GitHub's "Generating a JSON Web Token" asks: issued a
// minute in the past, against clock drift, and expiring well under its
// ten-minute maximum, so a clock a little ahead of GitHub's is not refused
// with "'exp' is too far in the future".
const (
	jwtBackdate = 60 * time.Second
	jwtLifetime = 9 * time.Minute
)

// JWT returns the JSON Web Token that authenticates as the App: RS256,
// iss the App ID (or its client ID: GitHub takes either), iat now minus
// 60s, exp now plus 9 minutes.
func JWT(appID string, key *rsa.PrivateKey, now time.Time) (string, error) {
	if appID == "" {
		return "", errors.New("GitHub App JWT: no App ID")
	}
	if key == nil {
		return "", errors.New("GitHub App JWT: no private key")
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	claims, err := json.Marshal(struct {
		IAT int64  `json:"iat"`
		EXP int64  `json:"exp"`
		ISS string `json:"iss"`
	}{now.Add(-jwtBackdate).Unix(), now.Add(jwtLifetime).Unix(), appID})
	if err != nil {
		return "", fmt.Errorf("GitHub App JWT: %w", err)
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", errors.New("GitHub App JWT: signing failed: the private key is not a usable RSA key")
	}
	return signed + "." + enc.EncodeToString(sig), nil
}
