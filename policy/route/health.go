package route

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Probe is one active health check: a cheap call (the proxy lists the
// provider's models) whose result vouches for the targets it names.
type Probe struct {
	// Name identifies the probe, typically the provider id.
	Name string
	// Targets are the ids of the targets the probe's result applies to.
	Targets []string
	// Interval between checks (default 30 s).
	Interval time.Duration
	// Timeout bounds one check through its context (default 5 s).
	Timeout time.Duration
	// Check performs the call. nil means healthy; any error means not.
	// It must honour ctx.
	Check func(ctx context.Context) error
}

// ProbeStatus is a probe's latest result, for the admin API.
type ProbeStatus struct {
	Name      string
	LastCheck time.Time // zero when it has not run yet
	Latency   time.Duration
	Up        bool
	Error     string
}

// HealthChecker runs probes and feeds their results to the Registry's
// breakers (see state.checked for the rules). It is built per config
// generation; the state it feeds outlives it. Safe for concurrent use.
type HealthChecker struct {
	reg    *Registry
	mu     sync.Mutex // guards the probeRun fields below Probe
	probes []*probeRun
}

type probeRun struct {
	Probe
	states  []*state
	next    time.Time // when the probe is due
	running bool
	last    ProbeStatus
}

// NewHealthChecker prepares the probes; none runs until CheckDue or Run.
// Every probe needs a Name and a Check.
func (r *Registry) NewHealthChecker(probes []Probe) (*HealthChecker, error) {
	h := &HealthChecker{reg: r}
	for i, p := range probes {
		if p.Name == "" || p.Check == nil {
			return nil, fmt.Errorf("route: health probe %d needs a name and a check", i)
		}
		if p.Interval <= 0 {
			p.Interval = 30 * time.Second
		}
		if p.Timeout <= 0 {
			p.Timeout = 5 * time.Second
		}
		p.Targets = append([]string(nil), p.Targets...)
		pr := &probeRun{Probe: p, last: ProbeStatus{Name: p.Name}}
		for _, id := range p.Targets {
			pr.states = append(pr.states, r.target(id))
		}
		h.probes = append(h.probes, pr)
	}
	return h, nil
}

// Run checks every probe at once, then on every tick runs the probes that
// are due, until ctx is done. The caller owns the ticker: a
// time.Ticker's channel in production (a period of a second or so; each
// probe keeps its own Interval), a channel it feeds by hand in tests. Run
// returns after the checks it started have finished.
func (h *HealthChecker) Run(ctx context.Context, ticks <-chan time.Time) {
	h.CheckDue(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			h.CheckDue(ctx)
		}
	}
}

// CheckDue runs, concurrently, every probe whose interval has elapsed and
// that is not already running, waits for them and returns how many ran. A
// check that ends because ctx was cancelled records nothing.
func (h *HealthChecker) CheckDue(ctx context.Context) int {
	now := h.reg.now()
	var due []*probeRun
	h.mu.Lock()
	for _, p := range h.probes {
		if !p.running && !now.Before(p.next) {
			p.running = true
			p.next = now.Add(p.Interval)
			due = append(due, p)
		}
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range due {
		wg.Go(func() { h.check(ctx, p) })
	}
	wg.Wait()
	return len(due)
}

func (h *HealthChecker) check(ctx context.Context, p *probeRun) {
	start := h.reg.now()
	cctx, cancel := context.WithTimeout(ctx, p.Timeout)
	err := p.Check(cctx)
	cancel()
	end := h.reg.now()
	h.mu.Lock()
	p.running = false
	if ctx.Err() != nil {
		h.mu.Unlock()
		return // shutting down: no verdict
	}
	p.last = ProbeStatus{Name: p.Name, LastCheck: end, Latency: end.Sub(start), Up: err == nil}
	if err != nil {
		p.last.Error = err.Error()
	}
	h.mu.Unlock()
	for _, s := range p.states {
		s.checked(end, end.Sub(start), err)
	}
}

// Status returns every probe's latest result, in the order given.
func (h *HealthChecker) Status() []ProbeStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]ProbeStatus, len(h.probes))
	for i, p := range h.probes {
		out[i] = p.last
	}
	return out
}
