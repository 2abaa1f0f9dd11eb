// Package ref is ferry's one image-reference type: it parses, prints and
// abbreviates repo[:tag][@digest] for every other package. It depends on no
// other ferry package, so every leaf may import it.
package ref

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is matched (errors.Is) by every error Parse returns.
// Callers can treat it as a usage error.
var ErrInvalid = errors.New("invalid image reference")

// Ref is an image reference: a repository with a tag, a digest or both.
type Ref struct {
	// Repo is the repository as name.Repository.Name() gives it, e.g.
	// "127.0.0.1:5000/team/hello" or "index.docker.io/library/nginx".
	Repo string
	// Tag may be empty when Digest is set.
	Tag string
	// Digest is "sha256:" followed by 64 lowercase hex digits, or empty.
	Digest string
}

// String returns repo[:tag][@digest]. It parses back to the same Ref.
func (r Ref) String() string {
	s := r.Repo
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

var (
	// Tags as the OCI distribution spec defines them.
	tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// One path component of a repository, as the OCI distribution spec
	// defines it: lowercase alphanumerics joined by '.', '_', '__' or dashes.
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	// A registry host name or IPv4 address.
	hostRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$`)
	// A bracketed IPv6 address.
	ipv6RE = regexp.MustCompile(`^\[[0-9A-Fa-f:.]+\]$`)
	// A port number.
	portRE = regexp.MustCompile(`^[0-9]{1,5}$`)
)

// Parse accepts repo:tag, repo@sha256:... and repo:tag@sha256:... .
//
// A bare repository without tag or digest is an error: ferry never guesses
// "latest". Every error matches ErrInvalid and says what is wrong
// with the input.
func Parse(s string) (Ref, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalid, s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return Ref{}, bad("empty; want repo:tag or repo@sha256:...")
	}
	if strings.TrimSpace(s) != s {
		return Ref{}, bad("leading or trailing white space")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return Ref{}, bad("white space or a control character at byte %d; a reference is one word, repo:tag or repo@sha256:...", i)
	}
	if i := strings.Index(s, "://"); i >= 0 {
		return Ref{}, bad("a reference has no scheme; drop %q", s[:i+3])
	}

	base, dig, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		if strings.Contains(dig, "@") {
			return Ref{}, bad("more than one '@'")
		}
		if dig == "" {
			return Ref{}, bad("nothing after '@'; want @sha256:<64 hex digits>")
		}
		if err := CheckDigest(dig); err != nil {
			return Ref{}, bad("%v", err)
		}
	}

	repo, tag := base, ""
	if i := strings.LastIndexByte(base, ':'); i >= 0 && !strings.Contains(base[i+1:], "/") {
		repo, tag = base[:i], base[i+1:]
		if tag == "" {
			return Ref{}, bad("nothing after ':'; want a tag")
		}
		if !tagRE.MatchString(tag) {
			return Ref{}, bad("tag %q must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", tag)
		}
	}
	if repo == "" {
		return Ref{}, bad("no repository")
	}
	if tag == "" && !hasDigest {
		return Ref{}, bad("no tag or digest; want %s:<tag> or %s@sha256:... (ferry never assumes \"latest\")", repo, repo)
	}

	name, err := parseRepo(repo)
	if err != nil {
		return Ref{}, bad("%v", err)
	}
	return Ref{Repo: name, Tag: tag, Digest: dig}, nil
}

// ParseRepo normalises a repository name without tag or digest, e.g.
// "nginx" to "index.docker.io/library/nginx", so that two spellings of one
// repository compare equal. Errors match ErrInvalid.
func ParseRepo(s string) (string, error) {
	repo, err := parseRepo(s)
	if err != nil {
		return "", fmt.Errorf("%w: repository %q: %v", ErrInvalid, s, err)
	}
	return repo, nil
}

// parseRepo validates a repository with ggcr's rules and then with the
// stricter grammar of the OCI distribution spec, which registries enforce.
func parseRepo(s string) (string, error) {
	if s == "" {
		return "", errors.New("no repository")
	}
	registry, path, err := split(s)
	if err != nil {
		return "", repoHint(s, err)
	}
	if err := checkRegistry(registry); err != nil {
		return "", err
	}
	// ggcr checks the length as written; Docker Hub's "library/" prefix can
	// push the canonical name, which String returns, over the limit.
	if len(path) > 255 {
		return "", fmt.Errorf("repository must be between 1 and 255 characters in length: %s", path)
	}
	for c := range strings.SplitSeq(path, "/") {
		if !componentRE.MatchString(c) {
			return "", fmt.Errorf("repository path %q: each '/'-separated part must be lowercase letters and digits, joined by '.', '_', '__' or '-'", path)
		}
	}
	return registry + "/" + path, nil
}

// The rules of go-containerregistry's name.NewRepository (which the
// registry client uses), written out so that this package needs nothing
// but the standard library; TestCanonicalAgreesWithGGCR holds them equal.
const (
	defaultRegistry = "index.docker.io"
	repositoryChars = "abcdefghijklmnopqrstuvwxyz0123456789_-./"
)

// split returns the registry and the repository path of s, in their
// canonical forms: Docker Hub when no registry is named, and its
// "library/" namespace for a one-element path.
func split(s string) (registry, path string, err error) {
	if s == "" {
		return "", "", errors.New("a repository name must be specified")
	}
	path = s
	if reg, rest, ok := strings.Cut(s, "/"); ok && (reg == "localhost" || strings.ContainsAny(reg, ".:")) {
		registry, path = reg, rest
	}
	if n := utf8.RuneCountInString(path); n < 1 || n > 255 {
		return "", "", fmt.Errorf("repository must be between 1 and 255 characters in length: %s", path)
	}
	if strings.ContainsFunc(path, func(r rune) bool { return !strings.ContainsRune(repositoryChars, r) }) {
		return "", "", fmt.Errorf("repository can only contain the characters `%s`: %s", repositoryChars, path)
	}
	if u, err := url.Parse("//" + registry); err != nil || u.Host != registry {
		return "", "", fmt.Errorf("registries must be valid RFC 3986 URI authorities: %s", registry)
	}
	switch registry {
	case "", "docker.io":
		registry = defaultRegistry
	}
	if registry == defaultRegistry && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	return registry, path, nil
}

// repoHint adds to ggcr's error for repo what most likely went wrong when
// the repository holds a ':': a second tag (repo:tag:tag).
func repoHint(repo string, err error) error {
	path := repo
	if i := strings.IndexByte(repo, '/'); i >= 0 {
		path = repo[i+1:]
	}
	if strings.Contains(path, ":") {
		return fmt.Errorf("%w; a reference has one ':' before its tag (and one before a registry's port)", err)
	}
	return err
}

// checkRegistry accepts host, host:port, [ipv6] and [ipv6]:port.
func checkRegistry(reg string) error {
	host, rest := reg, ""
	if strings.HasPrefix(reg, "[") {
		if end := strings.IndexByte(reg, ']'); end >= 0 {
			host, rest = reg[:end+1], reg[end+1:]
		}
	} else if i := strings.IndexByte(reg, ':'); i >= 0 {
		host, rest = reg[:i], reg[i:]
	}
	port, hasPort := strings.CutPrefix(rest, ":")
	switch {
	case !hostRE.MatchString(host) && !ipv6RE.MatchString(host),
		rest != "" && !hasPort,
		hasPort && !portRE.MatchString(port):
		return fmt.Errorf("registry %q: want host or host:port", reg)
	}
	return nil
}

// CheckDigest accepts sha256: followed by 64 lowercase hex digits.
func CheckDigest(d string) error {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok {
		return fmt.Errorf("digest %q must start with \"sha256:\"", d)
	}
	if len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("digest %q must be sha256: followed by 64 lowercase hex digits", d)
	}
	return nil
}

// Split cuts a reference as written into repository, tag and digest,
// without checking or normalising anything: "r:5000/a:v1@sha256:..." gives
// {r:5000/a v1 sha256:...}. A ':' counts as a tag's only after the last '/'.
func Split(s string) Ref {
	var r Ref
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s, r.Digest = s[:i], s[i+1:]
	}
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		s, r.Tag = s[:i], s[i+1:]
	}
	r.Repo = s
	return r
}

// Loose reads a reference found in a manifest, where anything may be
// written: Split, with the repository made canonical (see Canonical). It
// reports false when the repository is not one.
func Loose(s string) (Ref, bool) {
	r := Split(strings.TrimSpace(s))
	repo, ok := Canonical(r.Repo)
	r.Repo = repo
	return r, ok
}

// Canonical returns the full name of a repository as written, so two
// spellings of one repository compare equal ("nginx" is
// "index.docker.io/library/nginx"). It is lenient, as the container
// runtimes that read manifests are; Parse and ParseRepo are strict.
func Canonical(repo string) (string, bool) {
	registry, path, err := split(strings.TrimSpace(repo))
	if err != nil {
		return "", false
	}
	return registry + "/" + path, true
}

// Abbreviations in text output: twelve hex digits tell hashes apart in any
// repository a person reads.
const shortLen = 12

// ShortSHA abbreviates a full commit hash (40 hex digits, or 64 for
// SHA-256 repositories) to twelve. Anything else is returned as it is: a
// value that is not a hash (a build's own commit name, say) means nothing
// cut short.
func ShortSHA(sha string) string {
	if (len(sha) == 40 || len(sha) == 64) && strings.Trim(strings.ToLower(sha), "0123456789abcdef") == "" {
		return sha[:shortLen]
	}
	return sha
}

// ShortDigest abbreviates sha256:<64 hex> to sha256:<12 hex>.
func ShortDigest(d string) string { return ShortDigestN(d, shortLen) }

// ShortDigestN abbreviates a digest's hex part to n digits.
func ShortDigestN(d string, n int) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		return abbrev(d, n)
	}
	return algo + ":" + abbrev(hex, n)
}

// ShortAt abbreviates the hash in "branch@sha", or a bare sha.
func ShortAt(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i+1] + ShortSHA(s[i+1:])
	}
	return ShortSHA(s)
}

func abbrev(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Base is the repository's last path element: "hello" for
// "us-docker.pkg.dev/acme/apps/hello".
func (r Ref) Base() string { return r.Repo[strings.LastIndexByte(r.Repo, '/')+1:] }

// Short is how text output names an image: base[:tag][@sha256:<12 hex>].
func (r Ref) Short() string {
	s := r.Base()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + ShortDigest(r.Digest)
	}
	return s
}

// Repository returns the reference without tag, keeping the digest:
// repo@digest, the form that names one image whatever its tags.
func (r Ref) Repository() Ref { return Ref{Repo: r.Repo, Digest: r.Digest} }
