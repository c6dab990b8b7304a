package fakeopenai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"go.uber.org/goleak"
)

// TestMain checks that the fake leaves no goroutine behind. The HTTP
// client's own keep-alive loops may still be winding down when the check
// runs (they end when they read the closed server's EOF): they belong to
// the test's client, not to the fake.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}

func post(t *testing.T, ctx context.Context, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sseData splits an SSE body into its data payloads.
func sseData(body []byte) []string {
	var out []string
	for _, block := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		out = append(out, strings.TrimPrefix(block, "data: "))
	}
	return out
}

func TestChatAndRecording(t *testing.T) {
	s := New(t, WithReply("pong"))
	resp := post(t, context.Background(), s.URL()+"/chat/completions?api-version=1",
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ping"}]}`)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	var c struct {
		Object  string
		Model   string
		Choices []struct {
			Message struct{ Content string }
		}
	}
	if err := json.Unmarshal(body, &c); err != nil || c.Object != "chat.completion" || c.Model != "gpt-4o-mini" || c.Choices[0].Message.Content != "pong" {
		t.Fatalf("%v %s", err, body)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/v1/chat/completions" || reqs[0].Query != "api-version=1" ||
		reqs[0].Header.Get("Authorization") != "Bearer sk-test" || !bytes.Contains(reqs[0].Body, []byte(`"ping"`)) {
		t.Fatalf("recorded %+v", reqs)
	}
	// The copy is a copy.
	reqs[0].Body[0] = 'X'
	if s.Requests()[0].Body[0] != '{' {
		t.Fatal("Requests shares memory")
	}
}

func TestStreamIncludeUsage(t *testing.T) {
	s := New(t, WithReply("one two three"), WithChunks(3))
	body := readAll(t, post(t, context.Background(), s.URL()+"/chat/completions",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}`))
	events := sseData(body)
	// role, 3 content, finish, usage, [DONE]
	if len(events) != 7 || events[6] != "[DONE]" {
		t.Fatalf("%d events: %q", len(events), events)
	}
	for _, ev := range events[:5] {
		if !strings.HasSuffix(ev, `,"usage":null}`) {
			t.Errorf("chunk without usage:null: %s", ev)
		}
	}
	if !strings.Contains(events[5], `"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9,`) {
		t.Errorf("usage chunk: %s", events[5])
	}

	body = readAll(t, post(t, context.Background(), s.URL()+"/chat/completions",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}`))
	if bytes.Contains(body, []byte("usage")) || len(sseData(body)) != 6 {
		t.Fatalf("stream without include_usage:\n%s", body)
	}
}

func TestEmbeddingsAndModels(t *testing.T) {
	s := New(t, WithDimensions(8), WithModels("a", "b"))
	body := readAll(t, post(t, context.Background(), s.URL()+"/embeddings", `{"model":"e","input":["x","y"],"encoding_format":"base64"}`))
	var e struct {
		Data []struct {
			Embedding json.RawMessage
		}
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Data) != 2 || e.Data[0].Embedding[0] != '"' {
		t.Fatalf("%v %s", err, body)
	}
	resp, err := http.Get(s.URL() + "/models")
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp)
	want := `{"object":"list","data":[{"id":"a","object":"model","created":1700000000,"owned_by":"system"},{"id":"b","object":"model","created":1700000000,"owned_by":"system"}]}`
	if string(body) != want {
		t.Fatalf("models %s", body)
	}
	resp = post(t, context.Background(), s.URL()+"/completions", `{}`)
	if body := readAll(t, resp); resp.StatusCode != 404 || !strings.Contains(string(body), "Invalid URL (POST /v1/completions)") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestFaultStatusCounted(t *testing.T) {
	s := New(t)
	s.SetFault(Fault{Status: 429, Code: "rate_limit_exceeded", RetryAfter: "2", Count: 2})
	for i := 0; i < 2; i++ {
		resp := post(t, context.Background(), s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
		body := readAll(t, resp)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" ||
			string(body) != `{"error":{"message":"Fault injected: HTTP 429.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}` {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
	}
	resp := post(t, context.Background(), s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("fault did not clear: %d", resp.StatusCode)
	}
	s.SetFault(Fault{Status: 503, Message: "down", Type: "server_error"})
	s.ClearFault()
	if resp := post(t, context.Background(), s.URL()+"/embeddings", `{"model":"m","input":"x"}`); readAll(t, resp) != nil && resp.StatusCode != 200 {
		t.Fatalf("ClearFault: %d", resp.StatusCode)
	}
}

func TestFaultHangUntilCanceled(t *testing.T) {
	s := New(t)
	s.SetFault(Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/chat/completions", strings.NewReader(`{}`))
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if len(s.Requests()) != 1 {
		t.Fatal("hung request not recorded")
	}
}

// A hanging request still in flight when the test ends does not block the
// server's shutdown.
func TestFaultHangReleasedByCleanup(t *testing.T) {
	t.Run("inner", func(t *testing.T) {
		s := New(t)
		s.SetFault(Fault{Hang: true})
		go func() {
			req, _ := http.NewRequest("POST", s.URL()+"/chat/completions", strings.NewReader(`{}`))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		for len(s.Requests()) == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	http.DefaultClient.CloseIdleConnections()
}

func TestFaultFirstByteDelay(t *testing.T) {
	s := New(t)
	s.SetFault(Fault{FirstByteDelay: 30 * time.Millisecond})
	start := time.Now()
	resp := post(t, context.Background(), s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	readAll(t, resp)
	if d := time.Since(start); d < 30*time.Millisecond || resp.StatusCode != 200 {
		t.Fatalf("answered after %v with %d", d, resp.StatusCode)
	}
}

func TestStreamCanceledCounted(t *testing.T) {
	s := New(t, WithStream(10, 20*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	resp := post(t, ctx, s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}`)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: {") {
		t.Fatalf("%q %v", line, err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Canceled() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Canceled() = %d", s.Canceled())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStreamAbort(t *testing.T) {
	s := New(t, WithChunks(5))
	s.SetFault(Fault{AbortAfter: 2})
	resp := post(t, context.Background(), s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}`)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil || bytes.Contains(body, []byte("[DONE]")) || len(sseData(body)) != 2 {
		t.Fatalf("err %v body %s", err, body)
	}
}

func TestAPIKey(t *testing.T) {
	s := New(t, WithAPIKey("sk-right"))
	resp := post(t, context.Background(), s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if body := readAll(t, resp); resp.StatusCode != 401 || !strings.Contains(string(body), `"code":"invalid_api_key"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestConcurrentFaults(t *testing.T) {
	s := New(t)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				resp := post(t, context.Background(), s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
				readAll(t, resp)
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				s.SetFault(Fault{Status: 500, Count: 1})
				_ = s.Requests()
				s.ClearFault()
			}
		}()
	}
	wg.Wait()
	if n := len(s.Requests()); n != 20 {
		t.Fatalf("%d requests recorded", n)
	}
}

// The official OpenAI Go SDK accepts the fake's answers, streamed or not.
func TestOfficialSDK(t *testing.T) {
	s := New(t, WithReply("Hello from the fake."), WithChunks(4), WithDimensions(4))
	client := openai.NewClient(option.WithBaseURL(s.URL()), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	ctx := context.Background()

	c, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].Message.Content != "Hello from the fake." || c.Usage.TotalTokens == 0 {
		t.Fatalf("%+v", c)
	}

	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:         "gpt-4o-mini",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if acc.Choices[0].Message.Content != "Hello from the fake." || acc.Choices[0].FinishReason != "stop" || acc.Usage.TotalTokens == 0 {
		t.Fatalf("accumulated %+v", acc.ChatCompletion)
	}

	e, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Data) != 2 || len(e.Data[1].Embedding) != 4 {
		t.Fatalf("%+v", e)
	}

	s.SetFault(Fault{Status: 429, Code: "insufficient_quota", Type: "insufficient_quota", Message: "You exceeded your current quota.", Count: 1})
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "insufficient_quota" || apiErr.Message != "You exceeded your current quota." {
		t.Fatalf("err = %v", err)
	}
}

// The scenario rules through the official SDK: a tool call, its result
// quoted back, images counted, and unanswered or stray tool messages
// refused as OpenAI refuses them.
func TestScenarioToolRoundTrip(t *testing.T) {
	s := New(t, WithChunks(3))
	client := openai.NewClient(option.WithBaseURL(s.URL()), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	ctx := context.Background()
	p := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What's the weather in Paris?")},
		Tools: []openai.ChatCompletionToolParam{{Function: openai.FunctionDefinitionParam{
			Name: "get_weather", Parameters: openai.FunctionParameters{"type": "object"}}}},
	}
	c, err := client.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	msg := c.Choices[0].Message
	if c.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].ID == "" ||
		msg.ToolCalls[0].Function.Name != "get_weather" || msg.ToolCalls[0].Function.Arguments != `{"location":"Paris","unit":"celsius"}` {
		t.Fatalf("%+v", c.Choices[0])
	}

	// Streamed, the call accumulates to the same.
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, p)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if tc := acc.Choices[0].Message.ToolCalls; len(tc) != 1 || tc[0].Function.Arguments != msg.ToolCalls[0].Function.Arguments ||
		acc.Choices[0].FinishReason != "tool_calls" || acc.Usage.TotalTokens == 0 {
		t.Fatalf("accumulated %+v", acc.ChatCompletion)
	}
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{}

	p.Messages = append(p.Messages, msg.ToParam(), openai.ToolMessage("21C and sunny", msg.ToolCalls[0].ID))
	c, err = client.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Choices[0].Message.Content; got != "The tool said: 21C and sunny" {
		t.Fatalf("final %q", got)
	}

	// A tool message answering another id, and a call left unanswered.
	p.Messages[2] = openai.ToolMessage("x", "call_other")
	if _, err := client.Chat.Completions.New(ctx, p); apiStatus(err) != 400 {
		t.Fatalf("stray tool message: %v", err)
	}
	p.Messages = append(p.Messages[:2], openai.UserMessage("and now?"))
	if _, err := client.Chat.Completions.New(ctx, p); apiStatus(err) != 400 {
		t.Fatalf("unanswered call: %v", err)
	}

	c, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("What is this?"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64,iVBORw0KGgo="}),
		})},
	})
	if err != nil || c.Choices[0].Message.Content != "I see 1 image." {
		t.Fatalf("image: %v %+v", err, c)
	}
}

func TestStreamErrorEvent(t *testing.T) {
	s := New(t, WithChunks(5))
	s.SetFault(Fault{ErrorAfter: 2, Message: "boom"})
	resp := post(t, context.Background(), s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}`)
	body := readAll(t, resp)
	events := sseData(body)
	// role, 2 content chunks, the error; no [DONE].
	if resp.StatusCode != 200 || len(events) != 4 || events[3] != `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}` {
		t.Fatalf("%d %q", resp.StatusCode, events)
	}
}

func apiStatus(err error) int {
	var e *openai.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}
