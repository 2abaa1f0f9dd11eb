package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// statusTool is one way to look at every environment.
type statusTool struct {
	Name  string
	steps func(url, ferry string) []step
}

var statusTools = []statusTool{
	{"S: ferry status", func(url, ferry string) []step {
		return []step{{argv: []string{ferry, "status", "--repo", url, "--output", "json"}, discard: true}}
	}},
	{"R: 3 × git clone --depth 1 --filter=blob:none", func(url, _ string) []step {
		var steps []step
		for _, env := range statusEnvs {
			steps = append(steps, step{argv: []string{"git", "clone", "-q", "--depth", "1", "--filter=blob:none", "--no-checkout", "--single-branch", "-b", env, url, env}})
		}
		return steps
	}},
}

// statusReport is what -status measured.
type statusReport struct {
	Apps int `json:"apps"`
	// Commits is each branch's commit count, root included, in the order
	// of statusEnvs.
	Commits []int       `json:"commits"`
	Check   statusCheck `json:"check"`
	Results []result    `json:"results"`
}

// statusCheck is what one untimed ferry status printed, checked against
// the plan.
type statusCheck struct {
	Apps      int `json:"apps"`
	Cells     int `json:"cells"`
	JSONBytes int `json:"json_bytes"`
	// States counts the cells of each environment by state; Images, the
	// cells that show an image.
	States map[string]map[string]int `json:"states"`
	Images map[string]int            `json:"images"`
}

