package image

import "github.com/ferrycd/ferry/pkg/ref"

// ErrInvalidReference is matched by the errors of a reference that does not
// parse; it is ref.ErrInvalid.
var ErrInvalidReference = ref.ErrInvalid

// Resolved is a reference pinned to a digest.
type Resolved struct {
	Repo, Tag, Digest string
	// MediaType is the manifest or index media type the registry reported.
	MediaType string
}

// String returns repo:tag@digest, or repo@digest when there is no tag.
func (r Resolved) String() string { return r.Ref().String() }

// Ref returns the pinned reference.
func (r Resolved) Ref() ref.Ref {
	return ref.Ref{Repo: r.Repo, Tag: r.Tag, Digest: r.Digest}
}
