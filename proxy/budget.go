package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/accounting/tokens"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/policy/budget"
	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/llm"
)

// budgetMetrics exports what the budget stage observes.
type budgetMetrics struct{ m *Metrics }

func (b budgetMetrics) Alert(p budget.Period, threshold int) {
	b.m.BudgetAlerts.WithLabelValues(string(p), strconv.Itoa(threshold)).Inc()
}

func (b budgetMetrics) Refused(p budget.Period, a budget.Action) {
	b.m.BudgetRefusals.WithLabelValues(string(p), a.String()).Inc()
}

func (b budgetMetrics) Delivered(ok bool) {
	r := "ok"
	if !ok {
		r = "failed"
	}
	b.m.BudgetWebhooks.WithLabelValues(r).Inc()
}

func (b budgetMetrics) SharedBackend(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	b.m.BudgetBackendUp.Set(v)
}

// defaultReserveOutput is the output a budget reserves for a chat request
// that sets no max_tokens, when neither the target nor the org says more.
const defaultReserveOutput = quota.DefaultOutputTokens

// budgetStage is one generation's budget gate in the pipeline's shape. It
// reserves a request's largest possible cost: its prompt (counted exactly
// for OpenAI encodings, else bounded by one token per byte) plus its
// output cap, at the dearest of the model's targets (failover may land on
// any of them). Immutable; safe for concurrent use.
type budgetStage struct {
	gate    *budget.Gate
	output  map[string]int // orgs with a budget -> output tokens reserved without max_tokens
	models  map[string]*Model
	prices  *prices.Table
	counter func() *tokens.Counter
	// fit, when set, is the cost-aware path: it compresses a request to
	// at most a number of prompt tokens, for orgs that opted in.
	fit budgetFitter
}

// budgetFitter compresses x to at most maxPrompt prompt tokens when x's
// org opted in, reporting whether it now fits.
type budgetFitter interface {
	FitBudget(x *policy.Exchange, maxPrompt int) bool
}

// Reserve holds x's maximum cost in its org's budget. An org without a
// budget reserves nothing (a nil Reservation). When the budget is spent
// and the org downgrades, x.Model is switched to the cheaper model and
// x.DowngradedFrom set; the caller re-resolves the model.
func (b *budgetStage) Reserve(ctx context.Context, x *policy.Exchange) (Reservation, error) {
	out, ok := b.output[x.Principal.Org]
	if !ok {
		return nil, nil
	}
	req := budget.Request{ID: x.RequestID, Org: x.Principal.Org, Cost: b.maxCost(x, out, 0), Priority: x.Priority}
	h, err := b.gate.Reserve(ctx, req)
	var ex *budget.Exhausted
	if errors.As(err, &ex) && b.fit != nil && x.Chat != nil {
		if h2, err2 := b.compressToFit(ctx, x, req, ex, out); h2 != nil || err2 != nil {
			h, err = h2, err2
		}
		if !errors.As(err, &ex) {
			ex = nil
		}
	}
	if ex != nil && ex.Action == budget.Downgrade && ex.DowngradeTo != x.Model && b.models[ex.DowngradeTo] != nil {
		from := x.Model
		x.Model = ex.DowngradeTo
		req.Cost, req.Downgraded = b.maxCost(x, out, 0), true
		if h, err = b.gate.Reserve(ctx, req); err == nil {
			x.DowngradedFrom = from
		} else {
			x.Model = from
		}
	}
	if err != nil {
		return nil, budgetError(err)
	}
	if h == nil {
		return nil, nil
	}
	return budgetHold{h}, nil
}

