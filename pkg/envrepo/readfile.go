package envrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
)

// ReadFile reads one file at the root of a branch's tip ("" for the
// remote's default branch, what its HEAD names): the commit and the root
// tree (filter tree:1), then the file's blob alone, where the server
// serves partial fetches; the whole tip where it does not. It is how ferry
// reads an env repo's ferry.yaml before it knows which branch an
// environment lives on. A missing file is an error matching
// fs.ErrNotExist.
func ReadFile(ctx context.Context, r Remote, branch, name string) ([]byte, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrInvalid}
	}
	w, err := newWire(r)
	if err != nil {
		return nil, err
	}
	if branch == "" {
		if branch, err = w.defaultBranch(ctx); errors.Is(err, errNoHead) {
			// No default branch, no file on it.
			return nil, fmt.Errorf("reading %s of %s: %w (%v)", name, r, fs.ErrNotExist, err)
		} else if err != nil {
			return nil, r.fetchError("HEAD", err)
		}
	}
	st, tip, filtered, err := fetchTipFiltered(ctx, w, branch, packp.FilterTreeDepth(1), nil)
	if err != nil && filterRefused(err) && ctx.Err() == nil {
		st, tip, filtered, err = fetchTipFiltered(ctx, w, branch, packp.FilterBlobNone(), nil)
	}
	if err != nil {
		return nil, r.fetchError(branch, err)
	}
	snap, err := newSnapshot(st, branch, tip)
	if err != nil {
		return nil, err
	}
	snap.wire = w
	if filtered {
		snap.lazy = w.blobFetcher(ctx, st, branch)
		snap.lazyTrees = w.treeFetcher(ctx, st, branch)
	}
	data, err := snap.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s on %s of %s: %w", name, branch, r, err)
	}
	return data, nil
}

// errNoHead: the remote names no default branch.
var errNoHead = errors.New("the remote names no default branch")

// defaultBranch is the branch the remote's HEAD names.
func (w *wire) defaultBranch(ctx context.Context) (string, error) {
	var name string
	err := withContext(ctx, func() error {
		sess, err := w.c.NewUploadPackSession(w.ep, w.r.Auth)
		if err != nil {
			return err
		}
		defer w.track(sess)()
		defer sess.Close()
		ar, err := sess.AdvertisedReferencesContext(ctx)
		if err != nil {
			return err
		}
		for _, v := range ar.Capabilities.Get("symref") {
			if from, to, ok := cutSymref(v); ok && from == "HEAD" {
				name = to
				return nil
			}
		}
		// No symref capability: the branch whose tip is HEAD's.
		if ar.Head == nil {
			return fmt.Errorf("%w (no HEAD)", errNoHead)
		}
		refs, err := ar.AllReferences()
		if err != nil {
			return err
		}
		for n, ref := range refs {
			if n.IsBranch() && ref.Hash() == *ar.Head {
				name = n.Short()
				return nil
			}
		}
		return fmt.Errorf("%w (HEAD is on no branch)", errNoHead)
	}, w.abort)
	if err != nil {
		return "", err
	}
	return name, nil
}

// cutSymref splits a symref capability value, HEAD:refs/heads/main, into
// HEAD and main.
func cutSymref(v string) (from, branch string, ok bool) {
	from, to, ok := strings.Cut(v, ":")
	if !ok || !plumbing.ReferenceName(to).IsBranch() {
		return "", "", false
	}
	return from, plumbing.ReferenceName(to).Short(), true
}
