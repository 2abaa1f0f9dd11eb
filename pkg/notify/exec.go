package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
)

// drainTimeout bounds the wait for a hook's output after it exited and its
// process group was killed (a process that left the group may still hold
// the pipe).
const drainTimeout = time.Second

// Exec returns a hook that runs argv[0] with the arguments argv[1:] as
// they are: no shell, so nothing is split, globbed or expanded. argv[0] is
// looked up in PATH when it has no slash.
//
// The hook's environment is ferry's own plus these, always set, empty when
// unknown: FERRY_ACTION, FERRY_RESULT, FERRY_ENV, FERRY_APP, FERRY_PATH,
// FERRY_COMMIT, FERRY_PREVIOUS_COMMIT, FERRY_IMAGES (the image refs,
// space-separated), FERRY_DIGEST (the first image's digest),
// FERRY_SOURCE_REPO, FERRY_SOURCE_COMMIT, FERRY_BUILD_ID, FERRY_BUILD_URL,
// FERRY_PROMOTED_FROM, FERRY_ROLLBACK_TO, FERRY_ERROR, and FERRY_EVENT (the
// Event as JSON). Standard input is empty.
//
// The hook runs in its own process group. When an attempt times out, or ctx
// is done, the whole group is killed (SIGKILL); when the hook exits, what
// it left running in its group is killed too. A non-zero exit status is a
// failure, and the error quotes the last line the hook wrote to stderr
// (else to stdout).
//
// Defaults: 60s per attempt, 1 attempt, output logged line by line at info
// (see WithOutput).
func Exec(argv []string, opts ...Option) Hook {
	h := &execHook{argv: slices.Clone(argv), opts: newOptions(60*time.Second, 1, opts)}
	h.name = "exec"
	if len(argv) > 0 && argv[0] != "" {
		h.name += " " + argv[0]
	}
	return h
}

type execHook struct {
	name string
	argv []string
	opts options
}

func (h *execHook) Name() string { return h.name }

func (h *execHook) fail(cause error, format string, args ...any) error {
	return &hookError{msg: h.name + ": " + fmt.Sprintf(format, args...), err: cause}
}

func (h *execHook) Fire(ctx context.Context, ev Event) error {
	if len(h.argv) == 0 || h.argv[0] == "" {
		err := errors.New("no command given")
		return h.fail(err, "%v", err)
	}
	env, err := hookEnv(ev)
	if err != nil {
		return h.fail(err, "%v", err)
	}
	env = append(os.Environ(), env...)
	n := h.opts.attempts
	for attempt := 1; ; attempt++ {
		err := h.run(ctx, env)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return h.fail(ctx.Err(), "%v", err)
		}
		if attempt >= n {
			if n > 1 {
				return h.fail(err, "gave up after %d attempts: %v", attempt, err)
			}
			return h.fail(err, "%v", err)
		}
		delay := h.opts.backoffDelay(attempt)
		h.opts.logger.WarnContext(ctx, "hook attempt failed, retrying",
			"hook", h.name, "attempt", attempt, "of", n, "delay", delay, "error", err.Error())
		if serr := backoff.Sleep(ctx, delay); serr != nil {
			return h.fail(serr, "%v (waiting to retry after %d failed attempts; last error: %v)", serr, attempt, err)
		}
	}
}

// run runs the hook once.
func (h *execHook) run(ctx context.Context, env []string) error {
	actx, cancel := context.WithTimeout(ctx, h.opts.timeout)
	defer cancel()

	// The hook writes into pipes of ours rather than into exec's, so that
	// Wait returns when the hook exits even if something it started still
	// holds them: that is killed next.
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return err
	}
	defer errR.Close()

	cmd := exec.Command(h.argv[0], h.argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = outW, errW
	newProcessGroup(cmd)
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		return err
	}

	outTail, errTail := &tailWriter{}, &tailWriter{}
	stdout, stderr, flush := h.outputs()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(io.MultiWriter(stdout, outTail), outR) })
	wg.Go(func() { _, _ = io.Copy(io.MultiWriter(stderr, errTail), errR) })

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-actx.Done():
		killProcessGroup(cmd.Process)
		werr = <-waited
	}
	killProcessGroup(cmd.Process) // whatever the hook left behind

	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		outR.Close()
		errR.Close()
		<-drained
	}
	flush()

	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case actx.Err() != nil:
		return fmt.Errorf("%w; process group killed", &timeoutError{h.opts.timeout})
	case werr != nil:
		last := errTail.lastLine()
		if last == "" {
			last = outTail.lastLine()
		}
		if last != "" {
			return fmt.Errorf("%w: %s", werr, last)
		}
		return werr
	}
	return nil
}

