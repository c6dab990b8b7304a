package budget_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/policy/budget"
)

// TestLargeAmountsExact: amounts near MaxLimit stay exact to the µUSD
// (the script never lets Lua format a large number).
func TestLargeAmountsExact(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		c := newClock(t0)
		g := newReplica(t, e, c, budget.Options{}).gate(t, budget.OrgPolicy{Org: "big", Monthly: budget.MaxLimit, Thresholds: []int{100}})
		const spent accounting.MicroUSD = 899_999_999_999_997
		h := mustReserve(t, g, budget.Request{ID: "1", Org: "big", Cost: spent})
		if s := status(t, g, "big", c.Now(), budget.Monthly); s.Reserved != spent {
			t.Fatalf("reserved %d, want %d", s.Reserved, spent)
		}
		if err := h.Commit(ctx, spent); err != nil {
			t.Fatal(err)
		}
		if s := status(t, g, "big", c.Now(), budget.Monthly); s.Spent != spent || s.Reserved != 0 {
			t.Fatalf("%+v", s)
		}
		if _, err := g.Reserve(ctx, budget.Request{ID: "2", Org: "big", Cost: 4}); err == nil {
			t.Fatal("reserved 1 µUSD past the limit")
		}
		h = mustReserve(t, g, budget.Request{ID: "3", Org: "big", Cost: 3})
		if err := h.Commit(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if s := status(t, g, "big", c.Now(), budget.Monthly); s.Spent != budget.MaxLimit-1 {
			t.Fatalf("spent %d, want %d", s.Spent, budget.MaxLimit-1)
		}
	})
}

