package proxy_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// savingsGateway runs configs/examples/savings.yaml against a fake OpenAI,
// with a second org (other, key sk-other) that has the cache on too.
func savingsGateway(t *testing.T, opts ...fakeopenai.Option) (*fakeopenai.Server, *gateway, *memLedger) {
	t.Helper()
	fake := fakeopenai.New(t, opts...)
	example, err := os.ReadFile("../configs/examples/savings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policy := strings.Replace(string(example), "\nkeys:\n", `
  - id: other
    models: ["*"]
    cache: {enabled: true}

keys:
  - {id: other, org: other, sha256: `+digest("sk-other")+`}
`, 1)
	led := &memLedger{}
	g := startGateway(t, policy, map[string]string{"OPENAI_BASE_URL": fake.URL(), "OPENAI_API_KEY": "k"},
		func(o *proxy.Options) { o.Ledger, o.Prices = led, shippedTable(t) })
	return fake, g, led
}

func chatCount(f *fakeopenai.Server) int {
	n := 0
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/chat/completions") {
			n++
		}
	}
	return n
}

const cacheBody = `{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"Draft a thank-you note for the florist."}]}`

func TestCacheHitIsPerOrg(t *testing.T) {
	fake, g, led := savingsGateway(t)
	first := postJSON(t, g.URL+"/chat/completions", demoKey, cacheBody)
	// Same request, other key order and white space: the same entry.
	second := postJSON(t, g.URL+"/chat/completions", demoKey,
		`{ "messages":[{"content":"Draft a thank-you note for the florist.","role":"user"}], "temperature":0, "model":"gpt-4o-mini" }`)
	other := postJSON(t, g.URL+"/chat/completions", "sk-other", cacheBody)
	if first.status != 200 || second.status != 200 || other.status != 200 {
		t.Fatalf("statuses %d %d %d", first.status, second.status, other.status)
	}
	if first.header.Get("x-aigw-cache") != "miss" || second.header.Get("x-aigw-cache") != "hit" || other.header.Get("x-aigw-cache") != "miss" {
		t.Fatalf("x-aigw-cache: %q %q %q", first.header.Get("x-aigw-cache"), second.header.Get("x-aigw-cache"), other.header.Get("x-aigw-cache"))
	}
	if string(second.body) != string(first.body) {
		t.Errorf("hit body %s, want %s", second.body, first.body)
	}
	if n := chatCount(fake); n != 2 {
		t.Fatalf("upstream saw %d chat requests, want 2 (one per org)", n)
	}
	// Not cacheable: no temperature (OpenAI's default is 1).
	warm := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Draft a thank-you note for the florist."}]}`
	for range 2 {
		if res := postJSON(t, g.URL+"/chat/completions", demoKey, warm); res.header.Get("x-aigw-cache") != "miss" {
			t.Fatalf("sampled request: %q", res.header.Get("x-aigw-cache"))
		}
	}
	if n := chatCount(fake); n != 4 {
		t.Fatalf("upstream saw %d chat requests, want 4", n)
	}
	var hit, miss int
	for _, r := range led.all() {
		if r.RequestID == second.header.Get("x-request-id") {
			hit++
			if !r.CacheHit || r.CostUSDMicros != 0 || r.CostSavedUSDMicros <= 0 || r.Provider != "" {
				t.Errorf("hit record %+v", r)
			}
		}
		if r.RequestID == first.header.Get("x-request-id") {
			miss++
			if r.CacheHit || r.CostUSDMicros <= 0 {
				t.Errorf("miss record %+v", r)
			}
		}
	}
	if hit != 1 || miss != 1 {
		t.Fatalf("records: hit %d miss %d", hit, miss)
	}
}

func TestCacheHeadersNoStoreAndRefresh(t *testing.T) {
	fake, g, _ := savingsGateway(t)
	send := func(mode string) string {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions", strings.NewReader(cacheBody))
		req.Header.Set("Authorization", "Bearer "+demoKey)
		if mode != "" {
			req.Header.Set("x-aigw-cache", mode)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("x-aigw-cache")
	}
	if got := send("no-store"); got != "miss" {
		t.Fatalf("no-store: %q", got)
	}
	if got := send(""); got != "miss" { // no-store kept nothing
		t.Fatalf("after no-store: %q", got)
	}
	if got := send("refresh"); got != "miss" {
		t.Fatalf("refresh: %q", got)
	}
	if got := send(""); got != "hit" {
		t.Fatalf("after refresh: %q", got)
	}
	if n := chatCount(fake); n != 3 {
		t.Fatalf("upstream saw %d, want 3", n)
	}
}

// TestCacheStreamReplayWithSDK: an answer stored from JSON replays as a
// stream the official SDK accumulates to the same content, usage chunk
// included; and one stored from a stream is served as JSON.
func TestCacheStreamReplayWithSDK(t *testing.T) {
	fake, g, _ := savingsGateway(t, fakeopenai.WithChunks(5))
	c := openai.NewClient(option.WithBaseURL(g.URL+"/"), option.WithAPIKey(demoKey), option.WithMaxRetries(0))
	p := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Temperature: openai.Float(0),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Suggest a first-dance song.")}}
	res, err := c.Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	st := c.Chat.Completions.NewStreaming(context.Background(), p)
	var acc openai.ChatCompletionAccumulator
	ids := map[string]bool{}
	for st.Next() {
		ch := st.Current()
		acc.AddChunk(ch)
		ids[ch.ID] = true
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != res.Choices[0].Message.Content ||
		acc.Choices[0].FinishReason != "stop" || acc.Usage.CompletionTokens != res.Usage.CompletionTokens || len(ids) != 1 {
		t.Fatalf("replay %+v (ids %v), want content %q", acc.Choices, ids, res.Choices[0].Message.Content)
	}
	if n := chatCount(fake); n != 1 {
		t.Fatalf("upstream saw %d, want 1", n)
	}

	// Filled from a stream, then asked as JSON.
	p2 := p
	p2.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Suggest a last-dance song.")}
	st = c.Chat.Completions.NewStreaming(context.Background(), p2)
	var acc2 openai.ChatCompletionAccumulator
	for st.Next() {
		acc2.AddChunk(st.Current())
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	p2.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
	got, err := c.Chat.Completions.New(context.Background(), p2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Choices[0].Message.Content != acc2.Choices[0].Message.Content || got.Choices[0].FinishReason != "stop" {
		t.Fatalf("JSON from a streamed entry: %q, want %q", got.Choices[0].Message.Content, acc2.Choices[0].Message.Content)
	}
	if n := chatCount(fake); n != 2 {
		t.Fatalf("upstream saw %d, want 2", n)
	}
}

// TestCacheCoalescesStampede: 100 identical requests at once make one
// upstream call; all get the same answer.
func TestCacheCoalescesStampede(t *testing.T) {
	fake, g, _ := savingsGateway(t)
	fake.SetFault(fakeopenai.Fault{FirstByteDelay: 300 * time.Millisecond})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	bodies := map[string]int{}
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions", strings.NewReader(cacheBody))
			req.Header.Set("Authorization", "Bearer "+demoKey)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			mu.Lock()
			bodies[resp.Status+" "+string(b)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := chatCount(fake); n != 1 {
		t.Fatalf("upstream saw %d chat requests, want 1", n)
	}
	if len(bodies) != 1 {
		t.Fatalf("%d different answers: %v", len(bodies), bodies)
	}
	if got := g.counter(t, "aigw_cache_coalesced_total", nil); got != 99 {
		t.Errorf("aigw_cache_coalesced_total = %v, want 99", got)
	}
}
