package quota_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/policy/quota/quotatest"
	"github.com/aigw/aigw/providers/llm"
)

// instance is one gateway replica's limiter on the shared Redis.
type instance struct {
	client  *redis.Client
	backend *quota.Redis
	lim     *quota.Limiter
	metrics *metrics
	logs    *syncBuffer
}

func newInstance(t testing.TB, addr, ns string, clock quota.Clock, cfg quota.RedisConfig) *instance {
	t.Helper()
	in := &instance{client: quota.RedisClientAt(t, addr), metrics: newMetrics(), logs: &syncBuffer{}}
	cfg.Clock, cfg.Metrics = clock, in.metrics
	cfg.Logger = slog.New(slog.NewTextHandler(in.logs, nil))
	in.backend = quota.NewRedis(in.client, cfg)
	in.lim = quota.New(in.backend, quota.Options{Clock: clock, Metrics: in.metrics, Namespace: ns})
	return in
}

func (in *instance) gate(t testing.TB, orgs ...quota.OrgPolicy) *quota.Gate {
	t.Helper()
	g, err := in.lim.NewGate(quota.Policies{Orgs: orgs})
	if err != nil {
		t.Fatal(err)
	}
	return g
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

// TestRedisTwoInstancesExactUnderLoad: two limiters with their own
// connections share one Redis; 16 goroutines hammer one org with the clock
// frozen, so the capacity is exactly the burst. Every decision is one
// atomic script, so the bound is exact: admitted == burst, no more (no
// over-admission at all, not even one request per instance) and no less
// (no refusal while under the limit).
func TestRedisTwoInstancesExactUnderLoad(t *testing.T) {
	ns := quota.UniqueNamespace(t)
	clock := quotatest.NewClock(time.Now())
	p := org("a", quota.Limits{RPM: quota.Limit{Max: 600, Burst: 400}, RPD: quota.Limit{Max: 100_000}})
	p.FailMode = quota.FailClosed // a Redis error must show as an error here, not as a local decision
	const burst = 400
	var admitted, refused, errs atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		in := newInstance(t, quota.RedisAddr, ns, clock, quota.RedisConfig{})
		g := in.gate(t, p)
		for j := 0; j < 8; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				misses := 0
				for misses < 25 {
					_, err := g.Take(context.Background(), quota.Subject{Org: "a", KeyID: "k"}, req(0))
					var le *llm.Error
					switch {
					case err == nil:
						admitted.Add(1)
					case errors.As(err, &le) && le.Kind == llm.KindRateLimit:
						refused.Add(1)
						misses++
					default:
						errs.Add(1)
						misses++
					}
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("admitted %d of a burst of %d, %d refusals past it, %d backend errors", admitted.Load(), burst, refused.Load(), errs.Load())
	if admitted.Load() > burst {
		t.Fatalf("over-admitted: %d > %d", admitted.Load(), burst)
	}
	if fp := burst - admitted.Load(); fp > 0 {
		t.Fatalf("%d refusals while under the limit", fp)
	}
}

// TestRedisTwoInstancesRealClock: the same with the wall clock moving,
// for one second: GCRA's bound, burst + ⌈elapsed·rate⌉, holds exactly, and
// a saturating load gets what the bound allows but for a few requests whose
// clock reading and script run were reordered between goroutines.
func TestRedisTwoInstancesRealClock(t *testing.T) {
	ns := quota.UniqueNamespace(t)
	const rate, burst = 100, 50 // per second
	p := org("a", quota.Limits{RPM: quota.Limit{Max: rate * 60, Burst: burst}})
	p.FailMode = quota.FailClosed
	var admitted, attempts, errs atomic.Int64
	start := time.Now()
	stop := start.Add(time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		in := newInstance(t, quota.RedisAddr, ns, quota.SystemClock{}, quota.RedisConfig{})
		g := in.gate(t, p)
		for j := 0; j < 8; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					attempts.Add(1)
					_, err := g.Take(context.Background(), sub("a"), req(0))
					var le *llm.Error
					switch {
					case err == nil:
						admitted.Add(1)
					case errors.As(err, &le) && le.Kind == llm.KindRateLimit:
					default:
						errs.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	bound := burst + int64(math.Ceil(elapsed.Seconds()*rate))
	short := bound - admitted.Load()
	t.Logf("%d attempts in %v, %d admitted, bound %d (short by %d: %.3f%% of attempts), %d backend errors",
		attempts.Load(), elapsed, admitted.Load(), bound, short, 100*float64(short)/float64(attempts.Load()), errs.Load())
	if admitted.Load() > bound {
		t.Fatalf("over-admitted: %d > %d", admitted.Load(), bound)
	}
	if float64(short) > 0.001*float64(attempts.Load())+2 {
		t.Fatalf("refused %d requests under the limit", short)
	}
}

// TestRedisTwoInstancesTokens: reservations corrected by commits and
// releases from two instances stay exact: the shared daily counter equals
// the sum of what was committed, and never exceeds the limit when usage
// stays within the estimates.
func TestRedisTwoInstancesTokens(t *testing.T) {
	ns := quota.UniqueNamespace(t)
	clock := quotatest.NewClock(time.Now())
	const limit, estimate = 200_000, 1000
	p := org("a", quota.Limits{TPD: quota.Limit{Max: limit}})
	p.FailMode = quota.FailClosed
	var committed, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	var gates []*quota.Gate
	for i := 0; i < 2; i++ {
		in := newInstance(t, quota.RedisAddr, ns, clock, quota.RedisConfig{})
		g := in.gate(t, p)
		gates = append(gates, g)
		for j := 0; j < 8; j++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, 1))
				ctx := context.Background()
				for misses := 0; misses < 25; {
					h, err := g.Take(ctx, sub("a"), req(estimate))
					if err != nil {
						var le *llm.Error
						if !errors.As(err, &le) || le.Kind != llm.KindQuotaExceeded {
							t.Errorf("unexpected error: %v", err)
							return
						}
						refused.Add(1)
						misses++
						continue
					}
					admitted.Add(1)
					if rng.IntN(5) == 0 { // failed upstream: everything back
						if err := h.Release(ctx); err != nil {
							t.Error(err)
						}
						continue
					}
					used := rng.Int64N(estimate + 1)
					if err := h.CommitTokens(ctx, used); err != nil {
						t.Error(err)
					}
					committed.Add(used)
				}
			}(uint64(i*8 + j))
		}
	}
	wg.Wait()
	d := take(gates[0], sub("a"), req(0)).mustAllow(t, "final").Decision()
	used := limit - d.Tokens.Remaining
	t.Logf("%d admitted, %d refused; counter %d = committed %d; limit %d", admitted.Load(), refused.Load(), used, committed.Load(), limit)
	if used != committed.Load() {
		t.Fatalf("shared counter %d, committed %d", used, committed.Load())
	}
	if used > limit || used <= limit-estimate {
		t.Fatalf("final use %d: want within (%d, %d]: refusals only when less than one estimate was left", used, limit-estimate, limit)
	}
}

