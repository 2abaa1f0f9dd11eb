package image

import "github.com/ferrycd/ferry/pkg/ref"

// Reference is a parsed image reference; see package ref.
type Reference = ref.Ref

// ErrInvalidReference is matched by every error Parse returns.
var ErrInvalidReference = ref.ErrInvalid

// Parse is ref.Parse: repo:tag, repo@sha256:... or repo:tag@sha256:...,
// never a bare repository.
func Parse(s string) (Reference, error) { return ref.Parse(s) }

// ParseRepo is ref.ParseRepo.
func ParseRepo(s string) (string, error) { return ref.ParseRepo(s) }

// Resolved is a reference pinned to a digest.
type Resolved struct {
	Repo, Tag, Digest string
	// MediaType is the manifest or index media type the registry reported.
	MediaType string
}

// String returns repo:tag@digest, or repo@digest when there is no tag.
func (r Resolved) String() string { return r.Ref().String() }

// Ref returns the pinned reference.
func (r Resolved) Ref() Reference {
	return Reference{Repo: r.Repo, Tag: r.Tag, Digest: r.Digest}
}
