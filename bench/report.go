package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Targets of the issue, for this 2-core machine.
const (
	targetThroughputRatio = 0.90   // (c)/(b) closed-loop req/s, at least
	targetP99AddedRatio   = 1.5    // ((c)-(a)) / ((b)-(a)) p99 at -rate, at most
	targetTTFBAddedUS     = 200.0  // (c)-(a) p50 time to first byte, under
	floorBusyMin          = 0.90   // below this the floor was not bound by its core
	sendLagWarnUS         = 250.0  // open-loop schedule slip worth a warning
	settleWarnMS          = 1000.0 // ledger catch-up after a run worth a warning
)

var ids = []string{"a", "b", "c"}

// results holds every run, by scenario and target id.
type results struct {
	have  map[string]bool
	runs  map[string]map[string][]run
	rssKB map[string]int64
}

func newResults(targets []*target) *results {
	r := &results{have: map[string]bool{}, runs: map[string]map[string][]run{}, rssKB: map[string]int64{}}
	for _, t := range targets {
		r.have[t.id] = true
	}
	return r
}

func (r *results) add(sc, id string, x run) {
	if r.runs[sc] == nil {
		r.runs[sc] = map[string][]run{}
	}
	r.runs[sc][id] = append(r.runs[sc][id], x)
}

