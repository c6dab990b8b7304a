// Command bench measures what aigw costs on top of a bare proxy.
//
// In one run, on 127.0.0.1, against an in-repo fast fake OpenAI upstream, it
// drives (a) the upstream directly, (b) the floor, a bare fasthttp reverse
// proxy, and (c) aigw with auth, metrics and accounting on, through the same
// scenarios:
//
//   - closed: non-stream requests, -conns workers back to back: max req/s;
//   - rate: non-stream requests at a fixed -rate (open loop; latency counted
//     from the scheduled send time, so a slow answer cannot hide the ones
//     queued behind it): p50 and p99;
//   - stream: streams of 64 chunks at a fixed -stream-rate: time to first
//     byte and total time, p50 and p99;
//   - stream-closed: streams, -stream-conns workers back to back: streams/s.
//
// It prints the ratios (c)/(b) and the latency (c) adds over (a), checks
// them against the targets, and writes the same as markdown to -out.
//
// The proxy under test runs pinned to one core (-proxy-cpu) and the
// upstream and load generator to another (-load-cpu), with taskset, so the
// ratios hold on a noisy machine. The pieces are this same program started
// again with -role upstream|floor|load.
//
// Usage:
//
//	go run ./bench -gateway ./bin/aigw [-duration 10s] [-rate 2000] [-conns 64] [-out docs/benchmarks.md]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

type options struct {
	gateway     string
	duration    time.Duration
	warmup      time.Duration
	rate        float64
	conns       int
	streamRate  float64
	streamConns int
	repeat      int
	scenarios   string
	out         string
	proxyCPU    int
	loadCPU     int
	key         string
	keep        bool
	nice        int
}

func main() {
	var o options
	var role, target, upstream, mode string
	flag.StringVar(&o.gateway, "gateway", "", "aigw binary for target (c); empty or missing: (c) is skipped")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each load run")
	flag.DurationVar(&o.warmup, "warmup", 0, "unmeasured time before each load run (default min(1s, duration/3))")
	flag.Float64Var(&o.rate, "rate", 2000, "fixed rate of the non-stream latency scenario, req/s")
	flag.IntVar(&o.conns, "conns", 64, "connections of the closed-loop non-stream scenario (and workers of the fixed-rate one)")
	flag.Float64Var(&o.streamRate, "stream-rate", 200, "fixed rate of the stream latency scenario, streams/s")
	flag.IntVar(&o.streamConns, "stream-conns", 16, "connections of the stream scenarios")
	flag.IntVar(&o.repeat, "repeat", 3, "runs of each scenario per target, interleaved; medians are reported")
	flag.StringVar(&o.scenarios, "scenarios", "closed,rate,stream,stream-closed", "scenarios to run")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown report file; empty: none")
	flag.IntVar(&o.proxyCPU, "proxy-cpu", 1, "core of the proxy under test (floor, aigw)")
	flag.IntVar(&o.loadCPU, "load-cpu", 0, "core of the upstream, the load generator and this program")
	flag.StringVar(&o.key, "key", "sk-aigw-demo", "gateway key sent as Authorization: Bearer")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (policy, gateway log)")
	flag.IntVar(&o.nice, "nice", 0, "run every child with this nice value (e.g. -10 on a busy shared machine; negative needs privileges)")
	// Internal: the roles of the child processes.
	flag.StringVar(&role, "role", "", "internal: upstream, floor or load")
	flag.StringVar(&upstream, "upstream", "", "internal (floor): upstream host:port")
	flag.StringVar(&target, "target", "", "internal (load): host:port")
	flag.StringVar(&mode, "mode", "", "internal (load): "+strings.Join(allModes, ", "))
	flag.Parse()
	if o.warmup == 0 {
		o.warmup = min(time.Second, o.duration/3).Round(time.Millisecond)
	}

	var err error
	switch role {
	case "":
		err = orchestrate(o)
	case "upstream":
		err = serveRole(newFakeUpstream().handle)
	case "floor":
		if upstream == "" {
			err = errors.New("-upstream is required")
			break
		}
		err = serveRole(newFloorProxy(upstream).handle)
	case "load":
		spec := loadSpec{Target: target, Mode: mode, Duration: o.duration, Warmup: o.warmup, Key: o.key}
		switch mode {
		case modeClosed, modeRate:
			spec.Conns, spec.Rate = o.conns, o.rate
		case modeStream, modeStreamClosed:
			spec.Conns, spec.Rate = o.streamConns, o.streamRate
		default:
			err = fmt.Errorf("unknown -mode %q", mode)
		}
		if err == nil {
			err = loadRole(spec)
		}
	default:
		err = fmt.Errorf("unknown -role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var allModes = []string{modeClosed, modeRate, modeStream, modeStreamClosed}

// serveRole serves handler on a free 127.0.0.1 port, prints
// "listening ADDR", and exits when stdin closes (the orchestrator is gone).
func serveRole(handler fasthttp.RequestHandler) error {
	srv := &fasthttp.Server{
		Handler:               handler,
		Name:                  "bench",
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		ReadTimeout:           60 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           2 * time.Minute,
	}
	ln, err := listen127()
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return srv.Serve(ln)
}

// loadRole runs one load spec and prints its result as JSON. A hard limit
// ends it even if a target hangs.
func loadRole(spec loadSpec) error {
	limit := spec.Warmup + spec.Duration + drainGrace + 2*clientTimeout + 10*time.Second
	time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "bench: load run did not finish within %s\n", limit)
		os.Exit(3)
	})
	res := runLoad(spec)
	return json.NewEncoder(os.Stdout).Encode(res)
}

