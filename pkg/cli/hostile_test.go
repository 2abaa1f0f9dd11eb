package cli_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/cli"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/google/go-cmp/cmp"
)

// hostileFixture is an env repo served over git http-backend, with
// candidate and production branches, one deploy of hello on candidate, a
// commit only production has, and on both branches the files of
// testdata/hostile (an alias bomb, an alias cycle, an overlay whose base is
// gone, an image written in capitals) plus what is made here: symbolic
// links in, out of and at the root of the repo, and a file one byte over the
// rewriter's limit.
type hostileFixture struct {
	reg  *testreg.Registry
	repo *testgit.Repo
	url  string
	// deployed is candidate's deploy of hello:v1; prodOnly a commit that
	// exists only on production.
	deployed, prodOnly string
	digest, digest2    string // of team/hello:v1 and v2
}

func newHostileFixture(t *testing.T) *hostileFixture {
	t.Helper()
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	srv := testgit.Serve(t, repo)
	f := &hostileFixture{reg: reg, repo: repo, url: srv.RepoURL(repo)}

	for _, img := range []string{"hello:v1", "hello:v2", "bomb:v1", "huge:v1", "overlay:v1", "flowbomb:v1", "broken:v1", "badyaml:v1", "unused:v1", "upper:v1"} {
		d := reg.Push(t, "team/"+img)
		switch img {
		case "hello:v1":
			f.digest = d
		case "hello:v2":
			f.digest2 = d
		}
	}

	// The hostile files, with REGISTRY replaced as in testdata/envrepo.
	files := map[string]string{}
	root := filepath.Join("..", "..", "testdata", "hostile")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = strings.ReplaceAll(string(data), "REGISTRY", reg.Host)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// One byte over the limit, in a file that otherwise looks harmless.
	files["apps/huge/deployment.yaml"] = strings.ReplaceAll(files["apps/bomb/deployment.yaml"], "bomb", "huge")
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: generated\ndata:\n  blob: "
	files["apps/huge/generated.yaml"] = big + strings.Repeat("x", manifest.MaxFileSize-len(big)) + "\n"
	for _, b := range []string{"candidate", "production"} {
		repo.Commit(b, "hostile fixtures", files)
		repo.Symlink(b, "apps/link", "hello")          // a link inside the repo
		repo.Symlink(b, "apps/escape", "../../../etc") // a link out of it
		repo.Symlink(b, "etc", "/etc")                 // an absolute link
	}

	code, _, errOut := run(t, map[string]string{"FERRY_REPO": f.url},
		"deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v1")
	if code != 0 {
		t.Fatalf("setup deploy: exit %d: %s", code, errOut)
	}
	f.deployed = repo.Tip("candidate")
	f.prodOnly = repo.Commit("production", "hotfix by hand", map[string]string{"apps/hello/note.txt": "by hand\n"})
	return f
}

// htmlServer answers every request with 200 and a web page, as a
// misconfigured proxy or a repository's web UI URL does.
func htmlServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><html><head><title>Sign in</title></head><body><p>Welcome</p></body></html>\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// runNoPanic is run, with a panic reported as a failure of the subtest
// rather than a crash of the whole test binary.
func runNoPanic(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string, panicked bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("ferry %s panicked: %v\n%s", strings.Join(args, " "), r, debug.Stack())
			panicked = true
		}
	}()
	code, stdout, stderr = run(t, env, args...)
	return code, stdout, stderr, false
}

// fsck runs git fsck --strict on the bare repository; unlike Repo.Fsck it
// reports to the subtest that calls it.
func fsck(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("git", "-C", dir, "fsck", "--strict", "--no-progress").CombinedOutput()
	if err != nil {
		t.Errorf("git fsck: %v\n%s", err, out)
	}
}

