package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// writerRun is one ferry deploy of a writers round.
type writerRun struct {
	App      string        `json:"app"`
	Wall     time.Duration `json:"wall_ns"`
	Attempts int           `json:"attempts"`
	// CPU is the ferry process's own user and system time.
	CPU time.Duration `json:"cpu_ns"`
}

// writersRound is N deploys of different apps to one branch, all at once
// or one after another.
type writersRound struct {
	Concurrent bool          `json:"concurrent"`
	Wall       time.Duration `json:"wall_ns"`
	Runs       []writerRun   `json:"runs"`
	// Lost counts the apps whose new digest is not on the branch after the
	// round; Commits is how many commits the round added.
	Lost    int `json:"lost"`
	Commits int `json:"commits"`
	// CPU is the machine's busy time during the round, every process
	// counted (ferry, the git server, the registry): on a machine whose
	// cores are all busy, the round cannot end sooner than CPU / cores.
	CPU time.Duration `json:"cpu_ns"`
}

// calibration is what the contention model needs, measured on one
// uncontended ferry deploy: the whole deploy, the same deploy again when
// there is nothing to change (no push), and the requests of each.
type calibration struct {
	Latency      time.Duration `json:"latency_ns"`
	Deploy       time.Duration `json:"deploy_ns"`       // median wall of a deploy that pushes
	NoOp         time.Duration `json:"noop_ns"`         // median wall of one that finds nothing to do
	DeployReqs   int64         `json:"deploy_requests"` // git requests of the deploy
	NoOpReqs     int64         `json:"noop_requests"`   // git requests of the no-op
	DeployConns  int64         `json:"deploy_connections"`
	NoOpConns    int64         `json:"noop_connections"`
	DeployTurns  int64         `json:"deploy_turns"` // round trips on the wire, handshakes not counted
	NoOpTurns    int64         `json:"noop_turns"`
	PushOverhead time.Duration `json:"push_ns"` // Deploy - NoOp: the push
}

type writersReport struct {
	Apps        int            `json:"apps"`
	Writers     int            `json:"writers"`
	Latency     time.Duration  `json:"latency_ns"`
	Calibration calibration    `json:"calibration"`
	Rounds      []writersRound `json:"rounds"`
	Model       []simResult    `json:"model"`
}

