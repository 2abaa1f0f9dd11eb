package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/cli"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// run runs the CLI in-process with only the given environment variables.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// The CLI surface changes only on purpose: help output is pinned.
func TestHelpGolden(t *testing.T) {
	for _, cmd := range []string{"", "deploy", "promote", "rollback", "history", "diff", "resolve", "status", "demo", "version"} {
		name := cmd
		if name == "" {
			name = "ferry"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"--help"}
			if cmd != "" {
				args = []string{cmd, "--help"}
			}
			code, out, errOut := run(t, nil, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden := filepath.Join("..", "..", "testdata", "help", name+".txt")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/cli -update)", err)
			}
			if diff := cmp.Diff(string(want), out); diff != "" {
				t.Errorf("help changed (-golden +got); run with -update if on purpose:\n%s", diff)
			}
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "--env", "candidate", "--image", "r/x:1"}, "--repo is required"},
		{[]string{"deploy", "--repo", "/tmp/x", "--image", "r/x:1"}, "--env is required"},
		{[]string{"deploy", "--repo", "/tmp/x", "--env", "candidate"}, "--image is required"},
		{[]string{"deploy", "--repo", "/tmp/x", "--env", "c", "--image", "r/x:1", "--path", "../up"}, "leaves the repository"},
		{[]string{"deploy", "--repo", "/tmp/x", "--env", "c", "--image", "r/x:1", "--author", "nobody"}, "--author"},
		{[]string{"deploy", "--bogus"}, "unknown flag --bogus"},
		{[]string{"--output", "yaml", "version"}, "--output"},
		{[]string{"nonsense"}, "unexpected argument nonsense"},
		{[]string{"resolve"}, "expected \"<ref>\""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errOut := run(t, nil, tc.args...)
			if code != cli.ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, nil, "--output", "json", "version")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" || v["go"] == "" {
		t.Errorf("exit %d, %q", code, out)
	}
}

