package envrepo

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// Option configures Open.
type Option func(*openOptions)

type openOptions struct {
	user, token     string
	sshKey          string
	knownHosts      string
	insecureHostKey bool
	progress        io.Writer
	logger          *slog.Logger
	authRetry       AuthRetry
}

// WithToken authenticates over HTTPS with token as the basic-auth password
// and user as the name (GitHub and GitLab take any name with a token;
// "x-access-token" when user is empty). Without it, credentials written
// into the URL (https://user:token@host/...) are used, and never echoed.
func WithToken(user, token string) Option {
	return func(o *openOptions) { o.user, o.token = user, token }
}

// WithSSHKey authenticates over SSH with the private key in file. Without
// it, ssh-agent is asked.
func WithSSHKey(file string) Option { return func(o *openOptions) { o.sshKey = file } }

// WithKnownHosts verifies SSH host keys against file. Without it, the
// files SSH_KNOWN_HOSTS names, then ~/.ssh/known_hosts, are read.
func WithKnownHosts(file string) Option { return func(o *openOptions) { o.knownHosts = file } }

// WithInsecureIgnoreHostKey accepts any SSH host key: anyone who can
// intercept the connection can then read and rewrite the repository. For
// throwaway test setups only; it logs a warning.
func WithInsecureIgnoreHostKey() Option { return func(o *openOptions) { o.insecureHostKey = true } }

// WithProgress sends the server's progress messages (counting objects and
// the like) to w, for a terminal.
func WithProgress(w io.Writer) Option { return func(o *openOptions) { o.progress = w } }

// WithLogger logs warnings (an insecure host key setting) to l; the
// default discards them.
func WithLogger(l *slog.Logger) Option { return func(o *openOptions) { o.logger = l } }

// URLError is a repository URL that cannot be used.
type URLError struct {
	URL string // without credentials
	Err error
}

func (e *URLError) Error() string { return fmt.Sprintf("repository URL %s: %v", e.URL, e.Err) }
func (e *URLError) Unwrap() error { return e.Err }

// FileError is a file an option names (an SSH key, a known_hosts file)
// that cannot be used.
type FileError struct {
	What string // "ssh key" or "known hosts"
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s %s: %v", e.What, e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// ErrNoSSHAuth: an SSH remote without a key and without an ssh-agent.
var ErrNoSSHAuth = errors.New("no SSH key and no ssh-agent")

// Open returns the env repository at url (https://, http://, ssh://,
// user@host:path, file:// or a local path) with the credentials and host
// key checks the options give. It reads the key and known_hosts files
// named, but makes no connection. Credentials in the URL are moved out of
// it, so go-git's errors, which echo URLs, cannot show them.
func Open(url string, opts ...Option) (Remote, error) {
	var o openOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.user == "" {
		o.user = "x-access-token"
	}
	clean, user, pass := SplitCredentials(url)
	r := Remote{URL: clean, Progress: o.progress, authRetry: o.authRetry}
	ep, err := transport.NewEndpoint(clean)
	if err != nil {
		return r, &URLError{URL: Redact(url), Err: errors.New(Redact(err.Error()))}
	}
	switch ep.Protocol {
	case "http", "https":
		switch {
		case o.token != "":
			r.Auth = &githttp.BasicAuth{Username: o.user, Password: o.token}
		case pass != "" || user != "":
			if pass == "" { // https://TOKEN@host: the token sits in the user slot
				user, pass = o.user, user
			}
			r.Auth = &githttp.BasicAuth{Username: user, Password: pass}
		}
	case "ssh":
		auth, err := o.sshAuth(ep)
		if err != nil {
			return r, err
		}
		if auth != nil {
			r.Auth = auth
		}
	}
	return r, nil
}

func (o *openOptions) sshAuth(ep *transport.Endpoint) (transport.AuthMethod, error) {
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
	case o.insecureHostKey:
		if o.logger != nil {
			o.logger.Warn("SSH host key verification is OFF: anyone who can intercept the connection can read and rewrite the repository")
		}
		helper.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	case o.knownHosts != "":
		if _, err := os.Stat(o.knownHosts); err != nil {
			return nil, &FileError{What: "known hosts", Path: o.knownHosts, Err: errors.Unwrap(err)}
		}
		db, err := gitssh.NewKnownHostsDb(o.knownHosts)
		if err != nil {
			return nil, &FileError{What: "known hosts", Path: o.knownHosts, Err: err}
		}
		// Ask only for the host key types known_hosts lists for this host,
		// as OpenSSH does; otherwise a server's other key type is taken
		// for a mismatch.
		helper.HostKeyCallback, helper.HostKeyAlgorithms = db.HostKeyCallback(), db.HostKeyAlgorithms(hostPort)
	}
	if o.sshKey == "" {
		if helper.HostKeyCallback == nil {
			return nil, nil // go-git: ssh-agent and the default known_hosts
		}
		a, err := gitssh.NewSSHAgentAuth(user)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoSSHAuth, err)
		}
		a.HostKeyCallbackHelper = helper
		return a, nil
	}
	a, err := gitssh.NewPublicKeysFromFile(user, o.sshKey, "")
	if err != nil {
		return nil, &FileError{What: "ssh key", Path: o.sshKey, Err: err}
	}
	if helper.HostKeyCallback == nil {
		db, err := gitssh.NewKnownHostsDb()
		if err != nil {
			return nil, &FileError{What: "known hosts", Err: err}
		}
		helper.HostKeyCallback, helper.HostKeyAlgorithms = db.HostKeyCallback(), db.HostKeyAlgorithms(hostPort)
	}
	a.HostKeyCallbackHelper = helper
	return a, nil
}
