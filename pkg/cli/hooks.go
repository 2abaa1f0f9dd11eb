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
	HookTimeout   time.Duration `help:"Time limit for each attempt of each hook (default 10s for webhooks, 60s for exec hooks; the exec hook's whole process group is killed)." env:"FERRY_HOOK_TIMEOUT" placeholder:"DURATION"`
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

// write runs a write command and then its hooks and CI outputs. Hooks never
// undo the write; their failure changes the exit status only with
// --strict-hooks.
func (g *Globals) write(ctx context.Context, h *HookFlags, base notify.Event, dryRun bool, run func() (*ferry.Report, error)) error {
	d, err := h.dispatcher(g)
	if err != nil {
		return err
	}
	rep, runErr := run()
	ev := event(base, rep, runErr)
	if runErr == nil {
		if err := g.printReport(rep); err != nil {
			return err
		}
	}
	if dryRun {
		return runErr
	}
	// Hooks get their own time: a run that used up --timeout must still
	// be able to report that it failed.
	hctx := context.WithoutCancel(ctx)
	var hookErrs []error
	if err := notify.GitHub(g.getenv, ev); err != nil {
		hookErrs = append(hookErrs, fmt.Errorf("writing GitHub Actions outputs: %w", err))
	}
	if err := d.Fire(hctx, ev); err != nil {
		hookErrs = append(hookErrs, err)
	}
	if runErr != nil {
		return runErr
	}
	if len(hookErrs) > 0 {
		err := errors.Join(hookErrs...)
		what := "nothing was pushed"
		if rep.Changed {
			what = "the push of " + rep.Commit + " stands"
		}
		if h.StrictHooks {
			fmt.Fprintf(g.stderr, "ferry: a hook failed (%s): %v\n", what, err)
			return errSilentExit{ExitHooks}
		}
		g.logger().Warn("a hook failed; "+what, "error", err)
	}
	return nil
}

func event(ev notify.Event, rep *ferry.Report, err error) notify.Event {
	ev.Time = time.Now().UTC()
	ev.Images = []notify.Image{}
	if err != nil {
		ev.Result = notify.OnFailure
		ev.Error = err.Error()
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
	for _, i := range rep.Images {
		ev.Images = append(ev.Images, notify.Image{Name: i.Name, Tag: i.Tag, Digest: i.Digest, Ref: i.Ref})
	}
	return ev
}

func baseEvent(g *Globals, action, env, app, path string) notify.Event {
	return notify.Event{Action: action, Env: env, App: app, Path: path, Repo: envrepo.Redact(g.Repo)}
}
