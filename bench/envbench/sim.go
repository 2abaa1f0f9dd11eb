package main

import (
	"container/heap"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ferrycd/ferry/internal/backoff"
)

// The contention model of one env branch (issue 14, item 6). The branch is
// one server; every push is served in turn (its service time is the
// serialization point: receiving the pack, then the compare-and-swap of the
// ref). A writer's attempt reads the tip, fetches and edits, and pushes; the
// push's compare-and-swap fails if another push updated the ref since the
// tip was read. The loser waits as envrepo.Writer does (full-jitter
// exponential backoff, base 500ms, at most 5s, at most 30 attempts) and
// starts again with a fresh fetch.

// simParams calibrate the model.
type simParams struct {
	// Fetch is an attempt's time from its start to the push's request,
	// without network round trips: process start, the fetch, the edit.
	Fetch time.Duration `json:"fetch_ns"`
	// Server is the push's time at the server; Lock is the part of it
	// that is serialized (the ref update), all of it when Lock is 0 or
	// more than Server. The rest runs alongside other pushes.
	Server time.Duration `json:"server_ns"`
	Lock   time.Duration `json:"lock_ns"`
	// RTT is the network round trip; FetchRTs and PushRTs are the round
	// trips of the fetch and of the push (requests plus new connections).
	RTT      time.Duration `json:"rtt_ns"`
	FetchRTs int           `json:"fetch_round_trips"`
	PushRTs  int           `json:"push_round_trips"`
	Backoff  time.Duration `json:"backoff_ns"`
	MaxWait  time.Duration `json:"max_wait_ns"`
	Attempts int           `json:"attempts"`
}

// paramsFrom turns a calibration measured at some latency into model
// parameters, taking the network's part out of the measured times.
func paramsFrom(c calibration, base time.Duration) simParams {
	rtt := 2 * c.Latency
	// Round trips: the turns counted on the wire, and a handshake a
	// connection; requests where the turns were not counted.
	fetchRTs := int(c.NoOpTurns + c.NoOpConns)
	pushRTs := int(c.DeployTurns+c.DeployConns) - fetchRTs
	if c.NoOpTurns == 0 {
		fetchRTs = int(c.NoOpReqs + c.NoOpConns)
		pushRTs = int(c.DeployReqs+c.DeployConns) - fetchRTs
	}
	pushRTs = max(pushRTs, 1)
	return simParams{
		Fetch:    max(c.NoOp-time.Duration(fetchRTs)*rtt, time.Millisecond),
		Server:   max(c.PushOverhead-time.Duration(pushRTs)*rtt, time.Millisecond),
		RTT:      rtt,
		FetchRTs: fetchRTs,
		PushRTs:  pushRTs,
		Backoff:  base,
		MaxWait:  5 * time.Second,
		Attempts: 30,
	}
}

func (p simParams) withRTT(rtt time.Duration) simParams { p.RTT = rtt; return p }

func (p simParams) withLock(lock time.Duration) simParams { p.Lock = lock; return p }

// lock is the serialized part of a push.
func (p simParams) lock() time.Duration {
	if p.Lock <= 0 || p.Lock > p.Server {
		return p.Server
	}
	return p.Lock
}