// TestRedisFalsePositiveRate: under the limit, with the real clock and
// default timeouts, two instances must refuse (almost) nothing.
func TestRedisFalsePositiveRate(t *testing.T) {
	ns := quota.UniqueNamespace(t)
	p := org("a", quota.Limits{RPM: quota.Limit{Max: 10_000_000}, TPM: quota.Limit{Max: 1_000_000_000}, RPD: quota.Limit{Max: 100_000_000}})
	const perWorker = 400
	var ok, refused, fallback atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		in := newInstance(t, quota.RedisAddr, ns, quota.SystemClock{}, quota.RedisConfig{Replicas: 2})
		g := in.gate(t, p)
		for j := 0; j < 8; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < perWorker; k++ {
					h, err := g.Take(context.Background(), sub("a"), req(500))
					if err != nil {
						refused.Add(1)
						continue
					}
					ok.Add(1)
					if h.Decision().Fallback {
						fallback.Add(1)
					}
					_ = h.CommitTokens(context.Background(), 300)
				}
			}()
		}
	}
	wg.Wait()
	total := ok.Load() + refused.Load()
	rate := float64(refused.Load()) / float64(total)
	t.Logf("%d decisions, %d refused under the limit (%.4f%%), %d taken on the local fallback", total, refused.Load(), 100*rate, fallback.Load())
	if rate >= 0.001 {
		t.Fatalf("false-positive rate %.4f%% >= 0.1%%", 100*rate)
	}
}