// Every hostile or broken input ends in a message that says what to fix and
// the right exit status, and leaves the remote exactly as it was: no branch
// moves and git fsck stays clean. Inputs that ferry wrongly accepts today
// run with --dry-run, so they cannot move a branch either.
func TestHostileInput(t *testing.T) {
	f := newHostileFixture(t)
	host := f.reg.Host
	hello := host + "/team/hello:v1"
	html := htmlServer(t)
	missingDir := filepath.Join(t.TempDir(), "no", "such", "env.git")
	plainDir := t.TempDir()
	repoEnv := map[string]string{"FERRY_REPO": f.url}
	deploy := func(args ...string) []string {
		return append([]string{"deploy", "--env", "candidate", "--path", "apps/hello"}, args...)
	}

	tests := []struct {
		name string
		args []string
		env  map[string]string // nil: FERRY_REPO is the fixture's
		code int
		want string // what the message must say: what to fix
		// avoid is what the message must not say (wrong advice).
		avoid string
		// fast bounds the run, for inputs built to cost time.
		fast time.Duration
	}{
		// Paths escaping the repository.
		{name: "path ..", args: deploy("--image", hello, "--path", ".."),
			code: cli.ExitUsage, want: `path ".." leaves the repository; give a directory inside it`},
		{name: "path a/../../x", args: deploy("--image", hello, "--path", "a/../../x"),
			code: cli.ExitUsage, want: `path "a/../../x" leaves the repository`},
		{name: "absolute path", args: deploy("--image", hello, "--path", "/etc"),
			code: cli.ExitUsage, want: `path "/etc" is absolute; give it relative to the repository root`},
		{name: "path through a symlink inside the repo", args: deploy("--image", hello, "--path", "apps/link"),
			code: cli.ExitUsage, want: `goes through the symlink "apps/link"`},
		{name: "path through a symlink out of the repo", args: deploy("--image", hello, "--path", "apps/escape/passwd"),
			code: cli.ExitUsage, want: `goes through the symlink "apps/escape"`},
		{name: "path through an absolute symlink", args: deploy("--image", hello, "--path", "etc"),
			code: cli.ExitUsage, want: `goes through the symlink "etc"`},
		{name: "promote path escapes", args: []string{"promote", "--from", "candidate", "--to", "production", "--path", "../x"},
			code: cli.ExitUsage, want: `path "../x" leaves the repository`},
		{name: "promote path through a symlink", args: []string{"promote", "--from", "candidate", "--to", "production", "--path", "apps/link"},
			code: cli.ExitUsage, want: `goes through the symlink "apps/link"`},
		{name: "rollback absolute path", args: []string{"rollback", "--env", "production", "--path", "/etc"},
			code: cli.ExitUsage, want: `path "/etc" is absolute`},
		{name: "rollback path through a symlink", args: []string{"rollback", "--env", "candidate", "--path", "apps/link"},
			code: cli.ExitUsage, want: `goes through the symlink "apps/link"`},
		{name: "diff path through a symlink", args: []string{"diff", "--from", "candidate", "--to", "production", "--path", "apps/link"},
			code: cli.ExitUsage, want: `goes through the symlink "apps/link"`},
		{name: "path into .git", args: deploy("--image", hello, "--path", ".git/hooks"),
			code: cli.ExitUsage, want: "points into .git"},
		// A trailing slash is the same scope (TestPathTrailingSlash); other
		// unclean forms are refused with the clean one as a hint.
		{name: "path ./apps/hello", args: deploy("--image", hello, "--path", "./apps/hello"),
			code: cli.ExitUsage, want: `path "./apps/hello" is not clean; did you mean "apps/hello"?`},
		{name: "path apps//hello", args: []string{"history", "--env", "candidate", "--path", "apps//hello"},
			code: cli.ExitUsage, want: `path "apps//hello" is not clean; did you mean "apps/hello"?`},
		{name: "path apps/hello//", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello//"},
			code: cli.ExitUsage, want: `path "apps/hello//" is not clean; did you mean "apps/hello"?`},
		{name: "path with a backslash", args: deploy("--image", hello, "--path", `apps\hello`),
			code: cli.ExitUsage, want: "use forward slashes"},
		{name: "path is a file", args: deploy("--image", host+"/team/hello:v2", "--path", "apps/hello/deployment.yaml", "--dry-run"),
			code: cli.ExitUsage, want: `path "apps/hello/deployment.yaml" is a file; ferry works on directories: give its directory, "apps/hello"`},

		// Image references.
		{name: "malformed reference", args: deploy("--image", host+"/team/hello:v1:v2"),
			code: cli.ExitUsage, want: "a reference has one ':' before its tag"},
		{name: "reference with white space", args: deploy("--image", "Not A Ref"),
			code: cli.ExitUsage, want: "white space"},
		{name: "reference with a scheme", args: deploy("--image", "https://"+hello),
			code: cli.ExitUsage, want: `drop "https://"`},
		{name: "reference without tag or digest", args: deploy("--image", host+"/team/hello"),
			code: cli.ExitUsage, want: "no tag or digest; want " + host + "/team/hello:<tag> or"},
		{name: "uppercase repository", args: deploy("--image", host+"/Team/Hello:v1"),
			code: cli.ExitUsage, want: "repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: Team/Hello"},
		{name: "short digest", args: deploy("--image", host+"/team/hello@sha256:abc"),
			code: cli.ExitUsage, want: "64 lowercase hex digits"},
		{name: "resolve a malformed reference", args: []string{"resolve", "Not A Ref"},
			code: cli.ExitUsage, want: "white space"},
		{name: "tag not in the registry", args: deploy("--image", host+"/team/hello:v9"),
			code: cli.ExitError, want: "tag v9 not found in " + host + "/team/hello"},
		{name: "digest not in the registry", args: deploy("--image", host+"/team/hello@sha256:"+strings.Repeat("0", 64)),
			code: cli.ExitError, want: "digest sha256:" + strings.Repeat("0", 64) + " not found in " + host + "/team/hello"},
		{name: "tag and digest disagree", args: deploy("--image", hello+"@"+f.digest2, "--dry-run"),
			code: cli.ExitError, want: "tag v1"},
		{name: "image not referenced in scope", args: deploy("--image", host+"/team/unused:v1"),
			code: cli.ExitError, want: "image not referenced under apps/hello: " + host + "/team/unused"},
		{name: "image written in capitals in the manifest", args: []string{"deploy", "--env", "candidate", "--path", "apps/upper", "--image", host + "/team/upper:v1"},
			code: cli.ExitError, want: `apps/upper/deployment.yaml:12 has "` + host + `/Team/Upper:v0", which is not a valid image reference: repository names are lowercase`},
		{name: "same repository twice", args: deploy("--image", hello, "--image", host+"/team/hello:v2"),
			code: cli.ExitUsage, want: "name the same repository; give each image once"},
		{name: "same repository by tag and by digest", args: deploy("--image", hello+","+host+"/team/hello@"+f.digest),
			code: cli.ExitUsage, want: "name the same repository; give each image once"},

		// What is in scope.
		{name: "unparsable YAML", args: []string{"deploy", "--env", "candidate", "--path", "apps/badyaml", "--image", host + "/team/badyaml:v1"},
			code: cli.ExitError, want: "parsing apps/badyaml/notes.yaml: yaml: line"},
		{name: "kustomization lists a missing file", args: []string{"deploy", "--env", "candidate", "--path", "apps/broken", "--image", host + "/team/broken:v1"},
			code: cli.ExitError, want: "kustomization apps/broken does not build: accumulating resources: accumulation err='accumulating resources from 'missing.yaml'"},
		{name: "overlay whose base is gone", args: []string{"deploy", "--env", "candidate", "--path", "apps/overlay", "--image", host + "/team/overlay:v1"},
			code: cli.ExitError, want: "kustomization apps/overlay does not build: accumulating resources: accumulation err='accumulating resources from '../../bases/removed'"},
		{name: "billion laughs", args: []string{"deploy", "--env", "candidate", "--path", "apps/bomb", "--image", host + "/team/bomb:v1"},
			code: cli.ExitError, want: "apps/bomb/laughs.yaml:3: aliases expand to more than", fast: 10 * time.Second},
		{name: "alias cycle", args: []string{"deploy", "--env", "candidate", "--path", "apps/flowbomb", "--image", host + "/team/flowbomb:v1"},
			code: cli.ExitError, want: "apps/flowbomb/kustomization.yaml:2: alias *r refers to a node that contains it", fast: 10 * time.Second},
		{name: "file over the size limit", args: []string{"deploy", "--env", "candidate", "--path", "apps/huge", "--image", host + "/team/huge:v1"},
			code: cli.ExitError, want: fmt.Sprintf("apps/huge/generated.yaml: %d bytes is over the %d-byte limit for manifests", manifest.MaxFileSize+1, manifest.MaxFileSize)},
		{name: "scope does not exist", args: deploy("--image", hello, "--path", "apps/nothing"),
			code: cli.ExitError, want: "apps/nothing does not exist"},

		// The repository and its branches.
		{name: "branch does not exist", args: []string{"deploy", "--env", "staging", "--path", "apps/hello", "--image", hello},
			code: cli.ExitError, want: `"staging" does not exist in ` + f.url + "; create it first"},
		{name: "branch given as a ref", args: []string{"deploy", "--env", "refs/heads/candidate", "--path", "apps/hello", "--image", hello},
			code: cli.ExitUsage, want: "candidate", avoid: "refs/heads/refs/heads"},
		{name: "branch name git refuses", args: []string{"deploy", "--env", "cand..idate", "--path", "apps/hello", "--image", hello},
			code: cli.ExitUsage, want: "not a valid branch name", avoid: "create it first"},
		{name: "unreachable repo", env: map[string]string{"FERRY_REPO": "http://127.0.0.1:1/x.git"},
			args: deploy("--image", hello),
			code: cli.ExitError, want: "fetching candidate from http://127.0.0.1:1/x.git: Get \"http://127.0.0.1:1/x.git/info/refs?service=git-upload-pack\": dial tcp 127.0.0.1:1: connect: connection refused"},
		{name: "not a git server", env: map[string]string{"FERRY_REPO": html + "/env.git"},
			args: deploy("--image", hello),
			code: cli.ExitError, want: html + "/env.git is not a git repository"},
		{name: "repo path not on disk", env: map[string]string{"FERRY_REPO": missingDir},
			args: deploy("--image", hello),
			code: cli.ExitError, want: "repository " + missingDir + " not found"},
		{name: "repo path is not a repository", env: map[string]string{"FERRY_REPO": plainDir},
			args: deploy("--image", hello),
			code: cli.ExitError, want: plainDir},
		{name: "repo not on the server", env: map[string]string{"FERRY_REPO": strings.TrimSuffix(f.url, "env.git") + "nope.git"},
			args: []string{"history", "--env", "candidate"},
			code: cli.ExitError, want: "repository " + strings.TrimSuffix(f.url, "env.git") + "nope.git not found"},
		{name: "known_hosts file missing", env: map[string]string{"FERRY_REPO": "ssh://git@127.0.0.1:1/env.git"},
			args: deploy("--image", hello, "--known-hosts", missingDir),
			code: cli.ExitUsage, want: "--known-hosts " + missingDir, avoid: "SSH_KNOWN_HOSTS"},

		// Promote.
		{name: "commit not on the source branch", args: []string{"promote", "--from", "candidate", "--to", "production", "--path", "apps/hello", "--commit", f.prodOnly},
			code: cli.ExitError, want: "commit " + f.prodOnly + " is not on candidate (searched all candidate history)"},
		{name: "commit that does not exist", args: []string{"promote", "--from", "candidate", "--to", "production", "--path", "apps/hello", "--commit", "abcdef0"},
			code: cli.ExitError, want: "commit abcdef0 is not on candidate"},
		{name: "commit not hex", args: []string{"promote", "--from", "candidate", "--to", "production", "--path", "apps/hello", "--commit", "HEAD~1"},
			code: cli.ExitUsage, want: `--commit "HEAD~1" is not a commit SHA (7 to 40 hex digits)`},
		{name: "promote to itself", args: []string{"promote", "--from", "candidate", "--to", "candidate", "--path", "apps/hello"},
			code: cli.ExitUsage, want: `--from and --to are both "candidate"`},
		{name: "promote without --to", args: []string{"promote", "--from", "candidate", "--path", "apps/hello"},
			code: cli.ExitUsage, want: "--to is required"},
		{name: "promote with empty --from", args: []string{"promote", "--from", "", "--to", "production", "--path", "apps/hello"},
			code: cli.ExitUsage, want: "--from is required"},

		// Rollback.
		{name: "rollback beyond history", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello", "--steps", "50"},
			code: cli.ExitError, want: "cannot roll apps/hello on candidate back 50 step(s): its history has only 1 earlier state(s)"},
		{name: "rollback --to and --steps", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello", "--to", f.deployed, "--steps", "1"},
			code: cli.ExitUsage, want: "--to and --steps can't be used together"},
		{name: "rollback to a commit of another branch", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello", "--to", f.prodOnly},
			code: cli.ExitError, want: "commit " + f.prodOnly + " is not on candidate", avoid: "promote only"},
		{name: "rollback --to not hex", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello", "--to", strings.Repeat("g", 40)},
			code: cli.ExitUsage, want: "is not a commit SHA"},
		{name: "rollback negative steps", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello", "--steps=-3"},
			code: cli.ExitUsage, want: "at least 1"},
		{name: "rollback zero steps", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello", "--steps", "0", "--dry-run"},
			code: cli.ExitUsage, want: "at least 1"},

		// Flags.
		{name: "deploy without --env", args: []string{"deploy", "--path", "apps/hello", "--image", hello},
			code: cli.ExitUsage, want: "--env is required (the branch to deploy to, e.g. candidate)"},
		{name: "deploy with blank --env", args: []string{"deploy", "--env", " ", "--path", "apps/hello", "--image", hello},
			code: cli.ExitUsage, want: "--env is required"},
		{name: "deploy without --image", args: deploy(),
			code: cli.ExitUsage, want: "--image is required (e.g. --image"},
		{name: "deploy with empty --image", args: deploy("--image", ""),
			code: cli.ExitUsage, want: "--image is required"},
		{name: "deploy without --repo", env: map[string]string{},
			args: deploy("--image", hello),
			code: cli.ExitUsage, want: "--repo is required (or FERRY_REPO)"},
		{name: "deploy with empty --path", args: deploy("--image", hello, "--path", ""),
			code: cli.ExitUsage, want: `path is empty; use "." for the whole repository`},
		{name: "unknown --output", args: deploy("--image", hello, "--output", "yaml"),
			code: cli.ExitUsage, want: `--output must be one of "text","json","markdown","html" but got "yaml"`},
		{name: "unknown FERRY_OUTPUT", env: map[string]string{"FERRY_REPO": f.url, "FERRY_OUTPUT": "xml"},
			args: deploy("--image", hello),
			code: cli.ExitUsage, want: "FERRY_OUTPUT"},
		{name: "bad --author", args: deploy("--image", hello, "--author", "ferry"),
			code: cli.ExitUsage, want: `--author "ferry": want "Name <email>"`},
		{name: "bad GIT_AUTHOR_DATE", env: map[string]string{"FERRY_REPO": f.url, "GIT_AUTHOR_DATE": "yesterday"},
			args: deploy("--image", hello),
			code: cli.ExitUsage, want: `GIT_AUTHOR_DATE "yesterday": want RFC 3339`},
		{name: "steps not a number", args: []string{"rollback", "--env", "candidate", "--steps", "two"},
			code: cli.ExitUsage, want: "--steps: expected a valid 64 bit int"},
		{name: "flag value that looks like a flag", args: []string{"deploy", "--env", "-x", "--image", hello},
			code: cli.ExitUsage, want: `perhaps try --env="-x"?`},
		{name: "history --limit negative", args: []string{"history", "--env", "candidate", "--limit=-1"},
			code: cli.ExitUsage, want: "--limit -1: must be positive"},
		// Numbers: a negative value given as the next argument reaches the
		// check (not kong's "short flag"), and the message says what the
		// value must be. --timeout 0 does not mean "no limit".
		{name: "--attempts -1", args: deploy("--image", hello, "--attempts", "-1"),
			code: cli.ExitUsage, want: "--attempts -1: must be at least 1", avoid: "short flag"},
		{name: "--attempts 0", args: deploy("--image", hello, "--attempts", "0"),
			code: cli.ExitUsage, want: "--attempts 0: must be at least 1"},
		{name: "--timeout -1s", args: deploy("--image", hello, "--timeout", "-1s", "--dry-run"),
			code: cli.ExitUsage, want: "--timeout -1s: must be positive", avoid: "short flag"},
		{name: "--timeout=-1s", args: deploy("--image", hello, "--timeout=-1s", "--dry-run"),
			code: cli.ExitUsage, want: "--timeout -1s: must be positive"},
		{name: "--timeout 0", args: deploy("--image", hello, "--timeout", "0", "--dry-run"),
			code: cli.ExitUsage, want: "--timeout 0: must be positive; ferry never runs without a time limit (give a large value such as 2h)"},
		{name: "FERRY_TIMEOUT=0", env: map[string]string{"FERRY_REPO": f.url, "FERRY_TIMEOUT": "0s"},
			args: []string{"history", "--env", "candidate"},
			code: cli.ExitUsage, want: "--timeout 0: must be positive; ferry never runs without a time limit"},
		{name: "history --limit -1", args: []string{"history", "--env", "candidate", "--limit", "-1"},
			code: cli.ExitUsage, want: "--limit -1: must be positive", avoid: "short flag"},
		{name: "history --limit 0", args: []string{"history", "--env", "candidate", "--limit", "0"},
			code: cli.ExitUsage, want: "--limit 0: must be positive"},
		{name: "rollback --steps -3", args: []string{"rollback", "--env", "candidate", "--path", "apps/hello", "--steps", "-3", "--dry-run"},
			code: cli.ExitUsage, want: "--steps -3: count back at least 1", avoid: "short flag"},
		{name: "--hook-timeout -1s", args: deploy("--image", hello, "--hook-timeout", "-1s", "--dry-run"),
			code: cli.ExitUsage, want: "--hook-timeout -1s: must be positive", avoid: "short flag"},
		{name: "timeout too short", args: deploy("--image", hello, "--timeout", "1ns"),
			code: cli.ExitError, want: "gave up after --timeout 1ns"},
	}

	candidate, production := f.repo.Tip("candidate"), f.repo.Tip("production")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = repoEnv
			}
			start := time.Now()
			code, out, errOut, panicked := runNoPanic(t, env, tc.args...)
			elapsed := time.Since(start)
			if panicked {
				return
			}

			// What holds for every input, fixed or not.
			if got := f.repo.Tip("candidate"); got != candidate {
				t.Errorf("candidate moved: %s -> %s", candidate, got)
			}
			if got := f.repo.Tip("production"); got != production {
				t.Errorf("production moved: %s -> %s", production, got)
			}
			fsck(t, f.repo.Dir)
			if tc.fast > 0 && elapsed > tc.fast {
				t.Errorf("took %s, want under %s", elapsed.Round(time.Millisecond), tc.fast)
			}

			// The status and the message.
			var problems []string
			if code != tc.code {
				problems = append(problems, fmt.Sprintf("exit %d, want %d", code, tc.code))
			}
			if strings.TrimSpace(errOut) == "" {
				problems = append(problems, "nothing on stderr; stdout: "+out)
			}
			if !strings.Contains(errOut, tc.want) {
				problems = append(problems, fmt.Sprintf("stderr lacks %q", tc.want))
			}
			if tc.avoid != "" && strings.Contains(errOut, tc.avoid) {
				problems = append(problems, fmt.Sprintf("stderr says %q", tc.avoid))
			}
			if len(problems) > 0 {
				t.Errorf("%s\nstderr: %s", strings.Join(problems, "; "), errOut)
			}
			if testing.Verbose() {
				t.Logf("exit %d: %s", code, strings.TrimSpace(errOut))
			}
		})
	}
}

