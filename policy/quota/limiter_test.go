package quota_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zones for the daily-reset tests, whatever the machine has

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/providers/llm"
)

func org(id string, l quota.Limits) quota.OrgPolicy {
	return quota.OrgPolicy{Org: id, Tier: quota.Tier{Name: "T", Limits: l}}
}

func TestRequestsPerMinuteExactEdges(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, org("a", quota.Limits{RPM: quota.Limit{Max: 10}}))
	for i := 0; i < 10; i++ {
		take(g, sub("a"), req(0)).mustAllow(t, "burst")
	}
	r := take(g, sub("a"), req(0))
	le := r.mustRefuse(t, "11th", quota.ReasonOrgRPM)
	if le.Kind != llm.KindRateLimit || le.Code != "rate_limit_exceeded" || le.RetryAfter != 6*time.Second || !le.Retryable {
		t.Fatalf("error %+v: want rate_limit_exceeded, retry after 6s", le)
	}
	h := headers(r.d)
	if h["x-ratelimit-limit-requests"] != "10" || h["x-ratelimit-remaining-requests"] != "0" ||
		h["x-ratelimit-reset-requests"] != "1m0s" || h[quota.HeaderReason] != "org_rpm" {
		t.Fatalf("headers %v", h)
	}
	if e.metrics.refusals(quota.ReasonOrgRPM) != 1 {
		t.Fatal("refusal not counted")
	}
	e.clock.Advance(6*time.Second - time.Microsecond)
	if r := take(g, sub("a"), req(0)); r.mustRefuse(t, "1µs early", quota.ReasonOrgRPM).RetryAfter != time.Microsecond {
		t.Fatalf("retry after %v, want 1µs", r.d.RetryAfter)
	}
	e.clock.Advance(time.Microsecond)
	take(g, sub("a"), req(0)).mustAllow(t, "on the edge")
	take(g, sub("a"), req(0)).mustRefuse(t, "right after", quota.ReasonOrgRPM)
	// A full window later the whole burst is back, and no more.
	e.clock.Advance(time.Minute)
	for i := 0; i < 10; i++ {
		take(g, sub("a"), req(0)).mustAllow(t, "second burst")
	}
	take(g, sub("a"), req(0)).mustRefuse(t, "after the second burst", quota.ReasonOrgRPM)
}

func TestBurstAllowance(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, org("a", quota.Limits{RPM: quota.Limit{Max: 60, Burst: 5}}))
	for i := 0; i < 5; i++ {
		take(g, sub("a"), req(0)).mustAllow(t, "burst")
	}
	if r := take(g, sub("a"), req(0)); r.mustRefuse(t, "6th", quota.ReasonOrgRPM).RetryAfter != time.Second {
		t.Fatalf("retry after %v, want 1s", r.d.RetryAfter)
	}
	e.clock.Advance(3 * time.Second)
	for i := 0; i < 3; i++ {
		take(g, sub("a"), req(0)).mustAllow(t, "refill")
	}
	take(g, sub("a"), req(0)).mustRefuse(t, "past the refill", quota.ReasonOrgRPM)
}

func TestTokenReservationIsCorrected(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	g := e.gate(t, org("a", quota.Limits{TPM: quota.Limit{Max: 1000}}))
	h1 := take(g, sub("a"), req(600)).mustAllow(t, "600")
	if d := h1.Decision(); d.Tokens.Limit != 1000 || d.Tokens.Remaining != 400 || d.Tokens.Reason != quota.ReasonOrgTPM {
		t.Fatalf("tokens status %+v", d.Tokens)
	}
	r := take(g, sub("a"), req(500))
	if r.mustRefuse(t, "500 more", quota.ReasonOrgTPM).RetryAfter != 6*time.Second { // 100 tokens at 60 ms each
		t.Fatalf("retry after %v", r.d.RetryAfter)
	}
	// The first request used 200 of its 600: 400 come back.
	if err := h1.Commit(ctx, llm.Usage{PromptTokens: 150, CompletionTokens: 50, TotalTokens: 200}); err != nil {
		t.Fatal(err)
	}
	h2 := take(g, sub("a"), req(500)).mustAllow(t, "after the refund")
	if got := h2.Decision().Tokens.Remaining; got != 300 {
		t.Fatalf("remaining %d, want 300", got)
	}
	// It then used 900: 400 more than reserved are charged.
	if err := h2.CommitTokens(ctx, 900); err != nil {
		t.Fatal(err)
	}
	r = take(g, sub("a"), req(1))
	if r.mustRefuse(t, "in debt", quota.ReasonOrgTPM).RetryAfter != 6060*time.Millisecond { // level 1100: wait for 101
		t.Fatalf("retry after %v", r.d.RetryAfter)
	}
	// Settling twice does nothing.
	if err := h1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	take(g, sub("a"), req(1)).mustRefuse(t, "after a second settle", quota.ReasonOrgTPM)
}

func TestReleaseGivesEverythingBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	g := e.gate(t, org("a", quota.Limits{RPM: quota.Limit{Max: 2}, TPD: quota.Limit{Max: 1000}}))
	h1 := take(g, sub("a"), req(400)).mustAllow(t, "1")
	take(g, sub("a"), req(400)).mustAllow(t, "2")
	take(g, sub("a"), req(100)).mustRefuse(t, "3", quota.ReasonOrgRPM)
	if err := h1.Release(ctx); err != nil { // cancelled before it used anything
		t.Fatal(err)
	}
	h3 := take(g, sub("a"), req(100)).mustAllow(t, "3 after release")
	if d := h3.Decision(); d.Requests.Remaining != 0 || d.Tokens.Remaining != 500 {
		t.Fatalf("after release: %+v %+v", d.Requests, d.Tokens)
	}
}

func TestAllLimitsOrNone(t *testing.T) {
	e := newEnv(t)
	p := org("a", quota.Limits{RPM: quota.Limit{Max: 100}})
	p.Keys = []quota.KeyLimits{{KeyID: "k1", Limits: quota.Limits{RPD: quota.Limit{Max: 2}}}}
	g := e.gate(t, p)
	take(g, sub("a"), req(0)).mustAllow(t, "1")
	take(g, sub("a"), req(0)).mustAllow(t, "2")
	le := take(g, sub("a"), req(0)).mustRefuse(t, "3", quota.ReasonKeyRPD)
	if le.Kind != llm.KindQuotaExceeded || le.Code != "insufficient_quota" || le.RetryAfter != 14*time.Hour {
		t.Fatalf("error %+v", le)
	}
	// The refused request took nothing from the org's minute.
	d := take(g, quota.Subject{Org: "a", KeyID: "k2"}, req(0)).mustAllow(t, "other key").Decision()
	if d.Requests.Reason != quota.ReasonOrgRPM || d.Requests.Remaining != 97 {
		t.Fatalf("org rpm after refusal %+v, want 97 remaining", d.Requests)
	}
}

func TestDailyResetAtMidnightInOrgZone(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	p := org("a", quota.Limits{RPD: quota.Limit{Max: 2}, TPD: quota.Limit{Max: 1000}})
	p.Location = kolkata
	g := e.gate(t, p)
	e.clock.Set(time.Date(2025, 3, 3, 23, 59, 59, 0, kolkata))
	take(g, sub("a"), req(10)).mustAllow(t, "1")
	take(g, sub("a"), req(10)).mustAllow(t, "2")
	r := take(g, sub("a"), req(10))
	le := r.mustRefuse(t, "3", quota.ReasonOrgRPD)
	if le.Kind != llm.KindQuotaExceeded || le.Code != "insufficient_quota" || le.RetryAfter != time.Second ||
		r.d.Requests.Reset != time.Second {
		t.Fatalf("error %+v, decision %+v", le, r.d)
	}
	e.clock.Advance(time.Second - time.Microsecond)
	take(g, sub("a"), req(10)).mustRefuse(t, "1µs before midnight", quota.ReasonOrgRPD)
	e.clock.Advance(time.Microsecond)
	d := take(g, sub("a"), req(10)).mustAllow(t, "local midnight").Decision()
	if d.Requests.Remaining != 1 || d.Tokens.Remaining != 990 || d.Requests.Reset != 24*time.Hour {
		t.Fatalf("new day: %+v %+v", d.Requests, d.Tokens)
	}
	take(g, sub("a"), req(10)).mustAllow(t, "2 on the new day")
	// UTC midnight (05:30 in Kolkata) is not a reset.
	e.clock.Set(time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC))
	if r := take(g, sub("a"), req(10)); r.mustRefuse(t, "at UTC midnight", quota.ReasonOrgRPD).RetryAfter != 18*time.Hour+30*time.Minute {
		t.Fatalf("retry after %v", r.d.RetryAfter)
	}
}

func TestDailyResetAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	p := org("a", quota.Limits{RPD: quota.Limit{Max: 1}})
	p.Location = ny
	g := e.gate(t, p)
	e.clock.Set(time.Date(2025, 3, 9, 0, 0, 0, 0, ny)) // clocks go forward at 02:00: a 23-hour day
	take(g, sub("a"), req(0)).mustAllow(t, "1")
	if r := take(g, sub("a"), req(0)); r.mustRefuse(t, "2", quota.ReasonOrgRPD).RetryAfter != 23*time.Hour {
		t.Fatalf("retry after %v, want 23h", r.d.RetryAfter)
	}
	e.clock.Advance(23 * time.Hour)
	take(g, sub("a"), req(0)).mustAllow(t, "next local day")
}

func TestSchedulesRaiseLimits(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	mustDate := func(s string) quota.Date {
		d, err := quota.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	e := newEnv(t)
	p := org("a", quota.Limits{RPD: quota.Limit{Max: 10}})
	p.Location = berlin
	p.Schedules = []quota.Schedule{
		{Name: "peak season", From: mustDate("05-01"), To: mustDate("09-30"), Multiplier: 2},
		{Name: "winter", From: mustDate("11-15"), To: mustDate("02-15"), Multiplier: 3},
		{Name: "launch", From: mustDate("2025-06-10"), To: mustDate("2025-06-10"), Limits: quota.Limits{RPD: quota.Limit{Max: 1000}}},
	}
	g := e.gate(t, p)
	dailyLimit := func(at time.Time) int64 {
		t.Helper()
		e.clock.Set(at)
		return take(g, quota.Subject{Org: "a", KeyID: at.String()}, req(0)).mustAllow(t, at.String()).Decision().Requests.Limit
	}
	for _, c := range []struct {
		at   time.Time
		want int64
	}{
		{time.Date(2025, 4, 30, 23, 59, 0, 0, berlin), 10},
		{time.Date(2025, 5, 1, 0, 0, 0, 0, berlin), 20},
		{time.Date(2025, 6, 10, 12, 0, 0, 0, berlin), 1000}, // the season's ×2, then (in order) the launch's override
		{time.Date(2025, 9, 30, 23, 0, 0, 0, berlin), 20},
		{time.Date(2025, 10, 1, 0, 0, 0, 0, berlin), 10},
		{time.Date(2026, 1, 10, 8, 0, 0, 0, berlin), 30},
		{time.Date(2026, 2, 16, 8, 0, 0, 0, berlin), 10},
	} {
		if got := dailyLimit(c.at); got != c.want {
			t.Errorf("%s: daily limit %d, want %d", c.at, got, c.want)
		}
	}
	// Exact counts under the season's limit.
	e.clock.Set(time.Date(2025, 7, 1, 9, 0, 0, 0, berlin))
	for i := 0; i < 20; i++ {
		take(g, sub("a"), req(0)).mustAllow(t, "peak")
	}
	take(g, sub("a"), req(0)).mustRefuse(t, "21st in peak season", quota.ReasonOrgRPD)
}

func TestPriorityMode(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, org("a", quota.Limits{RPM: quota.Limit{Max: 10}}))
	until := e.lim.StartPriorityMode("a", 0)
	if !until.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("priority mode until %v, want 24h", until)
	}
	for i := 0; i < 20; i++ {
		d := take(g, sub("a"), req(0)).mustAllow(t, "priority").Decision()
		if d.Class != quota.ClassPriorityMode {
			t.Fatalf("class %d", d.Class)
		}
	}
	take(g, sub("a"), req(0)).mustRefuse(t, "21st", quota.ReasonOrgRPM)
	e.clock.Advance(24 * time.Hour)
	if !e.lim.PriorityUntil("a").IsZero() {
		t.Fatal("priority mode did not expire")
	}
	for i := 0; i < 10; i++ {
		if d := take(g, sub("a"), req(0)).mustAllow(t, "normal").Decision(); d.Class != 0 {
			t.Fatalf("class %d after expiry", d.Class)
		}
	}
	take(g, sub("a"), req(0)).mustRefuse(t, "11th after expiry", quota.ReasonOrgRPM)

	// A priority mode in the policy, with its own limits, takes effect on reload.
	p := org("b", quota.Limits{RPM: quota.Limit{Max: 10}})
	p.Priority = quota.PriorityMode{Until: e.clock.Now().Add(time.Hour), Limits: quota.Limits{RPM: quota.Limit{Max: 50}}}
	g = e.gate(t, p)
	for i := 0; i < 50; i++ {
		take(g, sub("b"), req(0)).mustAllow(t, "policy priority")
	}
	take(g, sub("b"), req(0)).mustRefuse(t, "51st", quota.ReasonOrgRPM)
}

