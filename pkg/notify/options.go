package notify

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
)

// maxBackoff caps the wait between two attempts, a Retry-After included.
const maxBackoff = 30 * time.Second

// Option configures a hook.
type Option func(*options)

type options struct {
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	client   *http.Client
	logger   *slog.Logger
	output   io.Writer
}

func newOptions(timeout time.Duration, attempts int, opts []Option) options {
	o := options{
		timeout:  timeout,
		attempts: attempts,
		backoff:  500 * time.Millisecond,
		client:   &http.Client{},
		logger:   slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithTimeout bounds each attempt. The default is 10s for Webhook and
// Slack, 60s for Exec. A d of zero or less keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithAttempts sets how many times a hook is tried in all before it fails.
// The default is 3 for Webhook and Slack, 1 for Exec; n below 1 counts as 1.
func WithAttempts(n int) Option {
	return func(o *options) { o.attempts = max(n, 1) }
}

// WithBackoff sets the base of the wait between attempts (default 500ms).
// Before attempt n+1 a hook waits a random time between 0 and
// base·2^(n-1), at most 30s (exponential backoff with full jitter); a
// Retry-After on a 429 or 503 answer is waited instead, also at most 30s.
// Zero retries at once.
func WithBackoff(base time.Duration) Option {
	return func(o *options) { o.backoff = max(base, 0) }
}

// WithClient sets the HTTP client of Webhook and Slack hooks; the default
// is a client on http.DefaultTransport (proxy variables honoured). Each
// attempt's timeout comes from WithTimeout, whatever the client's Timeout.
// nil keeps the default.
func WithClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// WithLogger sets where a hook logs its retries and, for Exec without
// WithOutput, its output; the default discards. nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithOutput sends an Exec hook's stdout and stderr to w. The default logs
// each line the hook prints at level info, with the hook's name and the
// stream. nil keeps the default.
func WithOutput(w io.Writer) Option {
	return func(o *options) {
		if w != nil {
			o.output = w
		}
	}
}

// backoffDelay returns the wait before attempt+1.
func (o options) backoffDelay(attempt int) time.Duration {
	return backoff.Delay(o.backoff, maxBackoff, attempt)
}

// hookError is a hook's failure: a message safe to print, and the cause
// for errors.Is (context.Canceled, context.DeadlineExceeded).
type hookError struct {
	msg string
	err error
}

func (e *hookError) Error() string { return e.msg }
func (e *hookError) Unwrap() error { return e.err }

// timeoutError is an attempt that ran out of time.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string { return "timed out after " + e.d.String() }
func (e *timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded
}
