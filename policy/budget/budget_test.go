package budget_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/policy/budget"
)

var ctx = context.Background()

// TestArithmetic: reserve, commit and release are exact to the µUSD in
// every period, an actual cost above the reservation is charged in full,
// and the reserved total returns to 0 once every hold is settled.
func TestArithmetic(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		c := newClock(t0)
		r := newReplica(t, e, c, budget.Options{})
		g := r.gate(t, budget.OrgPolicy{Org: "a", Daily: usd(5), Monthly: usd(10)})

		h1 := mustReserve(t, g, budget.Request{ID: "1", Org: "a", Cost: 1_234_567})
		h2 := mustReserve(t, g, budget.Request{ID: "2", Org: "a", Cost: 333_333})
		h3 := mustReserve(t, g, budget.Request{ID: "3", Org: "a", Cost: 100_000})
		for _, p := range []budget.Period{budget.Daily, budget.Monthly} {
			if s := status(t, g, "a", c.Now(), p); s.Reserved != 1_667_900 || s.Spent != 0 {
				t.Fatalf("%s after 3 reserves: %+v", p, s)
			}
		}
		if err := h1.Commit(ctx, 1_000_001); err != nil {
			t.Fatal(err)
		}
		if err := h1.Commit(ctx, 5_000_000); err != nil { // a second settle is a no-op
			t.Fatal(err)
		}
		if err := h1.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h2.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h3.Commit(ctx, 250_001); err != nil { // more than reserved: charged in full
			t.Fatal(err)
		}
		for _, p := range []budget.Period{budget.Daily, budget.Monthly} {
			s := status(t, g, "a", c.Now(), p)
			if s.Spent != 1_250_002 || s.Reserved != 0 {
				t.Fatalf("%s: spent %d reserved %d, want 1250002 and 0", p, s.Spent, s.Reserved)
			}
		}
		d := status(t, g, "a", c.Now(), budget.Daily)
		if d.Limit != usd(5) || !d.Start.Equal(time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)) || !d.End.Equal(time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("daily status: %+v", d)
		}

		// The daily budget has 5 - 1.250002 = 3.749998 left: exactly that fits, one µUSD more does not.
		if _, err := g.Reserve(ctx, budget.Request{ID: "4", Org: "a", Cost: 3_749_999}); err == nil {
			t.Fatal("reserved one µUSD past the daily budget")
		} else if ex := exhausted(t, err); ex.Period != budget.Daily || ex.Spent != 1_250_002 || ex.Limit != usd(5) {
			t.Fatalf("exhausted: %+v", ex)
		}
		h4 := mustReserve(t, g, budget.Request{ID: "4", Org: "a", Cost: 3_749_998})
		if h4.OverBudget() {
			t.Fatal("a hold within the budget reports OverBudget")
		}
		// Full now: even a request estimated at nothing is refused.
		if _, err := g.Reserve(ctx, budget.Request{ID: "5", Org: "a", Cost: 0}); err == nil {
			t.Fatal("a zero-cost request admitted into a full budget")
		}
		if err := h4.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if s := status(t, g, "a", c.Now(), budget.Monthly); s.Reserved != 0 || s.Spent != 1_250_002 {
			t.Fatalf("monthly at the end: %+v", s)
		}

		// An org without a budget: a nil hold whose methods do nothing.
		h, err := g.Reserve(ctx, budget.Request{ID: "x", Org: "unknown", Cost: usd(1000)})
		if err != nil || h != nil {
			t.Fatalf("org without a budget: %v, %v", h, err)
		}
		if h.Commit(ctx, 1) != nil || h.Release(ctx) != nil || h.OverBudget() {
			t.Fatal("nil hold methods")
		}
		if st, err := g.Status(ctx, "unknown", c.Now()); st != nil || err != nil {
			t.Fatalf("status of an org without a budget: %v, %v", st, err)
		}
		if _, err := g.Reserve(ctx, budget.Request{ID: "n", Org: "a", Cost: -1}); err == nil {
			t.Fatal("a negative cost was accepted")
		}
	})
}