func TestShadowLimitObservesOnly(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, org("a", quota.Limits{RPM: quota.Limit{Max: 100}, RPD: quota.Limit{Max: 2, Shadow: true}}))
	for i := 0; i < 4; i++ {
		d := take(g, sub("a"), req(0)).mustAllow(t, "shadow").Decision()
		want := []quota.Reason(nil)
		if i >= 2 {
			want = []quota.Reason{quota.ReasonOrgRPD}
		}
		if !slices.Equal(d.Shadowed, want) {
			t.Fatalf("request %d: shadowed %v, want %v", i+1, d.Shadowed, want)
		}
		h := headers(d)
		if h["x-ratelimit-limit-requests"] != "100" {
			t.Fatalf("a shadow limit must not be the advertised one: %v", h)
		}
		if (i >= 2) != (h[quota.HeaderShadow] == "org_rpd") {
			t.Fatalf("request %d: headers %v", i+1, h)
		}
	}
	if e.metrics.shadows(quota.ReasonOrgRPD) != 2 || e.metrics.refusals(quota.ReasonOrgRPD) != 0 {
		t.Fatalf("metrics: %d shadow, %d enforced", e.metrics.shadows(quota.ReasonOrgRPD), e.metrics.refusals(quota.ReasonOrgRPD))
	}
	// Enforcing it (a reload, no restart): it counted what it would have admitted.
	g = e.gate(t, org("a", quota.Limits{RPM: quota.Limit{Max: 100}, RPD: quota.Limit{Max: 2}}))
	take(g, sub("a"), req(0)).mustRefuse(t, "enforced", quota.ReasonOrgRPD)
}

func TestHeadersShowTightestLimits(t *testing.T) {
	e := newEnv(t)
	p := org("a", quota.Limits{RPM: quota.Limit{Max: 100}, TPM: quota.Limit{Max: 10_000}})
	p.Keys = []quota.KeyLimits{{KeyID: "k1", Limits: quota.Limits{RPM: quota.Limit{Max: 5}, TPD: quota.Limit{Max: 500}}}}
	g := e.gate(t, p)
	h := headers(take(g, sub("a"), req(100)).mustAllow(t, "1").Decision())
	want := map[string]string{
		"x-ratelimit-limit-requests":     "5",
		"x-ratelimit-remaining-requests": "4",
		"x-ratelimit-reset-requests":     "12s",
		"x-ratelimit-limit-tokens":       "500",
		"x-ratelimit-remaining-tokens":   "400",
		"x-ratelimit-reset-tokens":       "14h0m0s",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("%s = %q, want %q", k, h[k], v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("headers %v", h)
	}
}

func TestRequestLargerThanLimit(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, org("a", quota.Limits{TPM: quota.Limit{Max: 1000}}))
	le := take(g, sub("a"), req(1500)).mustRefuse(t, "too large", quota.ReasonOrgTPM)
	if le.RetryAfter != 0 || le.Retryable || !strings.Contains(le.Msg, "too large") {
		t.Fatalf("error %+v", le)
	}
	take(g, sub("a"), req(1000)).mustAllow(t, "exactly the burst")
}

