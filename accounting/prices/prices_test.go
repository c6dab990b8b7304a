package prices

import (
	"strings"
	"testing"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/providers/llm"
)

// shipped loads the price table the gateway ships.
func shipped(t *testing.T) *Table {
	t.Helper()
	tab, err := LoadFile("../../configs/prices.yaml")
	if err != nil {
		t.Fatalf("configs/prices.yaml: %v", err)
	}
	return tab
}

// anthropicUsage normalises Anthropic's usage block the way the adapter
// does: its input_tokens exclude cache reads and writes, which llm.Usage
// counts inside PromptTokens.
func anthropicUsage(input, cacheWrite, cacheRead, output int) llm.Usage {
	return llm.Usage{
		PromptTokens:     input + cacheWrite + cacheRead,
		CachedTokens:     cacheRead,
		CacheWriteTokens: cacheWrite,
		CompletionTokens: output,
		TotalTokens:      input + cacheWrite + cacheRead + output,
	}
}

// geminiUsage normalises Gemini's usageMetadata: promptTokenCount includes
// cached content; thinking tokens are reported apart and bill as output.
func geminiUsage(prompt, cached, candidates, thoughts int) llm.Usage {
	return llm.Usage{
		PromptTokens:     prompt,
		CachedTokens:     cached,
		CompletionTokens: candidates + thoughts,
		ReasoningTokens:  thoughts,
		TotalTokens:      prompt + candidates + thoughts,
	}
}

// TestCostPerProvider checks exact costs, to the micro-dollar, for each
// provider's usage shapes against the shipped prices. The expected values
// are worked out by hand in the comments.
func TestCostPerProvider(t *testing.T) {
	tab := shipped(t)
	tests := []struct {
		name            string
		provider, model string
		usage           llm.Usage
		want            accounting.MicroUSD
	}{
		// OpenAI: prompt_tokens include cached_tokens.
		// 6000 x $2.50 + 4000 x $1.25 + 1500 x $10.00 per 1M = 15000 + 5000 + 15000 µ$.
		{"openai cached", "openai", "gpt-4o-2024-08-06",
			llm.Usage{PromptTokens: 10_000, CachedTokens: 4_000, CompletionTokens: 1_500}, 35_000},
		// completion_tokens include reasoning_tokens, all billed as output:
		// 210 x 1.10 + 1024 x 0.275 + 3000 x 4.40 = 231 + 281.6 + 13200 = 13712.6 -> 13713 µ$.
		{"openai reasoning", "openai", "o4-mini",
			llm.Usage{PromptTokens: 1_234, CachedTokens: 1_024, CompletionTokens: 3_000, ReasoningTokens: 2_500}, 13_713},
		// Embeddings: input only. 123456 x 0.02 = 2469.12 -> 2469 µ$.
		{"openai embedding", "openai", "text-embedding-3-small",
			llm.Usage{PromptTokens: 123_456}, 2_469},
		// Rounding half up once per record: 10 x $0.15 = 1.5 µ$ -> 2; 3 tokens = 0.45 -> 0.
		{"round half up", "openai", "gpt-4o-mini", llm.Usage{PromptTokens: 10}, 2},
		{"round down", "openai", "gpt-4o-mini", llm.Usage{PromptTokens: 3}, 0},
		// Anthropic: input 500, cache write 2000, cache read 10000, output 800:
		// 500 x 3 + 2000 x 3.75 + 10000 x 0.30 + 800 x 15 = 1500 + 7500 + 3000 + 12000 µ$.
		{"anthropic cache", "anthropic", "claude-sonnet-4-5-20250929", anthropicUsage(500, 2_000, 10_000, 800), 24_000},
		// 1000 x 1 + 0 + 50000 x 0.10 + 2000 x 5 = 1000 + 5000 + 10000 µ$.
		{"anthropic haiku", "anthropic", "claude-haiku-4-5", anthropicUsage(1_000, 0, 50_000, 2_000), 16_000},
		// 10 x 15 + 7 x 18.75 + 0 + 3 x 75 = 150 + 131.25 + 225 = 506.25 -> 506 µ$.
		{"anthropic opus", "anthropic", "claude-opus-4-1", anthropicUsage(10, 7, 0, 3), 506},
		// Gemini: prompt 8000 includes 6000 cached; 300 candidates + 1200 thoughts bill as output:
		// 2000 x 0.30 + 6000 x 0.03 + 1500 x 2.50 = 600 + 180 + 3750 µ$.
		{"gemini thinking", "gemini", "gemini-2.5-flash", geminiUsage(8_000, 6_000, 300, 1_200), 4_530},
		// Gemini 2.5 Pro at the 200k threshold bills the short tier:
		// 200000 x 1.25 + 1000 x 10 = 250000 + 10000 µ$.
		{"gemini pro short", "gemini", "gemini-2.5-pro", geminiUsage(200_000, 0, 1_000, 0), 260_000},
		// Above it every token bills the long tier:
		// 150001 x 2.50 + 100000 x 0.25 + 1000 x 15 = 375002.5 + 25000 + 15000 = 415002.5 -> 415003 µ$.
		{"gemini pro long", "gemini", "gemini-2.5-pro", geminiUsage(250_001, 100_000, 1_000, 0), 415_003},
		{"gemini versioned", "gemini", "gemini-2.0-flash-001", geminiUsage(1_000_000, 0, 1_000_000, 0), 500_000},
		{"mock", "mock", "anything", llm.Usage{PromptTokens: 1_000, CompletionTokens: 1_000}, 0},
	}
	for _, tt := range tests {
		got, priced := tab.Cost(tt.provider, tt.model, tt.usage)
		if !priced {
			t.Errorf("%s: %s/%s unpriced", tt.name, tt.provider, tt.model)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: cost %d µ$ (%s), want %d", tt.name, got, got, tt.want)
		}
	}
}

