package proxy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/tokens"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/providers/llm"
)

// quotaMetrics exports what the quota stage observes.
type quotaMetrics struct{ m *Metrics }

func (q quotaMetrics) Refused(r quota.Reason, shadow bool) {
	q.m.QuotaRejections.WithLabelValues(string(r), strconv.FormatBool(shadow)).Inc()
}

func (q quotaMetrics) QueueDepth(org string, n int) {
	q.m.QuotaQueueDepth.WithLabelValues(org).Set(float64(n))
}

func (q quotaMetrics) SharedBackend(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	q.m.QuotaBackendUp.Set(v)
}

// quotaStage is one generation's quota gate in the pipeline's shape. It
// counts a request's prompt tokens (for the token limits' reservation) only
// for orgs that have a token limit somewhere in their policy, so that orgs
// limited by requests alone pay nothing for counting. Immutable; safe for
// concurrent use.
type quotaStage struct {
	gate *quota.Gate
	// countTokens lists the orgs with a token limit.
	countTokens map[string]bool
	counter     func() *tokens.Counter
}

// Reserve estimates x's prompt tokens when its org needs them and reserves
// one request and the estimated tokens. The *quota.Hold it returns is the
// Reservation; its Decision carries the x-ratelimit-* headers.
func (q *quotaStage) Reserve(ctx context.Context, x *policy.Exchange) (Reservation, error) {
	if x.Principal != nil && q.countTokens[x.Principal.Org] && x.EstimatedPromptTokens == 0 {
		c := q.counter()
		switch {
		case x.Chat != nil:
			x.EstimatedPromptTokens = c.CountRequest(x.Model, x.Chat)
		case x.Embeddings != nil:
			x.EstimatedPromptTokens = c.CountEmbeddingInput(x.Model, x.Embeddings.Input)
		}
	}
	h, err := q.gate.Reserve(ctx, x)
	if err != nil {
		return nil, err
	}
	// The decided class (tier, priority mode, emergency key) is what later
	// stages see: a budget admits priority requests past its limit.
	x.Priority = max(x.Priority, int(h.Decision().Class))
	return quotaHold{h}, nil
}

// quotaHold adapts a *quota.Hold to the pipeline's Reservation; quotas
// settle on tokens, not cost.
type quotaHold struct{ *quota.Hold }

func (q quotaHold) Commit(ctx context.Context, u llm.Usage, _ accounting.MicroUSD) error {
	return q.Hold.Commit(ctx, u)
}

// decisionHolder is what a reservation that carries a quota decision
// offers (a *quota.Hold).
type decisionHolder interface{ Decision() *quota.Decision }

// setQuotaHeaders adds the x-ratelimit-* headers of an admission (holds)
// or of a refusal (err) to the answer.
func setQuotaHeaders(h *fasthttp.ResponseHeader, holds []Reservation, err error) {
	set := func(k, v string) { h.Set(k, v) }
	if d, ok := quota.DecisionOf(err); ok {
		d.Headers(set)
		return
	}
	for _, r := range holds {
		if dh, ok := r.(decisionHolder); ok {
			dh.Decision().Headers(set)
		}
	}
}

// quotaPlan is what a generation needs besides the gate: the default
// duration of each org's priority mode started through the admin API.
type quotaPlan struct {
	stage            *quotaStage
	priorityDuration map[string]time.Duration
}

