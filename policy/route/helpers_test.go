package route

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

// fakeClock is a manual clock: time moves only when a test advances it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seeded returns a deterministic, concurrency-safe Rand.
func seeded(seed uint64) func(uint64) uint64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(n uint64) uint64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Uint64N(n)
	}
}

// recMetrics records what the Registry reports.
type recMetrics struct {
	mu        sync.Mutex
	up        map[string]bool
	state     map[string]State
	states    []string // "id:state" transitions in order
	failovers map[[3]string]int
}

func newRecMetrics() *recMetrics {
	return &recMetrics{up: map[string]bool{}, state: map[string]State{}, failovers: map[[3]string]int{}}
}

func (m *recMetrics) UpstreamUp(id string, up bool) {
	m.mu.Lock()
	m.up[id] = up
	m.mu.Unlock()
}

func (m *recMetrics) BreakerState(id string, s State) {
	m.mu.Lock()
	m.state[id] = s
	m.states = append(m.states, id+":"+s.String())
	m.mu.Unlock()
}

func (m *recMetrics) Failover(from, to, reason string) {
	m.mu.Lock()
	m.failovers[[3]string{from, to, reason}]++
	m.mu.Unlock()
}

func (m *recMetrics) isUp(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up[id]
}

func (m *recMetrics) stateOf(id string) State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state[id]
}

// env is a registry on a fake clock with recorded metrics.
type env struct {
	t   *testing.T
	clk *fakeClock
	met *recMetrics
	reg *Registry
}

func newEnv(t *testing.T, bp BreakerPolicy) *env {
	t.Helper()
	e := &env{t: t, clk: newClock(), met: newRecMetrics()}
	e.reg = NewRegistry(Options{Now: e.clk.Now, Rand: seeded(1), Metrics: e.met, Breaker: bp, Events: 16})
	return e
}

func (e *env) table(c TableConfig) *Table {
	e.t.Helper()
	if c.Model == "" {
		c.Model = "m"
	}
	tb, err := e.reg.NewTable(c)
	if err != nil {
		e.t.Fatalf("NewTable: %v", err)
	}
	return tb
}

// state returns a target's breaker state as the Registry reports it.
func (e *env) state(id string) State {
	e.t.Helper()
	st, ok := e.reg.Status(id)
	if !ok {
		e.t.Fatalf("unknown target %q", id)
	}
	return st.State
}

// fail makes n failing attempts straight on target id.
func (e *env) failN(id string, n int) {
	for range n {
		e.reg.Observe(id, upstreamErr(502), 0)
	}
}

// plan is Plan with test failure on error.
func plan(t *testing.T, tb *Table, x *policy.Exchange) []int {
	t.Helper()
	p, err := tb.Plan(nil, x)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

// ids maps plan indices to target ids.
func ids(tb *Table, p []int) []string {
	out := make([]string, len(p))
	for k, i := range p {
		out[k] = tb.Target(i).ID
	}
	return out
}

func upstreamErr(status int) *llm.Error {
	switch status {
	case 429:
		return &llm.Error{Kind: llm.KindRateLimit, Status: 429, Retryable: true, Msg: "slow down"}
	case 503:
		return &llm.Error{Kind: llm.KindUnavailable, Status: 503, Retryable: true, Msg: "unavailable"}
	case 504:
		return &llm.Error{Kind: llm.KindTimeout, Status: 504, Retryable: true, Msg: "timed out"}
	case 529:
		return &llm.Error{Kind: llm.KindOverloaded, Status: 529, Retryable: true, Msg: "overloaded"}
	case 400:
		return &llm.Error{Kind: llm.KindInvalidRequest, Status: 400, Msg: "bad request"}
	}
	return &llm.Error{Kind: llm.KindUpstream, Status: status, Retryable: true, Msg: "upstream failed"}
}

func three() []Target {
	return []Target{
		{ID: "a", Provider: "pa", Weight: 1, Caps: CapAll},
		{ID: "b", Provider: "pb", Weight: 1, Caps: CapAll},
		{ID: "c", Provider: "pc", Weight: 1, Caps: CapAll},
	}
}
