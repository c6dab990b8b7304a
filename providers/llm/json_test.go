package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func decodeReq(t *testing.T, body string) *Request {
	t.Helper()
	var r Request
	if err := r.UnmarshalJSON([]byte(body)); err != nil {
		t.Fatalf("UnmarshalJSON(%s): %v", body, err)
	}
	return &r
}

func TestRequestUnmarshalFull(t *testing.T) {
	body := `{
	  "model": "gpt-4o",
	  "messages": [
	    {"role": "system", "content": "Be brief."},
	    {"role": "user", "name": "ann", "content": [
	      {"type": "text", "text": "What is in this image?"},
	      {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
	      {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
	    ]},
	    {"role": "assistant", "content": null, "tool_calls": [
	      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
	    ]},
	    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
	    {"role": "assistant", "refusal": "I can't help with that.", "audio": {"id": "x"}}
	  ],
	  "stream": true,
	  "stream_options": {"include_usage": true},
	  "max_tokens": 100,
	  "max_completion_tokens": 200,
	  "temperature": 0.7,
	  "top_p": 1,
	  "n": 2,
	  "stop": "END",
	  "user": "u-1",
	  "seed": -42,
	  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
	     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}],
	  "tool_choice": "auto",
	  "response_format": {"type": "json_object"},
	  "presence_penalty": 0.5,
	  "metadata": {"a": [1, 2, {"b": null}]},
	  "Model": "case-sensitive"
	}`
	r := decodeReq(t, body)
	want := &Request{
		Model: "gpt-4o",
		Messages: []Message{
			{Role: "system", Content: "Be brief.", HasContent: true},
			{Role: "user", Name: "ann", HasContent: true, Parts: []Part{
				{Type: "text", Text: "What is in this image?"},
				{Type: "image_url", ImageURL: &ImageURL{URL: "https://example.com/a.png", Detail: "low"}},
				{Type: "input_audio", Raw: json.RawMessage(`{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}`)},
			}},
			{Role: "assistant", ToolCalls: []ToolCall{{ID: "call_1", Type: "function",
				Function: FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}},
			{Role: "tool", ToolCallID: "call_1", Content: "18C", HasContent: true},
			{Role: "assistant", Refusal: "I can't help with that."},
		},
		Stream:              true,
		StreamOptions:       &StreamOptions{IncludeUsage: true},
		MaxTokens:           ptr(100),
		MaxCompletionTokens: ptr(200),
		Temperature:         ptr(0.7),
		TopP:                ptr(1.0),
		N:                   ptr(2),
		Stop:                Stop{"END"},
		User:                "u-1",
		Seed:                ptr(int64(-42)),
		Tools: []Tool{{Type: "function", Function: FunctionDecl{Name: "get_weather", Description: "Weather.",
			Parameters: json.RawMessage(`{"type": "object", "properties": {"city": {"type": "string"}}}`), Strict: ptr(true)}}},
		ToolChoice:     json.RawMessage(`"auto"`),
		ResponseFormat: json.RawMessage(`{"type": "json_object"}`),
		Extra: map[string]json.RawMessage{
			"presence_penalty": json.RawMessage(`0.5`),
			"metadata":         json.RawMessage(`{"a": [1, 2, {"b": null}]}`),
			"Model":            json.RawMessage(`"case-sensitive"`),
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded:\n%#v\nwant:\n%#v", r, want)
	}
}

func TestRequestUnmarshalNullsAndForms(t *testing.T) {
	r := decodeReq(t, `{"model":null,"messages":[{"role":"user"}],"stop":null,"max_tokens":null,
		"temperature":null,"tools":null,"tool_choice":null,"response_format":null,"stream":null,"stream_options":null,"user":null}`)
	if r.Model != "" || r.Stop != nil || r.MaxTokens != nil || r.Temperature != nil || r.Tools != nil ||
		r.ToolChoice != nil || r.ResponseFormat != nil || r.Stream || r.StreamOptions != nil || r.Extra != nil {
		t.Fatalf("nulls not read as absent: %#v", r)
	}
	if r.Messages[0].HasContent {
		t.Fatal("absent content read as present")
	}
	r = decodeReq(t, `{"stop":["a","b"],"messages":[{"role":"user","content":""},{"role":"user","content":[]}],"n":1e0,"max_tokens":2.0}`)
	if !reflect.DeepEqual(r.Stop, Stop{"a", "b"}) {
		t.Fatalf("stop = %q", r.Stop)
	}
	if m := r.Messages[0]; !m.HasContent || m.Content != "" || m.Parts != nil {
		t.Fatalf("empty string content: %#v", m)
	}
	if m := r.Messages[1]; !m.HasContent || m.Parts == nil || len(m.Parts) != 0 {
		t.Fatalf("empty array content: %#v", m)
	}
	if *r.N != 1 || *r.MaxTokens != 2 {
		t.Fatalf("integral numbers: n=%d max_tokens=%d", *r.N, *r.MaxTokens)
	}
}

func TestRequestUnmarshalStrings(t *testing.T) {
	cases := []struct{ in, want string }{
		{`"plain"`, "plain"},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t"},
		{`"\u00e9\u4e2d"`, "é中"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud83d"`, "\uFFFD"},
		{`"\ude00x"`, "\uFFFDx"},
		{`"\ud83d\u0041"`, "\uFFFDA"},
		{"\"bad\xffutf8\"", "bad\uFFFDutf8"},
		{"\"\xe2\x80\"", "\uFFFD\uFFFD"},
		{"\"ok é \xc3\"", "ok é \uFFFD"},
	}
	for _, c := range cases {
		r := decodeReq(t, `{"messages":[{"role":"user","content":`+c.in+`}]}`)
		if got := r.Messages[0].Content; got != c.want {
			t.Errorf("%s: got %q, want %q", c.in, got, c.want)
		}
		// encoding/json agrees.
		var s string
		if err := json.Unmarshal([]byte(c.in), &s); err != nil || s != c.want {
			t.Errorf("%s: encoding/json gives %q (%v); test expectation %q", c.in, s, err, c.want)
		}
	}
}

func TestRequestUnmarshalTypeErrors(t *testing.T) {
	cases := []struct {
		body, param, msg string
	}{
		{`{"model":1}`, "model", "Invalid type for 'model': expected a string, but got a number instead."},
		{`{"messages":{}}`, "messages", "Invalid type for 'messages': expected an array, but got an object instead."},
		{`{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"user","content":5}]}`,
			"messages[2].content", "Invalid type for 'messages[2].content': expected a string or an array of content parts, but got a number instead."},
		{`{"messages":["hi"]}`, "messages[0]", ""},
		{`{"messages":[{"role":true}]}`, "messages[0].role", ""},
		{`{"messages":[{"role":"user","content":[{"type":"text","text":1}]}]}`, "messages[0].content[0].text", ""},
		{`{"messages":[{"role":"user","content":["x"]}]}`, "messages[0].content[0]", ""},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":"u"}]}]}`, "messages[0].content[0].image_url", ""},
		{`{"messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"arguments":{}}}]}]}`,
			"messages[0].tool_calls[0].function.arguments", ""},
		{`{"messages":[{"role":"assistant","tool_calls":{}}]}`, "messages[0].tool_calls", ""},
		{`{"stream":"yes"}`, "stream", "Invalid type for 'stream': expected a boolean, but got a string instead."},
		{`{"stream_options":{"include_usage":1}}`, "stream_options.include_usage", ""},
		{`{"stream_options":true}`, "stream_options", ""},
		{`{"max_tokens":1.5}`, "max_tokens", "Invalid type for 'max_tokens': expected an integer, but got a number instead."},
		{`{"max_tokens":"10"}`, "max_tokens", ""},
		{`{"max_tokens":1e300}`, "max_tokens", ""},
		{`{"temperature":"hot"}`, "temperature", ""},
		{`{"temperature":1e999}`, "temperature", ""},
		{`{"stop":5}`, "stop", ""},
		{`{"stop":["a",1]}`, "stop[1]", ""},
		{`{"tools":[{"type":"custom","custom":{"name":"x"}}]}`, "tools[0].type", "Invalid value: 'custom'. Supported values are: 'function'."},
		{`{"tools":[{"type":"function","function":{"name":"x","strict":"y"}}]}`, "tools[0].function.strict", ""},
		{`[]`, "", "The request body must be a JSON object, but got an array instead."},
	}
	for _, c := range cases {
		var r Request
		err := r.UnmarshalJSON([]byte(c.body))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %v is not *Error", c.body, err)
			continue
		}
		if e.Kind != KindInvalidRequest || e.Param != c.param {
			t.Errorf("%s: kind %v param %q, want invalid_request %q (%s)", c.body, e.Kind, e.Param, c.param, e.Msg)
		}
		if c.msg != "" && e.Msg != c.msg {
			t.Errorf("%s: msg %q, want %q", c.body, e.Msg, c.msg)
		}
		if e.Msg == "" || e.Msg == parseErrorMsg {
			t.Errorf("%s: unhelpful message %q", c.body, e.Msg)
		}
	}
}

var syntaxCases = []string{
	``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a":1}x`, `{"a":1}{}`,
	`{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":tru}`, `{"a":nul}`, `{"a":falsey}`, `{"a":01}`, `{"a":-}`,
	`{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":+1}`, `{"a":"x}`, "{\"a\":\"x\ny\"}", `{"a":"\x"}`, `{"a":"\u12"}`,
	`{"a":'x'}`, `{a:1}`, `{"model":"x"`, `{"messages":[{"role":"user","content":"hi"}`, `{"a":NaN}`,
	`{"messages":[{"content":tru}]}`, `{"model":1x}`, "{\"a\":1}\x00", `{"a":"\ud83d\u00"}`,
}

func TestRequestUnmarshalSyntaxErrors(t *testing.T) {
	for _, body := range syntaxCases {
		if json.Valid([]byte(body)) {
			t.Fatalf("test case %q is valid JSON", body)
		}
		for _, target := range []interface{ UnmarshalJSON([]byte) error }{&Request{}, &EmbeddingRequest{}, &Message{}} {
			err := target.UnmarshalJSON([]byte(body))
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalidRequest {
				t.Errorf("%T %q: err = %v, want invalid request", target, body, err)
				continue
			}
			var se *syntaxError
			if e.Msg != parseErrorMsg || !errors.As(e, &se) {
				t.Errorf("%T %q: msg %q (%v), want the parse error message", target, body, e.Msg, e.Err)
			}
		}
	}
}

func TestRequestUnmarshalDepthLimit(t *testing.T) {
	deep := `{"x":` + strings.Repeat("[", maxDepth+10) + strings.Repeat("]", maxDepth+10) + `}`
	var r Request
	if err := r.UnmarshalJSON([]byte(deep)); err == nil {
		t.Fatal("no error for nesting beyond the limit")
	}
	ok := `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	if err := r.UnmarshalJSON([]byte(ok)); err != nil {
		t.Fatal(err)
	}
}

// The decoder accepts exactly the documents encoding/json accepts.
func TestDecoderAgreesWithEncodingJSON(t *testing.T) {
	docs := append([]string{
		`{}`, ` {"a" : [ 1 , -0.5e+3 , "x\u0041" , true , false , null , {} , [] ] } `, `{"a":1E5,"b":-0,"c":0.0e-0}`,
		"{\"a\":\"\xff\"}", `{"a":{"b":{"c":[[[]]]}}}`,
	}, syntaxCases...)
	for _, doc := range docs {
		d := decoder{data: []byte(doc)}
		err := d.skipValue()
		if err == nil && !d.atEnd() {
			err = d.errUnexpected("after top-level value")
		}
		if (err == nil) != json.Valid([]byte(doc)) {
			t.Errorf("%q: decoder err %v, json.Valid %v", doc, err, json.Valid([]byte(doc)))
		}
	}
}

func TestStreamOptionsPreserved(t *testing.T) {
	r := decodeReq(t, `{"model":"m","messages":[],"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":false}}`)
	if r.StreamOptions == nil || r.StreamOptions.IncludeUsage {
		t.Fatalf("stream options %#v", r.StreamOptions)
	}
	r.StreamOptions.IncludeUsage = true
	got := string(r.AppendJSON(nil))
	want := `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	r.StreamOptions = nil
	if got := string(r.AppendJSON(nil)); strings.Contains(got, "stream_options") {
		t.Fatalf("nil StreamOptions still written: %s", got)
	}
	// Only include_usage: nothing stashed.
	r = decodeReq(t, `{"stream":true,"stream_options":{"include_usage":true}}`)
	if r.Extra != nil {
		t.Fatalf("Extra = %v", r.Extra)
	}
}

func TestRequestAppendJSON(t *testing.T) {
	r := &Request{
		Model: "m",
		Messages: []Message{
			{Role: "user", Content: "hi <b> & \u2028", HasContent: true},
			{Role: "assistant", ToolCalls: []ToolCall{{ID: "c", Function: FunctionCall{Name: "f", Arguments: "{}"}}}},
			{Role: "tool", ToolCallID: "c", Content: "ok"}, // HasContent forgotten: content still written
			{Role: "user", Parts: []Part{{Type: "text", Text: ""}, {Type: "image_url", ImageURL: &ImageURL{URL: "u"}},
				{Type: "file", Raw: json.RawMessage(`{"type":"file","file":{"file_id":"f"}}`)}}},
		},
		Temperature: ptr(1e-7),
		TopP:        ptr(0.0),
		Stop:        Stop{"a"},
		Tools:       []Tool{{Function: FunctionDecl{Name: "f"}}},
		Extra:       map[string]json.RawMessage{"z": json.RawMessage(`1`), "a": json.RawMessage(`[true]`), "model": json.RawMessage(`"dup"`), "e": nil},
	}
	got := string(r.AppendJSON([]byte("prefix:")))
	want := `prefix:{"model":"m","messages":[{"role":"user","content":"hi <b> & \u2028"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
		`{"role":"tool","content":"ok","tool_call_id":"c"},` +
		`{"role":"user","content":[{"type":"text","text":""},{"type":"image_url","image_url":{"url":"u"}},{"type":"file","file":{"file_id":"f"}}]}],` +
		`"temperature":1e-7,"top_p":0,"stop":["a"],"tools":[{"type":"function","function":{"name":"f"}}],"a":[true],"z":1}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// encoding/json HTML-escapes what MarshalJSON returns; otherwise the
	// same bytes.
	viaJSON, err := json.Marshal(r)
	var escaped bytes.Buffer
	json.HTMLEscape(&escaped, []byte(want[len("prefix:"):]))
	if err != nil || string(viaJSON) != escaped.String() {
		t.Fatalf("json.Marshal = %s, %v", viaJSON, err)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	bodies := []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`,
		`{"model":"m","messages":[{"role":"developer","content":[{"type":"text","text":"x\u0000y"},{"type":"refusal","refusal":"no"}]},
		  {"role":"assistant","content":null,"refusal":"r","tool_calls":[{"id":"1","type":"function","function":{"name":"n","arguments":""}}]},
		  {"role":"tool","tool_call_id":"1","content":""}],
		  "stream":true,"stream_options":{"include_usage":true,"x":[1]},"max_tokens":5,"max_completion_tokens":6,"temperature":2,
		  "top_p":0.25,"n":3,"stop":["\n\n","END"],"user":"u","seed":9007199254740993,
		  "tools":[{"type":"function","function":{"name":"f","parameters":{},"strict":false}}],
		  "tool_choice":{"type":"function","function":{"name":"f"}},"response_format":{"type":"text"},
		  "logit_bias":{"50256":-100},"parallel_tool_calls":false,"extra":"\ud83d\ude00"}`,
	}
	for _, body := range bodies {
		r1 := decodeReq(t, body)
		enc := r1.AppendJSON(nil)
		if !json.Valid(enc) {
			t.Fatalf("invalid JSON: %s", enc)
		}
		r2 := decodeReq(t, string(enc))
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("round trip differs:\n%#v\n%#v\nvia %s", r1, r2, enc)
		}
		if enc2 := r2.AppendJSON(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	}
}

// json.Unmarshal into a struct holding a Request uses the codec.
func TestRequestThroughEncodingJSON(t *testing.T) {
	var wrap struct{ R Request }
	if err := json.Unmarshal([]byte(`{"R":{"model":"m","extra":1,"messages":[{"role":"user","content":null}]}}`), &wrap); err != nil {
		t.Fatal(err)
	}
	if wrap.R.Model != "m" || string(wrap.R.Extra["extra"]) != "1" || wrap.R.Messages[0].HasContent {
		t.Fatalf("%#v", wrap.R)
	}
	var e *Error
	err := json.Unmarshal([]byte(`{"R":{"model":2}}`), &wrap)
	if !errors.As(err, &e) || e.Param != "model" {
		t.Fatalf("type error through encoding/json: %v", err)
	}
}

func TestMessageUnmarshal(t *testing.T) {
	var m Message
	if err := json.Unmarshal([]byte(`{"role":"assistant","content":"hi","annotations":[],"refusal":null}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.Role != "assistant" || m.Content != "hi" || !m.HasContent || m.Refusal != "" {
		t.Fatalf("%#v", m)
	}
	err := m.UnmarshalJSON([]byte(`{"content":1}`))
	var e *Error
	if !errors.As(err, &e) || e.Param != "content" {
		t.Fatalf("err = %v", err)
	}
}

