package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

func parseRequest(t *testing.T, s string) *llm.Request {
	t.Helper()
	var r llm.Request
	if err := r.UnmarshalJSON([]byte(s)); err != nil {
		t.Fatalf("bad test request: %v", err)
	}
	return &r
}

func llmError(t *testing.T, err error) *llm.Error {
	t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T (%v) is not an *llm.Error", err, err)
	}
	return e
}

func TestEncodeChatURLAndHeaders(t *testing.T) {
	a := New(fixedNow)
	for _, c := range []struct {
		name, base, model string
		stream            bool
		want              string
	}{
		{"plain", "https://generativelanguage.googleapis.com", "gemini-2.5-flash", false,
			"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"},
		{"stream", "https://generativelanguage.googleapis.com", "gemini-2.5-flash", true,
			"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
		{"prefixed model, trailing slash", "http://127.0.0.1:9000/", "models/gemini-2.5-pro", false,
			"http://127.0.0.1:9000/v1beta/models/gemini-2.5-pro:generateContent"},
		{"default base", "", "gemini-2.5-flash", false,
			"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"},
		{"hostile model name is escaped", "https://g.example", "x/../y?key=1", false,
			"https://g.example/v1beta/models/x%2F..%2Fy%3Fkey=1:generateContent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := parseRequest(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
			req.Stream = c.stream
			tg := testTarget(c.model)
			tg.BaseURL = c.base
			out, err := a.EncodeChat(nil, req, &tg)
			if err != nil {
				t.Fatal(err)
			}
			if out.URL != c.want {
				t.Errorf("URL = %q, want %q", out.URL, c.want)
			}
			if out.Stream != c.stream || out.Method != "POST" {
				t.Errorf("Stream = %v, Method = %q", out.Stream, out.Method)
			}
			if strings.Contains(out.URL, testKey) {
				t.Error("the API key is in the URL")
			}
			want := []llm.Header{{Key: "Content-Type", Value: "application/json"}, {Key: "x-goog-api-key", Value: testKey}}
			if !reflect.DeepEqual(out.Header, want) {
				t.Errorf("Header = %v, want %v", out.Header, want)
			}
		})
	}

	tg := testTarget("")
	if _, err := a.EncodeChat(nil, parseRequest(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`), &tg); llmError(t, err).Kind != llm.KindInternal {
		t.Errorf("no model: %v, want KindInternal", err)
	}
	if _, err := a.EncodeChat(nil, parseRequest(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`), nil); llmError(t, err).Kind != llm.KindInternal {
		t.Errorf("no target: %v, want KindInternal", err)
	}
}

