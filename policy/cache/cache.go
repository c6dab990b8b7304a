package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultMaxBytes     = 64 << 20
	DefaultNamespace    = "aigw"
	DefaultRedisTimeout = 50 * time.Millisecond
	DefaultMaxWait      = 30 * time.Second
)

// Options configures New. Zero fields get defaults.
type Options struct {
	// MaxBytes bounds the in-process tier: the sum of the entries' encoded
	// sizes (Entry.EncodedSize); default DefaultMaxBytes. An entry larger
	// than MaxBytes is never kept in process (it may still be in Redis).
	MaxBytes int64
	// Redis is the shared tier; nil means none. The cache only runs GET
	// and SET on it and never closes it. Each call is bounded by
	// RedisTimeout through its context, which go-redis honours only with
	// ContextTimeoutEnabled; configure the client as for the quota backend
	// (quota.ClientOptions: short dial, read and write timeouts, no
	// retries).
	Redis redis.UniversalClient
	// Namespace prefixes Redis keys: "<Namespace>:cache:<key hex>";
	// default DefaultNamespace. Replicas that share entries use the same.
	Namespace string
	// Clock is the source of time for TTLs and expiry; default time.Now.
	// Replicas sharing Redis should keep their clocks synchronised.
	Clock func() time.Time
	// RedisTimeout bounds one Redis call; default DefaultRedisTimeout.
	RedisTimeout time.Duration
	// MaxWait bounds how long Begin waits for another request's answer
	// (real time); default DefaultMaxWait. A flight older than MaxWait by
	// Clock is presumed lost and replaced.
	MaxWait time.Duration
	// Logger gets Redis failures (once when they start, once when Redis
	// answers again) and corrupt entries; default: discard.
	Logger *slog.Logger
	// Metrics gets lookups and coalesced requests; default: none.
	Metrics Metrics
}

// Redis breaker: after breakerFailures consecutive failed calls, the L2 is
// skipped (reads as a miss) for breakerCooldown by Clock; then calls go
// through again, and the next failure reopens it.
const (
	breakerFailures = 3
	breakerCooldown = time.Second
)

// Cache is an exact response cache with an in-process tier and an optional
// Redis tier. It is safe for concurrent use. Create it with New, once per
// process; Close it at shutdown.
type Cache struct {
	l1      *ristretto.Cache[uint64, *item]
	rdb     redis.UniversalClient
	prefix  string
	now     func() time.Time
	rto     time.Duration
	maxWait time.Duration
	log     *slog.Logger
	m       Metrics

	// life guards l1 against Close: ristretto must not be used while or
	// after it closes.
	life   sync.RWMutex
	closed bool

	mu      sync.Mutex
	flights map[Key]*flight

	brMu      sync.Mutex
	brFails   int
	brOpenTil time.Time
}

// item is what L1 holds: the whole key (L1 is indexed by 64 bits of it),
// the expiry by Clock in Unix nanoseconds, and the entry.
type item struct {
	key Key
	exp int64
	e   Entry
}

