// Package cli is ferry's command line: kong structs whose Run methods only
// check flags, wire the packages together and print the result. Keeping it
// out of package main lets tests run the real CLI in-process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/image"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// DefaultAuthor commits when --author is not given.
const DefaultAuthor = "ferry <ferry@noreply.invalid>"

// Globals are the flags every command takes.
type Globals struct {
	Repo       string        `help:"Environment repository: an https://, ssh:// or file:// URL, user@host:path, or a local path." env:"FERRY_REPO" placeholder:"URL|PATH"`
	GitToken   string        `help:"Token for HTTPS git access, sent as the basic-auth password; never printed." env:"FERRY_GIT_TOKEN,GITHUB_TOKEN" placeholder:"TOKEN"`
	GitUser    string        `help:"User name sent with --git-token." env:"FERRY_GIT_USER" default:"x-access-token"`
	SSHKey     string        `help:"Private key file for SSH git access." env:"FERRY_SSH_KEY" type:"path" name:"ssh-key" placeholder:"FILE"`
	KnownHosts string        `help:"known_hosts file that SSH host keys are verified against (default: SSH_KNOWN_HOSTS, then ~/.ssh/known_hosts)." env:"FERRY_KNOWN_HOSTS" type:"path" placeholder:"FILE"`
	Insecure   bool          `help:"DANGEROUS: accept any SSH host key. Anyone who can intercept the connection can then read and rewrite your environments. For throwaway test setups only." name:"insecure-skip-host-key-check" env:"FERRY_INSECURE_SKIP_HOST_KEY_CHECK"`
	Author     string        `help:"Commit author, \"Name <email>\"." env:"FERRY_AUTHOR" default:"${default_author}"`
	Output     string        `help:"Result format on stdout: text or json." enum:"text,json" default:"text" env:"FERRY_OUTPUT"`
	LogFormat  string        `help:"Log format on stderr: text or json." enum:"text,json" default:"text" env:"FERRY_LOG_FORMAT"`
	Verbose    bool          `help:"Log each step, not only warnings and errors." short:"v" env:"FERRY_VERBOSE"`
	Timeout    time.Duration `help:"Give up on the whole run after this long, hooks included: with hooks, the write stops a tenth of it (at most 10s) earlier, to leave them time to report." default:"5m" env:"FERRY_TIMEOUT"`
	Attempts   int           `help:"Rounds of fetch, edit and push before giving up when other writers keep moving the branch or the connection drops." default:"30" env:"FERRY_ATTEMPTS"`

	stdout, stderr io.Writer
	rawStderr      io.Writer // before redaction, to tell a terminal
	getenv         func(string) string
	log            *slog.Logger
}

// CLI is the root command.
type CLI struct {
	Globals

	Deploy   DeployCmd   `cmd:"" help:"Pin freshly pushed images by digest in an environment branch and push."`
	Promote  PromoteCmd  `cmd:"" help:"Carry a verified commit's state of a directory to another environment."`
	Rollback RollbackCmd `cmd:"" help:"Restore a directory to an earlier state, as a new commit."`
	History  HistoryCmd  `cmd:"" help:"List the commits that changed a directory: who, what, which images, which build."`
	Diff     DiffCmd     `cmd:"" help:"Show what a promote would change, per app and per image."`
	Resolve  ResolveCmd  `cmd:"" help:"Print repo@sha256:... for an image reference."`
	Demo     DemoCmd     `cmd:"" help:"Run the whole flow offline: an in-process registry and a local env repo."`
	Version  VersionCmd  `cmd:"" help:"Print version and build information."`
}

// Exit statuses.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

type exitSignal struct{ code int }

