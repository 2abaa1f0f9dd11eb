package envrepo

import (
	"context"
	"errors"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// AuthRetry runs op, a request the server may refuse for its credentials,
// and decides whether and when to run it again; refused tells such a
// refusal (HTTP 401 or 403) from other failures. ghapp.Fresh's Retry is
// one.
type AuthRetry func(ctx context.Context, op func() error, refused func(error) bool) error

// WithAuthRetry passes the first request of every HTTPS session, the ref
// advertisement (GET info/refs), through retry. It is for a token minted
// a moment ago, which a git host may refuse until it has spread to all its
// servers (GitHub's App installation tokens); retry decides how long to
// keep trying, and should stop once the token has been accepted. The
// requests after the advertisement are not retried: the token was
// accepted by then. Without it, a refusal is final.
func WithAuthRetry(retry AuthRetry) Option { return func(o *openOptions) { o.authRetry = retry } }

// refusedCredentials reports whether err is the server refusing the
// credentials.
func refusedCredentials(err error) bool {
	return errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed)
}

// retryTransport is a transport whose sessions pass their advertisement
// through retry. Over HTTP the advertisement is a GET of its own, so it
// can be asked again on the same session.
type retryTransport struct {
	transport.Transport
	retry AuthRetry
}

func (t retryTransport) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	s, err := t.Transport.NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return retryUploadPack{s, t.retry}, nil
}

func (t retryTransport) NewReceivePackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.ReceivePackSession, error) {
	s, err := t.Transport.NewReceivePackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return retryReceivePack{s, t.retry}, nil
}

type retryUploadPack struct {
	transport.UploadPackSession
	retry AuthRetry
}

func (s retryUploadPack) AdvertisedReferencesContext(ctx context.Context) (*packp.AdvRefs, error) {
	return advertiseRetrying(ctx, s.retry, s.UploadPackSession.AdvertisedReferencesContext)
}

func (s retryUploadPack) AdvertisedReferences() (*packp.AdvRefs, error) {
	return s.AdvertisedReferencesContext(context.Background())
}

type retryReceivePack struct {
	transport.ReceivePackSession
	retry AuthRetry
}

func (s retryReceivePack) AdvertisedReferencesContext(ctx context.Context) (*packp.AdvRefs, error) {
	return advertiseRetrying(ctx, s.retry, s.ReceivePackSession.AdvertisedReferencesContext)
}

func (s retryReceivePack) AdvertisedReferences() (*packp.AdvRefs, error) {
	return s.AdvertisedReferencesContext(context.Background())
}

func advertiseRetrying(ctx context.Context, retry AuthRetry, adv func(context.Context) (*packp.AdvRefs, error)) (*packp.AdvRefs, error) {
	var ar *packp.AdvRefs
	err := retry(ctx, func() (err error) {
		ar, err = adv(ctx)
		return err
	}, refusedCredentials)
	return ar, err
}
