package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Waiters returns how many requests wait in Begin for k's leader (for
// tests that must know a stampede has formed before the leader fills).
func (c *Cache) Waiters(k Key) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[k]; f != nil {
		return f.waiters
	}
	return 0
}

// RedisKey is the Redis key an entry for k is stored under.
func (c *Cache) RedisKey(k Key) string { return c.redisKey(k) }

// RedisAddr is the Redis the tests use.
const RedisAddr = "127.0.0.1:6379"

// ClientOptions sets the timeouts the cache is designed for (as
// quota.ClientOptions does; the cache may not import quota).
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

// RedisClient returns a client for the test Redis. Without a Redis it
// skips the test, or fails it when the CI environment variable is set: CI
// must run these tests.
func RedisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	return RedisClientAt(tb, RedisAddr)
}

// RedisClientAt is RedisClient for addr; only the probe uses RedisAddr.
func RedisClientAt(tb testing.TB, addr string) *redis.Client {
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
	return NewClient(tb, addr)
}

// NewClient returns a client for addr with ClientOptions, without probing
// (for tests of a Redis that is down).
func NewClient(tb testing.TB, addr string) *redis.Client {
	c := redis.NewClient(ClientOptions(&redis.Options{Addr: addr}))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// UniqueNamespace returns a namespace no other test run uses, so tests can
// share one Redis without flushing it.
func UniqueNamespace(tb testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "aigwtest-" + hex.EncodeToString(b[:])
}
