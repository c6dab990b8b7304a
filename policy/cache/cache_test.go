package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/aigw/aigw/policy/cache"
)

var ctx = context.Background()

func TestSetGetL1(t *testing.T) {
	m := &metrics{}
	clock := newClock()
	c := newCache(t, cache.Options{Clock: clock.Now, Metrics: m})
	k := key("org-a", "q")
	if _, ok := c.Get(ctx, k); ok {
		t.Fatal("hit on an empty cache")
	}
	want := sampleEntry("Sunny")
	c.Set(ctx, k, want, time.Minute)
	got, ok := c.Get(ctx, k)
	if !ok || string(got.Body) != string(want.Body) || got.Usage != want.Usage || !got.Created.Equal(want.Created) {
		t.Fatalf("Get after Set = %+v, %v", got, ok)
	}
	if m.count("l1 hit") != 1 || m.count("l1 miss") != 1 || m.count("l2 miss") != 0 {
		t.Errorf("lookups %v; want one L1 miss, one L1 hit, no L2 without Redis", m.lookups)
	}
}

// TestCrossOrgIsolation: an entry set for org A's request is never returned
// for org B's identical request.
func TestCrossOrgIsolation(t *testing.T) {
	c := newCache(t, cache.Options{})
	r := parse(t, baseBody)
	ka, kb := cache.KeyOf("org-a", "gpt-4o", r), cache.KeyOf("org-b", "gpt-4o", r)
	c.Set(ctx, ka, sampleEntry("for A"), time.Hour)
	if _, ok := c.Get(ctx, ka); !ok {
		t.Fatal("org A misses its own entry")
	}
	if e, ok := c.Get(ctx, kb); ok {
		t.Fatalf("org B got org A's entry: %s", e.Body)
	}
	if e, hit, lead := c.Begin(ctx, kb); hit || lead == nil {
		t.Fatalf("org B's Begin: hit %v (%s), lead %v; want a miss and the lead", hit, e.Body, lead)
	} else {
		lead.Abandon()
	}
}

// TestTTLL1: an entry is returned until its TTL by the injected clock has
// passed, never after, although ristretto's wall-clock TTL has not.
func TestTTLL1(t *testing.T) {
	clock := newClock()
	c := newCache(t, cache.Options{Clock: clock.Now})
	k := key("o", "ttl")
	c.Set(ctx, k, sampleEntry("x"), 10*time.Minute)
	clock.Advance(10*time.Minute - time.Nanosecond)
	if _, ok := c.Get(ctx, k); !ok {
		t.Fatal("miss before the TTL")
	}
	clock.Advance(time.Nanosecond)
	if _, ok := c.Get(ctx, k); ok {
		t.Fatal("hit at the TTL")
	}
	if _, hit, lead := c.Begin(ctx, k); hit || lead == nil {
		t.Fatal("Begin hit an expired entry")
	} else {
		lead.Abandon()
	}
	// Each Set carries its own TTL.
	c.Set(ctx, k, sampleEntry("y"), time.Second)
	c.Set(ctx, key("o", "long"), sampleEntry("z"), time.Hour)
	clock.Advance(2 * time.Second)
	if _, ok := c.Get(ctx, k); ok {
		t.Error("hit after a 1 s TTL")
	}
	if _, ok := c.Get(ctx, key("o", "long")); !ok {
		t.Error("miss within a 1 h TTL")
	}
}

func TestSetWithoutTTLStoresNothing(t *testing.T) {
	c := newCache(t, cache.Options{})
	k := key("o", "no ttl")
	c.Set(ctx, k, sampleEntry("x"), 0)
	c.Set(ctx, k, sampleEntry("x"), -time.Second)
	if _, ok := c.Get(ctx, k); ok {
		t.Fatal("hit for an entry set without a TTL")
	}
}

// TestMaxBytes: the in-process tier keeps no entry larger than MaxBytes.
func TestMaxBytes(t *testing.T) {
	e := sampleEntry("x")
	c := newCache(t, cache.Options{MaxBytes: int64(e.EncodedSize()) - 1})
	c.Set(ctx, key("o", "big"), e, time.Hour)
	if _, ok := c.Get(ctx, key("o", "big")); ok {
		t.Fatal("an entry larger than MaxBytes was kept")
	}
	if _, err := cache.New(cache.Options{MaxBytes: -1}); err == nil {
		t.Fatal("negative MaxBytes accepted")
	}
}

func TestClose(t *testing.T) {
	c := newCache(t, cache.Options{})
	k := key("o", "closed")
	c.Set(ctx, k, sampleEntry("x"), time.Hour)
	_, _, lead := c.Begin(ctx, key("o", "in flight"))
	c.Close()
	c.Close() // idempotent
	if _, ok := c.Get(ctx, k); ok {
		t.Error("hit after Close")
	}
	if _, hit, l := c.Begin(ctx, k); hit || l != nil {
		t.Errorf("Begin after Close: hit %v, lead %v; want a miss without a lead", hit, l)
	}
	c.Set(ctx, k, sampleEntry("x"), time.Hour) // no panic
	lead.Fill(sampleEntry("late"), time.Hour)  // no panic
}
