// Package testenv makes the one decision a test faces when the machine
// lacks a program or server it needs (sshd, docker-registry, git,
// shellcheck, actionlint, kubectl, root for chroot, ...): skip or fail.
//
// A developer without the package gets a skip that says what is missing and
// how to get it. CI sets FERRY_REQUIRE_SERVERS=1 (.ci/run exports it), and
// then the same absence is a failure, so a test that proves something
// against a real server cannot pass by never running.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Var is the environment variable that turns a missing server into a
// failure.
const Var = "FERRY_REQUIRE_SERVERS"

// Required reports whether a missing server fails the test: whenever
// FERRY_REQUIRE_SERVERS is set to anything but "" or "0". An unexpected
// value ("true", "yes") counts as set, so a typo cannot turn failures back
// into skips.
func Required() bool { return required(os.Getenv(Var)) }

func required(v string) bool { return v != "" && v != "0" }

// NeedServer ends the test because name, which it needs, is missing or
// unusable here; why says what was found and how to get it (".. not found
// (Debian: apt-get install openssh-server)"). Under FERRY_REQUIRE_SERVERS=1
// that is t.Fatalf; otherwise t.Skipf.
func NeedServer(t testing.TB, name, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is needed and missing: %s\n(%s=%s: a missing server fails the test instead of skipping it)", name, why, Var, os.Getenv(Var))
	}
	t.Skipf("%s is needed and missing: %s\n(skipped; with %s=1, as .ci/run sets, this fails)", name, why, Var)
}

// LookPath returns the path of the program name on PATH. When there is
// none it calls NeedServer, with install saying how to get it.
func LookPath(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		NeedServer(t, name, err.Error()+"; "+install)
	}
	return p
}
