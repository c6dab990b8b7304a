package fakegemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aigw/aigw/providers/gemini"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/providertest"
	"github.com/aigw/aigw/providers/providertest/internal/scenario"
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

type result struct {
	status int
	header http.Header
	body   []byte
}

func post(t *testing.T, url, key, body string) result {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("x-goog-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, b}
}

// errorOf parses Google's error envelope.
func errorOf(t *testing.T, r result) (code int, status, msg string, details []map[string]any) {
	t.Helper()
	var e struct {
		Error struct {
			Code    int
			Message string
			Status  string
			Details []map[string]any
		}
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	return e.Error.Code, e.Error.Status, e.Error.Message, e.Error.Details
}

type answer struct {
	Candidates []struct {
		Content struct {
			Parts []struct {
				Text         string
				FunctionCall *struct {
					Name string
					Args json.RawMessage
				}
			}
			Role string
		}
		FinishReason string
	}
	UsageMetadata struct{ PromptTokenCount, CandidatesTokenCount, TotalTokenCount int }
	ModelVersion  string
	ResponseID    string
}

func TestGenerateContentAndRecording(t *testing.T) {
	s := New(t, WithReply("pong"), WithAPIKey("g-key"))
	r := post(t, s.URL()+"/v1beta/models/gemini-2.0-flash:generateContent", "g-key",
		`{"contents":[{"role":"user","parts":[{"text":"ping"}]}],"generationConfig":{"maxOutputTokens":5}}`)
	var a answer
	if r.status != 200 || json.Unmarshal(r.body, &a) != nil {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if len(a.Candidates) != 1 || a.Candidates[0].Content.Role != "model" || a.Candidates[0].Content.Parts[0].Text != "pong" ||
		a.Candidates[0].FinishReason != "STOP" || a.ModelVersion != "gemini-2.0-flash" || a.ResponseID == "" {
		t.Fatalf("answer %s", r.body)
	}
	u := a.UsageMetadata
	if u.PromptTokenCount == 0 || u.CandidatesTokenCount != scenario.Tokens("pong") || u.TotalTokenCount != u.PromptTokenCount+u.CandidatesTokenCount {
		t.Errorf("usage %+v", u)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1beta/models/gemini-2.0-flash:generateContent" || reqs[0].Header.Get("x-goog-api-key") != "g-key" {
		t.Fatalf("recorded %+v", reqs)
	}
	// The key may also come as a query parameter.
	if r := post(t, s.URL()+"/v1beta/models/gemini-2.0-flash:generateContent?key=g-key", "",
		`{"contents":[{"role":"user","parts":[{"text":"x"}]}]}`); r.status != 200 {
		t.Fatalf("key in query: %d %s", r.status, r.body)
	}
}

func TestStreamFraming(t *testing.T) {
	s := New(t, WithReply("abcdef"), WithChunks(3))
	body := `{"contents":[{"role":"user","parts":[{"text":"x"}]}]}`
	r := post(t, s.URL()+"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", "k", body)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %v", r.status, r.header)
	}
	frames := strings.Split(strings.TrimSuffix(string(r.body), "\r\n\r\n"), "\r\n\r\n")
	if len(frames) != 3 {
		t.Fatalf("%d frames: %q", len(frames), r.body)
	}
	var text strings.Builder
	for i, fr := range frames {
		var a answer
		if !strings.HasPrefix(fr, "data: ") || json.Unmarshal([]byte(fr[6:]), &a) != nil {
			t.Fatalf("frame %q", fr)
		}
		text.WriteString(a.Candidates[0].Content.Parts[0].Text)
		if last := i == len(frames)-1; (a.Candidates[0].FinishReason == "STOP") != last {
			t.Errorf("frame %d finishReason %q", i, a.Candidates[0].FinishReason)
		}
		if a.UsageMetadata.PromptTokenCount == 0 {
			t.Errorf("frame %d without usage", i)
		}
	}
	if text.String() != "abcdef" {
		t.Errorf("text %q", text.String())
	}

	// Without alt=sse Google answers one JSON array.
	r = post(t, s.URL()+"/v1beta/models/gemini-2.0-flash:streamGenerateContent", "k", body)
	var arr []answer
	if r.status != 200 || json.Unmarshal(r.body, &arr) != nil || len(arr) != 3 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("array stream: %d %s", r.status, r.body)
	}
}

var target = &llm.Target{ID: "g/gemini-2.0-flash", Provider: "g", Type: "gemini", Model: "gemini-2.0-flash", APIKey: "k"}

// send encodes in with the repo's gemini adapter, posts it to s and
// decodes the answer: the fake and the adapter must agree on the format.
func send(t *testing.T, s *Server, in *llm.Request) *llm.Response {
	t.Helper()
	a := gemini.New(nil)
	tg := *target
	tg.BaseURL = s.URL()
	out, err := a.EncodeChat(nil, in, &tg)
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(out.URL, s.URL())
	r := post(t, s.URL()+path, "k", string(out.Body))
	if r.status != 200 {
		t.Fatalf("%s: %d %s", path, r.status, r.body)
	}
	resp, err := a.DecodeChat(r.body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func request(t *testing.T, js string) *llm.Request {
	t.Helper()
	var in llm.Request
	if err := in.UnmarshalJSON([]byte(js)); err != nil {
		t.Fatal(err)
	}
	return &in
}

func TestToolRoundTripWithAdapter(t *testing.T) {
	s := New(t)
	tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}}]`
	resp := send(t, s, request(t, `{"model":"m","messages":[{"role":"user","content":"What's the weather in Paris?"}],`+tools+`}`))
	m := resp.Choices[0].Message
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "get_weather" || m.ToolCalls[0].ID == "" ||
		m.ToolCalls[0].Function.Arguments != scenario.WeatherArguments || m.Content != scenario.Preamble {
		t.Fatalf("message %+v", m)
	}
	call, _ := json.Marshal(m.ToolCalls)
	resp = send(t, s, request(t, `{"model":"m","messages":[{"role":"user","content":"What's the weather in Paris?"},`+
		`{"role":"assistant","content":null,"tool_calls":`+string(call)+`},`+
		`{"role":"tool","tool_call_id":"`+m.ToolCalls[0].ID+`","content":"21C and sunny"}],`+tools+`}`))
	if got := resp.Choices[0].Message.Content; got != scenario.ToolResultPrefix+"21C and sunny" {
		t.Fatalf("final %q", got)
	}
	// The fake saw the pairing: a functionResponse named like the call.
	reqs := s.Requests()
	if !bytes.Contains(reqs[1].Body, []byte(`"functionResponse":{"name":"get_weather","response":{"output":"21C and sunny"}}`)) {
		t.Errorf("second request %s", reqs[1].Body)
	}

	resp = send(t, s, request(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is it?"},`+
		`{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}`))
	if got := resp.Choices[0].Message.Content; got != "I see 1 image." {
		t.Fatalf("image answer %q", got)
	}
}