func TestUnknownModelsAreUnpriced(t *testing.T) {
	tab := shipped(t)
	for _, pm := range [][2]string{
		{"openai", "gpt-4o-mini-tts"}, {"openai", "gpt-5-ultra"}, {"anthropic", "claude-unknown"},
		{"gemini", "gemini-9"}, {"azure", "my-deployment"}, {"vllm", "llama"},
	} {
		cost, priced := tab.Cost(pm[0], pm[1], llm.Usage{PromptTokens: 100, CompletionTokens: 100})
		if priced || cost != 0 {
			t.Errorf("%s/%s: priced=%v cost=%d, want unpriced", pm[0], pm[1], priced, cost)
		}
	}
}

func TestLookupRules(t *testing.T) {
	tab, err := New([]Price{
		{Provider: "openai", Model: "gpt-4o", Rates: Rates{Input: 1}},
		{Provider: "OpenAI", Model: "o3", Rates: Rates{Input: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		provider, model string
		found           bool
		want            string
	}{
		{"openai", "gpt-4o", true, "gpt-4o"},
		{"OPENAI", "GPT-4o", true, "gpt-4o"},
		{"openai", "gpt-4o-2024-11-20", true, "gpt-4o"},
		{"openai", "gpt-4o-latest", true, "gpt-4o"},
		{"openai", "o3-2025-04-16", true, "o3"},
		{"openai", "gpt-4o-mini", false, ""}, // no prefix matching
		{"openai", "gpt-4o-mini-2024-07-18", false, ""},
		{"openai", "gpt-4o-2024", false, ""},
		{"azure", "gpt-4o", false, ""},
	} {
		p, ok := tab.Lookup(tt.provider, tt.model)
		if ok != tt.found || (ok && p.Model != tt.want) {
			t.Errorf("Lookup(%s, %s) = %v, %v; want %v %s", tt.provider, tt.model, p, ok, tt.found, tt.want)
		}
	}
	var nilTab *Table
	if _, ok := nilTab.Lookup("openai", "gpt-4o"); ok {
		t.Error("nil table found a price")
	}
}

func TestTrimVersion(t *testing.T) {
	for in, want := range map[string]string{
		"gpt-4o-2024-08-06": "gpt-4o", "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
		"gemini-2.0-flash-001": "gemini-2.0-flash", "chatgpt-4o-latest": "chatgpt-4o",
		"gpt-4o": "gpt-4o", "o3": "o3", "-001": "-001", "gpt-4o-2024-8-06": "gpt-4o-2024-8-06",
		"model-12345678": "model", "x-1234567": "x-1234567", "gpt-4-0613": "gpt-4-0613", "m-01": "m-01",
	} {
		if got := trimVersion(in); got != want {
			t.Errorf("trimVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestForTarget(t *testing.T) {
	tab, err := New([]Price{
		{Provider: "openai", Model: "gpt-4o", Rates: Rates{Input: 1}},
		{Provider: "openai-eu", Model: "gpt-4o", Rates: Rates{Input: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tab.ForTarget(&llm.Target{Provider: "openai-eu", Type: "openai", Model: "gpt-4o"})
	if !ok || p.Input != 2 {
		t.Errorf("policy provider id not preferred: %+v %v", p, ok)
	}
	p, ok = tab.ForTarget(&llm.Target{Provider: "primary", Type: "openai", Model: "gpt-4o-2024-08-06"})
	if !ok || p.Input != 1 {
		t.Errorf("provider type fallback: %+v %v", p, ok)
	}
	if _, ok := tab.ForTarget(&llm.Target{Provider: "primary", Type: "anthropic", Model: "gpt-4o"}); ok {
		t.Error("priced a model under the wrong provider type")
	}
}

func TestUnpriced(t *testing.T) {
	tab := shipped(t)
	targets := []llm.Target{
		{Provider: "primary", Type: "openai", Model: "gpt-4o-mini"},
		{Provider: "eu", Type: "azure", Model: "my-gpt4o-deployment"},
		{Provider: "claude", Type: "anthropic", Model: "claude-haiku-4-5-20251001"},
		{Provider: "local", Type: "mock", Model: "anything"},
		{Provider: "g", Type: "gemini", Model: "gemini-1.0-pro"},
	}
	got := tab.Unpriced(targets)
	if len(got) != 2 || got[0].Model != "my-gpt4o-deployment" || got[1].Model != "gemini-1.0-pro" {
		t.Errorf("Unpriced = %+v", got)
	}
}

func TestMergeOverrides(t *testing.T) {
	base := shipped(t)
	n := base.Len()
	over, err := base.Merge([]Price{
		{Provider: "openai", Model: "gpt-4o", Rates: Rates{Input: 2_000_000, Output: 8_000_000, CachedInput: 1_000_000, CacheWrite: 2_000_000}, Origin: "policy.yaml:3"},
		{Provider: "azure", Model: "prod-gpt4o", Rates: Rates{Input: 2_500_000, Output: 10_000_000, CachedInput: 1_250_000, CacheWrite: 2_500_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if over.Len() != n+1 {
		t.Errorf("merged table has %d prices, want %d", over.Len(), n+1)
	}
	if p, _ := over.Lookup("openai", "gpt-4o"); p.Input != 2_000_000 || p.Origin != "policy.yaml:3" {
		t.Errorf("override not applied: %+v", p)
	}
	if p, _ := base.Lookup("openai", "gpt-4o"); p.Input != 2_500_000 {
		t.Errorf("Merge modified the base table: %+v", p)
	}
	if _, ok := over.Lookup("azure", "prod-gpt4o"); !ok {
		t.Error("added price missing")
	}
	if _, err := base.Merge([]Price{{Provider: "x", Model: "y"}, {Provider: "x", Model: "Y"}}); err == nil {
		t.Error("duplicate overrides accepted")
	}
}

func TestShippedTable(t *testing.T) {
	tab := shipped(t)
	want := []string{
		"openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4.1-nano",
		"openai/o3", "openai/o4-mini", "openai/text-embedding-3-small", "openai/text-embedding-3-large",
		"anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5", "anthropic/claude-opus-4-1",
		"anthropic/claude-sonnet-4-20250514", "anthropic/claude-sonnet-4-0",
		"gemini/gemini-2.0-flash", "gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro",
	}
	for _, pm := range want {
		provider, model, _ := strings.Cut(pm, "/")
		p, ok := tab.Lookup(provider, model)
		if !ok {
			t.Errorf("%s missing", pm)
			continue
		}
		if p.Source == "" || p.AsOf == "" {
			t.Errorf("%s has no source or date", pm)
		}
		if p.Input <= 0 || (p.Output <= 0 && !strings.HasPrefix(model, "text-embedding")) {
			t.Errorf("%s has a zero price: %+v", pm, p.Rates)
		}
		if p.CachedInput > p.Input {
			t.Errorf("%s: cached input dearer than input", pm)
		}
	}
	// Exactness: a price with three decimals is held exactly.
	if p, _ := tab.Lookup("openai", "o4-mini"); p.CachedInput != 275_000 {
		t.Errorf("o4-mini cached_input = %d µ$/M, want 275000", p.CachedInput)
	}
	if all := tab.All(); len(all) != tab.Len() || all[0].Provider > all[len(all)-1].Provider {
		t.Error("All is not the sorted table")
	}
}

func TestLoadErrors(t *testing.T) {
	tests := map[string]string{
		"unknown key": "prices:\n  - provider: openai\n    model: x\n    input: 1\n    output: 1\n    cache_read: 1\n",
		"precision":   "prices:\n  - provider: openai\n    model: x\n    input: 0.0000001\n    output: 1\n",
		"negative":    "prices:\n  - provider: openai\n    model: x\n    input: -1\n    output: 1\n",
		"not number":  "prices:\n  - provider: openai\n    model: x\n    input: cheap\n    output: 1\n",
		"exponent":    "prices:\n  - provider: openai\n    model: x\n    input: 1e-3\n    output: 1\n",
		"no output":   "prices:\n  - provider: openai\n    model: x\n    input: 1\n",
		"duplicate":   "prices:\n  - {provider: openai, model: x, input: 1, output: 1}\n  - {provider: OpenAI, model: X, input: 2, output: 2}\n",
		"no model":    "prices:\n  - {provider: openai, input: 1, output: 1}\n",
		"top key":     "price:\n  - {provider: openai, model: x, input: 1, output: 1}\n",
		"source":      "sources:\n  - {provider: openai}\nprices: []\n",
		"long tier":   "prices:\n  - provider: g\n    model: x\n    input: 1\n    output: 1\n    long_context: {input: 2, output: 2}\n",
		"long key":    "prices:\n  - provider: g\n    model: x\n    input: 1\n    output: 1\n    long_context: {above_prompt_tokens: 5, input: 2, output: 2, extra: 1}\n",
		"empty":       "",
	}
	for name, src := range tests {
		_, err := Load(strings.NewReader(src), "p.yaml")
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "p.yaml") {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
	// Lines are reported.
	_, err := Load(strings.NewReader(tests["unknown key"]), "p.yaml")
	if err == nil || !strings.Contains(err.Error(), "line 6") {
		t.Errorf("unknown key error lacks its line: %v", err)
	}
}

func TestLoadDefaults(t *testing.T) {
	tab, err := Load(strings.NewReader("prices:\n  - {provider: openai, model: x, input: 2.5, output: 10, aliases: [y]}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tab.Lookup("openai", "x")
	if !ok || p.CachedInput != p.Input || p.CacheWrite != p.Input || p.Origin != "p.yaml:2" {
		t.Errorf("defaults: %+v", p)
	}
	if _, ok := tab.Lookup("openai", "y"); !ok {
		t.Error("alias not priced")
	}
}

func TestCostClampsAndSaturates(t *testing.T) {
	p := &Price{Rates: Rates{Input: 1_000_000, Output: 1_000_000, CachedInput: 500_000, CacheWrite: 2_000_000}}
	// More cached than prompt tokens: uncached clamps at zero.
	if got := p.Cost(llm.Usage{PromptTokens: 10, CachedTokens: 20}); got != 10 {
		t.Errorf("clamped cost = %d, want 10", got)
	}
	if got := p.Cost(llm.Usage{PromptTokens: -5, CompletionTokens: -5}); got != 0 {
		t.Errorf("negative usage cost = %d", got)
	}
	huge := &Price{Rates: Rates{Input: 1 << 62, Output: 1 << 62}}
	if got := huge.Cost(llm.Usage{PromptTokens: 1 << 62, CompletionTokens: 1 << 62}); got != 1<<63-1 {
		t.Errorf("overflow not saturated: %d", got)
	}
}

func BenchmarkCost(b *testing.B) {
	tab, err := LoadFile("../../configs/prices.yaml")
	if err != nil {
		b.Fatal(err)
	}
	u := llm.Usage{PromptTokens: 12_000, CachedTokens: 4_000, CompletionTokens: 900}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tab.Cost("openai", "gpt-4o-2024-08-06", u)
	}
}
