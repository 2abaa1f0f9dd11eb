// Package e2e runs the ferry binary as separate processes against a real
// git http-backend and a registry on 127.0.0.1: many writers at once,
// processes killed mid-flight, interrupts, and registry faults.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
)

var ferryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-e2e-")
	if err != nil {
		panic(err)
	}
	ferryBin = filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", ferryBin, "github.com/ferrycd/ferry/cmd/ferry")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	Changed  bool
	Commit   string
	Attempts int
	Reason   string
}

// ferry runs the binary with the given extra environment.
func ferry(ctx context.Context, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb
}

// appsRepo is an env repo with n plain-YAML apps on candidate.
func appsRepo(t *testing.T, reg *testreg.Registry, n int, opts ...testgit.ServeOption) (*testgit.Repo, string) {
	t.Helper()
	repo := testgit.NewRepo(t, "", "candidate")
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("apps/app%02d/deployment.yaml", i)] = fmt.Sprintf(
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app%02d\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: %s/team/app%02d:v0 # pinned by ferry\n", i, reg.Host, i)
	}
	repo.Commit("candidate", "apps", files)
	srv := testgit.Serve(t, repo, opts...)
	return repo, srv.RepoURL(repo)
}

// Fifty pipelines deploy fifty apps into one branch at once, each its own
// process: every deploy lands, none undoes another, the history stays
// linear. The time against fifty sequential runs is logged.
func TestConcurrentDeploys(t *testing.T) {
	if testing.Short() {
		t.Skip("50 processes; skipped with -short")
	}
	const n = 50
	reg := testreg.Start(t, nil)
	repo, url := appsRepo(t, reg, n)
	digests := map[string]string{}
	for i := range n {
		for _, v := range []string{"v1", "v2"} {
			digests[fmt.Sprintf("%02d%s", i, v)] = reg.Push(t, fmt.Sprintf("team/app%02d:%s", i, v))
		}
	}
	base := repo.Tip("candidate")
	deploy := func(i int, v string) (*result, error) {
		cmd, out, errb := ferry(context.Background(), nil, "deploy", "--repo", url, "--env", "candidate",
			"--path", fmt.Sprintf("apps/app%02d", i), "--image", fmt.Sprintf("%s/team/app%02d:%s", reg.Host, i, v), "--output", "json")
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("app%02d: %v\n%s", i, err, errb)
		}
		var r result
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("app%02d: %v\n%s", i, err, out)
		}
		return &r, nil
	}

	start := time.Now()
	results := make([]*result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = deploy(i, "v1")
		}()
	}
	wg.Wait()
	concurrent := time.Since(start)
	attempts, maxAttempts := 0, 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("deploy %d: %v", i, errs[i])
			continue
		}
		if !results[i].Changed {
			t.Errorf("app%02d: not changed: %+v", i, results[i])
		}
		attempts += results[i].Attempts
		maxAttempts = max(maxAttempts, results[i].Attempts)
	}
	repo.Fsck()
	files := repo.Git("ls-tree", "-r", "--name-only", "candidate")
	for i := range n {
		got := repo.Show("candidate", fmt.Sprintf("apps/app%02d/deployment.yaml", i))
		if !strings.Contains(got, digests[fmt.Sprintf("%02dv1", i)]+" # pinned by ferry") {
			t.Errorf("app%02d's deploy was lost:\n%s", i, got)
		}
	}
	if got := strings.Count(files, "\n") + 1; got != n+1 { // and the seed's README
		t.Errorf("tree has %d files, want %d", got, n+1)
	}
	if got := repo.Git("rev-list", "--count", base+"..candidate"); got != fmt.Sprint(n) {
		t.Errorf("%s new commits, want %d", got, n)
	}
	if merges := repo.Git("rev-list", "--merges", "--count", "candidate"); merges != "0" {
		t.Errorf("%s merges; the history must be linear", merges)
	}

	start = time.Now()
	for i := range n {
		if _, err := deploy(i, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	sequential := time.Since(start)
	t.Logf("50 concurrent deploys: %v (attempts: %d in all, at most %d); 50 sequential: %v; ratio %.2f",
		concurrent.Round(time.Millisecond), attempts, maxAttempts, sequential.Round(time.Millisecond), concurrent.Seconds()/sequential.Seconds())
}

// A deploy killed with SIGKILL at any moment leaves the branch either as it
// was or with the deploy's one commit on top; never anything else.
func TestKillAtRandomMoments(t *testing.T) {
	if testing.Short() {
		t.Skip("many processes; skipped with -short")
	}
	reg := testreg.Start(t, nil)
	// A killed client does not stop git on the server: a push it started
	// may still land. Count requests in flight so each round can wait for
	// the server to finish before looking at the branch.
	var inflight atomic.Int32
	track := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Add(-1)
			next.ServeHTTP(w, r)
		})
	}
	repo, url := appsRepo(t, reg, 1, testgit.WithMiddleware(track))
	reg.Push(t, "team/app00:v1")
	reg.Push(t, "team/app00:v2")
	// How long one deploy takes here, to spread the kills over it.
	cmd, _, errb := ferry(context.Background(), nil, "deploy", "--repo", url, "--env", "candidate", "--path", "apps/app00", "--image", reg.Host+"/team/app00:v1")
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, errb)
	}
	span := time.Since(start)
	rounds, killedMidway, landed := 40, 0, 0
	for i := range rounds {
		before := repo.Tip("candidate")
		v := "v1" // each round changes the file
		if strings.Contains(repo.Show("candidate", "apps/app00/deployment.yaml"), ":v1@") {
			v = "v2"
		}
		cmd, _, _ := ferry(context.Background(), nil, "deploy", "--repo", url, "--env", "candidate", "--path", "apps/app00", "--image", reg.Host+"/team/app00:"+v)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(span + span/2))))
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if err != nil {
			killedMidway++
		}
		for inflight.Load() > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		after := repo.Tip("candidate")
		switch {
		case after == before:
		case repo.Git("rev-parse", after+"^") == before && strings.Contains(repo.Git("log", "-1", "--format=%(trailers)", after), "Ferry-Action: deploy"):
			landed++
		default:
			t.Fatalf("round %d: the branch moved from %s to %s, which is not one deploy on top", i, before, after)
		}
		if err == nil && after == before {
			t.Fatalf("round %d: the deploy finished but nothing landed", i)
		}
	}
	repo.Fsck()
	t.Logf("%d kills over %v; %d killed before exiting; %d rounds landed a commit", rounds, span.Round(time.Millisecond), killedMidway, landed)
}