// New returns a Cache. It fails only for a negative MaxBytes or a
// ristretto configuration error.
func New(o Options) (*Cache, error) {
	if o.MaxBytes < 0 {
		return nil, errors.New("cache: MaxBytes must not be negative")
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.RedisTimeout <= 0 {
		o.RedisTimeout = DefaultRedisTimeout
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	// About ten counters per entry that fits, guessing 4 KiB entries.
	counters := min(max(o.MaxBytes/4096*10, 10_000), 10_000_000)
	l1, err := ristretto.NewCache(&ristretto.Config[uint64, *item]{
		NumCounters:        counters,
		MaxCost:            o.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	return &Cache{
		l1:      l1,
		rdb:     o.Redis,
		prefix:  o.Namespace + ":cache:",
		now:     o.Clock,
		rto:     o.RedisTimeout,
		maxWait: o.MaxWait,
		log:     o.Logger,
		m:       o.Metrics,
		flights: make(map[Key]*flight),
	}, nil
}

// Close releases the in-process tier. It does not close the Redis client.
// Calls made after Close (or concurrently) are safe: lookups miss, Begin
// grants no lead, Set and Fill store nothing. Requests already waiting in
// Begin still get their leader's answer.
func (c *Cache) Close() {
	c.life.Lock()
	defer c.life.Unlock()
	if !c.closed {
		c.closed = true
		c.l1.Close()
	}
}

// Get looks k up in L1, then L2 (an L2 hit is copied into L1), without
// coalescing. The entry is shared: see Entry.
func (c *Cache) Get(ctx context.Context, k Key) (Entry, bool) {
	if e, ok := c.getL1(k); ok {
		return e, true
	}
	return c.getL2(ctx, k)
}

// Set stores e under k in both tiers for ttl (by Clock); ttl <= 0 stores
// nothing. e becomes the cache's (see Entry). When Set returns, a Get in
// this process finds the entry unless ristretto refused it (its admission
// policy may); the Redis write is done (or failed, bounded by
// RedisTimeout and logged). ctx bounds the Redis write further.
func (c *Cache) Set(ctx context.Context, k Key, e Entry, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	exp := c.now().Add(ttl).UnixNano()
	c.setL1(k, e, exp, ttl, true)
	c.setL2(ctx, k, &e, exp, ttl)
}

func l1Hash(k Key) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

func (c *Cache) getL1(k Key) (Entry, bool) {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed {
		return Entry{}, false
	}
	it, ok := c.l1.Get(l1Hash(k))
	if ok && it.key == k && c.now().UnixNano() < it.exp {
		c.m.Lookup(TierL1, true)
		return it.e, true
	}
	if ok && it.key == k {
		c.l1.Del(l1Hash(k)) // expired by Clock before ristretto noticed
	}
	c.m.Lookup(TierL1, false)
	return Entry{}, false
}

// setL1 stores e until exp (Clock, Unix ns); ttl also bounds ristretto's
// own wall-clock expiry, which only frees memory sooner. With wait, the
// entry is visible when setL1 returns (unless refused).
func (c *Cache) setL1(k Key, e Entry, exp int64, ttl time.Duration, wait bool) {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed {
		return
	}
	if c.l1.SetWithTTL(l1Hash(k), &item{key: k, exp: exp, e: e}, int64(e.EncodedSize()), ttl) && wait {
		c.l1.Wait()
	}
}

// redisKey returns the Redis key of k.
func (c *Cache) redisKey(k Key) string {
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 0, len(c.prefix)+64)
	b = append(b, c.prefix...)
	for _, x := range k {
		b = append(b, hexDigits[x>>4], hexDigits[x&0xF])
	}
	return string(b)
}

// The L2 value is recordVersion, the expiry by Clock (Unix ns, 8 bytes
// big-endian), then the entry's binary encoding.
const recordVersion = 1

func (c *Cache) getL2(ctx context.Context, k Key) (Entry, bool) {
	if c.rdb == nil {
		return Entry{}, false
	}
	if !c.redisAllowed() {
		c.m.Lookup(TierL2, false)
		return Entry{}, false
	}
	rctx, cancel := context.WithTimeout(ctx, c.rto)
	b, err := c.rdb.Get(rctx, c.redisKey(k)).Bytes()
	cancel()
	switch {
	case errors.Is(err, redis.Nil):
		c.redisOK()
		c.m.Lookup(TierL2, false)
		return Entry{}, false
	case err != nil:
		if ctx.Err() == nil { // not the caller giving up
			c.redisFailed("get", err)
		}
		c.m.Lookup(TierL2, false)
		return Entry{}, false
	}
	c.redisOK()
	now := c.now().UnixNano()
	if len(b) < 9 || b[0] != recordVersion {
		c.log.Warn("cache: corrupt entry in Redis; ignored", "key", k.String())
		c.m.Lookup(TierL2, false)
		return Entry{}, false
	}
	exp := int64(binary.BigEndian.Uint64(b[1:9]))
	if now >= exp {
		c.m.Lookup(TierL2, false)
		return Entry{}, false
	}
	e, err := decodeEntry(b[9:], true)
	if err != nil {
		c.log.Warn("cache: corrupt entry in Redis; ignored", "key", k.String(), "err", err)
		c.m.Lookup(TierL2, false)
		return Entry{}, false
	}
	c.m.Lookup(TierL2, true)
	c.setL1(k, e, exp, time.Duration(exp-now), false)
	return e, true
}

func (c *Cache) setL2(ctx context.Context, k Key, e *Entry, exp int64, ttl time.Duration) {
	if c.rdb == nil || ttl < time.Millisecond || !c.redisAllowed() {
		return
	}
	v := make([]byte, 9, 9+e.EncodedSize())
	v[0] = recordVersion
	binary.BigEndian.PutUint64(v[1:9], uint64(exp))
	v, _ = e.AppendBinary(v)
	rctx, cancel := context.WithTimeout(ctx, c.rto)
	// go-redis sends SET key value PX ms (EX s for whole seconds): the
	// entry and its TTL in one command.
	err := c.rdb.Set(rctx, c.redisKey(k), v, ttl.Truncate(time.Millisecond)).Err()
	cancel()
	switch {
	case err == nil:
		c.redisOK()
	case ctx.Err() == nil:
		c.redisFailed("set", err)
	}
}

// redisAllowed reports whether the breaker lets a Redis call through.
func (c *Cache) redisAllowed() bool {
	c.brMu.Lock()
	defer c.brMu.Unlock()
	return c.brFails < breakerFailures || !c.now().Before(c.brOpenTil)
}

func (c *Cache) redisOK() {
	c.brMu.Lock()
	was := c.brFails
	c.brFails = 0
	c.brMu.Unlock()
	if was > 0 {
		c.log.Info("cache: Redis answers again")
	}
}

func (c *Cache) redisFailed(op string, err error) {
	c.m.RedisError(op)
	c.brMu.Lock()
	c.brFails++
	n := c.brFails
	if n >= breakerFailures {
		c.brOpenTil = c.now().Add(breakerCooldown)
	}
	c.brMu.Unlock()
	if n == 1 {
		c.log.Warn("cache: Redis failed; shared tier reads as a miss until it answers again", "op", op, "err", err)
	}
}
