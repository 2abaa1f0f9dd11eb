// Package envrepo holds one branch of an environment repository in memory
// and writes to it safely: fetch the branch alone (depth 1, no tags, no
// worktree), edit files and subtrees as a Snapshot, commit, and push with
// compare-and-swap on the tip that was read, retrying on a fresh tip when
// another writer got there first. It knows nothing of YAML.
package envrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/skeema/knownhosts"
)

// withContext runs a git operation and returns when it ends or ctx is done.
// When ctx is done first, abort (if not nil) closes what the operation is
// blocked on, and withContext waits for it to end, at most abortGrace. One
// operation cannot be interrupted: go-git dials and handshakes SSH without a
// context, so a server that accepts and never speaks keeps that goroutine
// until the process ends (ferry is one-shot); withContext returns on time
// all the same.
func withContext(ctx context.Context, op func() error, abort func()) error {
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	if abort != nil {
		abort()
	}
	t := time.NewTimer(abortGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	return ctx.Err()
}

// abortGrace is how long an aborted operation may take to notice.
const abortGrace = 2 * time.Second

// Sentinel errors callers branch on.
var (
	// ErrBranchNotFound: the branch does not exist on the remote.
	ErrBranchNotFound = errors.New("branch not found")
	// ErrConflict: the branch kept moving under us until the retry budget
	// ran out.
	ErrConflict = errors.New("branch kept moving")
	// ErrRejected: the server refused the push for a reason other than the
	// branch moving (a hook, branch protection, permissions).
	ErrRejected = errors.New("push rejected")

	// ErrAuthRequired: the server wants credentials and got none.
	ErrAuthRequired = errors.New("authentication required")
	// ErrAuthRejected: the server refused the credentials given.
	ErrAuthRejected = errors.New("credentials were rejected")
	// ErrKeyNotAccepted: the SSH server refused the key.
	ErrKeyNotAccepted = errors.New("SSH key not accepted (unable to authenticate with publickey)")
	// ErrHostKeyMismatch: the SSH server's key is not the one known_hosts
	// lists for it.
	ErrHostKeyMismatch = errors.New("the SSH host key does not match known_hosts (key mismatch): the key changed, or someone is intercepting the connection")
	// ErrHostKeyUnknown: known_hosts has no key for the SSH server.
	ErrHostKeyUnknown = errors.New("the SSH host key is unknown: the host is not in known_hosts")
	// ErrNotGitRepo: the server did not answer in git's protocol.
	ErrNotGitRepo = errors.New("not a git repository: the server did not answer in git's protocol")
)

// Remote is an environment repository and how to reach it.
type Remote struct {
	// URL is an https://, ssh://, scp-like (git@host:path), file:// URL or a
	// local path. Open moves credentials embedded in it to Auth.
	URL  string
	Auth transport.AuthMethod
	// NoFilter turns off partial fetches (blob:none) even where the server
	// offers them; for measurements and servers that misbehave.
	NoFilter bool
	// Progress, if set, receives the server's progress messages during
	// fetches and pushes (for a terminal).
	Progress io.Writer

	authRetry AuthRetry // WithAuthRetry's, over HTTP(S)
}

// Author is who commits: the commit's author and committer. A zero When
// means the time of the commit.
type Author struct {
	Name, Email string
	When        time.Time
}

// String is the URL without credentials, safe to print.
func (r Remote) String() string { return Redact(r.URL) }

// Fetch reads the tip of branch into a new in-memory Snapshot: one branch,
// depth 1, no tags, nothing on disk. It is FetchScoped of the whole
// repository.
func Fetch(ctx context.Context, r Remote, branch string) (*Snapshot, error) {
	return FetchScoped(ctx, r, branch, ".")
}

func (r Remote) fetchError(branch string, err error) error {
	var noRef git.NoMatchingRefSpecError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("fetching %s from %s: %w", branch, r, err)
	case errors.As(err, &noRef), strings.Contains(err.Error(), "couldn't find remote ref"),
		errors.Is(err, transport.ErrEmptyRemoteRepository):
		return fmt.Errorf("%w: %q does not exist in %s; create it first (e.g. git push origin HEAD:refs/heads/%s)", ErrBranchNotFound, branch, r, branch)
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return fmt.Errorf("fetching %s from %s: %w", branch, r, ErrAuthRequired)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("fetching %s from %s: %w", branch, r, ErrAuthRejected)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("fetching %s: repository %s not found", branch, r)
	case knownhosts.IsHostKeyChanged(err):
		return fmt.Errorf("fetching %s from %s: %w", branch, r, ErrHostKeyMismatch)
	case knownhosts.IsHostUnknown(err):
		return fmt.Errorf("fetching %s from %s: %w", branch, r, ErrHostKeyUnknown)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("fetching %s from %s: %w", branch, r, ErrKeyNotAccepted)
	case strings.Contains(err.Error(), "invalid pkt-len") || strings.Contains(err.Error(), "unexpected content-type"):
		return fmt.Errorf("fetching %s: %s is %w", branch, r, ErrNotGitRepo)
	}
	if transient(err) {
		return fmt.Errorf("%w: fetching %s from %s: %s", errTransient, branch, r, Redact(err.Error()))
	}
	return fmt.Errorf("fetching %s from %s: %s", branch, r, Redact(err.Error()))
}

