package quota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

// Gate is one configuration generation's quota stage: the policies of that
// generation over the limiter's shared state. It is immutable after
// NewGate and safe for concurrent use.
type Gate struct {
	l    *Limiter
	orgs map[string]*orgPlan
	def  *OrgPolicy
	lazy sync.Map // org -> *orgPlan, for orgs under def
}

// orgPlan is an OrgPolicy prepared for decisions.
type orgPlan struct {
	pol    OrgPolicy
	base   Limits
	loc    *time.Location
	prefix string    // "ns:{org}:"
	rate   [3]string // rpm, tpm, tph keys
	keys   map[string]*keyPlan
	day    atomic.Pointer[dayPlan]
	output Output
}

type keyPlan struct {
	limits Limits
	prefix string // "ns:{org}:k:id:"
	rate   [3]string
	day    atomic.Pointer[keyDay]
}

// dayPlan is what holds for one calendar day of an org.
type dayPlan struct {
	start, end int64 // µs
	suffix     string
	limits     Limits  // the org's, with the day's schedules applied
	mult       float64 // the day's schedule multipliers, for key limits
	keys       [2]string
}

type keyDay struct {
	start int64
	keys  [2]string
}

// NewGate validates p and prepares it for decisions on l's state.
func (l *Limiter) NewGate(p Policies) (*Gate, error) {
	g := &Gate{l: l, orgs: make(map[string]*orgPlan, len(p.Orgs))}
	var errs []error
	for i := range p.Orgs {
		o := &p.Orgs[i]
		if o.Org == "" {
			errs = append(errs, fmt.Errorf("orgs[%d]: empty org id", i))
			continue
		}
		if _, dup := g.orgs[o.Org]; dup {
			errs = append(errs, fmt.Errorf("org %q: listed twice", o.Org))
			continue
		}
		plan, err := l.plan(o.Org, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("org %q: %w", o.Org, err))
			continue
		}
		g.orgs[o.Org] = plan
	}
	if p.Default != nil {
		if _, err := l.plan("default", p.Default); err != nil {
			errs = append(errs, fmt.Errorf("default: %w", err))
		}
		d := *p.Default
		g.def = &d
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return g, nil
}

func (l *Limiter) plan(org string, o *OrgPolicy) (*orgPlan, error) {
	var errs []error
	for _, x := range [...]struct {
		what string
		l    Limits
	}{{"tier", o.Tier.Limits}, {"override", o.Override}, {"priority", o.Priority.Limits}} {
		if err := x.l.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", x.what, err))
		}
	}
	for i := range o.Schedules {
		if err := o.Schedules[i].validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Priority.Multiplier < 0 {
		errs = append(errs, errors.New("priority: multiplier must not be negative"))
	}
	if o.Queue.Depth < 0 || o.Queue.MaxWait < 0 {
		errs = append(errs, errors.New("queue: depth and max wait must not be negative"))
	} else if o.Queue.Depth > 0 && o.Queue.MaxWait <= 0 {
		errs = append(errs, errors.New("queue: a queue needs a max wait"))
	}
	if o.Output.Default < 0 || o.Output.Cap < 0 {
		errs = append(errs, errors.New("output: default and cap must not be negative"))
	}
	if o.FailMode < FailLocal || o.FailMode > FailClosed {
		errs = append(errs, fmt.Errorf("unknown fail mode %d", o.FailMode))
	}
	p := &orgPlan{pol: *o, base: o.Tier.Limits.Override(o.Override), loc: o.Location, output: o.Output,
		keys: make(map[string]*keyPlan, len(o.Keys))}
	if p.loc == nil {
		p.loc = time.UTC
	}
	if p.output.Default == 0 {
		p.output.Default = DefaultOutputTokens
	}
	p.prefix = l.ns + ":{" + escapeID(org) + "}:"
	for k := kRPM; k <= kTPH; k++ {
		p.rate[k] = p.prefix + kindInfo[k].name
	}
	for _, k := range o.Keys {
		if err := k.Limits.validate(); err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", k.KeyID, err))
		}
		if _, dup := p.keys[k.KeyID]; dup || k.KeyID == "" {
			errs = append(errs, fmt.Errorf("key %q: empty or listed twice", k.KeyID))
			continue
		}
		kp := &keyPlan{limits: k.Limits, prefix: p.prefix + "k:" + escapeID(k.KeyID) + ":"}
		for x := kRPM; x <= kTPH; x++ {
			kp.rate[x] = kp.prefix + kindInfo[x].name
		}
		p.keys[k.KeyID] = kp
	}
	return p, errors.Join(errs...)
}

