// Package quota is the admission stage that enforces rate limits and daily
// quotas per organisation and per key, identically whether one gateway runs
// or several share one Redis.
//
// # Model
//
// Each org has a Tier (a named template of Limits: requests per minute,
// tokens per minute and per hour, requests and tokens per calendar day, each
// optional) with per-field overrides, optional per-key Limits, Schedules
// that change its limits on date ranges (a peak season), a PriorityMode (a
// time-boxed critical period with higher limits and first place in the
// queue), a Queue, a FailMode and a time zone. Rates use GCRA (see Limit for
// the exact guarantee); daily quotas are calendar-day counters reset at
// midnight in the org's zone. Any limit can be a Shadow limit: counted and
// reported, never refusing.
//
// Every decision checks all of a request's limits (its org's and its key's)
// and consumes all or none, atomically: in process under one mutex per org
// (Memory), or in one Lua script, one round trip, in Redis (Redis).
//
// # Use
//
// The Limiter is created once per process and keeps the state; each policy
// generation becomes a Gate:
//
//	lim := quota.New(backend, quota.Options{Metrics: m})   // NewMemory() or NewRedis(client, cfg)
//	gate, err := lim.NewGate(quota.Policies{Orgs: orgs})  // on every reload
//
//	hold, err := gate.Reserve(ctx, x)                     // admission: 1 request + estimated tokens
//	if err != nil {                                       // *llm.Error: 429 (or 503 when failing closed)
//		if d, ok := quota.DecisionOf(err); ok { d.Headers(set) }
//		return err
//	}
//	hold.Decision().Headers(set)                          // x-ratelimit-* on every answer
//	...
//	hold.Commit(ctx, usage) // or hold.Release(ctx) when the request did not run
//
// # Time
//
// Decisions use the gateway's clock (Options.Clock), also with Redis, so
// that tests can use a fake clock (package quotatest) against either
// backend. Replicas sharing Redis should keep their clocks synchronised
// (NTP): a replica whose clock runs δ ahead can admit at most δ·rate more
// than the limit; one running behind is stricter, never looser.
package quota
