package envrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/memory"
)

// This file speaks git's pack protocol directly, below go-git's Clone and
// Push, for what those cannot do: fetch a branch without its blobs
// (partial clone, filter blob:none) and then only the blobs that are read,
// and push exactly the objects a snapshot created.

// wire is one remote's transport.
type wire struct {
	r  Remote
	ep *transport.Endpoint
	c  transport.Transport
	// Over HTTP an upload-pack session is stateless: each request is a
	// POST of its own, so the session (and the capabilities it was
	// advertised) serves the later blob fetches too, one request fewer
	// each. SSH and file sessions are a process each and are not kept.
	up     transport.UploadPackSession
	upCaps *capability.List

	mu   sync.Mutex
	open map[io.Closer]bool // sessions in use, for abort

	early *pushSession // a receive-pack session opened ahead of the push
}

func (w *wire) stateless() bool { return w.ep.Protocol == "http" || w.ep.Protocol == "https" }

func newWire(r Remote) (*wire, error) {
	ep, err := transport.NewEndpoint(r.URL)
	if err != nil {
		return nil, &URLError{URL: r.String(), Err: errors.New(Redact(err.Error()))}
	}
	c, err := transportFor(ep)
	if err != nil {
		return nil, &URLError{URL: r.String(), Err: errors.New(Redact(err.Error()))}
	}
	w := &wire{r: r, ep: ep, c: c, open: map[io.Closer]bool{}}
	if r.authRetry != nil && w.stateless() {
		w.c = retryTransport{c, r.authRetry}
	}
	return w, nil
}

// transportFor picks the transport of one endpoint. A file:// remote is
// served by git's own upload-pack and receive-pack where git is installed
// (they can fetch shallow), and by go-git's in-process server where it is
// not, so ferry needs no git at run time; go-git's global protocol table is
// left alone.
func transportFor(ep *transport.Endpoint) (transport.Transport, error) {
	if ep.Protocol == "file" && !haveGit() {
		return server.DefaultServer, nil
	}
	return client.NewClient(ep)
}

var haveGit = sync.OnceValue(func() bool {
	if _, err := exec.LookPath("git-upload-pack"); err == nil {
		return true
	}
	_, err := exec.LookPath("git")
	return err == nil
})

// track notes a session in use, so abort can close it; the returned func
// forgets it again.
//
// Only SSH sessions are tracked: HTTP requests end with their context, and
// a local git process ends with its pipes; closing a session while its own
// goroutine closes it on an error is a race in go-git's file transport.
func (w *wire) track(c io.Closer) func() {
	if w.ep.Protocol != "ssh" {
		return func() {}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open[c] = true
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.open, c)
	}
}

// abort closes every session in use: a read blocked on one returns.
func (w *wire) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.open {
		_ = c.Close()
	}
}

// tip lists the branch on the remote: its commit, or zero when absent.
func (w *wire) tip(ctx context.Context, branch string) (plumbing.Hash, error) {
	sess, err := w.c.NewUploadPackSession(w.ep, w.r.Auth)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer w.track(sess)()
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if r, err := refs.Reference(plumbing.NewBranchReferenceName(branch)); err == nil {
		return r.Hash(), nil
	}
	return plumbing.ZeroHash, nil
}

