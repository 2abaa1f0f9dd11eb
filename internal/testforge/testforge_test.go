package testforge

import (
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
)

// With Accept set, it alone decides which tokens are good: a token
// accepted only from some moment on (minted then) is refused before it.
func TestAccept(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	testgit.NewRepo(t, "", "main").CopyTo(t, root, filepath.Join("acme", "env.git"))
	g := NewGitHub(t, root)
	var minted sync.Map
	g.Accept = func(tok string) bool { _, ok := minted.Load(tok); return ok }
	get := func(tok string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/repos/acme/env/pulls", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("ghs_later"); got != http.StatusUnauthorized {
		t.Errorf("a token not yet minted: %d, want 401", got)
	}
	if got := get(g.Token); got != http.StatusUnauthorized {
		t.Errorf("Token, which Accept does not take: %d, want 401", got)
	}
	minted.Store("ghs_later", true)
	if got := get("ghs_later"); got != http.StatusOK {
		t.Errorf("a minted token: %d, want 200", got)
	}
	if got := get(""); got != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", got)
	}
}
