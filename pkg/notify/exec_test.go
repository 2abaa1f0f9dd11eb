//go:build unix

package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferrycd/ferry/internal/testenv"
	"github.com/ferrycd/ferry/pkg/notify"
)

// script writes an sh script into a fresh directory whose name has a space
// in it (argv[0] must not be split either) and returns its path. ferry
// needs no shell; its tests use one to play the hook.
func script(t *testing.T, body string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		testenv.NeedServer(t, "/bin/sh", fmt.Sprintf("it plays the hook: %v", err))
	}
	dir := filepath.Join(t.TempDir(), "hook dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExecEnvironment is not parallel: it sets variables with t.Setenv.
func TestExecEnvironment(t *testing.T) {
	hook := script(t, `env > "$1"`)
	out := filepath.Join(t.TempDir(), "env")
	t.Setenv("FERRY_TEST_INHERITED", "kept")
	t.Setenv("FERRY_ENV", "stale value from ferry's own flags")
	t.Setenv("FERRY_ERROR", "stale")

	ev := deployEvent()
	if err := notify.Exec([]string{hook, out}).Fire(t.Context(), ev); err != nil {
		t.Fatalf("Fire: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "="); ok && strings.HasPrefix(k, "FERRY_") {
			got[k] = v
		}
	}
	var sent notify.Event
	if err := json.Unmarshal([]byte(got["FERRY_EVENT"]), &sent); err != nil {
		t.Fatalf("FERRY_EVENT is not an Event: %v\n%s", err, got["FERRY_EVENT"])
	}
	if diff := cmp.Diff(ev, sent); diff != "" {
		t.Errorf("FERRY_EVENT (-want +got):\n%s", diff)
	}
	delete(got, "FERRY_EVENT")
	want := map[string]string{
		"FERRY_ACTION":          "deploy",
		"FERRY_RESULT":          "success",
		"FERRY_ENV":             "candidate",
		"FERRY_APP":             "hello",
		"FERRY_PATH":            "apps/hello",
		"FERRY_COMMIT":          ev.Commit,
		"FERRY_PREVIOUS_COMMIT": ev.Previous,
		"FERRY_IMAGES":          ev.Images[0].Ref + " " + ev.Images[1].Ref,
		"FERRY_DIGEST":          digestHello,
		"FERRY_SOURCE_REPO":     ev.SourceRepo,
		"FERRY_SOURCE_COMMIT":   ev.SourceCommit,
		"FERRY_BUILD_ID":        ev.BuildID,
		"FERRY_BUILD_URL":       ev.BuildURL,
		"FERRY_PROMOTED_FROM":   "",
		"FERRY_ROLLBACK_TO":     "",
		"FERRY_ERROR":           "",
		"FERRY_TEST_INHERITED":  "kept",
	}
	// Every other FERRY_* variable of this process is inherited as it is
	// (CI's FERRY_REQUIRE_SERVERS, a developer's FERRY_REPO).
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "FERRY_") {
			if _, ours := want[k]; !ours {
				want[k] = v
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FERRY_* variables the hook saw (-want +got):\n%s", diff)
	}
}

func TestExecArgvLiteral(t *testing.T) {
	t.Parallel()
	hook := script(t, `out=$1; shift; for a in "$@"; do printf '%s\0' "$a"; done > "$out"`)
	out := filepath.Join(t.TempDir(), "args")
	args := []string{
		"two words",
		"$HOME",
		"${FERRY_ENV}",
		"; touch pwned",
		"`id`",
		"$(id)",
		"*",
		`a"b'c\d`,
		"",
		"line\nbreak",
		"|&<>",
	}
	err := notify.Exec(append([]string{hook, out}, args...)).Fire(t.Context(), deployEvent())
	if err != nil {
		t.Fatalf("Fire: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	if diff := cmp.Diff(args, got); diff != "" {
		t.Errorf("arguments the hook got (-want +got):\n%s", diff)
	}
}

func TestExecExitStatus(t *testing.T) {
	t.Parallel()
	hook := script(t, `echo "checking argo"; echo "argo: app hello not found" >&2; exit 3`)
	h := notify.Exec([]string{hook, "--token", "s3cret"})
	err := h.Fire(t.Context(), deployEvent())
	if err == nil {
		t.Fatal("Fire succeeded, want exit status 3")
	}
	mustContain(t, "error", err.Error(), "exec "+hook+": ", "exit status 3", "argo: app hello not found")
	mustNotContain(t, "error", err.Error(), "s3cret")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("errors.As(%v, *exec.ExitError) gives exit code %v, want 3", err, exit)
	}
}

func TestExecStartFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		argv []string
		err  string
	}{
		{nil, "exec: no command given"},
		{[]string{""}, "exec: no command given"},
		{[]string{filepath.Join(t.TempDir(), "missing")}, "no such file or directory"},
		{[]string{"ferry-hook-that-does-not-exist"}, "executable file not found"},
	} {
		err := notify.Exec(tc.argv).Fire(t.Context(), deployEvent())
		if err == nil {
			t.Errorf("Exec(%q): Fire succeeded", tc.argv)
			continue
		}
		mustContain(t, "error", err.Error(), tc.err)
	}
}

