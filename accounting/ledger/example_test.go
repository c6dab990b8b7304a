package ledger_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/providers/llm"
)

// Example shows what the gateway does with accounting: load prices and
// open the ledger at start, and at each request's Finish price the usage
// and append one record; close the ledger at shutdown.
func Example() {
	dir, _ := os.MkdirTemp("", "ledger-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// Start-up (composition root).
	table, err := prices.LoadFile("../../configs/prices.yaml")
	if err != nil {
		panic(err)
	}
	led, err := ledger.Open(ctx, ledger.Config{
		DSN: "sqlite:" + filepath.Join(dir, "aigw.db"),
		Options: ledger.Options{
			SpillDir:  filepath.Join(dir, "spill"),
			Retention: ledger.DefaultRetention(),
		},
	})
	if err != nil {
		panic(err)
	}
	gbp, _ := accounting.ParseRate("GBP", "0.79") // the org's display currency

	// Finish of one request.
	target := &llm.Target{Provider: "anthropic", Type: "anthropic", Model: "claude-sonnet-4-5-20250929"}
	usage := llm.Usage{PromptTokens: 12_500, CachedTokens: 10_000, CacheWriteTokens: 2_000, CompletionTokens: 800}
	rec := ledger.Record{
		RequestID: "req_0123", Time: time.Now(), Org: "acme", KeyID: "k1", User: "user-42",
		Endpoint: "chat_completions", ModelAlias: "claude", Provider: target.Provider, UpstreamModel: target.Model,
		TotalTime: 850 * time.Millisecond, Status: 200, UseCase: "venue-search", WeddingRelated: true,
	}
	rec.SetUsage(usage)
	var cost accounting.MicroUSD
	p, priced := table.ForTarget(target)
	if priced {
		cost = p.Cost(usage)
	}
	rec.SetCost(cost, priced, gbp)
	rec.SetError(nil)
	// A context that outlives the client connection; Append returns once
	// the record is fsynced.
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := led.Append(actx, rec); err != nil {
		fmt.Println("ledger:", err)
	}
	cancel()
	fmt.Printf("cost $%s = £%s\n", cost, accounting.MicroUSD(rec.CostDisplayMicros))

	// Shutdown: flush to the store.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := led.Close(cctx); err != nil {
		fmt.Println("ledger:", err)
	}
	// Output: cost $0.024000 = £0.018960
}
