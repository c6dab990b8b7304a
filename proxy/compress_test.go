package proxy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/accounting/tokens"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// TestCompressionOnTheWire runs savings.yaml: the upstream receives the
// compressed request (the repeated system prompt and the duplicate turn
// gone, the tool result's JSON minified), the last user turn is
// byte-identical, and the tokens saved reach the record and the metric.
func TestCompressionOnTheWire(t *testing.T) {
	fake, g, led := savingsGateway(t)
	last := "Can you   confirm   the  ceremony starts at 3pm?\n\n\n\nThanks!"
	body := `{"model":"gpt-4o-mini","messages":[
	  {"role":"system","content":"You are a wedding planner's assistant."},
	  {"role":"user","content":"Hello"},
	  {"role":"assistant","content":"Hi! How can I help?"},
	  {"role":"system","content":"You are a wedding planner's assistant."},
	  {"role":"user","content":"Hello"},
	  {"role":"assistant","content":"Hi! How can I help?"},
	  {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"venue","arguments":"{}"}}]},
	  {"role":"tool","tool_call_id":"c1","content":"{\n  \"venue\":   \"Rosewood Barn\",\n  \"capacity\":  120\n}"},
	  {"role":"user","content":` + jsonString(last) + `}]}`
	res := postJSON(t, g.URL+"/chat/completions", demoKey, body)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	reqs := fake.Requests()
	if len(reqs) == 0 {
		t.Fatal("no upstream request")
	}
	var sent struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &sent); err != nil {
		t.Fatal(err)
	}
	systems := 0
	var lastUser, tool string
	for _, m := range sent.Messages {
		var s string
		_ = json.Unmarshal(m.Content, &s)
		switch m.Role {
		case "system":
			systems++
		case "user":
			lastUser = s
		case "tool":
			tool = s
		}
	}
	if systems != 1 || len(sent.Messages) >= 9 {
		t.Errorf("upstream got %d messages, %d system prompts: %s", len(sent.Messages), systems, reqs[len(reqs)-1].Body)
	}
	if lastUser != last {
		t.Errorf("last user turn changed: %q, want %q", lastUser, last)
	}
	if tool != `{"venue":"Rosewood Barn","capacity":120}` {
		t.Errorf("tool result %q, want minified JSON", tool)
	}
	saved := 0
	for _, r := range led.all() {
		if r.RequestID == res.header.Get("x-request-id") {
			saved = r.TokensSaved
		}
	}
	if saved <= 0 {
		t.Fatalf("record tokens_saved = %d", saved)
	}
	if got := g.counter(t, "aigw_prompt_compression_saved_tokens_total", nil); got != float64(saved) {
		t.Errorf("aigw_prompt_compression_saved_tokens_total = %v, record says %d", got, saved)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fitBudgetPolicy: gpt-4o-mini at $10 per million tokens each way, two orgs
// with a daily budget of five cents (5,000 tokens' worth) and fit_history;
// only "fit" takes the cost-aware path.
const fitBudgetPolicy = `
providers:
  - {id: openai, type: openai, base_url: "${OPENAI_BASE_URL}", api_key: "${OPENAI_API_KEY}"}
models:
  - {id: planner, targets: [{provider: openai, model: gpt-4o-mini}]}
orgs:
  - id: fit
    models: ["*"]
    budget: {daily: "0.05"}
    compression: {strategies: [fit_history], fit_budget: true, keep_last_turns: 2}
  - id: nofit
    models: ["*"]
    budget: {daily: "0.05"}
    compression: {strategies: [fit_history], keep_last_turns: 2}
keys:
  - {id: fit, org: fit, sha256: ` + "SHA_FIT" + `}
  - {id: nofit, org: nofit, sha256: ` + "SHA_NOFIT" + `}
prices:
  - {provider: openai, model: gpt-4o-mini, input: "10", output: "10"}
`

// TestBudgetCompressesToFit: a conversation that costs more at full length
// than the org has left is shortened to what the budget still pays for and
// answered, with its last user turn intact; an org that did not opt in is
// refused with insufficient_quota, and nothing stays reserved.
func TestBudgetCompressesToFit(t *testing.T) {
	fake := fakeopenai.New(t)
	pol := strings.NewReplacer("SHA_FIT", digest("sk-fit"), "SHA_NOFIT", digest("sk-nofit")).Replace(fitBudgetPolicy)
	led := &memLedger{}
	g := startGateway(t, pol, map[string]string{"OPENAI_BASE_URL": fake.URL(), "OPENAI_API_KEY": "k"},
		func(o *proxy.Options) { o.Ledger, o.Prices = led, shippedTable(t) })

	// 40 old turns of about 200 tokens each: ~8,000 prompt tokens, $0.08
	// at full length with the 100 output tokens reserved.
	var msgs []string
	turn := strings.Repeat("We discussed the seating plan for table seven again. ", 20)
	for i := range 40 {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		msgs = append(msgs, `{"role":"`+role+`","content":`+jsonString(fmt.Sprintf("%d: %s", i, turn))+`}`)
	}
	last := "So, final answer: does  the  florist arrive at 10am?"
	msgs = append(msgs, `{"role":"user","content":`+jsonString(last)+`}`)
	body := `{"model":"planner","max_tokens":100,"messages":[` + strings.Join(msgs, ",") + `]}`

	refused := postJSON(t, g.URL+"/chat/completions", "sk-nofit", body)
	if refused.status != 429 || !strings.Contains(string(refused.body), `"insufficient_quota"`) {
		t.Fatalf("nofit: %d %s", refused.status, refused.body)
	}
	if n := chatCount(fake); n != 0 {
		t.Fatalf("refused request reached the upstream (%d calls)", n)
	}

	res := postJSON(t, g.URL+"/chat/completions", "sk-fit", body)
	if res.status != 200 {
		t.Fatalf("fit: %d %s", res.status, res.body)
	}
	reqs := fake.Requests()
	var sent struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &sent); err != nil {
		t.Fatal(err)
	}
	if n := len(sent.Messages); n >= len(msgs) || n == 0 {
		t.Fatalf("upstream got %d of %d messages", n, len(msgs))
	}
	if got := sent.Messages[len(sent.Messages)-1].Content; got != last {
		t.Errorf("last user turn changed: %q", got)
	}
	var rec *ledger.Record
	for _, r := range led.all() {
		if r.RequestID == res.header.Get("x-request-id") {
			rec = &r
		}
	}
	if rec == nil || rec.TokensSaved < 3000 {
		t.Fatalf("record %+v: want tokens_saved of the dropped turns", rec)
	}
	// What was reserved, the shortened prompt counted exactly plus the
	// output cap at $10/M, fits what was left; the upstream bills by its
	// own count, which the budget then records as spent.
	var up llm.Request
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &up); err != nil {
		t.Fatal(err)
	}
	if n := tokens.New(tokens.Options{}).CountRequest("gpt-4o-mini", &up); (n+100)*10 > 50000 {
		t.Errorf("compressed prompt of %d tokens costs more than the budget left", n)
	}
	_, spent, reserved := budgetState(t, g, "fit")
	if reserved != 0 || spent != int64(rec.CostUSDMicros) {
		t.Errorf("fit budget: spent %d reserved %d; record cost %d", spent, reserved, rec.CostUSDMicros)
	}
}
