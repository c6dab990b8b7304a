package budget

import (
	"context"
	"sync/atomic"

	"github.com/aigw/aigw/accounting"
)

// Hold is an admitted request's reservation of its maximum cost in every
// period of its org's budget. Settle it exactly once: Commit when the
// request ran (its actual cost replaces the reservation), Release when it
// did not. Later calls do nothing and return nil. Settling does not depend
// on ctx's cancellation (a client that went away still gets its refund)
// but is bounded by the backend's timeout. A Hold may be settled from any
// goroutine. A hold never settled expires after Options.HoldTTL.
//
// A nil *Hold is valid: every method does nothing.
type Hold struct {
	k       *Keeper
	plan    *orgPlan
	id      string
	cost    int64
	over    bool
	via     via
	n       int
	acct    [maxPeriods]*account
	settled atomic.Bool
}

// OverBudget reports whether the hold was admitted past an exhausted
// budget (PriorityOnly with a high enough priority).
func (h *Hold) OverBudget() bool { return h != nil && h.over }

// Commit settles the hold with the request's actual cost: the reservation
// is removed and actual is added to the spend of every period in full,
// also when it exceeds the reservation (a negative actual counts as 0).
// The period is the one the request was admitted in. Each threshold the
// committed spend reaches for the first time in a period fires an alert.
// When the hold was reserved on Redis and Redis cannot be reached, the
// commit is lost from the shared state (the hold there expires) and an
// error wrapping ErrUnavailable is returned.
func (h *Hold) Commit(ctx context.Context, actual accounting.MicroUSD) error {
	if h == nil || !h.settled.CompareAndSwap(false, true) {
		return nil
	}
	k := h.k
	o := h.op(opCommit)
	o.amount = int64(min(max(actual, 0), MaxLimit))
	if err := k.exec(context.WithoutCancel(ctx), &o); err != nil {
		return err
	}
	for i := 0; i < o.n; i++ {
		if o.flags[i] == 0 {
			continue
		}
		a := o.acct[i]
		for j, t := range a.thr {
			if o.flags[i]&(1<<j) != 0 {
				k.alert(Alert{Org: o.org, Period: a.period, PeriodStart: a.start, Threshold: t,
					Spent: accounting.MicroUSD(o.spent[i]), Limit: accounting.MicroUSD(a.limit), Time: o.now,
					Webhooks: h.plan.pol.Webhooks})
			}
		}
	}
	return nil
}

// Release settles the hold giving the whole reservation back.
func (h *Hold) Release(ctx context.Context) error {
	if h == nil || !h.settled.CompareAndSwap(false, true) {
		return nil
	}
	o := h.op(opRelease)
	return h.k.exec(context.WithoutCancel(ctx), &o)
}

func (h *Hold) op(kind opKind) op {
	return op{kind: kind, org: h.plan.pol.Org, now: h.k.clock(), holdID: h.id, fail: h.plan.pol.FailMode,
		n: h.n, acct: h.acct, via: h.via}
}
