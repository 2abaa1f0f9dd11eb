package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/pkg/notify"
)

// fast keeps retries quick in tests.
var fast = notify.WithBackoff(time.Millisecond)

func TestWebhookRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	rec := &recorder{answer: statuses(500, 500, 201)}
	srv := serve(t, rec)
	ev := deployEvent()

	if err := notify.Webhook(srv.URL+"/hook", fast).Fire(t.Context(), ev); err != nil {
		t.Fatalf("Fire: %v", err)
	}
	got := rec.got()
	if len(got) != 3 {
		t.Fatalf("got %d attempts, want 3", len(got))
	}
	for i, r := range got {
		if r.method != http.MethodPost || r.path != "/hook" || r.contentType != "application/json" {
			t.Errorf("attempt %d: %s %s Content-Type %q, want POST /hook application/json", i+1, r.method, r.path, r.contentType)
		}
		var sent notify.Event
		if err := json.Unmarshal(r.body, &sent); err != nil {
			t.Fatalf("attempt %d: body is not an Event: %v\n%s", i+1, err, r.body)
		}
		if diff := cmp.Diff(ev, sent); diff != "" {
			t.Errorf("attempt %d: body (-want +got):\n%s", i+1, diff)
		}
	}
}

func TestWebhookBody(t *testing.T) {
	t.Parallel()
	rec := &recorder{answer: statuses(204)}
	srv := serve(t, rec)
	ev := notify.Event{Action: "promote", Result: notify.OnNoop, Env: "production", Time: fixedTime}

	if err := notify.Webhook(srv.URL).Fire(t.Context(), ev); err != nil {
		t.Fatalf("Fire: %v", err)
	}
	// The wire format is the contract receivers parse: pin it.
	want := `{"action":"promote","result":"noop","env":"production","images":[],"time":"2026-11-22T20:43:00Z"}`
	if got := string(rec.got()[0].body); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestWebhookFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		answer   func(int, http.ResponseWriter, *http.Request)
		attempts int // made by the hook
		err      []string
	}{
		{"400 is final", statuses(400), 1, []string{"HTTP 400 Bad Request", "attempt 1 of 3, not retried"}},
		{"404 is final", statuses(404), 1, []string{"HTTP 404", "not retried"}},
		{"5xx until the end", statuses(502, 500, 503), 3, []string{"gave up after 3 attempts", "HTTP 503 Service Unavailable"}},
		{"body quoted on one line", func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(422)
			w.Write([]byte("invalid\n\tpayload\n"))
		}, 1, []string{"HTTP 422 Unprocessable Entity: invalid payload (attempt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{answer: tc.answer}
			srv := serve(t, rec)
			h := notify.Webhook(srv.URL+"/x", fast)
			err := h.Fire(t.Context(), deployEvent())
			if err == nil {
				t.Fatal("Fire succeeded, want an error")
			}
			if n := len(rec.got()); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
			if !strings.HasPrefix(err.Error(), h.Name()+": ") {
				t.Errorf("error %q does not start with the hook's name %q", err, h.Name())
			}
			mustContain(t, "error", err.Error(), tc.err...)
		})
	}
}

func TestWebhookRetryAfter(t *testing.T) {
	t.Parallel()
	for _, code := range []int{429, 503} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			rec := &recorder{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(code)
					return
				}
				w.WriteHeader(200)
			}}
			srv := serve(t, rec)
			// A base backoff of an hour: only the Retry-After lets this
			// finish in time.
			h := notify.Webhook(srv.URL, notify.WithBackoff(time.Hour))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := h.Fire(ctx, deployEvent()); err != nil {
				t.Fatalf("Fire: %v", err)
			}
			if n := len(rec.got()); n != 2 {
				t.Errorf("%d attempts, want 2", n)
			}
		})
	}
}