// errTransient marks a failure worth another round: the connection broke
// or the server had a passing fault. A refused connection is not one: the
// server is not there, and waiting will not bring it.
var errTransient = errors.New("transient network failure")

func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection reset", "broken pipe", "unexpected EOF", ": EOF", "server closed", "status code: 50", "status code: 429", "http2: ", "transport connection broken"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Result is the outcome of an Update.
type Result struct {
	Changed  bool
	Commit   plumbing.Hash // the new commit; zero when nothing changed
	Parent   plumbing.Hash // the tip it was built on
	Attempts int
	Diff     string   // unified diff of the change
	Files    []string // files changed
}

// EditFunc computes the new state of a branch from a fresh snapshot. It must
// be a pure function of the snapshot and the caller's intent, because Update
// calls it again on a new tip whenever another writer moved the branch. It
// returns the commit message; if it leaves the tree unchanged, nothing is
// committed.
type EditFunc func(ctx context.Context, s *Snapshot) (message string, err error)

// Signer signs the commits a Writer makes. Sign gets the commit encoded
// without a signature and returns the armored signature that becomes its
// gpgsig header, as git writes it: pkg/sign's signers and go-git's
// git.Signer have this shape.
type Signer interface {
	Sign(message io.Reader) ([]byte, error)
}

// Writer commits edits to one branch of a Remote.
type Writer struct {
	Remote Remote
	Branch string
	Author Author
	// Signer, if set, signs every commit the writer makes (each retry's
	// commit anew); nil commits unsigned.
	Signer Signer
	// Scope is the directory the edit works under ("" or "." for the
	// whole repository); every fetch is FetchScoped to it, so what lies
	// elsewhere is fetched only if the edit reads it.
	Scope string
	// Attempts bounds fetch-edit-push rounds; 0 means 30.
	Attempts int
	// Backoff, if set, is the base of an exponential backoff with full
	// jitter between rounds: each wait uniform in [0, min(MaxBackoff,
	// Backoff*2^round)). 0 means a wait on the scale of an attempt: uniform
	// in [0, min(MaxBackoff, t*round)), t the last attempt's time (at
	// least 20ms, at most 500ms), growing linearly. A retry costs little
	// (it fetches what changed), so waiting a round trip or two is enough
	// at first, and linear growth keeps a burst of writers from leaving the
	// branch idle while they sleep: 20 concurrent deploys took 1.96x their
	// sequential time with it, 2.90x with exponential growth from a 500ms
	// base (bench/envbench -writers 20, docs/benchmarks.md).
	Backoff time.Duration
	// MaxBackoff caps one wait; 0 means 5s.
	MaxBackoff time.Duration
	// DryRun computes the edit and its diff but pushes nothing.
	DryRun bool
	Logger *slog.Logger
	// Prepare, if set, runs at the start of every round, beside the fetch
	// of the tip: work the edit will need that does not depend on the tip
	// (the rollback hold's history) starts there, not after it.
	Prepare func(ctx context.Context)
	// Verify, if set, runs on the edited snapshot before every push; an
	// error aborts the update and nothing is pushed.
	Verify func(ctx context.Context, s *Snapshot) error
	// VerifyReads declares Verify a function of the touched files and of
	// what it reads through the snapshot's FS, and of nothing else (no
	// network, no clock): a retry whose edit touches the same files and
	// leaves everything the last passing Verify read as it was is not
	// verified again.
	VerifyReads bool
	// Head, when set, is the branch the commit goes to instead of Branch:
	// a pull request's head. The commit is still made on Branch's tip (the
	// edit, the hold and the validation see Branch), and the push moves
	// Head from what it holds to the new commit: a force update with a
	// lease, allowed only on a Head that HeadCheck accepts, and refused by
	// the server if Head moved after it was read.
	Head string
	// HeadCheck is shown Head's commit before a push replaces it (ferry
	// accepts only its own); an error ends the update, nothing pushed.
	HeadCheck func(ctx context.Context, tip plumbing.Hash, message string) error
	// Publish, when set, makes the commit and moves Branch instead of the
	// git push: it gets the tip the edit was made on, the files the edit
	// changed (content; nil for a file removed) and the message, and
	// returns the new commit (a host's API, whose commits the host signs).
	// ErrBranchMoved from it means the branch moved: the update starts
	// again on the new tip, as after a lost push.
	Publish func(ctx context.Context, base plumbing.Hash, files map[string][]byte, message string) (plumbing.Hash, error)
}

