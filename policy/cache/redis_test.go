package cache_test

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/policy/cache"
)

// replicas returns two caches sharing the test Redis under one namespace,
// as two gateway replicas would, on one clock.
func replicas(t *testing.T, clock *fakeClock) (a, b *cache.Cache, ma, mb *metrics) {
	t.Helper()
	client := cache.RedisClient(t)
	ns := cache.UniqueNamespace(t)
	ma, mb = &metrics{}, &metrics{}
	a = newCache(t, cache.Options{Redis: client, Namespace: ns, Clock: clock.Now, Metrics: ma})
	b = newCache(t, cache.Options{Redis: client, Namespace: ns, Clock: clock.Now, Metrics: mb})
	return a, b, ma, mb
}

// TestSharedTier: an entry one replica stores is served by the other from
// Redis, then from its own L1.
func TestSharedTier(t *testing.T) {
	a, b, _, mb := replicas(t, newClock())
	k := key("org-a", "shared")
	want := sampleEntry("shared")
	want.Deltas = []string{"sha", "red"}
	a.Set(ctx, k, want, time.Minute)

	got, ok := b.Get(ctx, k)
	if !ok || string(got.Body) != string(want.Body) || got.Content() != "shared" || got.Usage != want.Usage || !got.Created.Equal(want.Created) {
		t.Fatalf("replica B: %+v, %v", got, ok)
	}
	if mb.count("l1 miss") != 1 || mb.count("l2 hit") != 1 {
		t.Fatalf("replica B lookups %v; want an L1 miss and an L2 hit", mb.lookups)
	}
	// The copy into B's L1 is asynchronous (ristretto buffers sets).
	waitFor(t, func() bool {
		_, ok := b.Get(ctx, k)
		return ok && mb.count("l1 hit") > 0
	}, "the L2 hit to reach B's L1")
	l2 := mb.count("l2 hit")
	for range 10 {
		if _, ok := b.Get(ctx, k); !ok {
			t.Fatal("B misses an entry in its L1")
		}
	}
	if n := mb.count("l2 hit"); n != l2 {
		t.Errorf("B went to Redis %d more times; want its L1 to answer", n-l2)
	}

	// Begin on a third key filled by A: B's leader finds it in Redis and
	// serves its followers without an upstream call.
	k2 := key("org-a", "shared via Begin")
	_, _, lead := a.Begin(ctx, k2)
	lead.Fill(sampleEntry("filled on A"), time.Minute)
	if e, hit, l := b.Begin(ctx, k2); !hit || l != nil || e.Content() != "filled on A" {
		t.Fatalf("B's Begin: hit %v, lead %v, %q", hit, l, e.Content())
	}
	// Another org never reads it, from either tier.
	if _, ok := b.Get(ctx, key("org-b", "shared")); ok {
		t.Fatal("org B read org A's shared entry")
	}
}

// TestTTLL2: the shared tier honours the TTL by the gateway clock (the
// stored expiry), and Redis gets the TTL too (SET with PX).
func TestTTLL2(t *testing.T) {
	clock := newClock()
	a, b, _, _ := replicas(t, clock)
	client := cache.RedisClient(t)
	k := key("o", "ttl2")
	a.Set(ctx, k, sampleEntry("x"), 10*time.Minute)
	pttl, err := client.PTTL(ctx, a.RedisKey(k)).Result()
	if err != nil || pttl <= 9*time.Minute || pttl > 10*time.Minute {
		t.Fatalf("Redis PTTL %v, %v; want about 10m", pttl, err)
	}
	clock.Advance(9 * time.Minute)
	if _, ok := b.Get(ctx, k); !ok { // B's L1 now holds it for the remaining minute
		t.Fatal("B misses within the TTL")
	}
	clock.Advance(time.Minute)
	if _, ok := b.Get(ctx, k); ok {
		t.Fatal("B hits (L1 filled from L2) at the TTL")
	}
	if _, ok := a.Get(ctx, k); ok {
		t.Fatal("A hits at the TTL")
	}
	c := newCache(t, cache.Options{Redis: client, Namespace: nsOf(t, a, k), Clock: clock.Now})
	if _, ok := c.Get(ctx, k); ok {
		t.Fatal("a fresh replica hits Redis's copy past the TTL")
	}
	// Sub-millisecond TTLs are not written to Redis.
	k3 := key("o", "tiny")
	a.Set(ctx, k3, sampleEntry("x"), time.Microsecond)
	if n, _ := client.Exists(ctx, a.RedisKey(k3)).Result(); n != 0 {
		t.Fatal("an entry with a 1 µs TTL reached Redis")
	}
}

// nsOf recovers the namespace from a Redis key.
func nsOf(t *testing.T, c *cache.Cache, k cache.Key) string {
	rk := c.RedisKey(k)
	const suffixLen = len(":cache:") + 64
	if len(rk) <= suffixLen {
		t.Fatalf("Redis key %q", rk)
	}
	return rk[:len(rk)-suffixLen]
}