// target is one of (a), (b), (c).
type target struct {
	id, name string
	proc     *child
	proxy    bool // the proxy under test: its CPU time is measured
	// settle, when set, waits after each load run for work the target
	// deferred (aigw's ledger) and returns how long it took.
	settle func() (time.Duration, error)
}

func orchestrate(o options) error {
	m := machineFacts()
	scenarios, err := parseScenarios(o.scenarios)
	if err != nil {
		return err
	}
	if o.repeat < 1 || o.conns < 1 || o.streamConns < 1 || o.rate <= 0 || o.streamRate <= 0 || o.duration <= 0 {
		return errors.New("-repeat, -conns, -stream-conns, -rate, -stream-rate and -duration must be positive")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var warnings []string
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		warnings = append(warnings, msg)
		fmt.Fprintln(os.Stderr, "WARNING:", msg)
	}

	ts, err := findTaskset(o.proxyCPU, o.loadCPU)
	if err != nil {
		warn("running unpinned (%v): the ratios are at the mercy of the scheduler", err)
	} else if err := pinSelf(ts, o.loadCPU); err != nil {
		warn("could not pin the harness to core %d: %v", o.loadCPU, err)
	}
	p := &procs{taskset: ts, self: self, nice: o.nice}
	if o.nice != 0 {
		if out, err := exec.Command("nice", "-n", strconv.Itoa(o.nice), "true").CombinedOutput(); err != nil {
			return fmt.Errorf("-nice %d: %v: %s", o.nice, err, strings.TrimSpace(string(out)))
		}
	}
	defer p.stopAll()

	runs := 3 * o.repeat * len(scenarios)
	perRun := o.warmup + o.duration + 500*time.Millisecond
	estimate := time.Duration(runs) * perRun
	// Every load run has its own limit; this one catches anything else.
	watchdog := time.AfterFunc(2*estimate+3*time.Minute, func() {
		fmt.Fprintln(os.Stderr, "bench: overall time limit reached, stopping")
		p.stopAll()
		os.Exit(2)
	})
	defer watchdog.Stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "bench: %v, stopping\n", s)
		p.stopAll()
		os.Exit(130)
	}()

	dir, err := os.MkdirTemp("", "aigw-bench-")
	if err != nil {
		return err
	}
	keepDir := o.keep
	defer func() {
		if keepDir {
			fmt.Fprintf(os.Stderr, "bench: kept %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	up, err := p.startRole(o.loadCPU, "upstream")
	if err != nil {
		return err
	}
	floor, err := p.startRole(o.proxyCPU, "floor", "-upstream", up.addr)
	if err != nil {
		return err
	}
	targets := []*target{
		{id: "a", name: "direct", proc: up},
		{id: "b", name: "floor", proc: floor, proxy: true},
	}
	gw := &gatewayInfo{bin: o.gateway}
	switch {
	case o.gateway == "":
		gw.skipped = "no -gateway given"
	default:
		if st, err := os.Stat(o.gateway); err != nil || st.IsDir() {
			gw.skipped = fmt.Sprintf("gateway binary %s not found (build it with make build)", o.gateway)
		}
	}
	if gw.skipped == "" {
		c, err := startGateway(p, o, dir, up.addr, gw)
		if err != nil {
			gw.skipped = err.Error()
			keepDir = true
		} else {
			targets = append(targets, &target{id: "c", name: "aigw", proc: c, proxy: true, settle: gw.waitLedger})
		}
	}
	if gw.skipped != "" {
		warn("(c) aigw skipped: %s", gw.skipped)
	}
	// One request of each kind through every target before measuring.
	for i := 0; i < len(targets); i++ {
		t := targets[i]
		if err := smokeCheck(t.proc.addr, o.key); err != nil {
			if t.id != "c" {
				return fmt.Errorf("(%s) %s fails its smoke check: %w", t.id, t.name, err)
			}
			gw.skipped = "smoke check failed: " + err.Error()
			warn("(c) aigw skipped: %s (gateway log: %s)", gw.skipped, gw.logPath)
			keepDir = true
			targets = targets[:i]
			break
		}
	}

	fmt.Fprintf(os.Stderr, "bench: %d load runs of %s (+%s warmup), about %s; proxy on core %d, upstream and load on core %d\n",
		runs/3*len(targets), o.duration, o.warmup, (time.Duration(len(targets)*o.repeat*len(scenarios)) * perRun).Round(time.Second),
		o.proxyCPU, o.loadCPU)

	res := newResults(targets)
	for rep := 1; rep <= o.repeat; rep++ {
		for _, sc := range scenarios {
			for _, t := range targets {
				if t.id == "c" && gw.crashed != "" {
					continue
				}
				r, err := loadRun(p, o, sc, t)
				if err != nil {
					if t.id == "c" && t.proc.exited() {
						gw.crashed = fmt.Sprintf("exited during %s run %d: %v", sc, rep, t.proc.err)
						warn("(c) aigw %s (gateway log: %s)", gw.crashed, gw.logPath)
						keepDir = true
						continue
					}
					return fmt.Errorf("(%s) %s %s: %w", t.id, t.name, sc, err)
				}
				res.add(sc, t.id, r)
				fmt.Fprintf(os.Stderr, "  run %d/%d %-13s (%s) %-6s %s\n", rep, o.repeat, sc, t.id, t.name, r.summary())
				if r.failed() {
					for _, s := range r.ErrSamples {
						fmt.Fprintf(os.Stderr, "      error: %s\n", s)
					}
				}
			}
		}
	}

	// Peak RSS of the proxies and the gateway's counters, then stop everything.
	for _, t := range targets {
		if t.proxy && !t.proc.exited() {
			if kb, err := procStatus(t.proc.cmd.Process.Pid, "VmHWM"); err == nil {
				res.rssKB[t.id] = kb
			}
			if t.id == "c" {
				gw.scrapeMetrics()
			}
		}
	}
	p.stopAll()
	if gw.logPath != "" {
		gw.scanLog()
		if gw.errLines > 0 {
			keepDir = true
		}
	}

	rep := buildReport(o, m, res, gw, ts != "", warnings)
	fmt.Print(rep.text())
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", o.out)
	}
	return nil
}

func parseScenarios(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, m := range allModes {
			ok = ok || m == f
		}
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", f, strings.Join(allModes, ", "))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario")
	}
	return out, nil
}