// escapeID keeps ids from breaking the key layout or the {org} hash tag.
var idEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D", ":", "%3A")

func escapeID(s string) string {
	if !strings.ContainsAny(s, "%{}:") {
		return s
	}
	return idEscaper.Replace(s)
}

func (g *Gate) planFor(org string) *orgPlan {
	if p, ok := g.orgs[org]; ok {
		return p
	}
	if g.def == nil {
		return nil
	}
	if v, ok := g.lazy.Load(org); ok {
		return v.(*orgPlan)
	}
	p, _ := g.l.plan(org, g.def) // validated by NewGate
	v, _ := g.lazy.LoadOrStore(org, p)
	return v.(*orgPlan)
}

// dayAt returns the org's plan for the calendar day (in its zone) holding
// now.
func (p *orgPlan) dayAt(now time.Time) *dayPlan {
	us := now.UnixMicro()
	if d := p.day.Load(); d != nil && us >= d.start && us < d.end {
		return d
	}
	y, m, dd := now.In(p.loc).Date()
	start := time.Date(y, m, dd, 0, 0, 0, 0, p.loc).UnixMicro()
	end := time.Date(y, m, dd+1, 0, 0, 0, 0, p.loc).UnixMicro()
	start = min(start, us)
	if end <= us { // cannot happen with sane zone data
		end = us + 1
	}
	d := &dayPlan{start: start, end: end, limits: p.base, mult: 1,
		suffix: fmt.Sprintf("%04d%02d%02d", y, int(m), dd)}
	for i := range p.pol.Schedules {
		s := &p.pol.Schedules[i]
		if !s.activeOn(y, m, dd) {
			continue
		}
		d.limits = d.limits.Override(s.Limits)
		if s.Multiplier > 0 {
			d.limits = d.limits.Scale(s.Multiplier)
			d.mult *= s.Multiplier
		}
	}
	d.keys = [2]string{p.prefix + "rpd:" + d.suffix, p.prefix + "tpd:" + d.suffix}
	p.day.Store(d)
	return d
}

func (k *keyPlan) dayKeys(d *dayPlan) [2]string {
	if kd := k.day.Load(); kd != nil && kd.start == d.start {
		return kd.keys
	}
	kd := &keyDay{start: d.start, keys: [2]string{k.prefix + "rpd:" + d.suffix, k.prefix + "tpd:" + d.suffix}}
	k.day.Store(kd)
	return kd.keys
}

// Reserve is the proxy's admission call: it reserves one request and the
// estimated tokens (Estimate) for x's principal. On success the Hold must
// be settled exactly once, with Commit when the request finished (streamed
// or not, with whatever usage it had) or Release when it was refused
// later or failed before using anything. A refusal is an *llm.Error (see
// Take).
func (g *Gate) Reserve(ctx context.Context, x *policy.Exchange) (*Hold, error) {
	s := Subject{Class: Class(x.Priority)}
	if x.Principal != nil {
		s.Org, s.KeyID = x.Principal.Org, x.Principal.KeyID
	}
	return g.Take(ctx, s, g.Estimate(x))
}

// Estimate returns what admission reserves for x: one request, and
// x.EstimatedPromptTokens plus the output estimate of its org's Output
// policy (chat requests only).
func (g *Gate) Estimate(x *policy.Exchange) Need {
	n := Need{Requests: 1, Tokens: int64(max(x.EstimatedPromptTokens, 0))}
	if x.Chat == nil {
		return n
	}
	out := Output{Default: DefaultOutputTokens}
	if x.Principal != nil {
		if p := g.planFor(x.Principal.Org); p != nil {
			out = p.output
		}
	}
	o, ok := x.Chat.MaxOutputTokens()
	if !ok || o <= 0 {
		o = out.Default
	}
	if out.Cap > 0 && o > out.Cap {
		o = out.Cap
	}
	choices := 1
	if x.Chat.N != nil && *x.Chat.N > 1 {
		choices = *x.Chat.N
	}
	n.Tokens += int64(o) * int64(choices)
	return n
}

