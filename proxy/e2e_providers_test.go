package proxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/aigw/aigw/providers/providertest/fakeanthropic"
	"github.com/aigw/aigw/providers/providertest/fakegemini"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
)

// These tests run the gateway on configs/examples/multi-provider.yaml
// itself, its three providers pointed at in-process fakes that speak
// OpenAI's, Anthropic's and Gemini's wire formats and check what those APIs
// check (credentials, required fields, tool call pairing, image encodings).
// The same client-side checks run for every chat model, through the
// official OpenAI Go SDK, so a model served by translation must look
// exactly like one served by OpenAI.

// Upstream credentials the example's ${..._API_KEY} resolve to.
const (
	openAIUpstreamKey    = "sk-openai-upstream"
	anthropicUpstreamKey = "sk-ant-upstream"
	geminiUpstreamKey    = "gemini-upstream-key"
)

// The answers the fakes give (see providertest/internal/scenario).
const (
	openAIReply      = "Hello from the fake OpenAI API."
	weatherQuestion  = "What's the weather in Paris?"
	weatherArguments = `{"location":"Paris","unit":"celsius"}`
	toolResult       = "21C and sunny"
	toolAnswer       = "The tool said: " + toolResult
	imageDataURL     = "data:image/png;base64,iVBORw0KGgo="
	imageAnswer      = "I see 1 image."
	embeddingDims    = 8
)

// providers is a gateway serving multi-provider.yaml with its fakes.
type providers struct {
	g  *gateway
	oa *fakeopenai.Server
	an *fakeanthropic.Server
	ge *fakegemini.Server
}

// multiProviderPolicy is configs/examples/multi-provider.yaml, plus a
// Gemini embedding model the example does not declare.
func multiProviderPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../configs/examples/multi-provider.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const extra = "  - id: gemini-embedding-001\n    type: embedding\n    targets: [{provider: gemini}]\n"
	policy := strings.Replace(string(b), "\norgs:", "\n"+extra+"\norgs:", 1)
	if policy == string(b) {
		t.Fatal("multi-provider.yaml has no orgs: section to add the embedding model before")
	}
	return policy
}

func startProviders(t *testing.T) *providers {
	t.Helper()
	p := &providers{
		oa: fakeopenai.New(t, fakeopenai.WithReply(openAIReply), fakeopenai.WithChunks(4), fakeopenai.WithAPIKey(openAIUpstreamKey)),
		an: fakeanthropic.New(t, fakeanthropic.WithAPIKey(anthropicUpstreamKey)),
		ge: fakegemini.New(t, fakegemini.WithAPIKey(geminiUpstreamKey), fakegemini.WithDimensions(embeddingDims)),
	}
	p.g = startGateway(t, multiProviderPolicy(t), map[string]string{
		"OPENAI_BASE_URL":    p.oa.URL(),
		"OPENAI_API_KEY":     openAIUpstreamKey,
		"ANTHROPIC_BASE_URL": p.an.URL(),
		"ANTHROPIC_API_KEY":  anthropicUpstreamKey,
		"GEMINI_BASE_URL":    p.ge.URL(),
		"GEMINI_API_KEY":     geminiUpstreamKey,
	})
	return p
}

// upstreamRequest is a request a fake received.
type upstreamRequest struct {
	Path, Query string
	Header      http.Header
	Body        []byte
}

// chatModel is one of the example's chat models and the fake behind it.
type chatModel struct {
	name  string
	reply string // the fake's answer to a plain question
	// requests returns what the fake received, in order.
	requests func() []upstreamRequest
	// credential is the header carrying the upstream key, and its value.
	credential, credentialValue string
}

func (p *providers) chatModels() []chatModel {
	return []chatModel{
		{name: "gpt-4o-mini", reply: openAIReply, credential: "Authorization", credentialValue: "Bearer " + openAIUpstreamKey,
			requests: func() []upstreamRequest {
				var out []upstreamRequest
				for _, r := range p.oa.Requests() {
					out = append(out, upstreamRequest{r.Path, r.Query, r.Header, r.Body})
				}
				return out
			}},
		{name: "claude-haiku-4-5", reply: fakeanthropic.DefaultReply, credential: "X-Api-Key", credentialValue: anthropicUpstreamKey,
			requests: func() []upstreamRequest {
				var out []upstreamRequest
				for _, r := range p.an.Requests() {
					out = append(out, upstreamRequest{r.Path, r.Query, r.Header, r.Body})
				}
				return out
			}},
		{name: "gemini-2.0-flash", reply: fakegemini.DefaultReply, credential: "X-Goog-Api-Key", credentialValue: geminiUpstreamKey,
			requests: func() []upstreamRequest {
				var out []upstreamRequest
				for _, r := range p.ge.Requests() {
					out = append(out, upstreamRequest{r.Path, r.Query, r.Header, r.Body})
				}
				return out
			}},
	}
}

func (m *chatModel) last(t *testing.T) upstreamRequest {
	t.Helper()
	reqs := m.requests()
	if len(reqs) == 0 {
		t.Fatalf("%s: the upstream received nothing", m.name)
	}
	return reqs[len(reqs)-1]
}

