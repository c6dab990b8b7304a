package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/aigw/aigw/policy/cache"
)

// crowd is n goroutines each calling Begin once on the same key.
type crowd struct {
	leads chan *cache.Lead // leads granted
	out   chan result      // everything else returned
}

type result struct {
	e   cache.Entry
	hit bool
}

func startCrowd(ctx context.Context, c *cache.Cache, k cache.Key, n int) *crowd {
	cr := &crowd{leads: make(chan *cache.Lead, n), out: make(chan result, n)}
	for range n {
		go func() {
			e, hit, lead := c.Begin(ctx, k)
			if lead != nil {
				cr.leads <- lead
				return
			}
			cr.out <- result{e, hit}
		}()
	}
	return cr
}

// lead returns the one lead granted once waiters callers wait for it, and
// fails if a second one was granted.
func (cr *crowd) lead(t *testing.T, c *cache.Cache, k cache.Key, waiters int) *cache.Lead {
	t.Helper()
	var l *cache.Lead
	select {
	case l = <-cr.leads:
	case r := <-cr.out:
		t.Fatalf("a caller returned before any lead: %+v", r)
	case <-time.After(10 * time.Second):
		t.Fatal("no lead granted")
	}
	waitFor(t, func() bool { return c.Waiters(k) == waiters }, "the followers to wait")
	select {
	case <-cr.leads:
		t.Fatal("a second lead granted")
	case r := <-cr.out:
		t.Fatalf("a follower returned early: %+v", r)
	default:
	}
	return l
}

// waitFor polls cond until it holds: a rendezvous with goroutines, not a
// timing assumption (the deadline only turns a hang into a failure).
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// TestStampedeCoalesces: 100 concurrent identical misses make one leader;
// after Fill the 99 others get its entry, and later requests hit.
func TestStampedeCoalesces(t *testing.T) {
	m := &metrics{}
	c := newCache(t, cache.Options{Metrics: m})
	k := key("o", "stampede")
	cr := startCrowd(ctx, c, k, 100)
	lead := cr.lead(t, c, k, 99)
	want := sampleEntry("Sunny")
	lead.Fill(want, time.Minute)
	for range 99 {
		r := <-cr.out
		if !r.hit || string(r.e.Body) != string(want.Body) {
			t.Fatalf("follower: hit %v, body %s", r.hit, r.e.Body)
		}
	}
	if got := m.coalesced.Load(); got != 99 {
		t.Errorf("Coalesced %d, want 99", got)
	}
	if e, hit, l := c.Begin(ctx, k); !hit || l != nil || string(e.Body) != string(want.Body) {
		t.Errorf("Begin after Fill: hit %v, lead %v", hit, l)
	}
	lead.Fill(sampleEntry("again"), time.Minute) // a second call does nothing
	lead.Abandon()
	if e, _ := c.Get(ctx, k); string(e.Body) != string(want.Body) {
		t.Error("a second Fill replaced the entry")
	}
}

// TestStampedeAbandonHandsOver: when the leader abandons, exactly one
// waiter becomes the leader and the others wait for it; after
// maxHandoffs (2) successors abandoned as well, the rest go upstream on
// their own (a miss without a lead).
func TestStampedeAbandonHandsOver(t *testing.T) {
	c := newCache(t, cache.Options{})
	k := key("o", "abandon")
	cr := startCrowd(ctx, c, k, 100)
	first := cr.lead(t, c, k, 99)
	first.Abandon()
	first.Abandon() // a second call does nothing
	second := cr.lead(t, c, k, 98)
	second.Abandon()
	third := cr.lead(t, c, k, 97)
	third.Abandon()
	for range 97 {
		if r := <-cr.out; r.hit {
			t.Fatal("a hit after every leader abandoned")
		}
	}
	select {
	case <-cr.leads:
		t.Fatal("a fourth lead granted")
	default:
	}
	// The key is free again: the next request leads.
	if _, hit, l := c.Begin(ctx, k); hit || l == nil {
		t.Fatalf("Begin after the abandons: hit %v, lead %v", hit, l)
	} else {
		l.Abandon()
	}
}