func TestOverride(t *testing.T) {
	free := quota.ExampleTiers()[0]
	got := free.Limits.Override(quota.Limits{
		RPD: quota.Limit{Max: 50},
		TPM: quota.Limit{Max: quota.Unlimited},
		RPM: quota.Limit{Shadow: true, Burst: 1},
	})
	want := quota.Limits{
		RPM: quota.Limit{Max: free.Limits.RPM.Max, Burst: 1, Shadow: true},
		RPD: quota.Limit{Max: 50},
		TPD: free.Limits.TPD,
	}
	if got != want {
		t.Fatalf("override:\n got %+v\nwant %+v", got, want)
	}
	if free.Limits.RPD.Max != 10 || quota.ExampleTiers()[1].Limits.RPD.Max != 100 {
		t.Fatal("example tiers: FREE 10/day, STARTER 100/day")
	}
	// Applied by the gate: the org overrides its tier.
	e := newEnv(t)
	p := quota.OrgPolicy{Org: "a", Tier: free, Override: quota.Limits{RPD: quota.Limit{Max: 3}}}
	g := e.gate(t, p)
	for i := 0; i < 3; i++ {
		take(g, sub("a"), req(0)).mustAllow(t, "override")
	}
	take(g, sub("a"), req(0)).mustRefuse(t, "past override", quota.ReasonOrgRPD)
}

func TestReserveEstimatesFromExchange(t *testing.T) {
	e := newEnv(t)
	p := org("a", quota.Limits{TPD: quota.Limit{Max: 100_000}})
	g := e.gate(t, p)
	n := func(v int) *int { return &v }
	x := &policy.Exchange{
		Principal:             &policy.Principal{Org: "a", KeyID: "k1"},
		Chat:                  &llm.Request{MaxTokens: n(100), N: n(2)},
		EstimatedPromptTokens: 50,
	}
	h, err := g.Reserve(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Decision().Need; got != (quota.Need{Requests: 1, Tokens: 250}) {
		t.Fatalf("need %+v, want 50 + 2×100", got)
	}
	if err := h.Commit(context.Background(), llm.Usage{TotalTokens: 30}); err != nil {
		t.Fatal(err)
	}
	x.Chat = &llm.Request{}
	if got := g.Estimate(x).Tokens; got != 50+quota.DefaultOutputTokens {
		t.Fatalf("default output estimate: %d", got)
	}
	p.Output = quota.Output{Default: 300, Cap: 200}
	g = e.gate(t, p)
	x.Chat = &llm.Request{MaxCompletionTokens: n(5000)}
	if got := g.Estimate(x).Tokens; got != 250 {
		t.Fatalf("capped estimate: %d, want 50 + 200", got)
	}
	x.Chat = nil // embeddings: the input only
	if got := g.Estimate(x).Tokens; got != 50 {
		t.Fatalf("embeddings estimate: %d", got)
	}
	d := take(g, sub("a"), req(1)).mustAllow(t, "after commit").Decision()
	if d.Tokens.Remaining != 100_000-30-1 {
		t.Fatalf("remaining %d after committing 30", d.Tokens.Remaining)
	}
}

func TestUnlistedOrgs(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t) // no policy: unlimited
	h := take(g, sub("x"), req(1e9)).mustAllow(t, "unlimited")
	if len(headers(h.Decision())) != 0 {
		t.Fatal("an unlimited org gets no rate-limit headers")
	}
	if err := h.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	def := org("", quota.Limits{RPD: quota.Limit{Max: 1}})
	g, err := e.lim.NewGate(quota.Policies{Default: &def})
	if err != nil {
		t.Fatal(err)
	}
	take(g, sub("x"), req(0)).mustAllow(t, "default 1")
	take(g, sub("x"), req(0)).mustRefuse(t, "default 2", quota.ReasonOrgRPD)
	take(g, sub("y"), req(0)).mustAllow(t, "each org its own")
}