// checkUpstreamHeaders checks the upstream got its own credential and none
// of the client's.
func (m *chatModel) checkUpstreamHeaders(t *testing.T, r upstreamRequest) {
	t.Helper()
	if got := r.Header.Get(m.credential); got != m.credentialValue {
		t.Errorf("%s: upstream %s = %q, want the provider's key", m.name, m.credential, got)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, demoKey) {
				t.Errorf("%s: the client's gateway key leaked upstream in %s", m.name, k)
			}
		}
	}
	if m.credential != "Authorization" && r.Header.Get("Authorization") != "" {
		t.Errorf("%s: Authorization sent to a provider that authenticates with %s", m.name, m.credential)
	}
}

func chatParams(model string, msgs ...openai.ChatCompletionMessageParamUnion) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: model, Messages: msgs}
}

func TestProvidersChat(t *testing.T) {
	p := startProviders(t)
	c := sdk(p.g, demoKey)
	for _, m := range p.chatModels() {
		t.Run(m.name, func(t *testing.T) {
			res, err := c.Chat.Completions.New(context.Background(), chatParams(m.name, openai.UserMessage("Say hello")),
				option.WithHeader("X-Client-Secret", "must-not-leak"))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Choices) != 1 || res.Choices[0].Message.Content != m.reply || res.Choices[0].FinishReason != "stop" ||
				res.Choices[0].Message.Role != "assistant" || res.Object != "chat.completion" || res.ID == "" {
				t.Fatalf("answer %s", res.RawJSON())
			}
			if u := res.Usage; u.PromptTokens == 0 || u.CompletionTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage %+v", u)
			}
			up := m.last(t)
			m.checkUpstreamHeaders(t, up)
			if up.Header.Get("X-Client-Secret") != "" {
				t.Error("client header leaked upstream")
			}
			if got := p.g.counter(t, "aigw_tokens_total", map[string]string{"model": m.name, "type": "completion"}); got != float64(res.Usage.CompletionTokens) {
				t.Errorf("aigw_tokens_total completion = %v, want %d", got, res.Usage.CompletionTokens)
			}
		})
	}
	// Each provider was addressed in its own format.
	paths := map[string]string{
		"gpt-4o-mini":      "/v1/chat/completions",
		"claude-haiku-4-5": "/v1/messages",
		"gemini-2.0-flash": "/v1beta/models/gemini-2.0-flash:generateContent",
	}
	for _, m := range p.chatModels() {
		if got := m.last(t).Path; got != paths[m.name] {
			t.Errorf("%s: upstream path %s, want %s", m.name, got, paths[m.name])
		}
	}
}

func TestProvidersStream(t *testing.T) {
	p := startProviders(t)
	c := sdk(p.g, demoKey)
	for _, m := range p.chatModels() {
		t.Run(m.name, func(t *testing.T) {
			// Without include_usage: no usage anywhere, one finish.
			chunks, text := streamChunks(t, c, chatParams(m.name, openai.UserMessage("Say hello")))
			checkStreamShape(t, chunks)
			if text != m.reply {
				t.Errorf("streamed text %q, want %q", text, m.reply)
			}
			for i, ch := range chunks {
				if strings.Contains(ch.RawJSON(), `"usage"`) || len(ch.Choices) == 0 {
					t.Errorf("chunk %d: usage or no choice although the client did not ask: %s", i, ch.RawJSON())
				}
			}
			if m.name == "gemini-2.0-flash" {
				if up := m.last(t); up.Path != "/v1beta/models/gemini-2.0-flash:streamGenerateContent" || up.Query != "alt=sse" {
					t.Errorf("gemini stream sent to %s?%s", up.Path, up.Query)
				}
			}
			waitFor(t, func() bool {
				return p.g.counter(t, "aigw_tokens_total", map[string]string{"model": m.name, "type": "completion"}) > 0
			})

			// With include_usage: the usage chunk, last and only there.
			params := chatParams(m.name, openai.UserMessage("Say hello"))
			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			chunks, text = streamChunks(t, c, params)
			checkStreamShape(t, chunks)
			if text != m.reply {
				t.Errorf("streamed text %q, want %q", text, m.reply)
			}
			last := chunks[len(chunks)-1]
			if len(last.Choices) != 0 || last.Usage.TotalTokens == 0 || last.Usage.TotalTokens != last.Usage.PromptTokens+last.Usage.CompletionTokens {
				t.Fatalf("last chunk is not the usage chunk: %s", last.RawJSON())
			}
			for i, ch := range chunks[:len(chunks)-1] {
				if ch.Usage.TotalTokens != 0 || len(ch.Choices) == 0 {
					t.Errorf("chunk %d carries usage before the end: %s", i, ch.RawJSON())
				}
			}
			waitFor(t, func() bool { return p.g.counter(t, "aigw_active_streams", nil) == 0 })
		})
	}
}

