package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/proxy"
)

// replayUpstream answers every request with one recorded provider answer
// (a JSON body, or an SSE stream for a .sse file), whatever the provider's
// path: the gateway's adapters read it as that provider's wire format.
type replayUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	file string
}

func newReplayUpstream(t *testing.T) *replayUpstream {
	u := &replayUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		file := u.file
		u.mu.Unlock()
		b, err := os.ReadFile(file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if strings.HasSuffix(file, ".sse") {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *replayUpstream) serve(file string) {
	u.mu.Lock()
	u.file = file
	u.mu.Unlock()
}

// TestLedgerExactPerProvider replays recorded answers of each provider
// through the gateway and checks the record's tokens and cost against
// figures worked out by hand from the shipped prices (USD per million
// tokens) and each provider's way of counting:
//
//   - OpenAI: prompt tokens include cached ones, completion tokens include
//     reasoning ones;
//   - Anthropic: input tokens exclude cache reads and writes, which are
//     priced apart (reads at 0.1x, 5-minute writes at 1.25x input);
//   - Gemini: the prompt count includes cached tokens, thinking tokens bill
//     as output.
//
// Costs are rounded half up to the micro-dollar once per request.
func TestLedgerExactPerProvider(t *testing.T) {
	up := newReplayUpstream(t)
	led := &memLedger{}
	policy := `
providers:
  - {id: openai, type: openai, base_url: "` + up.URL + `/v1", api_key: k}
  - {id: anthropic, type: anthropic, base_url: "` + up.URL + `", api_key: k}
  - {id: gemini, type: gemini, base_url: "` + up.URL + `", api_key: k}
models:
  - {id: mini, targets: [{provider: openai, model: gpt-4o-mini}]}
  - {id: sonnet, targets: [{provider: anthropic, model: claude-sonnet-4-5}]}
  - {id: flash, targets: [{provider: gemini, model: gemini-2.5-flash}]}
orgs:
  - {id: demo, models: ["*"]}
keys:
  - {id: demo, org: demo, sha256: ` + digest(demoKey) + `}
`
	g := startGateway(t, policy, nil, func(o *proxy.Options) { o.Ledger, o.Prices = led, shippedTable(t) })

	cases := []struct {
		name, model, file                            string
		stream                                       bool
		prompt, completion, cached, write, reasoning int
		costMicros                                   accounting.MicroUSD
	}{
		// 30 x 0.15 + 1200 x 0.60 = 724.5 -> 725
		{name: "openai reasoning body", model: "mini", file: "openai/testdata/responses/reasoning.json",
			prompt: 30, completion: 1200, reasoning: 1152, costMicros: 725},
		// 19 x 0.15 + 10 x 0.60 = 8.85 -> 9
		{name: "openai stream", model: "mini", file: "openai/testdata/streams/text_usage.sse", stream: true,
			prompt: 19, completion: 10, costMicros: 9},
		// input 21 x 3 + write 188086 x 3.75 + read 1200 x 0.30 + 393 x 15
		// = 63 + 705322.5 + 360 + 5895 = 711640.5 -> 711641
		{name: "anthropic cache body", model: "sonnet", file: "anthropic/testdata/responses/cache_usage.json",
			prompt: 21 + 188086 + 1200, completion: 393, cached: 1200, write: 188086, costMicros: 711641},
		// 12 x 3 + 588 x 3.75 + 4000 x 0.30 + 30 x 15 = 36 + 2205 + 1200 + 450
		{name: "anthropic cache stream", model: "sonnet", file: "anthropic/testdata/streams/cache_usage.sse", stream: true,
			prompt: 4600, completion: 30, cached: 4000, write: 588, costMicros: 3891},
		// (8 - 4 cached) x 0.30 + 4 x 0.03 + (5 + 32 thinking) x 2.50
		// = 1.2 + 0.12 + 92.5 = 93.82 -> 94
		{name: "gemini thinking stream", model: "flash", file: "gemini/testdata/streams/text.sse", stream: true,
			prompt: 8, completion: 37, cached: 4, reasoning: 32, costMicros: 94},
		// 20 x 0.30 + 8 x 2.50 = 26
		{name: "gemini body", model: "flash", file: "gemini/testdata/responses/function_call_no_args.json",
			prompt: 20, completion: 8, costMicros: 26},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.serve(filepath.Join("..", "providers", c.file))
			stream := "false"
			if c.stream {
				stream = "true"
			}
			res := postJSON(t, g.URL+"/chat/completions", demoKey,
				`{"model":"`+c.model+`","stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`)
			if res.status != 200 {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			id := res.header.Get("x-request-id")
			waitFor(t, func() bool {
				for _, r := range led.all() {
					if r.RequestID == id {
						return true
					}
				}
				return false
			})
			for _, r := range led.all() {
				if r.RequestID != id {
					continue
				}
				if r.PromptTokens != c.prompt || r.CompletionTokens != c.completion || r.CachedTokens != c.cached ||
					r.CacheWriteTokens != c.write || r.ReasoningTokens != c.reasoning || r.TotalTokens != c.prompt+c.completion ||
					r.UsageEstimated || !r.Priced {
					t.Errorf("tokens: %+v", r)
				}
				if r.CostUSDMicros != c.costMicros {
					t.Errorf("cost %d micro-USD, want %d", r.CostUSDMicros, c.costMicros)
				}
			}
		})
	}
}
