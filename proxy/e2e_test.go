package proxy_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/aigw/aigw/providers/providertest/fakeopenai"
)

// openAIPolicy routes the demo models to a fake OpenAI upstream, like
// configs/examples/openai.yaml does to the real one. The "limited" key may
// only use gpt-4o-mini.
func openAIPolicy(extra string) string {
	return `
server:
  max_body_bytes: 64KiB
providers:
  - id: openai
    type: openai
    base_url: ${OPENAI_BASE_URL}
    api_key: ${OPENAI_API_KEY}
    timeouts:
      first_byte: 1s
      idle: 1s
models:
  - id: gpt-4o-mini
    targets: [{provider: openai}]
  - id: gpt-4o
    targets: [{provider: openai, model: gpt-4o-2024-08-06}]
  - id: text-embedding-3-small
    type: embedding
    targets: [{provider: openai}]
orgs:
  - id: demo
    models: ["*"]
  - id: small
    models: [gpt-4o-mini]
keys:
  - id: demo
    org: demo
    sha256: c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82
  - id: limited
    org: small
    sha256: ` + digest("sk-aigw-limited") + `
` + extra
}

func startOpenAI(t *testing.T, opts ...fakeopenai.Option) (*fakeopenai.Server, *gateway) {
	t.Helper()
	fake := fakeopenai.New(t, opts...)
	g := startGateway(t, openAIPolicy(""), map[string]string{
		"OPENAI_BASE_URL": fake.URL(),
		"OPENAI_API_KEY":  "sk-upstream-secret",
	})
	return fake, g
}

func sdk(g *gateway, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(g.URL+"/"), option.WithAPIKey(key), option.WithMaxRetries(0),
		option.WithRequestTimeout(20*time.Second))
}

func userMsg(s string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(s)},
	}
}

