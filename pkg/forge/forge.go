// Package forge speaks to the git hosts ferry opens pull requests on
// (GitHub's REST API v3, including GitHub Enterprise's base URL, and
// GitLab's merge requests) behind one small interface. It knows nothing
// of git objects or YAML: ferry pushes the head branch itself, and asks a
// Forge only to find, open, update, auto-merge and read the request. On
// GitHub it can instead make the commits and move the branch through the
// API (GitHubCommits), so that GitHub signs them.
package forge

import (
	"context"
	"errors"
	"time"
)

// State is a pull request's state as ferry sees it.
type State string

const (
	StateOpen   State = "open"
	StateClosed State = "closed" // closed without merging
	StateMerged State = "merged"
)

// PR is one pull (GitHub) or merge (GitLab) request.
type PR struct {
	Number int    `json:"number"` // GitHub's number, GitLab's iid
	URL    string `json:"url"`    // the page people open
	State  State  `json:"state"`
	Head   string `json:"head"` // head branch
	Base   string `json:"base"` // base branch
	// HeadSHA is the head branch's commit the host last saw.
	HeadSHA string `json:"headSHA,omitempty"`
	// MergeCommit is the commit the merge made on Base, once merged.
	MergeCommit string `json:"mergeCommit,omitempty"`
	// AutoMerge reports whether the host will merge it by itself once
	// its checks pass.
	AutoMerge bool `json:"autoMerge,omitempty"`
	// ID is the host's own identifier where it differs from Number
	// (GitHub's node ID, which its GraphQL API takes).
	ID string `json:"-"`
}

// Request is what a new or updated pull request says.
type Request struct {
	Head, Base  string
	Title, Body string
	Labels      []string
	Reviewers   []string
	Draft       bool
}

// MergeMethod is how a request is merged: squash, merge or rebase.
type MergeMethod string

const (
	MergeSquash MergeMethod = "squash"
	MergeMerge  MergeMethod = "merge"
	MergeRebase MergeMethod = "rebase"
)

// Forge is one repository on one host.
type Forge interface {
	// Find returns the open request from head into base, or nil when
	// there is none (a closed one is not returned: it is replaced, not
	// reused).
	Find(ctx context.Context, head, base string) (*PR, error)
	// Open opens a request, with its labels and reviewers.
	Open(ctx context.Context, r Request) (*PR, error)
	// Update rewrites an open request's title and body and adds labels
	// and reviewers it lacks.
	Update(ctx context.Context, number int, r Request) (*PR, error)
	// Get reads a request's current state.
	Get(ctx context.Context, number int) (*PR, error)
	// Close closes an open request without merging it.
	Close(ctx context.Context, number int) error
	// AutoMerge asks the host to merge the request by itself once it may
	// (its checks pass, its reviews are in; a merge queue if the branch
	// has one), with method; title and body are the merge commit's
	// message where the host lets the caller set it (a squash keeps
	// ferry's trailers that way).
	AutoMerge(ctx context.Context, pr *PR, method MergeMethod, title, body string) error
}

// ErrNotFound: the repository or request does not exist, or the token
// cannot see it.
var ErrNotFound = errors.New("not found")

// Wait polls a request until it is merged or closed, or ctx ends (then it
// returns the last state read and ctx's error), or a read fails (then the
// last state read and that error, which wraps ctx's if ctx ended during
// the read).
func Wait(ctx context.Context, f Forge, number int, every time.Duration) (*PR, error) {
	var last *PR
	for {
		pr, err := f.Get(ctx, number)
		if err != nil {
			return last, err
		}
		last = pr
		if pr.State != StateOpen {
			return pr, nil
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return pr, ctx.Err()
		case <-t.C:
		}
	}
}
