package proxy

import (
	"context"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/accounting"
)

// budgetPeriod is one period in the /api/ai/budgets answer. Amounts are
// integer micro-units (no float drift): USD, and the org's display
// currency at its rate.
type budgetPeriod struct {
	Period          string              `json:"period"`
	Start           string              `json:"start"`
	End             string              `json:"end"`
	LimitUSDMicros  accounting.MicroUSD `json:"limit_usd_micros"`
	SpentUSDMicros  accounting.MicroUSD `json:"spent_usd_micros"`
	ReservedMicros  accounting.MicroUSD `json:"reserved_usd_micros"`
	RemainingMicros accounting.MicroUSD `json:"remaining_usd_micros"`
	SpentDisplay    int64               `json:"spent_display_micros"`
	LimitDisplay    int64               `json:"limit_display_micros"`
	DisplayCurrency string              `json:"display_currency"`
	UsedPercent     int64               `json:"used_percent"` // committed spend, rounded down
}

type budgetOrg struct {
	Org     string         `json:"org"`
	Periods []budgetPeriod `json:"periods"`
}

// budgets serves GET /api/ai/budgets[?org=ID]: each budgeted org's
// periods with limit, committed spend and what unsettled requests hold.
// With a shared backend the figures are every replica's.
func (s *Server) budgets(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		adminError(ctx, fasthttp.StatusMethodNotAllowed, "Use GET.")
		return
	}
	rt := s.rt.Load()
	var orgs []string
	if rt.budget != nil {
		for o := range rt.budget.output {
			orgs = append(orgs, o)
		}
	}
	slices.Sort(orgs)
	if want := string(ctx.QueryArgs().Peek("org")); want != "" {
		if !slices.Contains(orgs, want) {
			adminError(ctx, fasthttp.StatusNotFound, "No org "+quoteClip(want)+" has a budget in the policy.")
			return
		}
		orgs = []string{want}
	}
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := s.opts.Now()
	out := make([]budgetOrg, 0, len(orgs))
	for _, o := range orgs {
		st, err := rt.budget.gate.Status(c, o, now)
		if err != nil {
			adminError(ctx, fasthttp.StatusServiceUnavailable, "Budget state is unavailable: "+err.Error())
			return
		}
		rate, ok := rt.currency[o]
		if !ok {
			rate = accounting.USD
		}
		bo := budgetOrg{Org: o, Periods: make([]budgetPeriod, 0, len(st))}
		for _, p := range st {
			bp := budgetPeriod{Period: string(p.Period), Start: p.Start.Format(time.RFC3339), End: p.End.Format(time.RFC3339),
				LimitUSDMicros: p.Limit, SpentUSDMicros: p.Spent, ReservedMicros: p.Reserved,
				RemainingMicros: max(0, p.Limit-p.Spent-p.Reserved),
				SpentDisplay:    rate.Convert(p.Spent), LimitDisplay: rate.Convert(p.Limit), DisplayCurrency: rate.Currency}
			if p.Limit > 0 {
				bp.UsedPercent = int64(p.Spent) * 100 / int64(p.Limit)
			}
			bo.Periods = append(bo.Periods, bp)
		}
		out = append(out, bo)
	}
	adminData(ctx, map[string]any{"orgs": out})
}
