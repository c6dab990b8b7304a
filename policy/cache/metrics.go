package cache

// Tiers named in Metrics.Lookup.
const (
	TierL1 = "l1" // in-process (ristretto)
	TierL2 = "l2" // shared (Redis)
)

// Metrics receives what the cache observes; the proxy exports it (for
// example aigw_cache_lookups_total{tier,result}). Calls are synchronous,
// from the requests' goroutines: implementations must be fast, safe for
// concurrent use, and must not call back into the cache. A nil Metrics in
// Options means none.
type Metrics interface {
	// Lookup counts one lookup in tier (TierL1, TierL2) and its result. A
	// request that misses L1 and then hits L2 counts one of each; L2 is
	// not counted when there is no Redis, and counts a miss while it is
	// skipped after failures.
	Lookup(tier string, hit bool)
	// Coalesced counts one request answered with the entry another
	// request of this process was filling (no lookup, no upstream call).
	Coalesced()
	// RedisError counts one failed Redis call (op "get" or "set"),
	// timeouts included; the request went on as after a miss.
	RedisError(op string)
}

type nopMetrics struct{}

func (nopMetrics) Lookup(string, bool) {}
func (nopMetrics) Coalesced()          {}
func (nopMetrics) RedisError(string)   {}
