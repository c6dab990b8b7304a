package proxy_test

import (
	"encoding/json"
	"testing"
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
