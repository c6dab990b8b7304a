package route

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

func TestNewTableRejects(t *testing.T) {
	reg := NewRegistry(Options{})
	many := make([]Target, MaxTargets+1)
	for i := range many {
		many[i] = Target{ID: strings.Repeat("x", i+1)}
	}
	for name, c := range map[string]TableConfig{
		"empty":        {},
		"too many":     {Targets: many},
		"no id":        {Targets: []Target{{ID: ""}}},
		"duplicate":    {Targets: []Target{{ID: "a"}, {ID: "a"}}},
		"negative":     {Targets: []Target{{ID: "a", Weight: -1}}},
		"weightless":   {Strategy: StrategyWeighted, Targets: []Target{{ID: "a"}, {ID: "b"}}},
		"bad strategy": {Strategy: Strategy(99), Targets: []Target{{ID: "a"}}},
	} {
		if _, err := reg.NewTable(c); err == nil {
			t.Errorf("%s: NewTable accepted %+v", name, c)
		}
	}
	if _, err := reg.NewTable(TableConfig{Targets: many[:MaxTargets]}); err != nil {
		t.Errorf("NewTable with %d targets: %v", MaxTargets, err)
	}
}

func TestParseStrategyAndCaps(t *testing.T) {
	for _, s := range []Strategy{StrategyPriority, StrategyWeighted, StrategyLeastLatency, StrategyLeastBusy, StrategyCost} {
		got, err := ParseStrategy(s.String())
		if err != nil || got != s {
			t.Errorf("ParseStrategy(%q) = %v, %v", s.String(), got, err)
		}
	}
	if s, err := ParseStrategy(""); err != nil || s != StrategyPriority {
		t.Errorf(`ParseStrategy("") = %v, %v`, s, err)
	}
	if _, err := ParseStrategy("round_robin"); err == nil {
		t.Error("ParseStrategy accepted round_robin")
	}
	for _, n := range []string{"tools", "images", "json"} {
		c, err := ParseCap(n)
		if err != nil || c.String() != n {
			t.Errorf("ParseCap(%q) = %v, %v", n, c, err)
		}
	}
	if _, err := ParseCap("audio"); err == nil {
		t.Error("ParseCap accepted audio")
	}
	if got := CapAll.String(); got != "tools|images|json" {
		t.Errorf("CapAll.String() = %q", got)
	}
	if got := Caps(0).String(); got != "none" {
		t.Errorf("Caps(0).String() = %q", got)
	}
}

func TestPlanPriorityAndCost(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: three()})
	if got := ids(tb, plan(t, tb, &policy.Exchange{})); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("priority plan = %v", got)
	}
	targets := three()
	targets[0].Cost, targets[1].Cost, targets[2].Cost = 3, 1, 1
	tb = e.table(TableConfig{Strategy: StrategyCost, Targets: targets})
	if got := ids(tb, plan(t, tb, &policy.Exchange{})); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Errorf("cost plan = %v, want cheapest first, ties in configured order", got)
	}
}

func TestPlanReusesDst(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: three()})
	buf := make([]int, 1, 8)
	buf[0] = 42
	got, err := tb.Plan(buf, &policy.Exchange{})
	if err != nil || len(got) != 3 || &got[0] != &buf[0] {
		t.Fatalf("Plan did not reuse dst from index 0: %v, %v", got, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = tb.Plan(buf[:0], &policy.Exchange{}) }); n != 0 {
		t.Errorf("Plan allocates %v times with a large enough dst", n)
	}
}

