// Package testsshd runs OpenSSH's own sshd on 127.0.0.1 for tests, with
// temporary host keys and a temporary authorized client key, so git over
// SSH is tested against the real server rather than an in-process stand-in.
// Sessions run as the user the tests run as; their commands (git-upload-pack,
// git-receive-pack) are the real git's.
//
// It needs /usr/sbin/sshd and ssh-keygen (Debian: openssh-server); when
// they are missing the test skips, or fails under FERRY_REQUIRE_SERVERS=1
// (internal/testenv).
package testsshd

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testenv"
)

// SSHD is where Debian's openssh-server installs the daemon. sshd insists
// on being started with an absolute path (it re-executes itself).
const SSHD = "/usr/sbin/sshd"

// privsepDir is OpenSSH's compiled-in privilege separation directory; sshd
// started as root refuses to run without it. Debian's init scripts create
// it at boot, which a container never runs.
const privsepDir = "/run/sshd"

// Key is a key pair on disk, made by ssh-keygen.
type Key struct {
	Private string // path of the private key (OpenSSH format, no passphrase)
	Public  string // path of the public key
	// Line is the public key as authorized_keys and known_hosts write it:
	// "ssh-ed25519 AAAA...", without the comment.
	Line string
}

// NewKey makes a key pair of type typ ("ed25519", "ecdsa", "rsa") in a
// temporary directory.
func NewKey(t testing.TB, typ string) Key {
	t.Helper()
	keygen := requireKeygen(t)
	dir := t.TempDir()
	k := Key{Private: filepath.Join(dir, "id_"+typ)}
	k.Public = k.Private + ".pub"
	out, err := exec.Command(keygen, "-q", "-t", typ, "-N", "", "-C", "testsshd", "-f", k.Private).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -t %s: %v\n%s", typ, err, out)
	}
	pub, err := os.ReadFile(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(pub))
	if len(fields) < 2 {
		t.Fatalf("ssh-keygen wrote an odd public key: %q", pub)
	}
	k.Line = fields[0] + " " + fields[1]
	return k
}

// Server is a running sshd.
type Server struct {
	Host string // always 127.0.0.1
	Port int
	// User is the account sessions log in as and run under: the user
	// running the tests (root in CI containers).
	User string
	// ClientKey is authorized to log in as User.
	ClientKey Key
	// HostKeys are the server's host keys, in the order WithHostKeyTypes
	// gave their types.
	HostKeys []Key

	dir  string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
}

// Option adjusts the server.
type Option func(*options)

type options struct{ hostKeyTypes []string }

// WithHostKeyTypes gives the server one host key of each type, e.g.
// "ed25519", "ecdsa". The default is one ed25519 key.
func WithHostKeyTypes(types ...string) Option {
	return func(o *options) { o.hostKeyTypes = types }
}

// Start starts sshd on a free port of 127.0.0.1 and stops it (SIGTERM, then
// wait) when the test ends. When sshd is not installed the test skips, or
// fails under FERRY_REQUIRE_SERVERS=1.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{hostKeyTypes: []string{"ed25519"}}
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := os.Stat(SSHD); err != nil {
		testenv.NeedServer(t, "sshd", fmt.Sprintf("%v (Debian: apt-get install openssh-server; .ci/run installs it)", err))
	}
	requireKeygen(t)
	u, err := user.Current()
	if err != nil {
		t.Fatalf("who am I: %v", err)
	}
	if os.Geteuid() == 0 {
		if err := os.MkdirAll(privsepDir, 0o755); err != nil {
			testenv.NeedServer(t, "sshd", fmt.Sprintf("its privilege separation directory %s: %v", privsepDir, err))
		}
	}

	s := &Server{Host: "127.0.0.1", User: u.Username, dir: t.TempDir(), ClientKey: NewKey(t, "ed25519")}
	for _, typ := range o.hostKeyTypes {
		s.HostKeys = append(s.HostKeys, NewKey(t, typ))
	}
	authorized := filepath.Join(s.dir, "authorized_keys")
	if err := os.WriteFile(authorized, []byte(s.ClientKey.Line+" client\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A free port can be taken between finding it and sshd binding it;
	// then sshd exits at once and another port is tried.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		s.Port = port
		if lastErr = s.start(t, authorized); lastErr == nil {
			return s
		}
	}
	t.Fatalf("starting sshd: %v", lastErr)
	return nil
}

