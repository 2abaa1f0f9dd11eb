package cli_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testforge"
	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testgithub"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/cli"
)

// appKeys are the App's key and another, generated once.
var appKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var k [2]*rsa.PrivateKey
	for i := range k {
		var err error
		if k[i], err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	return k
})

func pemOf(k *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

const testAppID = "31337"

// appRig is an env repo at /acme/env.git behind a git http-backend that
// takes only the installation tokens the stand-in GitHub minted for it,
// and a registry with team/hello:v1.
type appRig struct {
	gh       *testgithub.Server
	repo     *testgit.Repo
	url      string
	image    string
	keyFile  string // the App's key
	wrongKey string // another key's file
}

func newAppRig(t *testing.T, opts ...testgithub.Option) *appRig {
	t.Helper()
	keys := appKeys()
	gh := testgithub.New(t, testAppID, &keys[0].PublicKey, opts...)
	gh.Install("acme", 77, "env", "env-eu")
	reg := testreg.Start(t, nil)
	seed := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	root := t.TempDir()
	repo := seed.CopyTo(t, root, "acme/env.git")
	srv := testgit.ServeRoot(t, root, testgit.WithMiddleware(gh.GitAuth))
	reg.Push(t, "team/hello:v1")
	dir := t.TempDir()
	r := &appRig{gh: gh, repo: repo, url: srv.RepoURL(repo), image: reg.Host + "/team/hello:v1",
		keyFile: filepath.Join(dir, "app.pem"), wrongKey: filepath.Join(dir, "other.pem")}
	for f, k := range map[string]*rsa.PrivateKey{r.keyFile: keys[0], r.wrongKey: keys[1]} {
		if err := os.WriteFile(f, []byte(pemOf(k)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// secrets are what must never be printed: every token minted (also
// without its prefix), every JWT presented (also its signature alone), and
// both private keys, line by line.
func (r *appRig) secrets() []string {
	var out []string
	for _, tok := range r.gh.Tokens() {
		out = append(out, tok, tok[4:]) // with and without ghs_
	}
	for _, jwt := range r.gh.JWTs() {
		out = append(out, jwt, jwt[strings.LastIndexByte(jwt, '.')+1:]) // and its signature alone
	}
	for _, k := range appKeys() {
		for _, l := range strings.Split(pemOf(k), "\n") {
			if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
				out = append(out, l)
			}
		}
	}
	return out
}

// A deploy authenticated as a GitHub App: the token is minted for the
// repo, lands the deploy, and neither it, nor the JWT, nor the key is
// ever printed, whatever the output and whatever fails.
func TestGitHubApp(t *testing.T) {
	type rig = appRig
	for _, tc := range []struct {
		name    string
		opts    []testgithub.Option
		setup   func(r *rig)
		args    func(r *rig) []string // after deploy's own
		env     func(r *rig) map[string]string
		code    int
		want    []string // in stderr
		landed  bool
		minted  int // tokens minted
		refused bool
		slow    bool // takes the fresh-token retry's whole window
	}{
		{name: "key file", landed: true, minted: 1,
			args: func(r *rig) []string { return []string{"--github-app-private-key", r.keyFile} }},
		{name: "PEM in the environment, json logs and output", landed: true, minted: 1,
			env: func(r *rig) map[string]string {
				return map[string]string{"FERRY_GITHUB_APP_PRIVATE_KEY": pemOf(appKeys()[0])}
			},
			args: func(r *rig) []string { return []string{"-v", "--log-format", "json", "--output", "json"} },
			want: []string{`"message":"GitHub App installation token minted"`, `"installation":77`, `"repositories":["env"]`}},
		{name: "installation given, GitHub Enterprise Server", opts: []testgithub.Option{testgithub.Enterprise()}, landed: true, minted: 1,
			args: func(r *rig) []string {
				return []string{"--github-app-private-key", r.keyFile, "--github-app-installation-id", "77", "-v"}
			}},
		{name: "git refuses the fresh token for 300ms", landed: true, minted: 1, refused: true,
			setup: func(r *rig) { r.gh.SetLag(300 * time.Millisecond) },
			args: func(r *rig) []string {
				return []string{"--github-app-private-key", r.keyFile, "-v", "--log-format", "json"}
			},
			want: []string{`"message":"git refused the GitHub App's fresh token; retrying for a few seconds, as GitHub may take a moment to accept it"`}},
		{name: "an ambient GITHUB_TOKEN is left alone", landed: true, minted: 1,
			env: func(r *rig) map[string]string {
				return map[string]string{"GITHUB_TOKEN": "ghp_ambientTokenOfTheJob0123456789"}
			},
			args: func(r *rig) []string { return []string{"--github-app-private-key", r.keyFile} }},
		{name: "a key that is not the App's", code: 1,
			args: func(r *rig) []string {
				return []string{"--github-app-private-key", r.wrongKey, "-v", "--output", "json"}
			},
			want: []string{"GitHub App: looking up the App's installation on acme/env: 401 Unauthorized: " + testgithub.MsgBadJWT, "check --github-app-id and --github-app-private-key"}},
		{name: "not installed on the repository", code: 1,
			setup: func(r *rig) { r.gh.Install("acme", 77, "other") },
			args:  func(r *rig) []string { return []string{"--github-app-private-key", r.keyFile} },
			want:  []string{"404 Not Found (the App is not installed on this repository", "check --repo and --github-app-installation-id"}},
		{name: "fails after minting: no such branch", code: 1, minted: 1,
			args: func(r *rig) []string {
				return []string{"--github-app-private-key", r.keyFile, "--env", "nope", "-v", "--log-format", "json", "--output", "json"}
			},
			want: []string{`"nope" does not exist`}},
		{name: "git never takes the token: tried for seconds, then said so", code: 1, minted: 1, refused: true, slow: true,
			setup: func(r *rig) { r.gh.SetLag(time.Hour) },
			args:  func(r *rig) []string { return []string{"--github-app-private-key", r.keyFile} },
			want:  []string{"authentication required; git refused the GitHub App's installation token: check that the App may read and write"}},
		{name: "git never takes the token: bounded by --timeout", code: 1, minted: 1, refused: true,
			setup: func(r *rig) { r.gh.SetLag(time.Hour) },
			args:  func(r *rig) []string { return []string{"--github-app-private-key", r.keyFile, "--timeout", "1s"} },
			want:  []string{"(gave up after --timeout 1s)"}},
		{name: "--git-token too", code: 2,
			env: func(r *rig) map[string]string {
				return map[string]string{"FERRY_GIT_TOKEN": "ghp_explicitTokenGivenToFerry0123"}
			},
			args: func(r *rig) []string { return []string{"--github-app-private-key", r.keyFile} },
			want: []string{"--git-token (or FERRY_GIT_TOKEN) and --github-app-id: give one"}},
		{name: "no key", code: 2,
			want: []string{"--github-app-id needs the App's private key"}},
		{name: "not a key", code: 2,
			args: func(r *rig) []string { return []string{"--github-app-private-key", r.url} },
			want: []string{"--github-app-private-key: open"}},
		{name: "a public key", code: 2,
			env: func(r *rig) map[string]string {
				der, _ := x509.MarshalPKIXPublicKey(&appKeys()[0].PublicKey)
				return map[string]string{"FERRY_GITHUB_APP_PRIVATE_KEY": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
			},
			want: []string{"--github-app-private-key (the PEM itself): the PEM block is a PUBLIC KEY: want the App's private key"}},
		{name: "repo on another host than the API", code: 2,
			args: func(r *rig) []string {
				return []string{"--github-app-private-key", r.keyFile, "--github-api-url", "https://api.github.com"}
			},
			want: []string{"is not on the GitHub whose API is --github-api-url https://api.github.com"}},
		{name: "repo over SSH", code: 2,
			args: func(r *rig) []string {
				return []string{"--github-app-private-key", r.keyFile, "--repo", "git@github.com:acme/env.git"}
			},
			want: []string{"a GitHub App's token is for git over HTTPS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newAppRig(t, tc.opts...)
			if tc.setup != nil {
				tc.setup(r)
			}
			before := r.repo.Tip("candidate")
			args := []string{"deploy", "--env", "candidate", "--path", "apps/hello", "--image", r.image,
				"--repo", r.url, "--github-app-id", testAppID, "--github-api-url", r.gh.APIURL}
			if tc.args != nil {
				args = append(args, tc.args(r)...)
			}
			env := map[string]string{}
			if tc.env != nil {
				env = tc.env(r)
			}
			start := time.Now()
			code, out, errOut := run(t, env, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			for _, s := range r.secrets() {
				if strings.Contains(out+errOut, s) {
					t.Fatalf("a secret was printed (%.8s...):\nstdout: %s\nstderr: %s", s, out, errOut)
				}
			}
			if n := len(r.gh.Tokens()); n != tc.minted {
				t.Errorf("%d tokens minted, want %d", n, tc.minted)
			}
			if landed := r.repo.Tip("candidate") != before; landed != tc.landed {
				t.Errorf("landed %v, want %v", landed, tc.landed)
			}
			if refused := r.gh.Refused() > 0; refused != tc.refused {
				t.Errorf("git refused %d requests, want refusals: %v", r.gh.Refused(), tc.refused)
			}
			if took := time.Since(start); took > 4*time.Second && !tc.slow || took > 8*time.Second {
				t.Errorf("took %s", took)
			}
			if tc.code != 0 && strings.Contains(strings.Join(args, " "), "--output json") {
				var f struct {
					Error    string
					ExitCode int
				}
				if err := json.Unmarshal([]byte(out), &f); err != nil || f.ExitCode != tc.code || f.Error == "" {
					t.Errorf("stdout is not the failure object: %v\n%s", err, out)
				}
			}
			for _, req := range r.gh.Requests() {
				if req.Method == "POST" && req.Body != `{"repositories":["env"]}` {
					t.Errorf("token request %s, want it scoped to env", req.Body)
				}
			}
		})
	}
}

// Several --repo of one owner share one token, scoped to them all.
func TestGitHubAppFanOut(t *testing.T) {
	r := newAppRig(t)
	eu := r.repo.CopyTo(t, filepath.Dir(r.repo.Dir), "env-eu.git")
	euURL := strings.TrimSuffix(r.url, "env.git") + "env-eu.git"
	euBefore := eu.Tip("candidate")
	code, out, errOut := run(t, nil, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", r.image,
		"--repo", r.url, "--repo", euURL, "--github-app-id", testAppID, "--github-api-url", r.gh.APIURL,
		"--github-app-private-key", r.keyFile)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if eu.Tip("candidate") == euBefore {
		t.Errorf("env-eu not deployed")
	}
	var bodies []string
	for _, req := range r.gh.Requests() {
		if req.Method == "POST" {
			bodies = append(bodies, req.Body)
		}
	}
	if len(bodies) != 1 || bodies[0] != `{"repositories":["env","env-eu"]}` {
		t.Errorf("token requests %q, want one for env and env-eu", bodies)
	}
	for _, s := range r.secrets() {
		if strings.Contains(out+errOut, s) {
			t.Fatalf("a secret was printed")
		}
	}
}

// A promote reading --from in another repo of the owner mints one token
// for both.
func TestGitHubAppFromRepo(t *testing.T) {
	r := newAppRig(t)
	eu := r.repo.CopyTo(t, filepath.Dir(r.repo.Dir), "env-eu.git")
	euURL := strings.TrimSuffix(r.url, "env.git") + "env-eu.git"
	app := []string{"--github-app-id", testAppID, "--github-api-url", r.gh.APIURL, "--github-app-private-key", r.keyFile}
	if code, out, errOut := run(t, nil, append([]string{"deploy", "--env", "candidate", "--path", "apps/hello", "--image", r.image, "--repo", euURL}, app...)...); code != 0 {
		t.Fatalf("deploy: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut := run(t, nil, append([]string{"promote", "--from", "candidate", "--to", "production", "--path", "apps/hello", "--repo", r.url, "--from-repo", euURL}, app...)...)
	if code != 0 {
		t.Fatalf("promote: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if got, want := r.repo.Show("production", "apps/hello/kustomization.yaml"), eu.Show("candidate", "apps/hello/kustomization.yaml"); got != want {
		t.Errorf("production has\n%s\nwant candidate's of env-eu\n%s", got, want)
	}
	var bodies []string
	for _, req := range r.gh.Requests() {
		if req.Method == "POST" {
			bodies = append(bodies, req.Body)
		}
	}
	if want := []string{`{"repositories":["env-eu"]}`, `{"repositories":["env","env-eu"]}`}; !slices.Equal(bodies, want) {
		t.Errorf("token requests %q, want %q", bodies, want)
	}
	for _, s := range r.secrets() {
		if strings.Contains(out+errOut, s) {
			t.Fatalf("a secret was printed")
		}
	}
}

// In GitHub Actions, as the App: the API is GITHUB_API_URL (the App's
// endpoints and the pull requests, one host as on GitHub), the forge is
// GitHub whatever --repo's host is called, and the job's own GITHUB_TOKEN
// gives way to the App's token: a promote by pull request with
// auto-merge, the App and the key from the environment alone, lands.
func TestGitHubAppPullRequestInActions(t *testing.T) {
	r := newAppRig(t)
	fg := testforge.NewGitHub(t, filepath.Dir(filepath.Dir(r.repo.Dir)))
	fg.Accept = func(tok string) bool { return slices.Contains(r.gh.Tokens(), tok) }
	proxy := func(to string) *httputil.ReverseProxy {
		u, err := url.Parse(to)
		if err != nil {
			t.Fatal(err)
		}
		return httputil.NewSingleHostReverseProxy(u)
	}
	toApp, toForge := proxy(r.gh.URL), proxy(fg.URL)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/app/") || strings.HasSuffix(req.URL.Path, "/installation") {
			toApp.ServeHTTP(w, req)
			return
		}
		toForge.ServeHTTP(w, req)
	}))
	t.Cleanup(api.Close)
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_API_URL": api.URL, "GITHUB_TOKEN": "ghs_theJobsOwnToken0123456789",
		"FERRY_GITHUB_APP_ID": testAppID, "FERRY_GITHUB_APP_PRIVATE_KEY": pemOf(appKeys()[0]),
	}
	if code, out, errOut := run(t, env, "deploy", "--repo", r.url, "--env", "candidate", "--path", "apps/hello", "--image", r.image); code != 0 {
		t.Fatalf("deploy: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut := run(t, env, "promote", "--repo", r.url, "--from", "candidate", "--to", "production", "--path", "apps/hello",
		"--pull-request", "--auto-merge=squash", "--wait=20s", "--output", "json")
	var rep struct {
		PullRequest *struct{ State, MergeCommit string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.PullRequest == nil || rep.PullRequest.State != "merged" {
		t.Fatalf("promote by pull request: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if tip := r.repo.Tip("production"); tip != rep.PullRequest.MergeCommit {
		t.Errorf("production at %s, want the merge %s", tip, rep.PullRequest.MergeCommit)
	}
	if prs := fg.PRs(); len(prs) != 1 || prs[0].Head != "ferry/production/hello" || prs[0].State != "merged" {
		t.Errorf("pull requests %+v, want ferry/production/hello merged", prs)
	}
	for _, s := range append(r.secrets(), env["GITHUB_TOKEN"]) {
		if strings.Contains(out+errOut, s) {
			t.Fatalf("a secret was printed (%.8s...):\n%s", s, errOut)
		}
	}
}

// The repos a ferry.yaml names are covered too: the file, read from the
// env repo with a token for --repo, names production in another repo of
// the owner, and the token is minted again for both.
func TestGitHubAppConfigRepos(t *testing.T) {
	r := newAppRig(t)
	eu := r.repo.CopyTo(t, filepath.Dir(r.repo.Dir), "env-eu.git")
	euURL := strings.TrimSuffix(r.url, "env.git") + "env-eu.git"
	r.repo.Commit("candidate", "environments", map[string]string{"ferry.yaml": "version: 1\nenvironments:\n  - name: candidate\n  - name: production\n    repo: " + euURL + "\n"})
	r.repo.Git("symbolic-ref", "HEAD", "refs/heads/candidate")
	app := []string{"--repo", r.url, "--github-app-id", testAppID, "--github-api-url", r.gh.APIURL, "--github-app-private-key", r.keyFile}
	if code, out, errOut := run(t, nil, append([]string{"deploy", "--app", "hello", "--image", r.image}, app...)...); code != 0 {
		t.Fatalf("deploy: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut := run(t, nil, append([]string{"promote", "--app", "hello", "--to", "production"}, app...)...)
	if code != 0 {
		t.Fatalf("promote: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if got, want := eu.Show("production", "apps/hello/kustomization.yaml"), r.repo.Show("candidate", "apps/hello/kustomization.yaml"); got != want {
		t.Errorf("env-eu's production has\n%s\nwant env's candidate\n%s", got, want)
	}
	var bodies []string
	for _, req := range r.gh.Requests() {
		if req.Method == "POST" {
			bodies = append(bodies, req.Body)
		}
	}
	// Each run: env, then env and env-eu once the file is read (the file
	// names env-eu; the token covers what the file names, whatever the
	// command then touches).
	if want := []string{`{"repositories":["env"]}`, `{"repositories":["env","env-eu"]}`, `{"repositories":["env"]}`, `{"repositories":["env","env-eu"]}`}; !slices.Equal(bodies, want) {
		t.Errorf("token requests %q, want %q", bodies, want)
	}
	for _, s := range r.secrets() {
		if strings.Contains(out+errOut, s) {
			t.Fatalf("a secret was printed")
		}
	}
}
