package ferry

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrycd/ferry/pkg/audit"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/forge"
	"github.com/ferrycd/ferry/pkg/ref"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// RollbackRequest is one `ferry rollback`.
type RollbackRequest struct {
	Env string // the branch
	// EnvName names the environment in the audit trail when a ferry.yaml
	// names it apart from its branch.
	EnvName string
	// To is the commit to restore; when empty, Steps counts back.
	To string
	// Steps counts distinct earlier states of Path on Env's first-parent
	// history; commits that did not change Path do not count. 0 means 1.
	Steps int
	// StepsSet says Steps was given explicitly, so 0 is refused, not
	// taken as the default.
	StepsSet bool
	Path     string
	App      string
	DryRun   bool
}

// Rollback restores Path on Env to its state at an earlier commit, as a new
// commit on top: history is never rewritten.
func Rollback(ctx context.Context, e Env, req RollbackRequest) (*Report, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	// The scope is checked on the tip before any history is searched: a
	// symlink would otherwise read as "no earlier states".
	tip, err := envrepo.Fetch(ctx, e.Remote, req.Env)
	if err != nil {
		return nil, err
	}
	if err := tip.CheckScope(req.Path); err != nil {
		return nil, scopeError(err)
	}
	h, target, err := rollbackTarget(ctx, e, req)
	if err != nil {
		return nil, err
	}
	tree, ok := h.TreeAt(target.TreeHash, req.Path)
	if !ok {
		return nil, fmt.Errorf("%s did not exist on %s at %s; rolling back to it would delete it, which ferry does not do (remove it with a commit of your own)",
			req.Path, req.Env, ref.ShortSHA(target.Hash.String()))
	}
	from, err := h.At(target.Hash)
	if err != nil {
		return nil, err
	}
	app := req.App
	if app == "" {
		app = scopeName(req.Path)
	}
	// The restored images came from builds the history records; say which.
	sources, err := deploySources(h, target.Hash)
	if err != nil {
		return nil, err
	}
	rec := audit.Record{Action: audit.ActionRollback, Env: or(req.EnvName, req.Env), App: app, Path: req.Path, RollbackTo: target.Hash.String()}
	// A rollback is never held: it is what an incident needs first.
	rep, err := write(ctx, e, plan{rec: rec, branch: req.Env, dryRun: req.DryRun, edit: graft(from, tree, sources, e.readOptions())})
	if rep != nil && e.PullRequest != nil && !req.DryRun {
		// The hold stops ferry, not the host: an open request to deploy or
		// promote into the scope, set to merge by itself, would land after
		// the rollback and undo it. Close them.
		closed, cerr := closeForward(ctx, e, req.Env, rec)
		rep.ClosedPullRequests = closed
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		return rep, err // a report with its pull request, when one was made
	}
	rep.RollbackTo = target.Hash.String()
	if !rep.Changed {
		rep.Reason = fmt.Sprintf("%s on %s is already as it was at %s", req.Path, req.Env, ref.ShortSHA(target.Hash.String()))
	}
	return rep, nil
}

// rollbackTarget finds the commit whose state of the scope to restore.
func rollbackTarget(ctx context.Context, e Env, req RollbackRequest) (*envrepo.History, *object.Commit, error) {
	if req.To != "" {
		h, c, err := findCommit(ctx, e.Remote, req.Env, req.To, "the history of "+req.Env+" lists the commits it can roll back to")
		if err != nil {
			return nil, nil, fmt.Errorf("rollback: %w", err)
		}
		return h, c, nil
	}
	var target *object.Commit
	changes := 0
	h, err := envrepo.Search(ctx, e.Remote, req.Env, searchDepth+req.Steps*4, func(h *envrepo.History) (bool, error) {
		target, changes = nil, 0
		err := h.FirstParent(func(c *object.Commit, parentTree plumbing.Hash) (bool, error) {
			if !changedScope(h, c.TreeHash, parentTree, req.Path) {
				return true, nil
			}
			changes++
			if changes == req.Steps {
				if len(c.ParentHashes) == 0 {
					return false, nil // the scope's first state: nothing before it
				}
				p, err := h.Commit(c.ParentHashes[0])
				target = p
				return false, err
			}
			return true, nil
		})
		if errors.Is(err, envrepo.ErrTruncated) {
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, nil, err
	}
	if target == nil {
		return nil, nil, fmt.Errorf("cannot roll %s on %s back %d step(s): its history has only %d earlier state(s)",
			req.Path, req.Env, req.Steps, max(changes-1, 0))
	}
	return h, target, nil
}

// closeForward closes the open pull requests of deploys and promotes into
// the rolled-back scope (ferry's heads for them, into branch), and returns
// them.
func closeForward(ctx context.Context, e Env, branch string, rec audit.Record) ([]PullRequest, error) {
	o := e.PullRequest
	var closed []PullRequest
	seen := map[string]bool{}
	for _, action := range []string{audit.ActionDeploy, audit.ActionPromote} {
		head := headName(o.Head, rec.Env, rec.App, action)
		if seen[head] {
			continue
		}
		seen[head] = true
		pr, err := o.Forge.Find(ctx, head, branch)
		if err != nil {
			return closed, fmt.Errorf("looking for open requests into %s to close after the rollback: %w", branch, err)
		}
		if pr == nil {
			continue
		}
		if err := o.Forge.Close(ctx, pr.Number); err != nil {
			return closed, fmt.Errorf("closing %s after the rollback: %w", pr.URL, err)
		}
		logger(e).Warn("closed an open request the rollback would undo", "url", pr.URL, "head", head)
		closed = append(closed, PullRequest{URL: pr.URL, Number: pr.Number, State: forge.StateClosed, Head: head})
	}
	return closed, nil
}