func TestChatCompletion(t *testing.T) {
	fake, g := startOpenAI(t)
	c := sdk(g, demoKey)
	res, err := c.Chat.Completions.New(context.Background(), userMsg("Say hello"),
		option.WithHeader("X-Client-Secret", "must-not-leak"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || res.Choices[0].Message.Content == "" {
		t.Fatalf("choices = %+v", res.Choices)
	}
	if res.Usage.TotalTokens == 0 || res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
		t.Fatalf("usage = %+v", res.Usage)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	up := reqs[0]
	if got := up.Header.Get("Authorization"); got != "Bearer sk-upstream-secret" {
		t.Errorf("upstream Authorization = %q, want the provider's key", got)
	}
	for _, h := range []string{"X-Client-Secret", "Accept-Encoding", "X-Stainless-Lang", "Openai-Organization"} {
		if v := up.Header.Get(h); v != "" {
			t.Errorf("client header %s leaked upstream: %q", h, v)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(up.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["model"] != "gpt-4o-mini" {
		t.Errorf("upstream model = %v", body["model"])
	}
	// Accounting saw the tokens exactly once.
	if got := g.counter(t, "aigw_tokens_total", map[string]string{"model": "gpt-4o-mini", "type": "completion"}); got != float64(res.Usage.CompletionTokens) {
		t.Errorf("aigw_tokens_total completion = %v, want %d", got, res.Usage.CompletionTokens)
	}
}

func TestChatAliasRewritesUpstreamModel(t *testing.T) {
	fake, g := startOpenAI(t)
	c := sdk(g, demoKey)
	p := userMsg("x")
	p.Model = "gpt-4o"
	if _, err := c.Chat.Completions.New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.Unmarshal(fake.Requests()[0].Body, &body)
	if body["model"] != "gpt-4o-2024-08-06" {
		t.Fatalf("upstream model = %v, want the target's", body["model"])
	}
}

// streamChunks collects a stream through the SDK and returns the raw
// chunks' JSON.
func streamChunks(t *testing.T, c openai.Client, p openai.ChatCompletionNewParams) ([]openai.ChatCompletionChunk, string) {
	t.Helper()
	st := c.Chat.Completions.NewStreaming(context.Background(), p)
	var chunks []openai.ChatCompletionChunk
	var text strings.Builder
	for st.Next() {
		ch := st.Current()
		chunks = append(chunks, ch)
		for _, choice := range ch.Choices {
			text.WriteString(choice.Delta.Content)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	return chunks, text.String()
}

func checkStreamShape(t *testing.T, chunks []openai.ChatCompletionChunk) {
	t.Helper()
	if len(chunks) < 3 {
		t.Fatalf("only %d chunks", len(chunks))
	}
	finishes := 0
	for i, ch := range chunks {
		if ch.ID != chunks[0].ID {
			t.Errorf("chunk %d id %q != %q", i, ch.ID, chunks[0].ID)
		}
		if ch.Object != "chat.completion.chunk" {
			t.Errorf("chunk %d object %q", i, ch.Object)
		}
		for _, c := range ch.Choices {
			if c.FinishReason != "" {
				finishes++
			}
		}
	}
	if len(chunks[0].Choices) == 0 || chunks[0].Choices[0].Delta.Role != "assistant" {
		t.Errorf("first chunk carries no role: %s", chunks[0].RawJSON())
	}
	if finishes != 1 {
		t.Errorf("%d chunks carry a finish_reason, want exactly 1", finishes)
	}
}

func TestStreamWithoutUsage(t *testing.T) {
	fake, g := startOpenAI(t)
	c := sdk(g, demoKey)
	chunks, text := streamChunks(t, c, userMsg("Say hello"))
	checkStreamShape(t, chunks)
	if text == "" {
		t.Fatal("no content streamed")
	}
	for i, ch := range chunks {
		if strings.Contains(ch.RawJSON(), `"usage"`) {
			t.Errorf("chunk %d has a usage member the client did not ask for: %s", i, ch.RawJSON())
		}
		if len(ch.Choices) == 0 {
			t.Errorf("chunk %d has no choices (a usage chunk?): %s", i, ch.RawJSON())
		}
	}
	// The gateway asked the upstream for usage anyway, and accounted it.
	var body struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(fake.Requests()[0].Body, &body)
	if !body.StreamOptions.IncludeUsage {
		t.Error("upstream request lacks stream_options.include_usage")
	}
	waitFor(t, func() bool {
		return g.counter(t, "aigw_tokens_total", map[string]string{"model": "gpt-4o-mini", "type": "completion"}) > 0
	})
}

func TestStreamWithUsage(t *testing.T) {
	_, g := startOpenAI(t)
	c := sdk(g, demoKey)
	p := userMsg("Say hello")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	chunks, _ := streamChunks(t, c, p)
	checkStreamShape(t, chunks)
	last := chunks[len(chunks)-1]
	if len(last.Choices) != 0 || last.Usage.TotalTokens == 0 {
		t.Fatalf("last chunk is not the usage chunk: %s", last.RawJSON())
	}
	for i, ch := range chunks[:len(chunks)-1] {
		if ch.Usage.TotalTokens != 0 {
			t.Errorf("chunk %d carries usage before the end", i)
		}
	}
	waitFor(t, func() bool {
		return g.counter(t, "aigw_tokens_total", map[string]string{"model": "gpt-4o-mini", "type": "completion"}) == float64(last.Usage.CompletionTokens)
	})
}

func TestEmbeddings(t *testing.T) {
	_, g := startOpenAI(t)
	c := sdk(g, demoKey)
	res, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || len(res.Data[0].Embedding) == 0 {
		t.Fatalf("data = %+v", res.Data)
	}
	// base64, as the Node SDK asks by default: little-endian float32.
	b64 := postJSON(t, g.URL+"/embeddings", demoKey, `{"model":"text-embedding-3-small","input":"a","encoding_format":"base64"}`)
	if b64.status != 200 {
		t.Fatalf("base64 status %d: %s", b64.status, b64.body)
	}
	var out struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b64.body, &out); err != nil || len(out.Data) != 1 {
		t.Fatalf("base64 body %s: %v", b64.body, err)
	}
	raw, err := base64.StdEncoding.DecodeString(out.Data[0].Embedding)
	if err != nil || len(raw)%4 != 0 || len(raw) == 0 {
		t.Fatalf("embedding is not base64 float32: %v (%d bytes)", err, len(raw))
	}
	floats := make([]float64, len(raw)/4)
	for i := range floats {
		floats[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[i*4:])))
	}
	ref, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-small", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ref.Data[0].Embedding) != len(floats) {
		t.Fatalf("base64 has %d dims, float %d", len(floats), len(ref.Data[0].Embedding))
	}
	for i := range floats {
		if math.Abs(floats[i]-ref.Data[0].Embedding[i]) > 1e-6 {
			t.Fatalf("dim %d: base64 %v != float %v", i, floats[i], ref.Data[0].Embedding[i])
		}
	}
}

func TestModelsListedPerKey(t *testing.T) {
	_, g := startOpenAI(t)
	ids := func(key string) []string {
		c := sdk(g, key)
		page, err := c.Models.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range page.Data {
			out = append(out, m.ID)
			if m.Object != "model" {
				t.Errorf("object %q", m.Object)
			}
		}
		return out
	}
	if got := strings.Join(ids(demoKey), ","); got != "gpt-4o,gpt-4o-mini,text-embedding-3-small" {
		t.Errorf("demo key sees %s", got)
	}
	if got := strings.Join(ids("sk-aigw-limited"), ","); got != "gpt-4o-mini" {
		t.Errorf("limited key sees %s", got)
	}
	demo, limited := sdk(g, demoKey), sdk(g, "sk-aigw-limited")
	m, err := demo.Models.Get(context.Background(), "gpt-4o")
	if err != nil || m.ID != "gpt-4o" {
		t.Fatalf("get model: %v %+v", err, m)
	}
	if _, err := limited.Models.Get(context.Background(), "gpt-4o"); apiStatus(err) != 404 {
		t.Fatalf("limited key retrieving gpt-4o: %v", err)
	}
}

func apiStatus(err error) int {
	var e *openai.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

func TestErrorAnswers(t *testing.T) {
	fake, g := startOpenAI(t)
	ctx := context.Background()
	demo, limited, nope := sdk(g, demoKey), sdk(g, "sk-aigw-limited"), sdk(g, "sk-nope")
	check := func(name string, err error, status int, code string) {
		t.Helper()
		var e *openai.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %v is not an API error", name, err)
			return
		}
		if e.StatusCode != status || (code != "" && e.Code != code) || e.Message == "" || e.Type == "" {
			t.Errorf("%s: got %d code=%q type=%q msg=%q; want %d code=%q", name, e.StatusCode, e.Code, e.Type, e.Message, status, code)
		}
		if e.Response.Header.Get("x-request-id") == "" {
			t.Errorf("%s: no x-request-id", name)
		}
	}
	_, err := nope.Chat.Completions.New(ctx, userMsg("x"))
	check("unknown key", err, 401, "invalid_api_key")
	p := userMsg("x")
	p.Model = "gpt-4o"
	_, err = limited.Chat.Completions.New(ctx, p)
	check("model not allowed", err, 403, "model_not_allowed")
	p.Model = "gpt-5-imaginary"
	_, err = demo.Chat.Completions.New(ctx, p)
	check("unknown model", err, 404, "model_not_found")
	_, err = demo.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini"})
	check("missing messages", err, 400, "")

	for _, c := range []struct {
		name, path, body string
		status           int
	}{
		{"malformed JSON", "/chat/completions", `{"model":`, 400},
		{"unknown path", "/nothing", `{}`, 404},
		{"body over limit", "/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 200<<10) + `"}]}`, 413},
	} {
		r := postJSON(t, g.URL+c.path, demoKey, c.body)
		if r.status != c.status || !isOpenAIError(r.body) || r.header.Get("x-request-id") == "" {
			t.Errorf("%s: status %d body %.200s", c.name, r.status, r.body)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("refused requests reached the upstream %d times", n)
	}

	// Upstream failures: 500 -> 502, a hang -> 504 after the first-byte deadline.
	fake.SetFault(fakeopenai.Fault{Status: 500})
	_, err = demo.Chat.Completions.New(ctx, userMsg("x"))
	check("upstream 500", err, 502, "")
	fake.SetFault(fakeopenai.Fault{Hang: true})
	start := time.Now()
	_, err = demo.Chat.Completions.New(ctx, userMsg("x"))
	check("upstream hang", err, 504, "upstream_timeout")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hang answered after %v; first-byte deadline is 1s", d)
	}
	fake.SetFault(fakeopenai.Fault{})
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	fake, g := startOpenAI(t, fakeopenai.WithStream(200, 10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := sdk(g, demoKey)
	st := c.Chat.Completions.NewStreaming(ctx, userMsg("long answer"))
	got := 0
	for st.Next() {
		got++
		if got == 3 {
			cancel()
			break
		}
	}
	st.Close()
	waitFor(t, func() bool { return fake.Canceled() == 1 })
	waitFor(t, func() bool {
		return g.counter(t, "aigw_errors_total", map[string]string{"kind": "canceled"}) == 1
	})
}

func TestConcurrentStreams(t *testing.T) {
	_, g := startOpenAI(t, fakeopenai.WithStream(16, time.Millisecond))
	c := sdk(g, demoKey)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	texts := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := c.Chat.Completions.NewStreaming(context.Background(), userMsg("hi"))
			var b strings.Builder
			finishes := 0
			for st.Next() {
				for _, ch := range st.Current().Choices {
					b.WriteString(ch.Delta.Content)
					if ch.FinishReason != "" {
						finishes++
					}
				}
			}
			if err := st.Err(); err != nil {
				errs <- err
				return
			}
			if finishes != 1 {
				errs <- fmt.Errorf("%d finish reasons", finishes)
			}
			texts <- b.String()
		}()
	}
	wg.Wait()
	close(errs)
	close(texts)
	for err := range errs {
		t.Error(err)
	}
	first := ""
	count := 0
	for s := range texts {
		if first == "" {
			first = s
		}
		if s != first || s == "" {
			t.Errorf("stream text %q differs from %q", s, first)
		}
		count++
	}
	if count != n {
		t.Fatalf("%d of %d streams completed", count, n)
	}
	waitFor(t, func() bool { return g.counter(t, "aigw_active_streams", nil) == 0 })
	if got := g.counter(t, "aigw_requests_total", map[string]string{"route": "chat_completions", "code": "200"}); got != n {
		t.Errorf("aigw_requests_total = %v, want %d", got, n)
	}
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func postJSON(t *testing.T, url, key, body string) httpResult {
	t.Helper()
	return doHTTP(t, http.MethodPost, url, key, body)
}

// newRequest is a JSON request of body to url with method, carrying the
// gateway key when key is not empty. It does not touch a testing.T, so
// load goroutines may use it.
func newRequest(method, url, key, body string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// doHTTP sends body to url with method, with the gateway key when key is
// not empty, and returns the whole answer.
func doHTTP(t *testing.T, method, url, key, body string) httpResult {
	t.Helper()
	req, err := newRequest(method, url, key, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, resp.Header, b}
}

func isOpenAIError(b []byte) bool {
	var e struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error != nil && e.Error.Message != "" && e.Error.Type != ""
}

// waitFor polls cond (the gateway finishes streams asynchronously) for up to
// 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