// med is the median of f over the runs of (sc, id); NaN if none.
func (r *results) med(sc, id string, f func(run) float64) float64 {
	var v []float64
	for _, x := range r.runs[sc][id] {
		if y := f(x); !math.IsNaN(y) {
			v = append(v, y)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// worst is the maximum of f over the runs of sc, all targets.
func (r *results) worst(sc string, f func(run) float64) float64 {
	w := math.NaN()
	for _, id := range ids {
		for _, x := range r.runs[sc][id] {
			if y := f(x); math.IsNaN(w) || y > w {
				w = y
			}
		}
	}
	return w
}

func (r *results) errors(id string) (errs, unsent, runs int) {
	for _, byID := range r.runs {
		for _, x := range byID[id] {
			errs += x.Errors
			unsent += x.Unsent
			runs++
		}
	}
	return
}

func cpuPerReq(x run) float64 {
	if x.ProxyCPU <= 0 || x.TotalDone == 0 {
		return math.NaN()
	}
	return float64(x.ProxyCPU.Microseconds()) / float64(x.TotalDone)
}

// settleMS is how long the target took after the load to store what it
// had deferred, in milliseconds.
func settleMS(x run) float64 { return float64(x.Settle.Microseconds()) / 1000 }

func cpuBusy(x run) float64 {
	if x.ProxyCPU <= 0 || x.Elapsed <= 0 {
		return math.NaN()
	}
	return 100 * x.ProxyCPU.Seconds() / (x.Elapsed + x.Settle).Seconds()
}

type row struct {
	label string
	cells [3]string // (a), (b), (c)
}

type section struct {
	title string
	rows  []row
}

type check struct {
	name    string
	value   string
	target  string
	verdict string // PASS, FAIL, n/a
}

type report struct {
	o        options
	m        machine
	gw       *gatewayInfo
	pinned   bool
	sections []section
	checks   []check
	info     []string // informational ratios
	notes    []string // validity warnings
	cmdline  string
}

func fnum(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func buildReport(o options, m machine, res *results, gw *gatewayInfo, pinned bool, warnings []string) *report {
	rp := &report{o: o, m: m, gw: gw, pinned: pinned, notes: slices.Clone(warnings),
		cmdline: "go run ./bench " + strings.Join(os.Args[1:], " ")}
	if o.repeat < 3 || o.duration < 10*time.Second {
		rp.notes = append(rp.notes, fmt.Sprintf("short run (%d x %s): p99 figures in particular are indicative only; "+
			"the reference run is -duration 10s -repeat 3 on a quiet machine", o.repeat, o.duration))
	}
	has := func(id string) bool { return res.have[id] }
	// vals computes a metric for (a), (b), (c).
	vals := func(sc string, f func(run) float64) [3]float64 {
		var v [3]float64
		for i, id := range ids {
			v[i] = math.NaN()
			if has(id) {
				v[i] = res.med(sc, id, f)
			}
		}
		return v
	}
	cells := func(v [3]float64, prec int) [3]string {
		return [3]string{fnum(v[0], prec), fnum(v[1], prec), fnum(v[2], prec)}
	}
	added := func(v [3]float64) [3]float64 { return [3]float64{math.NaN(), v[1] - v[0], v[2] - v[0]} }
	proxyOnly := func(v [3]float64) [3]float64 { v[0] = math.NaN(); return v }
	gatewayOnly := func(v [3]float64) [3]float64 { v[0], v[1] = math.NaN(), math.NaN(); return v }
	ratio := func(x, y float64) float64 { return x / y }
	mkcheck := func(name string, value float64, valueFmt string, target string, ok bool) check {
		c := check{name: name, target: target, value: fnum(value, 2), verdict: "n/a"}
		if valueFmt != "" && !math.IsNaN(value) {
			c.value = fmt.Sprintf(valueFmt, value)
		}
		if !math.IsNaN(value) {
			c.verdict = map[bool]string{true: "PASS", false: "FAIL"}[ok]
		}
		return c
	}

	var thr, rateP99, ttfb [3]float64
	floorBusy := math.NaN()
	for i := range thr {
		thr[i], rateP99[i], ttfb[i] = math.NaN(), math.NaN(), math.NaN()
	}
	if res.runs[modeClosed] != nil {
		thr = vals(modeClosed, func(x run) float64 { return x.RPS })
		cpu := proxyOnly(vals(modeClosed, cpuPerReq))
		busy := proxyOnly(vals(modeClosed, cpuBusy))
		rp.sections = append(rp.sections, section{
			title: fmt.Sprintf("Non-stream, closed loop, %d connections", o.conns),
			rows: []row{
				{"throughput, req/s", cells(thr, 0)},
				{"proxy CPU per request, µs", cells(cpu, 1)},
				{"proxy core busy, %", cells(busy, 0)},
				{"ledger settled after the run, ms", cells(gatewayOnly(vals(modeClosed, settleMS)), 0)},
			},
		})
		floorBusy = busy[1]
		if b := busy[1]; !math.IsNaN(b) && b < 100*floorBusyMin {
			rp.notes = append(rp.notes, fmt.Sprintf("the floor kept its core only %.0f%% busy in the closed loop: "+
				"the load side limited it, so throughput (c)/(b) understates what aigw costs; "+
				"proxy CPU per request (c)/(b) is the sharper measure", b))
		}
		rp.info = append(rp.info,
			fmt.Sprintf("throughput (b)/(a) = %s", fnum(ratio(thr[1], thr[0]), 2)),
			fmt.Sprintf("proxy CPU per request (c)/(b) = %s", fnum(ratio(cpu[2], cpu[1]), 2)))
	}
	if w := res.worst(modeClosed, settleMS); w > settleWarnMS {
		rp.notes = append(rp.notes, fmt.Sprintf("aigw's ledger needed up to %.0f ms after a closed-loop run to store its backlog: "+
			"the store did not keep up with that load, and throughput (c) is more than aigw sustains with accounting "+
			"(its CPU per request includes the catch-up)", w))
	}
	if res.runs[modeRate] != nil {
		p50 := vals(modeRate, func(x run) float64 { return x.Lat.P50 })
		rateP99 = vals(modeRate, func(x run) float64 { return x.Lat.P99 })
		rp.sections = append(rp.sections, section{
			title: fmt.Sprintf("Non-stream at %s req/s, open loop (latency from the scheduled send)", fnum(o.rate, 0)),
			rows: []row{
				{"latency p50, µs", cells(p50, 0)},
				{"latency p99, µs", cells(rateP99, 0)},
				{"added p50 over (a), µs", cells(added(p50), 0)},
				{"added p99 over (a), µs", cells(added(rateP99), 0)},
				{"proxy CPU per request, µs", cells(proxyOnly(vals(modeRate, cpuPerReq)), 1)},
			},
		})
		if lag := res.worst(modeRate, func(x run) float64 { return x.SendLag.P99 }); lag > sendLagWarnUS {
			rp.notes = append(rp.notes, fmt.Sprintf("the load generator sent up to %.0f µs late (p99 of one run) "+
				"in the fixed-rate scenario: the load core was busy; latencies include it", lag))
		}
	}
	if res.runs[modeStream] != nil {
		ttfb = vals(modeStream, func(x run) float64 { return x.TTFB.P50 })
		ttfb99 := vals(modeStream, func(x run) float64 { return x.TTFB.P99 })
		tot50 := vals(modeStream, func(x run) float64 { return x.Total.P50 })
		tot99 := vals(modeStream, func(x run) float64 { return x.Total.P99 })
		rp.sections = append(rp.sections, section{
			title: fmt.Sprintf("Streams of %d chunks at %s streams/s, open loop", streamChunks, fnum(o.streamRate, 0)),
			rows: []row{
				{"time to first byte p50, µs", cells(ttfb, 0)},
				{"time to first byte p99, µs", cells(ttfb99, 0)},
				{"total time p50, µs", cells(tot50, 0)},
				{"total time p99, µs", cells(tot99, 0)},
				{"added TTFB p50 over (a), µs", cells(added(ttfb), 0)},
				{"added TTFB p99 over (a), µs", cells(added(ttfb99), 0)},
				{"added total p50 over (a), µs", cells(added(tot50), 0)},
				{"proxy CPU per stream, µs", cells(proxyOnly(vals(modeStream, cpuPerReq)), 0)},
			},
		})
		rp.info = append(rp.info, fmt.Sprintf("added TTFB p99: (c)-(a) = %s µs, floor (b)-(a) = %s µs",
			fnum(ttfb99[2]-ttfb99[0], 0), fnum(ttfb99[1]-ttfb99[0], 0)))
	}
	if res.runs[modeStreamClosed] != nil {
		sthr := vals(modeStreamClosed, func(x run) float64 { return x.RPS })
		rp.sections = append(rp.sections, section{
			title: fmt.Sprintf("Streams of %d chunks, closed loop, %d connections", streamChunks, o.streamConns),
			rows: []row{
				{"throughput, streams/s", cells(sthr, 0)},
				{"proxy CPU per stream, µs", cells(proxyOnly(vals(modeStreamClosed, cpuPerReq)), 0)},
				{"proxy core busy, %", cells(proxyOnly(vals(modeStreamClosed, cpuBusy)), 0)},
			},
		})
		rp.info = append(rp.info, fmt.Sprintf("stream throughput (c)/(b) = %s", fnum(ratio(sthr[2], sthr[1]), 2)))
	}
	var rss, errCells [3]string
	for i, id := range ids {
		rss[i], errCells[i] = "-", "-"
		if kb, ok := res.rssKB[id]; ok {
			rss[i] = fmt.Sprintf("%.1f", float64(kb)/1024)
		}
		if has(id) {
			e, u, n := res.errors(id)
			errCells[i] = fmt.Sprintf("%d", e+u)
			if e+u > 0 {
				rp.notes = append(rp.notes, fmt.Sprintf("(%s) had %d failed and %d unsent requests over %d runs: "+
					"its figures are not valid", id, e, u, n))
			}
		}
	}
	rp.sections = append(rp.sections, section{title: "Processes", rows: []row{
		{"peak RSS (VmHWM), MiB", rss},
		{"failed requests, all runs", errCells},
	}})

	// The targets.
	c1 := mkcheck("max throughput (c)/(b)", ratio(thr[2], thr[1]), "%.2f",
		fmt.Sprintf(">= %.2f", targetThroughputRatio), ratio(thr[2], thr[1]) >= targetThroughputRatio)
	addC, addB := rateP99[2]-rateP99[0], rateP99[1]-rateP99[0]
	c2 := check{name: fmt.Sprintf("p99 added latency at %s req/s, (c)-(a) vs floor (b)-(a)", fnum(o.rate, 0)),
		target: fmt.Sprintf("<= %.1fx", targetP99AddedRatio), verdict: "n/a", value: "-"}
	switch {
	case math.IsNaN(addC) || math.IsNaN(addB):
	case addB <= 0:
		c2.value, c2.verdict = fmt.Sprintf("%.0f µs vs %.0f µs", addC, addB), "n/a (floor adds nothing measurable: noise?)"
	case addC <= 0:
		c2.value, c2.verdict = fmt.Sprintf("%.0f µs vs %.0f µs", addC, addB), "PASS"
	default:
		r := addC / addB
		c2.value = fmt.Sprintf("%.0f µs vs %.0f µs = %.2fx", addC, addB, r)
		c2.verdict = map[bool]string{true: "PASS", false: "FAIL"}[r <= targetP99AddedRatio]
	}
	addT := ttfb[2] - ttfb[0]
	c3 := mkcheck("added time to first byte (c)-(a), p50", addT, "%.0f µs",
		fmt.Sprintf("< %.0f µs", targetTTFBAddedUS), addT < targetTTFBAddedUS)
	if floorBusy < 100*floorBusyMin && c1.verdict != "n/a" {
		c1.verdict += fmt.Sprintf(" (unreliable: the floor's core was %.0f%% busy)", floorBusy)
	}
	rp.checks = []check{c1, c2, c3}
	if e, u, _ := res.errors("c"); e+u > 0 {
		for i := range rp.checks {
			rp.checks[i].verdict += " (INVALID: requests failed)"
		}
	}
	if gw.metrics != nil {
		sent := 2 // the smoke check
		for _, byID := range res.runs {
			for _, x := range byID["c"] {
				sent += x.TotalDone
			}
		}
		var parts []string
		for _, name := range gatewayCounters {
			if v, ok := gw.metrics[name]; ok {
				parts = append(parts, fmt.Sprintf("%s %.0f", name, v))
			}
		}
		rp.info = append(rp.info, fmt.Sprintf("gateway /metrics at the end: %s (the harness got %d answers from it)",
			strings.Join(parts, ", "), sent))
		if gw.metrics["aigw_panics_total"] > 0 {
			rp.notes = append(rp.notes, fmt.Sprintf("the gateway recovered %.0f handler panics", gw.metrics["aigw_panics_total"]))
		}
	}
	if gw.crashed != "" {
		rp.notes = append(rp.notes, "(c) aigw "+gw.crashed)
	}
	if gw.errLines > 0 {
		rp.notes = append(rp.notes, fmt.Sprintf("the gateway logged %d warnings or errors, e.g.: %s",
			gw.errLines, strings.Join(gw.errSample, " | ")))
	}
	return rp
}

func (rp *report) header() []string {
	m := rp.m
	return []string{
		fmt.Sprintf("machine: %d cores, %s, Linux %s", m.CPUs, m.Model, m.Kernel),
		fmt.Sprintf("date: %s; harness built with %s", m.Date, m.Go),
		fmt.Sprintf("gateway: %s", rp.gatewayLine()),
		fmt.Sprintf("command: %s", rp.cmdline),
		fmt.Sprintf("pinning: %s", rp.pinLine()),
		fmt.Sprintf("each figure: median of %d runs of %s after %s warmup", rp.o.repeat, rp.o.duration, rp.o.warmup),
	}
}

func (rp *report) gatewayLine() string {
	switch {
	case rp.gw.skipped != "":
		return "(c) skipped: " + rp.gw.skipped
	case rp.gw.version != "":
		return fmt.Sprintf("%s (%s), log: %d lines", rp.gw.bin, rp.gw.version, rp.gw.logLines)
	}
	return rp.gw.bin
}

func (rp *report) pinLine() string {
	s := "none (taskset unavailable)"
	if rp.pinned {
		s = fmt.Sprintf("proxy under test on core %d; upstream, load generator and harness on core %d (taskset)",
			rp.o.proxyCPU, rp.o.loadCPU)
	}
	if rp.o.nice != 0 {
		s += fmt.Sprintf("; children at nice %d", rp.o.nice)
	}
	return s
}

// text renders the report for a terminal.
func (rp *report) text() string {
	var b strings.Builder
	b.WriteString("\naigw benchmark: (a) direct to the fake upstream, (b) bare fasthttp proxy (floor), (c) aigw\n")
	for _, l := range rp.header() {
		b.WriteString("  " + l + "\n")
	}
	const lw, cw = 34, 11
	for _, s := range rp.sections {
		fmt.Fprintf(&b, "\n%s\n", s.title)
		fmt.Fprintf(&b, "  %-*s%*s%*s%*s\n", lw, "", cw, "(a) direct", cw, "(b) floor", cw, "(c) aigw")
		for _, r := range s.rows {
			fmt.Fprintf(&b, "  %-*s%*s%*s%*s\n", lw, r.label, cw, r.cells[0], cw, r.cells[1], cw, r.cells[2])
		}
	}
	b.WriteString("\nTargets\n")
	for _, c := range rp.checks {
		fmt.Fprintf(&b, "  %-60s %-22s target %-9s %s\n", c.name, c.value, c.target, c.verdict)
	}
	if len(rp.info) > 0 {
		b.WriteString("\nAlso\n")
		for _, l := range rp.info {
			b.WriteString("  " + l + "\n")
		}
	}
	if len(rp.notes) > 0 {
		b.WriteString("\nNotes\n")
		for _, l := range rp.notes {
			b.WriteString("  ! " + l + "\n")
		}
	}
	return b.String()
}

// markdown renders the report as docs/benchmarks.md.
func (rp *report) markdown() string {
	var b strings.Builder
	b.WriteString(`# Benchmarks

This file is written by ` + "`make bench`" + ` (` + "`go run ./bench -gateway ./bin/aigw`" + `); run it again
on a quiet machine to refresh it. The harness lives in ` + "`bench/`" + `.

## What is measured

In one run, on 127.0.0.1, against an in-repo fake OpenAI upstream that answers from
precomputed bytes:

- **(a) direct**: the load generator talks to the upstream itself;
- **(b) floor**: a bare fasthttp reverse proxy that copies requests and answers through
  (streams with a flush per read) and parses nothing: the least any gateway could cost;
- **(c) aigw**: the gateway binary with a policy of one OpenAI provider, one model, one
  org and one key: key auth, metrics and accounting (usage, cost, one JSON log line per
  request) on.

The proxy under test is pinned to one core and the upstream, the load generator and the
harness to the other (` + "`taskset`" + `), so the proxy never competes with the load for CPU
(` + "`-nice -10`" + ` also raises them above other work on a shared machine).
Scenarios, each run against (a), (b), (c) in turn and repeated, medians reported:

- closed loop: non-stream requests sent back to back on N connections, answers per second;
- fixed rate: non-stream requests at a fixed rate, open loop, latency measured from the
  scheduled send time so a slow answer cannot hide the requests queued behind it;
- streams at a fixed rate: SSE answers of 64 content chunks (plus a finish chunk and
  ` + "`[DONE]`" + `), time to the first body byte and to the end of the stream;
- streams, closed loop: streams per second.

"Proxy CPU per request" is the user+system CPU time of the proxy process over the run
divided by the requests it served: it does not depend on how busy the load side was.
After each run against aigw the harness waits until its usage ledger has stored every
record (` + "`aigw_ledger_backlog_bytes`" + ` 0) and counts that catch-up in the CPU; "ledger
settled after the run" says how long it took (a few tens of ms is the flush interval).
In the closed loop the load core (load generator plus upstream) can be the limit rather
than the proxy core; "proxy core busy" shows which: near 100% means the proxy was the
bottleneck and the throughput ratio is meaningful.
Every answer is checked (status 200, a whole chat completion or a whole stream ending in
` + "`[DONE]`" + `); a target with failed requests is flagged.

## Run
`)
	b.WriteString("\n")
	for _, l := range rp.header() {
		b.WriteString("- " + mdEscape(l) + "\n")
	}
	for _, s := range rp.sections {
		fmt.Fprintf(&b, "\n### %s\n\n", s.title)
		b.WriteString("| | (a) direct | (b) floor | (c) aigw |\n|---|---:|---:|---:|\n")
		for _, r := range s.rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.label, r.cells[0], r.cells[1], r.cells[2])
		}
	}
	b.WriteString("\n## Targets\n\n| target | measured | goal | verdict |\n|---|---|---|---|\n")
	for _, c := range rp.checks {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.name, c.value, c.target, c.verdict)
	}
	if len(rp.info) > 0 {
		b.WriteString("\nAlso:\n\n")
		for _, l := range rp.info {
			b.WriteString("- " + l + "\n")
		}
	}
	if len(rp.notes) > 0 {
		b.WriteString("\n## Notes on this run\n\n")
		for _, l := range rp.notes {
			b.WriteString("- " + mdEscape(l) + "\n")
		}
	}
	return b.String()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
