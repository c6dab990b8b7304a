package budget_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/London without the system's zone files

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/policy/budget"
)

// usd is whole dollars in micro-USD.
func usd(d int64) accounting.MicroUSD { return accounting.MicroUSD(d * 1_000_000) }

// t0 is Monday 3 March 2025, 10:00 UTC.
var t0 = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)

// clock is a fake clock: it stands still until moved.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

type alertKey struct {
	period    budget.Period
	threshold int
}

type refusalKey struct {
	period budget.Period
	action budget.Action
}

// metrics records what a Keeper, a backend or webhooks report.
type metrics struct {
	mu        sync.Mutex
	alerts    map[alertKey]int
	refused   map[refusalKey]int
	delivered map[bool]int
	shared    []bool
}

func newMetrics() *metrics {
	return &metrics{alerts: map[alertKey]int{}, refused: map[refusalKey]int{}, delivered: map[bool]int{}}
}

func (m *metrics) Alert(p budget.Period, t int) {
	m.mu.Lock()
	m.alerts[alertKey{p, t}]++
	m.mu.Unlock()
}

func (m *metrics) Refused(p budget.Period, a budget.Action) {
	m.mu.Lock()
	m.refused[refusalKey{p, a}]++
	m.mu.Unlock()
}

func (m *metrics) Delivered(ok bool) {
	m.mu.Lock()
	m.delivered[ok]++
	m.mu.Unlock()
}

func (m *metrics) SharedBackend(up bool) {
	m.mu.Lock()
	m.shared = append(m.shared, up)
	m.mu.Unlock()
}

func (m *metrics) alertCount(p budget.Period, t int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.alerts[alertKey{p, t}]
}

func (m *metrics) refusals(p budget.Period, a budget.Action) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused[refusalKey{p, a}]
}

func (m *metrics) deliveries(ok bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.delivered[ok]
}

func (m *metrics) sharedChanges() []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]bool(nil), m.shared...)
}

// notifier records alerts.
type notifier struct {
	mu     sync.Mutex
	alerts []budget.Alert
}

func (n *notifier) Notify(a budget.Alert) {
	n.mu.Lock()
	n.alerts = append(n.alerts, a)
	n.mu.Unlock()
}

func (n *notifier) all() []budget.Alert {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]budget.Alert(nil), n.alerts...)
}

// source is a fake SpendSource: spend per (org, since), calls counted.
type source struct {
	mu    sync.Mutex
	spent map[string]accounting.MicroUSD // key: org + "@" + since (RFC 3339)
	err   error
	calls map[string]int
	delay chan struct{} // if non-nil, each call waits for it to be closed
}

func newSource() *source {
	return &source{spent: map[string]accounting.MicroUSD{}, calls: map[string]int{}}
}

func sourceKey(org string, since time.Time) string { return org + "@" + since.Format(time.RFC3339) }

func (s *source) set(org string, since time.Time, v accounting.MicroUSD) {
	s.mu.Lock()
	s.spent[sourceKey(org, since)] = v
	s.mu.Unlock()
}

func (s *source) SpentSince(ctx context.Context, org string, since time.Time) (accounting.MicroUSD, error) {
	if s.delay != nil {
		select {
		case <-s.delay:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sourceKey(org, since)
	s.calls[k]++
	return s.spent[k], s.err
}

func (s *source) callsFor(org string, since time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[sourceKey(org, since)]
}

func (s *source) totalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one shared budget state that several Keepers (replicas) use:
// one Memory, or one Redis namespace with a client and backend per
// replica.
type env struct {
	name    string
	backend func(t testing.TB) budget.Backend
}

// envs returns the backends every behavioural test runs against.
func envs() []env {
	return []env{
		{name: "memory", backend: func() func(testing.TB) budget.Backend {
			var once sync.Once
			var m *budget.Memory
			return func(testing.TB) budget.Backend {
				once.Do(func() { m = budget.NewMemory() })
				return m
			}
		}()},
		{name: "redis", backend: func() func(testing.TB) budget.Backend {
			var once sync.Once
			var ns string
			return func(t testing.TB) budget.Backend {
				once.Do(func() { ns = budget.UniqueNamespace(t) })
				return budget.NewRedis(budget.RedisClient(t), budget.RedisConfig{Namespace: ns, Timeout: 10 * time.Second})
			}
		}()},
	}
}

// forEachEnv runs f as a subtest per backend, each with fresh state.
func forEachEnv(t *testing.T, f func(t *testing.T, e env)) {
	for _, e := range envs() {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

// replica is one Keeper on an env's state.
type replica struct {
	k       *budget.Keeper
	metrics *metrics
	alerts  *notifier
	logs    *syncBuffer
}

func newReplica(t testing.TB, e env, c *clock, opts budget.Options) *replica {
	t.Helper()
	r := &replica{metrics: newMetrics(), alerts: &notifier{}, logs: &syncBuffer{}}
	opts.Clock = c.Now
	opts.Metrics, opts.Notifier = r.metrics, r.alerts
	opts.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	r.k = budget.New(e.backend(t), opts)
	return r
}

func (r *replica) gate(t testing.TB, orgs ...budget.OrgPolicy) *budget.Gate {
	t.Helper()
	g, err := r.k.NewGate(orgs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// status returns the org's period p at now.
func status(t testing.TB, g *budget.Gate, org string, now time.Time, p budget.Period) budget.PeriodStatus {
	t.Helper()
	st, err := g.Status(context.Background(), org, now)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, s := range st {
		if s.Period == p {
			return s
		}
	}
	t.Fatalf("Status: no %s period in %+v", p, st)
	return budget.PeriodStatus{}
}

func mustReserve(t testing.TB, g *budget.Gate, r budget.Request) *budget.Hold {
	t.Helper()
	h, err := g.Reserve(context.Background(), r)
	if err != nil {
		t.Fatalf("Reserve %+v: %v", r, err)
	}
	if h == nil {
		t.Fatalf("Reserve %+v: nil hold", r)
	}
	return h
}

func exhausted(t testing.TB, err error) *budget.Exhausted {
	t.Helper()
	var e *budget.Exhausted
	if !errors.As(err, &e) {
		t.Fatalf("want *budget.Exhausted, got %v", err)
	}
	return e
}

func reqID(i int) string { return fmt.Sprintf("req-%d", i) }
