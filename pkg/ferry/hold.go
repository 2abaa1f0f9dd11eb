package ferry

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrHeld: the scope was rolled back, and nothing replaces a rollback
// without saying so.
var ErrHeld = errors.New("held by a rollback")

// holdDepth is how many commits the hold check reads first (messages only,
// a few hundred bytes each); it deepens from there when it must.
const holdDepth = 512

// The hold rule. A rollback of scope S holds every later deploy or promote
// whose scope overlaps S: the same scope, one inside it, or one containing
// it. The hold is lifted only by a later commit whose scope contains S and
// that was made with --override-rollback (it names the rollback in a
// Ferry-Override-Rollback trailer), or by a commit by hand that changes
// something in S (a person fixing forward). An override of a narrower or
// another scope lands, but lifts nothing beyond what it covers.
//
// The check runs on every attempt of a write, against the very commit the
// write is built on, so a rollback that lands while a write is in flight
// stops the write's retry rather than being undone by it.
type holdCheck struct {
	e        Env
	branch   string
	scope    string
	override bool
	what     string // "deploy" or "promote", for the message

	// pre waits for the history the round's start fetched.
	pre func() (*envrepo.History, error)
	// last is the history the last check answered from: a retry's
	// fetch of the tip brings the commits made since, and the check
	// extends last with them (History.Extend) instead of fetching.
	last *envrepo.History
}

