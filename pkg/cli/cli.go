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
	"net/mail"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kong"
	"github.com/ferrycd/ferry/pkg/config"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/image"
	"github.com/ferrycd/ferry/pkg/manifest"
	"github.com/ferrycd/ferry/pkg/sign"
)

// DefaultAuthor commits when --author is not given.
const DefaultAuthor = "ferry <ferry@noreply.invalid>"

// Globals are the flags every command takes.
type Globals struct {
	Repo       []string      `help:"Environment repository: an https://, ssh:// or file:// URL, user@host:path, or a local path. Repeat it to fan a deploy, promote or rollback out to several (see --parallel)." env:"FERRY_REPO" placeholder:"URL|PATH" sep:"none"`
	GitToken   string        `help:"Token for HTTPS git access, sent as the basic-auth password; never printed." env:"FERRY_GIT_TOKEN,GITHUB_TOKEN" placeholder:"TOKEN"`
	GitUser    string        `help:"User name sent with --git-token." env:"FERRY_GIT_USER" default:"x-access-token"`
	SSHKey     string        `help:"Private key file for SSH git access." env:"FERRY_SSH_KEY" type:"path" name:"ssh-key" placeholder:"FILE"`
	KnownHosts string        `help:"known_hosts file that SSH host keys are verified against (default: SSH_KNOWN_HOSTS, then ~/.ssh/known_hosts)." env:"FERRY_KNOWN_HOSTS" type:"path" placeholder:"FILE"`
	Insecure   bool          `help:"DANGEROUS: accept any SSH host key. Anyone who can intercept the connection can then read and rewrite your environments. For throwaway test setups only." name:"insecure-skip-host-key-check" env:"FERRY_INSECURE_SKIP_HOST_KEY_CHECK"`
	Author     string        `help:"Commit author, \"Name <email>\"." env:"FERRY_AUTHOR" default:"${default_author}"`
	Output     string        `help:"Result format on stdout: text or json; status also markdown (GitHub job summaries, pull-request comments) or html (one self-contained page)." enum:"text,json,markdown,html" default:"text" env:"FERRY_OUTPUT"`
	LogFormat  string        `help:"Log format on stderr: text or json." enum:"text,json" default:"text" env:"FERRY_LOG_FORMAT"`
	Verbose    bool          `help:"Log each step, not only warnings and errors." short:"v" env:"FERRY_VERBOSE"`
	Timeout    time.Duration `help:"Give up on the whole run after this long, hooks included: with hooks, the write stops a tenth of it (at most 10s) earlier, to leave them time to report. There is always a limit (0 is refused: give a large value such as 2h)." default:"5m" env:"FERRY_TIMEOUT"`
	ValuesFile []string      `help:"More Helm values files to read and pin images in, besides the values*.yaml of charts in the repo: a glob on base names, or on paths from the root with a '/' (repeatable)." env:"FERRY_VALUES_FILE" placeholder:"GLOB" sep:","`
	Config     string        `help:"ferry.yaml declaring the environments in promotion order (default: ferry.yaml at the root of the env repo's default branch, read when a command names --app without --path). With it, --env, --from and --to name environments." env:"FERRY_CONFIG" placeholder:"FILE"`
	Attempts   int           `help:"Rounds of fetch, edit and push before giving up when other writers keep moving the branch or the connection drops." default:"30" env:"FERRY_ATTEMPTS"`
	// Keys: the one ferry signs with, and those it trusts. The trusted
	// ones are global, like --known-hosts: a pipeline sets them once
	// (FERRY_ALLOWED_SIGNERS, FERRY_KEYRING) for history and promote.
	SignKey        string `help:"Sign every commit ferry makes with this private key: an OpenSSH key (ed25519, ecdsa, rsa) makes git's SSH signatures, an armored OpenPGP secret key OpenPGP ones. An encrypted key's passphrase is read from FERRY_SIGN_KEY_PASSPHRASE. Neither is ever printed." env:"FERRY_SIGN_KEY" type:"path" placeholder:"FILE"`
	AllowedSigners string `help:"git's allowed_signers file (gpg.ssh.allowedSignersFile): the SSH keys that history --verify and promote --require-signed trust, and the principals they report." env:"FERRY_ALLOWED_SIGNERS" type:"path" placeholder:"FILE"`
	Keyring        string `help:"OpenPGP public keys (gpg --export, armored or not) that history --verify and promote --require-signed trust." env:"FERRY_KEYRING" type:"path" placeholder:"FILE"`

	GitHubAppFlags `embed:""`

	stdout, stderr io.Writer
	rawStderr      io.Writer // before redaction, to tell a terminal
	rawStdout      io.Writer
	red            *redactor      // secrets found later (a ferry.yaml's repo URLs) join it
	cfg            *config.Config // the ferry.yaml the command read, if any
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
	Status   StatusCmd   `cmd:"" help:"Show what runs where: each app's images in each environment, and which are behind, held or drifted."`
	Resolve  ResolveCmd  `cmd:"" help:"Print repo@sha256:... for an image reference."`
	Demo     DemoCmd     `cmd:"" help:"Run the whole flow offline: an in-process registry and a local env repo."`
	Version  VersionCmd  `cmd:"" help:"Print version and build information."`
}