func TestExecRetries(t *testing.T) {
	t.Parallel()
	// Fails on the first run, succeeds on the second.
	hook := script(t, `if [ -e "$1" ]; then exit 0; fi; : > "$1"; exit 1`)
	marker := filepath.Join(t.TempDir(), "marker")
	if err := notify.Exec([]string{hook, marker}, notify.WithAttempts(2), fast).Fire(t.Context(), deployEvent()); err != nil {
		t.Fatalf("Fire with 2 attempts: %v", err)
	}
	os.Remove(marker)
	err := notify.Exec([]string{hook, marker}).Fire(t.Context(), deployEvent())
	if err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("Fire with the default single attempt = %v, want exit status 1", err)
	}
}

func TestExecOutput(t *testing.T) {
	t.Parallel()
	hook := script(t, `echo "to stdout"; echo "to stderr" >&2; printf 'no newline'`)
	t.Run("logger", func(t *testing.T) {
		t.Parallel()
		var logs logBuffer
		if err := notify.Exec([]string{hook}, notify.WithLogger(logs.logger())).Fire(t.Context(), deployEvent()); err != nil {
			t.Fatal(err)
		}
		type record struct {
			Level, Msg, Hook, Stream, Line string
		}
		var got []record
		for line := range strings.Lines(logs.String()) {
			var r record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			got = append(got, r)
		}
		name := "exec " + hook
		want := []record{
			{"INFO", "hook output", name, "stdout", "to stdout"},
			{"INFO", "hook output", name, "stdout", "no newline"},
			{"INFO", "hook output", name, "stderr", "to stderr"},
		}
		// stdout and stderr are separate pipes: order across them is not kept.
		less := func(a, b record) bool { return a.Stream+a.Line < b.Stream+b.Line }
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(less)); diff != "" {
			t.Errorf("log records (-want +got):\n%s", diff)
		}
	})
	t.Run("writer", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		if err := notify.Exec([]string{hook}, notify.WithOutput(&out)).Fire(t.Context(), deployEvent()); err != nil {
			t.Fatal(err)
		}
		mustContain(t, "output", out.String(), "to stdout\n", "to stderr\n", "no newline")
	})
}

// TestExecTimeoutKillsGroup: a hook that hangs, with a child that hangs
// too, is killed at its timeout with the child.
func TestExecTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	hook := script(t, `sleep 60 & echo $! > "$1"; sleep 60`)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	h := notify.Exec([]string{hook, pidFile}, notify.WithTimeout(time.Second))
	start := time.Now()
	err := h.Fire(t.Context(), deployEvent())
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("Fire took %v, want about its 1s timeout", elapsed)
	}
	if err == nil {
		t.Fatal("Fire succeeded, want a timeout")
	}
	mustContain(t, "error", err.Error(), "exec "+hook+": ", "timed out after 1s", "process group killed")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	waitGone(t, readPid(t, pidFile))
}

// TestExecLeftoversKilled: a hook that exits, leaving a child that still
// holds its output pipe, returns at once and takes the child with it.
func TestExecLeftoversKilled(t *testing.T) {
	t.Parallel()
	hook := script(t, `sleep 60 & echo $! > "$1"; echo started`)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	start := time.Now()
	if err := notify.Exec([]string{hook, pidFile}).Fire(t.Context(), deployEvent()); err != nil {
		t.Fatalf("Fire: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("Fire took %v, want it to return when the hook exits", elapsed)
	}
	waitGone(t, readPid(t, pidFile))
}

func TestExecContextCancelled(t *testing.T) {
	t.Parallel()
	hook := script(t, `sleep 60`)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := notify.Exec([]string{hook}).Fire(ctx, deployEvent())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fire = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("Fire returned %v after the cancel; want promptly", elapsed)
	}
}

// TestExecCancelKillsGroup: cancelling ctx (ferry got a signal, or ran out
// of --timeout) kills the hook's whole process group, as its own timeout
// does.
func TestExecCancelKillsGroup(t *testing.T) {
	t.Parallel()
	hook := script(t, `sleep 60 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; sleep 60`)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		defer cancel()
		for range 1000 { // 20s at most
			if _, err := os.Stat(pidFile); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err := notify.Exec([]string{hook, pidFile}, notify.WithTimeout(time.Hour)).Fire(ctx, deployEvent())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fire = %v, want context.Canceled", err)
	}
	waitGone(t, readPid(t, pidFile))
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the hook wrote no child pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		t.Fatalf("child pid %q: %v", data, err)
	}
	return pid
}

// waitGone waits (up to a generous bound) for pid to be dead: gone, or a
// zombie waiting for whatever adopted it to reap it.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if stat, rerr := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); rerr == nil {
			// pid (comm) state ...: comm may hold spaces, state follows the last ')'.
			if i := bytes.LastIndexByte(stat, ')'); i >= 0 && bytes.HasPrefix(stat[i+1:], []byte(" Z")) {
				return
			}
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d of the hook still runs: %v", pid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
