// Package testgit serves real git repositories to tests: bare repos in a
// temporary directory, reachable as file paths and over smart HTTP through
// git's own `git http-backend` on 127.0.0.1. It needs the git binary, which
// tests have and ferry itself does not.
package testgit

import (
	"bytes"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testenv"
)

// Repo is a bare repository on disk.
type Repo struct {
	t    testing.TB
	Dir  string // the bare repository
	Name string // its name under the server root, e.g. "env.git"
}

// NewRepo creates a bare repository whose branches each hold a copy of the
// directory tree at seed (nil or "" for an empty tree with a README).
func NewRepo(t testing.TB, seed string, branches ...string) *Repo {
	t.Helper()
	RequireGit(t)
	root := t.TempDir()
	r := &Repo{t: t, Dir: filepath.Join(root, "env.git"), Name: "env.git"}
	Run(t, root, "init", "-q", "--bare", "-b", "main", r.Dir)
	Run(t, r.Dir, "config", "http.receivepack", "true")
	// As GitHub and GitLab do: partial clones, and fetching any object by
	// hash (what a partial clone's later blob fetches need).
	Run(t, r.Dir, "config", "uploadpack.allowFilter", "true")
	Run(t, r.Dir, "config", "uploadpack.allowAnySHA1InWant", "true")
	work := t.TempDir()
	Run(t, work, "init", "-q", "-b", "main")
	if seed != "" {
		if err := os.CopyFS(work, os.DirFS(seed)); err != nil {
			t.Fatalf("copying seed: %v", err)
		}
	} else if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("env\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, work, "add", "-A")
	Run(t, work, "commit", "-q", "-m", "seed")
	for _, b := range branches {
		Run(t, work, "push", "-q", r.Dir, "HEAD:refs/heads/"+b)
	}
	return r
}

// Git runs git in the bare repository and returns its trimmed stdout.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return Run(r.t, r.Dir, args...)
}

// Tip returns the commit a branch points at, or "" if it does not exist.
func (r *Repo) Tip(branch string) string {
	r.t.Helper()
	out, err := exec.Command("git", "-C", r.Dir, "rev-parse", "--verify", "-q", "refs/heads/"+branch).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Show returns a file's content on a branch.
func (r *Repo) Show(branch, path string) string {
	r.t.Helper()
	return r.Git("show", branch+":"+path)
}

// Fsck fails the test unless `git fsck --strict` finds the repository clean.
func (r *Repo) Fsck() {
	r.t.Helper()
	cmd := exec.Command("git", "-C", r.Dir, "fsck", "--strict", "--no-progress")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git fsck: %v\n%s", err, out)
	}
}

// Commit makes a commit on branch as a person would with the git command
// line: files maps paths to new contents ("" deletes the file).
func (r *Repo) Commit(branch, msg string, files map[string]string) string {
	r.t.Helper()
	work := r.t.TempDir()
	Run(r.t, work, "clone", "-q", "-b", branch, r.Dir, ".")
	for p, c := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if c == "" {
			Run(r.t, work, "rm", "-q", p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	Run(r.t, work, "add", "-A")
	Run(r.t, work, "commit", "-q", "-m", msg)
	Run(r.t, work, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	return r.Tip(branch)
}

// Server serves every repository under a root directory over smart HTTP.
type Server struct {
	*httptest.Server
}

// ServeOption adjusts the test server.
type ServeOption func(*serveConfig)

type serveConfig struct {
	user, pass string
	wrap       func(http.Handler) http.Handler
}

// WithBasicAuth makes the server demand HTTP basic auth with this user and
// password, as a git host does for a token.
func WithBasicAuth(user, pass string) ServeOption {
	return func(c *serveConfig) { c.user, c.pass = user, pass }
}

// WithMiddleware wraps the git handler, to inject faults.
func WithMiddleware(w func(http.Handler) http.Handler) ServeOption {
	return func(c *serveConfig) { c.wrap = w }
}

// Serve starts `git http-backend` for r's parent directory on 127.0.0.1 and
// returns the server; the repository's URL is RepoURL(r).
func Serve(t testing.TB, r *Repo, opts ...ServeOption) *Server {
	t.Helper()
	return ServeRoot(t, filepath.Dir(r.Dir), opts...)
}

// ServeRoot is Serve for every repository under root: several repositories
// (Repo.CopyTo) behind one server, as on one git host.
func ServeRoot(t testing.TB, root string, opts ...ServeOption) *Server {
	t.Helper()
	var cfg serveConfig
	for _, o := range opts {
		o(&cfg)
	}
	gitPath := testenv.LookPath(t, "git", "git http-backend serves the repository; Debian: apt-get install git; .ci/run installs it")
	var h http.Handler = &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			// http-backend only enables receive-pack for authenticated users
			// unless the repo config says so; NewRepo sets http.receivepack.
		},
	}
	if cfg.user != "" || cfg.pass != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			u, p, ok := req.BasicAuth()
			if !ok || u != cfg.user || p != cfg.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			req.Header.Set("REMOTE_USER", u)
			inner.ServeHTTP(w, req)
		})
	}
	if cfg.wrap != nil {
		h = cfg.wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{Server: srv}
}

