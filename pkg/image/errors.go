package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

var (
	// ErrNotFound is matched by errors for a tag, digest or repository the
	// registry does not have (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is matched by errors for credentials the registry
	// wanted but did not get, or rejected (HTTP 401 and 403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable is matched by errors for a registry that still failed
	// temporarily (5xx, 429, network errors) after every attempt.
	ErrUnavailable = errors.New("registry unavailable")
)

// NotFoundError says which tag or digest a repository lacks. It matches
// ErrNotFound.
type NotFoundError struct {
	Repo string
	// Exactly one of Tag and Digest is set: the one that was looked up.
	Tag, Digest string
}

func (e *NotFoundError) Error() string {
	if e.Digest != "" {
		return fmt.Sprintf("digest %s not found in %s", e.Digest, e.Repo)
	}
	return fmt.Sprintf("tag %s not found in %s", e.Tag, e.Repo)
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// outcomeError is an error with a finished (redacted) message that
// matches the sentinels and wraps the errors in errs.
type outcomeError struct {
	msg  string
	errs []error
}

func (e *outcomeError) Error() string { return e.msg }

func (e *outcomeError) Unwrap() []error { return e.errs }

// credentialHelp tells people how to give ferry credentials.
const credentialHelp = "provide them in a docker config.json (directory set by DOCKER_CONFIG, default ~/.docker), " +
	"through a docker credential helper named there, " +
	"or, for gcr.io and *.pkg.dev, as Google application default credentials " +
	"(GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or the metadata server)"

// unauthorizedError explains a 401 or 403 and how to provide credentials.
// It never includes the registry's answer, which may quote them.
func unauthorizedError(op, registry string, code int, anonymous bool) error {
	what := "were rejected"
	if anonymous {
		what = "were missing (none found)"
	}
	return &outcomeError{
		msg: fmt.Sprintf("%s: credentials for registry %s %s (HTTP %d %s); %s",
			op, registry, what, code, http.StatusText(code), credentialHelp),
		errs: []error{ErrUnauthorized},
	}
}

// kind classifies a failed registry request.
type kind int

const (
	// permanent failures are reported as they are.
	permanent kind = iota
	// temporary failures are retried.
	temporary
	// notFound is HTTP 404.
	notFound
	// unauthorized is HTTP 401 or 403.
	unauthorized
	// unusable is a successful answer ggcr could not use, such as a HEAD
	// without Docker-Content-Digest; GET may still work.
	unusable
)

// classify decides what a failed registry request means. ctx errors are
// handled by the caller before this.
func classify(err error) kind {
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized, te.StatusCode == http.StatusForbidden:
			return unauthorized
		case te.StatusCode == http.StatusNotFound:
			return notFound
		case te.StatusCode == http.StatusTooManyRequests, te.StatusCode >= 500, te.Temporary():
			return temporary
		}
		return permanent
	}
	if isNetwork(err) {
		if retryableNetwork(err) {
			return temporary
		}
		return permanent
	}
	// ggcr got an answer with a 2xx status but could not use it, e.g.
	// "HEAD ...: response did not include Docker-Content-Digest header".
	return unusable
}

// isNetwork reports whether err came from the transport rather than from
// the registry's answer.
func isNetwork(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// retryableNetwork is false for network errors that another attempt will
// not fix: TLS and certificate problems and unknown host names.
func retryableNetwork(err error) bool {
	var (
		rhe tls.RecordHeaderError
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
		dns *net.DNSError
	)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &rhe), errors.As(err, &cve), errors.As(err, &uae),
		errors.As(err, &hne), errors.As(err, &cie):
		return false
	case errors.As(err, &dns) && dns.IsNotFound:
		return false
	}
	return true
}

// plainHTTPHint explains a TLS handshake answered in plain HTTP.
func plainHTTPHint(err error) string {
	var rhe tls.RecordHeaderError
	if errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &rhe) {
		return " (the registry seems to speak plain http; allow that explicitly with the insecure option)"
	}
	return ""
}

// statusOf returns the HTTP status of a registry error, or 0.
func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

// redactor removes the secrets of one authenticator from text.
type redactor struct {
	secrets []string
}

// newRedactor collects the secrets auth would send. It is only called on
// the error path: getting them may cost a token refresh.
func newRedactor(ctx context.Context, auth authn.Authenticator) *redactor {
	r := &redactor{}
	if auth == nil || auth == authn.Anonymous {
		return r
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil || cfg == nil {
		return r
	}
	for _, s := range []string{cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken} {
		r.add(s)
	}
	if cfg.Username != "" && cfg.Password != "" {
		r.add(base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password)))
	}
	return r
}

func (r *redactor) add(s string) {
	// Shorter strings would blank out ordinary words and prove nothing.
	if len(s) >= 4 {
		r.secrets = append(r.secrets, s)
	}
}

// redact replaces every secret in s.
func (r *redactor) redact(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "REDACTED")
	}
	return s
}

// stripAuthorization drops the Authorization header ggcr leaves on the
// request inside a *transport.Error, so that no caller can find a
// credential by unwrapping an error this package returns.
func stripAuthorization(err error) {
	var te *transport.Error
	if errors.As(err, &te) && te.Request != nil && te.Request.Header.Get("Authorization") != "" {
		req := te.Request.Clone(context.Background())
		req.Header.Del("Authorization")
		te.Request = req
	}
}
