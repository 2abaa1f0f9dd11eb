package envrepo

import (
	"context"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// A push needs the server's receive-pack advertisement (its capabilities
// and where the branch is) before it sends anything. Asking for it takes a
// round trip; startPush asks while the edit is computed and validated, so
// the push itself costs one. If the branch moves in between, the server's
// compare-and-swap refuses the push, as it would anyway.

type pushSession struct {
	done chan struct{}
	sess transport.ReceivePackSession
	ar   *packp.AdvRefs
	err  error
}

// startPush opens the receive-pack session in the background.
func (w *wire) startPush(ctx context.Context) {
	p := &pushSession{done: make(chan struct{})}
	w.early = p
	go func() {
		defer close(p.done)
		// go-git's HTTP sessions write to their endpoint (on a
		// redirect); this one runs beside the fetches, so it gets a copy.
		ep := *w.ep
		p.sess, p.err = w.c.NewReceivePackSession(&ep, w.r.Auth)
		if p.err != nil {
			return
		}
		untrack := w.track(p.sess)
		defer untrack()
		p.ar, p.err = p.sess.AdvertisedReferencesContext(ctx)
	}()
}

// receivePack returns a session with its advertisement: the one startPush
// opened, or a new one.
func (w *wire) receivePack(ctx context.Context) (transport.ReceivePackSession, *packp.AdvRefs, error) {
	if p := w.early; p != nil {
		w.early = nil
		select {
		case <-p.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if p.err == nil {
			return p.sess, p.ar, nil
		}
		if p.sess != nil {
			_ = p.sess.Close()
		}
	}
	sess, err := w.c.NewReceivePackSession(w.ep, w.r.Auth)
	if err != nil {
		return nil, nil, err
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		_ = sess.Close()
		return nil, nil, err
	}
	return sess, ar, nil
}

// dropPush closes a session startPush opened that no push used.
func (w *wire) dropPush() {
	p := w.early
	if p == nil {
		return
	}
	w.early = nil
	go func() {
		<-p.done
		if p.sess != nil {
			_ = p.sess.Close()
		}
	}()
}
