package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
)

// maxWait caps one wait between attempts, a Retry-After included: a host
// asking for longer is failing, and ferry runs in a CI job with a clock.
const maxWait = 10 * time.Second

// maxBody bounds what is read of one answer.
const maxBody = 16 << 20

// Option configures GitHub and GitLab.
type Option func(*options)

type options struct {
	client     *http.Client
	userAgent  string
	attempts   int
	backoff    time.Duration
	logger     *slog.Logger
	graphqlURL string
	bearer     bool
}

func newOptions(opts []Option) options {
	o := options{
		client:    &http.Client{Timeout: 60 * time.Second},
		userAgent: "ferry",
		attempts:  3,
		backoff:   500 * time.Millisecond,
		logger:    slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithHTTPClient sets the HTTP client; the default has a 60s timeout on
// http.DefaultTransport (proxy variables honoured). nil keeps the default.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// WithUserAgent sets the User-Agent header (default "ferry"; GitHub
// refuses requests without one).
func WithUserAgent(ua string) Option {
	return func(o *options) {
		if ua != "" {
			o.userAgent = ua
		}
	}
}

// WithAttempts sets how many times a request is tried in all when the
// host answers 429 or 5xx or the connection fails (default 3; below 1
// counts as 1).
func WithAttempts(n int) Option {
	return func(o *options) { o.attempts = max(n, 1) }
}

// WithBackoff sets the base of the wait between attempts (default
// 500ms): before attempt n+1 a random time below base·2^(n-1), at most
// 10s; a Retry-After the host sends is waited instead, also at most 10s.
func WithBackoff(base time.Duration) Option {
	return func(o *options) { o.backoff = max(base, 0) }
}

// WithLogger sets where retries are logged (default: discarded). nil keeps
// the default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithGraphQLURL sets GitHub's GraphQL endpoint, which auto-merge needs.
// The default derives it from the REST base URL: https://api.github.com
// gives https://api.github.com/graphql, and a GitHub Enterprise
// https://HOST/api/v3 gives https://HOST/api/graphql. GitLab ignores it.
func WithGraphQLURL(u string) Option {
	return func(o *options) { o.graphqlURL = strings.TrimRight(u, "/") }
}

// WithBearer makes GitLab send the token as "Authorization: Bearer", for
// OAuth tokens (personal, project and group access tokens work either
// way); the default is the PRIVATE-TOKEN header. A CI job token
// (CI_JOB_TOKEN) cannot open merge requests on GitLab at all. GitHub
// always sends a bearer token and ignores this.
func WithBearer() Option {
	return func(o *options) { o.bearer = true }
}

// The sentinel errors an *APIError can match, for callers to branch on.
var (
	// ErrAlreadyExists: an open request from the same head already exists
	// (GitHub's 422 "A pull request already exists", GitLab's 409).
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotFastForward: the host refused to move a branch because the
	// new commit does not descend from the branch's tip (GitHub's 422
	// "Update is not a fast forward"). Read the tip again, rebuild, retry.
	ErrNotFastForward = errors.New("not a fast-forward")
)

// APIError is an answer from the host that is not a success.
type APIError struct {
	Method string
	URL    string // without credentials
	Status int    // HTTP status; 200 for a GraphQL error
	// Message is the host's own message ("Validation Failed", "Bad
	// credentials", "405 Method Not Allowed").
	Message string
	// Errors are the details the host gave beside the message (GitHub's
	// errors[], GitLab's field messages).
	Errors []string
	// Type is a GraphQL error's type (NOT_FOUND, UNPROCESSABLE); "" for
	// REST.
	Type string

	is error // the sentinel it matches besides ErrNotFound, if any
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Method, e.URL)
	if e.Type != "" {
		fmt.Fprintf(&b, "GraphQL %s", e.Type)
	} else {
		fmt.Fprintf(&b, "%d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(" " + e.Message)
	}
	if len(e.Errors) > 0 {
		b.WriteString(": " + strings.Join(e.Errors, "; "))
	}
	switch e.Status {
	case http.StatusUnauthorized:
		b.WriteString(" (the host refused the token: missing, wrong or expired)")
	case http.StatusForbidden:
		b.WriteString(" (the token lacks a permission or scope this needs, or a rate limit was hit)")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) hold for a 404 (or a GraphQL
// NOT_FOUND), and ErrAlreadyExists or ErrNotFastForward where the call
// that got the answer recognised one.
func (e *APIError) Is(target error) bool {
	if e.is != nil && target == e.is {
		return true
	}
	return target == ErrNotFound && (e.Status == http.StatusNotFound || e.Type == "NOT_FOUND")
}

// Temporary reports whether trying again later may succeed (429, 5xx).
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// client is the HTTP side both hosts share: auth, JSON, retries, and
// keeping the token out of every error and log line.
type client struct {
	opts  options
	token string
	// auth sets the token's header.
	auth func(h http.Header)
	// parse reads a host's error body into e.Message and e.Errors.
	parse func(e *APIError, body []byte)
}

// outcome says what a call saw besides its error: ambiguous is true when
// an earlier attempt may have been carried out although it failed (a 5xx
// or a broken connection after the request was sent), so a "duplicate"
// answer to a retried create may be the caller's own first attempt.
type outcome struct {
	ambiguous bool
}

// do sends method to u with in as the JSON body (nil for none) and decodes
// a 2xx answer into out (nil to discard). It retries 429, 5xx and failed
// connections, and returns an *APIError for any other status.
func (c *client) do(ctx context.Context, method, u string, in, out any) (outcome, error) {
	var oc outcome
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return oc, fmt.Errorf("encoding the request to %s: %w", redactURL(u), err)
		}
	}
	for attempt := 1; ; attempt++ {
		retry, wait, err := c.once(ctx, method, u, body, out)
		if err == nil {
			return oc, nil
		}
		if ctx.Err() != nil {
			return oc, c.scrub(fmt.Errorf("%s %s: %w", method, redactURL(u), ctx.Err()))
		}
		if !retry || attempt >= c.opts.attempts {
			if retry && attempt > 1 {
				err = fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return oc, c.scrub(err)
		}
		// A 5xx or a broken connection may come after the host acted.
		if ae := (*APIError)(nil); !errors.As(err, &ae) || ae.Status >= 500 {
			oc.ambiguous = true
		}
		if wait < 0 {
			wait = backoff.Delay(c.opts.backoff, maxWait, attempt)
		}
		c.opts.logger.WarnContext(ctx, "forge request failed, retrying",
			"method", method, "url", redactURL(u), "attempt", attempt, "of", c.opts.attempts,
			"delay", wait, "error", c.scrub(err).Error())
		if serr := backoff.Sleep(ctx, wait); serr != nil {
			return oc, c.scrub(fmt.Errorf("%s %s: %w (waiting to retry after: %v)", method, redactURL(u), serr, err))
		}
	}
}

// once is one attempt. wait is the Retry-After the host asked for, or -1.
func (c *client) once(ctx context.Context, method, u string, body []byte, out any) (retry bool, wait time.Duration, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		// A *url.Error quotes the URL as given: keep only its cause.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return false, -1, fmt.Errorf("%s %s: %w", method, redactURL(u), err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.opts.userAgent)
	c.auth(req.Header)
	resp, err := c.opts.client.Do(req)
	if err != nil {
		// A *url.Error quotes the URL as given: say it without credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, -1, fmt.Errorf("%s %s: %w", method, redactURL(u), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return true, -1, fmt.Errorf("%s %s: reading the answer: %w", method, redactURL(u), err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || len(bytes.TrimSpace(data)) == 0 {
			return false, -1, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return false, -1, fmt.Errorf("%s %s: decoding the answer: %w", method, redactURL(u), err)
		}
		return false, -1, nil
	}
	e := &APIError{Method: method, URL: redactURL(u), Status: resp.StatusCode}
	c.parse(e, data)
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	wait = -1
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		wait = min(time.Duration(s)*time.Second, maxWait)
	}
	switch {
	case e.Temporary():
		return true, wait, e
	case resp.StatusCode == http.StatusForbidden && wait >= 0:
		// GitHub's secondary rate limit: a 403 that says when to come back.
		return true, wait, e
	}
	return false, -1, e
}

// scrub replaces the token wherever it appears in err's text: a host or a
// proxy may quote a header back. The *APIError, if any, stays reachable
// for errors.As, with its fields scrubbed too.
func (c *client) scrub(err error) error {
	if err == nil || len(c.token) < 4 {
		return err
	}
	var e *APIError
	if errors.As(err, &e) {
		e.Message = strings.ReplaceAll(e.Message, c.token, "***")
		for i := range e.Errors {
			e.Errors[i] = strings.ReplaceAll(e.Errors[i], c.token, "***")
		}
	}
	if !strings.Contains(err.Error(), c.token) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), c.token, "***"), err: err}
}

