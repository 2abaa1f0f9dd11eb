package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The proxy delays each direction by the latency, so a request on a new
// connection costs two round trips (handshake and exchange), one on a
// kept-alive connection one; it counts requests, turns and connections.
func TestProxyLatencyAndCounts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	p, err := newProxy(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const lat = 20 * time.Millisecond
	p.setLatency(lat)
	client := &http.Client{Transport: &http.Transport{}}
	start := time.Now()
	for i := range 3 {
		body := strings.NewReader(strings.Repeat("x", 1000*i))
		resp, err := client.Post("http://"+p.Host+"/", "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	took := time.Since(start)
	client.CloseIdleConnections()
	// 1 handshake + 3 exchanges, each 2 latencies.
	if want := 8 * lat; took < want {
		t.Errorf("3 requests on one connection took %v, want at least %v", took, want)
	}
	n := p.reset()
	if n.Conns != 1 || n.Requests != 3 || n.Turns != 3 {
		t.Errorf("counted %+v, want 1 connection, 3 requests, 3 turns", n)
	}
	if n.Up < 3000 || n.Down < int64(3*len("hello")) {
		t.Errorf("counted %d bytes up and %d down", n.Up, n.Down)
	}
}

// With nobody else writing, the model's writer succeeds at once in the
// time of an uncontended deploy; with a burst, no update is lost.
func TestSimulate(t *testing.T) {
	p := simParams{Fetch: 100 * time.Millisecond, Server: 50 * time.Millisecond, RTT: 10 * time.Millisecond,
		FetchRTs: 5, PushRTs: 2, Backoff: 500 * time.Millisecond, MaxWait: 5 * time.Second, Attempts: 30}
	ws, _ := simulate(p, []time.Duration{0})
	if !ws[0].ok || ws[0].attempt != 1 || ws[0].done != p.alone() {
		t.Errorf("alone: %+v, want done at %v on the first attempt", ws[0], p.alone())
	}
	ws, _ = simulate(p, make([]time.Duration, 20))
	for i, w := range ws {
		if !w.ok {
			t.Errorf("writer %d did not succeed: %+v", i, w)
		}
	}
}
