package backoff

import (
	"context"
	"testing"
	"time"
)

const maxBackoff = 30 * time.Second

func TestDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base    time.Duration
		attempt int
		window  time.Duration // every wait is in [0, window)
	}{
		{base: 200 * time.Millisecond, attempt: 1, window: 200 * time.Millisecond},
		{base: 200 * time.Millisecond, attempt: 2, window: 400 * time.Millisecond},
		{base: 200 * time.Millisecond, attempt: 3, window: 800 * time.Millisecond},
		{base: time.Second, attempt: 10, window: maxBackoff},
		{base: time.Second, attempt: 1000, window: maxBackoff},
		{base: time.Hour, attempt: 1, window: maxBackoff},
		{base: 0, attempt: 3, window: 1},
	}
	for _, tc := range tests {
		var longest time.Duration
		for range 2000 {
			d := Delay(tc.base, maxBackoff, tc.attempt)
			if d < 0 || d >= tc.window {
				t.Fatalf("backoff(%d) with base %v = %v, want in [0, %v)", tc.attempt, tc.base, d, tc.window)
			}
			longest = max(longest, d)
		}
		// Full jitter spreads over the whole window, not just its top.
		if tc.window > 1 && longest < tc.window/2 {
			t.Errorf("backoff(%d) with base %v: longest of 2000 waits %v, want some above %v", tc.attempt, tc.base, longest, tc.window/2)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Errorf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v", err)
	}
}

func TestLinear(t *testing.T) {
	t.Parallel()
	tests := []struct {
		step   time.Duration
		n      int
		window time.Duration // every wait is in [0, window)
	}{
		{step: 100 * time.Millisecond, n: 1, window: 100 * time.Millisecond},
		{step: 100 * time.Millisecond, n: 3, window: 300 * time.Millisecond},
		{step: 100 * time.Millisecond, n: 1000, window: maxBackoff},
		{step: time.Hour, n: 1, window: maxBackoff},
		{step: 0, n: 3, window: 1},
		{step: time.Second, n: 0, window: 1},
	}
	for _, tc := range tests {
		var longest time.Duration
		for range 2000 {
			d := Linear(tc.step, maxBackoff, tc.n)
			if d < 0 || d >= tc.window {
				t.Fatalf("Linear(%v, %d) = %v, want in [0, %v)", tc.step, tc.n, d, tc.window)
			}
			longest = max(longest, d)
		}
		if tc.window > 1 && longest < tc.window/2 {
			t.Errorf("Linear(%v, %d): longest of 2000 waits %v, want some above %v", tc.step, tc.n, longest, tc.window/2)
		}
	}
}