// TestConcurrentNoOverspend: 500 concurrent requests from two replicas
// against a budget of room for 142 of them. When every request commits
// its full reservation exactly floor(limit/cost) are admitted and the
// spend never exceeds the limit; with smaller actual costs the spend
// stays within the limit too, and nothing stays reserved.
func TestConcurrentNoOverspend(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		const limit, cost, n = 1_000_000, 7_000, 500
		for _, full := range []bool{true, false} {
			c := newClock(t0)
			org := "full"
			if !full {
				org = "partial"
			}
			pol := budget.OrgPolicy{Org: org, Monthly: limit, Daily: 2 * limit, FailMode: budget.FailClosed}
			gates := []*budget.Gate{newReplica(t, e, c, budget.Options{}).gate(t, pol), newReplica(t, e, c, budget.Options{}).gate(t, pol)}
			var admitted, refused atomic.Int64
			var committed atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					g := gates[i%2]
					h, err := g.Reserve(ctx, budget.Request{ID: reqID(i), Org: org, Cost: cost})
					var ex *budget.Exhausted
					switch {
					case errors.As(err, &ex):
						refused.Add(1)
						return
					case err != nil:
						t.Errorf("reserve: %v", err)
						return
					}
					admitted.Add(1)
					actual := int64(cost)
					if !full {
						actual = rand.Int64N(cost + 1)
					}
					if err := h.Commit(ctx, accounting.MicroUSD(actual)); err != nil {
						t.Errorf("commit: %v", err)
					}
					committed.Add(actual)
				}()
			}
			close(start)
			wg.Wait()
			s := status(t, gates[0], org, c.Now(), budget.Monthly)
			t.Logf("full=%v: %d admitted, %d refused, spent %d of %d", full, admitted.Load(), refused.Load(), s.Spent, limit)
			if admitted.Load()+refused.Load() != n {
				t.Fatalf("%d decisions for %d requests", admitted.Load()+refused.Load(), n)
			}
			if int64(s.Spent) != committed.Load() || s.Spent > limit || s.Reserved != 0 {
				t.Fatalf("spent %d (committed %d), reserved %d, limit %d", s.Spent, committed.Load(), s.Reserved, limit)
			}
			if full && admitted.Load() != limit/cost {
				t.Fatalf("admitted %d, want exactly %d", admitted.Load(), limit/cost)
			}
			if !full && admitted.Load() < limit/cost {
				t.Fatalf("admitted %d, fewer than the %d that always fit", admitted.Load(), limit/cost)
			}
		}
	})
}

