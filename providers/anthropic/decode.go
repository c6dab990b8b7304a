package anthropic

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// DecodeChat parses a 2xx Messages API answer into a canonical response
// with one choice.
//
// Text blocks are concatenated into the message content; tool_use blocks
// become tool calls whose arguments are the compact JSON of their input;
// thinking and server-tool blocks are dropped. The content is absent
// (HasContent false) when the answer only calls tools. ID is Anthropic's
// message id, Created is Adapter.Now, and usage follows the convention in
// the package documentation.
//
// A body that is not a Messages API message is an *llm.Error of kind
// KindUpstream; an error object in a 2xx body is classified as
// ClassifyError would.
func (a Adapter) DecodeChat(body []byte) (*llm.Response, error) {
	var m wireMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, badAnswer("anthropic returned an invalid message", err)
	}
	if m.Type == "error" || m.Error != nil {
		e := classify(0, m.Error)
		return nil, e
	}
	// Anthropic always sends type "message"; a compatible server that
	// leaves it out must at least send the content array.
	if m.Type != "message" && (m.Type != "" || m.Content == nil) {
		return nil, badAnswer("anthropic returned an unexpected object", argError("type "+strconv.Quote(m.Type)))
	}

	msg := llm.Message{Role: "assistant"}
	var text strings.Builder
	for i := range m.Content {
		b := &m.Content[i]
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{
				ID:       b.ID,
				Type:     "function",
				Function: llm.FunctionCall{Name: b.Name, Arguments: compactArgs(b.Input)},
			})
		}
	}
	msg.Content = text.String()
	msg.HasContent = msg.Content != "" || len(msg.ToolCalls) == 0

	finish := llm.FinishStop
	if m.StopReason != nil {
		finish = finishReason(*m.StopReason)
	}
	resp := &llm.Response{
		ID:      m.ID,
		Object:  "chat.completion",
		Created: a.now().Unix(),
		Model:   m.Model,
		Choices: []llm.Choice{{Index: 0, Message: msg, FinishReason: finish}},
	}
	if m.Usage != nil {
		var s usageState
		s.merge(m.Usage)
		u := s.canonical()
		resp.Usage = &u
	}
	return resp, nil
}

// compactArgs renders a tool_use input as OpenAI's arguments string.
func compactArgs(input json.RawMessage) string {
	if len(input) == 0 || isNull(input) {
		return "{}"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, input); err != nil {
		return "{}"
	}
	return buf.String()
}