// ErrBranchMoved is what a Publish returns when the branch is no longer
// where the edit was made.
var ErrBranchMoved = errors.New("branch moved")

// UpdateError is a failed Update: its cause, and how many fetch-edit-push
// rounds it began, the failed one included (a fan-out reports it per
// repository). Error is the cause's; errors.Is and errors.As see through
// it.
type UpdateError struct {
	Attempts int
	Err      error
}

func (e *UpdateError) Error() string { return e.Err.Error() }
func (e *UpdateError) Unwrap() error { return e.Err }

// Update fetches the branch, applies edit, and pushes the result with
// compare-and-swap on the fetched tip. When the push loses a race it starts
// again from the new tip, so a concurrent writer's commit is never undone.
// It fails with an *UpdateError.
func (w *Writer) Update(ctx context.Context, edit EditFunc) (*Result, error) {
	res, n, err := w.update(ctx, edit)
	if err != nil {
		return nil, &UpdateError{Attempts: n, Err: err}
	}
	return res, nil
}

// update is Update, returning how many rounds it began.
func (w *Writer) update(ctx context.Context, edit EditFunc) (*Result, int, error) {
	attempts := w.Attempts
	if attempts <= 0 {
		attempts = 30
	}
	maxWait := w.MaxBackoff
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lastErr error
	var again retry
	var took time.Duration // the last attempt's time
	for i := 1; i <= attempts; i++ {
		if i > 1 {
			wait := retryWait(w.Backoff, maxWait, took, i-1)
			log.Info("retrying on a fresh fetch", "branch", w.Branch, "attempt", i, "wait", wait.Round(time.Millisecond), "after", Redact(lastErr.Error()))
			if err := backoff.Sleep(ctx, wait); err != nil {
				return nil, i - 1, fmt.Errorf("updating %s: %w (last: %v)", w.Branch, err, lastErr)
			}
		}
		start := time.Now()
		res, err := w.once(ctx, edit, log, &again)
		took = time.Since(start)
		if err == nil {
			res.Attempts = i
			return res, i, nil
		}
		if !errors.Is(err, errMoved) && !errors.Is(err, errTransient) {
			return nil, i, err
		}
		lastErr = err
	}
	if errors.Is(lastErr, errTransient) {
		return nil, attempts, fmt.Errorf("giving up on %s in %s after %d attempts: %w", w.Branch, w.Remote, attempts, lastErr)
	}
	return nil, attempts, fmt.Errorf("%w: %s in %s moved on every one of %d attempts; another writer is busy, run again (last: %v)", ErrConflict, w.Branch, w.Remote, attempts, lastErr)
}

var errMoved = errors.New("branch moved")

// retryWait is the wait before retry n (1 for the first), as Writer.Backoff
// documents: exponential from base when set, else linear in the last
// attempt's time took. It is never 0, so retries never spin.
func retryWait(base, maxWait, took time.Duration, n int) time.Duration {
	if base > 0 {
		return backoff.Delay(base, maxWait, n) + 1
	}
	step := min(max(took, 20*time.Millisecond), 500*time.Millisecond)
	return backoff.Linear(step, maxWait, n) + 1
}