// run is one load run plus what the harness saw of the proxy meanwhile.
type run struct {
	loadResult
	Elapsed  time.Duration // wall time of the load child
	ProxyCPU time.Duration // CPU time the proxy under test used meanwhile, and while it settled
	// Settle is how long the target took after the load to finish work it
	// had deferred (aigw: storing the ledger's backlog).
	Settle time.Duration
}

func (r run) summary() string {
	var s string
	switch r.Mode {
	case modeClosed:
		s = fmt.Sprintf("%9.0f req/s", r.RPS)
	case modeStreamClosed:
		s = fmt.Sprintf("%9.0f streams/s  ttfb p50 %s", r.RPS, us(r.TTFB.P50))
	case modeRate:
		s = fmt.Sprintf("p50 %s p99 %s (send lag p99 %s)", us(r.Lat.P50), us(r.Lat.P99), us(r.SendLag.P99))
	case modeStream:
		s = fmt.Sprintf("ttfb p50 %s p99 %s, total p50 %s p99 %s", us(r.TTFB.P50), us(r.TTFB.P99), us(r.Total.P50), us(r.Total.P99))
	}
	if r.ProxyCPU > 0 && r.TotalDone > 0 {
		s += fmt.Sprintf("  proxy cpu %3.0f%% %5.1f µs/req", cpuBusy(r),
			float64(r.ProxyCPU.Microseconds())/float64(r.TotalDone))
	}
	if r.Settle > 0 {
		s += fmt.Sprintf("  settled in %s", r.Settle.Round(time.Millisecond))
	}
	if r.Errors > 0 || r.Unsent > 0 {
		s += fmt.Sprintf("  ERRORS %d unsent %d", r.Errors, r.Unsent)
	}
	return s
}

