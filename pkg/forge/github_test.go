package forge_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferrycd/ferry/internal/testforge"
	"github.com/ferrycd/ferry/pkg/forge"
)

func TestVerifiedCommits(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "github")
	ctx := t.Context()
	gc, ok := w.f.(forge.GitHubCommits)
	if !ok {
		t.Fatal("GitHub's Forge does not implement GitHubCommits")
	}
	w.repo.Commit("main", "seed more", map[string]string{"apps/hello/version": "1.1.0\n", "apps/old/version": "0.1\n"})
	main, err := gc.Ref(ctx, "main")
	if err != nil || main != w.repo.Tip("main") {
		t.Fatalf("Ref(main): %q, %v; want %s", main, err, w.repo.Tip("main"))
	}
	binary := []byte{0, 1, 2, 0xff, 'x'}
	msg := "deploy hello 1.2.0 to production\n\nFerry-Action: deploy\n"
	sha, err := gc.CreateCommit(ctx, main, map[string][]byte{
		"apps/hello/version": []byte("1.2.0\n"),
		"apps/hello/new/a":   []byte("nested\n"),
		"apps/hello/blob":    binary,
		"apps/old/version":   nil,
	}, msg)
	if err != nil {
		t.Fatalf("CreateCommit: %v", err)
	}
	if w.repo.Tip("main") != main {
		t.Fatal("CreateCommit moved main")
	}
	if !w.gh.Verified(sha) {
		t.Errorf("commit %s is not one GitHub signed", sha)
	}
	// What was sent: no author, no committer, no signature; so GitHub
	// makes the commit as the App and signs it.
	commits := 0
	for _, r := range w.gh.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/git/commits") {
			commits++
			var body map[string]any
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range body {
				keys = append(keys, k)
			}
			if diff := cmp.Diff([]string{"message", "parents", "tree"}, keys, cmpSorted); diff != "" {
				t.Errorf("POST git/commits sent (-want +got):\n%s", diff)
			}
		}
	}
	if commits != 1 {
		t.Errorf("%d POST git/commits; want 1", commits)
	}
	if p := parents(w.repo, sha); len(p) != 1 || p[0] != main {
		t.Errorf("parents %v; want [%s]", p, main)
	}
	if got := w.repo.Git("log", "-1", "--format=%B", sha); got+"\n" != msg {
		t.Errorf("message %q; want %q", got, msg)
	}
	files := w.repo.Git("ls-tree", "-r", "--name-only", sha)
	if diff := cmp.Diff("README.md\napps/hello/blob\napps/hello/new/a\napps/hello/version", files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if got := w.repo.Git("cat-file", "blob", sha+":apps/hello/version"); got != "1.2.0" {
		t.Errorf("apps/hello/version %q", got)
	}
	if got := w.repo.Git("cat-file", "-s", sha+":apps/hello/blob"); got != "5" {
		t.Errorf("binary file is %s bytes; want 5", got)
	}

	// Nothing changed: no commit.
	if same, err := gc.CreateCommit(ctx, sha, map[string][]byte{"apps/hello/version": []byte("1.2.0\n")}, "noop"); err != nil || same != sha {
		t.Errorf("CreateCommit changing nothing: %q, %v; want the parent %s", same, err, sha)
	}

	if err := gc.UpdateRef(ctx, "main", sha); err != nil {
		t.Fatalf("UpdateRef: %v", err)
	}
	if w.repo.Tip("main") != sha {
		t.Fatalf("main at %s; want %s", w.repo.Tip("main"), sha)
	}
	// A commit on the old tip: not a fast-forward any more, refused.
	stale, err := gc.CreateCommit(ctx, main, map[string][]byte{"apps/hello/version": []byte("9.9.9\n")}, "stale")
	if err != nil {
		t.Fatalf("CreateCommit on the old tip: %v", err)
	}
	err = gc.UpdateRef(ctx, "main", stale)
	if !errors.Is(err, forge.ErrNotFastForward) {
		t.Fatalf("UpdateRef to a commit on the old tip: %v; want ErrNotFastForward", err)
	}
	var apiErr *forge.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 422 || apiErr.Message != "Update is not a fast forward" {
		t.Errorf("UpdateRef's error: %#v; want GitHub's 422", apiErr)
	}
	if w.repo.Tip("main") != sha {
		t.Errorf("a refused UpdateRef moved main")
	}

	// A new branch, then the same again.
	if err := gc.CreateRef(ctx, "ferry/production", sha); err != nil {
		t.Fatalf("CreateRef: %v", err)
	}
	if w.repo.Tip("ferry/production") != sha {
		t.Errorf("ferry/production not at %s", sha)
	}
	// A create whose answer was lost: the retry meets its own branch.
	w.gh.Inject(testforge.Fault{Method: "POST", PathSuffix: "/git/refs", Status: 502, After: true, Times: 1})
	if err := gc.CreateRef(ctx, "ferry/staging", main); err != nil || w.repo.Tip("ferry/staging") != main {
		t.Errorf("CreateRef with its answer lost: %v; want ferry/staging at %s", err, main)
	}
	if err := gc.CreateRef(ctx, "ferry/production", main); !errors.Is(err, forge.ErrAlreadyExists) {
		t.Errorf("CreateRef of an existing branch: %v; want ErrAlreadyExists", err)
	}
	if _, err := gc.Ref(ctx, "nope"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("Ref(nope): %v; want ErrNotFound", err)
	}
	if err := gc.UpdateRef(ctx, "nope", sha); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("UpdateRef(nope): %v; want ErrNotFound", err)
	}
	w.repo.Fsck()
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// A host or proxy that quotes the token back: the error does not.
func TestTokenNeverPrinted(t *testing.T) {
	t.Parallel()
	const token = "ghs_s3cr3ts3cr3ts3cr3t"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"message": "token " + r.Header.Get("Authorization") + " lacks scope",
			"errors":  []string{"header PRIVATE-TOKEN " + r.Header.Get("PRIVATE-TOKEN")},
		})
	}))
	t.Cleanup(srv.Close)
	withCreds := strings.Replace(srv.URL, "http://", "http://user:"+token+"@", 1)
	for name, f := range map[string]forge.Forge{
		"github":              forge.GitHub(srv.URL, "acme", "env", token, fast),
		"gitlab":              forge.GitLab(srv.URL, "acme/env", token, fast),
		"github, URL creds":   forge.GitHub(withCreds, "acme", "env", token, fast),
		"gitlab, URL creds":   forge.GitLab(withCreds, "acme/env", token, fast),
		"github, bad URL":     forge.GitHub("ftp://x:"+token+"@h/", "acme", "env", token),
		"gitlab, bad project": forge.GitLab(srv.URL, "env", token),
	} {
		_, err := f.Get(t.Context(), 1)
		if err == nil {
			t.Errorf("%s: Get succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error quotes the token: %v", name, err)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url                string
		host, owner, name  string
		githubAPI, glabAPI string
		bad                bool
	}{
		{url: "https://github.com/acme/env.git", host: "github.com", owner: "acme", name: "env", githubAPI: "https://api.github.com"},
		{url: "https://github.com/acme/env", host: "github.com", owner: "acme", name: "env"},
		{url: "https://x-access-token:ghs_abc@github.com/acme/env.git/", host: "github.com", owner: "acme", name: "env"},
		{url: "git@github.com:acme/env.git", host: "github.com", owner: "acme", name: "env"},
		{url: "ssh://git@github.com/acme/env.git", host: "github.com", owner: "acme", name: "env"},
		{url: "https://ghe.example.com/acme/env.git", host: "ghe.example.com", owner: "acme", name: "env", githubAPI: "https://ghe.example.com/api/v3"},
		{url: "https://gitlab.example.com/group/sub/env.git", host: "gitlab.example.com", owner: "group/sub", name: "env",
			glabAPI: "https://gitlab.example.com/api/v4"},
		{url: "ssh://git@gitlab.example.com:2222/group/sub/env.git", host: "gitlab.example.com", owner: "group/sub", name: "env"},
		{url: "git@gitlab.example.com:group/sub/env.git", host: "gitlab.example.com", owner: "group/sub", name: "env"},
		{url: "http://127.0.0.1:8080/acme/env.git", host: "127.0.0.1:8080", owner: "acme", name: "env"},
		{url: "https://github.com/env.git", bad: true},
		{url: "https://github.com/", bad: true},
		{url: "/srv/git/env.git", bad: true},
		{url: "./env", bad: true},
		{url: "file:///srv/git/acme/env.git", bad: true},
		{url: "", bad: true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			host, owner, name, err := forge.Parse(tc.url)
			if tc.bad {
				if !errors.Is(err, forge.ErrRepoURL) {
					t.Errorf("Parse: %q %q %q, %v; want ErrRepoURL", host, owner, name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff([]string{tc.host, tc.owner, tc.name}, []string{host, owner, name}); diff != "" {
				t.Errorf("host, owner, name (-want +got):\n%s", diff)
			}
			if tc.githubAPI != "" && forge.GitHubAPI(host) != tc.githubAPI {
				t.Errorf("GitHubAPI(%s) = %s; want %s", host, forge.GitHubAPI(host), tc.githubAPI)
			}
			if tc.glabAPI != "" && forge.GitLabAPI(host) != tc.glabAPI {
				t.Errorf("GitLabAPI(%s) = %s; want %s", host, forge.GitLabAPI(host), tc.glabAPI)
			}
		})
	}
	// A token in the user slot of a bad URL is not quoted.
	if _, _, _, err := forge.Parse("https://ghs_tok3n@github.com/"); err == nil || strings.Contains(err.Error(), "tok3n") {
		t.Errorf("Parse of a bad URL with a token: %v", err)
	}
	if _, _, _, err := forge.Parse("ghs_tok3n@github.com:env"); err == nil || strings.Contains(err.Error(), "tok3n") {
		t.Errorf("Parse of a bad scp address with a token: %v", err)
	}
}