func TestPartUnmarshal(t *testing.T) {
	var p Part
	if err := p.UnmarshalJSON([]byte(`{"text":"late type","type":"text","cache_control":{}}`)); err != nil {
		t.Fatal(err)
	}
	if p.Type != "text" || p.Text != "late type" || p.Raw != nil {
		t.Fatalf("%#v", p)
	}
	// A part of an unmodelled type may reuse modelled member names freely.
	if err := p.UnmarshalJSON([]byte(`{"type":"other","text":{"nested":1}}`)); err != nil {
		t.Fatal(err)
	}
	if p.Type != "other" || string(p.Raw) != `{"type":"other","text":{"nested":1}}` {
		t.Fatalf("%#v", p)
	}
}

func TestEmbeddingRequestCodec(t *testing.T) {
	var r EmbeddingRequest
	body := `{"input":["a","b"],"model":"text-embedding-3-small","encoding_format":"base64","dimensions":256,"user":"u","x":{"y":1}}`
	if err := r.UnmarshalJSON([]byte(body)); err != nil {
		t.Fatal(err)
	}
	want := EmbeddingRequest{Model: "text-embedding-3-small", Input: json.RawMessage(`["a","b"]`), EncodingFormat: "base64",
		Dimensions: ptr(256), User: "u", Extra: map[string]json.RawMessage{"x": json.RawMessage(`{"y":1}`)}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("%#v", r)
	}
	enc, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	wantEnc := `{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"base64","dimensions":256,"user":"u","x":{"y":1}}`
	if string(enc) != wantEnc {
		t.Fatalf("got  %s\nwant %s", enc, wantEnc)
	}
	var r2 EmbeddingRequest
	if err := r2.UnmarshalJSON(enc); err != nil || !reflect.DeepEqual(r, r2) {
		t.Fatalf("round trip: %v\n%#v", err, r2)
	}
	err = r2.UnmarshalJSON([]byte(`{"dimensions":"x"}`))
	var e *Error
	if !errors.As(err, &e) || e.Param != "dimensions" {
		t.Fatalf("err = %v", err)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	inputs := []string{"", "plain", `quote " backslash \ slash /`, "\x00\x01\x1f\x7f", "\n\r\t\b\f",
		"<html> & 'x'", "é中😀", "\u2028\u2029", "bad\xff\xfe", "\xe2\x80", "trail\xc3", "\uFFFD", "a\u2028b\xffc\"d"}
	for _, s := range inputs {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(AppendJSONString(nil, s)); got != want {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestAppendJSONFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.7, 1e-7, 1e-6, 123456789, 1e20, 1e21, 1.5e300, -2.5e-10, math.SmallestNonzeroFloat64} {
		want, _ := json.Marshal(f)
		if got := AppendJSONFloat(nil, f); string(got) != string(want) {
			t.Errorf("%v: got %s, want %s", f, got, want)
		}
	}
	if got := string(AppendJSONFloat(nil, math.NaN())); got != "null" {
		t.Errorf("NaN: %s", got)
	}
}

// FuzzRequestUnmarshal checks that decoding never panics, refuses what is
// not JSON, and that whatever decodes re-encodes to valid JSON that decodes
// to the same request.
func FuzzRequestUnmarshal(f *testing.F) {
	f.Add([]byte(benchBody))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"stop":"s"}`))
	f.Add([]byte(`{"stream_options":{"include_usage":true,"o":1},"x":"\ud800"}`))
	for _, s := range syntaxCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		err := r.UnmarshalJSON(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		enc := r.AppendJSON(nil)
		if !json.Valid(enc) {
			t.Fatalf("re-encoding is not JSON: %q", enc)
		}
		var r2 Request
		if err := r2.UnmarshalJSON(enc); err != nil {
			t.Fatalf("re-decoding %q: %v", enc, err)
		}
		if enc2 := r2.AppendJSON(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable:\n%q\n%q", enc, enc2)
		}
	})
}

const benchBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},` +
	`{"role":"user","content":"Write a haiku about the sea, and explain each line in one sentence."}],` +
	`"stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"max_tokens":256}`

func BenchmarkRequestUnmarshal(b *testing.B) {
	data := []byte(benchBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var r Request
		if err := r.UnmarshalJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestUnmarshalEncodingJSON(b *testing.B) {
	// The reference point: what encoding/json costs for the same body
	// into a plain struct without Extra.
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type req struct {
		Model         string         `json:"model"`
		Messages      []msg          `json:"messages"`
		Stream        bool           `json:"stream"`
		StreamOptions *StreamOptions `json:"stream_options"`
		Temperature   *float64       `json:"temperature"`
		MaxTokens     *int           `json:"max_tokens"`
	}
	data := []byte(benchBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var r req
		if err := json.Unmarshal(data, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestAppendJSON(b *testing.B) {
	var r Request
	if err := r.UnmarshalJSON([]byte(benchBody)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}

// Decoded values never alias the input: the proxy's body buffer is reused.
func TestUnmarshalDoesNotAlias(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"id":"f"}}]},` +
		`{"role":"assistant","content":"plain","tool_calls":[{"id":"c","type":"function","function":{"name":"n","arguments":"{}"}}]}],` +
		`"tools":[{"type":"function","function":{"name":"n","parameters":{"type":"object"}}}],"tool_choice":"auto",` +
		`"response_format":{"type":"json_object"},"stream_options":{"include_usage":true,"x":1},"extra":[1,2]}`)
	var r Request
	if err := r.UnmarshalJSON(body); err != nil {
		t.Fatal(err)
	}
	before := string(r.AppendJSON(nil))
	for i := range body {
		body[i] = '#'
	}
	if after := string(r.AppendJSON(nil)); after != before {
		t.Fatalf("decoded request changed with its input:\n%s\n%s", before, after)
	}
}
