package openai

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// events reads every SSE event of a fixture, copied.
func events(t testing.TB, body []byte) []sse.Event {
	t.Helper()
	sc := sse.NewScanner(bytes.NewReader(body), 1<<20)
	var evs []sse.Event
	for sc.Next() {
		ev := sc.Event()
		evs = append(evs, sse.Event{Name: bytes.Clone(ev.Name), Data: bytes.Clone(ev.Data), ID: bytes.Clone(ev.ID)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// streamResult is what a client would assemble from a stream.
type streamResult struct {
	deltas    int
	role      string
	content   string
	finish    string
	toolCalls []llm.ToolCall
	usage     *llm.Usage
	done      bool
	err       error
	contentAt []bool // per event: some delta HasContent
}

func decodeStream(t testing.TB, body []byte) streamResult {
	t.Helper()
	var res streamResult
	dec := Adapter{}.NewStreamDecoder(&llm.Request{Stream: true})
	var deltas []llm.Delta
	for _, ev := range events(t, body) {
		var err error
		deltas, err = dec.Decode(&ev, deltas[:0])
		if err != nil {
			res.err = err
			break
		}
		has := false
		for _, d := range deltas {
			res.deltas++
			has = has || d.HasContent()
			if d.Role != "" {
				res.role = d.Role
			}
			res.content += d.Content
			if d.FinishReason != "" {
				res.finish = d.FinishReason
			}
			for _, tc := range d.ToolCalls {
				for len(res.toolCalls) <= tc.Index {
					res.toolCalls = append(res.toolCalls, llm.ToolCall{})
				}
				c := &res.toolCalls[tc.Index]
				if tc.ID != "" {
					c.ID = tc.ID
				}
				if tc.Type != "" {
					c.Type = tc.Type
				}
				if tc.Name != "" {
					c.Function.Name = tc.Name
				}
				c.Function.Arguments += tc.Arguments
			}
			if d.Usage != nil {
				u := *d.Usage
				res.usage = &u
			}
		}
		res.contentAt = append(res.contentAt, has)
	}
	res.done = dec.Done()
	if u, ok := dec.Usage(); ok != (res.usage != nil) || ok && u != *res.usage {
		t.Errorf("Usage() = %+v, %v; deltas said %+v", u, ok, res.usage)
	}
	return res
}

func TestStreamDecoderText(t *testing.T) {
	res := decodeStream(t, readFile(t, "streams/text_usage.sse"))
	if res.err != nil || !res.done || res.role != "assistant" || res.content != `Hello! "Quoted" é` || res.finish != "stop" {
		t.Fatalf("%+v", res)
	}
	if *res.usage != (llm.Usage{PromptTokens: 19, CompletionTokens: 10, TotalTokens: 29}) {
		t.Fatalf("usage %+v", res.usage)
	}
	if want := []bool{false, true, true, true, false, false}; !reflect.DeepEqual(res.contentAt, want) {
		t.Fatalf("content per event %v, want %v", res.contentAt, want)
	}

	res = decodeStream(t, readFile(t, "streams/no_usage.sse"))
	if res.err != nil || !res.done || res.content != "Hi" || res.finish != "length" || res.usage != nil {
		t.Fatalf("%+v", res)
	}
}

func TestStreamDecoderToolCalls(t *testing.T) {
	res := decodeStream(t, readFile(t, "streams/tool_calls.sse"))
	want := []llm.ToolCall{
		{ID: "call_DdmO9pD3xa9XTPNJ32zg2hcA", Type: "function", Function: llm.FunctionCall{Name: "get_weather", Arguments: `{"location":"Paris"}`}},
		{ID: "call_2", Type: "function", Function: llm.FunctionCall{Name: "get_time", Arguments: `{}`}},
	}
	if res.err != nil || !res.done || res.content != "" || res.finish != "tool_calls" || !reflect.DeepEqual(res.toolCalls, want) {
		t.Fatalf("%+v", res)
	}
	if *res.usage != (llm.Usage{PromptTokens: 81, CompletionTokens: 31, TotalTokens: 112, CachedTokens: 64}) {
		t.Fatalf("usage %+v", res.usage)
	}
	// The first chunk (role + tool call header) is content: it carries a call.
	if !res.contentAt[0] {
		t.Fatal("tool call header not content")
	}
}

func TestStreamDecoderErrorEvent(t *testing.T) {
	res := decodeStream(t, readFile(t, "streams/error_midstream.sse"))
	var e *llm.Error
	if !errors.As(res.err, &e) || e.Kind != llm.KindUpstream || !e.Retryable ||
		e.Msg != "The server had an error while processing your request. Sorry about that!" {
		t.Fatalf("err = %v", res.err)
	}
	if res.content != "Partial" || res.done {
		t.Fatalf("%+v", res)
	}

	dec := &StreamDecoder{}
	_, err := dec.Decode(&sse.Event{Name: []byte("error"), Data: []byte(`{"message":"rate limited","type":"rate_limit_error"}`)}, nil)
	if !errors.As(err, &e) || e.Kind != llm.KindRateLimit || e.Msg != "rate limited" {
		t.Fatalf("named error event: %v", err)
	}
	_, err = dec.Decode(&sse.Event{Data: []byte(`not json`)}, nil)
	if !errors.As(err, &e) || e.Kind != llm.KindUpstream {
		t.Fatalf("garbage: %v", err)
	}
	out, err := dec.Decode(&sse.Event{Data: []byte(" \n")}, nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("empty data: %v %v", out, err)
	}
}

func TestStreamDecoderMultipleChoicesAndUsageOnChunk(t *testing.T) {
	dec := &StreamDecoder{}
	data := `{"id":"x","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},` +
		`{"index":1,"delta":{"refusal":"no"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}`
	out, err := dec.Decode(&sse.Event{Data: []byte(data)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Delta{
		{ID: "x", Model: "m", Created: 5, Index: 0, Content: "a"},
		{ID: "x", Model: "m", Created: 5, Index: 1, Refusal: "no", FinishReason: "stop"},
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %+v", out)
	}
	if u, ok := dec.Usage(); !ok || u != (llm.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}) {
		t.Fatalf("usage %+v %v", u, ok)
	}
	// A usage chunk with choices null (some compatible servers).
	out, _ = dec.Decode(&sse.Event{Data: []byte(`{"id":"x","choices":null,"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)}, out[:0])
	if len(out) != 1 || out[0].Usage == nil || out[0].Usage.TotalTokens != 3 || out[0].HasContent() {
		t.Fatalf("usage delta %+v", out)
	}
}

func BenchmarkStreamDecoder(b *testing.B) {
	ev := sse.Event{Data: []byte(contentChunk)}
	dec := &StreamDecoder{}
	var out []llm.Delta
	b.ReportAllocs()
	for b.Loop() {
		out, _ = dec.Decode(&ev, out[:0])
	}
}