// start fetches the branch's recent commits in the background, beside a
// round's fetch of the tip, so the check does not wait a round trip of its
// own after the tip is read. Each round's fetch is its own.
func (hc *holdCheck) start(ctx context.Context) (stop func()) {
	if hc.last != nil {
		return func() {} // a retry: the tip's fetch brings what is new
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var h *envrepo.History
	var err error
	hc.pre = func() (*envrepo.History, error) {
		<-done
		return h, err
	}
	go func() {
		defer close(done)
		h, err = envrepo.FetchCommits(ctx, hc.e.Remote, hc.branch, holdDepth)
	}()
	return func() {
		cancel()
		<-done
	}
}

// prefetched returns the history start fetched, once; later checks (on a
// retry, against a newer tip) fetch their own. A failed prefetch is not
// an error: the check fetches again.
func (hc *holdCheck) prefetched(ctx context.Context) *envrepo.History {
	if hc.pre == nil {
		return nil
	}
	pre := hc.pre
	hc.pre = nil
	h, err := pre()
	if err != nil || ctx.Err() != nil {
		return nil
	}
	return h
}

// held is one rollback whose hold covers the scope being written.
type held struct {
	commit *object.Commit
	scope  string
}

// check returns the rollbacks whose hold the write on base replaces (only
// with override; their shas go in the commit's trailers), or ErrHeld.
func (hc *holdCheck) check(ctx context.Context, s *envrepo.Snapshot) ([]string, error) {
	holds, err := hc.holds(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("checking %s on %s for a rollback: %w", hc.scope, hc.branch, err)
	}
	if len(holds) == 0 {
		return nil, nil
	}
	if hc.override {
		var shas []string
		for _, h := range holds {
			logger(hc.e).Warn("overriding a rollback's hold", "branch", hc.branch, "path", hc.scope,
				"held", h.scope, "rollback", h.commit.Hash.String())
			shas = append(shas, h.commit.Hash.String())
		}
		return shas, nil
	}
	h := holds[0] // the newest
	return nil, &HeldError{Scope: h.scope, Branch: hc.branch, Rollback: h.commit.Hash.String(),
		Subject: firstLine(h.commit.Message), Action: hc.what, Path: hc.scope}
}

// HeldError is a write refused because a rollback holds its scope. It
// matches ErrHeld. The hold is lifted by a write whose scope contains Scope
// made with OverrideRollback, or by a commit by hand that changes Scope.
type HeldError struct {
	Scope    string // the scope rolled back
	Branch   string
	Rollback string // the rollback commit
	Subject  string // its subject line
	Action   string // the write refused: deploy or promote
	Path     string // the scope it would have written
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s: %s on %s was rolled back by %s (%q); this %s of %s would undo that", ErrHeld,
		e.Scope, e.Branch, ref.ShortSHA(e.Rollback), e.Subject, e.Action, e.Path)
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// holds returns the rollbacks still holding a scope that overlaps
// hc.scope on the branch as of base, the snapshot's parent, newest first.
// It answers from the history fetched beside the tip (or the last check's,
// extended by a retry's fetch) and searches deeper only when that history
// cannot settle the question.
func (hc *holdCheck) holds(ctx context.Context, s *envrepo.Snapshot) ([]held, error) {
	base := s.Base
	// Settling reads messages only; the trees a fix forward needs are
	// loaded once, for the history that settles it.
	answered := func(h *envrepo.History) (bool, error) {
		if !h.Has(base) {
			// The branch moved on more than a fetch's depth since base
			// was read: fetch deeper.
			return false, nil
		}
		_, err := scanHolds(h, base, hc.scope)
		if errors.Is(err, envrepo.ErrTruncated) {
			return false, nil
		}
		return err == nil, err
	}
	var h *envrepo.History
	pre, since := hc.prefetched(ctx), false
	if last := hc.last; last != nil {
		hc.last = nil
		if ext, err := last.Extend(s); err == nil {
			pre, since = ext, true
		}
	}
	if pre != nil {
		ok, err := answered(pre)
		if err != nil && !since {
			return nil, err
		}
		if err == nil && (ok || pre.Complete() && pre.Has(base)) {
			h = pre
		}
	}
	if h == nil {
		var err error
		if h, err = envrepo.SearchCommits(ctx, hc.e.Remote, hc.branch, holdDepth, answered); err != nil {
			return nil, err
		}
	}
	if !h.Has(base) {
		return nil, fmt.Errorf("commit %s is not on %s", ref.ShortSHA(base.String()), hc.branch)
	}
	hc.last = h
	// h settles the question or holds the whole branch: no truncation.
	return rollbackHolds(h, base, hc.scope)
}

// rollbackHolds is the hold rule, as every question of it is answered:
// the rollbacks on h's first-parent chain from commit from back whose hold
// still covers a scope overlapping scope, newest first. The write path asks
// it of the commit it builds on, status of the tip.
//
// It reads commit messages back from from (scanHolds), then, when it found
// a rollback, the trees of the commits by hand newer than it, to tell a fix
// forward (loaded in one request when h has messages only). When h ends
// before the rule settles it returns the holds it found with
// envrepo.ErrTruncated: those hold (what lifts a hold comes after it, and
// was read), but an older rollback may hold as well.
func rollbackHolds(h *envrepo.History, from plumbing.Hash, scope string) ([]held, error) {
	sc, walkErr := scanHolds(h, from, scope)
	if walkErr != nil && !errors.Is(walkErr, envrepo.ErrTruncated) {
		return nil, walkErr
	}
	if len(sc.cands) == 0 {
		return nil, walkErr
	}
	// A commit by hand that changed a held scope is a fix forward.
	manual := sc.manual[:sc.cands[len(sc.cands)-1].manual]
	var need []plumbing.Hash
	for _, m := range manual {
		need = append(need, m.Hash)
		if len(m.ParentHashes) > 0 {
			need = append(need, m.ParentHashes[0])
		}
	}
	if err := h.LoadTrees(need...); err != nil {
		return nil, err
	}
	var out []held
	for _, c := range sc.cands {
		fixed := false
		for _, m := range sc.manual[:c.manual] {
			parentTree := plumbing.ZeroHash
			if len(m.ParentHashes) > 0 {
				p, err := h.Commit(m.ParentHashes[0])
				if err != nil {
					return nil, err
				}
				parentTree = p.TreeHash
			}
			if changedScope(h, m.TreeHash, parentTree, c.scope) {
				fixed = true
				break
			}
		}
		if !fixed {
			out = append(out, c.held)
		}
	}
	return out, walkErr
}

// holdScan is what commit messages alone say about the holds on a scope:
// the rollbacks that may hold it, and the commits by hand that may have
// fixed forward what they rolled back.
type holdScan struct {
	cands  []holdCandidate  // newest first
	manual []*object.Commit // newest first
}

// holdCandidate is a rollback that holds unless a commit by hand newer than
// it changed its scope.
type holdCandidate struct {
	held
	manual int // how many of holdScan.manual are newer than it
}

// scanHolds walks back from from, reading commit messages only, and
// collects the rollbacks of scopes overlapping scope that no later override
// lifted. It returns envrepo.ErrTruncated when h ends first.
//
// The walk ends early at a deploy or promote whose scope contains scope and
// that was made without --override-rollback: ferry checked the same rule
// when it made that commit, so no older rollback can hold now. Commits by
// hand, and ferry's own from before it recorded Ferry-Path, may have
// changed any scope: they are kept, and compared by tree only when a
// rollback they might lift turns up.
func scanHolds(h *envrepo.History, from plumbing.Hash, scope string) (holdScan, error) {
	var (
		sc    holdScan
		lifts []string // scopes of overrides seen so far
	)
	liftedBy := func(s string) bool {
		for _, l := range lifts {
			if within(s, l) {
				return true
			}
		}
		return false
	}
	settled := false
	err := h.Walk(from, func(c *object.Commit) bool {
		rec := audit.Parse(c.Message)
		switch {
		case rec.Action == audit.ActionManual || rec.Path == "":
			sc.manual = append(sc.manual, c)
		case !overlaps(rec.Path, scope):
		case rec.Action == audit.ActionRollback:
			if !liftedBy(rec.Path) {
				sc.cands = append(sc.cands, holdCandidate{held{c, rec.Path}, len(sc.manual)})
			}
		case len(rec.OverrideRollback) > 0:
			lifts = append(lifts, rec.Path)
		case within(scope, rec.Path):
			settled = true
		}
		return !settled
	})
	return sc, err
}

// within reports whether path p is scope or inside it.
func within(p, scope string) bool {
	return scope == "." || p == scope || len(p) > len(scope) && p[:len(scope)] == scope && p[len(scope)] == '/'
}

// overlaps reports whether writing one path can change the other.
func overlaps(a, b string) bool { return within(a, b) || within(b, a) }

func changedScope(h *envrepo.History, tree, parentTree plumbing.Hash, scope string) bool {
	a, okA := h.TreeAt(tree, scope)
	b, okB := h.TreeAt(parentTree, scope)
	return okA != okB || a != b
}
