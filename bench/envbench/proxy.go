package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is a TCP proxy on 127.0.0.1 in front of one server that delays
// every chunk it forwards, in either direction, by the same one-way latency,
// keeping the order, so a request and its response cost at least two
// latencies, as over a real link. A new connection's first bytes are
// delayed by one more round trip, as the TCP handshake would (there is no
// TLS). It counts connections, bytes each way (headers included, as on the
// wire) and HTTP requests, which it finds by parsing the client's stream.
type proxy struct {
	Host    string // 127.0.0.1:PORT
	ln      net.Listener
	backend string
	latency atomic.Int64 // nanoseconds, one way
	wg      sync.WaitGroup

	conns, requests, turns, up, down atomic.Int64
}

// netCount is what went through a proxy while a run was timed.
type netCount struct {
	Conns    int64 `json:"connections"`
	Requests int64 `json:"requests"`
	// Turns counts the times a client sent after the server had spoken
	// (or first) on a connection: each is one round trip, and with the
	// connections' handshakes they are the round trips of a tool whose
	// connections do not overlap, as git's and ferry's do not.
	Turns int64 `json:"turns"`
	Up    int64 `json:"bytes_up"`   // client to server
	Down  int64 `json:"bytes_down"` // server to client
}

func newProxy(backend string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{Host: ln.Addr().String(), ln: ln, backend: backend}
	go p.serve()
	return p, nil
}

func (p *proxy) setLatency(d time.Duration) { p.latency.Store(int64(d)) }

// reset zeroes the counters and returns what they held. Connections still
// open keep counting into the next run; the tools wait for theirs to end.
func (p *proxy) reset() netCount {
	return netCount{p.conns.Swap(0), p.requests.Swap(0), p.turns.Swap(0), p.up.Swap(0), p.down.Swap(0)}
}

func (p *proxy) Close() error {
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c.(*net.TCPConn))
		}()
	}
}

func (p *proxy) handle(client *net.TCPConn) {
	defer client.Close()
	bc, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	server := bc.(*net.TCPConn)
	defer server.Close()
	lat := time.Duration(p.latency.Load())

	// The client's stream is parsed as HTTP requests to count them.
	pr, pw := io.Pipe()
	go countRequests(pr, &p.requests)

	var serverSpoke atomic.Bool
	serverSpoke.Store(true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		pipe(client, server, lat, 2*lat, &p.up, pw, func() {
			if serverSpoke.Swap(false) {
				p.turns.Add(1)
			}
		})
	}()
	go func() {
		defer wg.Done()
		pipe(server, client, lat, 0, &p.down, nil, func() { serverSpoke.Store(true) })
	}()
	wg.Wait()
}

type chunk struct {
	data []byte
	due  time.Time
	eof  bool
}

// pipe copies from src to dst, delivering each chunk lat after it was read
// (the first one extra later), then half-closes dst. It calls onRead
// for every chunk read. A copy of the stream
// goes to tee, if set, which is closed at the end.
func pipe(src, dst *net.TCPConn, lat, extra time.Duration, n *atomic.Int64, tee *io.PipeWriter, onRead func()) {
	q := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		failed := false
		for c := range q {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if failed {
				continue
			}
			if c.eof {
				dst.CloseWrite()
				continue
			}
			if _, err := dst.Write(c.data); err != nil {
				failed = true
				dst.Close()
				src.Close() // stops the reader
			}
		}
	}()
	teeOK := tee != nil
	buf := make([]byte, 64<<10)
	first := true
	for {
		k, err := src.Read(buf)
		if k > 0 {
			onRead()
			n.Add(int64(k))
			data := append([]byte(nil), buf[:k]...)
			due := time.Now().Add(lat)
			if first {
				due, first = due.Add(extra), false
			}
			q <- chunk{data: data, due: due}
			if teeOK {
				if _, err := tee.Write(data); err != nil {
					teeOK = false
				}
			}
		}
		if err != nil {
			break
		}
	}
	q <- chunk{due: time.Now().Add(lat), eof: true}
	close(q)
	if tee != nil {
		tee.Close()
	}
	<-done
}

// countRequests reads HTTP/1.x requests, bodies included, until the
// stream ends or is not HTTP, adding one to n for each.
func countRequests(r *io.PipeReader, n *atomic.Int64) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.CloseWithError(err)
			}
			io.Copy(io.Discard, r)
			return
		}
		n.Add(1)
		_, err = io.Copy(io.Discard, req.Body)
		req.Body.Close()
		if err != nil {
			r.CloseWithError(err)
			io.Copy(io.Discard, r)
			return
		}
	}
}
