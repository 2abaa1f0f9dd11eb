package ferry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/testgit"
	"github.com/ferrycd/ferry/internal/testreg"
	"github.com/ferrycd/ferry/pkg/envrepo"
	"github.com/ferrycd/ferry/pkg/ferry"
	"github.com/ferrycd/ferry/pkg/image"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fleet is one env repo per region, copies of one template, all behind
// one git http-backend as on one git host.
type fleet struct {
	reg   *testreg.Registry
	repos []*testgit.Repo
	urls  []string
	env   ferry.Env
}

func newFleet(t *testing.T, n int, opts ...testgit.ServeOption) *fleet {
	t.Helper()
	reg := testreg.Start(t, nil)
	tmpl := testgit.NewRepoFromTemplate(t, "../../testdata/envrepo", []string{"REGISTRY", reg.Host}, "candidate", "production")
	root := t.TempDir()
	f := &fleet{reg: reg}
	for i := range n {
		f.repos = append(f.repos, tmpl.CopyTo(t, root, fmt.Sprintf("region%02d.git", i)))
	}
	srv := testgit.ServeRoot(t, root, opts...)
	for _, r := range f.repos {
		f.urls = append(f.urls, srv.RepoURL(r))
	}
	f.env = ferry.Env{
		Author:   envrepo.Author{Name: "ferry test", Email: "ferry@example.com"},
		Resolver: image.NewResolver(image.WithRetry(2, time.Millisecond)),
		Attempts: 3,
		Backoff:  time.Millisecond,
	}
	return f
}

func targets(urls ...string) []ferry.Target {
	var ts []ferry.Target
	for _, u := range urls {
		ts = append(ts, ferry.Target{URL: u})
	}
	return ts
}