// hang makes every manifest request wait until the test ends. When arrived
// is not nil, each such request sends on it first, without blocking: a
// buffer of one holds the news that ferry is inside a registry request.
func hang(done <-chan struct{}, arrived chan<- struct{}) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") {
				if arrived != nil {
					select {
					case arrived <- struct{}{}:
					default:
					}
				}
				select {
				case <-done:
				case <-r.Context().Done():
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// SIGINT and SIGTERM stop ferry through its context, promptly and without
// pushing anything, when they arrive while ferry waits on the registry.
func TestInterrupt(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			// A registry and repo of its own, so no request of another
			// subtest's ferry can be taken for this one's.
			done := make(chan struct{})
			arrived := make(chan struct{}, 1)
			reg := testreg.Start(t, hang(done, arrived))
			t.Cleanup(func() { close(done) })
			repo, url := appsRepo(t, reg, 1)
			before := repo.Tip("candidate")
			cmd, _, errb := ferry(context.Background(), nil, "deploy", "--repo", url, "--env", "candidate", "--path", "apps/app00", "--image", reg.Host+"/team/app00:v1")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-arrived: // ferry is inside the registry request
			case <-time.After(30 * time.Second): // a safety net, not a measurement
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("ferry did not reach the registry within 30s:\n%s", errb)
			}
			cmd.Process.Signal(sig)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				if err == nil {
					t.Fatal("exit 0 after an interrupt")
				}
			case <-time.After(30 * time.Second): // a safety net, not a measurement
				cmd.Process.Kill()
				t.Fatal("ferry did not stop after the signal")
			}
			if !strings.Contains(errb.String(), "interrupted") {
				t.Errorf("stderr: %s", errb)
			}
			if repo.Tip("candidate") != before {
				t.Error("the branch moved")
			}
		})
	}
}

// A registry that hangs: ferry gives up at --timeout and says so.
func TestRegistryHangsTimeout(t *testing.T) {
	done := make(chan struct{})
	reg := testreg.Start(t, hang(done, nil))
	t.Cleanup(func() { close(done) })
	repo, url := appsRepo(t, reg, 1)
	before := repo.Tip("candidate")
	cmd, _, errb := ferry(context.Background(), nil, "deploy", "--repo", url, "--env", "candidate", "--path", "apps/app00", "--image", reg.Host+"/team/app00:v1", "--timeout", "1s")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(errb.String(), "gave up after --timeout 1s") {
		t.Errorf("stderr: %s", errb)
	}
	if repo.Tip("candidate") != before {
		t.Error("the branch moved")
	}
}

// A registry that answers 503 and 429 a few times, then recovers: the
// deploy succeeds after bounded retries.
func TestRegistryFlaky(t *testing.T) {
	var failures atomic.Int32
	var armed atomic.Bool // after the test's own push
	flaky := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if armed.Load() && strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodHead {
				switch failures.Add(1) {
				case 1:
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return
				case 2:
					w.Header().Set("Retry-After", "0")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := testreg.Start(t, flaky)
	repo, url := appsRepo(t, reg, 1)
	d := reg.Push(t, "team/app00:v1")
	armed.Store(true)
	cmd, out, errb := ferry(context.Background(), nil, "deploy", "--repo", url, "--env", "candidate", "--path", "apps/app00", "--image", reg.Host+"/team/app00:v1", "--output", "json")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, errb)
	}
	if failures.Load() < 3 {
		t.Fatalf("the registry failed %d times; the fault never happened", failures.Load())
	}
	if !strings.Contains(out.String(), `"changed": true`) || !strings.Contains(repo.Show("candidate", "apps/app00/deployment.yaml"), d) {
		t.Errorf("deploy did not land: %s", out)
	}
	if !strings.Contains(errb.String(), "retrying") {
		t.Errorf("the retries were not logged: %s", errb)
	}
}
