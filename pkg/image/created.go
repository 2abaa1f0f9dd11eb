package image

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// AnnotationCreated is the OCI annotation for an image's build time.
const AnnotationCreated = "org.opencontainers.image.created"

// Created returns when repo@digest was built: the manifest's or index's
// org.opencontainers.image.created annotation, else the image config's
// created field (for an index, that of its first image). A zero time means
// unknown: reproducible builds set epoch 0 or leave it empty, and those say
// nothing about order.
func (r *Resolver) Created(ctx context.Context, repo, digest string) (time.Time, error) {
	rp, err := r.repository(repo)
	if err != nil {
		return time.Time{}, err
	}
	pl, err := r.puller(ctx, rp.Digest(digest))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading %s@%s: %w", repo, digest, err)
	}
	desc, err := remote.Get(rp.Digest(digest), remote.WithContext(ctx), remote.Reuse(pl.p))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading %s@%s: %w", repo, digest, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return time.Time{}, err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return time.Time{}, err
		}
		if t := known(parseAnnotation(m.Annotations)); !t.IsZero() {
			return t, nil
		}
		for _, child := range m.Manifests {
			if child.MediaType.IsImage() {
				return r.Created(ctx, repo, child.Digest.String())
			}
		}
		return time.Time{}, nil
	}
	img, err := desc.Image()
	if err != nil {
		return time.Time{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return time.Time{}, err
	}
	if t := known(parseAnnotation(m.Annotations)); !t.IsZero() {
		return t, nil
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return time.Time{}, err
	}
	return known(cfg.Created.Time), nil
}

func parseAnnotation(a map[string]string) time.Time {
	t, _ := time.Parse(time.RFC3339, a[AnnotationCreated])
	return t
}

// known maps the "no idea" timestamps to zero.
func known(t time.Time) time.Time {
	if t.IsZero() || t.Unix() <= 0 {
		return time.Time{}
	}
	return t
}
