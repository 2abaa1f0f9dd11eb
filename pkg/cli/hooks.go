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

// ExitHooks is the status when the write succeeded but a hook or
// notification failed and --strict-hooks was given.
const ExitHooks = 3

// HookFlags are what runs after a write: git-sync's lesson, built in, so no
// curl or shell is needed in the image.
type HookFlags struct {
	NotifyWebhook []string      `help:"POST a JSON report of the run to this URL (repeatable); success is any 2xx, with retries." env:"FERRY_NOTIFY_WEBHOOK" placeholder:"URL"`
	NotifySlack   []string      `help:"Post the run to this Slack incoming-webhook URL (repeatable). The URL is a secret and is never printed." env:"FERRY_NOTIFY_SLACK" placeholder:"URL"`
	ExecHook      []string      `help:"Run this program after the run (repeatable; no shell): it gets FERRY_ACTION, FERRY_RESULT, FERRY_COMMIT, FERRY_IMAGES, FERRY_EVENT (JSON) and more in its environment, and inherits ferry's." env:"FERRY_EXEC_HOOK" placeholder:"PROGRAM" sep:"none"`
	HookTimeout   time.Duration `help:"Time limit for each attempt of each hook (default 10s for webhooks, 60s for exec hooks; the exec hook's whole process group is killed). All hooks together still end by --timeout, and a signal stops them at once." env:"FERRY_HOOK_TIMEOUT" placeholder:"DURATION"`
	NotifyOn      []string      `help:"Which results fire the hooks: success (a commit was pushed), noop, failure." enum:"success,noop,failure" default:"success" env:"FERRY_NOTIFY_ON"`
	StrictHooks   bool          `help:"Exit with status 3 when a hook fails (the push stands either way)." env:"FERRY_STRICT_HOOKS"`
}

func (h *HookFlags) dispatcher(g *Globals) (*notify.Dispatcher, error) {
	var opts []notify.Option
	opts = append(opts, notify.WithLogger(g.logger()))
	if h.HookTimeout < 0 {
		return nil, fmt.Errorf("%w: --hook-timeout %s: must be positive", errUsage, h.HookTimeout)
	}
	if h.HookTimeout > 0 {
		opts = append(opts, notify.WithTimeout(h.HookTimeout))
	}
	d := &notify.Dispatcher{On: h.NotifyOn, Logger: g.logger()}
	for _, u := range h.NotifyWebhook {
		if err := notify.CheckURL(u); err != nil {
			return nil, fmt.Errorf("%w: --notify-webhook: %v", errUsage, err)
		}
		d.Hooks = append(d.Hooks, notify.Webhook(u, opts...))
	}
	for _, u := range h.NotifySlack {
		if err := notify.CheckURL(u); err != nil {
			return nil, fmt.Errorf("%w: --notify-slack: %v", errUsage, err)
		}
		d.Hooks = append(d.Hooks, notify.Slack(u, opts...))
	}
	for _, p := range h.ExecHook {
		if p == "" {
			return nil, fmt.Errorf("%w: --exec-hook is empty", errUsage)
		}
		d.Hooks = append(d.Hooks, notify.Exec([]string{p}, opts...))
	}
	return d, nil
}

// hookReserve is the part of --timeout that the write leaves to the hooks
// when there are some: a tenth, at most 10s.
func hookReserve(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return 0
	}
	return min(timeout/10, 10*time.Second)
}

