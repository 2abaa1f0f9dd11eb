// Command envbench times one deploy to a large synthetic GitOps env repo
// three ways: the classic shallow clone, sed, commit and push (A); the same
// with a blobless sparse clone (B); and ferry deploy (F). It serves the repo
// with git http-backend and the images with an in-process registry, both on
// 127.0.0.1, and prints a Markdown table of wall time, CPU time, peak RSS
// and bytes sent over HTTP. See docs/benchmarks.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "envbench:", err)
		os.Exit(1)
	}
}

type config struct {
	apps    []int
	runs    int
	commits int
	keep    bool
	json    bool
	ferry   string
}

func parseFlags(args []string) (config, error) {
	c := config{apps: []int{2000}}
	fs := flag.NewFlagSet("envbench", flag.ContinueOnError)
	fs.Func("apps", "apps in the env repo, 5 files each, or a `list` of sizes to run in turn, e.g. 500,2000,8000 (default 2000)", func(s string) error {
		c.apps = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				return fmt.Errorf("%q is not a number of apps (2 or more)", f)
			}
			c.apps = append(c.apps, n)
		}
		return nil
	})
	fs.IntVar(&c.runs, "runs", 7, "timed runs of each tool per size, interleaved A, B, F, A, B, F, ... after one untimed warm-up round")
	fs.IntVar(&c.commits, "commits", 300, "commits of history on top of the first one")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (env repos, clones) and print its path")
	fs.BoolVar(&c.json, "json", false, "print every sample as JSON instead of the Markdown table")
	fs.StringVar(&c.ferry, "ferry", "", "the ferry `binary` to time (default: build ./cmd/ferry, static and stripped)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: go run ./bench/envbench [flags]\n\n"+
			"Times one deploy to a synthetic env repo three ways: git clone, sed and push (A); a blobless\n"+
			"sparse clone (B); ferry deploy (F). Prints a Markdown table; see docs/benchmarks.md.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.runs < 1 || c.commits < 0 {
		return c, fmt.Errorf("-runs must be at least 1 and -commits at least 0")
	}
	return c, nil
}

// sample is one timed run of one tool.
type sample struct {
	App string `json:"app"`
	usage
	GitBytes    int64 `json:"git_bytes"`
	GitRequests int64 `json:"git_requests"`
	RegBytes    int64 `json:"registry_bytes"`
	RegRequests int64 `json:"registry_requests"`
}

// result is every sample of one tool at one size.
type result struct {
	Apps    int      `json:"apps"`
	Tool    string   `json:"tool"`
	Samples []sample `json:"samples"`
}

// bench is what the runs share: servers, the ferry binary, the scratch
// directory and the environment of every command timed.
type bench struct {
	cfg      config
	log      *slog.Logger
	tmp      string
	ferry    string
	git, reg *server
	env      []string
	gitRoot  string
	gitHome  string
}

func run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	loadStart := loadavg()
	tmp, err := os.MkdirTemp("", "envbench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		log.Info("keeping scratch directory", "dir", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	b := &bench{cfg: cfg, log: log, tmp: tmp, gitRoot: filepath.Join(tmp, "srv"), gitHome: filepath.Join(tmp, "home")}
	for _, d := range []string{b.gitRoot, b.gitHome, filepath.Join(tmp, "runs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Every timed command sees an empty HOME and no system git config, so
	// nothing on this machine tunes git or gives ferry credentials.
	b.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.gitHome, "TMPDIR=" + tmp, "LANG=C", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com"}

	ferrySource := cfg.ferry
	if b.ferry = cfg.ferry; b.ferry == "" {
		b.ferry = filepath.Join(tmp, "ferry")
		log.Info("building ferry", "out", b.ferry)
		if ferrySource, err = buildFerry(ctx, b.ferry); err != nil {
			return err
		}
	}
	if b.git, err = serveGit(b.gitRoot, b.gitHome); err != nil {
		return err
	}
	defer b.git.Close()
	if b.reg, err = serveRegistry(); err != nil {
		return err
	}
	defer b.reg.Close()

	var results []result
	for _, n := range cfg.apps {
		rs, err := b.size(ctx, n)
		if err != nil {
			return fmt.Errorf("%d apps: %w", n, err)
		}
		results = append(results, rs...)
	}
	m := describeMachine(ctx, os.TempDir())
	m.Load = [2]string{loadStart, loadavg()}
	m.Ferry = ferrySource
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Machine machine  `json:"machine"`
			Runs    int      `json:"runs"`
			Commits int      `json:"commits"`
			Results []result `json:"results"`
		}{m, cfg.runs, cfg.commits, results})
	}
	printTable(stdout, m, cfg, results)
	return nil
}