func TestValidation(t *testing.T) {
	s := New(t, WithAPIKey("good"))
	gen := s.URL() + "/v1beta/models/gemini-2.0-flash:generateContent"
	ok := `{"contents":[{"role":"user","parts":[{"text":"x"}]}]}`
	for _, c := range []struct {
		name, url, key, body string
		code                 int
		status               string
	}{
		{"no key", gen, "", ok, 403, "PERMISSION_DENIED"},
		{"bad key", gen, "bad", ok, 400, "INVALID_ARGUMENT"},
		{"unknown model", s.URL() + "/v1beta/models/gemini-9:generateContent", "good", ok, 404, "NOT_FOUND"},
		{"embedding model for chat", s.URL() + "/v1beta/models/gemini-embedding-001:generateContent", "good", ok, 404, "NOT_FOUND"},
		{"unknown field", gen, "good", `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"max_tokens":5}`, 400, "INVALID_ARGUMENT"},
		{"snake_case field", gen, "good", `{"contents":[{"role":"user","parts":[{"inline_data":{"mimeType":"image/png","data":"AA=="}}]}]}`, 400, "INVALID_ARGUMENT"},
		{"no contents", gen, "good", `{"contents":[]}`, 400, "INVALID_ARGUMENT"},
		{"bad role", gen, "good", `{"contents":[{"role":"assistant","parts":[{"text":"x"}]},{"role":"user","parts":[{"text":"y"}]}]}`, 400, "INVALID_ARGUMENT"},
		{"bad base64", gen, "good", `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"!!"}}]}]}`, 400, "INVALID_ARGUMENT"},
		{"response without call", gen, "good", `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, 400, "INVALID_ARGUMENT"},
		{"response name mismatch", gen, "good", `{"contents":[{"role":"user","parts":[{"text":"x"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},` +
			`{"role":"user","parts":[{"functionResponse":{"name":"g","response":{}}}]}]}`, 400, "INVALID_ARGUMENT"},
	} {
		r := post(t, c.url, c.key, c.body)
		code, status, msg, details := errorOf(t, r)
		if r.status != c.code || code != c.code || status != c.status || msg == "" {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
		if c.name == "bad key" && (len(details) != 1 || details[0]["reason"] != "API_KEY_INVALID") {
			t.Errorf("bad key details %v", details)
		}
	}
}

func TestEmbeddings(t *testing.T) {
	s := New(t, WithDimensions(8))
	base := s.URL() + "/v1beta/models/gemini-embedding-001:"
	r := post(t, base+"embedContent", "k", `{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}}`)
	var one struct{ Embedding struct{ Values []float64 } }
	if r.status != 200 || json.Unmarshal(r.body, &one) != nil || len(one.Embedding.Values) != 8 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = post(t, base+"batchEmbedContents", "k", `{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}},`+
		`{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]},"outputDimensionality":3}]}`)
	var batch struct{ Embeddings []struct{ Values []float64 } }
	if r.status != 200 || json.Unmarshal(r.body, &batch) != nil || len(batch.Embeddings) != 2 || len(batch.Embeddings[1].Values) != 3 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for i, v := range one.Embedding.Values {
		if batch.Embeddings[0].Values[i] != v {
			t.Fatal("the same text embeds differently")
		}
	}
	r = post(t, base+"batchEmbedContents", "k", `{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]}}]}`)
	if r.status != 400 {
		t.Errorf("model mismatch: %d %s", r.status, r.body)
	}
	r = post(t, s.URL()+"/v1beta/models/gemini-2.0-flash:embedContent", "k", `{"content":{"parts":[{"text":"a"}]}}`)
	if r.status != 404 {
		t.Errorf("chat model embedding: %d %s", r.status, r.body)
	}
}

func TestFaults(t *testing.T) {
	s := New(t)
	ok := `{"contents":[{"role":"user","parts":[{"text":"x"}]}]}`
	gen := s.URL() + "/v1beta/models/gemini-2.0-flash:generateContent"
	s.SetFault(Fault{Status: 429, Message: "Resource has been exhausted (e.g. check quota).", RetryDelay: "7s", RetryAfter: "9", Count: 1})
	r := post(t, gen, "k", ok)
	code, status, _, details := errorOf(t, r)
	if r.status != 429 || code != 429 || status != "RESOURCE_EXHAUSTED" || len(details) != 1 || details[0]["retryDelay"] != "7s" ||
		r.header.Get("Retry-After") != "9" {
		t.Fatalf("429: %d %v %s", r.status, r.header, r.body)
	}
	// The adapter reads it as a retryable rate limit of 7s.
	var e *llm.Error
	err := gemini.New(nil).ClassifyError(r.status, r.header.Get, r.body)
	if !errors.As(err, &e) || e.Kind != llm.KindRateLimit || e.RetryAfter != 7*time.Second {
		t.Fatalf("classified %+v", err)
	}
	if r := post(t, gen, "k", ok); r.status != 200 {
		t.Fatalf("count 1: %d", r.status)
	}

	// An error object after two chunks ends the stream; the adapter's
	// decoder reports it.
	s.SetFault(Fault{ErrorAfter: 2})
	r = post(t, s.URL()+"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", "k", ok)
	res := providertest.ReplayStream(gemini.New(nil).NewStreamDecoder(nil), bytes.NewReader(r.body), 1<<20)
	if r.status != 200 || res.Error == nil || res.Error.Kind != "overloaded" || res.Done {
		t.Fatalf("mid-stream error: %d %+v\n%s", r.status, res, r.body)
	}
	text := ""
	for _, d := range res.Deltas {
		text += d.Content
	}
	if want := strings.Join(scenario.Split(DefaultReply, 4)[:2], ""); text != want {
		t.Errorf("text before the error %q, want %q", text, want)
	}
}

func TestClientGoneCounted(t *testing.T) {
	s := New(t, WithChunks(50), WithChunkInterval(5*time.Millisecond), WithReply(strings.Repeat("word ", 40)))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
		strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"x"}]}]}`))
	req.Header.Set("x-goog-api-key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_, _ = resp.Body.Read(buf)
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Canceled() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("abandoned stream not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
