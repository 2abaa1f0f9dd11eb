package ferry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/image"
)

// Fan-out: one deploy or promote to many env repos (one per region or
// cluster), as Fleet does for many repositories at once: a bounded number
// of workers, jittered starts, and every target accounted for in the
// report, whatever became of it.

// ErrPartial is a fan-out in which some targets failed. The others landed
// and stay: the report says which is which.
var ErrPartial = errors.New("fan-out incomplete")

// Target is one env repo a fanned-out write goes to.
type Target struct {
	// URL is the repo as given; Env.RemoteFor says how to reach it.
	// Reports show it redacted (envrepo.Redact).
	URL string
}

// FanOutOptions tune a fan-out.
type FanOutOptions struct {
	// Parallel is how many targets are written at once; 0 means 4.
	Parallel int
	// Jitter, when positive, starts each target no sooner than a random
	// delay in [0, Jitter) after the fan-out began (targets are taken in
	// the order of those delays), so that many pipelines fanning out to
	// one git host do not reach it in lockstep. It adds at most Jitter to
	// the whole; 0 starts at once.
	Jitter time.Duration
	// Grace is how long, once ctx has ended, FanOut waits for writes still
	// running before it reports them as abandoned and returns; 0 means 5s
	// (envrepo gives up a stuck operation within 2s of ctx ending).
	Grace time.Duration
}

// TargetResult is one target's outcome: exactly one of Report and Error is
// set.
type TargetResult struct {
	Repo    string `json:"repo"` // the URL, redacted and escaped
	Changed bool   `json:"changed"`
	Commit  string `json:"commit,omitempty"`
	// Attempts is how many fetch-edit-push rounds the write began, failed
	// ones included; 0 when it failed before writing (a read, the
	// registry) or never started.
	Attempts int     `json:"attempts"`
	Error    string  `json:"error,omitempty"` // redacted and escaped (Printable)
	Report   *Report `json:"report,omitempty"`
}

// FanOutReport is the outcome of a fan-out.
type FanOutReport struct {
	// Action is that of the targets' reports; empty when none succeeded.
	Action    string         `json:"action"`
	Targets   []TargetResult `json:"targets"` // in the order given
	Succeeded int            `json:"succeeded"`
	Failed    int            `json:"failed"`
}

// WriteFunc is one write to the env repo of e.Remote, such as
// func(ctx context.Context, e Env) (*Report, error) { return Deploy(ctx, e, req) }.
type WriteFunc func(ctx context.Context, e Env) (*Report, error)

// FanOut runs write once per target, at most opt.Parallel at a time, each
// with an Env of its own: e with Remote the target's (e.RemoteFor, so its
// own credentials) and a Logger that names it. Each write does its own
// compare-and-swap and retries. The targets share one view of the
// registry: each image is resolved once, by the first target to ask, so a
// tag that moves during the fan-out cannot send different builds to
// different repos.
//
// FanOut never stops early and never drops a target: one that fails,
// panics, or has not started when ctx ends is reported with its error, and
// the others are not undone. A write still running opt.Grace after ctx
// ended is reported as abandoned and left running; FanOut returns without
// it. When any target failed, FanOut returns the full report and an error
// matching ErrPartial. Bad targets or options are a *FieldError (fields
// Targets, Parallel, Jitter, Grace) and nothing runs.
func FanOut(ctx context.Context, e Env, targets []Target, opt FanOutOptions, write WriteFunc) (*FanOutReport, error) {
	if err := checkFanOut(targets, opt); err != nil {
		return nil, err
	}
	workers := opt.Parallel
	if workers == 0 {
		workers = 4
	}
	workers = min(workers, len(targets))
	grace := opt.Grace
	if grace == 0 {
		grace = 5 * time.Second
	}
	log := logger(e)
	if e.Resolver != nil {
		e.Resolver = &onceResolver{r: e.Resolver}
	}

	// Each target's start, as an offset from now; the queue holds the
	// targets in that order.
	offsets := make([]time.Duration, len(targets))
	queue := make(chan int, len(targets))
	order := make([]int, len(targets))
	for i := range targets {
		order[i] = i
		if opt.Jitter > 0 {
			offsets[i] = rand.N(opt.Jitter)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(offsets[a], offsets[b]) })
	for _, i := range order {
		queue <- i
	}
	close(queue)

	type outcome struct {
		i   int
		rep *Report
		err error
	}
	// Buffered for every target: a worker never blocks on a FanOut that
	// has returned without it.
	done := make(chan outcome, len(targets))
	var mu sync.Mutex
	started := make([]bool, len(targets))
	begin := time.Now()
	for range workers {
		go func() {
			for i := range queue {
				if err := backoff.Sleep(ctx, time.Until(begin.Add(offsets[i]))); err != nil {
					done <- outcome{i: i, err: fmt.Errorf("not started: %w", context.Cause(ctx))}
					continue
				}
				mu.Lock()
				started[i] = true
				mu.Unlock()
				te := e
				te.Remote = e.remoteFor(targets[i].URL)
				te.Logger = log.With("repo", te.Remote.String())
				rep, err := runWrite(ctx, te, write)
				done <- outcome{i: i, rep: rep, err: err}
			}
		}()
	}

	res := &FanOutReport{Targets: make([]TargetResult, len(targets))}
	reported := make([]bool, len(targets))
	collect := func(o outcome) {
		reported[o.i] = true
		res.Targets[o.i] = result(targets[o.i], o.rep, o.err)
	}
	n := 0
	ctxDone := ctx.Done()
	var giveUp <-chan time.Time
wait:
	for n < len(targets) {
		select {
		case o := <-done:
			collect(o)
			n++
		case <-ctxDone:
			// No target starts now; the writes running get grace to end.
			ctxDone, giveUp = nil, time.After(grace)
		case <-giveUp:
			break wait
		}
	}
	if n < len(targets) {
		for len(done) > 0 { // ended just now: not abandoned
			collect(<-done)
		}
		mu.Lock()
		for i, ok := range reported {
			switch {
			case ok:
			case started[i]:
				res.Targets[i] = result(targets[i], nil, fmt.Errorf("abandoned: still running %s after the fan-out ended (%w); it may yet land", grace, context.Cause(ctx)))
			default:
				res.Targets[i] = result(targets[i], nil, fmt.Errorf("not started: %w", context.Cause(ctx)))
			}
		}
		mu.Unlock()
		log.Warn("fan-out returning without writes that did not end", "grace", grace)
	}

	for _, t := range res.Targets {
		if t.Error != "" {
			res.Failed++
			continue
		}
		res.Succeeded++
		if res.Action == "" {
			res.Action = t.Report.Action
		}
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%w: %d of %d env repos failed", ErrPartial, res.Failed, len(targets))
	}
	return res, nil
}