// buildFerry builds ./cmd/ferry as `make build` does, without the version
// stamp, and says which source it was built from: the commit, and the
// directories with uncommitted changes.
func buildFerry(ctx context.Context, out string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/ferrycd/ferry/cmd/ferry")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ferry: %v\n%s", err, out)
	}
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: %w", err)
	}
	dir := strings.TrimSpace(string(root))
	rev, err := gitOutput(ctx, dir, "rev-parse", "--short", "HEAD")
	if err != nil {
		return "", err
	}
	status, err := gitOutput(ctx, dir, "status", "--porcelain", "--", "cmd", "pkg", "internal", "go.mod", "go.sum")
	if err != nil {
		return "", err
	}
	var dirty []string
	for line := range strings.Lines(status) {
		f := strings.Fields(line) // "XY path", or "XY old -> new"
		p := strings.Split(f[len(f)-1], "/")
		if d := strings.Join(p[:min(2, len(p))], "/"); !slices.Contains(dirty, d) {
			dirty = append(dirty, d)
		}
	}
	if len(dirty) > 0 {
		return rev + " + uncommitted changes in " + strings.Join(dirty, ", "), nil
	}
	return rev, nil
}

// size generates an env repo of n apps and times every tool on it.
func (b *bench) size(ctx context.Context, n int) ([]result, error) {
	bare := filepath.Join(b.gitRoot, fmt.Sprintf("env-%d.git", n))
	start := time.Now()
	for _, args := range [][]string{
		{"init", "-q", "--bare", "-b", "candidate", bare},
		{"-C", bare, "config", "http.receivepack", "true"},
		{"-C", bare, "config", "uploadpack.allowFilter", "true"},
		{"-C", bare, "config", "uploadpack.allowAnySHA1InWant", "true"},
	} {
		if out, err := exec.CommandContext(ctx, "git", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	base, err := generate(ctx, bare, b.reg.Host, n, b.cfg.commits)
	if err != nil {
		return nil, err
	}
	if !b.cfg.keep {
		defer os.RemoveAll(bare)
	}
	b.log.Info("generated env repo", "apps", n, "files", n*len(appFiles), "commits", b.cfg.commits+1, "took", time.Since(start).Round(time.Millisecond))

	rounds := b.cfg.runs + 1 // round 0 warms up and is not counted
	results := make([]result, len(tools))
	for i, t := range tools {
		results[i] = result{Apps: n, Tool: t.Name}
	}
	for r := range rounds {
		app := appName(n, runApp(n, r, rounds))
		d := deploy{
			URL:   "http://" + b.git.Host + "/" + filepath.Base(bare),
			Path:  "apps/" + app,
			Tag:   "v2",
			Image: b.reg.Host + "/team/" + app + ":v2",
		}
		digest, err := pushImage(ctx, d.Image, int64(n)<<20+int64(r))
		if err != nil {
			return nil, err
		}
		for i, t := range tools {
			s, err := b.once(ctx, bare, base, d, digest, t, fmt.Sprintf("%d-%d-%d", n, r, i))
			if err != nil {
				return nil, fmt.Errorf("%s, %s: %w", t.Name, app, err)
			}
			b.log.Info("run", "apps", n, "round", r, "tool", t.Name, "app", app, "wall", s.Wall.Round(time.Millisecond), "cpu", s.CPU.Round(time.Millisecond),
				"max_rss_mib", s.MaxRSSKiB>>10, "git_kib", s.GitBytes>>10, "git_requests", s.GitRequests)
			if r > 0 {
				results[i].Samples = append(results[i].Samples, s)
			}
		}
	}
	return results, nil
}

// once times one tool deploying d, checks what it pushed, and puts the
// branch back at base for the next run.
func (b *bench) once(ctx context.Context, bare, base string, d deploy, digest string, t tool, name string) (sample, error) {
	dir := filepath.Join(b.tmp, "runs", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sample{}, err
	}
	if !b.cfg.keep {
		defer os.RemoveAll(dir)
	}
	b.git.reset()
	b.reg.reset()
	u, err := measure(ctx, dir, b.env, t.steps(d, b.ferry))
	s := sample{App: filepath.Base(d.Path), usage: u}
	s.GitBytes, s.GitRequests = b.git.reset()
	s.RegBytes, s.RegRequests = b.reg.reset()
	if err != nil {
		return s, err
	}
	want := []string{"newTag: " + d.Tag}
	if t.pinsDigest {
		want = append(want, digest)
	}
	if err := check(ctx, bare, base, d.Path+"/kustomization.yaml", want); err != nil {
		return s, err
	}
	_, err = gitOutput(ctx, bare, "update-ref", "refs/heads/candidate", base)
	return s, err
}

// check verifies that candidate is exactly one commit on top of base, that
// the commit changes only file, and that file now holds every want string.
func check(ctx context.Context, bare, base, file string, want []string) error {
	parent, err := gitOutput(ctx, bare, "rev-parse", "candidate^")
	if err != nil {
		return err
	}
	if parent != base {
		return fmt.Errorf("candidate is not one commit on top of %s (its parent is %s)", base, parent)
	}
	changed, err := gitOutput(ctx, bare, "diff", "--name-only", base, "candidate")
	if err != nil {
		return err
	}
	if changed != file {
		return fmt.Errorf("the commit changes %q, want only %s", changed, file)
	}
	content, err := gitOutput(ctx, bare, "show", "candidate:"+file)
	if err != nil {
		return err
	}
	for _, w := range want {
		if !strings.Contains(content, w) {
			return fmt.Errorf("%s does not contain %q:\n%s", file, w, content)
		}
	}
	return nil
}