func TestDeployCLIJSON(t *testing.T) {
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	srv := testgit.Serve(t, repo)
	digest := reg.Push(t, "team/hello:v1")
	env := map[string]string{
		"FERRY_REPO":    srv.RepoURL(repo),
		"FERRY_PATH":    "apps/hello",
		"GITHUB_SHA":    "0123456789abcdef0123456789abcdef01234567",
		"GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "acme/hello",
	}
	code, out, errOut := run(t, env, "deploy", "--env", "candidate", "--image", reg.Host+"/team/hello:v1", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Changed  bool
		Commit   string
		Branch   string
		Attempts int
		Images   []struct{ Name, Digest string }
		Files    []string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if !got.Changed || got.Commit != repo.Tip("candidate") || got.Branch != "candidate" || got.Attempts != 1 ||
		len(got.Images) != 1 || got.Images[0].Digest != digest || got.Images[0].Name != reg.Host+"/team/hello" || len(got.Files) != 2 {
		t.Errorf("json = %+v", got)
	}
	trailers := repo.Git("log", "-1", "--format=%(trailers)", "candidate")
	for _, want := range []string{
		"Ferry-Source-Repo: https://github.com/acme/hello",
		"Ferry-Source-Commit: 0123456789abcdef0123456789abcdef01234567",
		"Ferry-Build-ID: 42",
		"Ferry-Build-URL: https://github.com/acme/hello/actions/runs/42",
	} {
		if !strings.Contains(trailers, want) {
			t.Errorf("trailers lack %q:\n%s", want, trailers)
		}
	}
	// Again: nothing to do, exit 0, changed false.
	code, out, _ = run(t, env, "deploy", "--env", "candidate", "--image", reg.Host+"/team/hello:v1", "--output", "json")
	if code != 0 || !strings.Contains(out, `"changed": false`) {
		t.Errorf("re-run: exit %d\n%s", code, out)
	}
}

// Whatever path leads to failure, the token never reaches stdout or stderr.
func TestTokenNeverPrinted(t *testing.T) {
	const token = "ghp_s3cr3tT0k3nValue"
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	srv := testgit.Serve(t, repo, testgit.WithBasicAuth("x-access-token", token))
	reg.Push(t, "team/hello:v1")
	good := reg.Host + "/team/hello:v1"
	// A server-side hook that echoes what it can see, token-shaped strings
	// included, then refuses.
	rejecting := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	hook := "#!/bin/sh\necho \"protected branch; remote user $REMOTE_USER\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(rejecting.Dir, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	rejSrv := testgit.Serve(t, rejecting, testgit.WithBasicAuth("x-access-token", token))
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"works with token", map[string]string{"FERRY_GIT_TOKEN": token}, []string{"--repo", srv.RepoURL(repo), "--image", good}, 0},
		{"GITHUB_TOKEN fallback, dry run", map[string]string{"GITHUB_TOKEN": token}, []string{"--repo", srv.RepoURL(repo), "--image", reg.Host + "/team/hello:v1", "--dry-run"}, 0},
		{"wrong token", map[string]string{"FERRY_GIT_TOKEN": token + "x"}, []string{"--repo", srv.RepoURL(repo), "--image", good}, 1},
		{"token in URL", nil, []string{"--repo", strings.Replace(srv.RepoURL(repo), "http://", "http://x-access-token:"+token+"@", 1), "--image", good}, 0},
		{"token in URL, missing repo", nil, []string{"--repo", strings.Replace(srv.URL, "http://", "http://u:"+token+"@", 1) + "/missing.git", "--image", good}, 1},
		{"token as user in URL, wrong", nil, []string{"--repo", strings.Replace(srv.RepoURL(repo), "http://", "http://"+token+"x@", 1), "--image", good}, 1},
		{"missing tag", map[string]string{"FERRY_GIT_TOKEN": token}, []string{"--repo", srv.RepoURL(repo), "--image", reg.Host + "/team/hello:v9"}, 1},
		{"missing branch", map[string]string{"FERRY_GIT_TOKEN": token}, []string{"--repo", srv.RepoURL(repo), "--image", good, "--env", "nope"}, 1},
		{"push rejected by a hook", map[string]string{"FERRY_GIT_TOKEN": token}, []string{"--repo", rejSrv.RepoURL(rejecting), "--image", good}, 1},
		{"push rejected, token in URL", nil, []string{"--repo", strings.Replace(rejSrv.RepoURL(rejecting), "http://", "http://x-access-token:"+token+"@", 1), "--image", good}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"deploy", "--env", "candidate", "--path", "apps/hello", "-v", "--log-format", "json"}, tc.args...)
			for _, output := range []string{"text", "json"} {
				code, out, errOut := run(t, tc.env, append(args, "--output", output)...)
				if code != tc.code {
					t.Errorf("exit %d, want %d: %s", code, tc.code, errOut)
				}
				if strings.Contains(out+errOut, token) || strings.Contains(out+errOut, token[4:]) {
					t.Errorf("token printed:\nstdout: %s\nstderr: %s", out, errOut)
				}
			}
		})
	}
}

func TestResolveCLI(t *testing.T) {
	reg := testreg.Start(t, nil)
	d := reg.Push(t, "team/hello:v1")
	code, out, errOut := run(t, nil, "resolve", reg.Host+"/team/hello:v1")
	if code != 0 || out != reg.Host+"/team/hello@"+d+"\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = run(t, nil, "resolve", reg.Host+"/team/hello:v9")
	if code != 1 || !strings.Contains(errOut, "tag v9 not found in "+reg.Host+"/team/hello") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// JSON logs carry what Cloud Logging reads: severity and message.
func TestLogFormatJSON(t *testing.T) {
	code, _, errOut := run(t, nil, "--log-format", "json", "-v", "resolve", "127.0.0.1:1/team/x:v1", "--timeout", "3s")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var sawWarning bool
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if _, ok := rec["level"]; ok {
			t.Errorf("level instead of severity: %s", line)
		}
		if rec["message"] == nil || rec["severity"] == nil {
			t.Errorf("no message or severity: %s", line)
		}
		sawWarning = sawWarning || rec["severity"] == "WARNING"
	}
	if !sawWarning {
		t.Errorf("no WARNING record (retries of an unreachable registry):\n%s", errOut)
	}
	// Text logs are short: no timestamps.
	_, _, errOut = run(t, nil, "resolve", "127.0.0.1:1/team/x:v1", "--timeout", "3s")
	if strings.Contains(errOut, "time=") || !strings.Contains(errOut, "level=WARN") {
		t.Errorf("text log: %s", errOut)
	}
}
