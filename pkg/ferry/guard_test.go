package ferry

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/pkg/image"
	"github.com/ferrycd/ferry/pkg/manifest"
)

// createdOnly is a Resolver that answers Created and records what it was
// asked.
type createdOnly struct {
	mu    sync.Mutex
	asked []string
}

func (c *createdOnly) Resolve(context.Context, string) (image.Resolved, error) {
	return image.Resolved{}, nil
}

func (c *createdOnly) Created(_ context.Context, repo, digest string) (time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, repo+"@"+digest)
	return time.Time{}, nil
}

// A placeholder digest in the env repo (repo@sha256:1111, which the
// rewriter pins like any reference to the repository) names no build: the
// out-of-order guard does not ask the registry about it.
func TestOrderGuardSkipsMalformedDigests(t *testing.T) {
	const d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	const old = "sha256:cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4"
	r := &createdOnly{}
	g := &orderGuard{r: r, log: slog.New(slog.NewTextHandler(io.Discard, nil)), created: map[string]time.Time{}}
	target := manifest.Target{Repo: "r.example/hello", Tag: "v2", Digest: d}
	changes := []manifest.Change{
		{Repo: target.Repo, Old: "r.example/hello@sha256:1111", New: target.Ref()},
		{Repo: target.Repo, Old: "r.example/hello:{TAG}", New: target.Ref()},
		{Repo: target.Repo, Old: "r.example/hello:v1@" + old, New: target.Ref()},
	}
	if why := g.check(context.Background(), changes, []manifest.Target{target}); why != "" {
		t.Errorf("check = %q, want no reason", why)
	}
	// The two lookups run at once, in either order.
	want := []string{"r.example/hello@" + d, "r.example/hello@" + old}
	slices.Sort(want)
	asked := slices.Sorted(slices.Values(r.asked))
	if !slices.Equal(asked, want) {
		t.Errorf("asked the registry about %q, want %q", r.asked, want)
	}
}
