package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// memLedger keeps appended records in memory.
type memLedger struct {
	mu   sync.Mutex
	recs []ledger.Record
}

func (m *memLedger) Append(_ context.Context, recs ...ledger.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memLedger) all() []ledger.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs)
}

// TestOneRecordPerRequest: answered, refused by quota and refused as a
// bad request each leave exactly one record, with the upstream's usage
// and its cost from the shipped price table for answered ones.
func TestOneRecordPerRequest(t *testing.T) {
	led := &memLedger{}
	table, err := prices.Load(bytes.NewReader(configs.DefaultPrices()), "configs/prices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := &tiersRig{}
	r.fake = fakeopenai.New(t)
	example, err := os.ReadFile("../configs/examples/tiers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r.g = startGateway(t, string(example), map[string]string{"OPENAI_BASE_URL": r.fake.URL(), "OPENAI_API_KEY": "k"},
		func(o *proxy.Options) { o.Ledger, o.Prices = led, table })

	ok := r.chat(t, demoKey)
	var body struct {
		ID    string `json:"id"`
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
			Total      int `json:"total_tokens"`
		} `json:"usage"`
	}
	if ok.status != 200 || json.Unmarshal(ok.body, &body) != nil {
		t.Fatalf("ok: %d %s", ok.status, ok.body)
	}
	refused := r.chat(t, "sk-aigw-exhausted")
	bad := postJSON(t, r.g.URL+"/chat/completions", demoKey, `{"model":"nope","messages":[{"role":"user","content":"x"}]}`)
	if refused.status != 429 || bad.status != 404 {
		t.Fatalf("refused %d, bad %d", refused.status, bad.status)
	}
	recs := led.all()
	if len(recs) != 3 {
		t.Fatalf("%d records for 3 requests: %+v", len(recs), recs)
	}
	byID := map[string]ledger.Record{}
	for _, rec := range recs {
		byID[rec.RequestID] = rec
	}
	a := byID[ok.header.Get("x-request-id")]
	if a.Org != "demo" || a.ModelAlias != "gpt-4o-mini" || a.Provider != "openai" || a.UpstreamModel != "gpt-4o-mini" ||
		a.PromptTokens != body.Usage.Prompt || a.CompletionTokens != body.Usage.Completion || a.TotalTokens != body.Usage.Total ||
		a.UsageEstimated || a.Outcome != ledger.OutcomeOK || a.Status != 200 {
		t.Fatalf("answered record %+v, usage %+v", a, body.Usage)
	}
	p, found := table.Lookup("openai", "gpt-4o-mini")
	if !found {
		t.Fatal("gpt-4o-mini has no price")
	}
	if want := p.Cost(llm.Usage{PromptTokens: a.PromptTokens, CompletionTokens: a.CompletionTokens, TotalTokens: a.TotalTokens}); !a.Priced || a.CostUSDMicros != want || want <= 0 {
		t.Fatalf("cost %v priced %v, want %v", a.CostUSDMicros, a.Priced, want)
	}
	q := byID[refused.header.Get("x-request-id")]
	if q.Org != "exhausted" || q.Status != 429 || q.ErrorType == "" || q.CostUSDMicros != 0 || q.Provider != "" {
		t.Fatalf("refused record %+v", q)
	}
	if b := byID[bad.header.Get("x-request-id")]; b.Status != 404 || b.Outcome == ledger.OutcomeOK {
		t.Fatalf("bad request record %+v", b)
	}
}
