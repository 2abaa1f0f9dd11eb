package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/google/go-cmp/cmp"
)

// A deploy that loses the race to a newer build and is then skipped as
// out of order says how many rounds it took: the skip happens in the
// second round, so attempts is 2.
func TestSkippedDeployCountsAttempts(t *testing.T) {
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate")
	plain := testgit.Serve(t, repo)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	for i, tag := range []string{"build-1", "build-2", "build-3"} {
		reg.PushCreated(t, "team/hello:"+tag, day(i+1))
	}
	image := func(tag string) string { return reg.Host + "/team/hello:" + tag }
	deploy := func(url, tag string) (int, string, string) {
		return run(t, map[string]string{"FERRY_REPO": url}, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", image(tag), "--output", "json")
	}
	if code, _, errOut := deploy(plain.RepoURL(repo), "build-1"); code != 0 {
		t.Fatalf("deploy build-1: exit %d: %s", code, errOut)
	}
	// Another pipeline deploys build-3 between this deploy's fetch and its
	// push: when it first asks to push, the branch moves under it.
	var once sync.Once
	racing := testgit.Serve(t, repo, testgit.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("service") == "git-receive-pack" {
				once.Do(func() {
					if code, _, errOut := deploy(plain.RepoURL(repo), "build-3"); code != 0 {
						t.Errorf("the other deploy: exit %d: %s", code, errOut)
					}
				})
			}
			next.ServeHTTP(w, r)
		})
	}))
	tip := repo.Tip("candidate")
	code, out, errOut := deploy(racing.RepoURL(repo), "build-2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Changed, Skipped bool
		Attempts         int
		Reason           string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Changed || !rep.Skipped || !strings.Contains(rep.Reason, "older") {
		t.Fatalf("want a skipped deploy: %s", out)
	}
	if rep.Attempts != 2 {
		t.Errorf("attempts %d, want 2 (one round lost to build-3, one that skipped)", rep.Attempts)
	}
	if repo.Tip("candidate") == tip || !strings.Contains(repo.Show("candidate", "apps/hello/kustomization.yaml"), "build-3") {
		t.Errorf("build-3 is not what candidate runs:\n%s", repo.Show("candidate", "apps/hello/kustomization.yaml"))
	}
	repo.Fsck()
}

// failure is the object ferry prints on stdout when a run with --output
// json fails.
type failure struct {
	Action   string `json:"action"`
	Branch   string `json:"branch"`
	Path     string `json:"path"`
	App      string `json:"app"`
	Error    string `json:"error"`
	ExitCode *int   `json:"exitCode"`
}

// jsonValues decodes every JSON value on stdout; anything that is not JSON
// is an error.
func jsonValues(t *testing.T, out string) []json.RawMessage {
	t.Helper()
	var vals []json.RawMessage
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if err == io.EOF {
			return vals
		}
		if err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, out)
		}
		vals = append(vals, v)
	}
}