// outputs returns where the hook's stdout and stderr go, and a function
// that flushes them once the hook is done.
func (h *execHook) outputs() (stdout, stderr io.Writer, flush func()) {
	if h.opts.output != nil {
		w := &lockedWriter{w: h.opts.output}
		return w, w, func() {}
	}
	o := &lineLogger{log: h.opts.logger, hook: h.name, stream: "stdout"}
	e := &lineLogger{log: h.opts.logger, hook: h.name, stream: "stderr"}
	return o, e, func() { o.flush(); e.flush() }
}

// hookEnv returns the FERRY_* variables for ev.
func hookEnv(ev Event) ([]string, error) {
	js, err := json.Marshal(ev.normalized())
	if err != nil {
		return nil, fmt.Errorf("encoding the event: %w", err)
	}
	var refs []string
	for _, im := range ev.Images {
		refs = append(refs, im.Ref)
	}
	digest := ""
	if len(ev.Images) > 0 {
		digest = ev.Images[0].Digest
	}
	vars := []struct{ k, v string }{
		{"FERRY_ACTION", ev.Action},
		{"FERRY_RESULT", ev.Result},
		{"FERRY_ENV", ev.Env},
		{"FERRY_APP", ev.App},
		{"FERRY_PATH", ev.Path},
		{"FERRY_COMMIT", ev.Commit},
		{"FERRY_PREVIOUS_COMMIT", ev.Previous},
		{"FERRY_IMAGES", strings.Join(refs, " ")},
		{"FERRY_DIGEST", digest},
		{"FERRY_SOURCE_REPO", ev.SourceRepo},
		{"FERRY_SOURCE_COMMIT", ev.SourceCommit},
		{"FERRY_BUILD_ID", ev.BuildID},
		{"FERRY_BUILD_URL", ev.BuildURL},
		{"FERRY_PROMOTED_FROM", ev.PromotedFrom},
		{"FERRY_ROLLBACK_TO", ev.RollbackTo},
		{"FERRY_ERROR", ev.Error},
		{"FERRY_EVENT", string(js)},
	}
	env := make([]string, 0, len(vars))
	for _, kv := range vars {
		// A NUL cannot pass through the environment.
		env = append(env, kv.k+"="+strings.ReplaceAll(kv.v, "\x00", ""))
	}
	return env, nil
}

// lockedWriter serialises writes from the stdout and stderr copiers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// maxLine is the longest line a lineLogger logs in one record.
const maxLine = 4 << 10

// lineLogger logs what a hook prints, one record per line.
type lineLogger struct {
	log    *slog.Logger
	hook   string
	stream string
	buf    []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) >= maxLine {
				l.emit(l.buf[:maxLine])
				l.buf = l.buf[maxLine:]
				continue
			}
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineLogger) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) > maxLine {
		line = line[:maxLine]
	}
	l.log.Info("hook output", "hook", l.hook, "stream", l.stream, "line", string(line))
}

// tailKeep is how much of a hook's output a tailWriter keeps.
const tailKeep = 1 << 10

// tailWriter keeps the end of one of a hook's streams, to quote it in an
// error. Only that stream's copier writes to it, before lastLine is read.
type tailWriter struct {
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailKeep {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-tailKeep:]...)
	}
	return len(p), nil
}

// lastLine is the last non-blank line written, cut to maxQuoted bytes.
func (t *tailWriter) lastLine() string {
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return quote([]byte(lines[len(lines)-1]), maxQuoted)
}
