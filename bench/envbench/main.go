// Command envbench times one deploy to a large synthetic GitOps env repo
// three ways: the classic shallow clone, sed, commit and push (A); the same
// with a blobless sparse clone (B); and ferry deploy (F). It serves the repo
// with git http-backend and the images with an in-process registry, both on
// 127.0.0.1, and prints a Markdown table of wall time, CPU time, peak RSS
// and bytes sent over HTTP. With -status it times ferry status on an env
// repo with three environment branches instead. See docs/benchmarks.md.
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
	// latencies are the one-way delays of the proxies in front of the git
	// server and the registry; every round runs every tool at each.
	latencies []time.Duration
	writers   int  // > 0: time N concurrent ferry deploys against N sequential ones
	status    bool // time ferry status against three blob-less clones
	simulate  bool // run the contention model only
	backoff   time.Duration
	sim       simParams // -simulate's calibration
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
	c.latencies = []time.Duration{0}
	fs.Func("latency", "one-way `delay` the proxies add to every chunk in each direction, or a list to run in turn, e.g. 0,25ms (default 0: loopback)", func(s string) error {
		c.latencies = nil
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			if f == "0" {
				c.latencies = append(c.latencies, 0)
				continue
			}
			d, err := time.ParseDuration(f)
			if err != nil || d < 0 {
				return fmt.Errorf("%q is not a latency such as 25ms", f)
			}
			c.latencies = append(c.latencies, d)
		}
		return nil
	})
	fs.IntVar(&c.writers, "writers", 0, "instead of the tools: time `N` concurrent ferry deploys of different apps to one branch against the same N one after another, -runs rounds of each, interleaved, at the first -apps size and -latency")
	fs.BoolVar(&c.status, "status", false, "instead of the tools: time ferry status on an env repo with branches dev, staging and production (-commits on dev, a third as many promotes on staging, a sixth on production) against 3 blob-less depth-1 clones, one a branch, at each -latency; -apps defaults to 500")
	fs.BoolVar(&c.simulate, "simulate", false, "instead of the tools: run the contention model of one branch (see -writers) and print its predictions; calibrate it with -push, -fetch, -rtt")
	fs.DurationVar(&c.backoff, "backoff", 0, "the retry backoff the model assumes: 0 is ferry's (linear in the attempt's time); a base models an exponential backoff from it")
	fs.DurationVar(&c.sim.Fetch, "sim-fetch", 150*time.Millisecond, "-simulate: an attempt's fetch and edit, without its round trips")
	fs.DurationVar(&c.sim.Server, "sim-server", 100*time.Millisecond, "-simulate: a push's serialized time at the server")
	fs.DurationVar(&c.sim.Lock, "sim-lock", 0, "-simulate: the serialized part of -sim-server, the ref update (0: all of it)")
	fs.DurationVar(&c.sim.RTT, "sim-rtt", 50*time.Millisecond, "-simulate: the network round trip")
	fs.IntVar(&c.sim.FetchRTs, "sim-fetch-rts", 6, "-simulate: round trips of a fetch")
	fs.IntVar(&c.sim.PushRTs, "sim-push-rts", 2, "-simulate: round trips of a push")
	fs.StringVar(&c.ferry, "ferry", "", "the ferry `binary` to time (default: build ./cmd/ferry, static and stripped)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: go run ./bench/envbench [flags]\n\n"+
			"Times one deploy to a synthetic env repo three ways: git clone, sed and push (A); a blobless\n"+
			"sparse clone (B); ferry deploy (F); or, with -status, ferry status against three blob-less\n"+
			"clones. Prints a Markdown table; see docs/benchmarks.md.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	appsSet := false
	fs.Visit(func(f *flag.Flag) { appsSet = appsSet || f.Name == "apps" })
	if c.status && c.writers > 0 {
		return c, fmt.Errorf("-status and -writers are modes of their own; give one")
	}
	if c.status && !appsSet {
		c.apps = []int{500}
	}
	if c.writers > 0 || c.status {
		c.apps = c.apps[:1]
	}
	if c.runs < 1 || c.commits < 0 || c.writers < 0 {
		return c, fmt.Errorf("-runs must be at least 1 and -commits at least 0")
	}
	return c, nil
}

// sample is one timed run of one tool.
type sample struct {
	App     string        `json:"app"`
	Latency time.Duration `json:"latency_ns"`
	usage
	// GitNet and RegNet are counted by the proxies, on the wire.
	GitNet      netCount `json:"git_net"`
	RegNet      netCount `json:"registry_net"`
	GitBytes    int64    `json:"git_bytes"`
	GitRequests int64    `json:"git_requests"`
	RegBytes    int64    `json:"registry_bytes"`
	RegRequests int64    `json:"registry_requests"`
}

