package openai

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aigw/aigw/providers/llm"
)

const contentChunk = `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,` +
	`"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,` +
	`"delta":{"content":" the quick brown fox"},"logprobs":null,"finish_reason":null}],"usage":null}`

// Observe agrees with the full decoder on every event of every fixture.
func TestObserveAgreesWithDecoder(t *testing.T) {
	files, _ := filepath.Glob("testdata/streams/*.sse")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		for i, ev := range events(t, readFile(t, "streams/"+filepath.Base(f))) {
			fr := Observe(ev.Data)
			dec := &StreamDecoder{}
			deltas, err := dec.Decode(&ev, nil)
			if fr.Err != (err != nil) {
				t.Errorf("%s #%d: Err=%v, decoder error %v", f, i, fr.Err, err)
			}
			if fr.Done != dec.Done() {
				t.Errorf("%s #%d: Done=%v", f, i, fr.Done)
			}
			content := false
			for _, d := range deltas {
				content = content || d.HasContent()
			}
			if fr.Content != content {
				t.Errorf("%s #%d: Content=%v, decoder %v", f, i, fr.Content, content)
			}
			u, ok := dec.Usage()
			if fr.HasUsage != ok || fr.Usage != u {
				t.Errorf("%s #%d: usage %+v %v, decoder %+v %v", f, i, fr.Usage, fr.HasUsage, u, ok)
			}
			usageOnly := len(deltas) == 1 && deltas[0].Usage != nil && !deltas[0].HasContent() && deltas[0].Role == ""
			if fr.UsageOnly != usageOnly {
				t.Errorf("%s #%d: UsageOnly=%v", f, i, fr.UsageOnly)
			}
		}
	}
}

