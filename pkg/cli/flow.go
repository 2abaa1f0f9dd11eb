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
	From             string  `help:"Environment branch to promote from, e.g. candidate; with a ferry.yaml, an environment it names (default: the one before --to)." env:"FERRY_FROM" placeholder:"E1"`
	To               string  `help:"Environment branch to update, e.g. production; with a ferry.yaml, an environment it names." env:"FERRY_TO" placeholder:"E2"`
	Commit           string  `help:"Commit on --from to promote (default: its tip). Must be on --from's history." env:"FERRY_COMMIT" placeholder:"SHA"`
	Path             pathArg `help:"Directory to update ('.', the default, for the whole branch); nothing outside it changes. With a ferry.yaml and --app, --to's directory for the app." env:"FERRY_PATH" placeholder:"DIR"`
	FromPath         string  `help:"Directory to read on --from when it is not --path (environments as directories, e.g. envs/staging/hello to envs/production/hello)." env:"FERRY_FROM_PATH" placeholder:"DIR"`
	FromRepo         string  `help:"Env repo to read --from in when it is not --repo (production in a repo of its own); reached with --repo's credentials." env:"FERRY_FROM_REPO" placeholder:"URL|PATH"`
	Carry            string  `help:"What to carry: tree (the directory whole, as the source has it) or images (only the image pins, written into the target's own fields; every other byte of it stays). Default: tree, or what the ferry.yaml says (images where environments are directories)." enum:"tree,images," default:"" env:"FERRY_CARRY" placeholder:"tree|images"`
	App              string  `help:"App name for the audit trail (default: the last element of --path)." env:"FERRY_APP" placeholder:"NAME"`
	OverrideRollback bool    `help:"Promote even though a rollback on --to holds --path (rolled back there, inside it, or in a scope containing it). It lifts the holds on the scopes --path contains, recorded as Ferry-Override-Rollback." env:"FERRY_OVERRIDE_ROLLBACK"`
	DryRun           bool    `help:"Print the diff that would be committed; push nothing." env:"FERRY_DRY_RUN"`
	RequireSigned    bool    `help:"Refuse to promote a source commit whose signature does not verify against --allowed-signers or --keyring: exit 1, nothing written." env:"FERRY_REQUIRE_SIGNED"`

	RemoteFlags `embed:""`
	HookFlags   `embed:""`
	FanOutFlags `embed:""`

	PullRequestFlags `embed:""`
}

// Run promotes.
func (c *PromoteCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.writeEnv()
	if err != nil {
		return err
	}
	if c.RequireSigned {
		if e.Verifier, err = g.verifier("--require-signed"); err != nil {
			return err
		}
	}
	if err := c.RemoteFlags.apply(&e); err != nil {
		return err
	}
	req := ferry.PromoteRequest{
		From: c.From, To: c.To, Commit: c.Commit, Path: c.Path.value(), FromPath: c.FromPath, FromRepo: c.FromRepo, Carry: c.Carry,
		App: c.App, OverrideRollback: c.OverrideRollback, DryRun: c.DryRun,
	}
	var repos []string
	policy := false
	if g.wantsConfig(c.App, c.Path.set) {
		pr, to, ok, err := g.promotion(ctx, e, c.App, c.From, c.To, c.Path, c.FromPath, c.FromRepo, c.Carry)
		if err != nil {
			return err
		}
		if ok {
			pr.Commit, pr.OverrideRollback, pr.DryRun = req.Commit, req.OverrideRollback, req.DryRun
			req, repos, policy = pr, to.repos, to.pullRequest
		}
	}
	req.RequireSigned = c.RequireSigned
	ev := baseEvent(g, "promote", or(req.ToEnv, req.To), req.App, cleanPath(req.Path))
	return g.writeTo(ctx, &c.HookFlags, &c.FanOutFlags, &c.PullRequestFlags, policy, ev, c.DryRun, e, repos, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
		return ferry.Promote(ctx, e, req)
	})
}

// RollbackCmd is `ferry rollback`.
type RollbackCmd struct {
	Env    string  `help:"Environment branch to roll back, e.g. production; with a ferry.yaml, an environment it names." env:"FERRY_ENV" placeholder:"E"`
	To     string  `help:"Commit of --env whose state of --path to restore." env:"FERRY_ROLLBACK_TO" placeholder:"SHA" xor:"target"`
	Steps  *int    `help:"Go back N distinct states of --path (commits that did not change it do not count; default 1)." env:"FERRY_STEPS" placeholder:"N" xor:"target"`
	Path   pathArg `help:"Directory to roll back ('.', the default, for the whole branch). With a ferry.yaml and --app, the environment's directory for the app." env:"FERRY_PATH" placeholder:"DIR"`
	App    string  `help:"App name for the audit trail (default: the last element of --path)." env:"FERRY_APP" placeholder:"NAME"`
	DryRun bool    `help:"Print the diff that would be committed; push nothing." env:"FERRY_DRY_RUN"`

	RemoteFlags `embed:""`
	HookFlags   `embed:""`
	FanOutFlags `embed:""`

	PullRequestFlags `embed:""`
}