// proxy is a TCP relay to Redis that a test can take down, bring back on
// the same port, or make hang (accept and read, never answer).
type proxy struct {
	t      *testing.T
	target string
	addr   string
	hang   atomic.Bool

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.track(c)
			if p.hang.Load() {
				go func() { _, _ = io.Copy(io.Discard, c) }()
				continue
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.track(u)
			go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
			go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
		}
	}()
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// down closes the listener and every connection: the port refuses.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// up listens again on the same port.
func (p *proxy) up() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("relisten %s: %v", p.addr, err)
}

// TestRedisOutageAndRecovery: Redis goes away mid-test. Each org is then
// served per its fail mode (local share, open, closed), the outage is
// logged and reported once, and the limiter goes back to Redis, with its
// state intact, once it answers again. A hung Redis costs a request at most
// the call timeout, and only until the breaker opens.
func TestRedisOutageAndRecovery(t *testing.T) {
	quota.RedisClient(t) // skip or fail early without Redis
	px := newProxy(t, quota.RedisAddr)
	clock := quotatest.NewClock(time.Now())
	ns := quota.UniqueNamespace(t)
	in := newInstance(t, px.addr, ns, clock, quota.RedisConfig{Replicas: 2, Cooldown: time.Second})
	local := org("local", quota.Limits{RPM: quota.Limit{Max: 10}})
	open := org("open", quota.Limits{RPM: quota.Limit{Max: 1}})
	open.FailMode = quota.FailOpen
	closed := org("closed", quota.Limits{RPM: quota.Limit{Max: 10}})
	closed.FailMode = quota.FailClosed
	g := in.gate(t, local, open, closed, org("hung", quota.Limits{RPM: quota.Limit{Max: 1000}}))

	for i := 0; i < 2; i++ {
		if d := take(g, sub("local"), req(0)).mustAllow(t, "up").Decision(); d.Fallback {
			t.Fatal("decided locally while Redis is up")
		}
	}
	take(g, sub("open"), req(0)).mustAllow(t, "open up")

	px.down()
	// Local share: ceil(10/2) = 5 per replica, whatever Redis held.
	for i := 0; i < 5; i++ {
		d := take(g, sub("local"), req(0)).mustAllow(t, "down, local").Decision()
		if !d.Fallback || d.Requests.Limit != 5 {
			t.Fatalf("down: decision %+v, want a local share of 5", d)
		}
	}
	take(g, sub("local"), req(0)).mustRefuse(t, "past the local share", quota.ReasonOrgRPM)
	for i := 0; i < 3; i++ { // open: admitted uncounted
		if d := take(g, sub("open"), req(0)).mustAllow(t, "down, open").Decision(); !d.Fallback {
			t.Fatal("not marked as fallback")
		}
	}
	le := take(g, sub("closed"), req(0)).mustRefuse(t, "down, closed", quota.ReasonUnavailable)
	if le.Kind != llm.KindUnavailable || le.Code != "quota_unavailable" || le.RetryAfter <= 0 || le.RetryAfter > time.Second {
		t.Fatalf("closed: %+v", le)
	}
	if in.backend.Up() {
		t.Fatal("breaker still closed")
	}
	if n := strings.Count(in.logs.String(), "Redis unavailable"); n != 1 {
		t.Fatalf("outage logged %d times:\n%s", n, in.logs.String())
	}
	if s := in.metrics.sharedStates(); len(s) != 1 || s[0] {
		t.Fatalf("shared backend states %v", s)
	}

	px.up()
	recovered := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		clock.Advance(time.Second) // the cooldown: the next call probes
		r := take(g, sub("local"), req(0))
		if r.err == nil && !r.d.Fallback {
			recovered = true
			// Redis kept its state through the outage: 2 before, this one now.
			if r.d.Requests.Remaining > 7 {
				t.Fatalf("after recovery %+v", r.d.Requests)
			}
			break
		}
		time.Sleep(50 * time.Millisecond) // go-redis redials in the background
	}
	if !recovered || !in.backend.Up() {
		t.Fatal("did not go back to Redis")
	}
	if !strings.Contains(in.logs.String(), "Redis answers again") {
		t.Fatal("recovery not logged")
	}
	if s := in.metrics.sharedStates(); len(s) != 2 || !s[1] {
		t.Fatalf("shared backend states %v", s)
	}

	// Hung: connections open, nothing answers.
	px.down()
	px.hang.Store(true)
	px.up()
	var slowest time.Duration
	for i := 0; i < 6; i++ {
		start := time.Now()
		take(g, sub("hung"), req(0)).mustAllow(t, "hung")
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("slowest decision with a hung Redis: %v", slowest)
	if slowest > time.Second {
		t.Fatalf("a hung Redis held a decision for %v", slowest)
	}
	if in.backend.Up() {
		t.Fatal("breaker did not open on a hung Redis")
	}
	start := time.Now()
	take(g, sub("hung"), req(0)).mustAllow(t, "open breaker")
	t.Logf("decision with the breaker open: %v", time.Since(start))
}

