// Package cache is the admission stage's exact response cache: a chat
// completion answered once is answered again, byte for byte, for the same
// canonical request from the same organisation, without an upstream call.
//
// # Keys
//
// KeyOf hashes (sha256) the organisation, the model alias and the canonical
// form of every request field that can change the answer; see KeyOf for the
// exact list. Every key is namespaced by org: one org can never read an
// entry another org's request produced. Whether the client streams does not
// change the key, so a stream can be answered from an entry filled by a JSON
// answer and the other way round (Entry.Chunks, Entry.Content). Cacheable
// decides, per policy Rule, whether a request is worth looking up at all.
//
// # Tiers
//
// A Cache has an in-process L1 (ristretto, bounded by Options.MaxBytes with
// each entry's encoded size as its cost) and an optional Redis L2 shared by
// the gateway's replicas. A lookup tries L1, then L2; an L2 hit is copied
// into L1. Both tiers are best effort: ristretto may refuse or evict any
// entry, and a Redis failure (or timeout, bounded by Options.RedisTimeout)
// reads as a miss and is logged, never failing the request. Every entry
// carries its expiry, checked against Options.Clock on every read, so an
// entry past its TTL is never returned whatever either tier still holds.
//
// # Coalescing
//
// Begin makes concurrent identical misses in one process cost one upstream
// call: the first caller becomes the leader and fills the entry (Lead.Fill)
// or gives up (Lead.Abandon); the others wait for it. Coalescing is per
// process: two replicas missing at the same instant both go upstream.
//
//	k := cache.KeyOf(p.Org, x.Model, x.Chat)
//	if cache.Cacheable(x.Chat, rule) {
//		e, hit, lead := c.Begin(ctx, k)
//		if hit {
//			return answerFrom(e) // the proxy formats JSON or SSE
//		}
//		defer lead.Abandon() // no-op once Fill ran; lead may be nil
//		resp := upstream()
//		lead.Fill(entryOf(resp), ttl)
//	}
//
// The package keeps no package-level state; a Cache is safe for concurrent
// use and is created once per process (its contents survive config
// reloads: the key includes everything that decides the answer).
package cache