// once is one attempt. again carries what a lost attempt leaves to the
// next (its objects, what its Verify read); once updates it.
func (w *Writer) once(ctx context.Context, edit EditFunc, log *slog.Logger, again *retry) (*Result, error) {
	if w.Prepare != nil {
		w.Prepare(ctx)
	}
	prev := again.prev
	again.prev = nil // reused by this attempt's fetch, or dropped
	snap, err := fetchScoped(ctx, w.Remote, w.Branch, w.Scope, prev)
	if err != nil {
		return nil, err
	}
	log.Debug("fetched", "branch", w.Branch, "tip", snap.Base.String())
	if !w.DryRun && snap.wire.stateless() && prev == nil {
		// Over HTTP the push's discovery is one GET; ask it now, while
		// the edit and validation run, not after them. Not on a retry:
		// there the branch is busy, and asking after the edit sees a
		// move that happened meanwhile and sends no pack in vain.
		snap.wire.startPush(ctx)
		defer snap.wire.dropPush()
	}
	msg, err := edit(ctx, snap)
	if err != nil {
		return nil, err
	}
	files, err := snap.Touched()
	if err != nil {
		return nil, err
	}
	res := &Result{Parent: snap.Base, Files: files}
	if !snap.Changed() {
		return res, nil
	}
	res.Changed = true
	if err := w.verify(ctx, snap, files, again, log); err != nil {
		return nil, err
	}
	// Only the changed subtrees are compared, so the diff is cheap.
	if res.Diff, err = snap.Diff(); err != nil {
		return nil, fmt.Errorf("computing diff: %w", err)
	}
	if w.DryRun {
		return res, nil
	}
	if w.Publish != nil {
		commit, err := w.publish(ctx, snap, msg)
		if err != nil {
			return nil, err
		}
		res.Commit = commit
		log.Info("published", "branch", w.Branch, "commit", commit.String(), "parent", snap.Base.String())
		return res, nil
	}
	author := object.Signature{Name: w.Author.Name, Email: w.Author.Email, When: w.Author.When}
	if author.When.IsZero() {
		author.When = time.Now()
	}
	commit, err := snap.commit(msg, author, w.Signer)
	if err != nil {
		return nil, fmt.Errorf("writing commit: %w", err)
	}
	if err := w.push(ctx, snap, commit); err != nil {
		if errors.Is(err, errMoved) {
			again.prev = snap
		}
		return nil, err
	}
	res.Commit = commit
	log.Info("pushed", "branch", w.Branch, "commit", commit.String(), "parent", snap.Base.String())
	return res, nil
}

// publish hands the edit's files to Publish.
func (w *Writer) publish(ctx context.Context, snap *Snapshot, msg string) (plumbing.Hash, error) {
	changes, err := snap.FileChanges()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	files := make(map[string][]byte, len(changes))
	for _, c := range changes {
		if c.Action == "removed" {
			files[c.Path] = nil
			continue
		}
		data, err := snap.ReadFile(c.Path)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		files[c.Path] = data
	}
	commit, err := w.Publish(ctx, snap.Base, files, msg)
	if errors.Is(err, ErrBranchMoved) {
		return plumbing.ZeroHash, fmt.Errorf("%w: %v", errMoved, err)
	}
	return commit, err
}

// verify runs w.Verify on snap, unless VerifyReads is set and the last
// passing Verify read the same as snap would.
func (w *Writer) verify(ctx context.Context, snap *Snapshot, touched []string, again *retry, log *slog.Logger) error {
	if w.Verify == nil {
		return nil
	}
	if !w.VerifyReads {
		return w.Verify(ctx, snap)
	}
	if again.verified.same(snap, touched) {
		log.Debug("verified before", "branch", w.Branch, "files", len(touched))
		return nil
	}
	again.verified = nil
	snap.logReads()
	err := w.Verify(ctx, snap)
	rs := snap.readsSince(touched)
	if err == nil {
		again.verified = rs
	}
	return err
}

func (w *Writer) push(ctx context.Context, snap *Snapshot, commit plumbing.Hash) error {
	// The server's own words (a hook's message) arrive on this channel.
	var progress bytes.Buffer
	var leaseErr error
	target, expect := w.Branch, snap.Base
	err := withContext(ctx, func() error {
		var rs *packp.ReportStatus
		var err error
		if w.Head == "" {
			rs, err = snap.wire.push(ctx, snap, w.Branch, commit, progressTo(&progress, w.Remote.Progress))
		} else {
			target = w.Head
			rs, err = snap.wire.pushRef(ctx, snap, plumbing.NewBranchReferenceName(w.Head), commit, progressTo(&progress, w.Remote.Progress),
				func(cur plumbing.Hash, ok bool) (plumbing.Hash, error) {
					expect = cur
					if !ok {
						return plumbing.ZeroHash, nil
					}
					if leaseErr = w.checkHead(ctx, snap, cur); leaseErr != nil {
						return cur, leaseErr
					}
					return cur, nil
				})
		}
		if err == nil && rs != nil {
			err = rs.Error()
		}
		return err
	}, snap.wire.abort)
	if leaseErr != nil {
		return leaseErr
	}
	if errors.Is(err, errStale) {
		return fmt.Errorf("%w: %v", errMoved, err)
	}
	if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pushing %s: %w", w.Branch, ctx.Err())
	}
	// A race lost inside the server's ref lock comes back in several
	// shapes ("failed to update ref", "failed to lock", "atomic transaction
	// failed"); only the remote tip tells for sure.
	tip, lerr := w.remoteTip(ctx)
	switch {
	case lerr != nil && (transient(err) || transient(lerr)):
		return fmt.Errorf("%w: pushing %s to %s: %s", errTransient, w.Branch, w.Remote, Redact(err.Error()))
	case lerr != nil:
		return fmt.Errorf("pushing %s to %s: %s (and listing the branch failed: %s)", w.Branch, w.Remote, Redact(err.Error()), Redact(lerr.Error()))
	case tip == commit:
		return nil // our push landed even though the answer was lost
	case tip != expect:
		return fmt.Errorf("%w: %s is now at %s, not %s", errMoved, target, short(tip), short(expect))
	case transient(err):
		return fmt.Errorf("%w: pushing %s to %s: %s", errTransient, w.Branch, w.Remote, Redact(err.Error()))
	}
	msg := Redact(err.Error())
	if remote := serverMessage(progress.String()); remote != "" {
		msg += "; the server said: " + Redact(remote)
	}
	return fmt.Errorf("%w: %s in %s: %s", ErrRejected, w.Branch, w.Remote, msg)
}

