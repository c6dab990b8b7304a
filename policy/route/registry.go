package route

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// Metrics receives routing state for export (aigw_upstream_up, the breaker
// state gauge, aigw_upstream_failovers_total{from,to,reason}). Target ids
// and reasons are bounded label values: ids come from policy, reasons are
// llm.Kind names. Methods are called synchronously, some under a target's
// lock: they must be fast, must not block and must not call back into the
// Registry.
type Metrics interface {
	// UpstreamUp reports a target's up/down verdict when it changes (and
	// once, as up, when the target is first seen).
	UpstreamUp(target string, up bool)
	// BreakerState reports a target's breaker state when it changes (and
	// once, as Closed, when the target is first seen).
	BreakerState(target string, s State)
	// Failover counts one request moving from one target to the next.
	Failover(from, to, reason string)
}

// Options configure a Registry. Zero fields take defaults.
type Options struct {
	// Now is the clock (default time.Now). Tests inject a fake one.
	Now func() time.Time
	// Rand returns a uniform integer in [0, n) for n > 0; it must be safe
	// for concurrent use. It drives StrategyWeighted and backoff jitter
	// (default math/rand/v2's Uint64N).
	Rand func(n uint64) uint64
	// Metrics receives state changes (default: discarded).
	Metrics Metrics
	// Breaker is the initial breaker policy; see SetBreakerPolicy.
	Breaker BreakerPolicy
	// EWMAAlpha is the weight of a new TTFB sample, in (0, 1] (default 0.2).
	EWMAAlpha float64
	// Events is the capacity of the failover event ring (default 128).
	Events int
}

// Registry keeps the routing state that must outlive a config generation,
// keyed by target id: breakers, TTFB EWMAs, in-flight counts, health-check
// results, and the ring of recent failover events. The proxy creates one at
// start and builds every generation's Tables from it. Safe for concurrent
// use.
type Registry struct {
	now     func() time.Time
	rand    func(n uint64) uint64
	metrics Metrics
	alpha   float64
	breaker atomic.Pointer[BreakerPolicy]
	events  *eventRing

	mu      sync.RWMutex
	targets map[string]*state
}

// NewRegistry returns an empty registry.
func NewRegistry(o Options) *Registry {
	r := &Registry{now: o.Now, rand: o.Rand, metrics: o.Metrics, alpha: o.EWMAAlpha,
		targets: map[string]*state{}}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rand == nil {
		r.rand = rand.Uint64N
	}
	if r.metrics == nil {
		r.metrics = nopMetrics{}
	}
	if r.alpha <= 0 || r.alpha > 1 {
		r.alpha = 0.2
	}
	if o.Events <= 0 {
		o.Events = 128
	}
	r.events = newEventRing(o.Events)
	r.SetBreakerPolicy(o.Breaker)
	return r
}

// SetBreakerPolicy replaces the breaker policy of every target, for
// example on a config reload. States are kept; error-rate windows restart
// when their bucket layout changes.
func (r *Registry) SetBreakerPolicy(p BreakerPolicy) {
	p = p.withDefaults()
	r.breaker.Store(&p)
}

// target returns id's state, creating it (closed, up) on first use.
func (r *Registry) target(id string) *state {
	r.mu.RLock()
	s := r.targets[id]
	r.mu.RUnlock()
	if s != nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s = r.targets[id]; s != nil {
		return s
	}
	s = &state{reg: r, id: id, up: true}
	r.targets[id] = s
	r.metrics.BreakerState(id, Closed)
	r.metrics.UpstreamUp(id, true)
	return s
}

// Observe feeds an outcome for a target outside a Failover: for example a
// failure noticed after the commit point, or a route that does not use
// Failover. err nil is a success, whose ttfb (if > 0) updates the EWMA; an
// error counts as described for the breaker (server-side kinds are
// failures; client-side ones never trip it). Like any attempt that did not
// take a probe slot, it only moves a closed breaker: half-open and open
// breakers wait for their probes. Unknown ids are created.
func (r *Registry) Observe(id string, err error, ttfb time.Duration) {
	s := r.target(id)
	o := outcomeOf(nilIfTypedNil(err))
	if o == success && ttfb > 0 {
		s.observeTTFB(ttfb)
	}
	s.record(o, ticket{})
}

// Prune forgets the targets keep rejects, for example ids no longer in any
// model after a reload. Tables of older generations still in use keep
// working on their (now orphaned) state. It returns how many were removed.
func (r *Registry) Prune(keep func(id string) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id := range r.targets {
		if !keep(id) {
			delete(r.targets, id)
			n++
		}
	}
	return n
}

// Status is one target's routing and health state, for the admin API.
type Status struct {
	ID       string
	Provider string // as the latest Table named it; "" if none did
	State    State
	// Up is the aigw_upstream_up verdict: breaker closed and the last
	// health check (if any) succeeded.
	Up bool
	// OpenUntil is when an open breaker lets probes through.
	OpenUntil           time.Time
	ConsecutiveFailures int
	// Requests and ErrorRate cover the breaker's error-rate window
	// (traffic and health checks).
	Requests  int
	ErrorRate float64
	InFlight  int64
	// TTFB is the EWMA of time to first byte, 0 when never measured.
	TTFB time.Duration
	// LastCheck, CheckLatency and CheckError describe the latest health
	// check; LastCheck is zero when none ran.
	LastCheck    time.Time
	CheckLatency time.Duration
	CheckError   string
}

// Snapshot returns every known target's Status, sorted by id.
func (r *Registry) Snapshot() []Status {
	r.mu.RLock()
	states := make([]*state, 0, len(r.targets))
	for _, s := range r.targets {
		states = append(states, s)
	}
	r.mu.RUnlock()
	now := r.now()
	out := make([]Status, 0, len(states))
	for _, s := range states {
		out = append(out, s.status(now))
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Status returns one target's state; ok is false for an unknown id.
func (r *Registry) Status(id string) (st Status, ok bool) {
	r.mu.RLock()
	s := r.targets[id]
	r.mu.RUnlock()
	if s == nil {
		return Status{}, false
	}
	return s.status(r.now()), true
}

func (s *state) status(now time.Time) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policyLocked() // sizes the window on first use
	st := Status{
		ID:                  s.id,
		State:               State(s.st.Load()),
		Up:                  s.up,
		ConsecutiveFailures: s.consec,
		InFlight:            s.inFlight.Load(),
		TTFB:                time.Duration(s.ewma.Load()),
		LastCheck:           s.lastCheck,
		CheckLatency:        s.checkLatency,
		CheckError:          s.checkErr,
	}
	if pr := s.provider.Load(); pr != nil {
		st.Provider = *pr
	}
	if st.State == Open {
		st.OpenUntil = time.Unix(0, s.openUntil.Load())
	}
	ok, fails := s.win.counts(now)
	st.Requests = ok + fails
	if st.Requests > 0 {
		st.ErrorRate = float64(fails) / float64(st.Requests)
	}
	return st
}

// Events appends the recent failover events to dst, newest first.
func (r *Registry) Events(dst []Event) []Event {
	return r.events.snapshot(dst)
}

// failover records one request moving from one target to another.
func (r *Registry) failover(from, to *state, e *llm.Error) {
	reason := e.Kind.String()
	r.events.add(r.now(), from.id, to.id, reason, e.Status)
	from.unrecovered.Store(true)
	r.metrics.Failover(from.id, to.id, reason)
}

// nopMetrics discards everything.
type nopMetrics struct{}

func (nopMetrics) UpstreamUp(string, bool)         {}
func (nopMetrics) BreakerState(string, State)      {}
func (nopMetrics) Failover(string, string, string) {}
