package sign

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// AllowedSigner is one line of an allowed_signers file (ssh-keygen(1),
// ALLOWED SIGNERS; git's gpg.ssh.allowedSignersFile):
//
//	principals [options] keytype base64-key [comment]
//
// e.g. `alice@example.com namespaces="git" ssh-ed25519 AAAA…`.
type AllowedSigner struct {
	// Principals are the comma-separated patterns as written; a
	// signature verified by Key is reported as theirs.
	Principals string
	Key        ssh.PublicKey
	// CertAuthority: Key is a CA whose certificates are trusted, not a
	// signing key. Certificates are not supported; such a line matches
	// no signature.
	CertAuthority bool
	// Namespaces is the namespaces option, a pattern list; "" allows
	// every namespace.
	Namespaces string
	// ValidAfter and ValidBefore bound when the key may have signed (the
	// commit's committer time, as git passes it); zero is unbounded.
	ValidAfter, ValidBefore time.Time
}

// ParseAllowedSigners reads an allowed_signers file. Blank lines and lines
// starting with # are skipped; any other line that does not parse is an
// error naming its number, so a typo cannot silently drop a signer.
func ParseAllowedSigners(r io.Reader) ([]AllowedSigner, error) {
	var out []AllowedSigner
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseAllowedSigner(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseAllowedSigner(line string) (AllowedSigner, error) {
	var s AllowedSigner
	principals, rest, err := field(line)
	if err != nil {
		return s, err
	}
	if principals == "" || strings.TrimSpace(rest) == "" {
		return s, errors.New("want principals, then options (optional) and a public key")
	}
	s.Principals = principals
	// The rest is an authorized_keys line: options, then the key.
	key, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(rest))
	if err != nil {
		return s, fmt.Errorf("principals %q: no public key after them: %v", principals, err)
	}
	s.Key = key
	for _, o := range opts {
		name, val, hasVal := strings.Cut(o, "=")
		if hasVal {
			val = strings.TrimSuffix(strings.TrimPrefix(val, `"`), `"`)
		}
		switch strings.ToLower(name) {
		case "cert-authority":
			s.CertAuthority = true
		case "namespaces":
			s.Namespaces = val
		case "valid-after":
			if s.ValidAfter, err = parseSSHTime(val); err != nil {
				return s, fmt.Errorf("valid-after: %v", err)
			}
		case "valid-before":
			if s.ValidBefore, err = parseSSHTime(val); err != nil {
				return s, fmt.Errorf("valid-before: %v", err)
			}
		default:
			return s, fmt.Errorf("unknown option %q", name)
		}
	}
	return s, nil
}

// field splits off the first white-space-separated field of s, which may
// be double-quoted.
func field(s string) (string, string, error) {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, `"`) {
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return "", "", errors.New("unterminated quote")
		}
		return s[1 : end+1], s[end+2:], nil
	}
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, "", nil
	}
	return s[:i], s[i+1:], nil
}

// parseSSHTime reads ssh-keygen's YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]: UTC
// with the Z, the local time zone without.
func parseSSHTime(v string) (time.Time, error) {
	loc := time.Local
	if s, ok := strings.CutSuffix(v, "Z"); ok {
		v, loc = s, time.UTC
	}
	for _, layout := range []string{"20060102", "200601021504", "20060102150405"} {
		if len(v) == len(layout) {
			if t, err := time.ParseInLocation(layout, v, loc); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]", v)
}

// allows reports whether the line admits key signing in namespace ns at
// time t, and if not, why.
func (s AllowedSigner) allows(key ssh.PublicKey, ns string, t time.Time) (bool, string) {
	if s.CertAuthority || !bytes.Equal(s.Key.Marshal(), key.Marshal()) {
		return false, ""
	}
	if s.Namespaces != "" && matchList(ns, s.Namespaces) != 1 {
		return false, fmt.Sprintf("%s may not sign in namespace %q (namespaces=%q)", s.Principals, ns, s.Namespaces)
	}
	if !s.ValidAfter.IsZero() && t.Before(s.ValidAfter) {
		return false, fmt.Sprintf("the key of %s is valid only after %s, and the commit is dated %s", s.Principals, s.ValidAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	if !s.ValidBefore.IsZero() && !t.Before(s.ValidBefore) {
		return false, fmt.Sprintf("the key of %s was valid only before %s, and the commit is dated %s", s.Principals, s.ValidBefore.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	return true, ""
}

// matchList is OpenSSH's match_pattern_list: 1 if s matches a pattern of
// the comma-separated list and no negated one ("!pattern"), -1 if it
// matches a negated one, 0 if none.
func matchList(s, list string) int {
	got := 0
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if !match(s, p) {
			continue
		}
		if neg {
			return -1
		}
		got = 1
	}
	return got
}

// match is OpenSSH's match_pattern: * matches any run, ? any one byte.
func match(s, p string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for p = p[1:]; len(p) > 0 && p[0] == '*'; p = p[1:] {
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if match(s[i:], p) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		s, p = s[1:], p[1:]
	}
	return s == ""
}
