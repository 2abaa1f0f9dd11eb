package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// deploy is one timed deploy: the app's directory in the env repo, the tag
// to deploy, and the registry reference ferry resolves.
type deploy struct {
	URL   string // the env repo on git http-backend
	Path  string // apps/app0042
	Tag   string // v2
	Image string // 127.0.0.1:PORT/team/app0042:v2
}

// step is one command of a tool's run, in the run's directory or, with
// inClone, in the clone that the first step made there.
type step struct {
	inClone bool
	argv    []string
	// discard sends stdout to /dev/null, as `> /dev/null` would; stderr
	// is still kept for the error.
	discard bool
}

// tool is a way to deploy, as the commands it runs.
type tool struct {
	Name       string
	pinsDigest bool // the result names the image's digest, not only its tag
	steps      func(d deploy, ferry string) []step
}

// The classic pipeline edits the tag with sed, commits and pushes.
func sedCommitPush(d deploy) []step {
	return []step{
		{inClone: true, argv: []string{"sed", "-i", "-E", `s|^( *newTag:).*|\1 ` + d.Tag + `|`, d.Path + "/kustomization.yaml"}},
		{inClone: true, argv: []string{"git", "commit", "-q", "-am", "deploy " + filepath.Base(d.Path) + " " + d.Tag}},
		{inClone: true, argv: []string{"git", "push", "-q", "origin", "HEAD:candidate"}},
	}
}

var tools = []tool{
	{"A: git clone --depth 1", false, func(d deploy, _ string) []step {
		return append([]step{
			{argv: []string{"git", "clone", "-q", "--depth", "1", "--single-branch", "-b", "candidate", d.URL, "env"}},
		}, sedCommitPush(d)...)
	}},
	{"B: git partial+sparse", false, func(d deploy, _ string) []step {
		return append([]step{
			{argv: []string{"git", "clone", "-q", "--filter=blob:none", "--no-checkout", "--depth", "1", "--single-branch", "-b", "candidate", d.URL, "env"}},
			{inClone: true, argv: []string{"git", "sparse-checkout", "set", "--cone", d.Path}},
			{inClone: true, argv: []string{"git", "checkout", "-q", "candidate"}},
		}, sedCommitPush(d)...)
	}},
	{"F: ferry deploy", true, func(d deploy, ferry string) []step {
		return []step{
			{argv: []string{ferry, "deploy", "--repo", d.URL, "--env", "candidate", "--path", d.Path, "--image", d.Image}},
		}
	}},
}

// usage is what one run of a tool cost on the client side.
type usage struct {
	Wall time.Duration `json:"wall_ns"`
	// CPU is user plus system time of the commands and their descendants;
	// the servers' time is not in it.
	CPU time.Duration `json:"cpu_ns"`
	// MaxRSSKiB is the largest peak resident set size of any one process.
	// It is exact: each command's is what wait4 reports, the larger of its
	// own peak and that of its largest descendant. But getrusage(2) says of
	// RUSAGE_CHILDREN: "the resident set size of the largest child, not the
	// maximum resident set size of the process tree", so processes of one
	// command that run at once (git push, git-remote-http, git pack-objects)
	// are not added up.
	MaxRSSKiB int64 `json:"max_rss_kib"`
	// TreeRSSKiB adds them up: the largest sum over a command's process
	// tree, sampled every treeSampleEvery, and never less than MaxRSSKiB.
	TreeRSSKiB int64 `json:"tree_rss_kib"`
}

const treeSampleEvery = 5 * time.Millisecond

// measure runs the steps in dir, one after another.
func measure(ctx context.Context, dir string, env []string, steps []step) (usage, error) {
	var u usage
	start := time.Now()
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
		cmd.Dir = dir
		if s.inClone {
			cmd.Dir = filepath.Join(dir, "env")
		}
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if s.discard {
			cmd.Stdout = nil // os/exec: the null device
		}
		err := cmd.Start()
		if err == nil {
			stop := watchTree(cmd.Process.Pid, treeSampleEvery)
			err = cmd.Wait()
			tree := stop()
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				u.CPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				u.MaxRSSKiB = max(u.MaxRSSKiB, ru.Maxrss)
			}
			u.TreeRSSKiB = max(u.TreeRSSKiB, u.MaxRSSKiB, tree)
		}
		if err != nil {
			return u, fmt.Errorf("%s: %v\n%s", strings.Join(s.argv, " "), err, out.String())
		}
	}
	u.Wall = time.Since(start)
	return u, nil
}
