package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrycd/ferry/pkg/ferry"
)

// RemoteFlags say whether validation may fetch the remote resources a
// kustomization names. Refusing them is the default: otherwise anyone who
// can write the env repo could stall every pipeline on a server that never
// answers, or make ferry reach any host.
type RemoteFlags struct {
	AllowRemoteResources bool          `help:"Let validation fetch the remote resources a kustomization names (http and https files, git bases). By default a kustomization that names one is refused before anything is fetched." env:"FERRY_ALLOW_REMOTE_RESOURCES"`
	RemoteTimeout        time.Duration `help:"With --allow-remote-resources: how long each validation may spend fetching them, from the first one met." default:"${default_remote_timeout}" env:"FERRY_REMOTE_TIMEOUT"`
}

// apply sets the remote-resource policy of e.
func (r *RemoteFlags) apply(e *ferry.Env) error {
	if r.RemoteTimeout <= 0 {
		return fmt.Errorf("%w: --remote-timeout %s: must be positive", errUsage, r.RemoteTimeout)
	}
	e.AllowRemoteResources, e.RemoteTimeout = r.AllowRemoteResources, r.RemoteTimeout
	return nil
}

// PromoteCmd is `ferry promote`.
type PromoteCmd struct {
	From             string `help:"Environment to promote from, e.g. candidate." env:"FERRY_FROM" placeholder:"E1"`
	To               string `help:"Environment to update, e.g. production." env:"FERRY_TO" placeholder:"E2"`
	Commit           string `help:"Commit on --from to promote (default: its tip). Must be on --from's history." env:"FERRY_COMMIT" placeholder:"SHA"`
	Path             string `help:"Directory to promote ('.' for the whole branch); nothing outside it changes." env:"FERRY_PATH" default:"." placeholder:"DIR"`
	App              string `help:"App name for the audit trail (default: the last element of --path)." env:"FERRY_APP" placeholder:"NAME"`
	OverrideRollback bool   `help:"Promote even though a rollback on --to holds --path (rolled back there, inside it, or in a scope containing it). It lifts the holds on the scopes --path contains, recorded as Ferry-Override-Rollback." env:"FERRY_OVERRIDE_ROLLBACK"`
	DryRun           bool   `help:"Print the diff that would be committed; push nothing." env:"FERRY_DRY_RUN"`

	RemoteFlags `embed:""`
	HookFlags   `embed:""`
}

// Run promotes.
func (c *PromoteCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	if err := c.RemoteFlags.apply(&e); err != nil {
		return err
	}
	return g.write(ctx, &c.HookFlags, baseEvent(g, "promote", c.To, c.App, cleanPath(c.Path)), c.DryRun, func(ctx context.Context) (*ferry.Report, error) {
		return ferry.Promote(ctx, e, ferry.PromoteRequest{
			From: c.From, To: c.To, Commit: c.Commit, Path: c.Path, App: c.App, OverrideRollback: c.OverrideRollback, DryRun: c.DryRun,
		})
	})
}

// RollbackCmd is `ferry rollback`.
type RollbackCmd struct {
	Env    string `help:"Environment to roll back, e.g. production." env:"FERRY_ENV" placeholder:"E"`
	To     string `help:"Commit of --env whose state of --path to restore." env:"FERRY_ROLLBACK_TO" placeholder:"SHA" xor:"target"`
	Steps  *int   `help:"Go back N distinct states of --path (commits that did not change it do not count; default 1)." env:"FERRY_STEPS" placeholder:"N" xor:"target"`
	Path   string `help:"Directory to roll back ('.' for the whole branch)." env:"FERRY_PATH" default:"." placeholder:"DIR"`
	App    string `help:"App name for the audit trail (default: the last element of --path)." env:"FERRY_APP" placeholder:"NAME"`
	DryRun bool   `help:"Print the diff that would be committed; push nothing." env:"FERRY_DRY_RUN"`

	RemoteFlags `embed:""`
	HookFlags   `embed:""`
}

// Run rolls back.
func (c *RollbackCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	if err := c.RemoteFlags.apply(&e); err != nil {
		return err
	}
	req := ferry.RollbackRequest{Env: c.Env, To: c.To, Path: c.Path, App: c.App, DryRun: c.DryRun}
	if c.Steps != nil {
		req.Steps, req.StepsSet = *c.Steps, true
	}
	return g.write(ctx, &c.HookFlags, baseEvent(g, "rollback", c.Env, c.App, cleanPath(c.Path)), c.DryRun, func(ctx context.Context) (*ferry.Report, error) {
		return ferry.Rollback(ctx, e, req)
	})
}

// HistoryCmd is `ferry history`.
type HistoryCmd struct {
	Env   string `help:"Environment whose history to show." env:"FERRY_ENV" placeholder:"E"`
	Path  string `help:"Only commits that changed this directory." env:"FERRY_PATH" default:"." placeholder:"DIR"`
	Limit int    `help:"At most this many commits." default:"20" env:"FERRY_LIMIT" placeholder:"N"`
}

// Run prints the history.
func (c *HistoryCmd) Run(ctx context.Context, g *Globals) error {
	if c.Limit < 1 { // 0 would silently mean 20
		return fmt.Errorf("%w: --limit %d: must be positive", errUsage, c.Limit)
	}
	e, err := g.env()
	if err != nil {
		return err
	}
	entries, err := ferry.History(ctx, e, ferry.HistoryRequest{Env: c.Env, Path: c.Path, Limit: c.Limit})
	if err != nil {
		return err
	}
	if g.Output == "json" {
		return g.printJSON(entries)
	}
	ferry.WriteHistory(g.stdout, entries)
	return nil
}

// DiffCmd is `ferry diff`.
type DiffCmd struct {
	From     string `help:"Environment a promote would carry from, e.g. candidate." env:"FERRY_FROM" placeholder:"E1"`
	To       string `help:"Environment a promote would update, e.g. production." env:"FERRY_TO" placeholder:"E2"`
	Path     string `help:"Directory to compare ('.' for the whole branch)." env:"FERRY_PATH" default:"." placeholder:"DIR"`
	ExitCode bool   `help:"Exit 1 when there are differences, like git diff --exit-code."`
	Patch    bool   `help:"Also print the unified diff of the files."`
}

// Run prints the diff.
func (c *DiffCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	res, err := ferry.Diff(ctx, e, ferry.DiffRequest{From: c.From, To: c.To, Path: c.Path})
	if err != nil {
		return err
	}
	if g.Output == "json" {
		if err := g.printJSON(res); err != nil {
			return err
		}
	} else {
		ferry.WriteDiff(g.stdout, res, c.Patch)
	}
	if c.ExitCode && res.Changed {
		return errSilentExit{1}
	}
	return nil
}

// errSilentExit ends the run with a status and no message (diff
// --exit-code: differences are not an error to report).
type errSilentExit struct{ code int }

func (e errSilentExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }
