package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferrycd/ferry/pkg/notify"
	"io/fs"
	"os"
	"strings"

	"github.com/ferrycd/ferry/pkg/config"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
)

// A command finds its environments in one of two ways. From flags alone, as
// always: --env (or --from, --to) names a branch, --path a directory,
// --repo the env repo. Or from a ferry.yaml: when --config is given, or when
// --app is given without --path, the environments are read from --config,
// else from ferry.yaml at the root of the env repo's default branch; then
// --env, --from and --to name environments, the app's directory is the
// environment's template with {app} filled in, and an environment may live
// in another repo or several. Flags given beside a ferry.yaml override
// what it says (--path, --carry, --from-path, --from-repo).

// place is where a command reads or writes one environment.
type place struct {
	name   string   // the environment's name ("" from flags alone)
	app    string   // --app, or the config's one app when it names one
	repos  []string // env repo URLs; empty means --repo
	branch string
	path   string
	carry  string // what a promote into it carries, from the config
	// pullRequest: the environment's policy writes through pull requests.
	pullRequest bool
}

// wantsConfig reports whether a command finds its environments in a
// ferry.yaml: --config, or --app without --path.
func (g *Globals) wantsConfig(app string, pathSet bool) bool {
	return g.Config != "" || app != "" && !pathSet
}

// pathArg is --path: a directory, and whether it was given at all (an
// empty one is refused as ever, not taken for the default).
type pathArg struct {
	dir string
	set bool
}

// UnmarshalText is how kong sets it, from the flag or its variable.
func (p *pathArg) UnmarshalText(b []byte) error {
	p.dir, p.set = string(b), true
	return nil
}

// value is the directory, "." (the whole branch) when not given.
func (p pathArg) value() string {
	if !p.set {
		return "."
	}
	return p.dir
}

// findConfig is loadConfig for a write or a read that works from flags
// when there is no ferry.yaml: without --config, an env repo that has none
// gives (nil, nil), and the command goes on as it always did (--app beside
// a whole-branch --path, as before ferry.yaml existed).
func (g *Globals) findConfig(ctx context.Context, e ferry.Env, app string) (*config.Config, error) {
	c, err := g.loadConfig(ctx, e, app)
	if g.Config == "" && errors.Is(err, errNoConfig) {
		g.logger().Debug("no ferry.yaml in the env repo; working from flags", "repo", e.Remote.String())
		return nil, nil
	}
	return c, err
}

// errNoConfig: the env repo's default branch has no ferry.yaml.
var errNoConfig = errors.New("no " + config.FileName)

// loadConfig reads --config, or ferry.yaml at the root of the env repo's
// default branch.
func (g *Globals) loadConfig(ctx context.Context, e ferry.Env, app string) (*config.Config, error) {
	if g.Config != "" {
		c, err := config.Load(g.Config)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: --config %s: no such file", errUsage, g.Config)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		g.redactRepos(c)
		g.cfg = c
		return c, nil
	}
	data, err := envrepo.ReadFile(ctx, e.Remote, "", config.FileName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w: %s declares no environments (no %s at the root of its default branch); give --env and --path, or --config FILE", errUsage, errNoConfig, e.Remote, config.FileName)
	}
	if err != nil {
		return nil, err
	}
	c, err := config.Parse(config.FileName, data)
	if err != nil {
		return nil, fmt.Errorf("%w: in %s: %v", errUsage, e.Remote, err)
	}
	g.redactRepos(c)
	if err := g.coverConfig(ctx, c); err != nil {
		return nil, err
	}
	g.cfg = c
	return c, nil
}

// redactRepos keeps the passwords of the repo URLs c names out of every
// output.
func (g *Globals) redactRepos(c *config.Config) {
	if g.red == nil {
		return
	}
	for _, env := range c.Environments {
		for _, u := range env.Repos {
			if _, _, pass := envrepo.SplitCredentials(u); pass != "" {
				g.red.add(pass)
			}
		}
	}
}

