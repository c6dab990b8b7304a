package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisAddr is the Redis the tests use.
const RedisAddr = "127.0.0.1:6379"

// RedisClient returns a client for the test Redis. Without a Redis it
// skips the test, or fails it when the CI environment variable is set: CI
// must run these tests.
func RedisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	RequireRedis(tb)
	return NewTestClient(tb, RedisAddr)
}

// RequireRedis skips tb (fails it under CI) when the test Redis does not
// answer.
func RequireRedis(tb testing.TB) {
	tb.Helper()
	probe := redis.NewClient(&redis.Options{Addr: RedisAddr, DialTimeout: time.Second, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := probe.Ping(ctx).Err()
	cancel()
	_ = probe.Close()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("Redis at %s is required under CI: %v", RedisAddr, err)
		}
		tb.Skipf("no Redis at %s (set CI to make this a failure): %v", RedisAddr, err)
	}
}

// NewTestClient returns a client for addr, closed when tb ends, with
// timeouts generous enough for hundreds of concurrent calls under -race,
// and no command retries (as in production: the script is not
// idempotent).
func NewTestClient(tb testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:            addr,
		DialTimeout:     time.Second,
		DialerRetries:   1,
		ReadTimeout:     5 * time.Second,
		WriteTimeout:    5 * time.Second,
		PoolSize:        32,
		PoolTimeout:     10 * time.Second,
		MaxRetries:      -1,
		DisableIdentity: true,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// UniqueNamespace returns a namespace no other test run uses, so tests can
// share one Redis (and run in parallel) without flushing it.
func UniqueNamespace(tb testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "aigwtest-" + hex.EncodeToString(b[:])
}

// BreakerClosed reports whether r's breaker is closed (for tests).
func (r *Redis) BreakerClosed() bool { return r.br.closed() }