func TestEncodeChatReusesDst(t *testing.T) {
	a := New(fixedNow)
	tg := testTarget("gemini-2.5-flash")
	req := parseRequest(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	dst := make([]byte, 0, 4096)
	out, err := a.EncodeChat(dst, req, &tg)
	if err != nil {
		t.Fatal(err)
	}
	if &out.Body[0] != &dst[:1][0] {
		t.Error("EncodeChat did not build the body in dst's spare capacity")
	}
}

// geminiBody is the part of a Gemini request the round-trip test inspects.
type geminiBody struct {
	Contents []struct {
		Role  string `json:"role"`
		Parts []struct {
			Text         string `json:"text"`
			FunctionCall *struct {
				Name string          `json:"name"`
				Args json.RawMessage `json:"args"`
			} `json:"functionCall"`
			FunctionResponse *struct {
				Name     string          `json:"name"`
				Response json.RawMessage `json:"response"`
			} `json:"functionResponse"`
			ThoughtSignature string `json:"thoughtSignature"`
		} `json:"parts"`
	} `json:"contents"`
	Tools []struct {
		FunctionDeclarations []struct {
			Name string `json:"name"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
}

// TestToolCallRoundTrip follows a conversation through the adapter: a
// request offering tools, Gemini's answer calling two different functions
// (the first with a thought signature), and the follow-up request carrying
// the assistant's tool calls and the tool results in the opposite order.
// The follow-up must give Gemini back the same calls, the signature at the
// same part, and function responses paired by name through the ids.
func TestToolCallRoundTrip(t *testing.T) {
	a := New(fixedNow)
	tg := testTarget("gemini-3-pro-preview")
	const tools = `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
		{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"tz":{"type":"string"}}}}}]`
	first := parseRequest(t, `{"model":"m","messages":[{"role":"user","content":"Weather and time in Paris?"}],"tools":`+tools+`}`)
	out, err := a.EncodeChat(nil, first, &tg)
	if err != nil {
		t.Fatal(err)
	}
	var b1 geminiBody
	if err := json.Unmarshal(out.Body, &b1); err != nil {
		t.Fatal(err)
	}
	if len(b1.Tools) != 1 || len(b1.Tools[0].FunctionDeclarations) != 2 || b1.Tools[0].FunctionDeclarations[1].Name != "get_time" {
		t.Fatalf("tools not declared: %s", out.Body)
	}

	const sig = "CiQBjz1rX2Zha2Utc2lnbmF0dXJlLWZvci10ZXN0cw=="
	answer := `{"candidates":[{"content":{"role":"model","parts":[
		{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"` + sig + `"},
		{"functionCall":{"name":"get_time","args":{"tz":"Europe/Paris"}}}]},"finishReason":"STOP","index":0}],
		"usageMetadata":{"promptTokenCount":50,"candidatesTokenCount":20,"totalTokenCount":70},"responseId":"rt1"}`
	resp, err := a.DecodeChat([]byte(answer))
	if err != nil {
		t.Fatal(err)
	}
	ch := resp.Choices[0]
	if ch.FinishReason != llm.FinishToolCalls || len(ch.Message.ToolCalls) != 2 {
		t.Fatalf("answer = %+v", ch)
	}
	calls := ch.Message.ToolCalls
	if calls[0].ID == calls[1].ID || !strings.HasPrefix(calls[0].ID, "call_") || !strings.HasPrefix(calls[1].ID, "call_") {
		t.Fatalf("tool call ids %q, %q", calls[0].ID, calls[1].ID)
	}
	if calls[0].Function.Arguments != `{"city":"Paris"}` || calls[1].Function.Arguments != `{"tz":"Europe/Paris"}` {
		t.Fatalf("arguments %q, %q", calls[0].Function.Arguments, calls[1].Function.Arguments)
	}

	// The client sends the assistant message back as it received it (via
	// its JSON form) and answers the calls, time first.
	assistant, err := json.Marshal(ch.Message)
	if err != nil {
		t.Fatal(err)
	}
	follow := parseRequest(t, `{"model":"m","tools":`+tools+`,"messages":[
		{"role":"user","content":"Weather and time in Paris?"},
		`+string(assistant)+`,
		{"role":"tool","tool_call_id":"`+calls[1].ID+`","content":"14:05"},
		{"role":"tool","tool_call_id":"`+calls[0].ID+`","content":"{\"temp_c\":18}"}]}`)
	out, err = a.EncodeChat(nil, follow, &tg)
	if err != nil {
		t.Fatal(err)
	}
	var b2 geminiBody
	if err := json.Unmarshal(out.Body, &b2); err != nil {
		t.Fatal(err)
	}
	if len(b2.Contents) != 3 {
		t.Fatalf("contents = %s", out.Body)
	}
	model := b2.Contents[1]
	if model.Role != "model" || len(model.Parts) != 2 {
		t.Fatalf("model turn = %+v", model)
	}
	p0, p1 := model.Parts[0], model.Parts[1]
	if p0.FunctionCall == nil || p0.FunctionCall.Name != "get_weather" || string(p0.FunctionCall.Args) != `{"city":"Paris"}` || p0.ThoughtSignature != sig {
		t.Errorf("first call part = %+v (args %s)", p0, p0.FunctionCall.Args)
	}
	if p1.FunctionCall == nil || p1.FunctionCall.Name != "get_time" || string(p1.FunctionCall.Args) != `{"tz":"Europe/Paris"}` || p1.ThoughtSignature != "" {
		t.Errorf("second call part = %+v", p1)
	}
	user := b2.Contents[2]
	if user.Role != "user" || len(user.Parts) != 2 {
		t.Fatalf("tool results turn = %+v", user)
	}
	r0, r1 := user.Parts[0].FunctionResponse, user.Parts[1].FunctionResponse
	if r0 == nil || r0.Name != "get_time" || string(r0.Response) != `{"output":"14:05"}` {
		t.Errorf("first response = %+v", r0)
	}
	if r1 == nil || r1.Name != "get_weather" || string(r1.Response) != `{"temp_c":18}` {
		t.Errorf("second response = %+v", r1)
	}
}

// A tool result answering an id that only a later assistant message made,
// or that the client altered, is refused rather than sent unpaired.
func TestToolResultPairingErrors(t *testing.T) {
	a := New(fixedNow)
	tg := testTarget("gemini-2.5-flash")
	for _, msgs := range []string{
		`[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_1","content":"r"},
		  {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}]`,
		`[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
		  {"role":"tool","tool_call_id":"call_2","content":"r"}]`,
	} {
		_, err := a.EncodeChat(nil, parseRequest(t, `{"model":"m","messages":`+msgs+`}`), &tg)
		if e := llmError(t, err); e.Kind != llm.KindInvalidRequest || !strings.HasSuffix(e.Param, ".tool_call_id") {
			t.Errorf("got %v, want KindInvalidRequest on tool_call_id", err)
		}
	}
	// An id reused by a later call pairs with the latest one.
	body, err := a.EncodeChat(nil, parseRequest(t, `{"model":"m","messages":[{"role":"user","content":"x"},
		{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"r"},
		{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"g","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"r"}]}`), &tg)
	if err != nil {
		t.Fatal(err)
	}
	var b geminiBody
	if err := json.Unmarshal(body.Body, &b); err != nil {
		t.Fatal(err)
	}
	if got := b.Contents[len(b.Contents)-1].Parts[0].FunctionResponse.Name; got != "g" {
		t.Errorf("reused id paired with %q, want g", got)
	}
}

func TestSplitToolCallID(t *testing.T) {
	for _, c := range []struct{ id, base, sig string }{
		{"call_abc", "call_abc", ""},
		{"call_abc__thought__QUJD+/==", "call_abc", "QUJD+/=="},
		{"call_abc__thought__skip_thought-sig", "call_abc", "skip_thought-sig"},
		{"call_abc__thought__", "call_abc__thought__", ""},
		{"tool__thought__not base64!", "tool__thought__not base64!", ""},
	} {
		base, sig := splitToolCallID(c.id)
		if base != c.base || sig != c.sig {
			t.Errorf("splitToolCallID(%q) = %q, %q; want %q, %q", c.id, base, sig, c.base, c.sig)
		}
	}
	id := toolCallID("r", 0, 0, "f", "{}", "QUJD")
	if base, sig := splitToolCallID(id); sig != "QUJD" || len(base) != len("call_")+24 {
		t.Errorf("toolCallID with signature = %q", id)
	}
	if toolCallID("r", 0, 0, "f", "{}", "") == toolCallID("r", 0, 1, "f", "{}", "") {
		t.Error("calls at different positions got the same id")
	}
}

func TestSignaturesRequired(t *testing.T) {
	for model, want := range map[string]bool{
		"gemini-3-pro-preview":      true,
		"models/gemini-3-flash":     true,
		"gemini-flash-latest":       true,
		"gemini-2.5-flash":          false,
		"models/gemini-2.0-flash":   false,
		"gemini-1.5-pro":            false,
		"gemini-pro":                false,
		"gemma-3-27b-it":            false,
		"learnlm-2.0-flash-experim": false,
	} {
		if got := signaturesRequired(model); got != want {
			t.Errorf("signaturesRequired(%q) = %v, want %v", model, got, want)
		}
	}
}

func replay(t testing.TB, d *StreamDecoder, body []byte) ([]llm.Delta, error) {
	t.Helper()
	sc := sse.NewScanner(bytes.NewReader(body), 1<<20)
	var all, buf []llm.Delta
	for sc.Next() {
		var err error
		buf, err = d.Decode(sc.Event(), buf[:0])
		all = append(all, buf...)
		if err != nil {
			return all, err
		}
	}
	return all, sc.Err()
}

// The same function calls get the same ids streamed or not, so a client may
// switch between the two.
func TestStreamIDsMatchNonStream(t *testing.T) {
	a := New(fixedNow)
	body, err := os.ReadFile("testdata/responses/function_calls.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.DecodeChat(body)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := os.ReadFile("testdata/streams/function_call.sse")
	if err != nil {
		t.Fatal(err)
	}
	deltas, err := replay(t, a.NewStreamDecoder(nil), stream)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range deltas {
		for _, tc := range d.ToolCalls {
			ids = append(ids, tc.ID)
		}
	}
	var want []string
	for _, tc := range resp.Choices[0].Message.ToolCalls {
		want = append(want, tc.ID)
	}
	if !reflect.DeepEqual(ids, want) || len(ids) != 2 {
		t.Errorf("stream ids %q, non-stream ids %q", ids, want)
	}
}

func TestStreamUsageDeltaOnce(t *testing.T) {
	d := New(fixedNow).NewStreamDecoder(nil)
	chunks := []string{
		`{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}`,
		`{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}`,
		`{"candidates":[{"content":{"parts":[{"text":"late"}]}}]}`,
	}
	var usageDeltas, content int
	for _, c := range chunks {
		out, err := d.Decode(&sse.Event{Data: []byte(c)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, dl := range out {
			if dl.Usage != nil {
				usageDeltas++
			}
			content += len(dl.Content)
		}
	}
	if usageDeltas != 1 {
		t.Errorf("%d usage deltas, want 1", usageDeltas)
	}
	if content != len("hi") {
		t.Error("text after the finish was passed on")
	}
	if u, ok := d.Usage(); !ok || u.CompletionTokens != 2 || u.TotalTokens != 5 {
		t.Errorf("Usage() = %+v, %v; want the latest snapshot", u, ok)
	}
	if !d.Done() {
		t.Error("not Done after a finishReason")
	}
}

func TestStreamDecoderRejects(t *testing.T) {
	for _, data := range []string{
		`{"candidates":[{"index":1000000,"content":{"parts":[{"text":"x"}]}}]}`,
		`{"candidates":[{"index":-1}]}`,
		`{"candidates":`,
		`"just a string"`,
	} {
		d := New(fixedNow).NewStreamDecoder(nil)
		_, err := d.Decode(&sse.Event{Data: []byte(data)}, nil)
		if e := llmError(t, err); e.Kind != llm.KindUpstream {
			t.Errorf("Decode(%s) = %v, want KindUpstream", data, err)
		}
		if len(d.cands) > maxCandidates {
			t.Errorf("decoder grew to %d candidates", len(d.cands))
		}
	}
	d := New(fixedNow).NewStreamDecoder(nil)
	for _, data := range []string{"", "  ", "[DONE]"} {
		if out, err := d.Decode(&sse.Event{Data: []byte(data)}, nil); err != nil || len(out) != 0 {
			t.Errorf("Decode(%q) = %v, %v; want nothing", data, out, err)
		}
	}
	if out, err := d.Decode(nil, nil); err != nil || out != nil {
		t.Error("Decode(nil) did something")
	}
}

func TestClassifyErrorHeaders(t *testing.T) {
	a := New(fixedNow)
	body := []byte(`{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`)
	if e := llmError(t, a.ClassifyError(429, nil, body)); e.Kind != llm.KindRateLimit || !e.Retryable || e.RetryAfter != 0 {
		t.Errorf("nil header: %+v", e)
	}
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	e := llmError(t, a.ClassifyError(429, func(k string) string {
		if k == "Retry-After" {
			return date
		}
		return ""
	}, body))
	if e.RetryAfter < 80*time.Second || e.RetryAfter > 91*time.Second {
		t.Errorf("RetryAfter from an HTTP date = %v, want about 90s", e.RetryAfter)
	}
	huge := []byte(`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"x","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"99999999s"}]}}`)
	if e := llmError(t, a.ClassifyError(429, nil, huge)); e.RetryAfter != maxRetryAfter {
		t.Errorf("huge retryDelay gave %v, want the cap", e.RetryAfter)
	}
	// The DebugInfo detail Google adds to key errors may quote the key; it
	// must not reach Msg or the cause.
	leak := []byte(`{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"},{"@type":"type.googleapis.com/google.rpc.DebugInfo","detail":"Invalid API key: ` + testKey + `"}]}}`)
	if err := a.ClassifyError(400, nil, leak); strings.Contains(err.Error(), testKey) || llmError(t, err).Kind != llm.KindAuth {
		t.Errorf("key error = %v", err)
	}
}

func TestDecodeChatErrorObject(t *testing.T) {
	_, err := New(fixedNow).DecodeChat([]byte(`{"error":{"code":500,"message":"boom","status":"INTERNAL"}}`))
	if e := llmError(t, err); e.Kind != llm.KindUpstream || !e.Retryable || e.Status != 500 || e.Msg != "boom" {
		t.Errorf("got %+v", e)
	}
}

func TestEncodeEmbeddingsURL(t *testing.T) {
	a := New(fixedNow)
	tg := testTarget("gemini-embedding-001")
	for input, want := range map[string]string{
		`"one"`:         "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:embedContent",
		`["one"]`:       "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents",
		`["one","two"]`: "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents",
	} {
		var req llm.EmbeddingRequest
		if err := req.UnmarshalJSON([]byte(`{"model":"e","input":` + input + `}`)); err != nil {
			t.Fatal(err)
		}
		out, err := a.EncodeEmbeddings(nil, &req, &tg)
		if err != nil {
			t.Fatal(err)
		}
		if out.URL != want || out.Method != "POST" || out.Stream {
			t.Errorf("input %s: %s %s", input, out.Method, out.URL)
		}
		if !reflect.DeepEqual(out.Header, headers(&tg)) {
			t.Errorf("headers %v", out.Header)
		}
	}
	for _, input := range []string{`[]`, `null`, `3`} {
		req := llm.EmbeddingRequest{Model: "e", Input: json.RawMessage(input)}
		if _, err := a.EncodeEmbeddings(nil, &req, &tg); llmError(t, err).Kind != llm.KindInvalidRequest {
			t.Errorf("input %s: %v", input, err)
		}
	}
}

// Every finish reason Google documents maps to one of OpenAI's.
func TestFinishReason(t *testing.T) {
	for r, want := range map[string]string{
		"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
		"BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
		"IMAGE_SAFETY": "content_filter", "IMAGE_PROHIBITED_CONTENT": "content_filter", "LANGUAGE": "stop",
		"OTHER": "stop", "MALFORMED_FUNCTION_CALL": "stop", "FINISH_REASON_UNSPECIFIED": "stop", "": "",
	} {
		if got := finishReason(r, false); got != want {
			t.Errorf("finishReason(%q) = %q, want %q", r, got, want)
		}
	}
	if finishReason("STOP", true) != "tool_calls" || finishReason("MAX_TOKENS", true) != "length" {
		t.Error("function calls do not turn STOP into tool_calls")
	}
}

// With n > 1, the stream is not Done (and the proxy keeps reading) until
// every requested candidate finished, even when one finishes before another
// starts; a blocked prompt ends it at once.
func TestStreamDoneWaitsForAllCandidates(t *testing.T) {
	a := New(fixedNow)
	d := a.NewStreamDecoder(parseRequest(t, `{"model":"m","n":2,"stream":true,"messages":[{"role":"user","content":"x"}]}`))
	steps := []struct {
		data string
		done bool
	}{
		{`{"candidates":[{"index":0,"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}]}`, false},
		{`{"candidates":[{"index":1,"content":{"parts":[{"text":"b"}]}}]}`, false},
		{`{"candidates":[{"index":1,"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":2}}`, true},
	}
	for i, s := range steps {
		if _, err := d.Decode(&sse.Event{Data: []byte(s.data)}, nil); err != nil {
			t.Fatal(err)
		}
		if d.Done() != s.done {
			t.Errorf("after chunk %d Done() = %v, want %v", i, d.Done(), s.done)
		}
	}
	d = a.NewStreamDecoder(parseRequest(t, `{"model":"m","n":3,"stream":true,"messages":[{"role":"user","content":"x"}]}`))
	if _, err := d.Decode(&sse.Event{Data: []byte(`{"promptFeedback":{"blockReason":"SAFETY"}}`)}, nil); err != nil || !d.Done() {
		t.Errorf("blocked prompt: err %v, Done %v", err, d.Done())
	}
}