// TestThresholdsOncePerPeriod: two replicas commit alternately past 80,
// 90 and 100 %; each threshold fires exactly once in all, with the spend
// it fired at, and the first refusal fires one Exhausted alert.
func TestThresholdsOncePerPeriod(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		c := newClock(t0)
		pol := budget.OrgPolicy{Org: "demo", Monthly: usd(50), Webhooks: []string{"https://hooks.example/x"}}
		reps := []*replica{newReplica(t, e, c, budget.Options{}), newReplica(t, e, c, budget.Options{})}
		gates := []*budget.Gate{reps[0].gate(t, pol), reps[1].gate(t, pol)}
		// $4 a commit: 40 (80 %), 44, 48, then 52 (100 % and past it), 56, 60.
		for i := 0; i < 15; i++ {
			g := gates[i%2]
			h, err := g.Reserve(ctx, budget.Request{ID: reqID(i), Org: "demo", Cost: usd(1)})
			if err != nil {
				if i < 10 {
					t.Fatalf("request %d: %v", i, err)
				}
				continue
			}
			if err := h.Commit(ctx, usd(4)); err != nil {
				t.Fatal(err)
			}
		}
		var all []budget.Alert
		for _, r := range reps {
			all = append(all, r.alerts.all()...)
		}
		got := map[int][]budget.Alert{}
		for _, a := range all {
			got[a.Threshold] = append(got[a.Threshold], a)
		}
		want := map[int]accounting.MicroUSD{80: usd(40), 90: usd(48), 100: usd(52)}
		for thr, spent := range want {
			if len(got[thr]) != 1 {
				t.Fatalf("threshold %d fired %d times: %+v", thr, len(got[thr]), all)
			}
			a := got[thr][0]
			if a.Spent != spent || a.Limit != usd(50) || a.Org != "demo" || a.Period != budget.Monthly || a.Exhausted ||
				!a.PeriodStart.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) || len(a.Webhooks) != 1 {
				t.Fatalf("threshold %d alert: %+v", thr, a)
			}
			if n := reps[0].metrics.alertCount(budget.Monthly, thr) + reps[1].metrics.alertCount(budget.Monthly, thr); n != 1 {
				t.Fatalf("threshold %d counted %d times", thr, n)
			}
		}
		if len(got[0]) != 1 || !got[0][0].Exhausted || got[0][0].Spent != usd(52) {
			t.Fatalf("exhausted alerts: %+v", got[0])
		}
		if len(all) != 4 {
			t.Fatalf("%d alerts, want 4: %+v", len(all), all)
		}
		refusals := reps[0].metrics.refusals(budget.Monthly, budget.Refuse) + reps[1].metrics.refusals(budget.Monthly, budget.Refuse)
		if refusals != 2 {
			t.Fatalf("%d refusals counted, want 2", refusals)
		}

		// One commit straight from 0 to 95 % fires 80 and 90 together.
		g := reps[0].gate(t, budget.OrgPolicy{Org: "jump", Daily: usd(100), Thresholds: []int{50, 80, 90, 150}, OnExhausted: budget.PriorityOnly, MinPriority: 5})
		h := mustReserve(t, g, budget.Request{ID: "j", Org: "jump", Cost: usd(95)})
		if err := h.Commit(ctx, usd(95)); err != nil {
			t.Fatal(err)
		}
		h = mustReserve(t, g, budget.Request{ID: "k", Org: "jump", Cost: usd(95), Priority: 5})
		if err := h.Commit(ctx, usd(100)); err != nil { // 195 %
			t.Fatal(err)
		}
		var fired []int
		for _, a := range reps[0].alerts.all() {
			if a.Org == "jump" {
				fired = append(fired, a.Threshold)
			}
		}
		if len(fired) != 4 || fired[0] != 50 || fired[1] != 80 || fired[2] != 90 || fired[3] != 150 {
			t.Fatalf("fired %v, want [50 80 90 150]", fired)
		}
	})
}

// TestHoldsExpire: a replica reserves the whole budget and dies; after
// HoldTTL another replica sees nothing reserved and can spend. The dead
// replica's late commit still counts.
func TestHoldsExpire(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		c := newClock(t0)
		const ttl = 10 * time.Minute
		pol := budget.OrgPolicy{Org: "a", Daily: usd(10), FailMode: budget.FailClosed}
		dead := newReplica(t, e, c, budget.Options{HoldTTL: ttl}).gate(t, pol)
		live := newReplica(t, e, c, budget.Options{HoldTTL: ttl}).gate(t, pol)
		abandoned := mustReserve(t, dead, budget.Request{ID: "a", Org: "a", Cost: usd(10)})
		if _, err := live.Reserve(ctx, budget.Request{ID: "b", Org: "a", Cost: 1}); err == nil {
			t.Fatal("reserved into a budget fully held")
		}
		c.Advance(ttl - time.Millisecond)
		if s := status(t, live, "a", c.Now(), budget.Daily); s.Reserved != usd(10) {
			t.Fatalf("hold gone before its TTL: %+v", s)
		}
		c.Advance(time.Millisecond)
		if s := status(t, live, "a", c.Now(), budget.Daily); s.Reserved != 0 || s.Spent != 0 {
			t.Fatalf("after the TTL: %+v", s)
		}
		h := mustReserve(t, live, budget.Request{ID: "b", Org: "a", Cost: usd(6)})
		if err := h.Commit(ctx, usd(6)); err != nil {
			t.Fatal(err)
		}
		if err := abandoned.Commit(ctx, usd(1)); err != nil { // late: its hold is gone, the cost counts
			t.Fatal(err)
		}
		if s := status(t, live, "a", c.Now(), budget.Daily); s.Spent != usd(7) || s.Reserved != 0 {
			t.Fatalf("after the late commit: %+v", s)
		}
	})
}

