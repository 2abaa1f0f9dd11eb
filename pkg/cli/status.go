package cli

import (
	"context"
	"fmt"

	"github.com/ferrycd/ferry/pkg/config"
	"github.com/ferrycd/ferry/pkg/ferry"
)

// StatusCmd is `ferry status`: what runs where.
type StatusCmd struct {
	App    []string `help:"Only this app (repeatable; default: every app found in any environment)." env:"FERRY_APP" placeholder:"NAME"`
	Env    []string `help:"Without a ferry.yaml: the environment branches, in promotion order (repeatable), each with its apps at --path." placeholder:"BRANCH" sep:","`
	Path   string   `help:"Without a ferry.yaml: where each app lives on every --env branch, a template with {app} (and {env}); without {app}, the directory of the one --app." default:"apps/{app}" placeholder:"TEMPLATE"`
	Depth  int      `help:"Commits of each environment to read; what lies further back is not seen." default:"512" env:"FERRY_STATUS_DEPTH" placeholder:"N"`
	Verify bool     `help:"Check the signature of each cell's last change against --allowed-signers (SSH) and --keyring (OpenPGP): signed, unsigned or BAD-signature." env:"FERRY_VERIFY"`
}

// Run prints the status: a table (colour on a terminal), JSON, GitHub
// markdown or one self-contained HTML page, by --output.
func (c *StatusCmd) Run(ctx context.Context, g *Globals) error {
	if c.Depth < 1 {
		return fmt.Errorf("%w: --depth %d: must be at least 1", errUsage, c.Depth)
	}
	e, err := g.env()
	if err != nil {
		return err
	}
	cfg, err := c.config(ctx, g, e)
	if err != nil {
		return err
	}
	if cfg.App != "" {
		for _, a := range c.App {
			if _, err := appIn(cfg, a); err != nil {
				return err
			}
		}
	}
	if c.Verify {
		if e.Verifier, err = g.verifier("--verify"); err != nil {
			return err
		}
	}
	rep, err := ferry.Status(ctx, e, ferry.StatusRequest{Config: cfg, Apps: c.App, Depth: c.Depth, Verify: c.Verify})
	if err != nil {
		return err
	}
	switch g.Output {
	case "json":
		return g.printJSON(rep)
	case "markdown":
		ferry.WriteStatusMarkdown(g.stdout, rep)
		return nil
	case "html":
		return ferry.WriteStatusHTML(g.stdout, rep)
	}
	ferry.WriteStatus(g.stdout, rep, isTerminal(g.rawStdout) && g.getenv("NO_COLOR") == "")
	return nil
}

// config is the environments: --config or the repo's ferry.yaml, or, with
// --env, branches each holding its apps at --path.
func (c *StatusCmd) config(ctx context.Context, g *Globals, e ferry.Env) (*config.Config, error) {
	if len(c.Env) == 0 {
		return g.loadConfig(ctx, e, "")
	}
	if g.Config != "" {
		return nil, fmt.Errorf("%w: --env and --config both given; the environments come from one or the other", errUsage)
	}
	tmpl, err := config.ParseTemplate(c.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: --path: %v", errUsage, err)
	}
	cfg := &config.Config{File: "--env"}
	if !tmpl.HasApp() {
		// The branches hold one app, at --path itself: --app names it.
		if len(c.App) != 1 {
			return nil, fmt.Errorf("%w: --path %s has no {app}: name the one app it holds with --app", errUsage, c.Path)
		}
		if err := config.ValidApp(c.App[0]); err != nil {
			return nil, fmt.Errorf("%w: --app %q: %v", errUsage, c.App[0], err)
		}
		cfg.App = c.App[0]
	}
	seen := map[string]bool{}
	for _, b := range c.Env {
		if seen[b] {
			return nil, fmt.Errorf("%w: --env %s given twice", errUsage, b)
		}
		seen[b] = true
		cfg.Environments = append(cfg.Environments, config.Environment{Name: b, Branch: b, Path: tmpl})
	}
	return cfg, nil
}
