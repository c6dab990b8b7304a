package quota

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

// RedisClient returns a client for the test Redis, configured with
// ClientOptions. Without a Redis it skips the test, or fails it when the
// CI environment variable is set: CI must run these tests.
func RedisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	return RedisClientAt(tb, RedisAddr)
}

// RedisClientAt is RedisClient for addr; only the probe uses
// RedisAddr.
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
	c := redis.NewClient(ClientOptions(&redis.Options{Addr: addr}))
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
