package budget

import (
	"context"
	_ "embed" // the Lua script
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed script.lua
var scriptSource string

// Defaults of RedisConfig.
const (
	DefaultNamespace     = "aigw"
	DefaultRedisTimeout  = 100 * time.Millisecond
	DefaultRedisFailures = 3
	DefaultRedisCooldown = time.Second
)

// RedisConfig configures NewRedis. Zero fields get defaults.
type RedisConfig struct {
	// Namespace prefixes every key; default "aigw". Replicas sharing
	// budgets use the same one.
	Namespace string
	// Timeout bounds one call; default 100 ms.
	Timeout time.Duration
	// Failures is the number of consecutive failed calls that opens the
	// breaker; default 3. While it is open no call goes to Redis.
	Failures int
	// Cooldown is how long the breaker stays open before one call probes
	// Redis again; default 1 s (on the Keeper's clock).
	Cooldown time.Duration
	// Logger logs an outage once when it starts and once when it ends;
	// default: discard.
	Logger *slog.Logger
	// Metrics receives SharedBackend on each change; default: none.
	Metrics Metrics
}

// Redis keeps budget state in Redis, shared by every replica. Each
// operation is one EVALSHA of a Lua script over all of an org's periods:
// a reserve checks spent + reserved + cost <= limit in every period and
// holds the cost in all or none. Holds are kept in a ZSET by expiry and
// purged on every touch, so the holds of a gateway that died expire after
// the hold TTL. All keys of an org share the hash tag {namespace:org}, so
// the backend works with Redis Cluster, and every key expires seven days
// after its period ends. Amounts are integers (HINCRBY), never floats.
//
// Calls are bounded by RedisConfig.Timeout and guarded by a breaker.
// While Redis fails (or the breaker is open) reserves follow the org's
// FailMode: an in-process Memory fallback, admitted unreserved, or
// refused; Redis is probed again after the cooldown and used as soon as it
// answers. A hold is settled on the side that took it; a hold taken on
// Redis that cannot be settled there returns an error and expires there.
// State the fallback accumulated is not copied into Redis.
type Redis struct {
	c       redis.Scripter
	script  *redis.Script
	local   *Memory
	ns      string
	br      breaker
	timeout time.Duration
	log     *slog.Logger
	metrics Metrics
}

// NewRedis returns a backend on c: a *redis.Client, *redis.ClusterClient
// or *redis.Ring, best configured like quota.ClientOptions does (short
// dial, read and write timeouts, no command retries: the scripts are not
// idempotent). The caller owns c.
func NewRedis(c redis.Scripter, cfg RedisConfig) *Redis {
	r := &Redis{
		c:       c,
		script:  redis.NewScript(scriptSource),
		local:   NewMemory(),
		ns:      cfg.Namespace,
		timeout: cfg.Timeout,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
	}
	if r.ns == "" {
		r.ns = DefaultNamespace
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
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

// Up reports whether operations currently go to Redis (the breaker is
// closed).
func (r *Redis) Up() bool { return r.br.closed() }

func (r *Redis) do(ctx context.Context, o *op) error {
	now := o.now.UnixMicro()
	if o.kind == opCommit || o.kind == opRelease {
		switch o.via {
		case viaLocal:
			return r.local.do(ctx, o)
		case viaNone, viaMemory:
			return nil
		}
		ok, probe := r.br.allow(now)
		if !ok {
			return fmt.Errorf("%w (breaker open)", ErrUnavailable)
		}
		err := r.call(ctx, o)
		switch {
		case err == nil || errors.Is(err, errHoldTaken):
			r.succeeded(probe)
			return err
		case ctx.Err() != nil:
			r.br.abort(probe)
			return ctx.Err()
		}
		r.failed(now, probe, err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var cause error
	if ok, probe := r.br.allow(now); ok {
		err := r.call(ctx, o)
		if err == nil || errors.Is(err, errHoldTaken) {
			r.succeeded(probe)
			o.via = viaShared
			return err
		}
		if ctx.Err() != nil { // the caller went away: not Redis's fault
			r.br.abort(probe)
			return ctx.Err()
		}
		r.failed(now, probe, err)
		cause = err
	}
	switch o.fail {
	case FailOpen:
		o.via, o.admitted = viaNone, true
		return nil
	case FailClosed:
		if cause != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, cause)
		}
		return fmt.Errorf("%w (breaker open)", ErrUnavailable)
	}
	o.via = viaLocal
	return r.local.do(ctx, o)
}

func (r *Redis) succeeded(probe bool) {
	if r.br.success(probe) {
		r.log.Info("budget: Redis answers again; shared budgets restored")
		r.metrics.SharedBackend(true)
	}
}

func (r *Redis) failed(now int64, probe bool, err error) {
	if r.br.failure(now, probe) {
		r.log.Warn("budget: Redis unavailable; orgs fall back per their fail mode until it answers", "err", err)
		r.metrics.SharedBackend(false)
	}
}

var errHoldTaken = errors.New("budget: hold id already taken")

// code returns the script's name for k.
func (k opKind) code() string {
	switch k {
	case opReserve:
		return "r"
	case opCommit:
		return "c"
	case opRelease:
		return "x"
	}
	return "s"
}

// call runs the script for o.
func (r *Redis) call(ctx context.Context, o *op) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	prefix := "{" + r.ns + ":" + escapeID(o.org) + "}:"
	keys := make([]string, 0, 2*o.n)
	args := make([]any, 0, 6+4*o.n)
	force := "0"
	if o.force {
		force = "1"
	}
	args = append(args, o.kind.code(), o.now.UnixMilli(), o.holdID, o.amount, o.holdExp.UnixMilli(), force)
	for i := 0; i < o.n; i++ {
		a := o.acct[i]
		keys = append(keys, prefix+a.label, prefix+a.label+":h")
		seed := "?"
		if o.seed[i] != seedAsk {
			seed = strconv.FormatInt(o.seed[i], 10)
		}
		args = append(args, a.limit, a.expireAt, seed, a.thrArg)
	}
	res, err := r.script.Run(ctx, r.c, keys, args...).Int64Slice()
	if err != nil {
		return err
	}
	switch {
	case len(res) == 2 && res[0] == 2:
		o.needSeed = uint8(res[1])
		return nil
	case len(res) == 1 && res[0] == 3:
		return errHoldTaken
	case len(res) != 1+3*o.n:
		return fmt.Errorf("budget script: %d results for %d periods", len(res), o.n)
	}
	o.admitted = res[0] == 1
	for i := 0; i < o.n; i++ {
		o.spent[i], o.reserved[i], o.flags[i] = res[1+3*i], res[2+3*i], res[3+3*i]
	}
	return nil
}

// idEscaper keeps ids from breaking the key layout or the hash tag.
var idEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D", ":", "%3A")

func escapeID(s string) string {
	if !strings.ContainsAny(s, "%{}:") {
		return s
	}
	return idEscaper.Replace(s)
}
