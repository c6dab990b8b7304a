package quota

import "context"

// Backend keeps the limits' state. NewMemory keeps it in process; NewRedis
// keeps it in Redis, shared by every replica, with a breaker and a local
// fallback. Both make the same decisions for the same inputs. A Backend is
// safe for concurrent use and outlives configuration generations.
//
// The interface is sealed: only this package implements it.
type Backend interface {
	// take evaluates every rule of b at b.now and consumes all of them or
	// none: an enforced rule over its limit refuses the batch; a shadow
	// rule over its limit is neither consumed nor refuses. It fills b's
	// results. A fallback may rewrite the rules' parameters (the local
	// share of each limit); the caller then uses them as rewritten.
	take(ctx context.Context, b *batch) error
	// adjust adds delta[i] (signed, in the rule's units) to rule i's
	// state without checking any limit, through the path that took them.
	adjust(ctx context.Context, b *batch, delta *[maxRules]int64) error
}

// via says which state a batch was decided on.
type via uint8

const (
	viaMemory via = iota // a Memory backend
	viaShared            // Redis
	viaLocal             // the local fallback while Redis is unavailable
	viaNone              // nothing: failed open
)

// maxRules: five limits for the org and five for the key.
const maxRules = 2 * int(numKinds)

// rule is one limit as the backends see it.
type rule struct {
	key     string
	counter bool  // a daily counter; else a rate
	shadow  bool  //
	cost    int64 // scaled units (rate) or count (counter), clamped so that it stays exact
	spec    rateSpec
	max     int64 // counter: the limit
	ttl     int64 // counter: ms to keep the key after writing it
	resetAt int64 // counter: µs of the next reset

	// For the decision only.
	reason Reason
	tokens bool  // counts tokens, else requests
	limit  int64 // the configured Max (per window or per day)
	need   int64 // unscaled cost
	never  bool  // need exceeds the burst or daily limit: can never pass
}

// over reports whether taking the rule's cost at level would exceed it.
func (r *rule) over(level int64) bool {
	if r.counter {
		return level+r.cost > r.max
	}
	return level+r.cost > r.spec.cap
}

// batch is one decision: the rules of one org at one instant, and the
// results the backend fills in.
type batch struct {
	org   string // hash tag: every key belongs to this org
	now   int64  // µs since the Unix epoch
	fail  FailMode
	n     int
	rules [maxRules]rule

	allowed bool
	via     via
	level   [maxRules]int64 // rate: level after draining; counter: count. Before this take.
	last    [maxRules]int64 // rate: time drained to (µs)
}