// TestRedisClosedPort: pointing at a port nobody listens on, the limiter
// answers from the start per the org's fail mode.
func TestRedisClosedPort(t *testing.T) {
	quota.RedisClient(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	in := newInstance(t, addr, quota.UniqueNamespace(t), quotatest.NewClock(time.Now()), quota.RedisConfig{Replicas: 3})
	g := in.gate(t, org("a", quota.Limits{RPD: quota.Limit{Max: 9}}))
	for i := 0; i < 3; i++ {
		if d := take(g, sub("a"), req(0)).mustAllow(t, "local").Decision(); !d.Fallback {
			t.Fatal("not a fallback decision")
		}
	}
	take(g, sub("a"), req(0)).mustRefuse(t, "past the share of 3", quota.ReasonOrgRPD)
}

// BenchmarkDecision measures one admission decision (Take: all of an
// org's and key's limits, 8 rules) in process and on Redis, and counts
// Redis round trips per decision.
func BenchmarkDecision(b *testing.B) {
	p := org("a", quota.Limits{RPM: quota.Limit{Max: 1 << 30}, TPM: quota.Limit{Max: 1 << 40},
		TPH: quota.Limit{Max: 1 << 40}, RPD: quota.Limit{Max: 1 << 40}, TPD: quota.Limit{Max: 1 << 40}})
	p.Keys = []quota.KeyLimits{{KeyID: "k1", Limits: quota.Limits{RPM: quota.Limit{Max: 1 << 30},
		TPM: quota.Limit{Max: 1 << 40}, RPD: quota.Limit{Max: 1 << 40}}}}
	run := func(b *testing.B, lim *quota.Limiter, settle bool) {
		g, err := lim.NewGate(quota.Policies{Orgs: []quota.OrgPolicy{p}})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h, err := g.Take(ctx, sub("a"), req(700))
			if err != nil {
				b.Fatal(err)
			}
			if settle {
				_ = h.CommitTokens(ctx, 500)
			}
		}
	}
	b.Run("memory", func(b *testing.B) {
		run(b, quota.New(quota.NewMemory(), quota.Options{}), false)
	})
	b.Run("memory+commit", func(b *testing.B) {
		run(b, quota.New(quota.NewMemory(), quota.Options{}), true)
	})
	for _, settle := range []bool{false, true} {
		name := "redis"
		if settle {
			name = "redis+commit"
		}
		b.Run(name, func(b *testing.B) {
			client := quota.RedisClient(b)
			var cmds atomic.Int64
			client.AddHook(countHook{&cmds})
			backend := quota.NewRedis(client, quota.RedisConfig{})
			lim := quota.New(backend, quota.Options{Namespace: quota.UniqueNamespace(b)})
			_ = client.Ping(context.Background()) // a pooled connection, outside the count
			cmds.Store(0)
			run(b, lim, settle)
			b.ReportMetric(float64(cmds.Load())/float64(b.N), "roundtrips/op")
			if !backend.Up() {
				b.Fatal("Redis failed during the benchmark")
			}
		})
	}
}

type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