// scrubbed is an error whose text had the token in it.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// redactURL drops the user and password of a URL, should a base URL carry
// them, and its query is kept (ferry puts no secret there).
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(an unparsable URL)"
	}
	if p.User != nil {
		p.User = url.User("***")
	}
	return p.String()
}

// segments escapes each part of a path for a URL, keeping the slashes
// between them: a branch "ferry/deploy" stays ferry/deploy in
// .../git/refs/heads/ferry/deploy, as GitHub wants it.
func segments(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// trimBase checks a base URL and drops its trailing slash.
func trimBase(base, def string) (string, error) {
	if base == "" {
		base = def
	}
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return base, fmt.Errorf("API base URL %s: want http(s)://HOST[/PATH]", redactURL(base))
	}
	return base, nil
}

// messageText reads an error's "message" as GitHub and GitLab send it: a
// string, a list of strings, or (GitLab's validation errors) an object of
// field to messages.
func messageText(raw json.RawMessage) (msg string, details []string) {
	if len(raw) == 0 {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		if len(list) == 1 {
			return list[0], nil
		}
		return "", list
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) == nil {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			m, d := messageText(fields[k])
			for _, x := range append([]string{m}, d...) {
				if x != "" {
					details = append(details, k+" "+x)
				}
			}
		}
		return "", details
	}
	return string(raw), nil
}
