package proxy

import (
	"context"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/providers/llm"
)

// Recorder keeps the usage records of finished requests: one per request,
// idempotent on its request id. ledger.Ledger implements it. Append
// returns once the records are durable; it is safe for concurrent use.
type Recorder interface {
	Append(ctx context.Context, recs ...ledger.Record) error
}

// spend is what a finished request is accounted with: the usage its
// reservations are settled with and its record carries, and that usage's
// cost at the serving target's price. It is computed once, in finish.
type spend struct {
	usage  llm.Usage
	cost   accounting.MicroUSD
	priced bool                // false: the target has no price, cost 0 means unknown
	saved  accounting.MicroUSD // a cache hit: what the answer cost upstream
}

// spent computes x's spend: the billable usage when the request ran
// (zero otherwise) priced at the target that served it. A request that
// never reached a target spent nothing, and that is a known price.
func (x *exchange) spent(err *llm.Error, table *prices.Table) spend {
	var sp spend
	if x.cache != nil && x.cache.hit {
		sp.priced, sp.saved = true, x.savedCost(table) // no upstream was asked
		return sp
	}
	if x.ran(err) {
		sp.usage = x.billable()
	}
	t := x.target
	if t == nil {
		sp.priced = true
		return sp
	}
	if table != nil {
		if p, ok := table.ForTarget(&t.Target); ok {
			sp.cost, sp.priced = p.Cost(sp.usage), true
		}
	}
	return sp
}

// record appends x's usage record, when the server has a ledger. It is
// called once, from finish: for a non-stream answer before the handler
// returns (so before the answer's bytes go out), for a stream before its
// end ([DONE], message_stop) is sent. Either way a crash cannot lose the
// record of an answer the client received whole (see package ledger).
func (x *exchange) record(status int, err *llm.Error, sp spend) {
	s := x.s
	if s.opts.Ledger == nil || x.principal == nil {
		return // unauthenticated requests are not accounted to anyone
	}
	r := ledger.Record{RequestID: x.id, ClientRequestID: x.clientID, Time: x.start, Org: x.principal.Org, KeyID: x.principal.KeyID,
		User: x.user, Endpoint: x.route, Stream: x.stream, Status: status,
		TimeToFirstToken: x.firstToken, TotalTime: s.opts.Now().Sub(x.start)}
	if x.model != nil {
		r.ModelAlias = x.model.ID
	} else {
		r.ModelAlias = x.asked // refused before resolving: what was asked for (the ledger bounds its length)
	}
	r.SetUsage(sp.usage)
	if t := x.target; t != nil {
		r.Provider, r.UpstreamModel = t.Provider, t.Model
	}
	rate, ok := x.rt.currency[x.principal.Org]
	if !ok {
		rate = accounting.USD
	}
	r.SetCost(sp.cost, sp.priced, rate)
	x.meta.apply(&r)
	r.CacheHit, r.CostSavedUSDMicros = x.cache != nil && x.cache.hit, sp.saved
	r.TokensSaved = x.px.TokensSaved
	r.SetError(err)
	if err := s.opts.Ledger.Append(context.Background(), r); err != nil {
		s.metrics.LedgerErrors.Inc()
		s.log.Error("usage record not kept", "request_id", x.id, "error", err)
	}
}