// result is every sample of one tool at one size.
type result struct {
	Apps    int           `json:"apps"`
	Tool    string        `json:"tool"`
	Latency time.Duration `json:"latency_ns"`
	Samples []sample      `json:"samples"`
}

// bench is what the runs share: servers, the ferry binary, the scratch
// directory and the environment of every command timed.
type bench struct {
	cfg      config
	log      *slog.Logger
	tmp      string
	ferry    string
	git, reg *server
	// gitP and regP are the proxies in front of them, through which every
	// tool reaches them.
	gitP, regP *proxy
	env        []string
	gitRoot    string
	gitHome    string
	writers    *writersReport // -writers
}

func run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.simulate {
		printSimulation(stdout, cfg)
		return nil
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
	if b.gitP, err = newProxy(b.git.Host); err != nil {
		return err
	}
	defer b.gitP.Close()
	if b.regP, err = newProxy(b.reg.Host); err != nil {
		return err
	}
	defer b.regP.Close()

	if cfg.status {
		rep, err := b.statusRun(ctx, cfg.apps[0])
		if err != nil {
			return fmt.Errorf("-status, %d apps: %w", cfg.apps[0], err)
		}
		m := describeMachine(ctx, os.TempDir())
		m.Load = [2]string{loadStart, loadavg()}
		m.Ferry = ferrySource
		if cfg.json {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Machine machine       `json:"machine"`
				Runs    int           `json:"runs"`
				Status  *statusReport `json:"status"`
			}{m, cfg.runs, rep})
		}
		printStatus(stdout, m, cfg, rep)
		return nil
	}
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
	if b.writers != nil {
		if cfg.json {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Machine machine        `json:"machine"`
				Writers *writersReport `json:"writers"`
			}{m, b.writers})
		}
		printWriters(stdout, m, b.writers)
		return nil
	}
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
	base, err := generate(ctx, bare, b.regP.Host, n, b.cfg.commits)
	if err != nil {
		return nil, err
	}
	if !b.cfg.keep {
		defer os.RemoveAll(bare)
	}
	b.log.Info("generated env repo", "apps", n, "files", n*len(appFiles), "commits", b.cfg.commits+1, "took", time.Since(start).Round(time.Millisecond))

	if b.cfg.writers > 0 {
		return nil, b.writersRun(ctx, bare, base, n)
	}
	rounds := b.cfg.runs + 1 // round 0 warms up and is not counted
	lats := b.cfg.latencies
	results := make([]result, len(lats)*len(tools))
	for li, lat := range lats {
		for i, t := range tools {
			results[li*len(tools)+i] = result{Apps: n, Tool: t.Name, Latency: lat}
		}
	}
	for r := range rounds {
		app := appName(n, runApp(n, r, rounds))
		d := b.deployOf(bare, app, "v2")
		digest, err := pushImage(ctx, b.reg.Host+"/team/"+app+":v2", int64(n)<<20+int64(r))
		if err != nil {
			return nil, err
		}
		for li, lat := range lats {
			b.gitP.setLatency(lat)
			b.regP.setLatency(lat)
			for i, t := range tools {
				s, err := b.once(ctx, bare, base, d, digest, t, fmt.Sprintf("%d-%d-%d-%d", n, r, li, i))
				if err != nil {
					return nil, fmt.Errorf("%s, %s, latency %v: %w", t.Name, app, lat, err)
				}
				s.Latency = lat
				b.log.Info("run", "apps", n, "round", r, "latency", lat, "tool", t.Name, "app", app, "wall", s.Wall.Round(time.Millisecond), "cpu", s.CPU.Round(time.Millisecond),
					"tree_rss_mib", s.TreeRSSKiB>>10, "git_requests", s.GitNet.Requests, "git_conns", s.GitNet.Conns,
					"down_kib", (s.GitNet.Down+s.RegNet.Down)>>10, "up_kib", (s.GitNet.Up+s.RegNet.Up)>>10, "registry_requests", s.RegNet.Requests)
				if r > 0 {
					results[li*len(tools)+i].Samples = append(results[li*len(tools)+i].Samples, s)
				}
			}
		}
	}
	return results, nil
}

// deployOf is the deploy of tag to app, through the proxies.
func (b *bench) deployOf(bare, app, tag string) deploy {
	return deploy{
		URL:   "http://" + b.gitP.Host + "/" + filepath.Base(bare),
		Path:  "apps/" + app,
		Tag:   tag,
		Image: b.regP.Host + "/team/" + app + ":" + tag,
	}
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
	b.gitP.reset()
	b.regP.reset()
	u, err := measure(ctx, dir, b.env, t.steps(d, b.ferry))
	s := sample{App: filepath.Base(d.Path), usage: u}
	s.GitBytes, s.GitRequests = b.git.reset()
	s.RegBytes, s.RegRequests = b.reg.reset()
	s.GitNet, s.RegNet = b.gitP.reset(), b.regP.reset()
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
