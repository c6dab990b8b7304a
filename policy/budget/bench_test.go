package budget_test

import (
	"testing"
	"time"

	"github.com/aigw/aigw/policy/budget"
)

// BenchmarkReserveCommit measures one admission and its settlement: a
// Reserve and a Commit over an org's daily and monthly budgets, in
// parallel across GOMAXPROCS goroutines on one org (the contended case).
func BenchmarkReserveCommit(b *testing.B) {
	for _, bc := range []struct {
		name    string
		backend func(b *testing.B) budget.Backend
	}{
		{"memory", func(*testing.B) budget.Backend { return budget.NewMemory() }},
		{"redis", func(b *testing.B) budget.Backend {
			return budget.NewRedis(budget.RedisClient(b), budget.RedisConfig{Namespace: budget.UniqueNamespace(b), Timeout: 5 * time.Second})
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			k := budget.New(bc.backend(b), budget.Options{Clock: func() time.Time { return t0 }})
			g, err := k.NewGate([]budget.OrgPolicy{{Org: "bench", Daily: budget.MaxLimit, Monthly: budget.MaxLimit, FailMode: budget.FailClosed}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h, err := g.Reserve(ctx, budget.Request{ID: "r", Org: "bench", Cost: 1000})
					if err != nil {
						b.Error(err)
						return
					}
					if err := h.Commit(ctx, 900); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