func TestObserveCases(t *testing.T) {
	cases := []struct {
		data string
		want Frame
	}{
		{`[DONE]`, Frame{Done: true}},
		{" [DONE] \n", Frame{Done: true}},
		{`[DONE]x`, Frame{}},
		{``, Frame{}},
		{`garbage`, Frame{}},
		{`{"choices":[{"delta":{"role":"assistant","content":""}}]}`, Frame{}},
		{`{"choices":[{"delta":{"role":"assistant","content":null,"refusal":null}}]}`, Frame{}},
		{`{"choices":[{"delta":{"content":"x"}}]}`, Frame{Content: true}},
		{`{"choices":[{"delta":{"refusal":"no"}}]}`, Frame{Content: true}},
		{`{"choices":[{"delta":{"tool_calls":[]}}]}`, Frame{}},
		{`{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}`, Frame{Content: true}},
		{`{"choices":[{"delta":{"reasoning_content":"thinking"}}]}`, Frame{Content: true}},
		{`{"choices":[{"delta":{},"finish_reason":"stop"}]}`, Frame{Content: true}},
		{`{"choices":[{"delta":{}},{"delta":{"content":"b"}}]}`, Frame{Content: true}},
		{` { "choices" : [ { "delta" : { "content" : "\"}" } } ] , "usage" : null } `, Frame{Content: true}},
		{`{"choices":[{"delta":{"content":"\\"}}],"x":"\"usage\":{"}`, Frame{Content: true}},
		{`{"choices":[],"prompt_filter_results":[{"prompt_index":0}]}`, Frame{}},
		{`{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,` +
			`"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}}`,
			Frame{UsageOnly: true, HasUsage: true, Usage: llm.Usage{PromptTokens: 5, CompletionTokens: 7, TotalTokens: 12, CachedTokens: 2, ReasoningTokens: 3}}},
		{`{"usage":{"prompt_tokens":5,"completion_tokens":7}}`,
			Frame{UsageOnly: true, HasUsage: true, Usage: llm.Usage{PromptTokens: 5, CompletionTokens: 7, TotalTokens: 12}}},
		{`{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
			Frame{Content: true, HasUsage: true, Usage: llm.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}}},
		{`{"error":{"message":"boom","type":"server_error"}}`, Frame{Err: true}},
		{`{"error":null,"choices":[]}`, Frame{}},
		{`{"choices":[{"delta":{"content":"unterminated`, Frame{}},
	}
	for _, c := range cases {
		if got := Observe([]byte(c.data)); got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.data, got, c.want)
		}
	}
}

func TestStripNullUsage(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"id":"a","choices":[],"usage":null}`, `{"id":"a","choices":[]}`},
		{`{"id":"a","usage":null,"obfuscation":"x"}`, `{"id":"a","obfuscation":"x"}`},
		{`{"usage":null,"id":"a"}`, `{"id":"a"}`},
		{`{"usage":null}`, `{}`},
		{`{ "usage" : null , "id" : "a" }`, `{ "id" : "a" }`},
		{`{"id":"a" , "usage" : null }`, `{"id":"a" }`},
		{`{"id":"a","usage":{"prompt_tokens":1}}`, `{"id":"a","usage":{"prompt_tokens":1}}`},
		{`{"id":"\"usage\":null","x":1}`, `{"id":"\"usage\":null","x":1}`},
		{`{"choices":[{"delta":{"usage":null}}],"usage":null}`, `{"choices":[{"delta":{"usage":null}}]}`},
		{`{"id":"a"}`, `{"id":"a"}`},
		{`[DONE]`, `[DONE]`},
		{`{"usage":nullx}`, `{"usage":nullx}`},
	}
	for _, c := range cases {
		got := string(StripNullUsage([]byte("pre:"), []byte(c.in)))
		if got != "pre:"+c.want {
			t.Errorf("%s: got %s, want %s", c.in, got[4:], c.want)
		}
	}
	// Every fixture chunk: the result is the same JSON without usage:null.
	files, _ := filepath.Glob("testdata/streams/*.sse")
	for _, f := range files {
		for _, ev := range events(t, readFile(t, "streams/"+filepath.Base(f))) {
			var in map[string]any
			if json.Unmarshal(ev.Data, &in) != nil {
				continue
			}
			out := StripNullUsage(nil, ev.Data)
			var got map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%s: %v: %s", f, err, out)
			}
			if u, ok := in["usage"]; ok && u == nil {
				delete(in, "usage")
			}
			if !reflect.DeepEqual(in, got) {
				t.Fatalf("%s:\n%s\n%s", f, ev.Data, out)
			}
		}
	}
}

func FuzzObserveStrip(f *testing.F) {
	f.Add([]byte(contentChunk))
	f.Add([]byte(`{"usage":null,"a":[1,{"b":"\\"}]}`))
	f.Add([]byte(`{"choices":[],"usage":{"prompt_tokens":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		Observe(data)
		out := StripNullUsage(nil, data)
		var in map[string]any
		if json.Unmarshal(data, &in) != nil {
			return
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("stripping %q gave invalid %q", data, out)
		}
		// With one plainly spelled usage member, exactly it goes.
		if strings.Count(string(data), `"usage"`) != 1 || strings.Contains(string(data), `\u`) {
			return
		}
		if u, ok := in["usage"]; ok && u == nil {
			delete(in, "usage")
		}
		if len(got) != len(in) {
			t.Fatalf("stripping %q gave %q", data, out)
		}
	})
}

func BenchmarkObserve(b *testing.B) {
	data := []byte(contentChunk)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if f := Observe(data); !f.Content {
			b.Fatal("no content")
		}
	}
}

func BenchmarkObserveUsageChunk(b *testing.B) {
	data := []byte(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,` +
		`"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,` +
		`"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,` +
		`"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if f := Observe(data); !f.UsageOnly {
			b.Fatal("not usage")
		}
	}
}

func BenchmarkStripNullUsage(b *testing.B) {
	data := []byte(contentChunk)
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dst = StripNullUsage(dst[:0], data)
	}
}

// The slow path: usage:null followed by another member (obfuscation).
func BenchmarkStripNullUsageMiddle(b *testing.B) {
	data := []byte(contentChunk[:len(contentChunk)-1] + `,"obfuscation":"kQ3"}`)
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dst = StripNullUsage(dst[:0], data)
	}
	if bytes.Contains(dst, []byte("usage")) {
		b.Fatal("not stripped")
	}
}

// A chunk with no usage member at all, as OpenAI-compatible servers that
// ignore stream_options (and the benchmark's fake upstream) send.
func BenchmarkStripNullUsageAbsent(b *testing.B) {
	data := []byte(strings.Replace(contentChunk, `,"usage":null`, "", 1))
	if bytes.Contains(data, []byte("usage")) {
		b.Fatal("fixture has usage")
	}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dst = StripNullUsage(dst[:0], data)
	}
	if !bytes.Equal(dst, data) {
		b.Fatal("changed")
	}
}