func TestPlanLeastBusy(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Strategy: StrategyLeastBusy, Targets: three()})
	x := &policy.Exchange{}
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("idle plan = %v, want configured order on ties", got)
	}
	// Hold two requests on a and one on b.
	var held [3]Failover
	for k := range held {
		if err := tb.Begin(&held[k], x); err != nil {
			t.Fatal(err)
		}
		if _, ok := held[k].Next(); !ok {
			t.Fatal("Next refused")
		}
	}
	// First Begin took a; then b (a busy), then c (a and b busy): 1,1,1.
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("plan with one in flight each = %v", got)
	}
	held[0].Done(nil, 0) // a is idle again
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("plan after a finished = %v", got)
	}
	held[1].Done(nil, 0) // b idle too; only c busy
	held[2].Done(nil, 0)
	var f Failover
	_ = tb.Begin(&f, x)
	f.Next() // a busy
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Errorf("plan with a busy = %v, want a last", got)
	}
	f.Done(nil, 0)
	for _, id := range []string{"a", "b", "c"} {
		if st, _ := e.reg.Status(id); st.InFlight != 0 {
			t.Errorf("%s in flight = %d after every Done", id, st.InFlight)
		}
	}
}

func TestPlanLeastLatency(t *testing.T) {
	clk := newClock()
	reg := NewRegistry(Options{Now: clk.Now, EWMAAlpha: 0.5})
	tb, err := reg.NewTable(TableConfig{Model: "m", Strategy: StrategyLeastLatency, Targets: three()})
	if err != nil {
		t.Fatal(err)
	}
	reg.Observe("a", nil, 300*time.Millisecond)
	reg.Observe("b", nil, 100*time.Millisecond)
	// c never measured: tried first so that it gets measured.
	if got := ids(tb, plan(t, tb, &policy.Exchange{})); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Errorf("plan = %v", got)
	}
	reg.Observe("c", nil, 200*time.Millisecond)
	reg.Observe("b", nil, 500*time.Millisecond) // EWMA 0.5: b = 300ms
	reg.Observe("b", upstreamErr(502), time.Hour)
	if got := ids(tb, plan(t, tb, &policy.Exchange{})); !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Errorf("plan = %v, want c(200) a(300) b(300, later in order)", got)
	}
	if st, _ := reg.Status("b"); st.TTFB != 300*time.Millisecond {
		t.Errorf("b TTFB = %v, want 300ms (failures do not feed the EWMA)", st.TTFB)
	}
}