// Run parses args, runs the command and returns the exit status. It is main
// without os.Exit, so tests run the real CLI.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	cli := &CLI{}
	red := &redactor{}
	cli.rawStderr = stderr
	stdout, stderr = red.writer(stdout), red.writer(stderr)
	cli.stdout, cli.stderr, cli.getenv = stdout, stderr, getenv
	parser, err := kong.New(cli,
		kong.Name("ferry"),
		kong.Description("ferry carries images through environments the GitOps way: it pins digests in an environment repo, promotes verified commits, and keeps the branch history as the audit trail."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { panic(exitSignal{c}) }),
		kong.Vars{"default_author": DefaultAuthor, "default_remote_timeout": manifest.DefaultRemoteTimeout.String()},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: false}),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Resolvers(envResolver(getenv)),
	)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return ExitError
	}
	defer func() {
		if r := recover(); r != nil {
			sig, ok := r.(exitSignal)
			if !ok {
				panic(r)
			}
			code = sig.code
			if code != 0 {
				code = ExitUsage
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		if pe := (*kong.ParseError)(nil); errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil {
			fmt.Fprintf(stderr, "Run \"ferry %s --help\" for usage.\n", pe.Context.Selected().Name)
		} else {
			fmt.Fprintln(stderr, "Run \"ferry --help\" for usage.")
		}
		return ExitUsage
	}
	red.add(cli.GitToken)
	if _, _, pass := envrepo.SplitCredentials(cli.Repo); pass != "" {
		red.add(pass)
	}
	if cli.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cli.Timeout)
		defer cancel()
		kctx.BindTo(ctx, (*context.Context)(nil))
	}
	if err := kctx.Run(&cli.Globals); err != nil {
		var silent errSilentExit
		if errors.As(err, &silent) {
			return silent.code
		}
		err = remoteHint(err)
		if errors.Is(err, context.DeadlineExceeded) && cli.Timeout > 0 {
			err = fmt.Errorf("%w (gave up after --timeout %s)", err, cli.Timeout)
		}
		var hooks *errHooksInterrupted
		if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.As(err, &hooks) {
			err = fmt.Errorf("interrupted; nothing was pushed unless a commit is reported above: %w", err)
		}
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		if errors.Is(err, ferry.ErrUsage) {
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

// envResolver makes kong read env vars through getenv rather than the
// process environment, so tests can pass their own.
func envResolver(getenv func(string) string) kong.Resolver {
	return kong.ResolverFunc(func(ctx *kong.Context, parent *kong.Path, flag *kong.Flag) (any, error) {
		for _, name := range flag.Envs {
			if v := getenv(name); v != "" {
				if flag.Enum != "" && !slices.Contains(strings.Split(flag.Enum, ","), v) {
					return nil, fmt.Errorf("%s=%s: --%s must be one of %s", name, v, flag.Name, flag.Enum)
				}
				return v, nil
			}
		}
		return nil, nil
	})
}

func (g *Globals) logger() *slog.Logger {
	if g.log != nil {
		return g.log
	}
	level := slog.LevelWarn
	if g.Verbose {
		level = slog.LevelInfo
	}
	if g.LogFormat == "json" {
		g.log = slog.New(slog.NewJSONHandler(g.stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: cloudLogging}))
	} else {
		g.log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: humanText}))
	}
	return g.log
}

// cloudLogging shapes slog's JSON the way Cloud Logging reads structured
// logs from a build step: "severity" (with WARNING, not WARN) and "message".
func cloudLogging(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		sev := a.Value.String()
		switch lv := a.Value.Any().(type) {
		case slog.Level:
			switch {
			case lv >= slog.LevelError:
				sev = "ERROR"
			case lv >= slog.LevelWarn:
				sev = "WARNING"
			case lv >= slog.LevelInfo:
				sev = "INFO"
			default:
				sev = "DEBUG"
			}
		}
		return slog.String("severity", sev)
	case slog.MessageKey:
		return slog.Attr{Key: "message", Value: a.Value}
	case slog.TimeKey:
		return slog.Attr{Key: "time", Value: a.Value}
	}
	return a
}

// humanText drops the timestamp: CI systems stamp each line already, and a
// person at a terminal does not need it.
func humanText(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// isTerminal reports whether w is a character device, where progress
// meters make sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (g *Globals) author() (object.Signature, error) {
	a, err := mail.ParseAddress(g.Author)
	if err != nil || a.Name == "" {
		return object.Signature{}, fmt.Errorf("%w: --author %q: want \"Name <email>\"", ferry.ErrUsage, g.Author)
	}
	sig := object.Signature{Name: a.Name, Email: a.Address}
	// Like git, honour GIT_AUTHOR_DATE for reproducible commits.
	if d := g.getenv("GIT_AUTHOR_DATE"); d != "" {
		t, err := parseGitDate(d)
		if err != nil {
			return object.Signature{}, fmt.Errorf("%w: GIT_AUTHOR_DATE %q: %v", ferry.ErrUsage, d, err)
		}
		sig.When = t
	}
	return sig, nil
}

// parseGitDate reads the date forms scripts commonly give git: RFC 3339 /
// ISO 8601 and git's internal "@<unix seconds> [+zone]".
func parseGitDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		secs, _, _ := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(secs, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05 -0700", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want RFC 3339 (2026-01-02T15:04:05Z) or @<unix seconds>")
}