// statusRun generates the -status env repo of n apps, checks ferry
// status's output once, then times S and R, interleaved, at each latency.
func (b *bench) statusRun(ctx context.Context, n int) (*statusReport, error) {
	bare := filepath.Join(b.gitRoot, fmt.Sprintf("status-%d.git", n))
	start := time.Now()
	for _, args := range [][]string{
		{"init", "-q", "--bare", "-b", statusEnvs[0], bare},
		{"-C", bare, "config", "uploadpack.allowFilter", "true"},
		{"-C", bare, "config", "uploadpack.allowAnySHA1InWant", "true"},
	} {
		if out, err := exec.CommandContext(ctx, "git", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	plan := planStatus(n, b.cfg.commits, b.regP.Host)
	counts, err := generateStatus(ctx, bare, plan)
	if err != nil {
		return nil, err
	}
	if !b.cfg.keep {
		defer os.RemoveAll(bare)
	}
	b.log.Info("generated env repo", "apps", n, "files", n*len(appFiles), "commits", counts, "took", time.Since(start).Round(time.Millisecond))
	rep := &statusReport{Apps: n, Commits: counts}
	url := "http://" + b.gitP.Host + "/" + filepath.Base(bare)

	// Once, untimed: ferry status must report every app in every
	// environment, with the images the plan wrote.
	b.gitP.setLatency(0)
	cmd := exec.CommandContext(ctx, b.ferry, "status", "--repo", url, "--output", "json")
	cmd.Env, cmd.Dir = b.env, b.tmp
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ferry status: %v: %s", err, stderr.String())
	}
	if rep.Check, err = checkStatus(out, plan); err != nil {
		return nil, fmt.Errorf("ferry status: %w", err)
	}
	b.log.Info("checked ferry status", "apps", rep.Check.Apps, "cells", rep.Check.Cells, "json_kib", rep.Check.JSONBytes>>10)

	lats := b.cfg.latencies
	rep.Results = make([]result, len(lats)*len(statusTools))
	for li, lat := range lats {
		for i, t := range statusTools {
			rep.Results[li*len(statusTools)+i] = result{Apps: n, Tool: t.Name, Latency: lat}
		}
	}
	for r := range b.cfg.runs + 1 { // round 0 warms up and is not counted
		for li, lat := range lats {
			b.gitP.setLatency(lat)
			for i, t := range statusTools {
				s, err := b.statusOnce(ctx, t.steps(url, b.ferry), fmt.Sprintf("status-%d-%d-%d", r, li, i))
				if err != nil {
					return nil, fmt.Errorf("%s, latency %v: %w", t.Name, lat, err)
				}
				s.Latency = lat
				b.log.Info("run", "apps", n, "round", r, "latency", lat, "tool", t.Name, "wall", s.Wall.Round(time.Millisecond), "cpu", s.CPU.Round(time.Millisecond),
					"tree_rss_mib", s.TreeRSSKiB>>10, "git_requests", s.GitNet.Requests, "git_conns", s.GitNet.Conns,
					"down_kib", s.GitNet.Down>>10, "up_kib", s.GitNet.Up>>10)
				if r > 0 {
					rep.Results[li*len(statusTools)+i].Samples = append(rep.Results[li*len(statusTools)+i].Samples, s)
				}
			}
		}
	}
	return rep, nil
}

// statusOnce times steps in a directory of their own, then removes it.
func (b *bench) statusOnce(ctx context.Context, steps []step, name string) (sample, error) {
	dir := filepath.Join(b.tmp, "runs", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sample{}, err
	}
	if !b.cfg.keep {
		defer os.RemoveAll(dir)
	}
	b.git.reset()
	b.gitP.reset()
	b.regP.reset()
	u, err := measure(ctx, dir, b.env, steps)
	s := sample{usage: u}
	s.GitBytes, s.GitRequests = b.git.reset()
	s.GitNet, s.RegNet = b.gitP.reset(), b.regP.reset()
	return s, err
}

// checkStatus checks ferry status's JSON against the plan: the three
// environments, read whole; every app, with a present cell in each; and
// in each cell the image the branch's last ferry commit to the app wrote,
// or none where no ferry commit wrote one.
func checkStatus(out []byte, p statusPlan) (statusCheck, error) {
	var rep struct {
		Environments []struct {
			Name     string `json:"name"`
			Missing  bool   `json:"missing"`
			Complete bool   `json:"complete"`
		} `json:"environments"`
		Apps []struct {
			App   string `json:"app"`
			Cells []struct {
				Env    string `json:"env"`
				State  string `json:"state"`
				Images []struct {
					Ref string `json:"ref"`
				} `json:"images"`
			} `json:"cells"`
		} `json:"apps"`
	}
	c := statusCheck{JSONBytes: len(out), States: map[string]map[string]int{}, Images: map[string]int{}}
	if err := json.Unmarshal(out, &rep); err != nil {
		return c, fmt.Errorf("reading its JSON: %w", err)
	}
	if len(rep.Environments) != len(statusEnvs) {
		return c, fmt.Errorf("%d environments, want %d", len(rep.Environments), len(statusEnvs))
	}
	finals := make([][]appSpec, len(statusEnvs))
	for e, env := range rep.Environments {
		if env.Name != statusEnvs[e] || env.Missing || !env.Complete {
			return c, fmt.Errorf("environment %d is %+v, want %s, present and read whole", e, env, statusEnvs[e])
		}
		finals[e] = p.final(e)
		c.States[env.Name] = map[string]int{}
	}
	if len(rep.Apps) != p.n {
		return c, fmt.Errorf("%d apps, want %d", len(rep.Apps), p.n)
	}
	c.Apps = len(rep.Apps)
	for i, a := range rep.Apps { // sorted by name, as the plan's are
		if a.App != p.base[i].App || len(a.Cells) != len(statusEnvs) {
			return c, fmt.Errorf("app %d is %s with %d cells, want %s with %d", i, a.App, len(a.Cells), p.base[i].App, len(statusEnvs))
		}
		for e, cell := range a.Cells {
			if cell.Env != statusEnvs[e] || cell.State == "" || cell.State == "absent" {
				return c, fmt.Errorf("%s's cell %d is %s in %q, want present in %s", a.App, e, cell.State, cell.Env, statusEnvs[e])
			}
			var got, want []string
			for _, im := range cell.Images {
				got = append(got, im.Ref)
			}
			if s := finals[e][i]; s.Digest != "" {
				want = []string{imageRef(s)}
			}
			if !slices.Equal(got, want) {
				return c, fmt.Errorf("%s on %s shows images %q, want %q", a.App, cell.Env, got, want)
			}
			c.Cells++
			c.States[cell.Env][cell.State]++
			if len(got) > 0 {
				c.Images[cell.Env]++
			}
		}
	}
	return c, nil
}

func printStatus(w io.Writer, m machine, cfg config, r *statusReport) {
	fmt.Fprintf(w, "Machine: %d × %s, %s RAM, Linux %s; git %s; %s; clones in %s.\n", m.CPUs, m.CPU, m.Memory, m.Kernel, m.Git, m.Go, m.Scratch)
	fmt.Fprintf(w, "ferry: %s. Load average %s at the start, %s at the end.\n", m.Ferry, m.Load[0], m.Load[1])
	var branches []string
	for e, name := range statusEnvs {
		branches = append(branches, fmt.Sprintf("%s %d", name, r.Commits[e]))
	}
	fmt.Fprintf(w, "Medians of %d interleaved runs per tool after one warm-up round; %d apps, 5 files each; commits: %s; ferry.yaml on dev, the default branch.\n",
		cfg.runs, r.Apps, strings.Join(branches, ", "))
	var states []string
	for _, name := range statusEnvs {
		var parts []string
		for _, st := range []string{"current", "behind", "drifted", "unmanaged", "unknown", "held"} {
			if k := r.Check.States[name][st]; k > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", st, k))
			}
		}
		states = append(states, fmt.Sprintf("%s: %s (%d with an image)", name, strings.Join(parts, ", "), r.Check.Images[name]))
	}
	fmt.Fprintf(w, "S's output, checked once: %d apps × %d cells, none absent, every image as written, no error; %.0f KiB of JSON. Cells: %s.\n\n",
		r.Check.Apps, len(statusEnvs), float64(r.Check.JSONBytes)/1024, strings.Join(states, "; "))

	type key struct {
		tool string
		lat  time.Duration
	}
	sum := map[key]summary{}
	for _, res := range r.Results {
		sum[key{res.Tool, res.Latency}] = summarize(res.Samples)
	}
	lats := cfg.latencies
	fmt.Fprintln(w, "| latency | tool | wall | p90 wall | CPU | peak RSS (tree) | down | up | requests | connections | round trips on the wire | round trips added by the latency (fastest runs) |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, lat := range lats {
		for _, t := range statusTools {
			s := sum[key{t.Name, lat}]
			added := "–"
			if lat > 0 && slices.Contains(lats, 0) {
				added = fmt.Sprintf("%.1f", float64(s.fastest-sum[key{t.Name, 0}].fastest)/float64(2*lat))
			}
			fmt.Fprintf(w, "| %s | %s | %.2f s | %.2f s | %.2f s | %.0f MiB | %s | %s | %d | %d | %d | %s |\n", latencyName(lat), t.Name,
				s.wall.Seconds(), s.p90.Seconds(), s.cpu.Seconds(), float64(s.treeKiB)/1024, kibOrMiB(s.net.Down), kibOrMiB(s.net.Up),
				s.net.Requests, s.net.Conns, s.net.Turns+s.net.Conns, added)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| S / R | wall | CPU | peak RSS (tree) | down | up | requests | connections |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, lat := range lats {
		s, ref := sum[key{statusTools[0].Name, lat}], sum[key{statusTools[1].Name, lat}]
		x := func(a, b int64) string { return fmt.Sprintf("%.2f×", float64(a)/float64(b)) }
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", latencyName(lat), x(int64(s.wall), int64(ref.wall)), x(int64(s.cpu), int64(ref.cpu)),
			x(s.treeKiB, ref.treeKiB), x(s.net.Down, ref.net.Down), x(s.net.Up, ref.net.Up), x(s.net.Requests, ref.net.Requests), x(s.net.Conns, ref.net.Conns))
	}
}

// kibOrMiB prints a byte count in KiB, or in MiB from 10 MiB.
func kibOrMiB(n int64) string {
	if n >= 10<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/1024)
}