func TestPlanWeightedDistribution(t *testing.T) {
	reg := NewRegistry(Options{Rand: seeded(42)})
	targets := []Target{
		{ID: "w1", Weight: 1}, {ID: "w0", Weight: 0}, {ID: "w2", Weight: 2}, {ID: "w7", Weight: 7},
	}
	tb, err := reg.NewTable(TableConfig{Model: "m", Strategy: StrategyWeighted, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	const draws = 100_000
	first := map[string]int{}
	secondAfterW7 := map[string]int{}
	buf := make([]int, 0, 4)
	for range draws {
		p, err := tb.Plan(buf, &policy.Exchange{})
		if err != nil {
			t.Fatal(err)
		}
		got := ids(tb, p)
		if len(got) != 4 || got[3] != "w0" {
			t.Fatalf("plan %v: want every target once, zero weight last", got)
		}
		first[got[0]]++
		if got[0] == "w7" {
			secondAfterW7[got[1]]++
		}
	}
	for id, want := range map[string]float64{"w1": 0.1, "w2": 0.2, "w7": 0.7} {
		if got := float64(first[id]) / draws; math.Abs(got-want) > 0.01 {
			t.Errorf("%s first in %.3f of plans, want %.2f±0.01", id, got, want)
		}
	}
	// Without replacement: after w7, w2 comes next 2/3 of the time.
	n := float64(secondAfterW7["w1"] + secondAfterW7["w2"])
	if got := float64(secondAfterW7["w2"]) / n; math.Abs(got-2.0/3) > 0.015 {
		t.Errorf("w2 second after w7 in %.3f of plans, want 0.667", got)
	}
}

func chat(mutate func(r *llm.Request)) *llm.Request {
	r := &llm.Request{Model: "m", Messages: []llm.Message{{Role: "user", Content: "hi", HasContent: true}}}
	if mutate != nil {
		mutate(r)
	}
	return r
}

func TestNeeds(t *testing.T) {
	for name, c := range map[string]struct {
		req  *llm.Request
		want Caps
	}{
		"nil":   {nil, 0},
		"plain": {chat(nil), 0},
		"tools": {chat(func(r *llm.Request) { r.Tools = []llm.Tool{{Type: "function"}} }), CapTools},
		"tool turn": {chat(func(r *llm.Request) {
			r.Messages = append(r.Messages, llm.Message{Role: "tool", ToolCallID: "x", Content: "42"})
		}), CapTools},
		"image": {chat(func(r *llm.Request) {
			r.Messages[0].Parts = []llm.Part{{Type: "text", Text: "see"}, {Type: "image_url", ImageURL: &llm.ImageURL{URL: "data:,"}}}
		}), CapImages},
		"json":        {chat(func(r *llm.Request) { r.ResponseFormat = json.RawMessage(`{"type":"json_object"}`) }), CapJSON},
		"json schema": {chat(func(r *llm.Request) { r.ResponseFormat = json.RawMessage(`{"type": "json_schema","json_schema":{}}`) }), CapJSON},
		"text format": {chat(func(r *llm.Request) { r.ResponseFormat = json.RawMessage(`{"type":"text"}`) }), 0},
	} {
		if got := Needs(c.req); got != c.want {
			t.Errorf("%s: Needs = %v, want %v", name, got, c.want)
		}
	}
}

func TestPlanCapabilities(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: []Target{
		{ID: "plain"},
		{ID: "tools", Caps: CapTools},
		{ID: "small", Caps: CapAll, ContextWindow: 8_000},
		{ID: "big", Caps: CapAll, ContextWindow: 128_000},
	}})
	tools := chat(func(r *llm.Request) { r.Tools = []llm.Tool{{Type: "function"}} })
	image := chat(func(r *llm.Request) {
		r.Messages[0].Parts = []llm.Part{{Type: "image_url", ImageURL: &llm.ImageURL{URL: "https://x/y.png"}}}
	})
	jsonMode := chat(func(r *llm.Request) { r.ResponseFormat = json.RawMessage(`{"type":"json_object"}`) })
	out := 2_000
	capped := chat(func(r *llm.Request) { r.MaxTokens = &out })
	for name, c := range map[string]struct {
		x    policy.Exchange
		want []string
	}{
		"plain":           {policy.Exchange{Chat: chat(nil)}, []string{"plain", "tools", "small", "big"}},
		"no chat":         {policy.Exchange{}, []string{"plain", "tools", "small", "big"}},
		"tools":           {policy.Exchange{Chat: tools}, []string{"tools", "small", "big"}},
		"image":           {policy.Exchange{Chat: image}, []string{"small", "big"}},
		"json":            {policy.Exchange{Chat: jsonMode}, []string{"small", "big"}},
		"long":            {policy.Exchange{Chat: chat(nil), EstimatedPromptTokens: 10_000}, []string{"plain", "tools", "big"}},
		"fits exactly":    {policy.Exchange{Chat: capped, EstimatedPromptTokens: 6_000}, []string{"plain", "tools", "small", "big"}},
		"output too long": {policy.Exchange{Chat: capped, EstimatedPromptTokens: 6_001}, []string{"plain", "tools", "big"}},
		"long image":      {policy.Exchange{Chat: image, EstimatedPromptTokens: 10_000}, []string{"big"}},
	} {
		if got := ids(tb, plan(t, tb, &c.x)); !slices.Equal(got, c.want) {
			t.Errorf("%s: plan = %v, want %v", name, got, c.want)
		}
	}

	_, err := tb.Plan(nil, &policy.Exchange{Chat: image, EstimatedPromptTokens: 200_000})
	var le *llm.Error
	if !errors.As(err, &le) || le.Kind != llm.KindContextLength || !strings.Contains(le.Msg, "128000") {
		t.Errorf("too long for every window: err = %v, want context length naming the largest window", err)
	}

	narrow := e.table(TableConfig{Targets: []Target{{ID: "plain"}, {ID: "tools", Caps: CapTools}}})
	_, err = narrow.Plan(nil, &policy.Exchange{Chat: image})
	if !errors.As(err, &le) || le.Kind != llm.KindInvalidRequest || le.Code != "unsupported_capability" ||
		!strings.Contains(le.Msg, "images") {
		t.Errorf("images without a capable target: err = %v", err)
	}
}