// A newline in a provenance or app value must not break the commit subject
// or forge a trailer: git reads back exactly the trailers ferry meant.
func TestHostileProvenance(t *testing.T) {
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	srv := testgit.Serve(t, repo)
	reg.Push(t, "team/hello:v1")
	forged := "x\n\nFerry-Action: rollback\nFerry-Rollback-To: 0000000"
	env := map[string]string{
		"FERRY_REPO":        srv.RepoURL(repo),
		"FERRY_SOURCE_REPO": "https://github.com/acme/hello\n\nFerry-Action: rollback\n\n",
		"GITHUB_SHA":        "abc\r\nFerry-Env: production",
		"FERRY_APP":         "hello\nFerry-Action: rollback",
		"BUILD_ID":          forged,
		"COMMIT_SHA":        forged,
		"FERRY_ENV":         "candidate",
		"FERRY_PATH":        "apps/hello",
		"FERRY_IMAGE":       reg.Host + "/team/hello:v1",
	}
	code, _, errOut, panicked := runNoPanic(t, env, "deploy", "--build-id", forged)
	if panicked {
		return
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	repo.Fsck()
	// %s would unfold a subject spread over lines; the raw message must
	// have it on one line, then a blank one, and hold three paragraphs:
	// subject, "Built from" body, trailers.
	msg := repo.Git("log", "-1", "--format=%B", "candidate")
	if lines := strings.SplitN(msg, "\n", 3); len(lines) < 3 || lines[1] != "" ||
		!strings.HasPrefix(lines[0], "deploy hello Ferry-Action: rollback to candidate: sha256:") {
		t.Errorf("subject not on one line: %q", lines)
	}
	if n := len(strings.Split(msg, "\n\n")); n != 3 {
		t.Errorf("%d paragraphs, want 3:\n%s", n, msg)
	}
	var keys []string
	for _, line := range strings.Split(repo.Git("log", "-1", "--format=%(trailers:only,unfold)", "candidate"), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		keys = append(keys, k)
		if (k == "Ferry-Action" && v != "deploy") || (k == "Ferry-Env" && v != "candidate") {
			t.Errorf("forged trailer %q", line)
		}
	}
	want := []string{"Ferry-Action", "Ferry-Env", "Ferry-App", "Ferry-Path", "Ferry-Image", "Ferry-Source-Repo", "Ferry-Source-Commit", "Ferry-Build-ID"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("trailer keys (-want +got):\n%s", diff)
	}
	code, out, errOut, _ := runNoPanic(t, env, "--output", "json", "history", "--limit", "1")
	if code != 0 || !strings.Contains(out, `"action": "deploy"`) {
		t.Errorf("history: exit %d\n%s\n%s", code, out, errOut)
	}
}