func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	rec := &recorder{answer: hang(t)}
	srv := serve(t, rec)
	h := notify.Webhook(srv.URL, notify.WithTimeout(100*time.Millisecond), notify.WithAttempts(2), fast)
	start := time.Now()
	err := h.Fire(t.Context(), deployEvent())
	if err == nil {
		t.Fatal("Fire succeeded against a hanging endpoint")
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("Fire took %v; each attempt should end at its timeout", elapsed)
	}
	mustContain(t, "error", err.Error(), "gave up after 2 attempts", "timed out after 100ms")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	// The hook counts its attempts in the error; the server sees those
	// that got through in time.
	if n := len(rec.got()); n > 2 {
		t.Errorf("%d requests, want at most 2", n)
	}
}

func TestWebhookNetworkErrorRetried(t *testing.T) {
	t.Parallel()
	u := refusedURL(t, "/hook/SECRETPATH?token=SECRETQUERY")
	h := notify.Webhook(u, notify.WithAttempts(2), fast)
	err := h.Fire(t.Context(), deployEvent())
	if err == nil {
		t.Fatal("Fire succeeded with nothing listening")
	}
	mustContain(t, "error", err.Error(), "gave up after 2 attempts", "connection refused")
	mustNotContain(t, "error", err.Error(), "SECRETPATH", "SECRETQUERY", "/hook")
}

func TestWebhookContextCancelled(t *testing.T) {
	t.Parallel()
	rec := &recorder{answer: hang(t)}
	srv := serve(t, rec)
	h := notify.Webhook(srv.URL, notify.WithTimeout(time.Minute))
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := h.Fire(ctx, deployEvent())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fire = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Fire returned %v after the cancel; want promptly", elapsed)
	}
	if n := len(rec.got()); n > 1 {
		t.Errorf("%d requests, want at most the one cut short", n)
	}
}

func TestWebhookCancelledDuringBackoff(t *testing.T) {
	t.Parallel()
	// Retry-After asks for an hour; the wait is capped at 30s, still far
	// beyond the caller's deadline.
	rec := &recorder{answer: func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	}}
	srv := serve(t, rec)
	h := notify.Webhook(srv.URL, notify.WithAttempts(5))
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	err := h.Fire(ctx, deployEvent())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fire = %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("Fire returned after %v; want at the caller's deadline", elapsed)
	}
	mustContain(t, "error", err.Error(), "waiting to retry after 1 failed attempts", "HTTP 503")
}

func TestHookNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hook notify.Hook
		want string
	}{
		{notify.Webhook("https://hooks.example.com/deploy/T0KEN?sig=abc"), "webhook https://hooks.example.com/…"},
		{notify.Webhook("https://user:pa55@hooks.example.com:8443"), "webhook https://hooks.example.com:8443"},
		{notify.Webhook("https://hooks.example.com/"), "webhook https://hooks.example.com"},
		{notify.Slack("https://hooks.slack.com/services/T000/B000/XXXXSECRET"), "slack https://hooks.slack.com/…"},
		{notify.Webhook("hooks.example.com/deploy"), "webhook (invalid URL)"},
		{notify.Exec([]string{"/usr/local/bin/notify-argo", "--token", "s3cret"}), "exec /usr/local/bin/notify-argo"},
		{notify.Exec(nil), "exec"},
	} {
		if got := tc.hook.Name(); got != tc.want {
			t.Errorf("Name() = %q, want %q", got, tc.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, err string
	}{
		{"https://hooks.slack.com/services/T000/B000/XXXXSECRET", ""},
		{"http://127.0.0.1:8080/hook", ""},
		{"hooks.slack.com/services/T000/B000/XXXXSECRET", "URL must start with https:// or http://"},
		{"ftp://example.com/XXXXSECRET", "URL must start with https:// or http://"},
		{"https:///XXXXSECRET", "URL has no host"},
		{"https://exa mple.com/XXXXSECRET\x7f", "not a valid URL"},
	} {
		err := notify.CheckURL(tc.url)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("CheckURL(%q) = %q, want %q", tc.url, got, tc.err)
		}
	}
}