// compressToFit is the cost-aware path for a request ex refused: it
// compresses x to the longest prompt the remaining budget still pays for
// (with the output x reserves, at the dearest target) and reserves again.
// The second reservation prices x's re-counted prompt, so for targets
// whose prompt is only bounded (one token per byte) it may refuse again.
// It returns (nil, nil) when nothing was tried or compression could not
// fit the prompt: the first refusal then stands.
func (b *budgetStage) compressToFit(ctx context.Context, x *policy.Exchange, req budget.Request, ex *budget.Exhausted, out int) (*budget.Hold, error) {
	left := ex.Limit - ex.Spent - ex.Reserved
	if left <= 0 {
		return nil, nil
	}
	// The largest prompt n with costAt(n) <= left: cost grows with n.
	lo, hi := 0, max(x.EstimatedPromptTokens, 1)
	if b.maxCost(x, out, hi) <= left {
		hi = 1 << 24 // the estimate is below the truth: search wider
	}
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if b.maxCost(x, out, mid) <= left {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 || !b.fit.FitBudget(x, lo) {
		return nil, nil
	}
	req.Cost = b.maxCost(x, out, 0)
	return b.gate.Reserve(ctx, req)
}

// budgetError is the client-facing refusal: 429 insufficient_quota for a
// spent budget (not retryable: it only frees up with the next period or
// a higher budget), 503 while the shared backend is down for an org that
// fails closed.
func budgetError(err error) error {
	var ex *budget.Exhausted
	switch {
	case errors.As(err, &ex):
		return &llm.Error{Kind: llm.KindQuotaExceeded, Code: "insufficient_quota", Msg: ex.Error() +
			" Ask your administrator to raise it, or wait for the next period.", Err: err}
	case errors.Is(err, budget.ErrUnavailable):
		return &llm.Error{Kind: llm.KindUnavailable, Code: "budget_unavailable", Retryable: true,
			Msg: "The gateway cannot check budgets right now. Please retry shortly.", Err: err}
	}
	return llm.AsError(err)
}

// maxCost is the most x can cost at any of its model's targets. A
// positive prompt replaces the prompt's own count.
func (b *budgetStage) maxCost(x *policy.Exchange, defaultOut, prompt int) accounting.MicroUSD {
	m := b.models[x.Model]
	if m == nil {
		return 0
	}
	var exact, upper int // prompt counts, computed when first needed
	var most accounting.MicroUSD
	for _, t := range m.Targets {
		var u llm.Usage
		switch {
		case x.Chat != nil:
			if prompt > 0 {
				u.PromptTokens = prompt
			} else if tokens.EncodingFor(t.Model) != tokens.None {
				if exact == 0 {
					exact = b.counter().CountRequest(t.Model, x.Chat)
				}
				u.PromptTokens = exact
			} else {
				if upper == 0 {
					upper = tokens.UpperBound(t.Model, x.Chat)
				}
				u.PromptTokens = upper
			}
			if n, ok := x.Chat.MaxOutputTokens(); ok {
				u.CompletionTokens = n
			} else if t.DefaultMaxTokens > 0 {
				u.CompletionTokens = t.DefaultMaxTokens
			} else if t.Type == configs.ProviderAnthropic {
				u.CompletionTokens = anthropic.DefaultMaxTokens // what the adapter sends
			} else {
				u.CompletionTokens = defaultOut
			}
		case x.Embeddings != nil:
			if upper == 0 {
				upper = len(x.Embeddings.Input) + 1 // never fewer tokens than bytes of JSON
			}
			u.PromptTokens = upper
		}
		if p, ok := b.prices.ForTarget(&t.Target); ok {
			most = max(most, p.Cost(u))
		}
	}
	return most
}

// budgetHold adapts a *budget.Hold to the pipeline's Reservation.
type budgetHold struct{ h *budget.Hold }

func (b budgetHold) Commit(ctx context.Context, _ llm.Usage, cost accounting.MicroUSD) error {
	return b.h.Commit(ctx, cost)
}

func (b budgetHold) Release(ctx context.Context) error { return b.h.Release(ctx) }

// buildBudget turns the orgs' budgets into a gate over the server's keeper.
// It returns nil when no org has a budget.
func buildBudget(k *budget.Keeper, pol *configs.Policy, rt *Runtime, counter func() *tokens.Counter) (*budgetStage, error) {
	st := &budgetStage{output: map[string]int{}, models: rt.models, prices: rt.prices, counter: counter}
	var orgs []budget.OrgPolicy
	for i := range pol.Orgs {
		o := &pol.Orgs[i]
		if o.Budget.IsZero() {
			continue
		}
		op, err := orgBudget(o)
		if err != nil {
			return nil, fmt.Errorf("org %s: budget: %w", o.ID, err)
		}
		orgs = append(orgs, op)
		out := o.Output.DefaultMaxTokens
		if out <= 0 {
			out = defaultReserveOutput
		}
		st.output[o.ID] = out
	}
	if len(orgs) == 0 {
		return nil, nil
	}
	if rt.prices == nil {
		return nil, errors.New("budgets need a price table")
	}
	g, err := k.NewGate(orgs)
	if err != nil {
		return nil, err
	}
	st.gate = g
	return st, nil
}

func orgBudget(o *configs.Org) (budget.OrgPolicy, error) {
	b := &o.Budget
	op := budget.OrgPolicy{Org: o.ID, Thresholds: b.Alerts, DowngradeTo: b.DowngradeTo,
		MinPriority: int(quota.ClassPriorityMode)}
	for _, f := range []struct {
		v   configs.Decimal
		dst *accounting.MicroUSD
	}{{b.Monthly, &op.Monthly}, {b.Daily, &op.Daily}} {
		if f.v.IsZero() {
			continue
		}
		v, err := accounting.ParseMicros(string(f.v))
		if err != nil {
			return op, err
		}
		*f.dst = accounting.MicroUSD(v)
	}
	switch b.OnExhausted {
	case configs.BudgetDowngrade:
		op.OnExhausted = budget.Downgrade
	case configs.BudgetPriorityOnly:
		op.OnExhausted = budget.PriorityOnly
	default:
		op.OnExhausted = budget.Refuse
	}
	switch o.FailMode {
	case configs.FailOpen:
		op.FailMode = budget.FailOpen
	case configs.FailClosed:
		op.FailMode = budget.FailClosed
	default:
		op.FailMode = budget.FailLocal
	}
	if o.Timezone != "" {
		loc, err := time.LoadLocation(o.Timezone)
		if err != nil {
			return op, err
		}
		op.Location = loc
	}
	for _, w := range b.Webhooks {
		op.Webhooks = append(op.Webhooks, w.Value())
	}
	return op, nil
}