func TestNewGateRejectsBadPolicies(t *testing.T) {
	e := newEnv(t)
	bad := []quota.Policies{
		{Orgs: []quota.OrgPolicy{{Org: "a"}, {Org: "a"}}},
		{Orgs: []quota.OrgPolicy{{Org: ""}}},
		{Orgs: []quota.OrgPolicy{{Org: "a", Tier: quota.Tier{Limits: quota.Limits{RPM: quota.Limit{Max: -3}}}}}},
		{Orgs: []quota.OrgPolicy{{Org: "a", Queue: quota.Queue{Depth: 3}}}},
		{Orgs: []quota.OrgPolicy{{Org: "a", Schedules: []quota.Schedule{{
			From: quota.Date{Year: 2025, Month: 9, Day: 1}, To: quota.Date{Year: 2025, Month: 5, Day: 1}, Multiplier: 2}}}}},
		{Orgs: []quota.OrgPolicy{{Org: "a", Schedules: []quota.Schedule{{
			From: quota.Date{Month: 2, Day: 30}, To: quota.Date{Month: 5, Day: 1}, Multiplier: 2}}}}},
		{Orgs: []quota.OrgPolicy{{Org: "a", Keys: []quota.KeyLimits{{KeyID: "k"}, {KeyID: "k"}}}}},
	}
	for i, p := range bad {
		if _, err := e.lim.NewGate(p); err == nil {
			t.Errorf("policy %d accepted", i)
		}
	}
	for _, s := range []string{"2025-13-01", "05", "x-01", "02-30"} {
		if _, err := quota.ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) accepted", s)
		}
	}
	if d, err := quota.ParseDate("02-29"); err != nil || d.String() != "02-29" {
		t.Errorf("ParseDate(02-29) = %v, %v", d, err)
	}
}

func TestZeroQuotaRefusesEverything(t *testing.T) {
	e := newEnv(t)
	exhausted := org("x", quota.Limits{RPM: quota.Limit{Max: 100}, RPD: quota.Limit{Max: quota.Zero}})
	peak := org("p", quota.Limits{RPD: quota.Limit{Max: quota.Zero}})
	peak.Schedules = []quota.Schedule{{Name: "lifted", From: quota.Date{Month: 3, Day: 1}, To: quota.Date{Month: 3, Day: 31},
		Limits: quota.Limits{RPD: quota.Limit{Max: 2}}}}
	trial := org("s", quota.Limits{TPD: quota.Limit{Max: quota.Zero, Shadow: true}, RPM: quota.Limit{Max: 5}})
	g := e.gate(t, exhausted, peak, trial)

	for i := 0; i < 3; i++ {
		r := take(g, sub("x"), req(10))
		le := r.mustRefuse(t, "zero daily quota", quota.ReasonOrgRPD)
		if le.Kind != llm.KindQuotaExceeded || le.Code != "insufficient_quota" || !strings.Contains(le.Msg, "limit is 0") {
			t.Fatalf("error %+v: want insufficient_quota naming the zero limit", le)
		}
		if le.RetryAfter != 14*time.Hour { // t0 is 10:00 UTC: the day ends in 14 h
			t.Fatalf("retry after %v, want 14h", le.RetryAfter)
		}
		h := headers(r.d)
		if h["x-ratelimit-limit-requests"] != "0" || h["x-ratelimit-remaining-requests"] != "0" || h[quota.HeaderReason] != "org_rpd" {
			t.Fatalf("headers %v", h)
		}
	}
	if n := e.metrics.refusals(quota.ReasonOrgRPD); n != 3 {
		t.Fatalf("%d refusals counted, want 3", n)
	}
	// The org's other limits were not consumed by refused requests: the
	// rpm limit of 100 still has its whole burst.
	g2 := e.gate(t, org("x", quota.Limits{RPM: quota.Limit{Max: 100}}))
	if r := take(g2, sub("x"), req(0)); r.mustAllow(t, "after lifting").Decision().Requests.Remaining != 99 {
		t.Fatalf("remaining %d, want 99", r.d.Requests.Remaining)
	}

	// A schedule overrides the zero limit with a real one.
	take(g, sub("p"), req(0)).mustAllow(t, "schedule 1")
	take(g, sub("p"), req(0)).mustAllow(t, "schedule 2")
	take(g, sub("p"), req(0)).mustRefuse(t, "schedule 3", quota.ReasonOrgRPD)

	// A shadow zero limit reports and never refuses.
	r := take(g, sub("s"), req(10))
	r.mustAllow(t, "shadow zero")
	if !slices.Contains(r.d.Shadowed, quota.ReasonOrgTPD) || headers(r.d)[quota.HeaderShadow] != "org_tpd" {
		t.Fatalf("shadowed %v, headers %v", r.d.Shadowed, headers(r.d))
	}
	if e.metrics.shadows(quota.ReasonOrgTPD) != 1 {
		t.Fatal("shadow refusal not counted")
	}
}
