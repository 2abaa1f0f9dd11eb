package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// server is an HTTP server on 127.0.0.1 that counts the bytes of request
// and response bodies and the requests it answers.
type server struct {
	Host     string // 127.0.0.1:PORT
	srv      *http.Server
	bytes    atomic.Int64
	requests atomic.Int64
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{Host: ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		r.Body = countingReader{r.Body, &s.bytes}
		h.ServeHTTP(countingWriter{w, &s.bytes}, r)
	})}
	go s.srv.Serve(ln)
	return s, nil
}

// reset zeroes the counters and returns what they held.
func (s *server) reset() (bytes, requests int64) {
	return s.bytes.Swap(0), s.requests.Swap(0)
}

func (s *server) Close() error { return s.srv.Close() }

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// serveGit serves every repository under root with git's own smart-HTTP
// server, `git http-backend`, run per request as a CGI program.
func serveGit(root, home string) (*server, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, err
	}
	return serve(&cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + home,
		},
		Logger: log.New(io.Discard, "", 0),
	})
}

// serveRegistry runs go-containerregistry's in-memory registry.
func serveRegistry() (*server, error) {
	return serve(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
}

// pushImage pushes a small random image as ref and returns its digest.
func pushImage(ctx context.Context, ref string, seed int64) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	img, err := random.Image(1024, 2, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		return "", err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	return d.String(), err
}
