package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// mixedRequest is one of the request kinds TestLedgerSumsEqualMetrics
// sends: the body, the key, and the status it must be answered with.
type mixedRequest struct {
	kind, path, key, body string
	status                int
	stream                bool
}

// mixedRequests returns n requests cycling through every kind the gateway
// accounts: chat, streams with and without usage, embeddings, and requests
// refused after or before admission. Prompts differ in length so that the
// token counts differ from request to request.
func mixedRequests(n int) []mixedRequest {
	out := make([]mixedRequest, 0, n)
	for i := range n {
		words := strings.Repeat("bouquet ", 1+i%37)
		msg := fmt.Sprintf(`[{"role":"user","content":"%d: %s"}]`, i, words)
		var r mixedRequest
		switch i % 8 {
		case 0, 1:
			r = mixedRequest{kind: "chat", path: "/chat/completions", key: demoKey, status: 200,
				body: `{"model":"gpt-4o-mini","messages":` + msg + `}`}
		case 2:
			r = mixedRequest{kind: "chat-4o", path: "/chat/completions", key: demoKey, status: 200,
				body: `{"model":"gpt-4o","max_tokens":64,"messages":` + msg + `}`}
		case 3:
			r = mixedRequest{kind: "stream", path: "/chat/completions", key: demoKey, status: 200, stream: true,
				body: `{"model":"gpt-4o-mini","stream":true,"messages":` + msg + `}`}
		case 4:
			r = mixedRequest{kind: "stream-usage", path: "/chat/completions", key: demoKey, status: 200, stream: true,
				body: `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":` + msg + `}`}
		case 5:
			r = mixedRequest{kind: "embeddings", path: "/embeddings", key: demoKey, status: 200,
				body: fmt.Sprintf(`{"model":"text-embedding-3-small","input":["%d %s","venue"]}`, i, words)}
		case 6:
			r = mixedRequest{kind: "forbidden", path: "/chat/completions", key: "sk-aigw-limited", status: 403,
				body: `{"model":"gpt-4o","messages":` + msg + `}`}
		default:
			r = mixedRequest{kind: "unknown-model", path: "/chat/completions", key: demoKey, status: 404,
				body: `{"model":"gpt-5-imaginary","messages":` + msg + `}`}
		}
		out = append(out, r)
	}
	return out
}

// send makes r against base and reads the whole answer; for streams it
// checks the stream reached [DONE].
func (r mixedRequest) send(c *http.Client, base string) error {
	req, err := newRequest(http.MethodPost, base+r.path, r.key, r.body)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", r.kind, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: reading: %w", r.kind, err)
	}
	if resp.StatusCode != r.status {
		return fmt.Errorf("%s: status %d, want %d: %s", r.kind, resp.StatusCode, r.status, b)
	}
	if r.stream {
		var last string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				last = line
			}
		}
		if last != "data: [DONE]" {
			return fmt.Errorf("%s: stream ended with %q", r.kind, last)
		}
	}
	return nil
}