// TestRedisKeys: every key of an org carries the hash tag {ns:org}, with
// the org escaped, and expires seven days after its period ends.
func TestRedisKeys(t *testing.T) {
	client := budget.RedisClient(t)
	ns := budget.UniqueNamespace(t)
	c := newClock(time.Now())
	k := budget.New(budget.NewRedis(client, budget.RedisConfig{Namespace: ns, Timeout: 5 * time.Second}), budget.Options{Clock: c.Now})
	org := "a:b{c}"
	g, err := k.NewGate([]budget.OrgPolicy{{Org: org, Daily: usd(1), Monthly: usd(2)}})
	if err != nil {
		t.Fatal(err)
	}
	h := mustReserve(t, g, budget.Request{ID: "1", Org: org, Cost: 10})
	keys, err := client.Keys(ctx, "{"+ns+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("keys %v, want 4 (account and holds, per period)", keys)
	}
	st, _ := g.Status(ctx, org, c.Now())
	ends := map[string]time.Time{}
	for _, s := range st {
		ends[string(s.Period)[:1]] = s.End
	}
	for _, key := range keys {
		tag := "{" + ns + ":a%3Ab%7Bc%7D}:"
		if !strings.HasPrefix(key, tag) {
			t.Errorf("key %q lacks the tag %q", key, tag)
			continue
		}
		ttl, err := client.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := ends[key[len(tag):len(tag)+1]].Add(7 * 24 * time.Hour).Sub(c.Now())
		if d := ttl - want; d < -5*time.Second || d > 5*time.Second {
			t.Errorf("key %q expires in %v, want about %v", key, ttl, want)
		}
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := client.Exists(ctx, keys...).Result(); n != 2 { // the empty holds sets are gone
		t.Errorf("%d keys left after the release, want 2", n)
	}
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestRedisUnreachable: with Redis down, each org gets its FailMode, and
// the outage is reported once.
func TestRedisUnreachable(t *testing.T) {
	c := newClock(t0)
	m := newMetrics()
	client := budget.NewTestClient(t, closedAddr(t))
	logs := &syncBuffer{}
	rb := budget.NewRedis(client, budget.RedisConfig{Namespace: "x", Metrics: m, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	k := budget.New(rb, budget.Options{Clock: c.Now, Metrics: m})
	g, err := k.NewGate([]budget.OrgPolicy{
		{Org: "local", Daily: usd(1), FailMode: budget.FailLocal},
		{Org: "open", Daily: usd(1), FailMode: budget.FailOpen},
		{Org: "closed", Daily: usd(1), FailMode: budget.FailClosed},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Fail closed: an error wrapping ErrUnavailable, before and after the breaker opens.
	for i := 0; i < 4; i++ {
		_, err := g.Reserve(ctx, budget.Request{ID: reqID(i), Org: "closed", Cost: 1})
		if !errors.Is(err, budget.ErrUnavailable) {
			t.Fatalf("fail closed, call %d: %v", i, err)
		}
		var ex *budget.Exhausted
		if errors.As(err, &ex) {
			t.Fatal("an outage reported as an exhausted budget")
		}
	}
	if rb.Up() || len(m.sharedChanges()) != 1 || m.sharedChanges()[0] {
		t.Fatalf("breaker up=%v, shared changes %v", rb.Up(), m.sharedChanges())
	}
	if !strings.Contains(logs.String(), "Redis unavailable") {
		t.Fatalf("outage not logged: %s", logs.String())
	}
	if _, err := g.Status(ctx, "closed", c.Now()); !errors.Is(err, budget.ErrUnavailable) {
		t.Fatalf("status, fail closed: %v", err)
	}
	// Fail open: admitted, unreserved.
	for i := 0; i < 3; i++ {
		h, err := g.Reserve(ctx, budget.Request{ID: reqID(i), Org: "open", Cost: usd(5)})
		if h != nil || err != nil {
			t.Fatalf("fail open: %v, %v", h, err)
		}
	}
	// Fail local: the budget is enforced in process.
	h := mustReserve(t, g, budget.Request{ID: "l1", Org: "local", Cost: 600_000})
	if _, err := g.Reserve(ctx, budget.Request{ID: "l2", Org: "local", Cost: 600_000}); err == nil {
		t.Fatal("local fallback over-admitted")
	} else {
		exhausted(t, err)
	}
	if err := h.Commit(ctx, 700_000); err != nil {
		t.Fatal(err)
	}
	if s := status(t, g, "local", c.Now(), budget.Daily); s.Spent != 700_000 || s.Reserved != 0 {
		t.Fatalf("local status: %+v", s)
	}
	if n := m.alertCount(budget.Daily, 0); n != 1 {
		t.Fatalf("local exhausted alerts: %d", n)
	}
	if got := m.sharedChanges(); len(got) != 1 {
		t.Fatalf("shared backend changes %v, want one", got)
	}
}

// proxy forwards TCP to Redis until down, so a test can cut Redis off and
// bring it back on the same address.
type proxy struct {
	t     *testing.T
	addr  string
	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t *testing.T) *proxy {
	p := &proxy{t: t}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(func() { p.down(); p.wg.Wait() })
	return p
}

func (p *proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", budget.RedisAddr)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(u, c); _ = u.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, u); _ = c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) up() {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(l)
}

// TestRedisOutageAndRecovery: Redis goes away mid-request and comes back.
// A hold taken on Redis cannot be committed during the outage (an error,
// and the hold expires there); requests meanwhile use the local fallback;
// after the cooldown (on the fake clock) a probe finds Redis and shared
// decisions resume, with the shared state as it was.
func TestRedisOutageAndRecovery(t *testing.T) {
	budget.RequireRedis(t)
	p := newProxy(t)
	c := newClock(time.Now())
	m := newMetrics()
	rb := budget.NewRedis(budget.NewTestClient(t, p.addr), budget.RedisConfig{Namespace: budget.UniqueNamespace(t), Metrics: m, Timeout: 2 * time.Second})
	k := budget.New(rb, budget.Options{Clock: c.Now, HoldTTL: time.Minute})
	g, err := k.NewGate([]budget.OrgPolicy{{Org: "a", Daily: usd(10)}})
	if err != nil {
		t.Fatal(err)
	}
	shared := mustReserve(t, g, budget.Request{ID: "s", Org: "a", Cost: usd(4)})
	done := mustReserve(t, g, budget.Request{ID: "d", Org: "a", Cost: usd(1)})
	if err := done.Commit(ctx, usd(1)); err != nil {
		t.Fatal(err)
	}
	p.down()
	if err := shared.Commit(ctx, usd(2)); !errors.Is(err, budget.ErrUnavailable) {
		t.Fatalf("commit during the outage: %v", err)
	}
	var local []*budget.Hold
	for i := 0; i < 3; i++ {
		local = append(local, mustReserve(t, g, budget.Request{ID: reqID(i), Org: "a", Cost: usd(3)}))
	}
	if _, err := g.Reserve(ctx, budget.Request{ID: "x", Org: "a", Cost: usd(3)}); err == nil {
		t.Fatal("the local fallback admitted past the budget")
	}
	if rb.Up() {
		t.Fatal("breaker still closed")
	}
	p.up()
	if h := mustReserve(t, g, budget.Request{ID: "y", Org: "a", Cost: usd(1)}); rb.Up() {
		t.Fatal("Redis used before the cooldown")
	} else {
		_ = h.Release(ctx) // local
	}
	c.Advance(time.Minute + time.Second) // past the cooldown and the lost hold's TTL
	st := status(t, g, "a", c.Now(), budget.Daily)
	if !rb.Up() || st.Spent != usd(1) || st.Reserved != 0 {
		t.Fatalf("after recovery: up %v, %+v", rb.Up(), st)
	}
	for _, h := range local { // settled on the side that took them
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.sharedChanges(); len(got) != 2 || got[0] || !got[1] {
		t.Fatalf("shared backend changes %v, want [false true]", got)
	}
}
