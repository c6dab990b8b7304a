package quota

import (
	"context"
	_ "embed" // the Lua script
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed script.lua
var scriptSource string

// Defaults of RedisConfig.
const (
	DefaultRedisTimeout  = 100 * time.Millisecond
	DefaultRedisFailures = 3
	DefaultRedisCooldown = time.Second
)

// ClientOptions sets o's timeouts and retries to what the Redis backend is
// designed for, and returns o: dial 100 ms in one attempt, read and write
// 50 ms, no command retries (the scripts mutate state), a 100 ms wait for
// a pooled connection, context deadlines honoured, and no per-connection
// handshake beyond what is required. Fields the caller already set to
// non-zero values are overwritten.
//
//	client := redis.NewClient(quota.ClientOptions(&redis.Options{Addr: addr}))
func ClientOptions(o *redis.Options) *redis.Options {
	o.DialTimeout = 100 * time.Millisecond
	o.DialerRetries = 1
	o.ReadTimeout = 50 * time.Millisecond
	o.WriteTimeout = 50 * time.Millisecond
	o.PoolTimeout = 100 * time.Millisecond
	o.MaxRetries = -1
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	return o
}

// RedisConfig configures NewRedis. Zero fields get defaults.
type RedisConfig struct {
	// Timeout bounds one call (pool wait, dial, write and read together);
	// default 100 ms. A hung Redis adds at most this to a request, and
	// only until the breaker opens.
	Timeout time.Duration
	// Failures is the number of consecutive failed calls that opens the
	// breaker; default 3.
	Failures int
	// Cooldown is how long the breaker stays open before one call probes
	// Redis again; default 1 s.
	Cooldown time.Duration
	// Replicas is the number of gateway replicas sharing Redis. While Redis
	// is unavailable, an org with FailLocal gets 1/Replicas of each of its
	// limits (rounded up) from each replica. Default 1.
	Replicas int
	Clock    Clock        // default SystemClock
	Logger   *slog.Logger // an outage is logged once when it starts and once when it ends; default: discard
	Metrics  Metrics      // SharedBackend is reported on each change; default: none
}

// Redis keeps limit state in Redis, shared by every replica. Each decision
// is one EVALSHA of a Lua script that checks all of the org's and key's
// limits and consumes all or none; all keys of an org share the hash tag
// {org}, so the backend works with Redis Cluster.
//
// Calls are bounded by RedisConfig.Timeout and guarded by a breaker. While
// Redis fails (or the breaker is open) each org is served per its FailMode:
// a local in-process share of its limits, admitted uncounted, or refused;
// Redis is probed again after the cooldown and used as soon as it answers.
// Reservations are corrected on the side that took them; a correction
// that cannot reach Redis is dropped (the state there then errs on the
// strict side until it drains).
type Redis struct {
	c        redis.Scripter
	script   *redis.Script
	local    *Memory
	br       breaker
	timeout  time.Duration
	replicas int64
	clock    Clock
	log      *slog.Logger
	metrics  Metrics
}

// NewRedis returns a backend on c: a *redis.Client, *redis.ClusterClient or
// *redis.Ring, best built with ClientOptions. The caller owns c.
func NewRedis(c redis.Scripter, cfg RedisConfig) *Redis {
	r := &Redis{
		c:        c,
		script:   redis.NewScript(scriptSource),
		local:    NewMemory(),
		timeout:  cfg.Timeout,
		replicas: int64(cfg.Replicas),
		clock:    cfg.Clock,
		log:      cfg.Logger,
		metrics:  cfg.Metrics,
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
	}
	if r.replicas < 1 {
		r.replicas = 1
	}
	if r.clock == nil {
		r.clock = SystemClock{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.metrics == nil {
		r.metrics = nopMetrics{}
	}
	r.br.threshold = int32(cfg.Failures)
	if r.br.threshold <= 0 {
		r.br.threshold = DefaultRedisFailures
	}
	cd := cfg.Cooldown
	if cd <= 0 {
		cd = DefaultRedisCooldown
	}
	r.br.cooldown = cd.Microseconds()
	return r
}

// Up reports whether decisions currently go to Redis (the breaker is
// closed).
func (r *Redis) Up() bool { return r.br.closed() }

// unavailableError is returned by take when Redis is unavailable and the
// org fails closed.
type unavailableError struct {
	retryAfter time.Duration
	cause      error
}

func (e *unavailableError) Error() string {
	if e.cause != nil {
		return "quota backend unavailable: " + e.cause.Error()
	}
	return "quota backend unavailable"
}

func (e *unavailableError) Unwrap() error { return e.cause }

func (r *Redis) take(ctx context.Context, b *batch) error {
	now := r.clock.Now().UnixMicro()
	var cause error
	if ok, probe := r.br.allow(now); ok {
		err := r.call(ctx, b, nil)
		if err == nil {
			r.succeeded(probe)
			b.via = viaShared
			return nil
		}
		if ctx.Err() != nil { // the caller went away: not Redis's fault
			r.br.abort(probe)
			return ctx.Err()
		}
		r.failed(now, probe, err)
		cause = err
	}
	switch b.fail {
	case FailOpen:
		b.allowed, b.via = true, viaNone
		for i := 0; i < b.n; i++ {
			b.level[i], b.last[i] = 0, b.now
		}
		return nil
	case FailClosed:
		ra := r.br.retryIn(now)
		if ra <= 0 { // a probe is under way
			ra = r.br.cooldown
		}
		return &unavailableError{retryAfter: time.Duration(ra) * time.Microsecond, cause: cause}
	}
	for i := 0; i < b.n; i++ {
		localShare(&b.rules[i], r.replicas)
	}
	if err := r.local.take(ctx, b); err != nil {
		return err
	}
	b.via = viaLocal
	return nil
}

func (r *Redis) adjust(ctx context.Context, b *batch, delta *[maxRules]int64) error {
	switch b.via {
	case viaNone:
		return nil
	case viaLocal:
		return r.local.adjust(ctx, b, delta)
	}
	now := r.clock.Now().UnixMicro()
	ok, probe := r.br.allow(now)
	if !ok {
		return &unavailableError{}
	}
	err := r.call(ctx, b, delta)
	switch {
	case err == nil:
		r.succeeded(probe)
	case ctx.Err() != nil:
		r.br.abort(probe)
	default:
		r.failed(now, probe, err)
	}
	return err
}

func (r *Redis) succeeded(probe bool) {
	if r.br.success(probe) {
		r.log.Info("quota: Redis answers again; shared limits restored")
		r.metrics.SharedBackend(true)
	}
}

func (r *Redis) failed(now int64, probe bool, err error) {
	if r.br.failure(now, probe) {
		r.log.Warn("quota: Redis unavailable; orgs fall back per their fail mode until it answers",
			"err", err, "replicas", r.replicas)
		r.metrics.SharedBackend(false)
	}
}

// call runs the script for b: a take when delta is nil, else an adjust of
// the rules whose delta is not zero.
func (r *Redis) call(ctx context.Context, b *batch, delta *[maxRules]int64) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	keys := make([]string, 0, b.n)
	args := make([]any, 0, 2+6*b.n)
	mode := "t"
	if delta != nil {
		mode = "a"
	}
	args = append(args, b.now, mode)
	for i := 0; i < b.n; i++ {
		rl := &b.rules[i]
		cost := rl.cost
		if delta != nil {
			if cost = delta[i]; cost == 0 {
				continue
			}
		}
		flag := "e"
		if rl.shadow {
			flag = "s"
		}
		keys = append(keys, rl.key)
		if rl.counter {
			args = append(args, "c", cost, rl.max, rl.ttl, 0, flag)
		} else {
			args = append(args, "r", cost, rl.spec.rate, rl.spec.res, rl.spec.cap, flag)
		}
	}
	if len(keys) == 0 {
		b.allowed = true
		return nil
	}
	res, err := r.script.Run(ctx, r.c, keys, args...).Int64Slice()
	if err != nil {
		return err
	}
	if delta != nil {
		return nil
	}
	if len(res) != 1+2*b.n {
		return fmt.Errorf("quota script: %d results for %d rules", len(res), b.n)
	}
	b.allowed = res[0] == 1
	for i := 0; i < b.n; i++ {
		b.level[i], b.last[i] = res[1+2*i], res[2+2*i]
	}
	return nil
}

// localShare rewrites r to one replica's share of its limit.
func localShare(r *rule, n int64) {
	if n <= 1 {
		return
	}
	r.limit = ceilDiv(r.limit, n)
	if r.counter {
		r.max = ceilDiv(r.max, n)
		return
	}
	r.spec.rate = ceilDiv(r.spec.rate, n)
	r.spec.cap = ceilDiv(r.spec.cap/r.spec.unit, n) * r.spec.unit
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// isUnavailable reports whether err says the shared backend is unavailable
// (and the org fails closed).
func isUnavailable(err error) (*unavailableError, bool) {
	var u *unavailableError
	ok := errors.As(err, &u)
	return u, ok
}
