package anthropic_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/llm"
)

// nativeFront is a minimal Anthropic-native endpoint built from the native
// front of this package, answering every request with answer (as deltas
// for a stream), so that the official Anthropic SDK can talk to it.
type nativeFront struct {
	mu       sync.Mutex
	got      *llm.Request
	answer   []llm.Delta
	usage    llm.Usage
	failWith *llm.Error // sent as an error event after the deltas
}

func (f *nativeFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, err := anthropic.DecodeMessagesRequest(body)
	if err != nil {
		e := llm.AsError(err)
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(anthropic.ErrorStatus(e.Kind))
		_, _ = w.Write(anthropic.EncodeError(nil, e))
		return
	}
	f.mu.Lock()
	f.got = req
	f.mu.Unlock()

	if !req.Stream {
		resp := &llm.Response{ID: "msg_test", Model: req.Model, Usage: &f.usage,
			Choices: []llm.Choice{{Message: llm.Message{Role: "assistant"}}}}
		m := &resp.Choices[0].Message
		for _, d := range f.answer {
			m.Content += d.Content
			for _, tc := range d.ToolCalls {
				if tc.ID != "" {
					m.ToolCalls = append(m.ToolCalls, llm.ToolCall{ID: tc.ID, Type: "function", Function: llm.FunctionCall{Name: tc.Name}})
				}
				m.ToolCalls[len(m.ToolCalls)-1].Function.Arguments += tc.Arguments
			}
			if d.FinishReason != "" {
				resp.Choices[0].FinishReason = d.FinishReason
			}
		}
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write(anthropic.EncodeMessagesResponse(nil, resp))
		return
	}
	w.Header().Set("content-type", "text/event-stream")
	enc := anthropic.NewStreamEncoder("msg_test", req.Model)
	var out []byte
	for i := range f.answer {
		out = enc.Append(out, &f.answer[i])
	}
	if f.failWith != nil {
		out = enc.AppendError(out, f.failWith)
	} else {
		out = enc.Finish(out, f.usage)
	}
	_, _ = w.Write(out)
}

func newSDKClient(t *testing.T, f *nativeFront) sdk.Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return sdk.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("gw-key"), option.WithMaxRetries(0))
}

var toolAnswer = []llm.Delta{
	{Role: "assistant"},
	{Content: "Let me "},
	{Content: "check."},
	{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "call_1", Type: "function", Name: "get_weather"}}},
	{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `{"city":`}}},
	{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `"Paris"}`}}},
	{FinishReason: llm.FinishToolCalls},
}

func sdkParams() sdk.MessageNewParams {
	return sdk.MessageNewParams{
		Model:     sdk.Model("claude-sonnet-4-5"),
		MaxTokens: 300,
		System:    []sdk.TextBlockParam{{Text: "Be brief."}},
		Messages: []sdk.MessageParam{
			sdk.NewUserMessage(sdk.NewTextBlock("Weather in Paris?"), sdk.NewImageBlockBase64("image/png", "iVBORw0KGgo=")),
			sdk.NewAssistantMessage(sdk.NewToolUseBlock("toolu_1", map[string]any{"city": "Paris"}, "get_weather")),
			sdk.NewUserMessage(sdk.NewToolResultBlock("toolu_1", "18C", false)),
		},
		Tools: []sdk.ToolUnionParam{{OfTool: &sdk.ToolParam{
			Name:        "get_weather",
			Description: sdk.String("Weather by city"),
			InputSchema: sdk.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}},
		}}},
		ToolChoice:    sdk.ToolChoiceUnionParam{OfAny: &sdk.ToolChoiceAnyParam{DisableParallelToolUse: sdk.Bool(true)}},
		StopSequences: []string{"STOP"},
		Metadata:      sdk.MetadataParam{UserID: sdk.String("user-7")},
		Temperature:   sdk.Float(0.2),
	}
}

