package pipelines

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
)

// rig is the world the pipelines run in: a registry and the env repo behind
// git http-backend on 127.0.0.1, a Secret Manager, and a record of what the
// stand-ins did and which steps were skipped.
type rig struct {
	t       *testing.T
	reg     *testreg.Registry
	repo    *testgit.Repo
	root    string // the git host's repositories: root/acme/env.git
	server  string // http://127.0.0.1:PORT, the "git host"
	url     string // the env repo: server + /acme/env.git
	token   string // the only credential the git host accepts
	secrets map[string]string

	mu      sync.Mutex
	built   map[string]bool            // image refs a build step tagged
	pushed  map[string]string          // image ref -> digest the stand-in pushed
	skipped []string                   // "file: step (kind): why", for the log
	logs    []string                   // every step's output, as a job log shows it
	seen    map[string]map[string]bool // file -> every ${{ }} expression evaluated
	// regCreds, while set, are the only credentials the registry takes
	// (user, password), as a private registry demands of a CI job.
	regCreds *[2]string
	// gitAuth, when set, is the git host's check in place of the token
	// (guardGit).
	gitAuth func(http.Handler) http.Handler
}

const gitToken = "env-repo-token-5eb1"

// newRig starts the registry and the env repo, seeded with apps/hello and
// apps/other on candidate and production. The git host demands the token,
// so a pipeline that does not wire its secret through fails.
func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, token: gitToken, built: map[string]bool{}, pushed: map[string]string{}, seen: map[string]map[string]bool{}}
	r.reg = testreg.Start(t, r.registryGate)
	// The env repo is acme/env on the host, as on GitHub and GitLab, whose
	// API stand-in (internal/testforge) serves the same root.
	r.root = t.TempDir()
	r.repo = testgit.NewRepo(t, writeSeed(t, r.reg.Host), "candidate", "production").CopyTo(t, r.root, filepath.Join("acme", "env.git"))
	srv := testgit.ServeRoot(t, r.root, testgit.WithMiddleware(r.gitGate))
	r.server = srv.URL
	r.url = srv.URL + "/acme/env.git"
	r.secrets = map[string]string{"projects/test-project/secrets/ferry-git-token/versions/latest": r.token}
	t.Cleanup(func() {
		// Once each, with how often.
		var lines []string
		count := map[string]int{}
		for _, s := range r.skipped {
			if count[s]++; count[s] == 1 {
				lines = append(lines, s)
			}
		}
		for i, l := range lines {
			lines[i] = fmt.Sprintf("%dx %s", count[l], l)
		}
		if len(lines) > 0 {
			t.Logf("steps skipped (each needs a cloud, a cluster or a runner; stand-ins noted):\n  %s", strings.Join(lines, "\n  "))
		}
	})
	return r
}

// gitGate makes the git host demand the token (user x-access-token), or
// pass whatever gitAuth passes once a rollout set it.
func (r *rig) gitGate(next http.Handler) http.Handler {
	byToken := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != "x-access-token" || p != r.token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, req)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		auth := r.gitAuth
		r.mu.Unlock()
		if auth != nil {
			auth(next).ServeHTTP(w, req)
			return
		}
		byToken.ServeHTTP(w, req)
	})
}

// guardGit makes the git host take only what auth passes (e.g. a GitHub
// App stand-in's GitAuth: tokens it minted) instead of the token.
func (r *rig) guardGit(auth func(http.Handler) http.Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gitAuth = auth
}

// registryGate makes the registry demand regCreds, while they are set,
// for every request, with the Basic challenge that sends a client to its
// docker config.
func (r *rig) registryGate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		creds := r.regCreds
		r.mu.Unlock()
		if creds != nil {
			if u, p, ok := req.BasicAuth(); !ok || u != creds[0] || p != creds[1] {
				w.Header().Set("WWW-Authenticate", `Basic realm="test registry"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, req)
	})
}

// requireRegistryCreds makes the registry take only user and password
// until the returned function is called.
func (r *rig) requireRegistryCreds(user, password string) (done func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regCreds = &[2]string{user, password}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.regCreds = nil
	}
}

// log records what a step printed, as the job's log shows it.
func (r *rig) log(file, step string, res execResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf("%s: %s:\n%s%s", file, step, res.Stdout, res.Stderr))
}

// leaks lists the secrets that some job log shows (by their first
// characters only).
func (r *rig) leaks(secrets []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range secrets {
		for _, l := range r.logs {
			if s != "" && strings.Contains(l, s) {
				out = append(out, fmt.Sprintf("%.6s... in %s", s, strings.SplitN(l, "\n", 2)[0]))
				break
			}
		}
	}
	return out
}

// skip records a step that does not run here, and why.
func (r *rig) skip(file, step, kind, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped = append(r.skipped, fmt.Sprintf("%s: %q (%s): %s", file, step, kind, why))
}

// saw records that an expression of file was evaluated.
func (r *rig) saw(file, expr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[file] == nil {
		r.seen[file] = map[string]bool{}
	}
	r.seen[file][expr] = true
}

// unevaluated lists the ${{ }} expressions of file that no run evaluated:
// an expression the test never checks could be wrong.
func (r *rig) unevaluated(file string) []string {
	data, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		r.t.Fatal(err)
	}
	var code []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			code = append(code, line)
		}
	}
	var out []string
	for _, m := range regexp.MustCompile(`\$\{\{(.*?)\}\}`).FindAllStringSubmatch(strings.Join(code, "\n"), -1) {
		if e := strings.TrimSpace(m[1]); !r.seen[file][e] {
			out = append(out, e)
		}
	}
	return out
}

// build records an image tag a build step produced.
func (r *rig) build(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.built[ref] = true
}

// push stands in for a registry push of a built image: a random image goes
// to ref on the test registry, and its digest is remembered.
func (r *rig) push(ref string) (string, error) {
	r.mu.Lock()
	built := r.built[ref]
	r.mu.Unlock()
	if !built {
		return "", fmt.Errorf("push of %s, which no earlier step built", ref)
	}
	rest, ok := strings.CutPrefix(ref, r.reg.Host+"/")
	if !ok {
		return "", fmt.Errorf("push of %s: not on the test registry %s; point the pipeline's image at it", ref, r.reg.Host)
	}
	d := r.reg.Push(r.t, rest)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushed[ref] = d
	return d, nil
}

// trailers returns the git trailers of a commit of the env repo.
func (r *rig) trailers(commit string) map[string][]string {
	r.t.Helper()
	out := map[string][]string{}
	for _, line := range strings.Split(r.repo.Git("log", "-1", "--format=%(trailers:only,unfold)", commit), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			out[k] = append(out[k], v)
		}
	}
	return out
}

// tree is the tree hash of path at rev.
func (r *rig) tree(rev, path string) string {
	r.t.Helper()
	return r.repo.Git("rev-parse", rev+":"+path)
}