// errUsage marks an error in what was asked, as opposed to what happened
// while doing it: exit status 2.
var errUsage = errors.New("usage")

// flags names, for the messages of a *ferry.FieldError, the flag that
// sets each request field.
var flags = map[string]string{
	"Env": "--env", "Images": "--image", "Path": "--path", "App": "--app", "From": "--from",
	"To": "--to", "Commit": "--commit", "Steps": "--steps", "Limit": "--limit", "Policies": "--policy",
	"FromPath": "--from-path", "FromRepo": "--from-repo", "Carry": "--carry",
}

func flagName(field string) string {
	if f, ok := flags[field]; ok {
		return f
	}
	return field
}

// explain words an error of the packages below in the CLI's terms: a
// request field becomes its flag and a usage error, and a refusal gets the
// flags that lift it.
func explain(err error) error {
	var fe *ferry.FieldError
	var he *ferry.HeldError
	var ue *ferry.UnverifiedError
	switch {
	case errors.As(err, &fe):
		return fmt.Errorf("%w: %s", errUsage, strings.Replace(err.Error(), fe.Error(), fe.Format(flagName), 1))
	case errors.As(err, &ue) && !ue.Status.Signed:
		return fmt.Errorf("%w; sign the commits ferry makes there with --sign-key", err)
	case errors.As(err, &he):
		lift := fmt.Sprintf(". Fix forward, then pass --override-rollback to a %s whose --path contains %s", he.Action, he.Scope)
		if he.Scope != he.Path && (he.Path == "." || strings.HasPrefix(he.Scope, he.Path+"/")) {
			lift += fmt.Sprintf(", or narrow --path to leave %s out", he.Scope)
		}
		return fmt.Errorf("%w%s", err, lift)
	}
	return hint(err)
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
	cli.rawStderr, cli.rawStdout = stderr, stdout
	out := &watchWriter{w: red.writer(stdout)}
	stdout, stderr = out, red.writer(stderr)
	cli.stdout, cli.stderr, cli.getenv, cli.red = stdout, stderr, getenv, red
	// jsonFailure reports a failure, already told on stderr, as one JSON
	// object on stdout when asJSON, unless a result is there already (diff
	// --exit-code, a report followed by a --strict-hooks failure). It
	// returns the exit status.
	jsonFailure := func(asJSON bool, err error, code int, f failure) int {
		if asJSON && !out.used {
			f.Error, f.ExitCode = red.redact(err.Error()), code
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(f)
		}
		return code
	}
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
	kctx, err := parser.Parse(negativeNumbers(parser.Model, args))
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		// What was parsed before the error is not to be trusted; only the
		// command is reported.
		var f failure
		if pe := (*kong.ParseError)(nil); errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil {
			f.Action = pe.Context.Selected().Name
			fmt.Fprintf(stderr, "Run \"ferry %s --help\" for usage.\n", f.Action)
		} else {
			fmt.Fprintln(stderr, "Run \"ferry --help\" for usage.")
		}
		return jsonFailure(wantsJSON(args, getenv), err, ExitUsage, f)
	}
	red.add(cli.GitToken)
	red.add(getenv(signKeyPassphrase))
	for _, u := range append(cli.Repo, cli.Promote.FromRepo) {
		if _, _, pass := envrepo.SplitCredentials(u); pass != "" {
			red.add(pass)
		}
	}
	if err := checkTimeout(cli.Timeout); err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return jsonFailure(cli.Output == "json", err, ExitUsage, cli.describe(kctx.Command()))
	}
	if (cli.Output == "markdown" || cli.Output == "html") && !strings.HasPrefix(kctx.Command(), "status") {
		err := fmt.Errorf("--output %s is for status; %s prints text or json", cli.Output, kctx.Command())
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return ExitUsage
	}
	if cli.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cli.Timeout)
		defer cancel()
		kctx.BindTo(ctx, (*context.Context)(nil))
	}
	if err := cli.run(ctx, kctx); err != nil {
		var silent errSilentExit
		if errors.As(err, &silent) {
			return silent.code
		}
		err = explain(err)
		if errors.Is(err, context.DeadlineExceeded) && cli.Timeout > 0 {
			err = fmt.Errorf("%w (gave up after --timeout %s)", err, cli.Timeout)
		}
		var hooks *errHooksInterrupted
		if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.As(err, &hooks) {
			err = fmt.Errorf("interrupted; nothing was pushed unless a commit is reported above: %w", err)
		}
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		code := ExitError
		if errors.Is(err, errUsage) {
			code = ExitUsage
		}
		return jsonFailure(cli.Output == "json", err, code, cli.describe(kctx.Command()))
	}
	return ExitOK
}

