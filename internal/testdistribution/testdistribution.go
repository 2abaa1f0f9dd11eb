// Package testdistribution runs a real registry for tests: Debian's
// docker-registry (CNCF distribution 2.8) on 127.0.0.1 over plain http,
// storing on the filesystem in a temporary directory and demanding HTTP
// basic auth from an htpasswd file with one test user. It covers what the
// in-process registry of internal/testreg does not: a registry that
// challenges for credentials and rejects wrong ones.
//
// It needs the docker-registry binary (Debian: apt-get install
// docker-registry); when it is missing the test skips, or fails under
// FERRY_REQUIRE_SERVERS=1 (internal/testenv).
package testdistribution

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testenv"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// Binary is the name Debian installs distribution's registry under.
const Binary = "docker-registry"

// User is the one account the registry knows.
const User = "ferry-test"

// Registry is a running registry.
type Registry struct {
	Host     string // 127.0.0.1:PORT
	User     string
	Password string // random per registry

	dir  string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
}

// Start runs a registry on a free port of 127.0.0.1 until the test ends
// (then SIGTERM and wait). It returns once /v2/ answers 401.
func Start(t testing.TB) *Registry {
	t.Helper()
	bin := testenv.LookPath(t, Binary, "Debian: apt-get install docker-registry; .ci/run installs it")
	r := &Registry{User: User, Password: randomHex(t, 16), dir: t.TempDir()}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(r.dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A free port can be taken between finding it and the registry binding
	// it; then the registry exits at once and another port is tried.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		r.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = r.start(t, bin, htpasswd); lastErr == nil {
			return r
		}
	}
	t.Fatalf("starting %s: %v", Binary, lastErr)
	return nil
}

func (r *Registry) start(t testing.TB, bin, htpasswd string) error {
	config := filepath.Join(r.dir, "config.yml")
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
auth:
  htpasswd:
    realm: ferry-test
    path: %s
`, filepath.Join(r.dir, "data"), r.Host, randomHex(t, 16), htpasswd)
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	r.log = &syncBuffer{}
	r.cmd = exec.Command(bin, "serve", config)
	// distribution reads REGISTRY_* variables as config overrides (and
	// podman users have REGISTRY_AUTH_FILE set): give it none of ours.
	r.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + r.dir}
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.WaitDelay = 5 * time.Second
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	r.done = make(chan struct{})
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-r.done:
			return fmt.Errorf("%s exited at once (%v):\n%s", Binary, r.err, r.log.String())
		default:
		}
		resp, err := client.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				t.Cleanup(func() { r.stop(t) })
				return nil
			}
			r.stop(t)
			t.Fatalf("%s answered /v2/ with %s, want 401 Unauthorized (is something else on %s?)\n%s",
				Binary, resp.Status, r.Host, r.log.String())
		}
		if time.Now().After(deadline) {
			r.stop(t)
			t.Fatalf("%s did not answer on %s within 20s: %v\n%s", Binary, r.Host, err, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits; a registry that ignores it is killed.
func (r *Registry) stop(t testing.TB) {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
			t.Errorf("%s ignored SIGTERM for 10s; killed", Binary)
		}
	}
	if t.Failed() {
		t.Logf("%s log:\n%s", Binary, r.log.String())
	}
}

// Auth is the test user's credentials.
func (r *Registry) Auth() authn.Authenticator {
	return &authn.Basic{Username: r.User, Password: r.Password}
}

// Push pushes a small random image as HOST/repoTag with the test user's
// credentials and returns its digest. ggcr talks plain http to 127.0.0.1.
func (r *Registry) Push(t testing.TB, repoTag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(r.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(r.Auth())); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// DockerConfig writes a docker config directory whose config.json holds
// user:password for this registry, as `docker login` would, and returns
// the directory, for DOCKER_CONFIG.
func (r *Registry) DockerConfig(t testing.TB, user, password string) string {
	t.Helper()
	cfg := map[string]any{"auths": map[string]any{
		r.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))},
	}}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Log is what the registry has logged so far (warnings and errors).
func (r *Registry) Log() string { return r.log.String() }

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
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

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