// One build to 30 regions at once, four at a time, with a region of every
// kind of failure among them: the healthy ones land, the others are each
// reported with their cause and left as they were, and nothing is dropped.
func TestFanOutDeployThirtyRepos(t *testing.T) {
	const n = 30
	f := newFleet(t, n)
	digest := f.reg.Push(t, "team/hello:v1")
	pinned := f.reg.Host + "/team/hello:v1@" + digest

	// Region 3 has no candidate branch; region 11's host refuses every
	// push, in words with a control character in them.
	const missing, refused = 3, 11
	f.repos[missing].Git("update-ref", "-d", "refs/heads/candidate")
	f.repos[refused].Hook("pre-receive", "#!/bin/sh\nprintf 'policy: no \\033[2J\\n' >&2\nexit 1\n")
	// A host that never answers, first in line so it holds a worker for
	// the whole run, and one that is not there.
	hung, gone := testgit.HangingURL(t), testgit.ClosedURL(t)
	urls := slices.Concat([]string{hung}, f.urls[:20], []string{gone}, f.urls[20:])
	repoAt := map[string]*testgit.Repo{}
	for i, u := range f.urls {
		repoAt[u] = f.repos[i]
	}
	tips := map[string]string{}
	for _, r := range f.repos {
		tips[r.Name] = r.Tip("candidate")
	}

	req := ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}}
	var mu sync.Mutex
	finished := map[string]time.Duration{}
	// Long enough for the healthy regions (1.6s on a busy 2-core machine);
	// the hung one holds FanOut until it passes.
	const deadline = slow * 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	rep, err := ferry.FanOut(ctx, f.env, targets(urls...), ferry.FanOutOptions{Parallel: 4}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
		rep, err := ferry.Deploy(ctx, e, req)
		mu.Lock()
		finished[e.Remote.URL] = time.Since(start)
		mu.Unlock()
		return rep, err
	})
	wall := time.Since(start)
	if !errors.Is(err, ferry.ErrPartial) {
		t.Fatalf("err = %v, want ErrPartial", err)
	}
	// envrepo gives a stuck operation 2s after ctx ends; FanOut then
	// returns with it.
	if wall < deadline || wall > deadline+3*time.Second {
		t.Errorf("FanOut returned after %s; want soon after the %s deadline", wall, deadline)
	}

	var want []ferry.TargetResult
	wantErr := map[string]string{hung: "context deadline exceeded", gone: "connection refused"}
	for _, u := range urls {
		r := repoAt[u]
		switch {
		case r == nil:
			want = append(want, ferry.TargetResult{Repo: u, Attempts: 1})
		case r == f.repos[missing]:
			want = append(want, ferry.TargetResult{Repo: u, Attempts: 1})
			wantErr[u] = `"candidate" does not exist`
		case r == f.repos[refused]:
			want = append(want, ferry.TargetResult{Repo: u, Attempts: 1})
			wantErr[u] = `push rejected: candidate in ` + u + `: ` // then go-git's words and the hook's
		default:
			want = append(want, ferry.TargetResult{Repo: u, Changed: true, Commit: r.Tip("candidate"), Attempts: 1})
		}
	}
	if diff := cmp.Diff(want, rep.Targets, cmpopts.IgnoreFields(ferry.TargetResult{}, "Error", "Report")); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if rep.Action != "deploy" || rep.Succeeded != n-2 || rep.Failed != 4 {
		t.Errorf("action %q, %d succeeded, %d failed; want deploy, %d and 4", rep.Action, rep.Succeeded, rep.Failed, n-2)
	}
	var slowest time.Duration
	for i, got := range rep.Targets {
		u := urls[i]
		if w, ok := wantErr[u]; ok {
			if !strings.Contains(got.Error, w) || got.Report != nil {
				t.Errorf("%s: error %q, report %v; want an error containing %q and no report", u, got.Error, got.Report, w)
			}
			continue
		}
		slowest = max(slowest, finished[u])
		if got.Error != "" || got.Report == nil || got.Report.Parent != tips[repoAt[u].Name] || got.Report.Reason != "" {
			t.Errorf("%s: error %q, report %+v", u, got.Error, got.Report)
		}
		if d := repoAt[u].Show("candidate", "apps/hello/deployment.yaml"); !strings.Contains(d, "image: "+pinned+" # the app") {
			t.Errorf("%s does not run %s:\n%s", u, pinned, d)
		}
	}
	// The hook's words reach the report escaped: they cannot clear the
	// screen of whoever reads it.
	if e := rep.Targets[slices.Index(urls, f.urls[refused])].Error; !strings.Contains(e, `policy: no \u001b[2J`) || strings.ContainsRune(e, 0x1b) {
		t.Errorf("refused push: error %q, want the hook's message escaped", e)
	}
	for _, r := range f.repos {
		r.Fsck()
	}
	for _, i := range []int{missing, refused} {
		if got := f.repos[i].Tip("candidate"); got != tips[f.repos[i].Name] {
			t.Errorf("%s: candidate moved to %q", f.repos[i].Name, got)
		}
	}
	attempts := map[int]int{}
	for _, r := range rep.Targets {
		attempts[r.Attempts]++
	}
	t.Logf("%d targets in %s, the healthy all landed by %s; attempts: %v", len(urls), wall.Round(time.Millisecond), slowest.Round(time.Millisecond), attempts)
	if slowest > deadline*3/4 {
		t.Logf("the healthy regions landed within %s of the deadline: a slower machine would fail them", deadline-slowest)
	}

	var out bytes.Buffer
	ferry.WriteFanOut(&out, rep)
	t.Logf("\n%s", out.String())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(urls)+2 || strings.Count(out.String(), " FAILED ") != 4 || lines[len(lines)-1] != fmt.Sprintf("deploy to %d env repos: %d succeeded, 4 failed", len(urls), n-2) {
		t.Errorf("WriteFanOut:\n%s", out.String())
	}

	// Again, to the healthy ones: each already runs the build.
	var healthy []string
	for _, u := range f.urls {
		if u != f.urls[missing] && u != f.urls[refused] {
			healthy = append(healthy, u)
		}
	}
	rep, err = ferry.FanOut(context.Background(), f.env, targets(healthy...), ferry.FanOutOptions{Parallel: 4}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
		return ferry.Deploy(ctx, e, req)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range rep.Targets {
		r := repoAt[healthy[i]]
		if got.Changed || got.Commit != "" || got.Error != "" || got.Report.Reason == "" || r.Git("rev-parse", "candidate^") != tips[r.Name] {
			t.Errorf("re-run on %s: %+v", healthy[i], got)
		}
	}
	if rep.Succeeded != len(healthy) || rep.Failed != 0 {
		t.Errorf("re-run: %d succeeded, %d failed", rep.Succeeded, rep.Failed)
	}
}