// capacity is the highest rate a minute, to the nearest 5%, at which no
// writer gives up and the p95 latency stays under a minute, over 20
// simulated minutes.
func capacity(p simParams) float64 {
	ok := func(rate float64) bool {
		r := simulateRate(p, rate, 20*time.Minute, 3)
		return r.GaveUp == 0 && r.P95 < time.Minute
	}
	lo, hi := 0.0, 5.0
	for ok(hi) && hi < 1e5 {
		lo, hi = hi, hi*2
	}
	for hi-lo > 0.05*hi {
		if mid := (lo + hi) / 2; ok(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// alone is one uncontended deploy's time in the model.
func (p simParams) alone() time.Duration {
	return p.Fetch + time.Duration(p.FetchRTs+p.PushRTs)*p.RTT + p.Server
}

// simResult is the model's prediction for one load.
type simResult struct {
	Kind       string        `json:"kind"` // "burst": Writers at once; "rate": Rate a minute
	Writers    int           `json:"writers,omitempty"`
	Rate       float64       `json:"per_minute,omitempty"`
	Params     simParams     `json:"params"`
	Makespan   time.Duration `json:"makespan_ns,omitempty"`   // burst: until the last writer is done (mean)
	Sequential time.Duration `json:"sequential_ns,omitempty"` // burst: the same writers one after another
	Done       float64       `json:"done_per_minute,omitempty"`
	P50        time.Duration `json:"latency_p50_ns"`
	P95        time.Duration `json:"latency_p95_ns"`
	Attempts   float64       `json:"attempts_per_writer"`
	MaxAtt     int           `json:"max_attempts"`
	GaveUp     float64       `json:"gave_up_fraction"`
	Busy       float64       `json:"server_busy"` // fraction of time the server is pushing
}

type event struct {
	at   time.Duration
	kind int // evStart, evRead, evArrive, evServed
	w    int
	seq  int
}

const (
	evStart = iota
	evRead
	evArrive
	evLock
	evServed
)

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simWriter struct {
	arrive, done time.Duration
	attempt      int
	started      time.Duration // when this attempt started
	read         int           // the ref version this attempt read
	ok, gaveUp   bool
}

// simulate runs the model for writers arriving at the given times and
// returns them when all are done, and the server's busy time.
func simulate(p simParams, arrivals []time.Duration) ([]simWriter, time.Duration) {
	ws := make([]simWriter, len(arrivals))
	var q eventQueue
	seq := 0
	push := func(at time.Duration, kind, w int) {
		seq++
		heap.Push(&q, event{at, kind, w, seq})
	}
	for i, a := range arrivals {
		ws[i].arrive = a
		push(a, evStart, i)
	}
	version := 0
	var serverFree, busy time.Duration
	half := p.RTT / 2
	for q.Len() > 0 {
		e := heap.Pop(&q).(event)
		w := &ws[e.w]
		switch e.kind {
		case evStart:
			w.attempt++
			w.started = e.at
			push(e.at+half, evRead, e.w) // the ref advertisement
		case evRead:
			w.read = version
			// The answer's way back, the rest of the fetch, the edit, the
			// push's requests before the one that updates the ref, and
			// that one's way there.
			push(e.at+p.Fetch+time.Duration(p.FetchRTs+p.PushRTs-1)*p.RTT, evArrive, e.w)
		case evArrive:
			push(e.at+p.Server-p.lock(), evLock, e.w)
		case evLock:
			start := max(e.at, serverFree)
			serverFree = start + p.lock()
			busy += p.lock()
			push(serverFree, evServed, e.w)
		case evServed:
			if w.read == version {
				version++
				w.ok, w.done = true, e.at+half
				continue
			}
			if w.attempt >= p.Attempts {
				w.gaveUp, w.done = true, e.at+half
				continue
			}
			wait := backoff.Delay(p.Backoff, p.MaxWait, w.attempt) + 1
			if p.Backoff <= 0 {
				// ferry's default: linear in the attempt's own time
				// (envrepo.Writer.Backoff), clamped as ferry clamps it.
				step := min(max(e.at+half-w.started, 20*time.Millisecond), 500*time.Millisecond)
				wait = backoff.Linear(step, p.MaxWait, w.attempt) + 1
			}
			push(e.at+half+wait, evStart, e.w)
		}
	}
	return ws, busy
}

// backoffName words a model's backoff: a base for the exponential one,
// "attempt × n" for ferry's default.
func backoffName(base time.Duration) string {
	if base <= 0 {
		return "attempt × n"
	}
	return "exp. from " + base.String()
}

// summarizeSim fills the latency, attempts and give-up figures.
func summarizeSim(r *simResult, ws []simWriter) {
	lat := make([]time.Duration, 0, len(ws))
	att, gave := 0, 0
	for _, w := range ws {
		lat = append(lat, w.done-w.arrive)
		att += w.attempt
		r.MaxAtt = max(r.MaxAtt, w.attempt)
		if w.gaveUp {
			gave++
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.P50 = lat[len(lat)/2]
		r.P95 = lat[min(len(lat)-1, int(math.Ceil(float64(len(lat))*0.95))-1)]
		r.Attempts = float64(att) / float64(len(ws))
		r.GaveUp = float64(gave) / float64(len(ws))
	}
}

// simulateBurst predicts n writers starting at once, over reps trials.
func simulateBurst(p simParams, n, reps int) simResult {
	r := simResult{Kind: "burst", Writers: n, Params: p, Sequential: time.Duration(n) * p.alone()}
	var all []simWriter
	var makespan time.Duration
	for range reps {
		ws, _ := simulate(p, make([]time.Duration, n))
		var last time.Duration
		for _, w := range ws {
			last = max(last, w.done)
		}
		makespan += last
		all = append(all, ws...)
	}
	r.Makespan = makespan / time.Duration(reps)
	summarizeSim(&r, all)
	return r
}

// simulateRate predicts writers arriving at random (Poisson) at perMinute
// for span, over reps trials.
func simulateRate(p simParams, perMinute float64, span time.Duration, reps int) simResult {
	r := simResult{Kind: "rate", Rate: perMinute, Params: p}
	var all []simWriter
	var busy, end time.Duration
	ok := 0
	for range reps {
		var arrivals []time.Duration
		for t := time.Duration(0); ; {
			t += time.Duration(rand.ExpFloat64() / perMinute * float64(time.Minute))
			if t >= span {
				break
			}
			arrivals = append(arrivals, t)
		}
		ws, b := simulate(p, arrivals)
		busy += b
		var last time.Duration
		for _, w := range ws {
			last = max(last, w.done)
			if w.ok {
				ok++
			}
		}
		end += max(last, span)
		all = append(all, ws...)
	}
	r.Done = float64(ok) / end.Minutes()
	r.Busy = float64(busy) / float64(end)
	summarizeSim(&r, all)
	return r
}

// printModel prints the model's predictions as a Markdown table.
func printModel(w io.Writer, rs []simResult) {
	if len(rs) == 0 {
		return
	}
	p := rs[0].Params
	fmt.Fprintf(w, "Model: fetch and edit %.0f ms + %d round trips, push %d round trips + %.0f ms at the server; every attempt charged the whole no-op deploy (a retry costs less: an upper bound); full-jitter waits, at most %v each, %d attempts.\n\n",
		ms(p.Fetch), p.FetchRTs, p.PushRTs, ms(p.Server), p.MaxWait, p.Attempts)
	fmt.Fprintln(w, "| load | round trip | serialized | backoff base | alone | done a minute | latency p50 | p95 | attempts per writer (max) | gave up | server busy | burst: makespan · sequential · ratio |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
	for _, r := range rs {
		load, done, burst, busy := "", "", "", ""
		switch r.Kind {
		case "capacity":
			fmt.Fprintf(w, "| **capacity: %.0f a minute** | %.0f ms | %.0f ms | %v | %.2f s | | | | | | | |\n", r.Rate, ms(r.Params.RTT), ms(r.Params.lock()), backoffName(r.Params.Backoff), r.Params.alone().Seconds())
			continue
		case "burst":
			load = fmt.Sprintf("%d writers at once", r.Writers)
			burst = fmt.Sprintf("%.2f s · %.2f s · %.2f×", r.Makespan.Seconds(), r.Sequential.Seconds(), float64(r.Makespan)/float64(r.Sequential))
		default:
			load = fmt.Sprintf("%g a minute", r.Rate)
			done = fmt.Sprintf("%.1f", r.Done)
			busy = fmt.Sprintf("%.0f%%", 100*r.Busy)
		}
		fmt.Fprintf(w, "| %s | %.0f ms | %.0f ms | %v | %.2f s | %s | %.2f s | %.2f s | %.2f (%d) | %.1f%% | %s | %s |\n", load, ms(r.Params.RTT), ms(r.Params.lock()), backoffName(r.Params.Backoff), r.Params.alone().Seconds(),
			done, r.P50.Seconds(), r.P95.Seconds(), r.Attempts, r.MaxAtt, 100*r.GaveUp, busy, burst)
	}
	fmt.Fprintln(w)
}

// printSimulation runs the model alone (-simulate), with -sim-* parameters.
func printSimulation(w io.Writer, cfg config) {
	p := cfg.sim
	p.Backoff, p.MaxWait, p.Attempts = cfg.backoff, 5*time.Second, 30
	var rs []simResult
	rs = append(rs, simulateBurst(p, max(cfg.writers, 20), 200))
	rs = append(rs, modelLoads(p, []time.Duration{p.RTT}, []time.Duration{p.Lock})...)
	printModel(w, rs)
}

// modelLoads predicts 10, 50 and 200 writers a minute, and the capacity,
// at each round trip, with all of the push serialized and with only locks
// of it (the ref update; 0 means all).
func modelLoads(p simParams, rtts, locks []time.Duration) []simResult {
	var rs []simResult
	for _, lock := range locks {
		for _, rtt := range rtts {
			q := p.withRTT(rtt).withLock(lock)
			for _, rate := range []float64{10, 50, 200} {
				rs = append(rs, simulateRate(q, rate, 30*time.Minute, 10))
			}
			rs = append(rs, simResult{Kind: "capacity", Rate: capacity(q), Params: q})
		}
	}
	return rs
}