// checkSDKRequest checks the canonical form of what the SDK sent.
func checkSDKRequest(t *testing.T, req *llm.Request, stream bool) {
	t.Helper()
	if req == nil {
		t.Fatal("no request reached the front")
	}
	if req.Model != "claude-sonnet-4-5" || req.MaxTokens == nil || *req.MaxTokens != 300 || req.Stream != stream {
		t.Errorf("model/max_tokens/stream: %q %v %v", req.Model, req.MaxTokens, req.Stream)
	}
	if req.User != "user-7" || len(req.Stop) != 1 || req.Stop[0] != "STOP" || req.Temperature == nil || *req.Temperature != 0.2 {
		t.Errorf("user/stop/temperature: %q %q %v", req.User, req.Stop, req.Temperature)
	}
	if string(req.ToolChoice) != `"required"` || string(req.Extra["parallel_tool_calls"]) != "false" {
		t.Errorf("tool_choice %s, parallel_tool_calls %s", req.ToolChoice, req.Extra["parallel_tool_calls"])
	}
	roles := ""
	for _, m := range req.Messages {
		roles += m.Role + " "
	}
	if roles != "system user assistant tool " {
		t.Errorf("roles = %q", roles)
	}
	if len(req.Messages) == 4 {
		if p := req.Messages[1].Parts; len(p) != 2 || p[1].ImageURL == nil || p[1].ImageURL.URL != "data:image/png;base64,iVBORw0KGgo=" {
			t.Errorf("user parts = %+v", p)
		}
		if tc := req.Messages[2].ToolCalls; len(tc) != 1 || tc[0].Function.Arguments != `{"city":"Paris"}` {
			t.Errorf("tool calls = %+v", tc)
		}
		if m := req.Messages[3]; m.ToolCallID != "toolu_1" {
			t.Errorf("tool result = %+v", m)
		}
	}
	if len(req.Tools) != 1 || req.Tools[0].Function.Name != "get_weather" {
		t.Errorf("tools = %+v", req.Tools)
	}
}

func TestSDKNonStream(t *testing.T) {
	f := &nativeFront{answer: toolAnswer, usage: llm.Usage{PromptTokens: 50, CompletionTokens: 9, TotalTokens: 59, CachedTokens: 20}}
	client := newSDKClient(t, f)
	msg, err := client.Messages.New(context.Background(), sdkParams())
	if err != nil {
		t.Fatal(err)
	}
	checkSDKRequest(t, f.got, false)
	if len(msg.Content) != 2 || msg.Content[0].Text != "Let me check." || msg.Content[1].Name != "get_weather" ||
		string(msg.Content[1].Input) != `{"city":"Paris"}` {
		t.Errorf("content = %+v", msg.Content)
	}
	if msg.StopReason != sdk.StopReasonToolUse {
		t.Errorf("stop_reason = %q", msg.StopReason)
	}
	if msg.Usage.InputTokens != 30 || msg.Usage.CacheReadInputTokens != 20 || msg.Usage.OutputTokens != 9 {
		t.Errorf("usage = %+v", msg.Usage)
	}
}

func TestSDKStream(t *testing.T) {
	f := &nativeFront{answer: toolAnswer, usage: llm.Usage{PromptTokens: 50, CompletionTokens: 9, TotalTokens: 59, CacheWriteTokens: 5}}
	client := newSDKClient(t, f)
	stream := client.Messages.NewStreaming(context.Background(), sdkParams())
	var msg sdk.Message
	events := 0
	for stream.Next() {
		events++
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	checkSDKRequest(t, f.got, true)
	if msg.ID != "msg_test" || len(msg.Content) != 2 || msg.Content[0].Text != "Let me check." {
		t.Fatalf("message = %+v", msg)
	}
	var input map[string]string
	if err := json.Unmarshal(msg.Content[1].Input, &input); err != nil || input["city"] != "Paris" || msg.Content[1].ID != "call_1" {
		t.Errorf("tool_use = %+v (%v)", msg.Content[1], err)
	}
	if msg.StopReason != sdk.StopReasonToolUse {
		t.Errorf("stop_reason = %q", msg.StopReason)
	}
	if msg.Usage.InputTokens != 45 || msg.Usage.CacheCreationInputTokens != 5 || msg.Usage.OutputTokens != 9 {
		t.Errorf("usage = %+v", msg.Usage)
	}
}

func TestSDKStreamError(t *testing.T) {
	f := &nativeFront{answer: toolAnswer[:2], failWith: &llm.Error{Kind: llm.KindOverloaded, Msg: "Overloaded"}}
	client := newSDKClient(t, f)
	stream := client.Messages.NewStreaming(context.Background(), sdkParams())
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Fatal("the SDK did not see the error event")
	}
}

func TestSDKRefusedRequest(t *testing.T) {
	f := &nativeFront{}
	client := newSDKClient(t, f)
	p := sdkParams()
	p.Tools = append(p.Tools, sdk.ToolUnionParam{OfWebSearchTool20250305: &sdk.WebSearchTool20250305Param{}})
	_, err := client.Messages.New(context.Background(), p)
	var apiErr *sdk.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *sdk.Error", err)
	}
	if apiErr.StatusCode != 400 || apiErr.Type() != "invalid_request_error" {
		t.Errorf("status %d type %q", apiErr.StatusCode, apiErr.Type())
	}
}
