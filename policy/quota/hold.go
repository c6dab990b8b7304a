package quota

import (
	"context"
	"sync/atomic"

	"github.com/aigw/aigw/providers/llm"
)

// Hold is an admitted request's reservation: one request and its estimated
// tokens, taken from every applicable limit. Settle it exactly once, with
// Commit (the request ran: its actual usage replaces the estimate, refunding
// what it did not use or charging what it used beyond) or Release (it did
// not run: everything is given back). Later calls do nothing and return
// nil. Settling does not depend on ctx's cancellation (a client that went
// away still gets its refund) but is bounded by the backend's timeout. A
// Hold may be settled from any goroutine.
type Hold struct {
	l   *Limiter
	org string
	// b is the take's rules and state; nil for an org without a plan, so
	// that the common unlimited admission is one small allocation rather
	// than one the size of a batch (about 2 KiB).
	b        *batch
	d        Decision
	consumed uint16 // rules the take consumed
	settled  atomic.Bool
}

// Decision returns the admission's decision (for the x-ratelimit-*
// headers). It is not modified by settling.
func (h *Hold) Decision() *Decision { return &h.d }

// Commit settles the hold with the request's actual usage: its total
// tokens (TotalTokens, or prompt plus completion when the total is
// missing) replace the estimate in every token limit. A zero Usage counts
// as zero tokens: pass the gateway's own estimate when the upstream
// reported none.
func (h *Hold) Commit(ctx context.Context, u llm.Usage) error {
	t := u.TotalTokens
	if t <= 0 {
		t = u.PromptTokens + u.CompletionTokens
	}
	return h.CommitTokens(ctx, int64(t))
}

// CommitTokens is Commit with a token count.
func (h *Hold) CommitTokens(ctx context.Context, tokens int64) error {
	if !h.settled.CompareAndSwap(false, true) || h.l == nil {
		return nil
	}
	tokens = max(tokens, 0)
	var delta [maxRules]int64
	refund, changed := false, false
	for i := 0; i < h.b.n; i++ {
		r := &h.b.rules[i]
		if h.consumed&(1<<i) == 0 || !r.tokens {
			continue
		}
		dt := tokens - r.need
		if dt == 0 {
			continue
		}
		changed, refund = true, refund || dt < 0
		if r.counter {
			delta[i] = dt
		} else {
			delta[i] = scaled(dt, r.spec.unit)
		}
	}
	if !changed {
		return nil
	}
	return h.adjust(ctx, &delta, refund)
}

// Release settles the hold giving everything back: the request and all
// its reserved tokens.
func (h *Hold) Release(ctx context.Context) error {
	if !h.settled.CompareAndSwap(false, true) || h.l == nil || h.consumed == 0 {
		return nil
	}
	var delta [maxRules]int64
	for i := 0; i < h.b.n; i++ {
		if h.consumed&(1<<i) != 0 {
			delta[i] = -h.b.rules[i].cost
		}
	}
	return h.adjust(ctx, &delta, true)
}

func (h *Hold) adjust(ctx context.Context, delta *[maxRules]int64, refund bool) error {
	h.b.now = h.l.clock.Now().UnixMicro()
	err := h.l.backend.adjust(context.WithoutCancel(ctx), h.b, delta)
	if refund {
		h.l.kick(h.org)
	}
	return err
}

// scaled returns n·unit clamped to ±maxExact.
func scaled(n, unit int64) int64 {
	lim := maxExact / unit
	switch {
	case n > lim:
		return maxExact
	case n < -lim:
		return -maxExact
	}
	return n * unit
}