// No more targets are in flight than Parallel allows, and as many as it
// allows are.
func TestFanOutBoundsWorkers(t *testing.T) {
	const n = 8
	f := newFleet(t, n)
	f.reg.Push(t, "team/hello:v1")
	req := ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}}
	tests := []struct {
		name     string
		parallel int
		want     int
	}{
		{name: "one at a time", parallel: 1, want: 1},
		{name: "three", parallel: 3, want: 3},
		{name: "default", parallel: 0, want: 4},
		{name: "more workers than targets", parallel: 20, want: n},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, most atomic.Int32
			rep, err := ferry.FanOut(context.Background(), f.env, targets(f.urls...), ferry.FanOutOptions{Parallel: tc.parallel}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
				now := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
				}
				// Long enough that workers started together overlap.
				time.Sleep(50 * time.Millisecond)
				return ferry.Deploy(ctx, e, req)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := int(most.Load()); got != tc.want {
				t.Errorf("at most %d in flight, want %d", got, tc.want)
			}
			if rep.Succeeded != n {
				t.Errorf("%d succeeded, want %d", rep.Succeeded, n)
			}
		})
	}
}

// Jitter spreads the starts; a fan-out cancelled while targets wait for
// theirs reports them as not started.
func TestFanOutJitter(t *testing.T) {
	const n = 8
	f := newFleet(t, n)
	f.reg.Push(t, "team/hello:v1")
	req := ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}}
	t.Run("spread", func(t *testing.T) {
		var mu sync.Mutex
		var starts []time.Time
		const jitter = 300 * time.Millisecond
		begin := time.Now()
		_, err := ferry.FanOut(context.Background(), f.env, targets(f.urls...), ferry.FanOutOptions{Parallel: n, Jitter: jitter}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			return ferry.Deploy(ctx, e, req)
		})
		if err != nil {
			t.Fatal(err)
		}
		ms := map[int64]bool{}
		for _, s := range starts {
			ms[s.Sub(begin).Milliseconds()] = true
			if s.Sub(begin) > jitter+50*time.Millisecond {
				t.Errorf("a target started %s in, after the %s jitter", s.Sub(begin), jitter)
			}
		}
		if len(starts) != n || len(ms) < n/2 {
			t.Errorf("%d starts in %d distinct milliseconds, want %d starts spread out", len(starts), len(ms), n)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		tips := map[string]string{}
		for _, r := range f.repos {
			tips[r.Name] = r.Tip("candidate")
		}
		var ran atomic.Int32
		begin := time.Now()
		rep, err := ferry.FanOut(ctx, f.env, targets(f.urls...), ferry.FanOutOptions{Parallel: 2, Jitter: 24 * time.Hour}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
			ran.Add(1)
			return ferry.Deploy(ctx, e, req)
		})
		if took := time.Since(begin); took > time.Second {
			t.Errorf("FanOut took %s to notice the cancel", took)
		}
		if !errors.Is(err, ferry.ErrPartial) {
			t.Fatalf("err = %v, want ErrPartial", err)
		}
		if ran.Load() != 0 || rep.Failed != n || len(rep.Targets) != n {
			t.Fatalf("%d ran, %d of %d failed: %+v", ran.Load(), rep.Failed, len(rep.Targets), rep.Targets)
		}
		for i, got := range rep.Targets {
			want := ferry.TargetResult{Repo: f.urls[i], Error: "not started: context canceled"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("target %d (-want +got):\n%s", i, diff)
			}
		}
		for _, r := range f.repos {
			if r.Tip("candidate") != tips[r.Name] {
				t.Errorf("%s moved", r.Name)
			}
		}
	})
}