var weatherTool = openai.ChatCompletionToolParam{Function: openai.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Current weather in a city"),
	Parameters: openai.FunctionParameters{"type": "object",
		"properties": map[string]any{"location": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string"}},
		"required":   []string{"location"}},
}}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// checkToolCall checks an answer that calls get_weather and returns the
// call's id.
func checkToolCall(t *testing.T, msg openai.ChatCompletionMessage, finish string) string {
	t.Helper()
	if finish != "tool_calls" || len(msg.ToolCalls) != 1 {
		t.Fatalf("want one tool call, got finish %q and %+v", finish, msg.ToolCalls)
	}
	tc := msg.ToolCalls[0]
	if tc.ID == "" || tc.Function.Name != "get_weather" || !sameJSON(tc.Function.Arguments, weatherArguments) {
		t.Fatalf("tool call %+v", tc)
	}
	return tc.ID
}

// checkToolPairing checks, in the upstream's own format, that the last
// request sent the assistant's call and the tool's result paired as the
// provider pairs them.
func checkToolPairing(t *testing.T, m *chatModel, id string) {
	t.Helper()
	up := m.last(t)
	switch m.name {
	case "gpt-4o-mini":
		var body struct {
			Messages []struct {
				Role       string
				ToolCallID string `json:"tool_call_id"`
				Content    json.RawMessage
				ToolCalls  []struct{ ID string } `json:"tool_calls"`
			}
		}
		if err := json.Unmarshal(up.Body, &body); err != nil || len(body.Messages) != 3 {
			t.Fatalf("upstream body %s", up.Body)
		}
		a, r := body.Messages[1], body.Messages[2]
		if a.Role != "assistant" || len(a.ToolCalls) != 1 || a.ToolCalls[0].ID != id || r.Role != "tool" || r.ToolCallID != id ||
			!(string(r.Content) == `"`+toolResult+`"` || sameJSON(string(r.Content), `[{"type":"text","text":"`+toolResult+`"}]`)) {
			t.Errorf("openai pairing wrong: %s", up.Body)
		}
	case "claude-haiku-4-5":
		type block struct {
			Type, ID, Name string
			ToolUseID      string `json:"tool_use_id"`
			Input          json.RawMessage
			Content        json.RawMessage
		}
		var body struct {
			Messages []struct {
				Role    string
				Content json.RawMessage // a string or blocks
			}
		}
		if err := json.Unmarshal(up.Body, &body); err != nil || len(body.Messages) != 3 {
			t.Fatalf("upstream body %s (%v)", up.Body, err)
		}
		var asked, answered []block
		if json.Unmarshal(body.Messages[1].Content, &asked) != nil || json.Unmarshal(body.Messages[2].Content, &answered) != nil {
			t.Fatalf("upstream turns are not block lists: %s", up.Body)
		}
		var use, result bool
		for _, b := range asked {
			use = use || b.Type == "tool_use" && b.ID == id && b.Name == "get_weather" && sameJSON(string(b.Input), weatherArguments)
		}
		for _, b := range answered {
			result = result || b.Type == "tool_result" && b.ToolUseID == id &&
				(string(b.Content) == `"`+toolResult+`"` || sameJSON(string(b.Content), `[{"type":"text","text":"`+toolResult+`"}]`))
		}
		if body.Messages[1].Role != "assistant" || body.Messages[2].Role != "user" || !use || !result {
			t.Errorf("anthropic pairing wrong (tool_result.tool_use_id must be %s): %s", id, up.Body)
		}
	case "gemini-2.0-flash":
		var body struct {
			Contents []struct {
				Role  string
				Parts []struct {
					FunctionCall *struct {
						Name string
						Args json.RawMessage
					}
					FunctionResponse *struct {
						Name     string
						Response json.RawMessage
					}
				}
			}
		}
		if err := json.Unmarshal(up.Body, &body); err != nil || len(body.Contents) != 3 {
			t.Fatalf("upstream body %s (%v)", up.Body, err)
		}
		var call, resp bool
		for _, pt := range body.Contents[1].Parts {
			call = call || pt.FunctionCall != nil && pt.FunctionCall.Name == "get_weather" && sameJSON(string(pt.FunctionCall.Args), weatherArguments)
		}
		for _, pt := range body.Contents[2].Parts {
			resp = resp || pt.FunctionResponse != nil && pt.FunctionResponse.Name == "get_weather" &&
				sameJSON(string(pt.FunctionResponse.Response), `{"output":"`+toolResult+`"}`)
		}
		if body.Contents[1].Role != "model" || body.Contents[2].Role != "user" || !call || !resp {
			t.Errorf("gemini pairing wrong: %s", up.Body)
		}
	}
}

