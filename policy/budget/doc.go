// Package budget is the admission stage that enforces per-organisation
// spend budgets, per calendar day and per calendar month, in integer
// micro-USD (accounting.MicroUSD), identically whether one gateway runs or
// several share one Redis.
//
// # Model
//
// Each org may have a daily and a monthly budget; the periods are calendar
// days and months in the org's Location, and each (org, period, start) is
// an account of its own: a new day or month starts from nothing (or from
// what the SpendSource reports) and re-arms its alerts. An account holds
// the committed spend, the total reserved by unsettled holds, and the
// holds themselves, each expiring after Options.HoldTTL.
//
// Admission reserves the request's maximum cost in every period of its
// org, all or none, atomically: admitted iff spent + reserved + cost <=
// limit in each (a zero cost needs one µUSD of room). The request's actual
// cost then replaces the reservation (Commit), or the reservation is given
// back (Release). A request the budget cannot hold is refused with
// *Exhausted, told to retry at a cheaper model (Downgrade), or, for
// PriorityOnly orgs, admitted past the budget when its priority is high
// enough.
//
// # Overspend bound
//
// Reservations are checked and taken atomically, so concurrent requests
// can never overspend a period beyond
//
//	Σ over in-flight requests of max(0, actual − reserved)  +  PriorityOnly admissions past the budget
//
// which is zero when every request's actual cost is at most its
// reservation and no request was admitted past the budget. Outside that
// bound are only: a request that outlives HoldTTL (its hold expires, so
// its whole actual cost counts as unreserved), and an outage of the shared
// backend, during which FailOpen admits unreserved and FailLocal enforces
// each replica's local state separately (each may spend up to what the
// budget had left, or the whole budget without a SpendSource).
//
// # Alerts
//
// Thresholds (percents, default 80, 90, 100) fire on committed spend: the
// commit after which spent·100 >= threshold·limit fires the threshold's
// alert, once per account — across replicas on Redis (a HSETNX on the
// account's expiring hash), per process on Memory. A period's first
// refusal fires one Exhausted alert. Alerts go to Options.Notifier
// (Webhooks posts them) and are counted in Metrics.
//
// # Use
//
//	k := budget.New(backend, budget.Options{Notifier: hooks, Metrics: m, Seed: ledger}) // NewMemory() or NewRedis(client, cfg)
//	gate, err := k.NewGate(orgs)                                                       // on every reload
//
//	hold, err := gate.Reserve(ctx, budget.Request{ID: id, Org: org, Cost: maxCost})
//	var ex *budget.Exhausted
//	switch {
//	case errors.As(err, &ex) && ex.Action == budget.Downgrade: // retry at ex.DowngradeTo with Downgraded: true
//	case err != nil:                                           // 429 insufficient_quota (or 503: ErrUnavailable)
//	}
//	...
//	hold.Commit(ctx, actualCost) // or hold.Release(ctx) when the request did not run
//
// # Time
//
// Periods, hold expiry and alerts use the Keeper's clock (Options.Clock),
// also on Redis (the script takes "now" from its arguments), so tests can
// use a fake clock against either backend. Replicas sharing Redis should
// keep their clocks synchronised (NTP): skew moves period boundaries and
// hold expiry by as much.
package budget