// TestPeriodRollover: in Europe/London, across the end of March 2025
// (in BST, UTC+1): a new day and a new month start from 0 at local
// midnight, not UTC midnight, thresholds re-arm, and days and months keep
// their own accounts.
func TestPeriodRollover(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	forEachEnv(t, func(t *testing.T, e env) {
		c := newClock(time.Date(2025, 3, 30, 12, 0, 0, 0, time.UTC))
		r := newReplica(t, e, c, budget.Options{})
		g := r.gate(t, budget.OrgPolicy{Org: "uk", Daily: usd(10), Monthly: usd(100), Location: london, Thresholds: []int{50}})
		spend := func(d int64) {
			t.Helper()
			h := mustReserve(t, g, budget.Request{ID: "x", Org: "uk", Cost: usd(d)})
			if err := h.Commit(ctx, usd(d)); err != nil {
				t.Fatal(err)
			}
		}
		// 30 March, the day the clocks go forward: 23 hours long.
		d := status(t, g, "uk", c.Now(), budget.Daily)
		if d.End.Sub(d.Start) != 23*time.Hour || !d.Start.Equal(time.Date(2025, 3, 30, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("30 March in London: %v .. %v", d.Start, d.End)
		}
		spend(6) // 60 % of the day: alert
		// 31 March, 22:30 UTC = 23:30 BST: a new day, the same month.
		c.Set(time.Date(2025, 3, 31, 22, 30, 0, 0, time.UTC))
		if s := status(t, g, "uk", c.Now(), budget.Daily); s.Spent != 0 || !s.Start.Equal(time.Date(2025, 3, 30, 23, 0, 0, 0, time.UTC)) {
			t.Fatalf("31 March: %+v", s)
		}
		spend(9) // 90 % of the day: alert again (a new day re-arms)
		if s := status(t, g, "uk", c.Now(), budget.Monthly); s.Spent != usd(15) {
			t.Fatalf("March: %+v", s)
		}
		// 31 March 23:30 UTC is 1 April 00:30 in London: a new day and month.
		c.Set(time.Date(2025, 3, 31, 23, 30, 0, 0, time.UTC))
		for _, p := range []budget.Period{budget.Daily, budget.Monthly} {
			s := status(t, g, "uk", c.Now(), p)
			if s.Spent != 0 || s.Reserved != 0 || !s.Start.Equal(time.Date(2025, 3, 31, 23, 0, 0, 0, time.UTC)) {
				t.Fatalf("%s on 1 April: %+v", p, s)
			}
		}
		m := status(t, g, "uk", c.Now(), budget.Monthly)
		if !m.End.Equal(time.Date(2025, 4, 30, 23, 0, 0, 0, time.UTC)) {
			t.Fatalf("April ends %v", m.End)
		}
		spend(5) // 50 % of the day: alert again
		// March's account is untouched by April's spend.
		if s := status(t, g, "uk", time.Date(2025, 3, 31, 22, 59, 0, 0, time.UTC), budget.Monthly); s.Spent != usd(15) {
			t.Fatalf("March after April's spend: %+v", s)
		}
		var daily []time.Time
		for _, a := range r.alerts.all() {
			if a.Period == budget.Daily && a.Threshold == 50 {
				daily = append(daily, a.PeriodStart)
			}
		}
		if len(daily) != 3 {
			t.Fatalf("daily 50 %% alerts for %v, want one per day for three days", daily)
		}
		if n := r.metrics.alertCount(budget.Monthly, 50); n != 0 {
			t.Fatalf("the monthly 50 %% alert fired at $15 of $100 (%d)", n)
		}
	})
}

// TestActions: what a request the budget cannot hold gets, per
// OnExhausted.
func TestActions(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		c := newClock(t0)
		r := newReplica(t, e, c, budget.Options{})
		g := r.gate(t,
			budget.OrgPolicy{Org: "refuse", Monthly: usd(50)},
			budget.OrgPolicy{Org: "down", Daily: usd(1), Monthly: usd(50), OnExhausted: budget.Downgrade, DowngradeTo: "gpt-4o-mini"},
			budget.OrgPolicy{Org: "prio", Daily: usd(1), OnExhausted: budget.PriorityOnly, MinPriority: 10},
		)
		_, err := g.Reserve(ctx, budget.Request{ID: "1", Org: "refuse", Cost: usd(51)})
		ex := exhausted(t, err)
		if ex.Action != budget.Refuse || ex.DowngradeTo != "" || ex.Period != budget.Monthly || ex.Org != "refuse" {
			t.Fatalf("refuse: %+v", ex)
		}
		if msg := ex.Error(); msg != "The organisation's monthly budget of $50.00 is exhausted." {
			t.Fatalf("message %q", msg)
		}

		h := mustReserve(t, g, budget.Request{ID: "2", Org: "down", Cost: 900_000})
		_, err = g.Reserve(ctx, budget.Request{ID: "3", Org: "down", Cost: 200_000})
		ex = exhausted(t, err)
		if ex.Action != budget.Downgrade || ex.DowngradeTo != "gpt-4o-mini" || ex.Period != budget.Daily || ex.Reserved != 900_000 {
			t.Fatalf("downgrade: %+v", ex)
		}
		// The cheaper retry fits; a retry that does not is refused, not downgraded again.
		h2 := mustReserve(t, g, budget.Request{ID: "3", Org: "down", Cost: 100_000, Downgraded: true})
		_, err = g.Reserve(ctx, budget.Request{ID: "4", Org: "down", Cost: 1, Downgraded: true})
		if ex = exhausted(t, err); ex.Action != budget.Refuse || ex.DowngradeTo != "" {
			t.Fatalf("downgraded retry: %+v", ex)
		}
		_ = h.Release(ctx)
		_ = h2.Release(ctx)
		if r.metrics.refusals(budget.Daily, budget.Downgrade) != 1 || r.metrics.refusals(budget.Daily, budget.Refuse) != 1 ||
			r.metrics.refusals(budget.Monthly, budget.Refuse) != 1 {
			t.Fatalf("refusals: %+v", r.metrics.refused)
		}

		h = mustReserve(t, g, budget.Request{ID: "5", Org: "prio", Cost: usd(1)})
		if err := h.Commit(ctx, usd(1)); err != nil {
			t.Fatal(err)
		}
		_, err = g.Reserve(ctx, budget.Request{ID: "6", Org: "prio", Cost: 1000, Priority: 9})
		if ex = exhausted(t, err); ex.Action != budget.Refuse {
			t.Fatalf("low priority: %+v", ex)
		}
		hp := mustReserve(t, g, budget.Request{ID: "7", Org: "prio", Cost: 500_000, Priority: 10})
		if !hp.OverBudget() {
			t.Fatal("a priority admission past the budget does not report OverBudget")
		}
		if s := status(t, g, "prio", c.Now(), budget.Daily); s.Reserved != 500_000 {
			t.Fatalf("priority hold not reserved: %+v", s)
		}
		if err := hp.Commit(ctx, 400_000); err != nil {
			t.Fatal(err)
		}
		if s := status(t, g, "prio", c.Now(), budget.Daily); s.Spent != 1_400_000 || s.Reserved != 0 {
			t.Fatalf("after the priority commit: %+v", s)
		}
		exh := 0
		for _, a := range r.alerts.all() {
			if a.Exhausted {
				exh++
			}
		}
		if exh != 3 { // refuse/monthly, down/daily, prio/daily: once each
			t.Fatalf("%d exhausted alerts, want 3", exh)
		}
	})
}

