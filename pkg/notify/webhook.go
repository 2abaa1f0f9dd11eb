package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferrycd/ferry/internal/backoff"
)

// maxQuoted is how much of a response body an error quotes.
const maxQuoted = 200

// noWait marks an answer that named no time to wait before the next attempt.
const noWait time.Duration = -1

// Webhook returns a hook that POSTs the Event as JSON (Content-Type
// application/json) to rawURL; any 2xx answer is success. Credentials in
// the URL (https://user:pass@host/...) are sent as basic auth. Defaults:
// 10s per attempt, 3 attempts, 500ms backoff base.
func Webhook(rawURL string, opts ...Option) Hook {
	return newHTTPHook("webhook", rawURL, func(ev Event) ([]byte, error) {
		return json.Marshal(ev.normalized())
	}, opts)
}

// Slack returns a hook that posts a message to a Slack incoming webhook
// (https://hooks.slack.com/services/...): a plain-text fallback in "text"
// and Block Kit "blocks" (a header, a section with the outcome and fields
// for env, app, path, commit, images, source and build, and a context line).
// Slack answers 200 "ok" on success. Defaults as for Webhook.
func Slack(rawURL string, opts ...Option) Hook {
	return newHTTPHook("slack", rawURL, func(ev Event) ([]byte, error) {
		// Slack reads &lt; &gt; &amp; as mrkdwn entities: keep them (and
		// the payload) legible rather than \u-escaped.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(slackMessage(ev)); err != nil {
			return nil, err
		}
		return bytes.TrimRight(b.Bytes(), "\n"), nil
	}, opts)
}

// CheckURL reports whether rawURL can be a Webhook or Slack URL: absolute,
// http or https, with a host. Its error never repeats the URL.
func CheckURL(rawURL string) error {
	_, err := parseHookURL(rawURL)
	return err
}

func parseHookURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		// url.Parse quotes the whole URL in its error: leave it out.
		return nil, errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("URL must start with https:// or http://")
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

type httpHook struct {
	name   string
	url    *url.URL
	urlErr error
	encode func(Event) ([]byte, error)
	secret *strings.Replacer
	opts   options
}

func newHTTPHook(kind, rawURL string, encode func(Event) ([]byte, error), opts []Option) *httpHook {
	h := &httpHook{encode: encode, opts: newOptions(10*time.Second, 3, opts)}
	h.url, h.urlErr = parseHookURL(rawURL)
	h.name = kind + " " + redactURL(h.url)
	h.secret = secretReplacer(rawURL, h.url)
	return h
}

// redactURL keeps the scheme and host of u: "https://hooks.slack.com/…".
func redactURL(u *url.URL) string {
	if u == nil {
		return "(invalid URL)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawPath != "" || u.RawQuery != "" || u.Fragment != "" {
		s += "/…"
	}
	return s
}

// secretReplacer replaces the parts of a webhook URL that may be secret,
// longest first, wherever they turn up in a message.
func secretReplacer(raw string, u *url.URL) *strings.Replacer {
	var secrets []string
	add := func(s string) {
		if len(s) > 1 && s != "/" {
			secrets = append(secrets, s)
		}
	}
	add(strings.TrimSpace(raw))
	if u != nil {
		add(u.String())
		add(u.EscapedPath())
		add(u.Path)
		add(u.RawQuery)
		// A long path segment is likely a token on its own (Slack's is 24
		// characters); a server may quote it alone.
		for seg := range strings.SplitSeq(u.Path, "/") {
			if len(seg) >= 12 {
				add(seg)
			}
		}
		if u.User != nil {
			add(u.User.String())
			if p, ok := u.User.Password(); ok {
				add(p)
			}
		}
	}
	// strings.Replacer tries the old strings in argument order.
	slices.SortStableFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, "…")
	}
	return strings.NewReplacer(pairs...)
}

func (h *httpHook) Name() string { return h.name }

// fail builds the hook's error: its name, then msg, with every secret part
// of the URL replaced.
func (h *httpHook) fail(cause error, format string, args ...any) error {
	msg := h.name + ": " + fmt.Sprintf(format, args...)
	return &hookError{msg: h.secret.Replace(msg), err: cause}
}

func (h *httpHook) Fire(ctx context.Context, ev Event) error {
	if h.urlErr != nil {
		return h.fail(h.urlErr, "%v", h.urlErr)
	}
	body, err := h.encode(ev)
	if err != nil {
		return h.fail(err, "encoding the payload: %v", err)
	}
	n := h.opts.attempts
	for attempt := 1; ; attempt++ {
		retry, after, err := h.attempt(ctx, body)
		if err == nil {
			if attempt > 1 {
				h.opts.logger.InfoContext(ctx, "hook succeeded after retries", "hook", h.name, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return h.fail(ctx.Err(), "%v (attempt %d of %d)", ctx.Err(), attempt, n)
		}
		if !retry {
			return h.fail(err, "%v (attempt %d of %d, not retried)", err, attempt, n)
		}
		if attempt >= n {
			return h.fail(err, "gave up after %d attempts: %v", attempt, err)
		}
		delay := after
		if delay == noWait {
			delay = h.opts.backoffDelay(attempt)
		}
		h.opts.logger.WarnContext(ctx, "hook attempt failed, retrying",
			"hook", h.name, "attempt", attempt, "of", n, "delay", delay, "error", h.secret.Replace(err.Error()))
		if serr := backoff.Sleep(ctx, delay); serr != nil {
			return h.fail(serr, "%v (waiting to retry after %d failed attempts; last error: %v)", serr, attempt, err)
		}
	}
}

// attempt POSTs body once. retry says whether the failure is temporary;
// after is the wait the server asked for, or noWait.
func (h *httpHook) attempt(ctx context.Context, body []byte) (retry bool, after time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, h.opts.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, h.url.String(), bytes.NewReader(body))
	if err != nil {
		return false, noWait, errors.New("building the request failed")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ferry")
	resp, err := h.opts.client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return false, noWait, ctx.Err()
		case actx.Err() != nil:
			return true, noWait, &timeoutError{h.opts.timeout}
		}
		// A *url.Error quotes the whole URL: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, noWait, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return false, noWait, nil
	}
	quoted, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	serr := &statusError{code: resp.StatusCode, body: quote(quoted, maxQuoted)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		after := noWait
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			after = min(d, maxBackoff)
		}
		return true, after, serr
	case resp.StatusCode >= 500:
		return true, noWait, serr
	default:
		return false, noWait, serr
	}
}

// statusError is a non-2xx answer.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.code, http.StatusText(e.code))
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// quote makes b fit on one line in at most n bytes: control characters and
// runs of white space become one space, invalid UTF-8 is dropped, and a
// cut is marked with "…".
func quote(b []byte, n int) string {
	var sb strings.Builder
	space := false
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r == utf8.RuneError && size <= 1 {
			continue
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = sb.Len() > 0
			continue
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteRune(r)
	}
	s := sb.String()
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
