package notify_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/pkg/notify"
)

const (
	digestHello = "sha256:17df661612ac5a1d3c4fa7f5e1ad2bc1bd1c3c7d1a5f0d2b6f3c1e7a9b0c4d2e"
	digestSide  = "sha256:a7a4c405c8679e0b8f2d6a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b"
)

// fixedTime keeps golden files deterministic.
var fixedTime = time.Date(2026, 11, 22, 20, 43, 0, 0, time.UTC)

// deployEvent is a successful deploy with everything filled in.
func deployEvent() notify.Event {
	return notify.Event{
		Action:   "deploy",
		Result:   notify.OnSuccess,
		Env:      "candidate",
		App:      "hello",
		Path:     "apps/hello",
		Commit:   "5c03fa223922b6a1d7e4c0f9a8b7c6d5e4f3a2b1",
		Previous: "fe870029abcdef0123456789abcdef0123456789",
		Images: []notify.Image{
			{Name: "us-docker.pkg.dev/acme/apps/hello", Tag: "v1", Digest: digestHello, Ref: "us-docker.pkg.dev/acme/apps/hello:v1@" + digestHello},
			{Name: "us-docker.pkg.dev/acme/apps/sidecar", Tag: "2.0", Digest: digestSide, Ref: "us-docker.pkg.dev/acme/apps/sidecar:2.0@" + digestSide},
		},
		Files:        []string{"apps/hello/kustomization.yaml"},
		SourceRepo:   "https://github.com/acme/hello",
		SourceCommit: "abc1234def5678abc1234def5678abc1234def56",
		BuildID:      "8d1f",
		BuildURL:     "https://github.com/acme/hello/actions/runs/8d1f",
		Repo:         "https://github.com/acme/env.git",
		Time:         fixedTime,
	}
}

// recorder is an HTTP endpoint that answers from a script and keeps every
// request it got.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
	answer   func(n int, w http.ResponseWriter, r *http.Request) // n counts from 1
}

type recorded struct {
	method, path, contentType string
	body                      []byte
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.requests = append(rec.requests, recorded{r.Method, r.URL.Path, r.Header.Get("Content-Type"), body})
	n := len(rec.requests)
	rec.mu.Unlock()
	rec.answer(n, w, r)
}

func (rec *recorder) got() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.requests...)
}

// serve starts rec on 127.0.0.1 for the test's lifetime.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// statuses answers the given statuses in turn, then the last one again.
func statuses(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes))-1])
	}
}

// hang answers nothing until the client gives up or the test ends.
func hang(t *testing.T) func(int, http.ResponseWriter, *http.Request) {
	release := make(chan struct{})
	// Cleanups run last-in first-out: this one runs before the server's
	// Close, which waits for handlers to return.
	t.Cleanup(func() { close(release) })
	return func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// refusedURL is an http URL on 127.0.0.1 where nothing listens.
func refusedURL(t *testing.T, path string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + path
}

// logBuffer is a logger writing JSON lines into a buffer, safe for use
// from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}

func mustNotContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			t.Errorf("%s %q contains %q", what, s, sub)
		}
	}
}