// TestStampedeSuccessorFills: the waiter that took over fills for the
// rest.
func TestStampedeSuccessorFills(t *testing.T) {
	m := &metrics{}
	c := newCache(t, cache.Options{Metrics: m})
	k := key("o", "successor")
	cr := startCrowd(ctx, c, k, 10)
	cr.lead(t, c, k, 9).Abandon()
	cr.lead(t, c, k, 8).Fill(sampleEntry("late"), time.Minute)
	for range 8 {
		if r := <-cr.out; !r.hit || r.e.Content() != "late" {
			t.Fatalf("follower: %+v", r)
		}
	}
}

func TestFollowerGivesUp(t *testing.T) {
	t.Run("context done", func(t *testing.T) {
		c := newCache(t, cache.Options{})
		k := key("o", "ctx")
		_, _, lead := c.Begin(ctx, k)
		defer lead.Abandon()
		cctx, cancel := context.WithCancel(ctx)
		cr := startCrowd(cctx, c, k, 1)
		waitFor(t, func() bool { return c.Waiters(k) == 1 }, "the follower")
		cancel()
		if r := <-cr.out; r.hit {
			t.Fatal("hit without a fill")
		}
		if len(cr.leads) != 0 {
			t.Fatal("the follower took the lead from a live leader")
		}
	})
	t.Run("MaxWait", func(t *testing.T) {
		c := newCache(t, cache.Options{MaxWait: time.Millisecond})
		k := key("o", "maxwait")
		_, _, lead := c.Begin(ctx, k)
		defer lead.Abandon()
		e, hit, l := c.Begin(ctx, k)
		if hit || l != nil || e.Body != nil {
			t.Fatalf("after MaxWait: hit %v, lead %v", hit, l)
		}
	})
}

// TestLostLeaderReplaced: a leader that never fills holds the key for at
// most MaxWait by the clock; then a new request leads, and the lost
// leader's late Fill or Abandon does not disturb the new flight.
func TestLostLeaderReplaced(t *testing.T) {
	clock := newClock()
	c := newCache(t, cache.Options{Clock: clock.Now, MaxWait: time.Minute})
	k := key("o", "lost")
	_, _, lost := c.Begin(ctx, k)
	if lost == nil {
		t.Fatal("no lead")
	}
	clock.Advance(time.Minute + time.Second)
	_, hit, fresh := c.Begin(ctx, k)
	if hit || fresh == nil {
		t.Fatalf("after the lost leader's MaxWait: hit %v, lead %v", hit, fresh)
	}
	cr := startCrowd(ctx, c, k, 1)
	waitFor(t, func() bool { return c.Waiters(k) == 1 }, "a follower of the new leader")
	lost.Abandon()
	if c.Waiters(k) != 1 {
		t.Fatal("the lost leader's Abandon released the new flight")
	}
	fresh.Fill(sampleEntry("fresh"), time.Minute)
	if r := <-cr.out; !r.hit || r.e.Content() != "fresh" {
		t.Fatalf("follower: %+v", r)
	}
}

// TestFillWithoutTTL hands the entry to the waiters but stores nothing.
func TestFillWithoutTTL(t *testing.T) {
	c := newCache(t, cache.Options{})
	k := key("o", "no ttl")
	cr := startCrowd(ctx, c, k, 3)
	cr.lead(t, c, k, 2).Fill(sampleEntry("once"), 0)
	for range 2 {
		if r := <-cr.out; !r.hit {
			t.Fatal("follower missed")
		}
	}
	if _, hit, l := c.Begin(ctx, k); hit || l == nil {
		t.Fatalf("Begin after a Fill without TTL: hit %v, lead %v", hit, l)
	} else {
		l.Abandon()
	}
}

func TestNilLead(t *testing.T) {
	var l *cache.Lead
	l.Fill(cache.Entry{}, time.Minute)
	l.Abandon()
}
