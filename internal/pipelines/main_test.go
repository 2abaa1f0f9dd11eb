package pipelines

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// Stamped into the test build through the Dockerfile's build args.
const (
	testVersion = "v0.0.0-pipelines-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

var (
	repoRoot   string   // the module root: Dockerfile, action.yml, pipelines/
	ferryBin   string   // ferry, built exactly as the Dockerfile builds it
	ferryDir   string   // the directory holding only ferryBin, for PATH
	imageBuild *goBuild // the Dockerfile's build, parsed
	dockerfile []stage  // every stage of the Dockerfile
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	tmp, err := os.MkdirTemp("", "ferry-pipelines-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	ferryDir = filepath.Join(tmp, "bin")
	ferryBin = filepath.Join(ferryDir, "ferry")
	if err := os.MkdirAll(ferryDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// One build serves every test: the image's binary is the one the
	// pipelines run.
	dockerfile, imageBuild, err = buildLikeDockerfile(repoRoot, filepath.Join(tmp, "context"), ferryBin,
		map[string]string{"VERSION": testVersion, "COMMIT": testCommit})
	if err != nil {
		fmt.Fprintln(os.Stderr, "building ferry the Dockerfile's way:", err)
		return 1
	}
	return m.Run()
}

// readYAML decodes a file of the repository into v, refusing fields v does
// not know, so a misspelt key fails rather than being ignored.
func readYAML(t testing.TB, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// pipelineFiles lists the files under pipelines/ matching glob, relative to
// the repository root.
func pipelineFiles(t testing.TB, glob string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(repoRoot, "pipelines", glob))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range matches {
		rel, _ := filepath.Rel(repoRoot, m)
		out = append(out, filepath.ToSlash(rel))
	}
	sort.Strings(out)
	return out
}

// execResult is what a process did.
type execResult struct {
	Stdout, Stderr string
	Code           int
}

func (r execResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// runCmd runs cmd and returns its output and exit status; failing to start
// is fatal.
func runCmd(t testing.TB, cmd *exec.Cmd) execResult {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := execResult{Stdout: out.String(), Stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running %s: %v", strings.Join(cmd.Args, " "), err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

// scriptTimeout is how long a job's script may run here: a runner's job
// timeout, short, so that a pipeline that would wait (for a merge that
// never comes) fails instead of hanging the test.
const scriptTimeout = 2 * time.Minute

// runScript runs script as a CI runner runs a job's shell lines: from a
// file, with bash --noprofile --norc and the runner's flags (e.g. -eo
// pipefail), in dir, with exactly env; past scriptTimeout, the whole
// process group is killed.
func runScript(t testing.TB, script, dir string, env map[string]string, flags ...string) execResult {
	t.Helper()
	file := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append(append([]string{"--noprofile", "--norc"}, flags...), file)...)
	cmd.Dir = dir
	cmd.Env = envList(env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	res := runCmd(t, cmd)
	if ctx.Err() != nil {
		res.Stderr += fmt.Sprintf("\n(killed: the script ran past %s)\n", scriptTimeout)
	}
	return res
}

// envList turns a map into KEY=VALUE pairs in a stable order.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