func rulesFor(t *testing.T, rules ...OrgRule) *Rules {
	t.Helper()
	r, err := NewRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func org(name string) *policy.Principal { return &policy.Principal{Org: name, AllModels: true} }

func TestNewRulesRejects(t *testing.T) {
	if _, err := NewRules([]OrgRule{{Org: ""}}); err == nil {
		t.Error("accepted a rule without org")
	}
	if _, err := NewRules([]OrgRule{{Org: "x"}, {Org: "x"}}); err == nil {
		t.Error("accepted two rules for one org")
	}
}

func TestPlanOrgRules(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	targets := []Target{
		{ID: "openai/gpt-4o", Provider: "openai"},
		{ID: "azure/gpt-4o", Provider: "azure"},
		{ID: "anthropic/sonnet", Provider: "anthropic"},
		{ID: "openai/gpt-4o-mini", Provider: "openai"},
	}
	rules := rulesFor(t,
		OrgRule{Org: "pinned", Only: []string{"anthropic"}},
		OrgRule{Org: "barred", Bar: []string{"openai"}},
		OrgRule{Org: "one", Only: []string{"openai/gpt-4o-mini"}},
		OrgRule{Org: "nothing", Only: []string{"openai"}, Bar: []string{"openai"}},
	)
	tb := e.table(TableConfig{Targets: targets, Rules: rules})
	for o, want := range map[string][]string{
		"pinned": {"anthropic/sonnet"},
		"barred": {"azure/gpt-4o", "anthropic/sonnet"},
		"one":    {"openai/gpt-4o-mini"},
		"other":  {"openai/gpt-4o", "azure/gpt-4o", "anthropic/sonnet", "openai/gpt-4o-mini"},
	} {
		if got := ids(tb, plan(t, tb, &policy.Exchange{Principal: org(o)})); !slices.Equal(got, want) {
			t.Errorf("org %s: plan = %v, want %v", o, got, want)
		}
	}
	_, err := tb.Plan(nil, &policy.Exchange{Principal: org("nothing")})
	var le *llm.Error
	if !errors.As(err, &le) || le.Kind != llm.KindPermission {
		t.Errorf("org barred from every target: err = %v, want KindPermission", err)
	}
	// Org rules beat breakers: the pinned org's only target is open, so it
	// gets that target as a last resort, never another provider.
	e.failN("anthropic/sonnet", 5)
	if got := ids(tb, plan(t, tb, &policy.Exchange{Principal: org("pinned")})); !slices.Equal(got, []string{"anthropic/sonnet"}) {
		t.Errorf("pinned org with its target open: plan = %v", got)
	}
}

func TestPlanDebugPin(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	targets := []Target{
		{ID: "openai/gpt-4o", Provider: "openai"},
		{ID: "anthropic/sonnet", Provider: "anthropic"},
		{ID: "openai/gpt-4o-mini", Provider: "openai"},
	}
	rules := rulesFor(t,
		OrgRule{Org: "dev", AllowPin: true},
		OrgRule{Org: "devbarred", AllowPin: true, Bar: []string{"anthropic"}},
		OrgRule{Org: "prod"},
	)
	tb := e.table(TableConfig{Targets: targets, Rules: rules})
	e.failN("openai/gpt-4o-mini", 5) // open: pins go there anyway
	for pin, want := range map[string][]string{
		"anthropic/sonnet":   {"anthropic/sonnet"},
		"openai":             {"openai/gpt-4o", "openai/gpt-4o-mini"},
		"openai/gpt-4o-mini": {"openai/gpt-4o-mini"},
	} {
		x := &policy.Exchange{Principal: org("dev"), PinTarget: pin}
		if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, want) {
			t.Errorf("pin %s: plan = %v, want %v", pin, got, want)
		}
	}
	var f Failover
	if err := tb.Begin(&f, &policy.Exchange{Principal: org("dev"), PinTarget: "openai/gpt-4o-mini"}); err != nil {
		t.Fatal(err)
	}
	if i, ok := f.Next(); !ok || tb.Target(i).ID != "openai/gpt-4o-mini" {
		t.Errorf("pinned open target not admitted: %d %v", i, ok)
	} else {
		f.Done(nil, 0)
	}

	for name, c := range map[string]struct {
		x    policy.Exchange
		kind llm.Kind
	}{
		"org may not pin":   {policy.Exchange{Principal: org("prod"), PinTarget: "openai"}, llm.KindPermission},
		"org without rule":  {policy.Exchange{Principal: org("other"), PinTarget: "openai"}, llm.KindPermission},
		"no principal":      {policy.Exchange{PinTarget: "openai"}, llm.KindPermission},
		"unknown target":    {policy.Exchange{Principal: org("dev"), PinTarget: "gemini"}, llm.KindInvalidRequest},
		"barred target pin": {policy.Exchange{Principal: org("devbarred"), PinTarget: "anthropic/sonnet"}, llm.KindPermission},
	} {
		_, err := tb.Plan(nil, &c.x)
		var le *llm.Error
		if !errors.As(err, &le) || le.Kind != c.kind {
			t.Errorf("%s: err = %v, want kind %v", name, err, c.kind)
		}
	}
	// Without rules nobody may pin.
	bare := e.table(TableConfig{Targets: targets})
	if _, err := bare.Plan(nil, &policy.Exchange{Principal: org("dev"), PinTarget: "openai"}); err == nil {
		t.Error("pin accepted by a table without rules")
	}
}

