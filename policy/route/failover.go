package route

import (
	"time"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

// Failover drives one request's attempts over a Table's plan, up to the
// commit point. It holds the breaker permit of the attempt in progress,
// keeps the in-flight counts that StrategyLeastBusy reads, feeds every
// outcome back to the target's breaker and TTFB EWMA, applies the
// RetryPolicy and records failover events.
//
// A Failover is owned by one goroutine. The zero value is ready for Begin;
// a Failover may be reused for another request after the previous one
// ended (its plan buffer is kept, so reuse does not allocate).
//
// Contract: after Begin, call Next; every Next that returns ok must be
// followed by exactly one Done before the next Next. Stop calling Next once
// Done returns again == false (Next then returns ok == false anyway). A
// caller that abandons the request between Next and Done (the client went
// away) must still call Done, with the error it got (an llm.KindCanceled
// error leaves the breaker alone).
type Failover struct {
	t      *Table
	order  []int
	forced bool // admit past the breakers (pinned or last-resort plan)
	pos    int  // the plan entry being tried

	attempts  int
	retries   int // same-target retries made on order[pos]
	firstFail time.Time

	cur  int // target of the attempt in progress, -1 when none
	tk   ticket
	prev int // target of the last failed attempt, -1 once its failover is recorded
	last *llm.Error
	done bool
}

// Begin plans x on t into f, replacing any previous request's state. It
// returns Plan's refusals (403, 400, context length) as *llm.Error; the
// request must then not be sent anywhere. Begin panics if f still has an
// attempt in progress (Next without Done).
func (t *Table) Begin(f *Failover, x *policy.Exchange) error {
	if f.cur >= 0 && f.t != nil {
		panic("route: Table.Begin called during an attempt")
	}
	order, forced, err := t.plan(f.order[:0], x)
	*f = Failover{t: t, order: order, forced: forced, cur: -1, prev: -1}
	if err != nil {
		f.done = true
		f.last = llm.AsError(err)
		return f.last
	}
	return nil
}

// Next returns the index (into the table's targets) of the target to try
// now, taking its breaker permit; ok is false when no attempt is left.
// Targets whose breaker refuses (a half-open target whose probe slots are
// taken, or one that opened since the plan was made) are passed over.
func (f *Failover) Next() (i int, ok bool) {
	if f.cur >= 0 {
		panic("route: Failover.Next called before Done")
	}
	for !f.done && f.pos < len(f.order) {
		i = f.order[f.pos]
		tk, ok := f.t.states[i].acquire(f.forced)
		if !ok {
			f.pos++
			f.retries = 0
			continue
		}
		if f.prev >= 0 && f.prev != i {
			f.t.reg.failover(f.t.states[f.prev], f.t.states[i], f.last)
		}
		f.prev = -1
		f.cur, f.tk = i, tk
		return i, true
	}
	f.done = true
	return -1, false
}

// Done ends the attempt Next started. err is nil when the upstream
// answered with a status and headers the proxy will relay (the commit point
// follows), otherwise the attempt's error, preferably an *llm.Error (a nil
// *llm.Error, as the proxy's send returns, counts as nil). ttfb is
// the time from sending to the answer's headers; it feeds the target's EWMA
// on success.
//
// When again is true the caller should wait delay (zero when moving to
// another target; a backoff or a short Retry-After before a same-target
// retry), honouring its own cancellation, then call Next. When again is
// false the request is over: answered (err == nil) or failed, see Err.
func (f *Failover) Done(err error, ttfb time.Duration) (delay time.Duration, again bool) {
	i := f.cur
	if i < 0 {
		panic("route: Failover.Done called without Next")
	}
	f.cur = -1
	err = nilIfTypedNil(err)
	f.t.states[i].release(f.tk, err, ttfb)
	f.attempts++
	if err == nil {
		f.last = nil
		f.done = true
		return 0, false
	}
	f.last = llm.AsError(err)
	f.prev = i
	now := f.t.reg.now()
	if f.firstFail.IsZero() {
		f.firstFail = now
	}
	act, d := f.t.retry.decide(f.last, f.attempts, f.retries, now.Sub(f.firstFail))
	switch act {
	case same:
		f.retries++
		return d, true
	case next:
		f.pos++
		f.retries = 0
		if f.pos < len(f.order) {
			return 0, true
		}
	}
	f.done = true
	return 0, false
}

// Attempts returns how many attempts Done has seen.
func (f *Failover) Attempts() int { return f.attempts }

// Err returns what the client should get once the loop ended without a
// success: nil after a success; the error itself when it is Fatal (a
// client error the upstream reported, or a refusal from Begin); otherwise
// a gateway error carrying the last upstream's reason (its message,
// provider, status and Retry-After, with the original as Err): KindTimeout
// (504) after a timeout, KindUnavailable (503) after rate limits, exhausted
// quota, overload or refused connections, KindUpstream (502) otherwise; and
// KindUnavailable when no attempt could be made at all.
func (f *Failover) Err() *llm.Error {
	e := f.last
	if e == nil {
		if f.attempts > 0 {
			return nil
		}
		model := ""
		if f.t != nil {
			model = f.t.model
		}
		return &llm.Error{Kind: llm.KindUnavailable, Retryable: true,
			Msg: "No upstream of the model `" + model + "` is available right now."}
	}
	if f.t.retry.Classify(e) == Fatal {
		return e
	}
	k := llm.KindUpstream
	switch e.Kind {
	case llm.KindTimeout:
		k = llm.KindTimeout
	case llm.KindRateLimit, llm.KindQuotaExceeded, llm.KindOverloaded, llm.KindUnavailable:
		k = llm.KindUnavailable
	}
	msg := e.Msg
	if msg == "" {
		msg = "The upstream failed."
	}
	return &llm.Error{Kind: k, Provider: e.Provider, Status: e.Status, RetryAfter: e.RetryAfter,
		Retryable: true, Msg: msg, Err: e}
}

// nilIfTypedNil turns a nil *llm.Error stored in an error into a nil error.
func nilIfTypedNil(err error) error {
	if e, ok := err.(*llm.Error); ok && e == nil {
		return nil
	}
	return err
}