func progressTo(buf *bytes.Buffer, tty io.Writer) io.Writer {
	if tty == nil {
		return buf
	}
	return io.MultiWriter(buf, tty)
}

// serverMessage keeps the lines a server sent on the progress channel that
// are not progress meters, such as a hook's explanation.
func serverMessage(s string) string {
	var out []string
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, "%") || strings.HasPrefix(line, "Total ") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, " / ")
}

// checkHead reads Head's commit cur (its message only) and asks HeadCheck.
func (w *Writer) checkHead(ctx context.Context, snap *Snapshot, cur plumbing.Hash) error {
	if w.HeadCheck == nil {
		return fmt.Errorf("%w: %s exists (at %s) and nothing vouches it may be replaced", ErrRejected, w.Head, short(cur))
	}
	st, ok := snap.s.(*memory.Storage)
	if !ok {
		return fmt.Errorf("reading %s: no storage to fetch into", w.Head)
	}
	if st.HasEncodedObject(cur) != nil {
		if err := snap.wire.fetchObjects(ctx, st, []plumbing.Hash{cur}, packp.FilterTreeDepth(0)); err != nil {
			return w.Remote.fetchError(w.Head, err)
		}
	}
	c, err := object.GetCommit(st, cur)
	if err != nil {
		return fmt.Errorf("reading %s's commit %s: %w", w.Head, short(cur), err)
	}
	return w.HeadCheck(ctx, cur, c.Message)
}

func (w *Writer) remoteTip(ctx context.Context) (plumbing.Hash, error) {
	wr, err := newWire(w.Remote)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var tip plumbing.Hash
	err = withContext(ctx, func() (err error) {
		tip, err = wr.tip(ctx, w.Branch)
		return err
	}, wr.abort)
	return tip, err
}

func short(h plumbing.Hash) string { return h.String()[:12] }

// Redact removes credentials from every URL in s: the password of
// https://user:token@host becomes "***".
func Redact(s string) string {
	out := s
	for _, scheme := range []string{"https://", "http://", "ssh://", "git://"} {
		start := 0
		for {
			i := strings.Index(out[start:], scheme)
			if i < 0 {
				break
			}
			i += start
			rest := out[i+len(scheme):]
			end := strings.IndexAny(rest, "/ \t\n\"'")
			if end < 0 {
				end = len(rest)
			}
			host := rest[:end]
			if at := strings.LastIndexByte(host, '@'); at >= 0 {
				user := host[:at]
				if c := strings.IndexByte(user, ':'); c >= 0 {
					user = user[:c] + ":***"
				} else if scheme != "ssh://" {
					user = "***" // a bare token in the user slot is still a token
				}
				out = out[:i+len(scheme)] + user + host[at:] + rest[end:]
				start = i + len(scheme) + len(user) + len(host) - at
				continue
			}
			start = i + len(scheme)
		}
	}
	return out
}

// SplitCredentials moves user:password out of an http(s) URL so it never
// reaches go-git (whose errors echo URLs). It returns the clean URL and the
// user and password, if any.
func SplitCredentials(raw string) (clean, user, pass string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User == nil {
		return raw, "", ""
	}
	user = u.User.Username()
	pass, _ = u.User.Password()
	u.User = nil
	return u.String(), user, pass
}
