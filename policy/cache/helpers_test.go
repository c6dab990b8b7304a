package cache_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aigw/aigw/policy/cache"
	"github.com/aigw/aigw/providers/llm"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_750_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// metrics counts what the cache reports.
type metrics struct {
	mu        sync.Mutex
	lookups   map[string]int // "l1 hit", "l2 miss", ...
	coalesced atomic.Int64
	redisErrs atomic.Int64
}

func (m *metrics) Lookup(tier string, hit bool) {
	r := " miss"
	if hit {
		r = " hit"
	}
	m.mu.Lock()
	if m.lookups == nil {
		m.lookups = map[string]int{}
	}
	m.lookups[tier+r]++
	m.mu.Unlock()
}

func (m *metrics) Coalesced()        { m.coalesced.Add(1) }
func (m *metrics) RedisError(string) { m.redisErrs.Add(1) }

func (m *metrics) count(s string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups[s]
}

// logCounter is a slog handler that counts records by level.
type logCounter struct {
	mu     sync.Mutex
	counts map[slog.Level]int
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = map[slog.Level]int{}
	}
	h.counts[r.Level]++
	return nil
}
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }
func (h *logCounter) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[l]
}

// newCache returns a Cache closed at the end of the test, on clock and m
// unless o sets its own.
func newCache(t testing.TB, o cache.Options) *cache.Cache {
	t.Helper()
	c, err := cache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// parse decodes an OpenAI request body.
func parse(t testing.TB, body string) *llm.Request {
	t.Helper()
	var r llm.Request
	if err := r.UnmarshalJSON([]byte(body)); err != nil {
		t.Fatalf("parse %s: %v", body, err)
	}
	return &r
}

// sampleEntry is an answer filled from JSON.
func sampleEntry(content string) cache.Entry {
	return cache.Entry{
		Body:         []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1750000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"` + content + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`),
		FinishReason: llm.FinishStop,
		Usage:        llm.Usage{PromptTokens: 9, CompletionTokens: 3, TotalTokens: 12},
		Created:      time.Unix(1_750_000_000, 0),
	}
}

// key returns a key for a distinct request per name.
func key(org, name string) cache.Key {
	return cache.KeyOf(org, "gpt-4o", &llm.Request{Messages: []llm.Message{{Role: "user", Content: name, HasContent: true}}})
}