// at is where app lives in environment name of c ("" for the first). When
// c names the repo's one app (app:), app may be "" and is that one.
func at(c *config.Config, name, app string) (place, error) {
	app, err := appIn(c, app)
	if err != nil {
		return place{}, err
	}
	env := c.First()
	if name != "" {
		if env, err = c.Env(name); err != nil {
			return place{}, fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	return place{name: env.Name, app: app, repos: env.Repos, branch: env.Branch, path: env.Dir(app), carry: string(env.Carry), pullRequest: env.PullRequest}, nil
}

// appIn is the app a config-mode command works on: --app, which must be
// the repo's one app when c names one (app:), and which that one stands
// in for when not given.
func appIn(c *config.Config, app string) (string, error) {
	if c.App != "" {
		if app != "" && app != c.App {
			return "", fmt.Errorf("%w: --app %s: %s holds one app, %s (its app: key); leave --app out or give --app %s", errUsage, app, c.File, c.App, c.App)
		}
		return c.App, nil
	}
	if err := needApp(app); err != nil {
		return "", err
	}
	if err := config.ValidApp(app); err != nil {
		return "", fmt.Errorf("%w: --app %q: %v", errUsage, app, err)
	}
	return app, nil
}

// before is the environment before name in c's promotion order.
func before(c *config.Config, name, app string) (place, error) {
	prev, err := c.Previous(name)
	if err != nil {
		return place{}, fmt.Errorf("%w: %v; name the source with --from", errUsage, err)
	}
	return at(c, prev.Name, app)
}

// needApp refuses a config-mode command without --app, unless the config
// names the repo's one app.
func needApp(app string) error {
	if app == "" {
		return fmt.Errorf("%w: --app is required with --config: it picks the app's directory in each environment (a ferry.yaml whose paths lack {app} names its one app with app:)", errUsage)
	}
	return nil
}

// single is the one repo a command reads at p: an environment that fans out
// to several repos has no single one to read.
func (p place) single(what string) (string, error) {
	switch len(p.repos) {
	case 0:
		return "", nil
	case 1:
		return p.repos[0], nil
	}
	return "", fmt.Errorf("%w: %s %s lives in %d repos (%s); name the one with --repo", errUsage, what, p.name, len(p.repos), strings.Join(redactAll(p.repos), ", "))
}

func redactAll(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = envrepo.Redact(u)
	}
	return out
}

// withRepo returns e writing to url ("" keeps --repo).
func withRepo(e ferry.Env, url string) ferry.Env {
	if url != "" && e.RemoteFor != nil {
		e.Remote = e.RemoteFor(url)
	}
	return e
}

// placeOf is where a command on one environment (deploy, rollback, history) works,
// from a ferry.yaml: environment name of it, --app's directory there, or
// --path when given.
func (g *Globals) placeOf(ctx context.Context, e ferry.Env, name, app string, path pathArg) (place, bool, error) {
	cfg, err := g.findConfig(ctx, e, app)
	if err != nil || cfg == nil {
		return place{}, false, err
	}
	p, err := at(cfg, name, app)
	if err != nil {
		return place{}, false, err
	}
	if path.set {
		p.path = path.dir
	}
	return p, true, nil
}

// writeTo runs a write on the env repo at each of repos (none: --repo):
// one through write, as ever; several fanned out (fanout.go).
func (g *Globals) writeTo(ctx context.Context, h *HookFlags, f *FanOutFlags, pr *PullRequestFlags, policy bool, ev notify.Event, dryRun bool, e ferry.Env, repos []string, run func(context.Context, ferry.Env) (*ferry.Report, error)) error {
	if len(repos) == 0 && len(g.Repo) > 1 {
		repos = g.Repo // --repo repeated
	}
	on := pr.PullRequest || policy
	if err := pr.check(on); err != nil {
		return err
	}
	if pr.VerifiedCommits && !dryRun {
		if on {
			return fmt.Errorf("%w: --verified-commits and pull requests do not go together yet: the API cannot force ferry's head branch back onto the base", errUsage)
		}
		first := e.Remote.URL
		if len(repos) > 0 {
			first = repos[0]
		}
		if _, err := pr.commits(g, first); err != nil {
			return err
		}
		inner := run
		run = func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
			gc, err := pr.commits(g, e.Remote.URL)
			if err != nil {
				return nil, err
			}
			e.Commits = gc
			return inner(ctx, e)
		}
	}
	if on && !dryRun {
		// Each repo its own pull request; the flags are checked now,
		// against the first, so a mistake is a usage error before any
		// write.
		first := e.Remote.URL
		if len(repos) > 0 {
			first = repos[0]
		}
		if _, err := pr.options(g, first); err != nil {
			return err
		}
		inner := run
		run = func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
			opts, err := pr.options(g, e.Remote.URL)
			if err != nil {
				return nil, err
			}
			e.PullRequest = opts
			return inner(ctx, e)
		}
	}
	base := e
	var err error
	if len(repos) > 1 {
		err = g.fanOut(ctx, h, f, ev, dryRun, e, repos, run)
	} else {
		if len(repos) == 1 {
			e = withRepo(e, repos[0])
			ev.Repo = envrepo.Redact(repos[0])
		}
		err = g.write(ctx, h, ev, dryRun, func(ctx context.Context) (*ferry.Report, error) { return run(ctx, e) })
	}
	if err == nil && !dryRun {
		g.summarize(ctx, base, ev.App)
	}
	return err
}