// TestLedgerSumsEqualMetrics sends 1,000 concurrent mixed requests and
// checks that they leave exactly 1,000 records, one per request id, whose
// token and cost sums equal the Prometheus counters, per model alias.
func TestLedgerSumsEqualMetrics(t *testing.T) {
	const n = 1000
	fake := fakeopenai.New(t, fakeopenai.WithChunks(8))
	led := &memLedger{}
	// 1,000 at once on two cores under the race detector: deadlines for a
	// slow machine, not the e2e tests' tight ones.
	policy := strings.NewReplacer("first_byte: 1s", "first_byte: 30s", "idle: 1s", "idle: 30s").Replace(openAIPolicy(""))
	g := startGateway(t, policy, map[string]string{"OPENAI_BASE_URL": fake.URL(), "OPENAI_API_KEY": "k"},
		func(o *proxy.Options) { o.Ledger, o.Prices = led, shippedTable(t) })

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	reqs := mixedRequests(n)
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range reqs {
		wg.Go(func() {
			<-start
			if err := r.send(client, g.URL); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Streams are finished (and recorded) just after their last byte.
	waitFor(t, func() bool { return len(led.all()) >= n })
	time.Sleep(50 * time.Millisecond) // a record too many would show up now
	recs := led.all()
	if len(recs) != n {
		t.Fatalf("%d records for %d requests", len(recs), n)
	}
	table := shippedTable(t)
	ids := map[string]bool{}
	type sums struct{ prompt, completion, cached, cost, requests int64 }
	byModel := map[string]*sums{} // answered requests, by model alias
	var refused int64
	statuses := map[int]int{}
	for _, rec := range recs {
		if rec.RequestID == "" || ids[rec.RequestID] {
			t.Fatalf("record without a unique request id: %+v", rec)
		}
		ids[rec.RequestID] = true
		statuses[rec.Status]++
		if rec.Status != 200 {
			refused++
			if rec.CostUSDMicros != 0 || rec.TotalTokens != 0 || rec.Outcome == ledger.OutcomeOK || rec.ModelAlias == "" {
				t.Errorf("refused request recorded as %+v", rec)
			}
			continue
		}
		p, ok := table.Lookup(rec.Provider, rec.UpstreamModel)
		if !ok {
			t.Fatalf("no price for %s/%s", rec.Provider, rec.UpstreamModel)
		}
		want := p.Cost(llm.Usage{PromptTokens: rec.PromptTokens, CompletionTokens: rec.CompletionTokens, CachedTokens: rec.CachedTokens})
		if rec.Outcome != ledger.OutcomeOK || !rec.Priced || rec.UsageEstimated || rec.PromptTokens <= 0 || rec.CostUSDMicros != want {
			t.Errorf("answered request recorded as %+v, want cost %v", rec, want)
		}
		s := byModel[rec.ModelAlias]
		if s == nil {
			s = &sums{}
			byModel[rec.ModelAlias] = s
		}
		s.requests++
		s.prompt += int64(rec.PromptTokens)
		s.completion += int64(rec.CompletionTokens)
		s.cached += int64(rec.CachedTokens)
		s.cost += int64(rec.CostUSDMicros)
	}
	if statuses[200] != n*6/8 || statuses[403] != n/8 || statuses[404] != n/8 || len(byModel) != 3 {
		t.Errorf("statuses in the ledger %v, answered models %d", statuses, len(byModel))
	}

	var total sums
	for model, s := range byModel {
		m := map[string]string{"model": model}
		got := sums{
			prompt:     int64(g.counter(t, "aigw_tokens_total", map[string]string{"model": model, "type": "prompt"})),
			completion: int64(g.counter(t, "aigw_tokens_total", map[string]string{"model": model, "type": "completion"})),
			cached:     int64(g.counter(t, "aigw_tokens_total", map[string]string{"model": model, "type": "cached"})),
			cost:       int64(g.counter(t, "aigw_cost_usd_micros_total", m)),
			requests:   int64(g.counter(t, "aigw_requests_total", map[string]string{"model": model, "code": "200"})),
		}
		if got != *s {
			t.Errorf("model %q: metrics %+v, ledger %+v", model, got, *s)
		}
		total.prompt += s.prompt
		total.completion += s.completion
		total.cost += s.cost
		total.requests += s.requests
	}
	if total.prompt == 0 || total.completion == 0 || total.cost == 0 {
		t.Fatalf("ledger totals %+v", total)
	}
	// Nothing the metrics counted is missing from the ledger, refusals
	// included (their model label is "unknown": it never resolved).
	if got := int64(g.counter(t, "aigw_requests_total", nil)); got != total.requests+refused || got != n {
		t.Errorf("requests counter %d, ledger %d answered + %d refused", got, total.requests, refused)
	}
	if got := int64(g.counter(t, "aigw_requests_total", map[string]string{"model": "unknown"})); got != refused {
		t.Errorf("refusals counter %d, ledger %d", got, refused)
	}
	if got := int64(g.counter(t, "aigw_cost_usd_micros_total", nil)); got != total.cost {
		t.Errorf("cost counter %d, ledger %d", got, total.cost)
	}
	if got := int64(g.counter(t, "aigw_tokens_total", map[string]string{"type": "prompt"})); got != total.prompt {
		t.Errorf("prompt token counter %d, ledger %d", got, total.prompt)
	}
	t.Logf("%d records: %d prompt, %d completion tokens, %d micro-USD; by status %v", len(recs), total.prompt, total.completion, total.cost, statuses)
}