// buildQuota turns the policy's tiers and org limits into a gate over the
// server's limiter. Dates, zones and times were validated by the loader;
// errors here are for what only the limiter checks.
func buildQuota(lim *quota.Limiter, pol *configs.Policy, counter func() *tokens.Counter) (*quotaPlan, error) {
	tiers := make(map[string]quota.Tier, len(pol.Tiers))
	for _, t := range pol.Tiers {
		tiers[t.ID] = quota.Tier{Name: t.ID, Limits: quotaLimits(t.Limits), Class: quota.Class(t.Class)}
	}
	keys := map[string][]quota.KeyLimits{}
	for _, k := range pol.Keys {
		if !k.Limits.IsZero() {
			keys[k.Org] = append(keys[k.Org], quota.KeyLimits{KeyID: k.ID, Limits: quotaLimits(k.Limits)})
		}
	}
	plan := &quotaPlan{stage: &quotaStage{countTokens: map[string]bool{}, counter: counter},
		priorityDuration: map[string]time.Duration{}}
	var p quota.Policies
	for i := range pol.Orgs {
		o := &pol.Orgs[i]
		op, err := orgQuota(o, tiers[o.Tier], keys[o.ID])
		if err != nil {
			return nil, fmt.Errorf("org %s: %w", o.ID, err)
		}
		plan.priorityDuration[o.ID] = o.PriorityMode.Duration.D()
		if !hasLimit(&op, func(l quota.Limits) bool { return !l.IsZero() }) {
			continue // no limit ever applies: the gate admits it without work
		}
		p.Orgs = append(p.Orgs, op)
		if hasLimit(&op, func(l quota.Limits) bool { return l.TPM.Set() || l.TPH.Set() || l.TPD.Set() }) {
			plan.stage.countTokens[o.ID] = true
		}
	}
	g, err := lim.NewGate(p)
	if err != nil {
		return nil, err
	}
	plan.stage.gate = g
	return plan, nil
}

func orgQuota(o *configs.Org, tier quota.Tier, keys []quota.KeyLimits) (quota.OrgPolicy, error) {
	op := quota.OrgPolicy{Org: o.ID, Tier: tier, Override: quotaLimits(o.Limits), Keys: keys,
		Queue:  quota.Queue{Depth: o.Queue.Depth, MaxWait: o.Queue.MaxWait.D()},
		Output: quota.Output{Default: o.Output.DefaultMaxTokens, Cap: o.Output.MaxTokensCap}}
	switch o.FailMode {
	case configs.FailOpen:
		op.FailMode = quota.FailOpen
	case configs.FailClosed:
		op.FailMode = quota.FailClosed
	default:
		op.FailMode = quota.FailLocal
	}
	if o.Timezone != "" {
		loc, err := time.LoadLocation(o.Timezone)
		if err != nil {
			return op, fmt.Errorf("timezone: %w", err)
		}
		op.Location = loc
	}
	for _, s := range o.Schedules {
		from, err := quota.ParseDate(s.From)
		if err != nil {
			return op, fmt.Errorf("schedule %q: %w", s.Name, err)
		}
		to, err := quota.ParseDate(s.To)
		if err != nil {
			return op, fmt.Errorf("schedule %q: %w", s.Name, err)
		}
		op.Schedules = append(op.Schedules, quota.Schedule{Name: s.Name, From: from, To: to,
			Multiplier: s.Multiplier, Limits: quotaLimits(s.Limits)})
	}
	pm := o.PriorityMode
	op.Priority = quota.PriorityMode{Multiplier: pm.Multiplier, Limits: quotaLimits(pm.Limits)}
	if pm.Until != "" {
		u, err := time.Parse(time.RFC3339, pm.Until)
		if err != nil {
			return op, fmt.Errorf("priority_mode.until: %w", err)
		}
		op.Priority.Until = u
	}
	return op, nil
}

// quotaLimits maps the policy's limits onto the limiter's.
func quotaLimits(l configs.Limits) quota.Limits {
	f := func(x configs.Limit) quota.Limit {
		out := quota.Limit{Max: x.Max, Burst: x.Burst, Shadow: x.Shadow}
		switch x.Max {
		case configs.Unlimited:
			out.Max = quota.Unlimited
		case configs.Zero:
			out.Max = quota.Zero
		}
		return out
	}
	return quota.Limits{RPM: f(l.RPM), TPM: f(l.TPM), TPH: f(l.TPH), RPD: f(l.RPD), TPD: f(l.TPD)}
}

// hasLimit reports whether any limits of the org satisfy f: its tier's,
// overrides, schedules, priority mode or keys.
func hasLimit(op *quota.OrgPolicy, f func(quota.Limits) bool) bool {
	ls := []quota.Limits{op.Tier.Limits, op.Override, op.Priority.Limits}
	for _, s := range op.Schedules {
		ls = append(ls, s.Limits)
	}
	for _, k := range op.Keys {
		ls = append(ls, k.Limits)
	}
	return slices.ContainsFunc(ls, f)
}

// keyPriority is the queue class a key's scopes give its requests.
func keyPriority(k *configs.Key) int {
	if slices.Contains(k.Scopes, configs.ScopeEmergency) {
		return int(quota.ClassEmergency)
	}
	return 0
}
