package notify

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 20, 43, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
	} {
		got, ok := retryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	o := newOptions(time.Second, 3, []Option{WithBackoff(100 * time.Millisecond)})
	for attempt, window := range map[int]time.Duration{
		1:  100 * time.Millisecond,
		2:  200 * time.Millisecond,
		4:  800 * time.Millisecond,
		20: maxBackoff,
		80: maxBackoff,
	} {
		for range 50 {
			if d := o.backoffDelay(attempt); d < 0 || d >= window {
				t.Fatalf("backoffDelay(%d) = %v, want in [0, %v)", attempt, d, window)
			}
		}
	}
	if d := newOptions(time.Second, 3, []Option{WithBackoff(0)}).backoffDelay(3); d != 0 {
		t.Errorf("backoffDelay with base 0 = %v, want 0", d)
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300) // two bytes each
	for _, tc := range []struct {
		in, want string
	}{
		{"  no_service\n", "no_service"},
		{"a\r\n\tb\x00c", "a b c"},
		{"bad \xff utf8", "bad utf8"},
	} {
		if got := quote([]byte(tc.in), maxQuoted); got != tc.want {
			t.Errorf("quote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	got := quote([]byte(long), maxQuoted)
	if len(got) > maxQuoted || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("quote(300×é) = %d bytes %q; want at most %d valid bytes ending in …", len(got), got, maxQuoted)
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	w := Webhook("https://example.com").(*httpHook).opts
	if w.timeout != 10*time.Second || w.attempts != 3 || w.backoff != 500*time.Millisecond {
		t.Errorf("webhook defaults: timeout %v attempts %d backoff %v", w.timeout, w.attempts, w.backoff)
	}
	e := Exec([]string{"true"}).(*execHook).opts
	if e.timeout != 60*time.Second || e.attempts != 1 {
		t.Errorf("exec defaults: timeout %v attempts %d", e.timeout, e.attempts)
	}
	o := newOptions(time.Second, 3, []Option{WithTimeout(0), WithAttempts(0), WithClient(nil), WithLogger(nil), WithOutput(nil)})
	if o.timeout != time.Second || o.attempts != 1 || o.client == nil || o.logger == nil || o.output != nil {
		t.Errorf("zero options: %+v", o)
	}
}
