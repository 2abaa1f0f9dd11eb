// Package ghapp authenticates as a GitHub App: it reads the App's private
// key, signs the short-lived JWT that identifies the App (RS256, on the
// standard library), and exchanges it for an installation access token
// scoped to the repositories a run writes. The token is what git (as the
// basic-auth password of user x-access-token) and GitHub's REST API (as a
// bearer token) then take.
//
// It speaks GitHub's REST API v3 at api.github.com or at a GitHub
// Enterprise Server's https://HOST/api/v3, and knows nothing of git or of
// the rest of ferry.
//
// Secrets stay out of messages: no error or String method of this package
// includes the private key, the JWT or the token. App.Secret hands each JWT
// and token to a redactor before it is sent anywhere.
//
// A token GitHub has just issued is not always accepted at once: for a
// moment after minting, git and the API may answer 401 to it. RetryFresh
// and Fresh retry the first uses of a token briefly (a few seconds, with
// short backoff) when the failure is an authentication one, and not
// otherwise.
package ghapp