// With --output json a pipeline that parses stdout always gets one JSON
// object, failures included: the error (redacted as everything is), the
// exit status and what ferry knew. The error still goes to stderr.
func TestJSONOnFailure(t *testing.T) {
	const token = "ghp_failureT0kenValue"
	reg := testreg.Start(t, nil)
	repo := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	srv := testgit.Serve(t, repo, testgit.WithBasicAuth("x-access-token", token))
	reg.Push(t, "team/hello:v1")
	url := srv.RepoURL(repo)
	withToken := strings.Replace(url, "http://", "http://x-access-token:"+token+"@", 1)
	hello := reg.Host + "/team/hello:v1"
	env := map[string]string{"FERRY_REPO": withToken}
	code := func(c int) *int { return &c }

	tests := []struct {
		name string
		env  map[string]string // added to env
		args []string
		want failure
		// stderr is what the message on stderr holds, as before.
		stderr string
	}{
		{name: "missing tag",
			args:   []string{"deploy", "--env", "candidate", "--path", "apps/hello/", "--image", reg.Host + "/team/hello:v9", "--output", "json"},
			want:   failure{Action: "deploy", Branch: "candidate", Path: "apps/hello", App: "hello", Error: "tag v9 not found in " + reg.Host + "/team/hello", ExitCode: code(1)},
			stderr: "tag v9 not found"},
		{name: "usage error after parsing",
			args:   []string{"deploy", "--path", "apps/hello", "--image", hello, "--output", "json"},
			want:   failure{Action: "deploy", Path: "apps/hello", App: "hello", Error: "--env is required (the branch to deploy to, e.g. candidate)", ExitCode: code(2)},
			stderr: "--env is required"},
		{name: "FERRY_OUTPUT=json, promote of a missing scope",
			env:  map[string]string{"FERRY_OUTPUT": "json"},
			args: []string{"promote", "--from", "candidate", "--to", "production", "--path", "apps/nothing", "--app", "web"},
			want: failure{Action: "promote", Branch: "production", Path: "apps/nothing", App: "web", Error: "apps/nothing does not exist on candidate", ExitCode: code(1)}},
		{name: "rollback beyond history",
			args: []string{"rollback", "--env", "production", "--path", "apps/hello", "--steps", "5", "--output", "json"},
			want: failure{Action: "rollback", Branch: "production", Path: "apps/hello", App: "hello", Error: "cannot roll apps/hello on production back 5 step(s)", ExitCode: code(1)}},
		{name: "history of a missing branch, token in the URL",
			args: []string{"history", "--env", "staging", "--output", "json"},
			want: failure{Action: "history", Branch: "staging", Path: ".", Error: `"staging" does not exist in ` + url + "; create it first", ExitCode: code(1)}},
		{name: "diff",
			args: []string{"diff", "--from", "candidate", "--to", "candidate", "--output", "json"},
			want: failure{Action: "diff", Branch: "candidate", Path: ".", Error: `--from and --to are both "candidate"`, ExitCode: code(2)}},
		{name: "parse error, --output json in the args",
			args:   []string{"--output", "json", "deploy", "--bogus"},
			want:   failure{Action: "deploy", Error: "unknown flag --bogus", ExitCode: code(2)},
			stderr: "unknown flag --bogus"},
		{name: "parse error, --output=json after it",
			args: []string{"history", "--limit", "two", "--output=json"},
			want: failure{Action: "history", Error: "--limit: expected a valid 64 bit int", ExitCode: code(2)}},
		{name: "parse error, FERRY_OUTPUT=json",
			env:  map[string]string{"FERRY_OUTPUT": "json"},
			args: []string{"nonsense"},
			want: failure{Error: "unexpected argument nonsense", ExitCode: code(2)}},
		{name: "timeout",
			args: []string{"deploy", "--env", "candidate", "--path", "apps/hello", "--image", hello, "--timeout", "1ns", "--output", "json"},
			want: failure{Action: "deploy", Branch: "candidate", Path: "apps/hello", App: "hello", Error: "gave up after --timeout 1ns", ExitCode: code(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tc.env {
				e[k] = v
			}
			status, out, errOut := run(t, e, tc.args...)
			if strings.Contains(out+errOut, token) {
				t.Errorf("token printed:\n%s\n%s", out, errOut)
			}
			if status != *tc.want.ExitCode {
				t.Errorf("exit %d, want %d: %s", status, *tc.want.ExitCode, errOut)
			}
			if !strings.Contains(errOut, "ferry: ") || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr lacks the message %q: %s", tc.stderr, errOut)
			}
			vals := jsonValues(t, out)
			if len(vals) != 1 {
				t.Fatalf("%d JSON values on stdout, want 1:\n%s", len(vals), out)
			}
			var got failure
			dec := json.NewDecoder(bytes.NewReader(vals[0]))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			if !strings.Contains(got.Error, tc.want.Error) {
				t.Errorf("error %q lacks %q", got.Error, tc.want.Error)
			}
			if !strings.Contains(errOut, got.Error) {
				t.Errorf("error %q is not what stderr says: %s", got.Error, errOut)
			}
			got.Error, tc.want.Error = "", ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("failure object (-want +got):\n%s\n%s", diff, out)
			}
		})
	}

	// Where a run already printed its JSON result, nothing is added:
	// diff --exit-code with differences, and a hook that failed under
	// --strict-hooks after a successful deploy.
	t.Run("one object only", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			key  string
		}{
			{[]string{"deploy", "--env", "candidate", "--path", "apps/hello", "--image", hello, "--exec-hook", "/nonexistent/hook", "--strict-hooks"}, 3, "commit"},
			{[]string{"diff", "--from", "production", "--to", "candidate", "--path", "apps/hello", "--exit-code"}, 1, "apps"},
		} {
			status, out, errOut := run(t, env, append(tc.args, "--output", "json")...)
			if status != tc.code {
				t.Errorf("ferry %s: exit %d, want %d: %s", strings.Join(tc.args, " "), status, tc.code, errOut)
			}
			vals := jsonValues(t, out)
			var obj map[string]any
			if len(vals) != 1 || json.Unmarshal(vals[0], &obj) != nil || obj[tc.key] == nil || obj["error"] != nil {
				t.Errorf("ferry %s: want only the result on stdout, got:\n%s", strings.Join(tc.args, " "), out)
			}
		}
	})

	// Text output prints nothing on stdout for a failure, as before.
	status, out, _ := run(t, env, "deploy", "--env", "candidate", "--path", "apps/hello", "--image", reg.Host+"/team/hello:v9")
	if status != 1 || out != "" {
		t.Errorf("text: exit %d, stdout %q", status, out)
	}
}