// fetchTip reads branch's tip commit and its trees into st, with depth
// commits of history (0: all), and without blobs when the server can later
// serve them one by one (it offers filter and allows wanting any reachable
// object). It reports whether blobs were left out. With have, a commit st
// holds, it fetches what the tip has that have does not (the commits
// since, depth aside), and nothing when the tip is have. Over HTTP the
// session is kept for the fetches that follow.
func (w *wire) fetchTip(ctx context.Context, st *memory.Storage, branch string, depth int, filter packp.Filter, have plumbing.Hash) (tip plumbing.Hash, filtered bool, err error) {
	sess, err := w.c.NewUploadPackSession(w.ep, w.r.Auth)
	if err != nil {
		return tip, false, err
	}
	defer w.track(sess)()
	keep := false
	defer func() {
		if !keep {
			sess.Close()
		}
	}()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return tip, false, err
	}
	if w.stateless() {
		keep, w.up, w.upCaps = true, sess, ar.Capabilities
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return tip, false, err
	}
	ref, err := refs.Reference(plumbing.NewBranchReferenceName(branch))
	if err != nil {
		return tip, false, fmt.Errorf("couldn't find remote ref %q", "refs/heads/"+branch)
	}
	tip = ref.Hash()
	caps := ar.Capabilities
	filtered = filter != "" && !w.r.NoFilter && caps.Supports(capability.Filter) &&
		(caps.Supports(capability.AllowReachableSHA1InWant) || caps.Supports(capability.AllowTipSHA1InWant))
	if !have.IsZero() && tip == have {
		return tip, filtered, nil
	}
	req := packp.NewUploadPackRequestFromCapabilities(caps)
	req.Wants = []plumbing.Hash{tip}
	if !have.IsZero() {
		req.Haves = []plumbing.Hash{have}
	} else if depth > 0 && caps.Supports(capability.Shallow) {
		// A server without shallow support (go-git's own, for file
		// remotes when git is absent) sends everything.
		req.Depth = packp.DepthCommits(depth)
		if err := req.Capabilities.Set(capability.Shallow); err != nil {
			return tip, false, err
		}
	}
	if filtered {
		req.Filter = filter
		if err := req.Capabilities.Set(capability.Filter); err != nil {
			return tip, false, err
		}
	}
	return tip, filtered, w.readPack(ctx, sess, req, st)
}

// fetchObjects fetches the given objects into st in one request; with a
// filter, what they reach is filtered (a tree with blob:none brings its
// subtrees and no blobs).
func (w *wire) fetchObjects(ctx context.Context, st *memory.Storage, want []plumbing.Hash, filter ...packp.Filter) error {
	sess, caps := w.up, w.upCaps
	if sess == nil {
		var err error
		if sess, err = w.c.NewUploadPackSession(w.ep, w.r.Auth); err != nil {
			return err
		}
		defer sess.Close()
		defer w.track(sess)()
		ar, err := sess.AdvertisedReferencesContext(ctx)
		if err != nil {
			return err
		}
		caps = ar.Capabilities
	}
	req := packp.NewUploadPackRequestFromCapabilities(caps)
	req.Wants = want
	if len(filter) > 0 && caps.Supports(capability.Filter) {
		req.Filter = filter[0]
		if err := req.Capabilities.Set(capability.Filter); err != nil {
			return err
		}
	}
	return w.readPack(ctx, sess, req, st)
}

// blobFetcher returns what a snapshot calls to fetch the blobs a partial
// fetch of branch into st left out.
func (w *wire) blobFetcher(ctx context.Context, st *memory.Storage, branch string) func([]plumbing.Hash) error {
	return func(want []plumbing.Hash) error {
		if err := withContext(ctx, func() error { return w.fetchObjects(ctx, st, want) }, w.abort); err != nil {
			return w.r.fetchError(branch, err)
		}
		return nil
	}
}

// treeFetcher returns what a snapshot calls to fetch trees a tree:<depth>
// fetch of branch into st left out: each wanted tree with every tree below
// it and no blob, all in one request.
func (w *wire) treeFetcher(ctx context.Context, st *memory.Storage, branch string) func([]plumbing.Hash) error {
	return func(want []plumbing.Hash) error {
		if err := withContext(ctx, func() error { return w.fetchObjects(ctx, st, want, packp.FilterBlobNone()) }, w.abort); err != nil {
			return w.r.fetchError(branch, err)
		}
		return nil
	}
}

func (w *wire) readPack(ctx context.Context, sess transport.UploadPackSession, req *packp.UploadPackRequest, st *memory.Storage) error {
	resp, err := sess.UploadPack(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Close()
	var r io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		d := sideband.NewDemuxer(sideband.Sideband64k, resp)
		d.Progress = w.r.Progress
		r = d
	case req.Capabilities.Supports(capability.Sideband):
		d := sideband.NewDemuxer(sideband.Sideband, resp)
		d.Progress = w.r.Progress
		r = d
	}
	if err := packfile.UpdateObjectStorage(st, r); err != nil {
		return err
	}
	if len(resp.Shallows) > 0 {
		return st.SetShallow(resp.Shallows)
	}
	return nil
}

