package notify_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/pkg/notify"
)

// parseOutputs reads a $GITHUB_OUTPUT file the way the Actions runner does
// (its file command parser): NAME=VALUE lines, and NAME<<DELIMITER
// followed by the value's lines up to a line that is exactly DELIMITER. A
// later value wins. Anything else is an error.
func parseOutputs(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		eq, heredoc := strings.Index(line, "="), strings.Index(line, "<<")
		switch {
		case eq > 0 && (heredoc < 0 || eq < heredoc):
			out[line[:eq]] = line[eq+1:]
		case heredoc > 0 && (eq < 0 || heredoc < eq):
			name, delim := line[:heredoc], line[heredoc+2:]
			if delim == "" {
				t.Fatalf("line %d: %q has an empty delimiter", i+1, line)
			}
			var value []string
			for i++; ; i++ {
				if i >= len(lines) {
					t.Fatalf("delimiter %q of %s never closed", delim, name)
				}
				if lines[i] == delim {
					break
				}
				value = append(value, lines[i])
			}
			out[name] = strings.Join(value, "\n")
		default:
			t.Fatalf("line %d: invalid format %q", i+1, line)
		}
	}
	return out
}

// githubEnv returns temporary GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files
// holding what earlier steps wrote.
func githubEnv(t *testing.T, output, summary string) (getenv func(string) string, outPath, sumPath string) {
	t.Helper()
	dir := t.TempDir()
	outPath, sumPath = filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	if err := os.WriteFile(outPath, []byte(output), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sumPath, []byte(summary), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"GITHUB_OUTPUT": outPath, "GITHUB_STEP_SUMMARY": sumPath}
	return func(k string) string { return vars[k] }, outPath, sumPath
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestGitHubOutputs(t *testing.T) {
	t.Parallel()
	noop := deployEvent()
	noop.Result, noop.Commit = notify.OnNoop, ""
	failure := notify.Event{Action: "promote", Result: notify.OnFailure, Env: "production", Error: "promoting: boom"}
	images, _ := json.Marshal(deployEvent().Images)
	byPR := deployEvent()
	byPR.PullRequest = &notify.PullRequest{URL: "https://github.com/acme/env/pull/7", Number: 7, State: "merged", MergeCommit: "0123456789abcdef0123456789abcdef01234567"}
	for _, tc := range []struct {
		name string
		ev   notify.Event
		want map[string]string
	}{
		{"success", deployEvent(), map[string]string{
			"changed": "true",
			"result":  "success",
			"commit":  deployEvent().Commit,
			"digest":  digestHello,
			"digests": digestHello + " " + digestSide,
			"images":  string(images),
		}},
		{"noop", noop, map[string]string{
			"changed": "false",
			"result":  "noop",
			"commit":  "",
			"digest":  digestHello,
			"digests": digestHello + " " + digestSide,
			"images":  string(images),
		}},
		{"by pull request", byPR, map[string]string{
			"changed":             "true",
			"result":              "success",
			"commit":              deployEvent().Commit,
			"digest":              digestHello,
			"digests":             digestHello + " " + digestSide,
			"images":              string(images),
			"pull-request-url":    "https://github.com/acme/env/pull/7",
			"pull-request-number": "7",
			"pull-request-state":  "merged",
			"merge-commit":        "0123456789abcdef0123456789abcdef01234567",
		}},
		{"failure", failure, map[string]string{
			"changed": "false",
			"result":  "failure",
			"commit":  "",
			"digest":  "",
			"digests": "",
			"images":  "[]",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv, outPath, _ := githubEnv(t, "earlier=1\n", "")
			if err := notify.GitHub(getenv, tc.ev); err != nil {
				t.Fatalf("GitHub: %v", err)
			}
			tc.want["earlier"] = "1"
			for _, k := range []string{"pull-request-url", "pull-request-number", "pull-request-state", "merge-commit"} {
				if _, ok := tc.want[k]; !ok {
					tc.want[k] = "" // always there, empty without a pull request
				}
			}
			if diff := cmp.Diff(tc.want, parseOutputs(t, readFile(t, outPath))); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGitHubOutputsMultiline: a value with a line break takes the
// delimited form, so that it cannot forge another output.
func TestGitHubOutputsMultiline(t *testing.T) {
	t.Parallel()
	ev := deployEvent()
	ev.Commit = "abc\nchanged=forged\r\nmore"
	getenv, outPath, _ := githubEnv(t, "", "")
	if err := notify.GitHub(getenv, ev); err != nil {
		t.Fatal(err)
	}
	text := readFile(t, outPath)
	if !strings.Contains(text, "commit<<ghadelimiter_") {
		t.Errorf("no delimited form for the multiline commit:\n%s", text)
	}
	got := parseOutputs(t, text)
	if got["commit"] != ev.Commit || got["changed"] != "true" {
		t.Errorf("commit %q changed %q; want %q and true", got["commit"], got["changed"], ev.Commit)
	}
}

func TestGitHubAppends(t *testing.T) {
	t.Parallel()
	// An earlier step left the output file without a final newline.
	getenv, outPath, sumPath := githubEnv(t, "earlier=1", "## Build\n\nbuilt hello\n")
	first := deployEvent()
	second := deployEvent()
	second.Action, second.Env, second.Commit = "promote", "production", "fdf14ca6d645aa1122334455667788990011aabb"
	for _, ev := range []notify.Event{first, second} {
		if err := notify.GitHub(getenv, ev); err != nil {
			t.Fatal(err)
		}
	}
	out := parseOutputs(t, readFile(t, outPath))
	if out["earlier"] != "1" || out["commit"] != second.Commit {
		t.Errorf("earlier=%q commit=%q; want 1 and the second run's commit", out["earlier"], out["commit"])
	}
	summary := readFile(t, sumPath)
	if !strings.HasPrefix(summary, "## Build\n\nbuilt hello\n") {
		t.Errorf("the earlier summary was not kept:\n%s", summary)
	}
	mustContain(t, "summary", summary, "### ferry deploy → candidate\n", "### ferry promote → production\n")
	if strings.Index(summary, "ferry deploy") > strings.Index(summary, "ferry promote") {
		t.Error("the sections are not in the order written")
	}
}

func TestGitHubSummary(t *testing.T) {
	t.Parallel()
	failure := deployEvent()
	failure.Result, failure.Commit, failure.Previous = notify.OnFailure, "", ""
	failure.Error = "validating apps/hello: kustomize build failed\n```\nresource missing"
	for _, tc := range []struct {
		name string
		ev   notify.Event
	}{
		{"deploy-success", deployEvent()},
		{"deploy-failure", failure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv, _, sumPath := githubEnv(t, "", "")
			if err := notify.GitHub(getenv, tc.ev); err != nil {
				t.Fatal(err)
			}
			got := readFile(t, sumPath)
			mustContain(t, "summary", got, "### ferry deploy → candidate\n", "| Image | Tag | Digest |\n| --- | --- | --- |\n",
				"| `us-docker.pkg.dev/acme/apps/hello` | `v1` | `"+digestHello+"` |\n")
			golden := filepath.Join(goldenDir, "summary-"+tc.name+".md")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/notify -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("summary differs from %s (-want +got; -update rewrites it):\n%s", golden, diff)
			}
		})
	}
}

func TestGitHubUnset(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := notify.GitHub(func(string) string { return "" }, deployEvent()); err != nil {
		t.Errorf("GitHub without the variables = %v, want nil", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written: %v", entries)
	}
}

func TestGitHubWriteError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() // a directory cannot be appended to
	getenv := func(k string) string {
		if k == "GITHUB_OUTPUT" {
			return dir
		}
		return ""
	}
	err := notify.GitHub(getenv, deployEvent())
	if err == nil || !strings.Contains(err.Error(), "$GITHUB_OUTPUT") {
		t.Errorf("GitHub with a directory as GITHUB_OUTPUT = %v, want an error naming $GITHUB_OUTPUT", err)
	}
}