// Run rolls back.
func (c *RollbackCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.writeEnv()
	if err != nil {
		return err
	}
	if err := c.RemoteFlags.apply(&e); err != nil {
		return err
	}
	req := ferry.RollbackRequest{Env: c.Env, To: c.To, Path: c.Path.value(), App: c.App, DryRun: c.DryRun}
	if c.Steps != nil {
		req.Steps, req.StepsSet = *c.Steps, true
	}
	var repos []string
	policy := false
	if g.wantsConfig(c.App, c.Path.set) {
		p, ok, err := g.placeOf(ctx, e, c.Env, c.App, c.Path)
		if err != nil {
			return err
		}
		if ok {
			req.Env, req.EnvName, req.Path, req.App, repos, policy = p.branch, p.name, p.path, p.app, p.repos, p.pullRequest
		}
	}
	ev := baseEvent(g, "rollback", or(req.EnvName, req.Env), req.App, cleanPath(req.Path))
	return g.writeTo(ctx, &c.HookFlags, &c.FanOutFlags, &c.PullRequestFlags, policy, ev, c.DryRun, e, repos, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
		return ferry.Rollback(ctx, e, req)
	})
}

// HistoryCmd is `ferry history`.
type HistoryCmd struct {
	Env   string  `help:"Environment branch whose history to show; with a ferry.yaml, an environment it names." env:"FERRY_ENV" placeholder:"E"`
	Path  pathArg `help:"Only commits that changed this directory (default '.', all of them). With a ferry.yaml and --app, the environment's directory for the app." env:"FERRY_PATH" placeholder:"DIR"`
	App   string  `help:"With a ferry.yaml: the app whose directory to show." env:"FERRY_APP" placeholder:"NAME"`
	Limit int     `help:"At most this many commits." default:"20" env:"FERRY_LIMIT" placeholder:"N"`
	// Verify is here and the keys are global: a pipeline sets the keys
	// once, and asks for the check where it wants it.
	Verify bool `help:"Check each commit's signature against --allowed-signers (SSH) and --keyring (OpenPGP): a SIGNATURE column (verified ssh alice@example.com, unsigned, BAD ...), in JSON each entry's signature." env:"FERRY_VERIFY"`
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
	if c.Verify {
		if e.Verifier, err = g.verifier("--verify"); err != nil {
			return err
		}
	}
	req := ferry.HistoryRequest{Env: c.Env, Path: c.Path.value(), Limit: c.Limit, Verify: c.Verify}
	if g.wantsConfig(c.App, c.Path.set) {
		p, ok, err := g.placeOf(ctx, e, c.Env, c.App, c.Path)
		if err != nil {
			return err
		}
		if ok {
			repo, err := p.single("environment")
			if err != nil {
				return err
			}
			req.Env, req.Path, e = p.branch, p.path, withRepo(e, repo)
		}
	}
	entries, err := ferry.History(ctx, e, req)
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
	From     string  `help:"Environment branch a promote would carry from, e.g. candidate; with a ferry.yaml, an environment it names (default: the one before --to)." env:"FERRY_FROM" placeholder:"E1"`
	To       string  `help:"Environment branch a promote would update, e.g. production; with a ferry.yaml, an environment it names." env:"FERRY_TO" placeholder:"E2"`
	Path     pathArg `help:"Directory to compare ('.', the default, for the whole branch). With a ferry.yaml and --app, --to's directory for the app." env:"FERRY_PATH" placeholder:"DIR"`
	App      string  `help:"With a ferry.yaml: the app to compare." env:"FERRY_APP" placeholder:"NAME"`
	FromPath string  `help:"Directory to read on --from when it is not --path, as for promote." env:"FERRY_FROM_PATH" placeholder:"DIR"`
	FromRepo string  `help:"Env repo to read --from in when it is not --repo, as for promote." env:"FERRY_FROM_REPO" placeholder:"URL|PATH"`
	Carry    string  `help:"What the promote would carry: tree or images, as for promote." enum:"tree,images," default:"" env:"FERRY_CARRY" placeholder:"tree|images"`
	ExitCode bool    `help:"Exit 1 when there are differences, like git diff --exit-code."`
	Patch    bool    `help:"Also print the unified diff of the files."`
}

// Run prints the diff.
func (c *DiffCmd) Run(ctx context.Context, g *Globals) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	req := ferry.DiffRequest{From: c.From, To: c.To, Path: c.Path.value(), FromPath: c.FromPath, FromRepo: c.FromRepo, Carry: c.Carry}
	if g.wantsConfig(c.App, c.Path.set) {
		pr, dst, ok, err := g.promotion(ctx, e, c.App, c.From, c.To, c.Path, c.FromPath, c.FromRepo, c.Carry)
		if err != nil {
			return err
		}
		if ok {
			to, err := dst.single("the target environment")
			if err != nil {
				return err
			}
			e = withRepo(e, to)
			req = ferry.DiffRequest{From: pr.From, To: pr.To, Path: pr.Path, FromPath: pr.FromPath, FromRepo: pr.FromRepo, FromEnv: pr.FromEnv, ToEnv: pr.ToEnv, Carry: pr.Carry}
		}
	}
	res, err := ferry.Diff(ctx, e, req)
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
