// Package backoff is ferry's one exponential backoff with full jitter,
// shared by the registry client, the env repo writer and the hooks: the
// n-th retry waits a uniformly random time below base·2^(n-1), capped at
// max, so many clients retrying at once spread out instead of colliding
// again.
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
