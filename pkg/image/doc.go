// Package image parses container image references, resolves tags to
// digests, and finds registry credentials.
//
// It is the only part of ferry that talks to container registries, and it
// knows nothing of git or YAML.
//
// # References
//
// [Parse] accepts repo:tag, repo@sha256:... and repo:tag@sha256:... and
// normalises the repository the way go-containerregistry's name package
// does ("nginx" becomes "index.docker.io/library/nginx"). A bare repository
// is an error: ferry never guesses "latest".
//
// # Resolution
//
// A [Resolver] turns a tag into the digest it points at with a single
// manifest HEAD request. Registries that leave Docker-Content-Digest out of
// their HEAD answers are asked again with GET, and the digest is computed
// from the manifest itself. For a multi-platform image the digest is that of
// the image index, never that of one platform's manifest, so that a pinned
// reference still serves every platform.
//
// Temporary failures (5xx, 429, network errors) are retried with
// exponential backoff and full jitter; 401, 403 and 404 are not. Callers
// branch on the outcome with errors.Is: [ErrNotFound], [ErrUnauthorized],
// [ErrUnavailable], [ErrInvalidReference].
//
// # Credentials
//
// By default credentials come from the docker config.json (directory set by
// DOCKER_CONFIG, default ~/.docker) and its credential helpers, then from
// Google application default credentials for gcr.io and *.pkg.dev. No
// credential ever appears in an error message or a log line.
package image
