package fakeopenai

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/mock"
	"github.com/aigw/aigw/providers/providertest/internal/scenario"
)

// respond answers one request: chat requests that a scenario rule applies
// to (tools, tool results, images) are answered here; everything else by
// the mock, as before.
func (s *Server) respond(method, path string, body []byte) *mock.Response {
	if method != "POST" || !strings.HasSuffix(path, "/chat/completions") {
		return s.up.Respond(method, path, body)
	}
	var req llm.Request
	if req.UnmarshalJSON(body) != nil || req.Validate() != nil {
		return s.up.Respond(method, path, body) // the mock answers the 400
	}
	in, bad := readInput(&req)
	if bad != nil {
		return bad
	}
	a := scenario.Decide(in, "")
	switch {
	case a.ToolCall != nil:
		return s.toolCall(&req, &a)
	case a.Text != "":
		cfg := s.cfg.mock
		cfg.Reply = a.Text
		return mock.New(cfg).Respond(method, path, body)
	}
	return s.up.Respond(method, path, body)
}

// readInput checks the pairing of tool calls and tool messages as OpenAI
// does (a non-nil response is the 400 to answer) and reads the scenario's
// input.
func readInput(req *llm.Request) (*scenario.Input, *mock.Response) {
	in := &scenario.Input{}
	for _, t := range req.Tools {
		in.Tools = append(in.Tools, t.Function.Name)
	}
	var pending []string // tool_call ids not answered yet
	open := false        // the messages since the last assistant tool_calls are tool messages
	for i := range req.Messages {
		m := &req.Messages[i]
		param := "messages.[" + strconv.Itoa(i) + "].role"
		if m.Role == "tool" {
			k := indexOf(pending, m.ToolCallID)
			if !open || k < 0 {
				return nil, mock.ErrorResponse(400, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
					"invalid_request_error", param, "")
			}
			pending = append(pending[:k], pending[k+1:]...)
			continue
		}
		if len(pending) > 0 {
			return nil, mock.ErrorResponse(400, "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "+
				"The following tool_call_ids did not have response messages: "+strings.Join(pending, ", "), "invalid_request_error", param, "")
		}
		open = false
		if m.Role == "assistant" && len(m.ToolCalls) > 0 {
			for _, tc := range m.ToolCalls {
				pending = append(pending, tc.ID)
			}
			open = true
		}
	}
	if len(pending) > 0 {
		return nil, mock.ErrorResponse(400, "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "+
			"The following tool_call_ids did not have response messages: "+strings.Join(pending, ", "), "invalid_request_error", "messages", "")
	}
	last := len(req.Messages) - 1
	switch req.Messages[last].Role {
	case "tool":
		first := last
		for first > 0 && req.Messages[first-1].Role == "tool" {
			first--
		}
		for _, m := range req.Messages[first:] {
			in.ToolResults = append(in.ToolResults, text(&m))
		}
	case "user":
		in.LastUserText = text(&req.Messages[last])
		for _, p := range req.Messages[last].Parts {
			if p.Type == "image_url" {
				in.Images++
			}
		}
	}
	return in, nil
}

func text(m *llm.Message) string {
	if len(m.Parts) == 0 {
		return m.Content
	}
	var b strings.Builder
	for _, p := range m.Parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// toolCall answers with a.Text and a call of a.ToolCall, as OpenAI does:
// one message with content and tool_calls (finish_reason "tool_calls"), or
// a stream whose chunks carry the role, the content, the call's id and
// name, its arguments in pieces, the finish reason and, when asked, the
// usage.
func (s *Server) toolCall(req *llm.Request, a *scenario.Answer) *mock.Response {
	seq := strconv.FormatInt(s.seq.Add(1), 10)
	id, callID := "chatcmpl-fake-"+seq, "call_fake_"+seq
	created := time.Now().Unix()
	usage := llm.Usage{PromptTokens: mock.EstimatePromptTokens(req),
		CompletionTokens: scenario.Tokens(a.Text) + scenario.Tokens(a.ToolCall.Arguments)}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	usageJSON, _ := json.Marshal(map[string]any{"prompt_tokens": usage.PromptTokens,
		"completion_tokens": usage.CompletionTokens, "total_tokens": usage.TotalTokens})
	type fn struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	type call struct {
		Index    *int   `json:"index,omitempty"`
		ID       string `json:"id,omitempty"`
		Type     string `json:"type,omitempty"`
		Function fn     `json:"function"`
	}
	if !req.Stream {
		c := map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{
				"index": 0,
				"message": map[string]any{"role": "assistant", "content": a.Text, "refusal": nil, "annotations": []any{},
					"tool_calls": []call{{ID: callID, Type: "function", Function: fn{Name: a.ToolCall.Name, Arguments: a.ToolCall.Arguments}}}},
				"logprobs": nil, "finish_reason": "tool_calls",
			}},
			"usage": json.RawMessage(usageJSON), "service_tier": "default", "system_fingerprint": "fp_mock",
		}
		b, _ := json.Marshal(c)
		return &mock.Response{Status: 200, Header: []llm.Header{{Key: "Content-Type", Value: "application/json"}}, Body: b}
	}

	includeUsage := req.WantsUsageChunk()
	zero := 0
	chunk := func(delta map[string]any, finish any) []byte {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"service_tier": "default", "system_fingerprint": "fp_mock",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}
		if includeUsage {
			c["usage"] = nil
		}
		b, _ := json.Marshal(c)
		return b
	}
	events := [][]byte{chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil)}
	chunks := s.cfg.mock.Chunks
	if chunks <= 0 {
		chunks = mock.DefaultChunks
	}
	for _, p := range scenario.Split(a.Text, chunks) {
		events = append(events, chunk(map[string]any{"content": p}, nil))
	}
	events = append(events, chunk(map[string]any{"tool_calls": []call{{Index: &zero, ID: callID, Type: "function",
		Function: fn{Name: a.ToolCall.Name}}}}, nil))
	for _, p := range scenario.Split(a.ToolCall.Arguments, 3) {
		events = append(events, chunk(map[string]any{"tool_calls": []call{{Index: &zero, Function: fn{Arguments: p}}}}, nil))
	}
	events = append(events, chunk(map[string]any{}, "tool_calls"))
	if includeUsage {
		b, _ := json.Marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"service_tier": "default", "system_fingerprint": "fp_mock", "choices": []any{}, "usage": json.RawMessage(usageJSON)})
		events = append(events, b)
	}
	events = append(events, []byte("[DONE]"))
	return &mock.Response{Status: 200, Header: []llm.Header{{Key: "Content-Type", Value: "text/event-stream; charset=utf-8"}}, Events: events}
}
