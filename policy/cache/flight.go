package cache

import (
	"context"
	"sync/atomic"
	"time"
)

// maxHandoffs is how many times leadership of one key passes to a waiter
// after a leader abandoned; when that many successors abandoned too, the
// remaining waiters go upstream on their own rather than one after another.
const maxHandoffs = 2

// flight is one key being filled. done is closed when it resolves; e and
// ok are written before that and read after it (or under Cache.mu).
type flight struct {
	done     chan struct{}
	started  time.Time // by Clock
	handoffs int       // leaders of this key that abandoned before this one
	waiters  int       // under Cache.mu; for tests

	resolved bool // under Cache.mu: e is final, the flight only awaits removal
	ok       bool
	e        Entry
}

// Lead is the right and the duty to fill one key, granted by Begin to one
// request among those missing it at the same time. Exactly one of Fill or
// Abandon must be called; calls after the first, and calls on a nil
// *Lead, do nothing, so `defer lead.Abandon()` after Begin is always
// correct. A Lead is safe to use from any goroutine.
type Lead struct {
	c    *Cache
	k    Key
	f    *flight
	used atomic.Bool
}

// Begin looks k up in L1, then L2.
//
// On a hit it returns the entry with hit true and lead nil. On a miss, when
// no other request of this process is filling k, the caller becomes the
// leader: lead is non-nil and the caller must call lead.Fill or
// lead.Abandon exactly once (the L2 lookup is made by the leader alone, so
// waiters cost Redis nothing). When another request is filling k, Begin
// waits until it fills (and returns its entry as a hit, counted by
// Metrics.Coalesced), until ctx is done, or until MaxWait has passed; in
// the latter two cases it returns a miss with lead nil, and the caller goes
// upstream on its own (and may Set the answer).
//
// When the leader abandons, one waiter becomes the new leader (Begin
// returns it a lead) and the others wait for it; after maxHandoffs
// successive abandons, the remaining waiters return a miss with lead nil.
// After Close, Begin returns a miss with lead nil.
//
// The entry is shared with other hits: see Entry.
func (c *Cache) Begin(ctx context.Context, k Key) (e Entry, hit bool, lead *Lead) {
	if e, ok := c.getL1(k); ok {
		return e, true, nil
	}
	var timeout <-chan time.Time
	handoffs := 0
	for {
		c.mu.Lock()
		if c.isClosed() {
			c.mu.Unlock()
			return Entry{}, false, nil
		}
		f := c.flights[k]
		if f == nil || c.now().Sub(f.started) > c.maxWait {
			// Lead: none is filling k, or the one that was is presumed
			// lost (its Lead will not remove this flight).
			f = &flight{done: make(chan struct{}), started: c.now(), handoffs: handoffs}
			c.flights[k] = f
			c.mu.Unlock()
			l := &Lead{c: c, k: k, f: f}
			if e, ok := c.getL2(ctx, k); ok {
				l.resolve(e, true)
				return e, true, nil
			}
			return Entry{}, false, l
		}
		if f.resolved {
			e := f.e
			c.mu.Unlock()
			c.m.Coalesced()
			return e, true, nil
		}
		f.waiters++
		c.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(c.maxWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-f.done:
		case <-ctx.Done():
		case <-timeout:
		}
		c.mu.Lock()
		f.waiters--
		c.mu.Unlock()
		select {
		case <-f.done:
		default:
			return Entry{}, false, nil // ctx done or MaxWait passed
		}
		if f.ok {
			c.m.Coalesced()
			return f.e, true, nil
		}
		if f.handoffs >= maxHandoffs {
			return Entry{}, false, nil
		}
		handoffs = f.handoffs + 1
	}
}

// Fill gives the leader's answer to every request waiting for it and
// stores e under the key for ttl (by Clock) in both tiers, as Set does; ttl
// <= 0 only hands e to the waiters. e becomes the cache's (see Entry).
// Fill returns when the entry is stored (the Redis write bounded by
// RedisTimeout); the waiters are released before that.
func (l *Lead) Fill(e Entry, ttl time.Duration) {
	if l == nil || !l.used.CompareAndSwap(false, true) {
		return
	}
	c := l.c
	c.mu.Lock()
	l.f.e, l.f.ok, l.f.resolved = e, true, true
	c.mu.Unlock()
	close(l.f.done)
	// The resolved flight stays in place, answering late arrivals, until
	// the tiers hold the entry.
	if ttl > 0 {
		c.Set(context.Background(), l.k, e, ttl)
	}
	c.mu.Lock()
	if c.flights[l.k] == l.f {
		delete(c.flights, l.k)
	}
	c.mu.Unlock()
}

// Abandon gives up filling the key (the upstream failed, the client went
// away, the answer is not cacheable). One waiting request, if any, becomes
// the leader in its place; see Begin.
func (l *Lead) Abandon() {
	if l == nil || !l.used.CompareAndSwap(false, true) {
		return
	}
	l.resolve(Entry{}, false)
}

// resolve ends the flight with (e, ok) without storing anything.
func (l *Lead) resolve(e Entry, ok bool) {
	l.used.Store(true)
	c := l.c
	c.mu.Lock()
	l.f.e, l.f.ok, l.f.resolved = e, ok, ok
	if c.flights[l.k] == l.f {
		delete(c.flights, l.k)
	}
	c.mu.Unlock()
	close(l.f.done)
}

func (c *Cache) isClosed() bool {
	c.life.RLock()
	defer c.life.RUnlock()
	return c.closed
}