// A write that panics is one failed target; one that ignores ctx is
// abandoned after the grace, and FanOut returns without it.
func TestFanOutPanicAndAbandon(t *testing.T) {
	const n = 4
	f := newFleet(t, n)
	digest := f.reg.Push(t, "team/hello:v1")
	req := ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}}
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), slow*time.Second)
	defer cancel()
	begin := time.Now()
	rep, err := ferry.FanOut(ctx, f.env, targets(f.urls...), ferry.FanOutOptions{Grace: 200 * time.Millisecond}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
		switch e.Remote.URL {
		case f.urls[1]:
			panic("a bug in the write")
		case f.urls[2]:
			<-release // deaf to ctx
		}
		return ferry.Deploy(ctx, e, req)
	})
	if took := time.Since(begin); took > slow*2*time.Second {
		t.Errorf("FanOut took %s; want the 1s deadline and the 200ms grace", took)
	}
	if !errors.Is(err, ferry.ErrPartial) || rep.Succeeded != 2 || rep.Failed != 2 {
		t.Fatalf("err = %v, %d succeeded, %d failed", err, rep.Succeeded, rep.Failed)
	}
	for i, w := range map[int]string{
		1: "panic: a bug in the write",
		2: "abandoned: still running 200ms after the fan-out ended (context deadline exceeded); it may yet land",
	} {
		if got := rep.Targets[i].Error; got != w {
			t.Errorf("target %d: error %q, want %q", i, got, w)
		}
	}
	for _, i := range []int{0, 3} {
		if !rep.Targets[i].Changed || !strings.Contains(f.repos[i].Show("candidate", "apps/hello/deployment.yaml"), digest) {
			t.Errorf("target %d: %+v", i, rep.Targets[i])
		}
	}
}

// A tag that moves while the fan-out runs does not split the regions
// between two builds: every target deploys what the registry said first.
func TestFanOutOneBuild(t *testing.T) {
	const n = 4
	f := newFleet(t, n)
	first := f.reg.Push(t, "team/hello:v1")
	req := ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}}
	landed, moved := make(chan struct{}), make(chan struct{})
	type answer struct {
		rep *ferry.FanOutReport
		err error
	}
	out := make(chan answer, 1)
	go func() {
		// One at a time: the tag moves after the first region landed.
		rep, err := ferry.FanOut(context.Background(), f.env, targets(f.urls...), ferry.FanOutOptions{Parallel: 1}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
			rep, err := ferry.Deploy(ctx, e, req)
			if e.Remote.URL == f.urls[0] {
				close(landed)
				<-moved
			}
			return rep, err
		})
		out <- answer{rep, err}
	}()
	<-landed
	second := f.reg.Push(t, "team/hello:v1")
	close(moved)
	a := <-out
	if a.err != nil {
		t.Fatal(a.err)
	}
	for i, r := range f.repos {
		got := a.rep.Targets[i]
		if !got.Changed || len(got.Report.Images) != 1 || got.Report.Images[0].Digest != first || !strings.Contains(r.Show("candidate", "apps/hello/deployment.yaml"), first) {
			t.Errorf("%s: %+v, want %s", r.Name, got.Report, first)
		}
	}
	// The tag did move: a deploy now takes the second build.
	rep, err := ferry.Deploy(context.Background(), ferry.Env{Remote: envrepo.Remote{URL: f.urls[0]}, Author: f.env.Author, Resolver: f.env.Resolver}, req)
	if err != nil || !rep.Changed || rep.Images[0].Digest != second {
		t.Fatalf("deploy after the move: %+v, %v; want %s", rep, err, second)
	}
}