func (g *Globals) remote() (envrepo.Remote, error) {
	if strings.TrimSpace(g.Repo) == "" {
		return envrepo.Remote{}, fmt.Errorf("%w: --repo is required (or FERRY_REPO): the environment repository's URL or path", ferry.ErrUsage)
	}
	url, user, pass := envrepo.SplitCredentials(g.Repo)
	r := envrepo.Remote{URL: url}
	if isTerminal(g.rawStderr) && g.LogFormat != "json" {
		r.Progress = g.stderr // the server's "Counting objects" meters
	}
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return r, fmt.Errorf("%w: --repo %s: %v", ferry.ErrUsage, envrepo.Redact(g.Repo), envrepo.Redact(err.Error()))
	}
	switch ep.Protocol {
	case "http", "https":
		switch {
		case g.GitToken != "":
			r.Auth = &githttp.BasicAuth{Username: g.GitUser, Password: g.GitToken}
		case pass != "" || user != "":
			if pass == "" { // https://TOKEN@host: the token sits in the user slot
				user, pass = g.GitUser, user
			}
			r.Auth = &githttp.BasicAuth{Username: user, Password: pass}
		}
	case "ssh":
		auth, err := g.sshAuth(ep)
		if err != nil {
			return r, err
		}
		if auth != nil {
			r.Auth = auth
		}
	}
	return r, nil
}

func (g *Globals) sshAuth(ep *transport.Endpoint) (transport.AuthMethod, error) {
	user := ep.User
	if user == "" {
		user = "git"
	}
	port := ep.Port
	if port <= 0 {
		port = 22
	}
	hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	var helper gitssh.HostKeyCallbackHelper
	switch {
	case g.Insecure:
		slog.New(slog.NewTextHandler(g.stderr, nil)).Warn("SSH host key verification is OFF (--insecure-skip-host-key-check)")
		helper.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	case g.KnownHosts != "":
		if _, err := os.Stat(g.KnownHosts); err != nil {
			return nil, fmt.Errorf("%w: --known-hosts %s: %v", ferry.ErrUsage, g.KnownHosts, errors.Unwrap(err))
		}
		db, err := gitssh.NewKnownHostsDb(g.KnownHosts)
		if err != nil {
			return nil, fmt.Errorf("%w: reading --known-hosts %s: %v", ferry.ErrUsage, g.KnownHosts, err)
		}
		// Ask only for the host key types known_hosts lists for this host,
		// as OpenSSH does; otherwise a server's other key type is taken
		// for a mismatch.
		helper.HostKeyCallback, helper.HostKeyAlgorithms = db.HostKeyCallback(), db.HostKeyAlgorithms(hostPort)
	}
	if g.SSHKey == "" {
		if helper.HostKeyCallback == nil {
			return nil, nil // go-git: ssh-agent and the default known_hosts
		}
		a, err := gitssh.NewSSHAgentAuth(user)
		if err != nil {
			return nil, fmt.Errorf("no --ssh-key and no ssh-agent: %w", err)
		}
		a.HostKeyCallbackHelper = helper
		return a, nil
	}
	a, err := gitssh.NewPublicKeysFromFile(user, g.SSHKey, "")
	if err != nil {
		return nil, fmt.Errorf("reading --ssh-key %s: %w", g.SSHKey, err)
	}
	if helper.HostKeyCallback == nil {
		db, err := gitssh.NewKnownHostsDb()
		if err != nil {
			return nil, fmt.Errorf("no known_hosts to verify the SSH host key (pass --known-hosts): %w", err)
		}
		helper.HostKeyCallback, helper.HostKeyAlgorithms = db.HostKeyCallback(), db.HostKeyAlgorithms(hostPort)
	}
	a.HostKeyCallbackHelper = helper
	return a, nil
}

func (g *Globals) resolver() *image.Resolver {
	return image.NewResolver(image.WithLogger(g.logger()))
}

func (g *Globals) env() (ferry.Env, error) {
	r, err := g.remote()
	if err != nil {
		return ferry.Env{}, err
	}
	a, err := g.author()
	if err != nil {
		return ferry.Env{}, err
	}
	if g.Attempts < 1 {
		return ferry.Env{}, fmt.Errorf("%w: --attempts %d: must be at least 1", ferry.ErrUsage, g.Attempts)
	}
	return ferry.Env{Remote: r, Author: a, Resolver: g.resolver(), Logger: g.logger(), Attempts: g.Attempts}, nil
}

func (g *Globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// redactor replaces secrets in everything written through it. Secrets are
// added after parsing, so it is installed first and filled in later.
type redactor struct{ secrets []string }

func (r *redactor) add(s string) {
	if len(s) >= 4 { // shorter strings would mangle ordinary output
		r.secrets = append(r.secrets, s)
	}
}

func (r *redactor) writer(w io.Writer) io.Writer { return redactWriter{r, w} }

type redactWriter struct {
	r *redactor
	w io.Writer
}

func (rw redactWriter) Write(p []byte) (int, error) {
	s := envrepo.Redact(string(p))
	for _, sec := range rw.r.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	if _, err := io.WriteString(rw.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}