// RepoURL is the smart-HTTP URL of r on s.
func (s *Server) RepoURL(r *Repo) string { return s.URL + "/" + r.Name }

// RequireGit ends the test when the git binary is missing: a skip, or a
// failure under FERRY_REQUIRE_SERVERS=1 (internal/testenv).
func RequireGit(t testing.TB) {
	t.Helper()
	testenv.LookPath(t, "git", "Debian: apt-get install git; .ci/run installs it")
}

// Run runs git in dir and fails the test on error.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
		// Fixed dates make commit hashes repeatable, for golden files.
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_CONFIG_NOSYSTEM=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// NewRepoFromTemplate is NewRepo seeded from the tree at dir with every
// occurrence of each old string replaced by its new one (pairs, as for
// strings.NewReplacer), e.g. "REGISTRY" by the test registry's host.
func NewRepoFromTemplate(t testing.TB, dir string, oldnew []string, branches ...string) *Repo {
	t.Helper()
	seed := t.TempDir()
	rep := strings.NewReplacer(oldnew...)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(seed, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, []byte(rep.Replace(string(data))), 0o644)
	})
	if err != nil {
		t.Fatalf("templating %s: %v", dir, err)
	}
	return NewRepo(t, seed, branches...)
}

// Symlink commits a symlink at path pointing to target on branch.
func (r *Repo) Symlink(branch, path, target string) {
	r.t.Helper()
	work := r.t.TempDir()
	Run(r.t, work, "clone", "-q", "-b", branch, r.Dir, ".")
	full := filepath.Join(work, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		r.t.Fatal(err)
	}
	Run(r.t, work, "add", "-A")
	Run(r.t, work, "commit", "-q", "-m", "symlink "+path)
	Run(r.t, work, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
}

// Copy returns a new bare repository with everything r has (refs, objects,
// config), so a state that took many steps to build can start several
// independent cases.
func (r *Repo) Copy(t testing.TB) *Repo {
	t.Helper()
	return r.CopyTo(t, t.TempDir(), r.Name)
}

// CopyTo is Copy into root under name (e.g. "eu.git"), so that one
// ServeRoot serves it beside other copies.
func (r *Repo) CopyTo(t testing.TB, root, name string) *Repo {
	t.Helper()
	c := &Repo{t: t, Dir: filepath.Join(root, name), Name: name}
	if err := os.CopyFS(c.Dir, os.DirFS(r.Dir)); err != nil {
		t.Fatalf("copying %s: %v", r.Dir, err)
	}
	return c
}

// Hook installs an executable hook script (e.g. "pre-receive") in r.
func (r *Repo) Hook(name, script string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.Dir, "hooks", name), []byte(script), 0o755); err != nil {
		r.t.Fatal(err)
	}
}
