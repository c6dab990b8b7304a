package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aigw/aigw/providers/llm"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testTarget = &llm.Target{ID: "oa/gpt-4o-2024-08-06", Provider: "oa", Type: "openai",
	BaseURL: "https://api.openai.com/v1", Model: "gpt-4o-2024-08-06", APIKey: "sk-test"}

func header(out llm.Outbound, key string) (string, bool) {
	for _, h := range out.Header {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

func TestEncodeChatRequest(t *testing.T) {
	orig := `{"model":"alias","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":false}}`
	var in llm.Request
	if err := in.UnmarshalJSON([]byte(orig)); err != nil {
		t.Fatal(err)
	}
	dst := []byte("scratch")
	out, err := Adapter{}.EncodeChat(dst[:0], &in, testTarget)
	if err != nil {
		t.Fatal(err)
	}
	if out.Method != "POST" || out.URL != "https://api.openai.com/v1/chat/completions" || !out.Stream {
		t.Fatalf("outbound %+v", out)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "Accept": "text/event-stream", "Authorization": "Bearer sk-test"} {
		if got, _ := header(out, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(out.Header) != 3 {
		t.Errorf("headers %v", out.Header)
	}
	if !bytes.Contains(out.Body, []byte(`"model":"gpt-4o-2024-08-06"`)) || !bytes.Contains(out.Body, []byte(`"stream_options":{"include_usage":true}`)) {
		t.Fatalf("body %s", out.Body)
	}
	// The client's request is untouched: the proxy reuses it for failover
	// and to decide whether the client wants the usage chunk.
	if in.Model != "alias" || in.StreamOptions.IncludeUsage {
		t.Fatalf("request mutated: %+v", in)
	}

	// No key: no Authorization. Non-stream: JSON accept, no stream_options.
	in.Stream = false
	t2 := *testTarget
	t2.APIKey = ""
	t2.BaseURL = "http://127.0.0.1:8000/v1"
	out, err = Adapter{}.EncodeChat(nil, &in, &t2)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := header(out, "Authorization"); ok {
		t.Error("Authorization without a key")
	}
	if got, _ := header(out, "Accept"); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}
	if out.Stream || bytes.Contains(out.Body, []byte("stream")) || out.URL != "http://127.0.0.1:8000/v1/chat/completions" {
		t.Fatalf("non-stream outbound %+v %s", out, out.Body)
	}

	if _, err := (Adapter{}).EncodeChat(nil, &in, &llm.Target{}); err == nil {
		t.Fatal("no error for a target without base URL")
	}
}

func TestEncodeEmbeddingsRequest(t *testing.T) {
	in := llm.EmbeddingRequest{Model: "alias", Input: json.RawMessage(`"x"`)}
	out, err := Adapter{}.EncodeEmbeddings(nil, &in, testTarget)
	if err != nil {
		t.Fatal(err)
	}
	if out.URL != "https://api.openai.com/v1/embeddings" || out.Stream || string(out.Body) != `{"model":"gpt-4o-2024-08-06","input":"x"}` {
		t.Fatalf("%+v %s", out, out.Body)
	}
	if in.Model != "alias" {
		t.Fatal("request mutated")
	}
}

func TestDecodeChat(t *testing.T) {
	r, err := Adapter{}.DecodeChat(readFile(t, "responses/text.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.Response{
		ID: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", Object: "chat.completion", Created: 1741570283, Model: "gpt-4o-2024-08-06",
		Choices: []llm.Choice{{Index: 0, FinishReason: "stop",
			Message: llm.Message{Role: "assistant", Content: "Bonjour ! Comment puis-je vous aider ?", HasContent: true}}},
		Usage:             &llm.Usage{PromptTokens: 1117, CompletionTokens: 46, TotalTokens: 1163, CachedTokens: 1024},
		SystemFingerprint: "fp_fc9f1d7035",
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}

	r, err = Adapter{}.DecodeChat(readFile(t, "responses/tool_calls.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := r.Choices[0].Message
	if m.HasContent || r.Choices[0].FinishReason != "tool_calls" || len(m.ToolCalls) != 1 ||
		m.ToolCalls[0] != (llm.ToolCall{ID: "call_abc123", Type: "function",
			Function: llm.FunctionCall{Name: "get_current_weather", Arguments: "{\n\"location\": \"Boston, MA\"\n}"}}) {
		t.Fatalf("tool calls: %+v", r.Choices[0])
	}
	if *r.Usage != (llm.Usage{PromptTokens: 82, CompletionTokens: 17, TotalTokens: 99}) {
		t.Fatalf("usage %+v", r.Usage)
	}

	r, err = Adapter{}.DecodeChat(readFile(t, "responses/reasoning.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Choices) != 2 || r.Choices[0].FinishReason != "length" || r.Choices[1].Message.Refusal != "I can't help with that." ||
		string(r.Choices[1].Logprobs) != `{"content":[]}` || r.Choices[0].Logprobs != nil {
		t.Fatalf("choices %+v", r.Choices)
	}
	if *r.Usage != (llm.Usage{PromptTokens: 30, CompletionTokens: 1200, TotalTokens: 1230, ReasoningTokens: 1152}) {
		t.Fatalf("usage %+v", r.Usage)
	}
}

func TestDecodeChatErrors(t *testing.T) {
	var e *llm.Error
	_, err := Adapter{}.DecodeChat([]byte(`<html>`))
	if !errors.As(err, &e) || e.Kind != llm.KindUpstream {
		t.Fatalf("non-JSON: %v", err)
	}
	_, err = Adapter{}.DecodeChat(readFile(t, "responses/error_in_200.json"))
	if !errors.As(err, &e) || e.Kind != llm.KindQuotaExceeded || e.Msg == "" {
		t.Fatalf("error in a 200 body: %v", err)
	}
	_, err = Adapter{}.DecodeChat([]byte(`{"choices":"x"}`))
	if !errors.As(err, &e) || e.Kind != llm.KindUpstream {
		t.Fatalf("bad shape: %v", err)
	}
}

func TestDecodeEmbeddings(t *testing.T) {
	body := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,1e-7]},
	  {"object":"embedding","index":1,"embedding":"AACAPwAAAMA="}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`
	r, err := Adapter{}.DecodeEmbeddings([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.Object != "list" || r.Model != "text-embedding-3-small" || len(r.Data) != 2 ||
		string(r.Data[0].Embedding) != `[0.0023064255,-0.009327292,1e-7]` || string(r.Data[1].Embedding) != `"AACAPwAAAMA="` ||
		r.Data[1].Index != 1 || *r.Usage != (llm.Usage{PromptTokens: 8, TotalTokens: 8}) {
		t.Fatalf("%+v", r)
	}
	var e *llm.Error
	if _, err := (Adapter{}).DecodeEmbeddings([]byte(`[`)); !errors.As(err, &e) || e.Kind != llm.KindUpstream {
		t.Fatalf("err = %v", err)
	}
}