func TestPlanSkipsOpenTargets(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 2, Cooldown: 10 * time.Second})
	tb := e.table(TableConfig{Targets: three()})
	x := &policy.Exchange{}
	e.failN("a", 2)
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("plan with a open = %v", got)
	}
	e.clk.Advance(3 * time.Second)
	e.failN("c", 2) // c's cooldown ends 3 s after a's
	e.clk.Advance(time.Second)
	e.failN("b", 2)
	// Every breaker open: the one whose cooldown ends first is the plan.
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("plan with all open = %v, want [a] (soonest cooldown end)", got)
	}
	var f Failover
	if err := tb.Begin(&f, x); err != nil {
		t.Fatal(err)
	}
	i, ok := f.Next()
	if !ok || tb.Target(i).ID != "a" {
		t.Fatalf("last resort not admitted: %d %v", i, ok)
	}
	// It fails: a gets a fresh cooldown, so the next last resort is c.
	if _, again := f.Done(upstreamErr(503), 0); again {
		t.Error("Done wants another attempt with a one-target plan")
	}
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("plan after the last resort failed = %v, want [c]", got)
	}
	// c's cooldown ends (13 s after a's first trip): c is live again, as a
	// half-open candidate, the others stay out.
	e.clk.Advance(9 * time.Second)
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("plan after c's cooldown = %v", got)
	}
	if e.state("c") != Open {
		t.Errorf("Plan changed c's state to %v; it must be pure", e.state("c"))
	}
	e.clk.Advance(time.Second) // a's fresh cooldown and b's end
	if got := ids(tb, plan(t, tb, x)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("plan after every cooldown = %v", got)
	}
}
