package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine describes where the numbers come from.
type machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	// Scratch is the file system of the clones (TMPDIR): git's checkout
	// writes a file per entry, ferry none.
	Scratch string `json:"scratch"`
	// Load is /proc/loadavg's 1, 5 and 15 minute averages when the
	// benchmark started and when it ended: other work on the machine.
	Load [2]string `json:"load"`
	// Ferry is the commit the ferry binary was built from, or its path.
	Ferry string `json:"ferry"`
	Git   string `json:"git"`
	Go    string `json:"go"`
}

func describeMachine(ctx context.Context, scratch string) machine {
	m := machine{CPUs: runtime.NumCPU(), CPU: "unknown", Memory: "unknown", Go: runtime.Version()}
	m.Scratch = scratch
	var st syscall.Statfs_t
	if syscall.Statfs(scratch, &st) == nil {
		switch st.Type {
		case 0x01021994:
			m.Scratch += " (tmpfs)"
		case 0xef53:
			m.Scratch += " (ext4)"
		default:
			m.Scratch += fmt.Sprintf(" (file system type %#x)", st.Type)
		}
	}
	field := func(file, key string) string {
		data, _ := os.ReadFile(file)
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	if v := field("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := field("/proc/meminfo", "MemTotal"); v != "" {
		kib, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
		m.Memory = fmt.Sprintf("%.0f GiB", float64(kib)/(1<<20))
	}
	if v, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(v))
	}
	if v, err := exec.CommandContext(ctx, "git", "--version").Output(); err == nil {
		m.Git = strings.TrimPrefix(strings.TrimSpace(string(v)), "git version ")
	}
	return m
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

// summary is one row of the table: medians over the samples.
type summary struct {
	wall, p90, cpu   time.Duration
	fastest          time.Duration // the fastest run: the least disturbed by other work
	rssKiB, treeKiB  int64
	git, gitReq      int64
	net              netCount // git and registry, on the wire
	gitReqs, regReqs int64
	gitRTs, regRTs   int64 // round trips on the wire: turns plus connections
}

func summarize(ss []sample) summary {
	med := func(f func(sample) int64) int64 {
		v := make([]int64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2] // the upper median when the count is even
	}
	walls := make([]time.Duration, len(ss))
	for i, s := range ss {
		walls[i] = s.Wall
	}
	slices.Sort(walls)
	return summary{
		wall:    time.Duration(med(func(s sample) int64 { return int64(s.Wall) })),
		p90:     walls[(len(walls)*9+9)/10-1], // nearest rank
		fastest: walls[0],
		cpu:     time.Duration(med(func(s sample) int64 { return int64(s.CPU) })),
		rssKiB:  med(func(s sample) int64 { return s.MaxRSSKiB }),
		treeKiB: med(func(s sample) int64 { return s.TreeRSSKiB }),
		git:     med(func(s sample) int64 { return s.GitBytes }),
		gitReq:  med(func(s sample) int64 { return s.GitRequests }),
		net: netCount{
			Conns:    med(func(s sample) int64 { return s.GitNet.Conns + s.RegNet.Conns }),
			Requests: med(func(s sample) int64 { return s.GitNet.Requests + s.RegNet.Requests }),
			Turns:    med(func(s sample) int64 { return s.GitNet.Turns + s.RegNet.Turns }),
			Up:       med(func(s sample) int64 { return s.GitNet.Up + s.RegNet.Up }),
			Down:     med(func(s sample) int64 { return s.GitNet.Down + s.RegNet.Down }),
		},
		gitReqs: med(func(s sample) int64 { return s.GitNet.Requests }),
		regReqs: med(func(s sample) int64 { return s.RegNet.Requests }),
		gitRTs:  med(func(s sample) int64 { return s.GitNet.Turns + s.GitNet.Conns }),
		regRTs:  med(func(s sample) int64 { return s.RegNet.Turns + s.RegNet.Conns }),
	}
}

func printTable(w io.Writer, m machine, cfg config, results []result) {
	fmt.Fprintf(w, "Machine: %d × %s, %s RAM, Linux %s; git %s; %s; clones in %s.\n", m.CPUs, m.CPU, m.Memory, m.Kernel, m.Git, m.Go, m.Scratch)
	fmt.Fprintf(w, "ferry: %s. Load average %s at the start, %s at the end.\n", m.Ferry, m.Load[0], m.Load[1])
	fmt.Fprintf(w, "Medians of %d interleaved runs per tool after one warm-up round; 5 files per app; %d commits on candidate.\n\n", cfg.runs, cfg.commits+1)
	printSummary(w, cfg, results)
	for _, lat := range cfg.latencies {
		fmt.Fprintf(w, "\nDetail, %s:\n\n", latencyName(lat))
		var rs []result
		for _, r := range results {
			if r.Latency == lat {
				rs = append(rs, r)
			}
		}
		printDetail(w, rs)
	}
}

func latencyName(d time.Duration) string {
	if d == 0 {
		return "loopback"
	}
	return d.String() + " one way"
}