// summarize appends, in GitHub Actions, the app's status across the
// environments of the ferry.yaml to the job summary ($GITHUB_STEP_SUMMARY),
// after the write's own section. It needs a ferry.yaml (environments to
// show) and costs one blob-less read of each; a failure is a warning, the
// write stands.
func (g *Globals) summarize(ctx context.Context, e ferry.Env, app string) {
	file := g.getenv("GITHUB_STEP_SUMMARY")
	if file == "" || g.cfg == nil || app == "" {
		return
	}
	rep, err := ferry.Status(ctx, e, ferry.StatusRequest{Config: g.cfg, Apps: []string{app}})
	if err == nil {
		var b strings.Builder
		fmt.Fprintf(&b, "\n#### %s across environments\n\n", app)
		ferry.WriteStatusMarkdown(&b, rep)
		err = appendFile(file, b.String())
	}
	if err != nil {
		g.logger().Warn("writing the status to the job summary", "error", err)
	}
}

func appendFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// promotion is where a promote (or its diff) of app reads and writes, from
// a ferry.yaml: to, and from (default: the environment before to), with
// the flags given beside the file overriding it. It returns the request's
// places and the repos the target lives in.
func (g *Globals) promotion(ctx context.Context, e ferry.Env, app, fromName, toName string, path pathArg, fromPath, fromRepo, carry string) (ferry.PromoteRequest, place, bool, error) {
	var req ferry.PromoteRequest
	cfg, err := g.findConfig(ctx, e, app)
	if err != nil || cfg == nil {
		return req, place{}, false, err
	}
	if toName == "" {
		return req, place{}, false, fmt.Errorf("%w: --to is required: the environment to update", errUsage)
	}
	to, err := at(cfg, toName, app)
	if err != nil {
		return req, place{}, false, err
	}
	from, err := before(cfg, toName, app)
	if fromName != "" {
		from, err = at(cfg, fromName, app)
	}
	if err != nil {
		return req, place{}, false, err
	}
	src, err := from.single("the source environment")
	if err != nil {
		return req, place{}, false, err
	}
	req = ferry.PromoteRequest{
		App:  to.app,
		From: from.branch, To: to.branch, FromEnv: from.name, ToEnv: to.name,
		FromPath: from.path, Path: to.path, Carry: to.carry,
		// The source is --repo unless the config puts it elsewhere; said
		// outright, since the target may be another repo.
		FromRepo: or(src, e.Remote.URL),
	}
	if path.set {
		req.Path = path.dir
	}
	if fromPath != "" {
		req.FromPath = fromPath
	}
	if fromRepo != "" {
		req.FromRepo = fromRepo
	}
	if carry != "" {
		req.Carry = carry
	}
	return req, to, true, nil
}
