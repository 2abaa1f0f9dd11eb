package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRequired(t *testing.T) {
	for v, want := range map[string]bool{
		"":     false, // unset: a developer's machine
		"0":    false,
		"1":    true, // what .ci/run exports
		"true": true, // not the documented value, but no typo may bring skips back
		"yes":  true,
	} {
		if got := required(v); got != want {
			t.Errorf("required(%q) = %v, want %v", v, got, want)
		}
	}
}

// childVar tells TestChildNeedsServer that TestNeedServer started it, and
// what to look for.
const childVar = "FERRY_TESTENV_CHILD"

// TestChildNeedsServer is the test that needs a server this machine lacks.
// It does something only in the child process TestNeedServer starts; run
// on its own it has nothing to check and returns.
func TestChildNeedsServer(t *testing.T) {
	switch os.Getenv(childVar) {
	case "":
		return
	case "need":
		NeedServer(t, "ferry-test-no-such-server", "not installed (Debian: apt-get install nothing)")
	case "lookpath-missing":
		LookPath(t, "ferry-test-no-such-program", "Debian: apt-get install nothing")
	case "lookpath-present":
		if p := LookPath(t, "sh", "Debian: apt-get install dash"); p == "" {
			t.Fatal("LookPath found sh at an empty path")
		}
		return
	}
	t.Error("the test went on after the server was found missing")
}

// TestNeedServer runs TestChildNeedsServer in a child test process, with and
// without FERRY_REQUIRE_SERVERS, and reads go test's own verdict: a missing
// server skips the test, and fails it under FERRY_REQUIRE_SERVERS=1.
func TestNeedServer(t *testing.T) {
	for _, tc := range []struct {
		child   string
		require string // "" leaves the variable unset
		verdict string // --- PASS, --- SKIP or --- FAIL
		say     string
	}{
		{"need", "", "--- SKIP", "ferry-test-no-such-server is needed and missing: not installed (Debian: apt-get install nothing)"},
		{"need", "0", "--- SKIP", "with FERRY_REQUIRE_SERVERS=1, as .ci/run sets, this fails"},
		{"need", "1", "--- FAIL", "FERRY_REQUIRE_SERVERS=1: a missing server fails the test instead of skipping it"},
		{"need", "true", "--- FAIL", "ferry-test-no-such-server is needed and missing"},
		{"lookpath-missing", "", "--- SKIP", `ferry-test-no-such-program is needed and missing: exec: "ferry-test-no-such-program": executable file not found in $PATH; Debian: apt-get install nothing`},
		{"lookpath-missing", "1", "--- FAIL", "ferry-test-no-such-program is needed and missing"},
		{"lookpath-present", "1", "--- PASS", ""},
	} {
		t.Run(tc.child+"/"+Var+"="+tc.require, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildNeedsServer$", "-test.v")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, Var+"=") && !strings.HasPrefix(kv, childVar+"=") {
					env = append(env, kv)
				}
			}
			env = append(env, childVar+"="+tc.child)
			if tc.require != "" {
				env = append(env, Var+"="+tc.require)
			}
			cmd.Env = env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("running the child test: %v", err)
			}
			wantFail := tc.verdict == "--- FAIL"
			if failed := err != nil; failed != wantFail {
				t.Errorf("child test exited with %v; want failure %v", err, wantFail)
			}
			if !strings.Contains(out.String(), tc.verdict+": TestChildNeedsServer") {
				t.Errorf("child test's verdict is not %s:\n%s", tc.verdict, out.String())
			}
			if !strings.Contains(out.String(), tc.say) {
				t.Errorf("child test's output lacks %q:\n%s", tc.say, out.String())
			}
			if strings.Contains(out.String(), "went on after") {
				t.Errorf("NeedServer returned instead of ending the test:\n%s", out.String())
			}
		})
	}
}