func us(v float64) string { return fmt.Sprintf("%6.0fµs", v) }

// loadRun runs the load generator as a child pinned to the load core.
func loadRun(p *procs, o options, mode string, t *target) (run, error) {
	limit := o.warmup + o.duration + drainGrace + 2*clientTimeout + 20*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := p.command(ctx, o.loadCPU, p.self, "-role", "load", "-target", t.proc.addr, "-mode", mode,
		"-duration", o.duration.String(), "-warmup", o.warmup.String(),
		"-conns", strconv.Itoa(o.conns), "-rate", strconv.FormatFloat(o.rate, 'f', -1, 64),
		"-stream-conns", strconv.Itoa(o.streamConns), "-stream-rate", strconv.FormatFloat(o.streamRate, 'f', -1, 64),
		"-key", o.key)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	pid := t.proc.cmd.Process.Pid
	cpu0, _ := cpuTime(pid)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return run{}, fmt.Errorf("load generator: %w", err)
	}
	r := run{Elapsed: time.Since(start)}
	if t.settle != nil {
		d, err := t.settle()
		if err != nil {
			return run{}, fmt.Errorf("%s after the load: %w", t.name, err)
		}
		r.Settle = d
	}
	if t.proxy {
		if cpu1, err := cpuTime(pid); err == nil {
			r.ProxyCPU = cpu1 - cpu0
		}
	}
	if err := json.Unmarshal([]byte(stdout.String()), &r.loadResult); err != nil {
		return run{}, fmt.Errorf("load generator output: %w", err)
	}
	if t.proc.exited() {
		return r, fmt.Errorf("%s exited: %v", t.name, t.proc.err)
	}
	return r, nil
}

// smokeCheck sends one non-stream request and one stream through addr.
func smokeCheck(addr, key string) error {
	for _, mode := range []string{modeClosed, modeStream} {
		c := newClient(loadSpec{Target: addr, Mode: mode, Conns: 1, Key: key})
		if _, err := c.do(c.newConn()); err != nil {
			return fmt.Errorf("%s request: %w", map[string]string{modeClosed: "non-stream", modeStream: "stream"}[mode], err)
		}
	}
	return nil
}