func TestProvidersToolRoundTrip(t *testing.T) {
	p := startProviders(t)
	c := sdk(p.g, demoKey)
	ctx := context.Background()
	for _, m := range p.chatModels() {
		t.Run(m.name, func(t *testing.T) {
			params := chatParams(m.name, openai.UserMessage(weatherQuestion))
			params.Tools = []openai.ChatCompletionToolParam{weatherTool}
			res, err := c.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			id := checkToolCall(t, res.Choices[0].Message, res.Choices[0].FinishReason)

			params.Messages = append(params.Messages, res.Choices[0].Message.ToParam(), openai.ToolMessage(toolResult, id))
			res, err = c.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Choices[0].Message.Content; got != toolAnswer || res.Choices[0].FinishReason != "stop" {
				t.Fatalf("final answer %q (%s)", got, res.Choices[0].FinishReason)
			}
			checkToolPairing(t, &m, id)
		})
		t.Run(m.name+"/stream", func(t *testing.T) {
			params := chatParams(m.name, openai.UserMessage(weatherQuestion))
			params.Tools = []openai.ChatCompletionToolParam{weatherTool}
			st := c.Chat.Completions.NewStreaming(ctx, params)
			var acc openai.ChatCompletionAccumulator
			var chunks []openai.ChatCompletionChunk
			for st.Next() {
				chunks = append(chunks, st.Current())
				acc.AddChunk(st.Current())
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			checkStreamShape(t, chunks)
			id := checkToolCall(t, acc.Choices[0].Message, acc.Choices[0].FinishReason)

			params.Messages = append(params.Messages, acc.Choices[0].Message.ToParam(), openai.ToolMessage(toolResult, id))
			_, text := streamChunks(t, c, params)
			if text != toolAnswer {
				t.Fatalf("final streamed answer %q", text)
			}
			checkToolPairing(t, &m, id)
		})
	}
}

func TestProvidersImage(t *testing.T) {
	p := startProviders(t)
	c := sdk(p.g, demoKey)
	for _, m := range p.chatModels() {
		t.Run(m.name, func(t *testing.T) {
			res, err := c.Chat.Completions.New(context.Background(), chatParams(m.name,
				openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
					openai.TextContentPart("What is in this picture?"),
					openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: imageDataURL}),
				})))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Choices[0].Message.Content; got != imageAnswer {
				t.Errorf("answer %q, want %q (the upstream did not see the image)", got, imageAnswer)
			}
			// The image reached the upstream in its native form.
			up := m.last(t)
			var native string
			switch m.name {
			case "gpt-4o-mini":
				native = `{"type":"image_url","image_url":{"url":"` + imageDataURL + `"}}`
			case "claude-haiku-4-5":
				native = `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}`
			case "gemini-2.0-flash":
				native = `{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}`
			}
			if !bytes.Contains(up.Body, []byte(native)) {
				t.Errorf("upstream body lacks %s:\n%s", native, up.Body)
			}
		})
	}
}

// upstreamFault is one injected upstream failure and what the client must
// get.
type upstreamFault struct {
	name       string
	set        func()
	status     int
	retryAfter string // the client's Retry-After; "" means none
}

func TestProvidersUpstreamErrors(t *testing.T) {
	p := startProviders(t)
	c := sdk(p.g, demoKey)
	faults := map[string][]upstreamFault{
		"gpt-4o-mini": {
			{"400", func() {
				p.oa.SetFault(fakeopenai.Fault{Status: 400, Message: "Invalid value: 'robot'.", Code: "invalid_value", Count: 1})
			}, 400, ""},
			{"429", func() { p.oa.SetFault(fakeopenai.Fault{Status: 429, RetryAfter: "3", Count: 1}) }, 429, "3"},
			{"503", func() { p.oa.SetFault(fakeopenai.Fault{Status: 503, Count: 1}) }, 503, ""},
			{"401 is the gateway's problem", func() { p.oa.SetFault(fakeopenai.Fault{Status: 401, Count: 1}) }, 502, ""},
		},
		"claude-haiku-4-5": {
			{"400", func() { p.an.SetFault(fakeanthropic.Fault{Status: 400, Count: 1}) }, 400, ""},
			{"429", func() { p.an.SetFault(fakeanthropic.Fault{Status: 429, RetryAfter: "4", Count: 1}) }, 429, "4"},
			{"529 overloaded", func() { p.an.SetFault(fakeanthropic.Fault{Status: 529, Count: 1}) }, 503, ""},
			{"401 is the gateway's problem", func() { p.an.SetFault(fakeanthropic.Fault{Status: 401, Count: 1}) }, 502, ""},
		},
		"gemini-2.0-flash": {
			{"400 INVALID_ARGUMENT", func() { p.ge.SetFault(fakegemini.Fault{Status: 400, Count: 1}) }, 400, ""},
			{"429 RESOURCE_EXHAUSTED with RetryInfo", func() {
				p.ge.SetFault(fakegemini.Fault{Status: 429, Message: "Resource has been exhausted (e.g. check quota).", RetryDelay: "7s", Count: 1})
			}, 429, "7"},
			{"429 RESOURCE_EXHAUSTED with Retry-After", func() { p.ge.SetFault(fakegemini.Fault{Status: 429, RetryAfter: "9", Count: 1}) }, 429, "9"},
			{"429 without a hint", func() { p.ge.SetFault(fakegemini.Fault{Status: 429, Count: 1}) }, 429, ""},
			{"503 UNAVAILABLE", func() { p.ge.SetFault(fakegemini.Fault{Status: 503, Count: 1}) }, 503, ""},
		},
	}
	for _, m := range p.chatModels() {
		for _, f := range faults[m.name] {
			t.Run(m.name+"/"+f.name, func(t *testing.T) {
				f.set()
				_, err := c.Chat.Completions.New(context.Background(), chatParams(m.name, openai.UserMessage("x")))
				var e *openai.Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v is not an API error", err)
				}
				if e.StatusCode != f.status || e.Message == "" || e.Type == "" {
					t.Errorf("got %d type=%q msg=%q, want %d", e.StatusCode, e.Type, e.Message, f.status)
				}
				if got := e.Response.Header.Get("Retry-After"); got != f.retryAfter {
					t.Errorf("Retry-After %q, want %q", got, f.retryAfter)
				}
				if e.Response.Header.Get("x-request-id") == "" {
					t.Error("no x-request-id")
				}
				// The fault was used up: the next request succeeds.
				if _, err := c.Chat.Completions.New(context.Background(), chatParams(m.name, openai.UserMessage("x"))); err != nil {
					t.Fatalf("after the fault: %v", err)
				}
			})
		}
	}
}

