package ghapp

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
)

// A token GitHub has just issued can take a moment to reach every server
// that checks it: its first uses may be refused (401, or 403 from git)
// for up to a few seconds. RetryFresh tries for freshWindow, waiting
// freshStep plus a jittered backoff between tries.
const (
	freshWindow = 5 * time.Second
	freshStep   = 100 * time.Millisecond
	freshMax    = time.Second
)

// RetryFresh runs f, the first use of a token minted a moment ago, and
// runs it again while it fails with an error isAuthErr says is an
// authentication failure (401 or 403 from git or the API), for about five
// seconds at most: waits start near 100ms and grow to a second, with
// jitter. Any other error, success, or ctx ending stops it; the last
// error is returned. f must be safe to repeat (a fetch, a read, a request
// that was refused before it did anything).
func RetryFresh(ctx context.Context, f func() error, isAuthErr func(error) bool) error {
	deadline := time.Now().Add(freshWindow)
	for n := 1; ; n++ {
		err := f()
		if err == nil || !isAuthErr(err) || ctx.Err() != nil {
			return err
		}
		wait := freshStep + backoff.Delay(freshStep, freshMax, n)
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		if backoff.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// Fresh is RetryFresh for every use of one token, until one has
// succeeded: then the token is known to be accepted, and a later
// authentication failure is real and returned at once. One Fresh per
// token; its zero value is ready, and it is safe for concurrent use.
type Fresh struct{ accepted atomic.Bool }

// Retry runs f as RetryFresh does while the token has not yet been
// accepted, and once otherwise.
func (fr *Fresh) Retry(ctx context.Context, f func() error, isAuthErr func(error) bool) error {
	if fr.accepted.Load() {
		return f()
	}
	err := RetryFresh(ctx, f, isAuthErr)
	if err == nil {
		fr.accepted.Store(true)
	}
	return err
}
