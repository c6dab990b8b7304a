package quota_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/policy/quota/quotatest"
	"github.com/aigw/aigw/providers/llm"
)

// t0 is a Monday, 10:00 UTC.
var t0 = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)

type metrics struct {
	mu      sync.Mutex
	refused map[quota.Reason]int
	shadow  map[quota.Reason]int
	depth   map[string]int
	shared  []bool
}

func newMetrics() *metrics {
	return &metrics{refused: map[quota.Reason]int{}, shadow: map[quota.Reason]int{}, depth: map[string]int{}}
}

func (m *metrics) Refused(r quota.Reason, shadow bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if shadow {
		m.shadow[r]++
	} else {
		m.refused[r]++
	}
}

func (m *metrics) QueueDepth(org string, n int) {
	m.mu.Lock()
	m.depth[org] = n
	m.mu.Unlock()
}

func (m *metrics) SharedBackend(up bool) {
	m.mu.Lock()
	m.shared = append(m.shared, up)
	m.mu.Unlock()
}

func (m *metrics) refusals(r quota.Reason) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused[r]
}

func (m *metrics) shadows(r quota.Reason) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shadow[r]
}

func (m *metrics) sharedStates() []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]bool(nil), m.shared...)
}

// env is a limiter on the in-process backend with a fake clock.
type env struct {
	clock   *quotatest.Clock
	metrics *metrics
	lim     *quota.Limiter
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{clock: quotatest.NewClock(t0), metrics: newMetrics()}
	e.lim = quota.New(quota.NewMemory(), quota.Options{Clock: e.clock, Metrics: e.metrics})
	return e
}

func (e *env) gate(t *testing.T, orgs ...quota.OrgPolicy) *quota.Gate {
	t.Helper()
	g, err := e.lim.NewGate(quota.Policies{Orgs: orgs})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// result is one Take's outcome.
type result struct {
	h   *quota.Hold
	d   *quota.Decision
	err error
}

func take(g *quota.Gate, s quota.Subject, n quota.Need) result {
	h, err := g.Take(context.Background(), s, n)
	if err != nil {
		d, _ := quota.DecisionOf(err)
		return result{d: d, err: err}
	}
	return result{h: h, d: h.Decision()}
}

func sub(org string) quota.Subject { return quota.Subject{Org: org, KeyID: "k1"} }

func req(tokens int64) quota.Need { return quota.Need{Requests: 1, Tokens: tokens} }

// mustAllow fails unless r was admitted.
func (r result) mustAllow(t *testing.T, what string) *quota.Hold {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: refused: %v", what, r.err)
	}
	return r.h
}

// mustRefuse fails unless r was refused by reason, and returns its error.
func (r result) mustRefuse(t *testing.T, what string, reason quota.Reason) *llm.Error {
	t.Helper()
	if r.err == nil {
		t.Fatalf("%s: admitted, want refused by %s", what, reason)
	}
	var e *llm.Error
	if !errors.As(r.err, &e) {
		t.Fatalf("%s: error %T is not an *llm.Error", what, r.err)
	}
	if r.d == nil || r.d.Reason != reason {
		t.Fatalf("%s: refused with %v (decision %+v), want %s", what, r.err, r.d, reason)
	}
	return e
}

func headers(d *quota.Decision) map[string]string {
	h := map[string]string{}
	d.Headers(func(k, v string) { h[k] = v })
	return h
}
