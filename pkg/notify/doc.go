// Package notify tells the world what a ferry run did: webhooks, Slack
// messages, exec hooks and GitHub Actions outputs, built in so that a
// minimal image needs no curl and no shell.
//
// It consumes a finished run as an [Event] and knows nothing of git, YAML
// or registries. A hook's failure is reported but never undoes the push
// that came before it.
//
// # Hooks
//
// [Webhook] POSTs the Event as JSON; [Slack] posts a Block Kit message to
// a Slack incoming webhook; [Exec] runs a program (no shell) with the Event
// in FERRY_* environment variables. A [Dispatcher] fires each hook for the
// results it is set to (by default only [OnSuccess]) and reports every
// failure, naming the hook.
//
// HTTP hooks retry 5xx, 429 and network errors with exponential backoff and
// full jitter, honouring Retry-After on 429 and 503; other 4xx answers are
// final. Every attempt has its own timeout, and the caller's context bounds
// them all: when it is done, an attempt or a wait to retry stops at once,
// and the Dispatcher starts no further hook. Webhook URLs carry secrets
// (a Slack URL is a bearer token), so a hook's [Hook.Name] and its errors
// show the scheme and host only, and a response body quoted in an error is
// cut to 200 bytes.
//
// An exec hook runs in its own process group; at its timeout, when the
// context is done, and when it exits, whatever is left of that group is
// killed, so nothing a hook started outlives [Hook.Fire].
//
// # CI outputs
//
// [GitHub] appends step outputs (changed, result, commit, digest, digests,
// images) to $GITHUB_OUTPUT and a Markdown section to $GITHUB_STEP_SUMMARY
// when GitHub Actions sets those variables, and does nothing otherwise.
package notify