// errStale: the branch is not where the push expected it.
var errStale = errors.New("stale")

// push sends the objects new in the snapshot and moves branch from base to
// commit, failing (without sending anything) if the server's branch is not
// at base. The server checks old value again under its ref lock, so two
// writers can never both win.
func (w *wire) push(ctx context.Context, s *Snapshot, branch string, commit plumbing.Hash, progress io.Writer) (*packp.ReportStatus, error) {
	name := plumbing.NewBranchReferenceName(branch)
	return w.pushRef(ctx, s, name, commit, progress, func(cur plumbing.Hash, ok bool) (plumbing.Hash, error) {
		if !ok || cur != s.Base {
			got := "absent"
			if ok {
				got = cur.String()
			}
			return cur, fmt.Errorf("%w: remote ref %s required to be %s but is %s", errStale, name, s.Base, got)
		}
		return s.Base, nil
	})
}

// pushRef sends the objects new in the snapshot and moves ref to commit,
// from the old value lease returns for the ref as the push's advertisement
// shows it (ok false: absent); an error from lease ends the push before
// anything is sent. The server checks the old value again under its ref
// lock.
func (w *wire) pushRef(ctx context.Context, s *Snapshot, name plumbing.ReferenceName, commit plumbing.Hash, progress io.Writer, lease func(cur plumbing.Hash, ok bool) (plumbing.Hash, error)) (*packp.ReportStatus, error) {
	sess, ar, err := w.receivePack(ctx)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	defer w.track(sess)()
	refs, err := ar.AllReferences()
	if err != nil {
		return nil, err
	}
	cur, rerr := refs.Reference(name)
	var curHash plumbing.Hash
	if rerr == nil {
		curHash = cur.Hash()
	}
	old, err := lease(curHash, rerr == nil)
	if err != nil {
		return nil, err
	}
	var pack bytes.Buffer
	thin, refDeltas := w.thin(ar.Capabilities), !ar.Capabilities.Supports(capability.OFSDelta)
	if err := s.pack(&pack, commit, thin, refDeltas); err != nil {
		return nil, err
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: name, Old: old, New: commit}}
	req.Packfile = io.NopCloser(&pack)
	if progress != nil {
		req.Progress = progress
		if ar.Capabilities.Supports(capability.Sideband64k) {
			_ = req.Capabilities.Set(capability.Sideband64k)
		} else if ar.Capabilities.Supports(capability.Sideband) {
			_ = req.Capabilities.Set(capability.Sideband)
		}
	}
	return sess.ReceivePack(ctx, req)
}

// thin reports whether a push may send a thin pack: any receive-pack may
// take one unless it advertises no-thin, except go-git's in-process server
// (file remotes where git is absent), which cannot complete one: it
// refuses the push ("reference delta not found"), though it does not say
// no-thin.
func (w *wire) thin(caps *capability.List) bool {
	return w.c != server.DefaultServer && !caps.Supports(noThin)
}

// pack writes the pack a push of commit sends: thin, each changed tree and
// blob a delta against the object at its path in the base where that is
// smaller; or else whole objects, deltified only among themselves (as
// REF_DELTA where the server lacks ofs-delta).
func (s *Snapshot) pack(w io.Writer, commit plumbing.Hash, thin, refDeltas bool) error {
	objs, err := s.newObjectsWithBases(commit)
	if err != nil {
		return fmt.Errorf("listing the objects to send: %w", err)
	}
	if thin {
		if _, err := s.writeThinPack(w, objs); err != nil {
			return fmt.Errorf("packing %d objects: %w", len(objs), err)
		}
		return nil
	}
	hashes := make([]plumbing.Hash, len(objs))
	for i, o := range objs {
		hashes[i] = o.hash
	}
	if _, err := packfile.NewEncoder(w, s.s, refDeltas).Encode(hashes, 10); err != nil {
		return fmt.Errorf("packing %d objects: %w", len(hashes), err)
	}
	return nil
}
