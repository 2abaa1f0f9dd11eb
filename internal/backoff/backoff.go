// Package backoff is ferry's one backoff with full jitter, shared by the
// registry client, the env repo writer, the hooks and the contention model
// of bench/envbench: the n-th retry waits a uniformly random time below
// base·2^(n-1) (Delay) or step·n (Linear), capped at max, so many clients
// retrying at once spread out instead of colliding again.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry n (1 for the first retry): uniform in
// [0, min(max, base·2^(n-1))). It is 0 when base is not positive.
func Delay(base, max time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	window := max
	if shift := n - 1; shift >= 0 && shift < 32 && base <= max>>shift {
		window = base << shift
	}
	if window <= 0 {
		return 0
	}
	return rand.N(window)
}

// Linear returns the wait before retry n (1 for the first) when waits grow
// by step each retry: uniform in [0, min(max, step·n)). It is 0 when step
// or n is not positive.
func Linear(step, max time.Duration, n int) time.Duration {
	if step <= 0 || n <= 0 {
		return 0
	}
	window := max
	if time.Duration(n) <= max/step {
		window = step * time.Duration(n)
	}
	if window <= 0 {
		return 0
	}
	return rand.N(window)
}

// Sleep waits for d, or until ctx is done, and then returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