// write runs a write command and then its hooks and CI outputs. Hooks never
// undo the write; their failure changes the exit status only with
// --strict-hooks.
//
// ctx bounds everything, hooks included: a signal stops the hooks at once
// (exit 1, saying whether a push stands), and --timeout ends the run, the
// hooks with it. When hooks are configured, the write gets --timeout less
// hookReserve, so that a write that runs out of time can still report its
// failure; the hooks run in what is left.
func (g *Globals) write(ctx context.Context, h *HookFlags, base notify.Event, dryRun bool, run func(context.Context) (*ferry.Report, error)) error {
	d, err := h.dispatcher(g)
	if err != nil {
		return err
	}
	wctx, reserve := ctx, time.Duration(0)
	if dl, ok := ctx.Deadline(); ok && !dryRun && len(d.Hooks) > 0 {
		reserve = hookReserve(g.Timeout)
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	rep, runErr := run(wctx)
	if runErr != nil && reserve > 0 && errors.Is(runErr, context.DeadlineExceeded) && ctx.Err() == nil {
		runErr = fmt.Errorf("stopped %s before --timeout, to leave the hooks time: %w", reserve, runErr)
	}
	ev := event(base, rep, runErr)
	// --wait's verdicts come with a report: the pull request is there,
	// it just did not merge.
	prCode, prVerdict := prExit(runErr)
	if runErr == nil || prVerdict && rep != nil {
		if err := g.printReport(rep); err != nil {
			return err
		}
	}
	if dryRun {
		return runErr
	}
	var hookErrs []error
	if err := notify.GitHub(g.getenv, ev); err != nil {
		hookErrs = append(hookErrs, fmt.Errorf("writing GitHub Actions outputs: %w", err))
	}
	if err := d.Fire(ctx, ev); err != nil {
		hookErrs = append(hookErrs, err)
	}
	if prVerdict && rep != nil {
		fmt.Fprintf(g.stderr, "ferry: %v\n", runErr)
		return errSilentExit{prCode}
	}
	if runErr != nil {
		return runErr
	}
	what := "nothing was pushed"
	if rep.Changed {
		what = "the push of " + rep.Commit + " stands"
	}
	if len(d.Hooks) > 0 && d.Fires(ev.Result) && errors.Is(ctx.Err(), context.Canceled) {
		return &errHooksInterrupted{what: what, err: ctx.Err()}
	}
	if len(hookErrs) > 0 {
		err := errors.Join(hookErrs...)
		failed := "a hook failed"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && g.Timeout > 0 {
			failed = "the hooks ran out of --timeout " + g.Timeout.String()
		}
		if h.StrictHooks {
			fmt.Fprintf(g.stderr, "ferry: %s (%s): %v\n", failed, what, err)
			return errSilentExit{ExitHooks}
		}
		g.logger().Warn(failed+"; "+what, "error", err)
	}
	return nil
}

// errHooksInterrupted: a signal stopped the hooks after the write was done.
type errHooksInterrupted struct {
	what string // "the push of ... stands", or "nothing was pushed"
	err  error
}

func (e *errHooksInterrupted) Error() string {
	return "interrupted while the hooks ran; " + e.what + " (" + e.err.Error() + ")"
}

func (e *errHooksInterrupted) Unwrap() error { return e.err }

func event(ev notify.Event, rep *ferry.Report, err error) notify.Event {
	ev.Time = time.Now().UTC()
	ev.Images = []notify.Image{}
	if err != nil {
		ev.Result = notify.OnFailure
		ev.Error = err.Error()
		if rep != nil && rep.PullRequest != nil {
			pr := rep.PullRequest
			ev.PullRequest = &notify.PullRequest{URL: pr.URL, Number: pr.Number, State: string(pr.State), MergeCommit: pr.MergeCommit}
		}
		return ev
	}
	ev.Result = notify.OnNoop
	if rep.Changed {
		ev.Result = notify.OnSuccess
	}
	ev.Env, ev.App, ev.Path = rep.Branch, rep.App, rep.Path
	ev.Commit, ev.Previous = rep.Commit, rep.Parent
	ev.PromotedFrom, ev.RollbackTo = rep.From, rep.RollbackTo
	ev.Files = rep.Files
	if pr := rep.PullRequest; pr != nil {
		ev.PullRequest = &notify.PullRequest{URL: pr.URL, Number: pr.Number, State: string(pr.State), MergeCommit: pr.MergeCommit}
	}
	for _, i := range rep.Images {
		ev.Images = append(ev.Images, notify.Image{Name: i.Name, Tag: i.Tag, Digest: i.Digest, Ref: i.Ref})
	}
	return ev
}

func baseEvent(g *Globals, action, env, app, path string) notify.Event {
	repo := ""
	if len(g.Repo) > 0 {
		repo = envrepo.Redact(g.Repo[0])
	}
	return notify.Event{Action: action, Env: env, App: app, Path: path, Repo: repo}
}