func TestProvidersMidStreamError(t *testing.T) {
	p := startProviders(t)
	c := sdk(p.g, demoKey)
	set := map[string]func(){
		"gpt-4o-mini":      func() { p.oa.SetFault(fakeopenai.Fault{ErrorAfter: 2, Message: "The server had an error.", Count: 1}) },
		"claude-haiku-4-5": func() { p.an.SetFault(fakeanthropic.Fault{ErrorAfter: 2, Count: 1}) },
		"gemini-2.0-flash": func() { p.ge.SetFault(fakegemini.Fault{ErrorAfter: 2, Count: 1}) },
	}
	wantMsg := map[string]string{
		"gpt-4o-mini":      "The server had an error.",
		"claude-haiku-4-5": "Overloaded",
		"gemini-2.0-flash": "The model is overloaded.",
	}
	for _, m := range p.chatModels() {
		t.Run(m.name, func(t *testing.T) {
			set[m.name]()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st := c.Chat.Completions.NewStreaming(ctx, chatParams(m.name, openai.UserMessage("Say hello")))
			var text strings.Builder
			for st.Next() {
				for _, ch := range st.Current().Choices {
					text.WriteString(ch.Delta.Content)
				}
			}
			err := st.Err()
			st.Close()
			if err == nil {
				t.Fatal("the stream ended without an error")
			}
			// The SDK surfaces the gateway's in-stream error object, which
			// carries the upstream's message.
			if want := wantMsg[m.name]; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"type":"server_error"`) {
				t.Errorf("stream error %v, want it to carry %q", err, want)
			}
			if ctx.Err() != nil {
				t.Fatalf("the stream hung until the deadline: %v", err)
			}
			if text.Len() == 0 || !strings.HasPrefix(m.reply, text.String()) || text.String() == m.reply {
				t.Errorf("content before the error %q; want a strict prefix of %q", text.String(), m.reply)
			}
			waitFor(t, func() bool { return p.g.counter(t, "aigw_active_streams", nil) == 0 })
		})
	}
	if got := p.g.counter(t, "aigw_requests_total", map[string]string{"route": "chat_completions", "code": "200"}); got != 0 {
		t.Errorf("%v failed streams recorded as 200", got)
	}
}

func TestProvidersEmbeddings(t *testing.T) {
	p := startProviders(t)
	c := sdk(p.g, demoKey)
	ctx := context.Background()
	for _, model := range []string{"text-embedding-3-small", "gemini-embedding-001"} {
		t.Run(model, func(t *testing.T) {
			res, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
				Model: openai.EmbeddingModel(model),
				Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Object != "list" || len(res.Data) != 2 || res.Data[0].Index != 0 || res.Data[1].Index != 1 || len(res.Data[0].Embedding) == 0 {
				t.Fatalf("answer %s", res.RawJSON())
			}
			one, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
				Model: openai.EmbeddingModel(model), Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")},
			})
			if err != nil || len(one.Data) != 1 || !reflect.DeepEqual(one.Data[0].Embedding, res.Data[0].Embedding) {
				t.Fatalf("single input: %v %s", err, one.RawJSON())
			}
			// base64, as the Node SDK asks by default.
			r := postJSON(t, p.g.URL+"/embeddings", demoKey, `{"model":"`+model+`","input":"a","encoding_format":"base64"}`)
			var b64 struct{ Data []struct{ Embedding string } }
			if r.status != 200 || json.Unmarshal(r.body, &b64) != nil || len(b64.Data) != 1 {
				t.Fatalf("base64: %d %s", r.status, r.body)
			}
			raw, err := base64.StdEncoding.DecodeString(b64.Data[0].Embedding)
			if err != nil || len(raw) != 4*len(one.Data[0].Embedding) {
				t.Fatalf("base64 embedding: %v, %d bytes for %d dims", err, len(raw), len(one.Data[0].Embedding))
			}
		})
	}
	// Gemini: one input goes to embedContent, several to
	// batchEmbedContents; dimensions become outputDimensionality.
	var paths []string
	for _, r := range p.ge.Requests() {
		paths = append(paths, r.Path)
		if r.Header.Get("X-Goog-Api-Key") != geminiUpstreamKey {
			t.Errorf("gemini embedding without the key: %v", r.Header)
		}
	}
	want := []string{"/v1beta/models/gemini-embedding-001:batchEmbedContents", "/v1beta/models/gemini-embedding-001:embedContent",
		"/v1beta/models/gemini-embedding-001:embedContent"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("gemini paths %v, want %v", paths, want)
	}
	res, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "gemini-embedding-001", Dimensions: openai.Int(3),
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}})
	if err != nil || len(res.Data) != 1 || len(res.Data[0].Embedding) != 3 {
		t.Fatalf("dimensions 3: %v %s", err, res.RawJSON())
	}
	// Anthropic has no embeddings: the chat model is not an embedding model.
	_, err = c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "claude-haiku-4-5",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}})
	if apiStatus(err) != 404 {
		t.Errorf("embeddings on a chat model: %v", err)
	}
}

// ---- Anthropic-native clients: POST /v1/messages ----

// sent records what the Anthropic SDK put on the wire.
type sent struct {
	header http.Header
	body   []byte
}

// anthropicSDK is the official Anthropic Go SDK pointed at the gateway,
// with the gateway key as x-api-key (bearer false) or as Authorization:
// Bearer (bearer true, as current SDKs send OAuth tokens). Only that one
// credential header goes out, whatever the environment holds; every
// request sent is recorded in *got.
func anthropicSDK(g *gateway, key string, bearer bool, got *[]sent) anthropic.Client {
	cred := aoption.WithAPIKey(key)
	if bearer {
		cred = aoption.WithAuthToken(key)
	}
	return anthropic.NewClient(aoption.WithBaseURL(strings.TrimSuffix(g.URL, "/v1")), cred, aoption.WithMaxRetries(0),
		aoption.WithRequestTimeout(20*time.Second),
		aoption.WithMiddleware(func(r *http.Request, next aoption.MiddlewareNext) (*http.Response, error) {
			if bearer {
				r.Header.Del("X-Api-Key")
			} else {
				r.Header.Del("Authorization")
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			*got = append(*got, sent{r.Header.Clone(), b})
			return next(r)
		}))
}

func messageParams(model, text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}}
}

// accumulate reads an Anthropic SDK stream into one message.
func accumulate(t *testing.T, c anthropic.Client, params anthropic.MessageNewParams) anthropic.Message {
	t.Helper()
	st := c.Messages.NewStreaming(context.Background(), params)
	var msg anthropic.Message
	for st.Next() {
		if err := msg.Accumulate(st.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	return msg
}

func TestMessagesPassThroughToAnthropic(t *testing.T) {
	p := startProviders(t)
	var got []sent
	c := anthropicSDK(p.g, demoKey, false, &got)
	m := p.chatModels()[1]
	check := func(t *testing.T, msg anthropic.Message) {
		t.Helper()
		if len(msg.Content) != 1 || msg.Content[0].Text != fakeanthropic.DefaultReply || msg.StopReason != anthropic.StopReasonEndTurn ||
			!strings.HasPrefix(msg.ID, "msg_fake_") || msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens == 0 {
			t.Fatalf("message %+v", msg)
		}
		// Pass-through: the upstream got the client's body byte for byte,
		// with the gateway's credential and anthropic-version.
		up := m.last(t)
		if !bytes.Equal(up.Body, got[len(got)-1].body) {
			t.Errorf("body changed on the way:\nclient   %s\nupstream %s", got[len(got)-1].body, up.Body)
		}
		m.checkUpstreamHeaders(t, up)
		if up.Header.Get("Anthropic-Version") == "" {
			t.Error("no anthropic-version upstream")
		}
	}
	t.Run("non-stream", func(t *testing.T) {
		msg, err := c.Messages.New(context.Background(), messageParams("claude-haiku-4-5", "Say hello"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, *msg)
	})
	t.Run("stream", func(t *testing.T) {
		check(t, accumulate(t, c, messageParams("claude-haiku-4-5", "Say hello")))
		waitFor(t, func() bool {
			return p.g.counter(t, "aigw_requests_total", map[string]string{"route": "messages", "model": "claude-haiku-4-5", "code": "200"}) == 2
		})
	})
	if got := p.g.counter(t, "aigw_tokens_total", map[string]string{"model": "claude-haiku-4-5", "type": "completion"}); got == 0 {
		t.Error("pass-through usage not accounted")
	}
}

func TestMessagesTranslated(t *testing.T) {
	p := startProviders(t)
	var got []sent
	// The key as Authorization: Bearer this time.
	c := anthropicSDK(p.g, demoKey, true, &got)
	for _, m := range []chatModel{p.chatModels()[0], p.chatModels()[2]} {
		check := func(t *testing.T, msg anthropic.Message) {
			t.Helper()
			if len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text != m.reply ||
				msg.StopReason != anthropic.StopReasonEndTurn || msg.Role != "assistant" || msg.Usage.OutputTokens == 0 {
				t.Fatalf("message %+v", msg)
			}
			up := m.last(t)
			m.checkUpstreamHeaders(t, up)
			if !bytes.Contains(up.Body, []byte("Say hello")) || bytes.Equal(up.Body, got[len(got)-1].body) {
				t.Errorf("upstream body not translated: %s", up.Body)
			}
		}
		t.Run(m.name, func(t *testing.T) {
			msg, err := c.Messages.New(context.Background(), messageParams(m.name, "Say hello"))
			if err != nil {
				t.Fatal(err)
			}
			check(t, *msg)
			if h := got[len(got)-1].header; h.Get("Authorization") != "Bearer "+demoKey || h.Get("X-Api-Key") != "" {
				t.Errorf("client credential headers %v", h)
			}
		})
		t.Run(m.name+"/stream", func(t *testing.T) {
			check(t, accumulate(t, c, messageParams(m.name, "Say hello")))
		})
	}

	// A tool round trip, Anthropic-native on the client side, OpenAI's
	// tool_calls / tool messages upstream.
	t.Run("gpt-4o-mini/tools", func(t *testing.T) {
		params := messageParams("gpt-4o-mini", weatherQuestion)
		params.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"location": map[string]any{"type": "string"}}}}}}
		msg, err := c.Messages.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		var use *anthropic.ContentBlockUnion
		for i := range msg.Content {
			if msg.Content[i].Type == "tool_use" {
				use = &msg.Content[i]
			}
		}
		if use == nil || use.ID == "" || use.Name != "get_weather" || !sameJSON(string(use.Input), weatherArguments) ||
			msg.StopReason != anthropic.StopReasonToolUse {
			t.Fatalf("message %+v", msg)
		}
		params.Messages = append(params.Messages, msg.ToParam(),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, toolResult, false)))
		final, err := c.Messages.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		if len(final.Content) != 1 || final.Content[0].Text != toolAnswer {
			t.Fatalf("final %+v", final.Content)
		}
		m := p.chatModels()[0]
		checkToolPairing(t, &m, use.ID)
	})
}

func TestMessagesErrorsInAnthropicShape(t *testing.T) {
	p := startProviders(t)
	var got []sent
	c := anthropicSDK(p.g, demoKey, false, &got)
	checkErr := func(t *testing.T, err error, status int, typ string) {
		t.Helper()
		var e *anthropic.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is not an API error", err)
		}
		var body struct {
			Type  string
			Error struct{ Type, Message string }
		}
		if e.StatusCode != status || json.Unmarshal([]byte(e.RawJSON()), &body) != nil || body.Type != "error" ||
			body.Error.Type != typ || body.Error.Message == "" {
			t.Errorf("got %d %s, want %d with error.type %s", e.StatusCode, e.RawJSON(), status, typ)
		}
	}
	t.Run("unknown model", func(t *testing.T) {
		_, err := c.Messages.New(context.Background(), messageParams("claude-imaginary-9", "x"))
		checkErr(t, err, 404, "not_found_error")
	})
	t.Run("bad key", func(t *testing.T) {
		bad := anthropicSDK(p.g, "sk-nope", false, &got)
		_, err := bad.Messages.New(context.Background(), messageParams("claude-haiku-4-5", "x"))
		checkErr(t, err, 401, "authentication_error")
	})
	t.Run("upstream overloaded", func(t *testing.T) {
		p.an.SetFault(fakeanthropic.Fault{Status: 529, Count: 1})
		_, err := c.Messages.New(context.Background(), messageParams("claude-haiku-4-5", "x"))
		checkErr(t, err, 529, "overloaded_error")
	})
	t.Run("translated upstream rate limit", func(t *testing.T) {
		p.ge.SetFault(fakegemini.Fault{Status: 429, RetryDelay: "7s", Count: 1})
		_, err := c.Messages.New(context.Background(), messageParams("gemini-2.0-flash", "x"))
		checkErr(t, err, 429, "rate_limit_error")
		var e *anthropic.Error
		if errors.As(err, &e) && e.Response.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After %q", e.Response.Header.Get("Retry-After"))
		}
	})
	// A stream failing after it started ends with Anthropic's error event,
	// passed through or translated, and the SDK reports it.
	for _, tc := range []struct {
		model, want string
		set         func()
	}{
		{"claude-haiku-4-5", "Overloaded", func() { p.an.SetFault(fakeanthropic.Fault{ErrorAfter: 2, Count: 1}) }},
		{"gpt-4o-mini", "The server had an error.", func() { p.oa.SetFault(fakeopenai.Fault{ErrorAfter: 2, Message: "The server had an error.", Count: 1}) }},
		{"gemini-2.0-flash", "The model is overloaded.", func() { p.ge.SetFault(fakegemini.Fault{ErrorAfter: 2, Count: 1}) }},
	} {
		t.Run("mid-stream/"+tc.model, func(t *testing.T) {
			tc.set()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st := c.Messages.NewStreaming(ctx, messageParams(tc.model, "Say hello"))
			var text strings.Builder
			for st.Next() {
				if ev := st.Current(); ev.Type == "content_block_delta" {
					text.WriteString(ev.Delta.Text)
				}
			}
			err := st.Err()
			st.Close()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("stream error %v (deadline: %v)", err, ctx.Err())
			}
			if !strings.Contains(err.Error(), tc.want) || text.Len() == 0 {
				t.Errorf("error %v after %q; want %q after some text", err, text.String(), tc.want)
			}
			waitFor(t, func() bool { return p.g.counter(t, "aigw_active_streams", nil) == 0 })
		})
	}

	// The raw body, as a client without the SDK sees it.
	req, _ := http.NewRequest("POST", p.g.URL+"/messages", strings.NewReader(`{"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("x-api-key", demoKey)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var raw map[string]json.RawMessage
	if resp.StatusCode != 404 || json.Unmarshal(b, &raw) != nil || string(raw["type"]) != `"error"` || len(raw["error"]) == 0 ||
		resp.Header.Get("x-request-id") == "" {
		t.Errorf("raw error %d %s", resp.StatusCode, b)
	}
}

// ---- Azure OpenAI ----

// TestAzureProvider serves a model from an Azure OpenAI deployment (the
// fake OpenAI server stands in for the resource: Azure answers in OpenAI's
// format) and checks the request line and credential Azure expects, with
// the api-version given and defaulted.
func TestAzureProvider(t *testing.T) {
	fake := fakeopenai.New(t, fakeopenai.WithReply(openAIReply), fakeopenai.WithDimensions(embeddingDims))
	endpoint := strings.TrimSuffix(fake.URL(), "/v1") // the resource endpoint, https://{resource}.openai.azure.com
	g := startGateway(t, `
providers:
  - id: azure
    type: azure
    base_url: ${AZURE_OPENAI_ENDPOINT}
    api_key: ${AZURE_OPENAI_API_KEY}
    api_version: 2025-04-01-preview
  - id: azure-default-version
    type: azure
    base_url: ${AZURE_OPENAI_ENDPOINT}/openai
    api_key: ${AZURE_OPENAI_API_KEY}
models:
  - id: gpt-4o
    targets: [{provider: azure, model: gpt-4o-prod}]
  - id: gpt-4o-mini
    targets: [{provider: azure-default-version, model: mini/eu}]
  - id: text-embedding-3-small
    type: embedding
    targets: [{provider: azure, model: embed-prod}]
orgs:
  - id: demo
    models: ["*"]
keys:
  - id: demo
    org: demo
    sha256: c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82
`, map[string]string{"AZURE_OPENAI_ENDPOINT": endpoint, "AZURE_OPENAI_API_KEY": "azure-upstream-key"})
	c := sdk(g, demoKey)
	ctx := context.Background()

	res, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o", openai.UserMessage("Say hello")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Message.Content != openAIReply {
		t.Fatalf("answer %s", res.RawJSON())
	}
	params := chatParams("gpt-4o-mini", openai.UserMessage("Say hello"))
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	chunks, text := streamChunks(t, c, params)
	checkStreamShape(t, chunks)
	if text != openAIReply || chunks[len(chunks)-1].Usage.TotalTokens == 0 {
		t.Fatalf("stream %q, last chunk %s", text, chunks[len(chunks)-1].RawJSON())
	}
	emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}})
	if err != nil || len(emb.Data) != 1 || len(emb.Data[0].Embedding) != embeddingDims {
		t.Fatalf("embeddings: %v", err)
	}

	want := []struct{ path, query, model string }{
		{"/openai/deployments/gpt-4o-prod/chat/completions", "api-version=2025-04-01-preview", "gpt-4o-prod"},
		{"/openai/deployments/mini%2Feu/chat/completions", "api-version=2024-10-21", "mini/eu"},
		{"/openai/deployments/embed-prod/embeddings", "api-version=2025-04-01-preview", "embed-prod"},
	}
	reqs := fake.Requests()
	if len(reqs) != len(want) {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	for i, r := range reqs {
		var body struct{ Model string }
		_ = json.Unmarshal(r.Body, &body)
		path := r.EscapedPath // as sent: a "/" in a deployment name must stay escaped
		if path != want[i].path || r.Query != want[i].query || body.Model != want[i].model {
			t.Errorf("request %d: %s?%s model %q, want %s?%s model %q", i, path, r.Query, body.Model, want[i].path, want[i].query, want[i].model)
		}
		if r.Header.Get("Api-Key") != "azure-upstream-key" || r.Header.Get("Authorization") != "" {
			t.Errorf("request %d: api-key %q, Authorization %q", i, r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
		}
	}
}
