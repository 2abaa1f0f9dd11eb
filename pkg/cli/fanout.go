package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/notify"
)

// FanOutFlags bound a write to several env repos (repeated --repo, or an
// environment a ferry.yaml puts in several): Fleet's lesson, bounded
// workers and jittered starts, every target reported.
type FanOutFlags struct {
	Parallel int           `help:"With several env repos: how many to write at once." default:"4" env:"FERRY_PARALLEL" placeholder:"N"`
	Jitter   time.Duration `help:"With several env repos: start each after a random delay below this, so many pipelines do not reach one git host in lockstep." default:"250ms" env:"FERRY_JITTER" placeholder:"DURATION"`
}

// fanOut writes to each of repos, at most --parallel at a time, each with
// its own compare-and-swap and retries, and reports every one: exit 0 when
// all succeeded, 1 when any failed (the others stand; the report says
// which landed). Hooks fire once a target, its repo in the event.
func (g *Globals) fanOut(ctx context.Context, h *HookFlags, f *FanOutFlags, base notify.Event, dryRun bool, e ferry.Env, repos []string, run func(context.Context, ferry.Env) (*ferry.Report, error)) error {
	if f.Parallel < 1 {
		return fmt.Errorf("%w: --parallel %d: must be at least 1", errUsage, f.Parallel)
	}
	if f.Jitter < 0 {
		return fmt.Errorf("%w: --jitter %s: must not be negative", errUsage, f.Jitter)
	}
	d, err := h.dispatcher(g)
	if err != nil {
		return err
	}
	// Every target is opened first: a URL that cannot be one is a usage
	// error before anything is written, and each target keeps its own.
	remotes := map[string]envrepo.Remote{}
	targets := make([]ferry.Target, len(repos))
	for i, url := range repos {
		r, err := envrepo.Open(url, g.remoteOptions()...)
		if err != nil {
			return fmt.Errorf("%w: env repo %s: %v", errUsage, envrepo.Redact(url), err)
		}
		remotes[url], targets[i] = r, ferry.Target{URL: url}
	}
	e.RemoteFor = func(url string) envrepo.Remote {
		if r, ok := remotes[url]; ok {
			return r
		}
		return g.remoteFor(url)
	}
	wctx := ctx
	if dl, ok := ctx.Deadline(); ok && !dryRun && len(d.Hooks) > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, dl.Add(-hookReserve(g.Timeout)))
		defer cancel()
	}
	rep, runErr := ferry.FanOut(wctx, e, targets, ferry.FanOutOptions{Parallel: f.Parallel, Jitter: f.Jitter}, run)
	var fe *ferry.FieldError
	if errors.As(runErr, &fe) {
		return runErr
	}
	if rep == nil {
		return runErr
	}
	if rep.Action == "" {
		rep.Action = base.Action
	}
	if g.Output == "json" {
		if err := g.printJSON(rep); err != nil {
			return err
		}
	} else {
		ferry.WriteFanOut(g.stdout, rep)
	}
	if !dryRun {
		var hookErrs []error
		for _, t := range rep.Targets {
			ev := base
			ev.Repo = t.Repo
			var terr error
			if t.Error != "" {
				terr = errors.New(t.Error)
			}
			if err := d.Fire(ctx, event(ev, t.Report, terr)); err != nil {
				hookErrs = append(hookErrs, err)
			}
		}
		if len(hookErrs) > 0 {
			if h.StrictHooks && runErr == nil {
				fmt.Fprintf(g.stderr, "ferry: a hook failed (the pushes stand): %v\n", errors.Join(hookErrs...))
				return errSilentExit{ExitHooks}
			}
			g.logger().Warn("a hook failed; the pushes stand", "error", errors.Join(hookErrs...))
		}
	}
	if runErr != nil {
		// The report is out; the message says how many.
		fmt.Fprintf(g.stderr, "ferry: %d of %d env repos failed; the other %d stand (see the report)\n", rep.Failed, len(rep.Targets), rep.Succeeded)
		return errSilentExit{ExitError}
	}
	return nil
}