// Take admits need for s against every applicable limit of s's org and
// key, atomically: all are consumed or none.
//
// Admitted, it returns a Hold whose Decision carries the headers' figures.
// Refused, it returns an *llm.Error: KindRateLimit with code
// rate_limit_exceeded for a rate, KindQuotaExceeded with code
// insufficient_quota for a daily quota, RetryAfter set, and a *Refusal
// cause carrying the Decision (DecisionOf). A request over a rate waits in
// its org's queue first when the policy has one and the wait fits its
// MaxWait and ctx. When the shared backend is down and the org fails
// closed, the error is KindUnavailable with code quota_unavailable. When
// ctx ends while waiting, it is KindCanceled.
//
// An org without a policy (and no default) is unlimited: the Hold decides
// nothing and settles for free.
func (g *Gate) Take(ctx context.Context, s Subject, need Need) (*Hold, error) {
	p := g.planFor(s.Org)
	if p == nil {
		return &Hold{d: Decision{Allowed: true, Need: need, Class: s.Class}}, nil
	}
	now := g.l.clock.Now()
	qs := p.pol.Queue
	var q *queue
	if qs.Depth > 0 {
		q = g.l.queue(s.Org)
		if q.n.Load() > 0 {
			// Requests of a class at least as high wait for the same
			// capacity: queue behind them rather than overtake.
			class := g.classAt(p, s, now)
			if d, ok := q.blockedBy(s.KeyID, class, now); ok {
				d.Need, d.Class, d.Shadowed = need, class, nil
				if w := newWaiter(ctx, s.KeyID, d, now, qs); w != nil {
					w.try = g.attemptFunc(p, s, need)
					return g.finish(q.wait(ctx, w, qs.Depth))
				}
				return g.finish(nil, d, nil)
			}
		}
	}
	h, d, err := g.attempt(ctx, p, s, need, now)
	if err == nil && !d.Allowed && q != nil && queueable(&d, qs) {
		if w := newWaiter(ctx, s.KeyID, d, now, qs); w != nil {
			w.try = g.attemptFunc(p, s, need)
			return g.finish(q.wait(ctx, w, qs.Depth))
		}
	}
	return g.finish(h, d, err)
}

// finish turns an outcome into Take's result, counting refusals and
// shadow limits' would-be refusals once per request.
func (g *Gate) finish(h *Hold, d Decision, err error) (*Hold, error) {
	if err != nil {
		return nil, err
	}
	if h != nil {
		d = h.d
	}
	for _, r := range d.Shadowed {
		g.l.metrics.Refused(r, true)
	}
	if h != nil {
		return h, nil
	}
	g.l.metrics.Refused(d.Reason, false)
	return nil, refusalError(d)
}

func (g *Gate) attemptFunc(p *orgPlan, s Subject, need Need) func(context.Context) (*Hold, Decision, error) {
	return func(ctx context.Context) (*Hold, Decision, error) {
		return g.attempt(ctx, p, s, need, g.l.clock.Now())
	}
}

// classAt returns s's effective class at now.
func (g *Gate) classAt(p *orgPlan, s Subject, now time.Time) Class {
	c := max(s.Class, p.pol.Tier.Class)
	if g.priorityActive(p, s.Org, now) {
		c = max(c, ClassPriorityMode)
	}
	return c
}

func (g *Gate) priorityActive(p *orgPlan, org string, now time.Time) bool {
	if p.pol.Priority.Until.After(now) {
		return true
	}
	g.l.mu.Lock()
	u, ok := g.l.priority[org]
	g.l.mu.Unlock()
	return ok && u.After(now)
}