func printDetail(w io.Writer, results []result) {
	fmt.Fprintln(w, "| apps | tool | wall | p90 wall | CPU | RSS, one process | RSS, process tree | git transferred | git requests | vs A (wall · CPU · tree RSS · bytes) | vs B (wall · CPU · tree RSS · bytes) |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
	ratio := func(a, b summary) string {
		return fmt.Sprintf("%.2f× · %.2f× · %.2f× · %.2f×", float64(a.wall)/float64(b.wall), float64(a.cpu)/float64(b.cpu),
			float64(a.treeKiB)/float64(b.treeKiB), float64(a.git)/float64(b.git))
	}
	byApps := map[int][]summary{} // the rows so far, in tools order
	for _, r := range results {
		s := summarize(r.Samples)
		prev := byApps[r.Apps]
		byApps[r.Apps] = append(prev, s)
		vsA, vsB := "", ""
		if len(prev) >= 1 {
			vsA = ratio(s, prev[0])
		}
		if len(prev) >= 2 {
			vsB = ratio(s, prev[1])
		}
		fmt.Fprintf(w, "| %d | %s | %.2f s | %.2f s | %.2f s | %.0f MiB | %.0f MiB | %.0f KiB | %d | %s | %s |\n",
			r.Apps, r.Tool, s.wall.Seconds(), s.p90.Seconds(), s.cpu.Seconds(),
			float64(s.rssKiB)/1024, float64(s.treeKiB)/1024, float64(s.git)/1024, s.gitReq, vsA, vsB)
	}
}

// printSummary prints one row per size and tool: wall time at each latency
// (and against B), the round trips the latency added, what went over the
// wire, CPU and memory at the first latency, and growth from the smallest
// size to the largest.
func printSummary(w io.Writer, cfg config, results []result) {
	type key struct {
		apps int
		tool string
		lat  time.Duration
	}
	sum := map[key]summary{}
	var sizes []int
	for _, r := range results {
		sum[key{r.Apps, r.Tool, r.Latency}] = summarize(r.Samples)
		if !slices.Contains(sizes, r.Apps) {
			sizes = append(sizes, r.Apps)
		}
	}
	lats := cfg.latencies
	head := "| apps | tool |"
	align := "|---:|---|"
	for _, l := range lats {
		head += fmt.Sprintf(" wall, %s | vs B |", latencyName(l))
		align += "---:|---:|"
	}
	for _, l := range lats {
		if l > 0 {
			head += fmt.Sprintf(" round trips added by %s (fastest runs) |", l)
			align += "---:|"
		}
	}
	head += " round trips on the wire (git + registry) | requests (git + registry) | connections | down | up | CPU | peak RSS (tree) |"
	align += "---:|---:|---:|---:|---:|---:|---:|"
	grow := len(sizes) > 1
	if grow {
		head += fmt.Sprintf(" growth %d vs %d apps (wall", sizes[len(sizes)-1], sizes[0])
		for i, l := range lats {
			if i > 0 {
				head += " ·"
			}
			head += " " + latencyName(l)
		}
		head += ") |"
		align += "---|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, align)
	kib := func(n int64) string {
		if n >= 10<<20 {
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		}
		return fmt.Sprintf("%.0f KiB", float64(n)/1024)
	}
	for _, n := range sizes {
		for _, t := range tools {
			row := fmt.Sprintf("| %d | %s |", n, t.Name)
			for _, l := range lats {
				s, b := sum[key{n, t.Name, l}], sum[key{n, tools[1].Name, l}]
				row += fmt.Sprintf(" %.2f s | %.2f× |", s.wall.Seconds(), float64(s.wall)/float64(b.wall))
			}
			first := sum[key{n, t.Name, lats[0]}]
			for _, l := range lats {
				if l > 0 {
					s := sum[key{n, t.Name, l}]
					base := sum[key{n, t.Name, 0}]
					if slices.Contains(lats, 0) {
						row += fmt.Sprintf(" %.1f |", float64(s.fastest-base.fastest)/float64(2*l))
					} else {
						row += " – |"
					}
				}
			}
			row += fmt.Sprintf(" %d (%d + %d) | %d (%d + %d) | %d | %s | %s | %.2f s | %.0f MiB |", first.net.Turns+first.net.Conns, first.gitRTs, first.regRTs, first.net.Requests, first.gitReqs, first.regReqs, first.net.Conns,
				kib(first.net.Down), kib(first.net.Up), first.cpu.Seconds(), float64(first.treeKiB)/1024)
			if grow {
				row += " "
				if n == sizes[len(sizes)-1] {
					for i, l := range lats {
						if i > 0 {
							row += " · "
						}
						row += fmt.Sprintf("%.2f×", float64(sum[key{n, t.Name, l}].wall)/float64(sum[key{sizes[0], t.Name, l}].wall))
					}
				}
				row += " |"
			}
			fmt.Fprintln(w, row)
		}
	}
}