// TestSeed: the SpendSource is asked once per account, however many
// requests (and replicas) find it missing, and again for a new period; a
// failing source is logged and the period starts from 0.
func TestSeed(t *testing.T) {
	forEachEnv(t, func(t *testing.T, e env) {
		c := newClock(t0)
		src := newSource()
		src.delay = make(chan struct{})
		march := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
		day := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
		src.set("a", march, usd(30))
		src.set("a", day, usd(2))
		pol := budget.OrgPolicy{Org: "a", Daily: usd(10), Monthly: usd(50)}
		r1 := newReplica(t, e, c, budget.Options{Seed: src})
		g := r1.gate(t, pol)
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, err := g.Reserve(ctx, budget.Request{ID: reqID(i), Org: "a", Cost: 1000})
				if err != nil {
					t.Error(err)
					return
				}
				_ = h.Release(ctx)
			}()
		}
		time.Sleep(10 * time.Millisecond) // let them pile up on the seed
		close(src.delay)
		wg.Wait()
		if n, m := src.callsFor("a", day), src.callsFor("a", march); n != 1 || m != 1 {
			t.Fatalf("seed calls: day %d, month %d; want 1 each", n, m)
		}
		if s := status(t, g, "a", c.Now(), budget.Monthly); s.Spent != usd(30) || s.Reserved != 0 {
			t.Fatalf("seeded month: %+v", s)
		}
		if s := status(t, g, "a", c.Now(), budget.Daily); s.Spent != usd(2) {
			t.Fatalf("seeded day: %+v", s)
		}
		// Another Keeper on the same state: nothing missing, nothing asked.
		r2 := newReplica(t, e, c, budget.Options{Seed: src})
		g2 := r2.gate(t, pol)
		h := mustReserve(t, g2, budget.Request{ID: "r2", Org: "a", Cost: usd(8)})
		if _, err := g2.Reserve(ctx, budget.Request{ID: "r3", Org: "a", Cost: 1}); err == nil {
			t.Fatal("the seed was not counted against the daily budget")
		}
		_ = h.Release(ctx)
		if n := src.totalCalls(); n != 2 {
			t.Fatalf("%d seed calls after a second keeper, want 2", n)
		}
		// The next day: asked once more, for the day only.
		c.Advance(24 * time.Hour)
		src.set("a", day.Add(24*time.Hour), usd(1))
		mustReserve(t, g, budget.Request{ID: "n", Org: "a", Cost: 1}).Release(ctx)
		if n := src.callsFor("a", day.Add(24*time.Hour)); n != 1 || src.totalCalls() != 3 {
			t.Fatalf("next day: %d calls for it, %d in all", n, src.totalCalls())
		}
		// A failing source: logged, from 0.
		bad := newSource()
		bad.err = errors.New("ledger down")
		r3 := newReplica(t, e, c, budget.Options{Seed: bad})
		g3 := r3.gate(t, budget.OrgPolicy{Org: "b", Monthly: usd(5)})
		mustReserve(t, g3, budget.Request{ID: "b", Org: "b", Cost: usd(5)}).Release(ctx)
		if !strings.Contains(r3.logs.String(), "ledger down") {
			t.Fatalf("seed failure not logged: %s", r3.logs.String())
		}
		if s := status(t, g3, "b", c.Now(), budget.Monthly); s.Spent != 0 {
			t.Fatalf("after a failed seed: %+v", s)
		}
	})
}

