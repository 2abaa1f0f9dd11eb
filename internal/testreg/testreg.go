// Package testreg runs go-containerregistry's in-process registry on
// 127.0.0.1 for tests and pushes small random images to it.
package testreg

import (
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a running registry.
type Registry struct {
	*httptest.Server
	Host string // 127.0.0.1:PORT
}

// Start serves a fresh registry until the test ends. wrap, if not nil,
// wraps its handler (to inject faults or demand auth).
func Start(t testing.TB, wrap func(http.Handler) http.Handler) *Registry {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Registry{Server: srv, Host: strings.TrimPrefix(srv.URL, "http://")}
}

// Push pushes a random image as host/repo:tag and returns its digest.
func (r *Registry) Push(t testing.TB, repoTag string) string {
	t.Helper()
	return r.PushCreated(t, repoTag, time.Time{})
}

// PushCreated is Push with the config's created time set.
func (r *Registry) PushCreated(t testing.TB, repoTag string, created time.Time) string {
	t.Helper()
	return r.push(t, repoTag, created, random.WithSource(rand.NewSource(time.Now().UnixNano())))
}

// PushSeeded pushes an image whose content, and so digest, depends only on
// seed, for golden files.
func (r *Registry) PushSeeded(t testing.TB, repoTag string, seed int64) string {
	t.Helper()
	return r.push(t, repoTag, time.Time{}, random.WithSource(rand.NewSource(seed)))
}

func (r *Registry) push(t testing.TB, repoTag string, created time.Time, opt random.Option) string {
	t.Helper()
	img, err := random.Image(256, 1, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !created.IsZero() {
		if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := name.NewTag(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// PushIndex pushes a random multi-platform index and returns its digest.
func (r *Registry) PushIndex(t testing.TB, repoTag string) string {
	t.Helper()
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