// attempt makes one decision at now. Refused, it returns a nil Hold and
// the decision; err is for a backend that could not decide.
func (g *Gate) attempt(ctx context.Context, p *orgPlan, s Subject, need Need, now time.Time) (*Hold, Decision, error) {
	h := &Hold{l: g.l, org: s.Org, b: &batch{}}
	b := h.b
	b.org, b.now, b.fail = p.prefix, now.UnixMicro(), p.pol.FailMode
	day := p.dayAt(now)
	org, mult := day.limits, day.mult
	class := max(s.Class, p.pol.Tier.Class)
	if g.priorityActive(p, s.Org, now) {
		pm := p.pol.Priority
		m := pm.multiplier()
		org = org.Override(pm.Limits).Scale(m)
		mult *= m
		class = max(class, ClassPriorityMode)
	}
	d := Decision{Need: need, Class: class}
	kp := p.keys[s.KeyID]
	var kl Limits
	if kp != nil {
		kl = kp.limits.Scale(mult)
	}
	if zeroLimits(&d, &org, &kl, day, b.now) {
		return nil, d, nil
	}
	addRules(b, 0, &org, p.rate, day.keys, need, day)
	if kp != nil {
		addRules(b, 1, &kl, kp.rate, kp.dayKeys(day), need, day)
	}
	if b.n > 0 {
		if err := g.l.backend.take(ctx, b); err != nil {
			if u, ok := isUnavailable(err); ok {
				d.Reason, d.RetryAfter = ReasonUnavailable, u.retryAfter
				return nil, d, nil
			}
			if ctx.Err() != nil {
				return nil, d, canceled(ctx)
			}
			return nil, d, &llm.Error{Kind: llm.KindInternal, Msg: "internal error", Err: err}
		}
		h.consumed = decide(b, &d)
	} else {
		d.Allowed = true
	}
	if !d.Allowed {
		return nil, d, nil
	}
	h.d = d
	return h, d, nil
}

// zeroLimits handles limits set to Zero, which no request passes: an
// enforced one refuses at once (without asking the backend: there is no
// state to consult), a shadow one is reported as shadowed. Both are then
// cleared from org and key so that addRules leaves them out. It reports
// whether d is a refusal.
func zeroLimits(d *Decision, org, key *Limits, day *dayPlan, now int64) bool {
	for scope, l := range [...]*Limits{org, key} {
		for k := kRPM; k < numKinds; k++ {
			lim := l.at(k)
			if lim.Max != Zero {
				continue
			}
			l.set(k, Limit{})
			r := reasons[scope][k]
			if lim.Shadow {
				d.Shadowed = append(d.Shadowed, r)
				continue
			}
			if d.Reason != "" {
				continue
			}
			st := Status{Reason: r}
			if kindInfo[k].window == 0 {
				st.Reset = time.Duration(day.end-now) * time.Microsecond
				d.RetryAfter = st.Reset
			}
			d.Reason, d.Refused, d.zero = r, st, true
			if kindInfo[k].tokens {
				d.Tokens = st
			} else {
				d.Requests = st
			}
		}
	}
	return d.Reason != ""
}

// addRules appends the set limits of one scope (0 org, 1 key) to b.
func addRules(b *batch, scope int, l *Limits, rate [3]string, day [2]string, need Need, dp *dayPlan) {
	for k := kRPM; k < numKinds; k++ {
		lim := l.at(k)
		if !lim.Set() {
			continue
		}
		r := &b.rules[b.n]
		b.n++
		info := &kindInfo[k]
		n := need.Requests
		if info.tokens {
			n = need.Tokens
		}
		n = max(n, 0)
		*r = rule{reason: reasons[scope][k], tokens: info.tokens, limit: lim.Max, shadow: lim.Shadow, need: n}
		if info.window > 0 {
			r.key = rate[k]
			burst := lim.burst()
			r.spec = newRate(lim.Max, burst, info.window)
			if n > burst {
				r.never, r.cost = true, r.spec.cap+r.spec.unit
			} else {
				r.cost = n * r.spec.unit
			}
			continue
		}
		r.key = day[k-kRPD]
		r.counter, r.max, r.resetAt = true, lim.Max, dp.end
		r.ttl = (dp.end-b.now)/1000 + int64(time.Hour/time.Millisecond)
		if n > lim.Max {
			r.never, r.cost = true, lim.Max+1
		} else {
			r.cost = n
		}
	}
}

func queueable(d *Decision, q Queue) bool {
	return !d.never && d.Reason != ReasonUnavailable && !d.Reason.Daily() &&
		d.RetryAfter > 0 && d.RetryAfter <= q.MaxWait
}

func canceled(ctx context.Context) error {
	return &llm.Error{Kind: llm.KindCanceled, Msg: "request canceled", Err: ctx.Err()}
}