func TestCorruptRedisEntry(t *testing.T) {
	client := cache.RedisClient(t)
	logs := &logCounter{}
	c := newCache(t, cache.Options{Redis: client, Namespace: cache.UniqueNamespace(t), Logger: slog.New(logs)})
	for i, v := range []string{"", "x", "\x01\x7f\xff\xff\xff\xff\xff\xff\xff", "\x01\x7f\xff\xff\xff\xff\xff\xff\xff\x01"} {
		k := key("o", "corrupt"+string(rune('a'+i)))
		if err := client.Set(ctx, c.RedisKey(k), v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Get(ctx, k); ok {
			t.Fatalf("hit for corrupt value %q", v)
		}
	}
	if logs.count(slog.LevelWarn) != 4 {
		t.Errorf("%d warnings; want one per corrupt entry", logs.count(slog.LevelWarn))
	}
}

// TestRedisDown: with Redis unreachable every call is a miss, answered
// quickly, the failure logged once, and nothing fails.
func TestRedisDown(t *testing.T) {
	for name, addr := range map[string]string{"closed port": closedAddr(t), "hung server": hungAddr(t)} {
		t.Run(name, func(t *testing.T) {
			logs := &logCounter{}
			m := &metrics{}
			clock := newClock()
			c := newCache(t, cache.Options{Redis: cache.NewClient(t, addr), Clock: clock.Now, Logger: slog.New(logs), Metrics: m, RedisTimeout: 50 * time.Millisecond})
			start := time.Now()
			for i := range 5 {
				k := key("o", "down"+string(rune('a'+i)))
				if _, ok := c.Get(ctx, k); ok {
					t.Fatal("hit from a dead Redis")
				}
				_, hit, lead := c.Begin(ctx, k)
				if hit || lead == nil {
					t.Fatalf("Begin: hit %v, lead %v; want the lead", hit, lead)
				}
				lead.Fill(sampleEntry("local"), time.Minute) // L2 write fails quietly
				if e, ok := c.Get(ctx, k); !ok || e.Content() != "local" {
					t.Fatal("the L1 does not work without Redis")
				}
			}
			// 15 Redis calls at most 50 ms each, less once the breaker opens.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if got := m.redisErrs.Load(); got != 3 {
				t.Errorf("%d Redis calls failed; want 3, then the breaker skips Redis", got)
			}
			if logs.count(slog.LevelWarn) != 1 {
				t.Errorf("%d warnings; want one for the outage", logs.count(slog.LevelWarn))
			}
			if m.count("l2 miss") != 10 { // Get and Begin each
				t.Errorf("lookups %v", m.lookups)
			}
			// After the cooldown Redis is tried again.
			clock.Advance(time.Second)
			c.Get(ctx, key("o", "retry"))
			if got := m.redisErrs.Load(); got != 4 {
				t.Errorf("after the cooldown: %d failed calls, want 4", got)
			}
		})
	}
}

// TestRedisRecovers: an outage is logged once when it starts and once when
// Redis answers again, and L2 serves again after the breaker's cooldown.
func TestRedisRecovers(t *testing.T) {
	cache.RedisClient(t) // skip (or fail under CI) without Redis
	px := newSwitchProxy(t, cache.RedisAddr)
	logs := &logCounter{}
	m := &metrics{}
	clock := newClock()
	ns := cache.UniqueNamespace(t)
	writer := newCache(t, cache.Options{Redis: cache.RedisClient(t), Namespace: ns, Clock: clock.Now})
	c := newCache(t, cache.Options{Redis: cache.NewClient(t, px.addr), Namespace: ns, Clock: clock.Now, Logger: slog.New(logs), Metrics: m})

	k := key("o", "recover")
	writer.Set(ctx, k, sampleEntry("x"), time.Hour)
	px.setDown(true)
	for range 5 {
		if _, ok := c.Get(ctx, k); ok {
			t.Fatal("hit through a dead proxy")
		}
	}
	if logs.count(slog.LevelWarn) != 1 || m.redisErrs.Load() != 3 {
		t.Fatalf("outage: %d warnings, %d failed calls; want 1 and 3", logs.count(slog.LevelWarn), m.redisErrs.Load())
	}
	px.setDown(false)
	if _, ok := c.Get(ctx, k); ok {
		t.Fatal("Redis used while the breaker is open")
	}
	clock.Advance(time.Second)
	if e, ok := c.Get(ctx, k); !ok || e.Content() != "x" {
		t.Fatal("miss after Redis came back and the cooldown passed")
	}
	if logs.count(slog.LevelInfo) != 1 || logs.count(slog.LevelWarn) != 1 {
		t.Fatalf("recovery: %d info, %d warnings; want 1 and 1", logs.count(slog.LevelInfo), logs.count(slog.LevelWarn))
	}
}

// switchProxy forwards TCP to a backend, or, while down, drops every
// connection.
type switchProxy struct {
	addr  string
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newSwitchProxy(t *testing.T, backend string) *switchProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			if !down {
				p.conns = append(p.conns, in)
			}
			p.mu.Unlock()
			if down {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", backend)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, out)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.setDown(true)
		wg.Wait()
	})
	return p
}

// setDown switches the proxy; going down closes every open connection.
func (p *switchProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// hungAddr returns the address of a server that accepts connections and
// never answers.
func hungAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