// runWrite is write, with a panic turned into an error: one target's bug
// must not take the report of the others with it.
func runWrite(ctx context.Context, e Env, write WriteFunc) (rep *Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			logger(e).Error("write panicked", "panic", p, "stack", string(debug.Stack()))
			rep, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	rep, err = write(ctx, e)
	if err == nil && rep == nil {
		err = errors.New("the write returned neither a report nor an error")
	}
	return rep, err
}

func result(t Target, rep *Report, err error) TargetResult {
	r := TargetResult{Repo: cell(envrepo.Redact(t.URL))}
	if err != nil {
		r.Error = cell(envrepo.Redact(err.Error()))
		if ue := (*envrepo.UpdateError)(nil); errors.As(err, &ue) {
			r.Attempts = ue.Attempts
		}
		return r
	}
	r.Report, r.Changed, r.Commit, r.Attempts = rep, rep.Changed, rep.Commit, rep.Attempts
	return r
}

// checkFanOut refuses what cannot be fanned out: no targets, an empty or
// repeated one, negative options.
func checkFanOut(targets []Target, opt FanOutOptions) error {
	switch {
	case len(targets) == 0:
		return fieldErrorf("Targets", "{Targets} is required (the env repos to write to)")
	case opt.Parallel < 0:
		return fieldErrorf("Parallel", "{Parallel} %d: must be positive (0 means 4)", opt.Parallel)
	case opt.Jitter < 0:
		return fieldErrorf("Jitter", "{Jitter} %s: must not be negative", opt.Jitter)
	case opt.Grace < 0:
		return fieldErrorf("Grace", "{Grace} %s: must not be negative", opt.Grace)
	}
	seen := map[string]string{}
	for _, t := range targets {
		if strings.TrimSpace(t.URL) == "" {
			// remoteFor would take an empty URL for Env.Remote's.
			return fieldErrorf("Targets", "{Targets}: an env repo URL is empty")
		}
		key := sameRepo(t.URL)
		if prev, ok := seen[key]; ok {
			return fieldErrorf("Targets", "{Targets} %s and %s are the same repository; give each once",
				cell(envrepo.Redact(prev)), cell(envrepo.Redact(t.URL)))
		}
		seen[key] = t.URL
	}
	return nil
}

// sameRepo is what two URLs of one repository have in common: git reaches
// x, x/ and x.git alike.
func sameRepo(url string) string {
	url = strings.TrimSpace(url)
	for {
		trimmed := strings.TrimSuffix(strings.TrimSuffix(url, "/"), ".git")
		if trimmed == url {
			return url
		}
		url = trimmed
	}
}

// onceResolver resolves each reference, and looks up each build time, once
// for a whole fan-out: every target deploys what the registry said first.
// A failure is not kept; the next target asks again.
type onceResolver struct {
	r        Resolver
	mu       sync.Mutex
	resolved map[string]*memo[image.Resolved]
	created  map[string]*memo[time.Time]
}

// memo is one answer, asked for by one caller at a time (turn holds a
// token while one asks).
type memo[T any] struct {
	turn chan struct{}
	v    T
	set  bool
}

func (o *onceResolver) Resolve(ctx context.Context, ref string) (image.Resolved, error) {
	return ask(ctx, o, &o.resolved, ref, func() (image.Resolved, error) { return o.r.Resolve(ctx, ref) })
}

func (o *onceResolver) Created(ctx context.Context, repo, digest string) (time.Time, error) {
	return ask(ctx, o, &o.created, repo+"@"+digest, func() (time.Time, error) { return o.r.Created(ctx, repo, digest) })
}

func ask[T any](ctx context.Context, o *onceResolver, memos *map[string]*memo[T], key string, get func() (T, error)) (T, error) {
	o.mu.Lock()
	if *memos == nil {
		*memos = map[string]*memo[T]{}
	}
	m := (*memos)[key]
	if m == nil {
		m = &memo[T]{turn: make(chan struct{}, 1)}
		(*memos)[key] = m
	}
	o.mu.Unlock()
	// Callers of one key wait for the first, each no longer than its ctx:
	// the registry is asked once.
	select {
	case m.turn <- struct{}{}:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	defer func() { <-m.turn }()
	if m.set {
		return m.v, nil
	}
	v, err := get()
	if err == nil {
		m.v, m.set = v, true
	}
	return v, err
}