// TestNewGateValidation: every problem is reported, naming its org.
func TestNewGateValidation(t *testing.T) {
	k := budget.New(nil, budget.Options{})
	_, err := k.NewGate([]budget.OrgPolicy{
		{Org: "ok", Monthly: usd(1)},
		{Org: "neg", Daily: -1},
		{Org: "huge", Monthly: budget.MaxLimit + 1},
		{Org: "thr", Monthly: usd(1), Thresholds: []int{90, 80, 1001}},
		{Org: "down", Monthly: usd(1), OnExhausted: budget.Downgrade},
		{Org: "hook", Monthly: usd(1), Webhooks: []string{"ftp://x/y", "https://hooks.example/secret"}},
		{Org: "mode", Monthly: usd(1), FailMode: 7, OnExhausted: 9},
		{Org: "ok", Monthly: usd(2)},
		{Monthly: usd(1)},
	})
	if err == nil {
		t.Fatal("invalid policies accepted")
	}
	msg := err.Error()
	for _, want := range []string{`org "neg"`, `org "huge"`, `org "thr"`, "ascending", "1001", `org "down"`, `org "hook"`, "ftp://x",
		`org "mode"`, "fail mode 7", "action 9", `org "ok": listed twice`, "orgs[8]: empty org id"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hooks.example") {
		t.Errorf("a valid webhook was reported:\n%s", msg)
	}
	g, err := k.NewGate([]budget.OrgPolicy{{Org: "none"}, {Org: "b", Daily: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := g.Reserve(ctx, budget.Request{Org: "none", Cost: usd(1)}); h != nil || err != nil {
		t.Fatalf("an org with no limits: %v %v", h, err)
	}
}

func TestFormatUSD(t *testing.T) {
	for m, want := range map[accounting.MicroUSD]string{
		usd(50): "$50.00", 0: "$0.00", 12_500: "$0.0125", 1: "$0.000001", -1_500_000: "-$1.50", 40_100_000: "$40.10",
	} {
		if got := budget.FormatUSD(m); got != want {
			t.Errorf("FormatUSD(%d) = %q, want %q", m, got, want)
		}
	}
}