// checkTimeout refuses a --timeout that is not positive: 0 used to mean
// "no limit", and a run that can hang forever is not one ferry starts.
func checkTimeout(d time.Duration) error {
	switch {
	case d == 0:
		return fmt.Errorf("%w: --timeout 0: must be positive; ferry never runs without a time limit (give a large value such as 2h)", errUsage)
	case d < 0:
		return fmt.Errorf("%w: --timeout %s: must be positive", errUsage, d)
	}
	return nil
}

// failure is the one JSON object printed on stdout when a run with
// --output json fails: the message as stderr has it (redacted), the exit
// status, and what the command line said about the run.
type failure struct {
	Action   string `json:"action,omitempty"`
	Branch   string `json:"branch,omitempty"`
	Path     string `json:"path,omitempty"`
	App      string `json:"app,omitempty"`
	Error    string `json:"error"`
	ExitCode int    `json:"exitCode"`
}

// describe fills in what the parsed command line says about the run: the
// command, the branch it writes or reads, the scope in its clean form and
// the app (given, or named after the scope as the writes name it).
func (c *CLI) describe(command string) failure {
	var f failure
	f.Action, _, _ = strings.Cut(command, " ")
	switch f.Action {
	case "deploy":
		f.Branch, f.Path, f.App = c.Deploy.Env, c.Deploy.Path.value(), c.Deploy.App
	case "promote":
		f.Branch, f.Path, f.App = c.Promote.To, c.Promote.Path.value(), c.Promote.App
	case "rollback":
		f.Branch, f.Path, f.App = c.Rollback.Env, c.Rollback.Path.value(), c.Rollback.App
	case "history":
		f.Branch, f.Path = c.History.Env, c.History.Path.value()
	case "diff":
		f.Branch, f.Path = c.Diff.To, c.Diff.Path.value()
	}
	f.Path = cleanPath(f.Path)
	switch f.Action {
	case "deploy", "promote", "rollback":
		if f.App == "" && f.Path != "" && f.Path != "." {
			f.App = f.Path[strings.LastIndexByte(f.Path, '/')+1:]
		}
	}
	return f
}

// cleanPath is --path in the form ferry records ("apps/hello/" is
// "apps/hello"), for what is reported before or without ferry's own check;
// a path that check would refuse is left as given.
func cleanPath(p string) string {
	if clean, err := envrepo.NormalScope(p); err == nil {
		return clean
	}
	return p
}

// wantsJSON reports whether the command line or FERRY_OUTPUT asks for JSON
// output, read from the raw arguments for when they do not parse. The last
// --output wins, as in parsing.
func wantsJSON(args []string, getenv func(string) string) bool {
	v, seen := "", false
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--output" && i+1 < len(args) {
			v, seen = args[i+1], true
		} else if rest, ok := strings.CutPrefix(a, "--output="); ok {
			v, seen = rest, true
		}
	}
	if !seen {
		v = getenv("FERRY_OUTPUT")
	}
	return v == "json"
}