// Promote fans out too, each target reached with credentials of its own.
func TestFanOutPromote(t *testing.T) {
	f := newFleet(t, 3, testgit.WithBasicAuth("ci", "s3cret"))
	f.env.Remote = envrepo.Remote{URL: "https://git.example.com/main.git"} // no credentials, never reached
	var asked []string
	var mu sync.Mutex
	f.env.RemoteFor = func(url string) envrepo.Remote {
		mu.Lock()
		asked = append(asked, url)
		mu.Unlock()
		return envrepo.Remote{URL: url, Auth: &githttp.BasicAuth{Username: "ci", Password: "s3cret"}}
	}
	digest := f.reg.Push(t, "team/hello:v1")
	ctx := context.Background()
	if _, err := ferry.FanOut(ctx, f.env, targets(f.urls...), ferry.FanOutOptions{}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
		return ferry.Deploy(ctx, e, ferry.DeployRequest{Env: "candidate", Path: "apps/hello", Images: []string{f.reg.Host + "/team/hello:v1"}})
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := ferry.FanOut(ctx, f.env, targets(f.urls...), ferry.FanOutOptions{Jitter: 20 * time.Millisecond}, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
		return ferry.Promote(ctx, e, ferry.PromoteRequest{From: "candidate", To: "production", Path: "apps/hello"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Action != "promote" || rep.Succeeded != 3 {
		t.Errorf("action %q, %d succeeded", rep.Action, rep.Succeeded)
	}
	for i, r := range f.repos {
		got := rep.Targets[i]
		if !got.Changed || got.Commit != r.Tip("production") || got.Report.From != "candidate@"+r.Tip("candidate") {
			t.Errorf("%s: %+v", r.Name, got)
		}
		if prod, cand := r.Git("rev-parse", "production:apps/hello"), r.Git("rev-parse", "candidate:apps/hello"); prod != cand {
			t.Errorf("%s: production:apps/hello is %s, candidate's %s", r.Name, prod, cand)
		}
		if !strings.Contains(r.Show("production", "apps/hello/deployment.yaml"), digest) {
			t.Errorf("%s: production does not run %s", r.Name, digest)
		}
		r.Fsck()
	}
	want := slices.Repeat(f.urls, 2) // once a target, in each fan-out
	slices.Sort(want)
	slices.Sort(asked)
	if diff := cmp.Diff(want, asked); diff != "" {
		t.Errorf("RemoteFor asked for (-want +got):\n%s", diff)
	}
}

// Bad targets and options are field errors, and nothing runs.
func TestFanOutRefusesBadInput(t *testing.T) {
	tests := []struct {
		name    string
		targets []string
		opt     ferry.FanOutOptions
		field   string
		wantErr string
	}{
		{name: "no targets", field: "Targets", wantErr: "Targets is required"},
		{name: "empty URL", targets: []string{"https://git.example.com/eu.git", " "}, field: "Targets", wantErr: "URL is empty"},
		{name: "same repo twice", targets: []string{"https://git.example.com/eu.git", "https://git.example.com/us", "https://git.example.com/eu/"}, field: "Targets",
			wantErr: "https://git.example.com/eu.git and https://git.example.com/eu/ are the same repository"},
		{name: "credentials redacted", targets: []string{"https://ci:tok@git.example.com/eu", "https://ci:tok@git.example.com/eu.git"}, field: "Targets",
			wantErr: "https://ci:***@git.example.com/eu and https://ci:***@git.example.com/eu.git"},
		{name: "negative parallel", targets: []string{"https://git.example.com/eu"}, opt: ferry.FanOutOptions{Parallel: -1}, field: "Parallel", wantErr: "Parallel -1"},
		{name: "negative jitter", targets: []string{"https://git.example.com/eu"}, opt: ferry.FanOutOptions{Jitter: -time.Second}, field: "Jitter", wantErr: "Jitter -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ran := false
			rep, err := ferry.FanOut(context.Background(), ferry.Env{}, targets(tc.targets...), tc.opt, func(ctx context.Context, e ferry.Env) (*ferry.Report, error) {
				ran = true
				return nil, nil
			})
			var fe *ferry.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "tok@") {
				t.Fatalf("err = %v, want a field error on %s containing %q", err, tc.field, tc.wantErr)
			}
			if rep != nil || ran {
				t.Errorf("report %v, ran %v: want nothing to run", rep, ran)
			}
		})
	}
}

func TestWriteFanOut(t *testing.T) {
	rep := &ferry.FanOutReport{
		Action: "deploy",
		Targets: []ferry.TargetResult{
			{Repo: "https://git.example.com/eu.git", Changed: true, Commit: "0123456789abcdef0123456789abcdef01234567", Attempts: 1, Report: &ferry.Report{Changed: true}},
			{Repo: "https://git.example.com/us.git", Attempts: 2, Report: &ferry.Report{}},
			{Repo: "https://ci:***@git.example.com/ap.git", Attempts: 1, Error: "push rejected: policy: no \x1b[2J\tnow"},
			{Repo: "https://git.example.com/sa.git", Report: &ferry.Report{Skipped: true}},
			{Repo: "https://git.example.com/dr.git", Changed: true, Attempts: 1, Report: &ferry.Report{Changed: true, DryRun: true}},
		},
		Succeeded: 4, Failed: 1,
	}
	var b bytes.Buffer
	ferry.WriteFanOut(&b, rep)
	want := `REPO                                   RESULT        COMMIT        ATTEMPTS  ERROR
https://git.example.com/eu.git         changed       0123456789ab  1         -
https://git.example.com/us.git         unchanged     -             2         -
https://ci:***@git.example.com/ap.git  FAILED        -             1         push rejected: policy: no \u001b[2J\u0009now
https://git.example.com/sa.git         skipped       -             0         -
https://git.example.com/dr.git         would change  -             1         -
deploy to 5 env repos: 4 succeeded, 1 failed
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteFanOut (-want +got):\n%s", diff)
	}
}