func (s *Server) start(t testing.TB, authorized string) error {
	var conf strings.Builder
	fmt.Fprintf(&conf, "ListenAddress %s\n", s.Addr())
	for _, k := range s.HostKeys {
		fmt.Fprintf(&conf, "HostKey %s\n", k.Private)
	}
	// Absolute paths throughout: sshd must not read /etc/ssh or ~/.ssh.
	fmt.Fprintf(&conf, "AuthorizedKeysFile %s\n", authorized)
	fmt.Fprintf(&conf, "PidFile %s\n", filepath.Join(s.dir, "sshd.pid"))
	conf.WriteString(strings.Join([]string{
		// Temporary files under /tmp are not owned the way StrictModes wants.
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"HostbasedAuthentication no",
		// No PAM stack in a container; without it sshd checks the account
		// itself (a locked password field "!" would refuse the login).
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"PermitTTY no",
		"PrintMotd no",
		"PrintLastLog no",
		"UseDNS no",
		"MaxStartups 100",
		"LogLevel VERBOSE",
	}, "\n") + "\n")
	config := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(config, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	s.log = newSyncBuffer("Server listening on ")
	// -D: stay in the foreground, so this process is the daemon; -e: log to
	// stderr, which the test reads.
	s.cmd = exec.Command(SSHD, "-D", "-e", "-f", config)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	// A session child still holding stderr must not make Wait hang.
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", SSHD, err)
	}
	s.done = make(chan struct{})
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()

	select {
	case <-s.log.ready:
		t.Cleanup(func() { s.stop(t) })
		return nil
	case <-s.done:
		return fmt.Errorf("sshd exited at once (%v):\n%s", s.err, s.log.String())
	case <-time.After(15 * time.Second):
		s.stop(t)
		t.Fatalf("sshd did not start listening within 15s:\n%s", s.log.String())
		return nil
	}
}

// stop sends SIGTERM and waits; a daemon that ignores it is killed.
func (s *Server) stop(t testing.TB) {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			t.Errorf("sshd ignored SIGTERM for 10s; killed")
		}
	}
	if t.Failed() {
		t.Logf("sshd log:\n%s", s.log.String())
	}
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// URL is the ssh:// URL of the repository at the absolute path dir.
func (s *Server) URL(dir string) string {
	return "ssh://" + s.User + "@" + s.Addr() + filepath.ToSlash(dir)
}

// KnownHostsLine is the known_hosts line that vouches for key as this
// server's host key: "[127.0.0.1]:PORT ssh-ed25519 AAAA...".
func (s *Server) KnownHostsLine(key Key) string {
	return "[" + s.Host + "]:" + strconv.Itoa(s.Port) + " " + key.Line
}

// KnownHosts writes a known_hosts file vouching for keys as this server's
// host keys (all of HostKeys when none are given) and returns its path.
func (s *Server) KnownHosts(t testing.TB, keys ...Key) string {
	t.Helper()
	if len(keys) == 0 {
		keys = s.HostKeys
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(s.KnownHostsLine(k) + "\n")
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Log is what sshd has logged so far (LogLevel VERBOSE): accepted and
// refused keys, session commands, errors.
func (s *Server) Log() string { return s.log.String() }

func requireKeygen(t testing.TB) string {
	t.Helper()
	return testenv.LookPath(t, "ssh-keygen", "Debian: apt-get install openssh-client")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}

// syncBuffer collects a process's output and closes ready when a line
// starting with marker appears.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   bool
	ready  chan struct{}
}

func newSyncBuffer(marker string) *syncBuffer {
	return &syncBuffer{marker: marker, ready: make(chan struct{})}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if !b.seen && bytes.Contains(b.buf.Bytes(), []byte(b.marker)) {
		b.seen = true
		close(b.ready)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