// negativeNumbers joins a flag that takes a number or a duration to a
// negative value given as the next argument ("--attempts -1" becomes
// "--attempts=-1"). kong takes any argument starting with "-" for a flag
// and stops with "(short flag)"; joined, the value reaches the check that
// says what it must be. Only values that look like numbers are joined, so
// "--env -x" still gets kong's hint, and a flag never swallows the next
// flag (kong.WithHyphenPrefixedParameters would: "--repo --env x" would
// take "--env" for the repository).
func negativeNumbers(app *kong.Application, args []string) []string {
	numeric := map[string]bool{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if !f.Target.IsValid() {
				continue
			}
			t := f.Target.Type()
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			switch t.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
				numeric["--"+f.Name] = true // time.Duration is an int64
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(app.Node)
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if numeric[a] && i+1 < len(args) && len(args[i+1]) > 1 && args[i+1][0] == '-' &&
			(args[i+1][1] >= '0' && args[i+1][1] <= '9' || args[i+1][1] == '.') {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
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

func (g *Globals) author() (envrepo.Author, error) {
	a, err := mail.ParseAddress(g.Author)
	if err != nil || a.Name == "" {
		return envrepo.Author{}, fmt.Errorf("%w: --author %q: want \"Name <email>\"", errUsage, g.Author)
	}
	sig := envrepo.Author{Name: a.Name, Email: a.Address}
	// Like git, honour GIT_AUTHOR_DATE for reproducible commits.
	if d := g.getenv("GIT_AUTHOR_DATE"); d != "" {
		t, err := parseGitDate(d)
		if err != nil {
			return envrepo.Author{}, fmt.Errorf("%w: GIT_AUTHOR_DATE %q: %v", errUsage, d, err)
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

// remoteOptions are how --repo, and every repo a ferry.yaml names, is
// reached: credentials, host keys, progress.
func (g *Globals) remoteOptions() []envrepo.Option {
	opts := []envrepo.Option{envrepo.WithLogger(g.logger()), envrepo.WithToken(g.GitUser, g.GitToken)}
	opts = append(opts, g.appOptions()...)
	if isTerminal(g.rawStderr) && g.LogFormat != "json" {
		opts = append(opts, envrepo.WithProgress(g.stderr)) // the server's "Counting objects" meters
	}
	if g.SSHKey != "" {
		opts = append(opts, envrepo.WithSSHKey(g.SSHKey))
	}
	if g.KnownHosts != "" {
		opts = append(opts, envrepo.WithKnownHosts(g.KnownHosts))
	}
	if g.Insecure {
		opts = append(opts, envrepo.WithInsecureIgnoreHostKey())
	}
	return opts
}

// remoteFor reaches another env repo (one a ferry.yaml names) with the
// credentials and host keys of --repo. An unusable URL comes back as a
// Remote the first fetch refuses with its reason.
func (g *Globals) remoteFor(url string) envrepo.Remote {
	r, err := envrepo.Open(url, g.remoteOptions()...)
	if err != nil {
		return envrepo.Remote{URL: url}
	}
	return r
}

func (g *Globals) remote() (envrepo.Remote, error) {
	if len(g.Repo) == 0 || strings.TrimSpace(g.Repo[0]) == "" {
		return envrepo.Remote{}, fmt.Errorf("%w: --repo is required (or FERRY_REPO): the environment repository's URL or path", errUsage)
	}
	// With several, the first stands for the rest where one is read (a
	// ferry.yaml, the source of a promote); writes fan out to all.
	r, err := envrepo.Open(g.Repo[0], g.remoteOptions()...)
	var urlErr *envrepo.URLError
	var fileErr *envrepo.FileError
	switch {
	case err == nil:
		return r, nil
	case errors.As(err, &urlErr):
		return r, fmt.Errorf("%w: --repo %s: %v", errUsage, urlErr.URL, urlErr.Err)
	case errors.As(err, &fileErr) && fileErr.What == "known hosts" && fileErr.Path == "":
		return r, fmt.Errorf("no known_hosts to verify the SSH host key (pass --known-hosts): %w", fileErr.Err)
	case errors.As(err, &fileErr) && fileErr.What == "known hosts":
		return r, fmt.Errorf("%w: --known-hosts %s: %v", errUsage, fileErr.Path, fileErr.Err)
	case errors.As(err, &fileErr):
		return r, fmt.Errorf("reading --ssh-key %s: %w", fileErr.Path, fileErr.Err)
	case errors.Is(err, envrepo.ErrNoSSHAuth):
		return r, fmt.Errorf("no --ssh-key and no ssh-agent: %w", errors.Unwrap(err))
	}
	return r, err
}

// hint adds to an error from the env repo or validation what the user can do about it,
// in the CLI's words: the flags to pass or check.
func hint(err error) error {
	if said := (saidWhatToDo{}); errors.As(err, &said) {
		return err
	}
	for _, h := range []struct {
		target error
		say    string
	}{
		{envrepo.ErrAuthRequired, "; pass --git-token (or FERRY_GIT_TOKEN, GITHUB_TOKEN) or --ssh-key"},
		{envrepo.ErrAuthRejected, "; check --git-token or --ssh-key"},
		{envrepo.ErrHostKeyMismatch, "; verify the key and update --known-hosts"},
		{envrepo.ErrHostKeyUnknown, "; add its verified key to --known-hosts"},
		{envrepo.ErrKeyNotAccepted, ": check --ssh-key and the user in the URL"},
		{envrepo.ErrNotGitRepo, " (check --repo)"},
		{manifest.ErrRemoteResource, " (vendor them into the env repo, or pass --allow-remote-resources to fetch them)"},
		{manifest.ErrRemoteTimeout, " (gave up after --remote-timeout)"},
	} {
		if errors.Is(err, h.target) {
			return fmt.Errorf("%w%s", err, h.say)
		}
	}
	return err
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
		return ferry.Env{}, fmt.Errorf("%w: --attempts %d: must be at least 1", errUsage, g.Attempts)
	}
	return ferry.Env{Remote: r, Author: a, Resolver: g.resolver(), Logger: g.logger(), Attempts: g.Attempts, ValuesFiles: g.ValuesFile, RemoteFor: g.remoteFor}, nil
}

// signKeyPassphrase is the environment variable that holds --sign-key's
// passphrase: never a flag, which ps and shell histories would show.
const signKeyPassphrase = "FERRY_SIGN_KEY_PASSPHRASE"

// writeEnv is env for a command that commits: with --sign-key, its commits
// are signed.
func (g *Globals) writeEnv() (ferry.Env, error) {
	e, err := g.env()
	if err != nil || g.SignKey == "" {
		return e, err
	}
	s, err := sign.Load(g.SignKey, []byte(g.getenv(signKeyPassphrase)))
	switch {
	case errors.Is(err, sign.ErrPassphraseNeeded):
		return e, fmt.Errorf("%w: --sign-key %s: the key is encrypted: set %s", errUsage, g.SignKey, signKeyPassphrase)
	case errors.Is(err, sign.ErrWrongPassphrase):
		return e, fmt.Errorf("%w: --sign-key %s: %s does not decrypt the key", errUsage, g.SignKey, signKeyPassphrase)
	case err != nil:
		// sign's errors never quote the key.
		return e, fmt.Errorf("%w: --sign-key: %v", errUsage, err)
	}
	g.logger().Info("signing commits", "format", s.Format(), "key", s.ID())
	e.Signer = s
	return e, nil
}

// verifier loads --allowed-signers and --keyring for flag (--verify,
// --require-signed), which needs at least one of them.
func (g *Globals) verifier(flag string) (sign.Verifier, error) {
	if g.AllowedSigners == "" && g.Keyring == "" {
		return sign.Verifier{}, fmt.Errorf("%w: %s needs --allowed-signers (SSH signatures) or --keyring (OpenPGP), or FERRY_ALLOWED_SIGNERS, FERRY_KEYRING: the keys to trust", errUsage, flag)
	}
	v, err := sign.LoadVerifier(g.AllowedSigners, g.Keyring)
	if err != nil {
		return v, fmt.Errorf("%w: %s: %v", errUsage, flag, err)
	}
	return v, nil
}

func (g *Globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// redactor replaces secrets in everything written through it, and shows
// control characters other than newline, tab and CR escaped (ESC as
// \u001b, see ferry.Printable), so repository content cannot drive the
// terminal. JSON is not harmed: encoding/json and slog escape C0 already,
// and DEL or a C1 control inside a JSON string become the JSON escape for
// the same character. Secrets are added after parsing, so it is installed
// first and filled in later.
type redactor struct {
	secrets []string
	mu      sync.Mutex // one write at a time, whoever logs
}

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

// redact replaces URL credentials and the secrets added so far.
func (r *redactor) redact(s string) string {
	s = envrepo.Redact(s)
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

func (rw redactWriter) Write(p []byte) (int, error) {
	s := ferry.Printable(rw.r.redact(string(p)), "\n\t\r")
	rw.r.mu.Lock()
	defer rw.r.mu.Unlock()
	if _, err := io.WriteString(rw.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// watchWriter notes whether anything was written to stdout, so that a
// failure adds its JSON object only where no result was printed.
type watchWriter struct {
	w    io.Writer
	used bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.used = w.used || len(p) > 0
	return w.w.Write(p)
}
