package openai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

func TestAppendChunkExact(t *testing.T) {
	cases := []struct {
		d    llm.Delta
		want string
	}{
		{llm.Delta{Role: "assistant"},
			`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`},
		{llm.Delta{Content: "hi"},
			`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}]}`},
		{llm.Delta{Index: 1, FinishReason: "stop"},
			`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":1,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`},
		{llm.Delta{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "call_1", Type: "function", Name: "f"}, {Index: 1, Arguments: `{"a`}}},
			`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[` +
				`{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}},{"index":1,"function":{"arguments":"{\"a"}}]},` +
				`"logprobs":null,"finish_reason":null}]}`},
		{llm.Delta{Refusal: "no", Usage: &llm.Usage{PromptTokens: 1}},
			`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"refusal":"no"},"logprobs":null,"finish_reason":null}]}`},
	}
	for _, c := range cases {
		if got := string(AppendChunk(nil, &c.d, "c1", "m", 7)); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

// AppendChunk's output decodes back to the same delta, whatever the text.
func TestAppendChunkRoundTrip(t *testing.T) {
	texts := []string{"plain", `q"uote\back`, "\x00\x1f\n\t", "bad\xffutf8", "\u2028\u2029", "<script>&", "é😀"}
	for _, s := range texts {
		in := llm.Delta{Index: 2, Role: "assistant", Content: s, Refusal: s, FinishReason: "length",
			ToolCalls: []llm.ToolCallDelta{{Index: 3, ID: s, Type: "function", Name: s, Arguments: s}}}
		out := AppendChunk([]byte("keep"), &in, "id"+s, "model"+s, 99)
		if string(out[:4]) != "keep" {
			t.Fatal("dst prefix lost")
		}
		if !json.Valid(out[4:]) {
			t.Fatalf("%q: invalid JSON %s", s, out[4:])
		}
		deltas, err := (&StreamDecoder{}).Decode(&sse.Event{Data: out[4:]}, nil)
		if err != nil || len(deltas) != 1 {
			t.Fatalf("%q: %v %v", s, deltas, err)
		}
		var wantS string // what encoding/json makes of s
		b, _ := json.Marshal(s)
		_ = json.Unmarshal(b, &wantS)
		want := llm.Delta{ID: "id" + wantS, Model: "model" + wantS, Created: 99, Index: 2, Role: "assistant", Content: wantS,
			Refusal: wantS, FinishReason: "length", ToolCalls: []llm.ToolCallDelta{{Index: 3, ID: wantS, Type: "function", Name: wantS, Arguments: wantS}}}
		if !reflect.DeepEqual(deltas[0], want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", s, deltas[0], want)
		}
	}
}

func TestAppendUsageChunk(t *testing.T) {
	u := llm.Usage{PromptTokens: 10, CompletionTokens: 5, CachedTokens: 4, ReasoningTokens: 2}
	got := string(AppendUsageChunk(nil, u, "c", "m", 1))
	want := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":10,` +
		`"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	f := Observe([]byte(got))
	u.TotalTokens = 15
	if !f.UsageOnly || f.Usage != u {
		t.Fatalf("observed %+v", f)
	}
}

func TestEncodeResponseRoundTrip(t *testing.T) {
	for _, name := range []string{"responses/text.json", "responses/tool_calls.json", "responses/reasoning.json"} {
		r1, err := Adapter{}.DecodeChat(readFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		enc := EncodeResponse(nil, r1)
		if !json.Valid(enc) {
			t.Fatalf("%s: invalid %s", name, enc)
		}
		r2, err := Adapter{}.DecodeChat(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("%s: round trip\n%+v\n%+v\nvia %s", name, r1, r2, enc)
		}
	}
	got := string(EncodeResponse(nil, &llm.Response{ID: "x", Created: 3, Model: "m",
		Choices: []llm.Choice{{Message: llm.Message{Content: "hi", HasContent: true}, FinishReason: "stop"}}}))
	want := `{"id":"x","object":"chat.completion","created":3,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":"stop"}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestEncodeModelList(t *testing.T) {
	got := string(EncodeModelList(nil, []string{"fast", `we"ird`}, 1700000000, "aigw"))
	want := `{"object":"list","data":[{"id":"fast","object":"model","created":1700000000,"owned_by":"aigw"},` +
		`{"id":"we\"ird","object":"model","created":1700000000,"owned_by":"aigw"}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := string(EncodeModelList(nil, nil, 0, "x")); got != `{"object":"list","data":[]}` {
		t.Fatal(got)
	}
}

func TestFloatsToBase64(t *testing.T) {
	vals := []float32{0.0023064255, -0.009327292, 1, -2.5, 1e-7, 0}
	raw, _ := json.Marshal(vals)
	out, err := FloatsToBase64(raw)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 4*len(vals) {
		t.Fatalf("%q: %v", s, err)
	}
	for i, v := range vals {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])); got != v {
			t.Errorf("value %d: %v, want %v", i, got, v)
		}
	}
	// OpenAI's own example: [1, -2] as float32 LE is 0000803f 000000c0.
	if out, _ := FloatsToBase64(json.RawMessage(` [ 1 , -2 ] `)); string(out) != `"AACAPwAAAMA="` {
		t.Fatalf("got %s", out)
	}
	if out, _ := FloatsToBase64(json.RawMessage(`"AACAPw=="`)); string(out) != `"AACAPw=="` {
		t.Fatalf("string passthrough: %s", out)
	}
	if out, _ := FloatsToBase64(json.RawMessage(`[]`)); string(out) != `""` {
		t.Fatalf("empty: %s", out)
	}
	for _, bad := range []string{`{}`, `[1,"x"]`, ``, `[true]`} {
		var e *llm.Error
		if _, err := FloatsToBase64(json.RawMessage(bad)); !errors.As(err, &e) || e.Kind != llm.KindUpstream {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

func BenchmarkAppendChunk(b *testing.B) {
	d := llm.Delta{Content: " the quick brown fox"}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendChunk(dst[:0], &d, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "gpt-4o-2024-08-06", 1741569952)
	}
}
