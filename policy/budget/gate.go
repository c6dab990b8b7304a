package budget

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aigw/aigw/accounting"
)

// Gate is one configuration generation's budget stage: that generation's
// policies over the Keeper's state. It is immutable after NewGate and safe
// for concurrent use.
type Gate struct {
	k    *Keeper
	orgs map[string]*orgPlan
}

// orgPlan is an OrgPolicy prepared for decisions.
type orgPlan struct {
	pol     OrgPolicy
	loc     *time.Location
	thr     []int
	periods []Period // Daily before Monthly, only those with a limit
	cur     atomic.Pointer[periodSet]
}

// periodSet is an org's accounts for the instants in [from, to).
type periodSet struct {
	from, to time.Time
	n        int
	acct     [maxPeriods]*account
}

// NewGate validates orgs and prepares them for decisions on k's state.
// Every problem is reported, each naming its org. An org whose Daily and
// Monthly are both 0 has no budget.
func (k *Keeper) NewGate(orgs []OrgPolicy) (*Gate, error) {
	g := &Gate{k: k, orgs: make(map[string]*orgPlan, len(orgs))}
	var errs []error
	seen := make(map[string]bool, len(orgs))
	for i := range orgs {
		o := &orgs[i]
		if o.Org == "" {
			errs = append(errs, fmt.Errorf("budget: orgs[%d]: empty org id", i))
			continue
		}
		if seen[o.Org] {
			errs = append(errs, fmt.Errorf("budget: org %q: listed twice", o.Org))
			continue
		}
		seen[o.Org] = true
		p, err := plan(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("budget: org %q: %w", o.Org, err))
			continue
		}
		if len(p.periods) > 0 {
			g.orgs[o.Org] = p
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return g, nil
}

func plan(o *OrgPolicy) (*orgPlan, error) {
	var errs []error
	for _, l := range [...]struct {
		name string
		v    accounting.MicroUSD
	}{{"daily", o.Daily}, {"monthly", o.Monthly}} {
		if l.v < 0 || l.v > MaxLimit {
			errs = append(errs, fmt.Errorf("%s budget %s out of range [0, %s]", l.name, FormatUSD(l.v), FormatUSD(MaxLimit)))
		}
	}
	thr := o.Thresholds
	if len(thr) == 0 {
		thr = defaultThresholds()
	}
	if len(thr) > MaxThresholds {
		errs = append(errs, fmt.Errorf("%d thresholds; at most %d", len(thr), MaxThresholds))
	}
	for i, t := range thr {
		if t < 1 || t > 1000 {
			errs = append(errs, fmt.Errorf("threshold %d%%: want 1..1000", t))
		} else if i > 0 && t <= thr[i-1] {
			errs = append(errs, fmt.Errorf("thresholds must be strictly ascending (%d after %d)", t, thr[i-1]))
		}
	}
	switch o.OnExhausted {
	case Refuse, PriorityOnly:
	case Downgrade:
		if strings.TrimSpace(o.DowngradeTo) == "" {
			errs = append(errs, errors.New("on exhausted downgrade: a model to downgrade to is required"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown action %d", o.OnExhausted))
	}
	if o.FailMode < FailLocal || o.FailMode > FailClosed {
		errs = append(errs, fmt.Errorf("unknown fail mode %d", o.FailMode))
	}
	for _, w := range o.Webhooks {
		u, err := url.Parse(w)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhook %q: want an http or https URL", redactURL(w)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p := &orgPlan{pol: *o, loc: o.Location, thr: append([]int(nil), thr...)}
	p.pol.Thresholds = p.thr
	p.pol.Webhooks = append([]string(nil), o.Webhooks...)
	if p.loc == nil {
		p.loc = time.UTC
	}
	if o.Daily > 0 {
		p.periods = append(p.periods, Daily)
	}
	if o.Monthly > 0 {
		p.periods = append(p.periods, Monthly)
	}
	return p, nil
}

// redactURL keeps a webhook's secret path out of error messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host + "/…"
	}
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// limit returns the org's limit for period p.
func (p *orgPlan) limit(per Period) int64 {
	if per == Daily {
		return int64(p.pol.Daily)
	}
	return int64(p.pol.Monthly)
}

// at returns the org's accounts for the instant now.
func (p *orgPlan) at(now time.Time) *periodSet {
	if s := p.cur.Load(); s != nil && !now.Before(s.from) && now.Before(s.to) {
		return s
	}
	s := &periodSet{n: len(p.periods)}
	for i, per := range p.periods {
		a := newAccount(per, now.In(p.loc), p.limit(per), p.thr)
		s.acct[i] = a
		if i == 0 || a.start.After(s.from) {
			s.from = a.start
		}
		if i == 0 || a.end.Before(s.to) {
			s.to = a.end
		}
	}
	p.cur.Store(s)
	return s
}

func newAccount(per Period, now time.Time, limit int64, thr []int) *account {
	y, m, d := now.Date()
	loc := now.Location()
	a := &account{period: per, limit: limit, thr: thr, thrAmt: make([]int64, len(thr))}
	if per == Daily {
		a.start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		a.end = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
		a.label = a.start.Format("d:2006-01-02")
	} else {
		a.start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		a.end = time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
		a.label = a.start.Format("m:2006-01")
	}
	a.expireAt = a.end.Add(accountGrace).UnixMilli()
	var b strings.Builder
	for j, t := range thr {
		a.thrAmt[j] = (limit*int64(t) + 99) / 100 // limit ≤ MaxLimit, t ≤ 1000: no overflow
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(t))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(a.thrAmt[j], 10))
	}
	a.thrArg = b.String()
	return a
}

// Reserve admits r against its org's budget and holds r.Cost in every
// period of the org, all or none, atomically.
//
// An org without a budget gets (nil, nil): a nil *Hold is valid and its
// methods do nothing. A request the budget cannot hold in some period gets
// *Exhausted, unless the org is PriorityOnly and r.Priority >=
// MinPriority: then it is reserved anyway and the hold reports
// OverBudget. The period's first refusal fires an Exhausted alert.
//
// While the shared backend fails, the org's FailMode decides: FailLocal
// reserves on in-process state, FailOpen returns (nil, nil), FailClosed an
// error wrapping ErrUnavailable. Other errors are ctx's.
func (g *Gate) Reserve(ctx context.Context, r Request) (*Hold, error) {
	p := g.orgs[r.Org]
	if p == nil {
		return nil, nil
	}
	if r.Cost < 0 {
		return nil, fmt.Errorf("budget: request %q: negative cost %d", r.ID, r.Cost)
	}
	k := g.k
	now := k.clock()
	ps := p.at(now)
	h := &Hold{k: k, plan: p, id: k.holdID(r.ID), cost: int64(min(r.Cost, MaxLimit)), n: ps.n, acct: ps.acct}
	o := op{
		kind:    opReserve,
		org:     r.Org,
		now:     now,
		holdID:  h.id,
		amount:  h.cost,
		holdExp: now.Add(k.holdTTL),
		force:   p.pol.OnExhausted == PriorityOnly && r.Priority >= p.pol.MinPriority,
		fail:    p.pol.FailMode,
		n:       ps.n,
		acct:    ps.acct,
	}
	if err := k.exec(ctx, &o); err != nil {
		return nil, err
	}
	if o.via == viaNone {
		return nil, nil
	}
	worst := -1
	for i := 0; i < o.n; i++ {
		if o.flags[i]&flagOver != 0 {
			worst = i // Monthly, the later-ending period, wins
		}
		if o.flags[i]&flagExhausted != 0 {
			a := o.acct[i]
			k.alert(Alert{Org: r.Org, Period: a.period, PeriodStart: a.start, Exhausted: true,
				Spent: accounting.MicroUSD(o.spent[i]), Limit: accounting.MicroUSD(a.limit), Time: now,
				Webhooks: p.pol.Webhooks})
		}
	}
	if !o.admitted {
		a := o.acct[worst]
		e := &Exhausted{Org: r.Org, Period: a.period, Limit: accounting.MicroUSD(a.limit),
			Spent: accounting.MicroUSD(o.spent[worst]), Reserved: accounting.MicroUSD(o.reserved[worst]), Action: Refuse}
		if p.pol.OnExhausted == Downgrade && !r.Downgraded {
			e.Action, e.DowngradeTo = Downgrade, p.pol.DowngradeTo
		}
		k.metrics.Refused(a.period, e.Action)
		return nil, e
	}
	h.via = o.via
	h.over = worst >= 0
	return h, nil
}

// Status returns the state of the org's periods at now (which need not be
// the Keeper's clock): nil for an org without a budget. Expired holds are
// purged first. Under FailLocal it reports the local fallback's state
// while the shared backend fails; under the other modes it returns an
// error wrapping ErrUnavailable.
func (g *Gate) Status(ctx context.Context, org string, now time.Time) ([]PeriodStatus, error) {
	p := g.orgs[org]
	if p == nil {
		return nil, nil
	}
	ps := p.at(now)
	o := op{kind: opStatus, org: org, now: now, fail: p.pol.FailMode, n: ps.n, acct: ps.acct}
	if o.fail == FailOpen {
		o.fail = FailClosed // failing open has no state to report
	}
	if err := g.k.exec(ctx, &o); err != nil {
		return nil, err
	}
	out := make([]PeriodStatus, o.n)
	for i := range out {
		a := o.acct[i]
		out[i] = PeriodStatus{Period: a.period, Start: a.start, End: a.end, Limit: accounting.MicroUSD(a.limit),
			Spent: accounting.MicroUSD(o.spent[i]), Reserved: accounting.MicroUSD(o.reserved[i])}
	}
	return out, nil
}