// ferryDeploy runs one ferry deploy and returns its wall time and attempts.
func (b *bench) ferryDeploy(ctx context.Context, d deploy) (writerRun, error) {
	cmd := exec.CommandContext(ctx, b.ferry, "deploy", "--repo", d.URL, "--env", "candidate", "--path", d.Path, "--image", d.Image, "--output", "json")
	cmd.Env = b.env
	cmd.Dir = b.tmp
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	w := writerRun{App: strings.TrimPrefix(d.Path, "apps/"), Wall: time.Since(start)}
	if ps := cmd.ProcessState; ps != nil {
		w.CPU = ps.UserTime() + ps.SystemTime()
	}
	if err != nil {
		return w, fmt.Errorf("ferry deploy %s: %v: %s", d.Path, err, stderr.String())
	}
	var rep struct {
		Attempts int `json:"attempts"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return w, fmt.Errorf("ferry deploy %s: reading its JSON: %v: %s", d.Path, err, out)
	}
	w.Attempts = rep.Attempts
	return w, nil
}

// writersRun times -writers N: rounds of N concurrent deploys of different
// apps to one branch, interleaved with rounds of the same N one after
// another, after calibrating the contention model on single deploys.
func (b *bench) writersRun(ctx context.Context, bare, base string, n int) error {
	nw := b.cfg.writers
	if nw > n/2 {
		return fmt.Errorf("-writers %d needs at least %d apps", nw, 2*nw)
	}
	lat := b.cfg.latencies[0]
	b.gitP.setLatency(lat)
	b.regP.setLatency(lat)
	rep := writersReport{Apps: n, Writers: nw, Latency: lat}
	reset := func() error {
		_, err := gitOutput(ctx, bare, "update-ref", "refs/heads/candidate", base)
		return err
	}

	// Calibration: a deploy, then the same deploy again (nothing to do).
	var full, noop []time.Duration
	const calRuns = 5
	for i := range calRuns + 1 {
		app := appName(n, n/2+i)
		tag := fmt.Sprintf("c%d", i)
		if _, err := pushImage(ctx, b.reg.Host+"/team/"+app+":"+tag, int64(n)<<24+int64(i)); err != nil {
			return err
		}
		d := b.deployOf(bare, app, tag)
		b.gitP.reset()
		w, err := b.ferryDeploy(ctx, d)
		if err != nil {
			return err
		}
		fc := b.gitP.reset()
		w2, err := b.ferryDeploy(ctx, d)
		if err != nil {
			return err
		}
		nc := b.gitP.reset()
		if err := reset(); err != nil {
			return err
		}
		if i == 0 {
			continue // warm-up
		}
		full, noop = append(full, w.Wall), append(noop, w2.Wall)
		rep.Calibration.DeployReqs, rep.Calibration.NoOpReqs = fc.Requests, nc.Requests
		rep.Calibration.DeployConns, rep.Calibration.NoOpConns = fc.Conns, nc.Conns
		rep.Calibration.DeployTurns, rep.Calibration.NoOpTurns = fc.Turns, nc.Turns
	}
	c := &rep.Calibration
	c.Latency = lat
	c.Deploy, c.NoOp = medianDur(full), medianDur(noop)
	c.PushOverhead = max(c.Deploy-c.NoOp, time.Millisecond)
	b.log.Info("calibrated", "deploy", c.Deploy.Round(time.Millisecond), "noop", c.NoOp.Round(time.Millisecond), "push", c.PushOverhead.Round(time.Millisecond),
		"deploy_requests", c.DeployReqs, "noop_requests", c.NoOpReqs)

	for r := range b.cfg.runs {
		for _, concurrent := range []bool{true, false} {
			round := writersRound{Concurrent: concurrent, Runs: make([]writerRun, nw)}
			ds := make([]deploy, nw)
			digests := make([]string, nw)
			tag := fmt.Sprintf("w%d", r)
			if !concurrent {
				tag = fmt.Sprintf("s%d", r)
			}
			for i := range ds {
				app := appName(n, n/2+1+i*(n-n/2-1)/nw) // spread over the untouched half
				dg, err := pushImage(ctx, b.reg.Host+"/team/"+app+":"+tag, int64(n)<<24+int64(r)<<12+int64(i)<<1+int64(len(tag)))
				if err != nil {
					return err
				}
				ds[i], digests[i] = b.deployOf(bare, app, tag), dg
			}
			errs := make([]error, nw)
			busy0 := machineBusy()
			start := time.Now()
			if concurrent {
				var wg sync.WaitGroup
				for i := range ds {
					wg.Go(func() { round.Runs[i], errs[i] = b.ferryDeploy(ctx, ds[i]) })
				}
				wg.Wait()
			} else {
				for i := range ds {
					round.Runs[i], errs[i] = b.ferryDeploy(ctx, ds[i])
				}
			}
			round.Wall = time.Since(start)
			round.CPU = machineBusy() - busy0
			for _, err := range errs {
				if err != nil {
					return err
				}
			}
			// No lost update: every app's new digest is on the branch.
			for i, d := range ds {
				content, err := gitOutput(ctx, bare, "show", "candidate:"+d.Path+"/kustomization.yaml")
				if err != nil || !strings.Contains(content, digests[i]) {
					round.Lost++
				}
			}
			count, err := gitOutput(ctx, bare, "rev-list", "--count", base+"..candidate")
			if err != nil {
				return err
			}
			round.Commits, _ = strconv.Atoi(count)
			attempts := 0
			for _, w := range round.Runs {
				attempts += w.Attempts
			}
			b.log.Info("writers round", "round", r, "concurrent", concurrent, "wall", round.Wall.Round(time.Millisecond), "attempts", attempts, "lost", round.Lost, "commits", round.Commits)
			if round.Lost > 0 || round.Commits != nw {
				return fmt.Errorf("round %d (concurrent %v): %d of %d updates lost, %d commits on top of the base", r, concurrent, round.Lost, nw, round.Commits)
			}
			rep.Rounds = append(rep.Rounds, round)
			if err := reset(); err != nil {
				return err
			}
		}
	}

	// The model, calibrated on the above: the burst just measured, then
	// steady arrivals.
	// The burst is also modelled with a shorter first backoff, and the
	// steady loads at the measured round trip and at 50 ms.
	p := paramsFrom(*c, b.cfg.backoff)
	short := p
	short.Backoff = 500 * time.Millisecond // the exponential backoff ferry had, for comparison
	rep.Model = append(rep.Model, simulateBurst(p, nw, 200), simulateBurst(short, nw, 200))
	rtts := []time.Duration{p.RTT}
	if p.RTT != 50*time.Millisecond {
		rtts = append(rtts, 50*time.Millisecond)
	}
	rep.Model = append(rep.Model, modelLoads(p, rtts, []time.Duration{0, 5 * time.Millisecond})...)
	b.writers = &rep
	return nil
}

func medianDur(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func printWriters(w io.Writer, m machine, r *writersReport) {
	fmt.Fprintf(w, "Machine: %d × %s, %s RAM, Linux %s; git %s; %s; clones in %s.\n", m.CPUs, m.CPU, m.Memory, m.Kernel, m.Git, m.Go, m.Scratch)
	fmt.Fprintf(w, "ferry: %s. Load average %s at the start, %s at the end.\n", m.Ferry, m.Load[0], m.Load[1])
	c := r.Calibration
	fmt.Fprintf(w, "%d writers, %d apps, %s. Calibration (median of 5 single deploys): a deploy %.0f ms (%d git requests, %d connections), "+
		"the same deploy with nothing to do %.0f ms (%d requests, %d connections), so the push %.0f ms (%d round trips on the wire, handshakes included, against %d).\n\n",
		r.Writers, r.Apps, latencyName(r.Latency), ms(c.Deploy), c.DeployReqs, c.DeployConns, ms(c.NoOp), c.NoOpReqs, c.NoOpConns, ms(c.PushOverhead),
		c.DeployTurns+c.DeployConns, c.NoOpTurns+c.NoOpConns)
	fmt.Fprintln(w, "| round | concurrent | sequential | concurrent / sequential | machine CPU: concurrent · sequential | of which ferry's: concurrent · sequential | CPU floor (concurrent CPU / cores, vs sequential wall) | attempts (concurrent) | attempts per writer: mean · max | lost updates |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---|---|---:|---:|---|---:|")
	var ratios, floors []float64
	var conc, seq []time.Duration
	totalAtt, writers, lost := 0, 0, 0
	for i := 0; i+1 < len(r.Rounds); i += 2 {
		cr, sr := r.Rounds[i], r.Rounds[i+1]
		att, most := 0, 0
		for _, x := range cr.Runs {
			att += x.Attempts
			most = max(most, x.Attempts)
		}
		totalAtt += att
		writers += len(cr.Runs)
		lost += cr.Lost + sr.Lost
		ratio := float64(cr.Wall) / float64(sr.Wall)
		ratios = append(ratios, ratio)
		conc, seq = append(conc, cr.Wall), append(seq, sr.Wall)
		floor := cr.CPU.Seconds() / float64(max(m.CPUs, 1)) / sr.Wall.Seconds()
		floors = append(floors, floor)
		fmt.Fprintf(w, "| %d | %.2f s | %.2f s | %.2f× | %.2f s · %.2f s | %.2f s · %.2f s | %.2f× | %d | %.2f · %d | %d |\n", i/2+1, cr.Wall.Seconds(), sr.Wall.Seconds(), ratio,
			cr.CPU.Seconds(), sr.CPU.Seconds(), ferryCPU(cr).Seconds(), ferryCPU(sr).Seconds(), floor, att, float64(att)/float64(len(cr.Runs)), most, cr.Lost+sr.Lost)
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		slices.Sort(floors)
		fmt.Fprintf(w, "| median | %.2f s | %.2f s | %.2f× | | | %.2f× | %.1f a round | %.2f | %d in all |\n", medianDur(conc).Seconds(), medianDur(seq).Seconds(),
			ratios[len(ratios)/2], floors[len(floors)/2], float64(totalAtt)/float64(len(ratios)), float64(totalAtt)/float64(writers), lost)
	}
	fmt.Fprintln(w)
	printModel(w, r.Model)
}

// ferryCPU is the CPU time of a round's ferry processes.
func ferryCPU(r writersRound) time.Duration {
	var t time.Duration
	for _, w := range r.Runs {
		t += w.CPU
	}
	return t
}

// machineBusy is the time all cores have spent not idle since boot, from
// /proc/stat (0 where there is none).
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is counted in user already
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
