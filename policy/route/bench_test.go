package route

import (
	"strconv"
	"testing"
	"time"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

// benchTable is a 10-target alias with org rules, windows and varied
// state: one target open, EWMAs and costs all different.
func benchTable(b *testing.B, s Strategy) (*Table, *policy.Exchange) {
	reg := NewRegistry(Options{})
	targets := make([]Target, 10)
	for i := range targets {
		targets[i] = Target{ID: "p" + strconv.Itoa(i%4) + "/m" + strconv.Itoa(i), Provider: "p" + strconv.Itoa(i%4),
			Weight: 1 + i, Cost: float64(10 - i), Caps: CapAll, ContextWindow: 128_000}
	}
	rules, err := NewRules([]OrgRule{{Org: "acme", Bar: []string{"p3"}}, {Org: "other", Only: []string{"p0"}}})
	if err != nil {
		b.Fatal(err)
	}
	tb, err := reg.NewTable(TableConfig{Model: "m", Strategy: s, Targets: targets, Rules: rules})
	if err != nil {
		b.Fatal(err)
	}
	for i := range targets {
		reg.Observe(targets[i].ID, nil, time.Duration(100-i)*time.Millisecond)
	}
	for range 5 {
		reg.Observe(targets[2].ID, &llm.Error{Kind: llm.KindUpstream, Status: 502, Retryable: true}, 0)
	}
	req := &llm.Request{Model: "m", Messages: []llm.Message{
		{Role: "system", Content: "You are terse.", HasContent: true},
		{Role: "user", Content: "Hello", HasContent: true},
		{Role: "assistant", Content: "Hi.", HasContent: true},
		{Role: "user", Content: "What is 2+2?", HasContent: true},
	}, Tools: []llm.Tool{{Type: "function"}}}
	x := &policy.Exchange{Principal: &policy.Principal{Org: "acme", AllModels: true}, Model: "m", Chat: req,
		EstimatedPromptTokens: 40}
	return tb, x
}

func BenchmarkPlan10(b *testing.B) {
	for _, s := range []Strategy{StrategyPriority, StrategyWeighted, StrategyLeastLatency, StrategyLeastBusy, StrategyCost} {
		b.Run(s.String(), func(b *testing.B) {
			tb, x := benchTable(b, s)
			dst := make([]int, 0, MaxTargets)
			b.ReportAllocs()
			for b.Loop() {
				p, err := tb.Plan(dst, x)
				if err != nil || len(p) != 7 {
					b.Fatalf("plan %v, %v", p, err)
				}
			}
		})
	}
}

// BenchmarkFailover10 is the whole per-request routing cost on the success
// path: plan, permit, outcome.
func BenchmarkFailover10(b *testing.B) {
	tb, x := benchTable(b, StrategyLeastLatency)
	var f Failover
	b.ReportAllocs()
	for b.Loop() {
		if err := tb.Begin(&f, x); err != nil {
			b.Fatal(err)
		}
		f.Next()
		f.Done(nil, 50*time.Millisecond)
	}
}

func BenchmarkFailover10Parallel(b *testing.B) {
	tb, x := benchTable(b, StrategyLeastBusy)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var f Failover
		for pb.Next() {
			if err := tb.Begin(&f, x); err != nil {
				b.Fatal(err)
			}
			f.Next()
			f.Done(nil, 50*time.Millisecond)
		}
	})
}
