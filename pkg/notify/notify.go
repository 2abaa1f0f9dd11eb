package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Results an Event can have, and a Dispatcher can be set to fire on.
const (
	OnSuccess = "success" // a commit was pushed
	OnNoop    = "noop"    // nothing to change, nothing pushed
	OnFailure = "failure" // the run failed
)

// Image is one image an Event mentions.
type Image struct {
	Name   string `json:"name"` // repository
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest"` // sha256:...
	Ref    string `json:"ref"`    // repo:tag@sha256:..., as written
}

// Event is a finished ferry run, as hooks see it.
type Event struct {
	Action   string   `json:"action"` // deploy, promote, rollback
	Result   string   `json:"result"` // OnSuccess, OnNoop or OnFailure
	Env      string   `json:"env"`    // the branch written (promote: the target)
	App      string   `json:"app,omitempty"`
	Path     string   `json:"path,omitempty"`
	Commit   string   `json:"commit,omitempty"` // the commit pushed
	Previous string   `json:"previousCommit,omitempty"`
	Images   []Image  `json:"images"`
	Files    []string `json:"files,omitempty"`

	SourceRepo   string `json:"sourceRepo,omitempty"`
	SourceCommit string `json:"sourceCommit,omitempty"`
	BuildID      string `json:"buildID,omitempty"`
	BuildURL     string `json:"buildURL,omitempty"`

	PromotedFrom string `json:"promotedFrom,omitempty"` // E1@sha
	RollbackTo   string `json:"rollbackTo,omitempty"`   // the restored commit
	Error        string `json:"error,omitempty"`        // why the run failed
	Repo         string `json:"repo,omitempty"`         // env repo URL, already redacted by the caller
	// PullRequest is the pull request the write went through, if any.
	PullRequest *PullRequest `json:"pullRequest,omitempty"`
	Time        time.Time    `json:"time"`
}

// PullRequest is a write's pull request, as hooks see it.
type PullRequest struct {
	URL         string `json:"url"`
	Number      int    `json:"number"`
	State       string `json:"state"` // open, closed or merged
	MergeCommit string `json:"mergeCommit,omitempty"`
}

// normalized returns ev with an empty (not null) image list.
func (ev Event) normalized() Event {
	if ev.Images == nil {
		ev.Images = []Image{}
	}
	return ev
}

// Hook is one thing to do after a run.
type Hook interface {
	// Name says what the hook is, safe to print: the kind and, for HTTP
	// hooks, the scheme and host only ("webhook https://hooks.example.com/…"),
	// since webhook URLs carry secrets.
	Name() string
	// Fire runs the hook for ev. Its error starts with Name().
	Fire(ctx context.Context, ev Event) error
}

// Dispatcher fires hooks for the results they are set to.
type Dispatcher struct {
	Hooks []Hook
	// On lists the results (OnSuccess, OnNoop, OnFailure) that fire the
	// hooks; nil means OnSuccess only.
	On []string
	// Logger gets one line per hook fired; nil discards.
	Logger *slog.Logger
}

// Fires reports whether an Event with this result fires the hooks.
func (d *Dispatcher) Fires(result string) bool {
	if d.On == nil {
		return result == OnSuccess
	}
	return slices.Contains(d.On, result)
}

// Fire runs every hook in turn, even after one fails, when ev.Result is one
// d fires on, and does nothing otherwise. A zero ev.Time is set to now. It
// returns the failures joined (each names its hook), or nil.
//
// ctx bounds them all: once it is done, the hook running stops (an exec
// hook's process group is killed, a webhook stops waiting for its answer or
// its next attempt) and the hooks not yet run are not started, each then
// failing with ctx's error.
func (d *Dispatcher) Fire(ctx context.Context, ev Event) error {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(d.Hooks) == 0 {
		return nil
	}
	if !d.Fires(ev.Result) {
		log.DebugContext(ctx, "hooks not fired for this result", "result", ev.Result, "on", d.on())
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	var errs []error
	for _, h := range d.Hooks {
		if err := ctx.Err(); err != nil {
			err = fmt.Errorf("%s: not run: %w", h.Name(), err)
			log.WarnContext(ctx, "hook not run", "hook", h.Name(), "result", ev.Result, "error", err.Error())
			errs = append(errs, err)
			continue
		}
		start := time.Now()
		if err := h.Fire(ctx, ev); err != nil {
			if !strings.HasPrefix(err.Error(), h.Name()) {
				err = fmt.Errorf("%s: %w", h.Name(), err)
			}
			log.WarnContext(ctx, "hook failed", "hook", h.Name(), "result", ev.Result, "error", err.Error())
			errs = append(errs, err)
			continue
		}
		log.InfoContext(ctx, "hook fired", "hook", h.Name(), "result", ev.Result,
			"duration", time.Since(start).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

func (d *Dispatcher) on() []string {
	if d.On == nil {
		return []string{OnSuccess}
	}
	return d.On
}
