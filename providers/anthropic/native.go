package anthropic

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/aigw/aigw/providers/llm"
)

// DecodeMessagesRequest parses a Messages API request body, as an
// Anthropic-native client POSTs it to the gateway, into a canonical request.
//
// system becomes a leading system message; user turns become user
// messages, except that each tool_result block becomes a tool message (in
// the order of the blocks); assistant turns become assistant messages whose
// tool_use blocks are tool calls. Content arrays stay arrays (Parts), so
// EncodeChat gives back the same shape. Images become image_url parts
// (base64 sources as data URLs), base64 PDF documents become file parts.
// tool_choice any maps to "required", tool to a named function, and
// disable_parallel_tool_use to parallel_tool_calls false (in Extra);
// stop_sequences, metadata.user_id and max_tokens map to Stop, User and
// MaxTokens. A stream asks for the usage chunk (stream_options.
// include_usage), which the native stream needs for message_delta.
//
// Dropped, since canonical requests cannot carry them: thinking blocks and
// the thinking option, cache_control, top_k, tool_result is_error,
// document titles and every other Anthropic-only field. Refused with an
// *llm.Error of kind KindInvalidRequest: a body that is not a valid
// request (missing model, max_tokens or messages, unknown roles) and
// content that has no canonical form (server tools, file ids, URL or text
// documents, unknown block types).
func DecodeMessagesRequest(body []byte) (*llm.Request, error) {
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, jsonError(err)
	}
	if w.Model == "" {
		return nil, invalid("model", "model is required")
	}
	if w.MaxTokens == nil {
		return nil, invalid("max_tokens", "max_tokens is required")
	}
	if *w.MaxTokens < 1 {
		return nil, invalid("max_tokens", "max_tokens must be at least 1")
	}
	if len(w.Messages) == 0 {
		return nil, invalid("messages", "messages must not be empty")
	}
	maxTokens := *w.MaxTokens
	out := &llm.Request{
		Model:       w.Model,
		Stream:      w.Stream,
		MaxTokens:   &maxTokens,
		Temperature: w.Temperature,
		TopP:        w.TopP,
	}
	if w.Stream {
		out.StreamOptions = &llm.StreamOptions{IncludeUsage: true}
	}
	if len(w.StopSequences) > 0 {
		out.Stop = llm.Stop(w.StopSequences)
	}
	if w.Metadata != nil {
		out.User = w.Metadata.UserID
	}

	if w.System != nil {
		m, err := systemMessage(w.System)
		if err != nil {
			return nil, err
		}
		if m != nil {
			out.Messages = append(out.Messages, *m)
		}
	}
	for i := range w.Messages {
		var err error
		out.Messages, err = decodeTurn(out.Messages, &w.Messages[i], "messages["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
	}

	for i := range w.Tools {
		tl := &w.Tools[i]
		param := "tools[" + strconv.Itoa(i) + "]"
		if tl.Type != "" && tl.Type != "custom" {
			return nil, invalid(param+".type", "tool type "+strconv.Quote(tl.Type)+" is not supported by this gateway")
		}
		if tl.Name == "" {
			return nil, invalid(param+".name", "tool name is required")
		}
		out.Tools = append(out.Tools, llm.Tool{
			Type: "function",
			Function: llm.FunctionDecl{
				Name:        tl.Name,
				Description: tl.Description,
				Parameters:  tl.InputSchema,
				Strict:      tl.Strict,
			},
		})
	}
	if w.ToolChoice != nil {
		if err := decodeToolChoice(out, w.ToolChoice); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jsonError turns a decoding error into a client-safe message.
func jsonError(err error) *llm.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &llm.Error{Kind: llm.KindInvalidRequest, Provider: ProviderName, Param: te.Field,
			Msg: "invalid value for " + te.Field + ": unexpected " + te.Value, Err: err}
	}
	if errors.Is(err, errContentShape) {
		return &llm.Error{Kind: llm.KindInvalidRequest, Provider: ProviderName, Msg: errContentShape.Error(), Err: err}
	}
	return &llm.Error{Kind: llm.KindInvalidRequest, Provider: ProviderName, Msg: "request body is not a valid Messages API request", Err: err}
}

func systemMessage(c *content) (*llm.Message, error) {
	if c.isText {
		if c.text == "" {
			return nil, nil
		}
		return &llm.Message{Role: "system", Content: c.text, HasContent: true}, nil
	}
	m := &llm.Message{Role: "system", HasContent: true, Parts: []llm.Part{}}
	for j := range c.blocks {
		b := &c.blocks[j]
		if b.Type != "text" {
			return nil, invalid("system["+strconv.Itoa(j)+"]", "system blocks must be text blocks")
		}
		m.Parts = append(m.Parts, llm.Part{Type: "text", Text: b.Text})
	}
	if len(m.Parts) == 0 {
		return nil, nil
	}
	return m, nil
}

// decodeTurn appends the canonical messages of one Anthropic turn.
func decodeTurn(dst []llm.Message, t *wireTurn, param string) ([]llm.Message, error) {
	switch t.Role {
	case "user", "assistant":
	default:
		return dst, invalid(param+".role", "message role must be user or assistant, not "+strconv.Quote(t.Role))
	}
	if !t.Content.isText && t.Content.blocks == nil {
		return dst, invalid(param+".content", "content is required")
	}
	if t.Content.isText {
		return append(dst, llm.Message{Role: t.Role, Content: t.Content.text, HasContent: true}), nil
	}
	if t.Role == "assistant" {
		m, err := decodeAssistant(t.Content.blocks, param)
		if err != nil {
			return dst, err
		}
		return append(dst, m), nil
	}

	// A user turn: tool results become tool messages; runs of other
	// blocks become user messages, in order.
	var pending []llm.Part
	flush := func() {
		if pending != nil {
			dst = append(dst, llm.Message{Role: "user", Parts: pending, HasContent: true})
			pending = nil
		}
	}
	for j := range t.Content.blocks {
		b := &t.Content.blocks[j]
		bp := param + ".content[" + strconv.Itoa(j) + "]"
		if b.Type == "tool_result" {
			flush()
			m, err := decodeToolResult(b, bp)
			if err != nil {
				return dst, err
			}
			dst = append(dst, m)
			continue
		}
		p, err := decodePart(b, bp)
		if err != nil {
			return dst, err
		}
		if pending == nil {
			pending = make([]llm.Part, 0, 1)
		}
		pending = append(pending, p)
	}
	flush()
	if len(t.Content.blocks) == 0 {
		dst = append(dst, llm.Message{Role: "user", Parts: []llm.Part{}, HasContent: true})
	}
	return dst, nil
}

// decodePart translates a text, image or document block into a part.
func decodePart(b *block, param string) (llm.Part, error) {
	switch b.Type {
	case "text":
		return llm.Part{Type: "text", Text: b.Text}, nil
	case "image":
		s := b.Source
		if s == nil {
			return llm.Part{}, invalid(param+".source", "image source is required")
		}
		switch s.Type {
		case "base64":
			if s.MediaType == "" || s.Data == "" {
				return llm.Part{}, invalid(param+".source", "base64 image sources need media_type and data")
			}
			return llm.Part{Type: "image_url", ImageURL: &llm.ImageURL{URL: "data:" + s.MediaType + ";base64," + s.Data}}, nil
		case "url":
			if s.URL == "" {
				return llm.Part{}, invalid(param+".source.url", "image url is required")
			}
			return llm.Part{Type: "image_url", ImageURL: &llm.ImageURL{URL: s.URL}}, nil
		default:
			return llm.Part{}, invalid(param+".source.type", "image source type "+strconv.Quote(s.Type)+" is not supported by this gateway")
		}
	case "document":
		s := b.Source
		if s == nil || s.Type != "base64" || s.MediaType != "application/pdf" || s.Data == "" {
			return llm.Part{}, invalid(param+".source", "only base64 PDF documents are supported by this gateway")
		}
		raw, err := appendJSON(nil, map[string]any{
			"type": "file",
			"file": map[string]string{"file_data": "data:application/pdf;base64," + s.Data},
		})
		if err != nil {
			return llm.Part{}, err
		}
		return llm.Part{Type: "file", Raw: raw}, nil
	default:
		return llm.Part{}, invalid(param+".type", "content block type "+strconv.Quote(b.Type)+" is not supported here")
	}
}

func decodeToolResult(b *block, param string) (llm.Message, error) {
	if b.ToolUseID == "" {
		return llm.Message{}, invalid(param+".tool_use_id", "tool_use_id is required")
	}
	m := llm.Message{Role: "tool", ToolCallID: b.ToolUseID, HasContent: true}
	if b.Content == nil {
		return m, nil
	}
	if b.Content.isText {
		m.Content = b.Content.text
		return m, nil
	}
	m.Parts = make([]llm.Part, 0, len(b.Content.blocks))
	for j := range b.Content.blocks {
		cb := &b.Content.blocks[j]
		if cb.Type != "text" && cb.Type != "image" {
			return llm.Message{}, invalid(param+".content["+strconv.Itoa(j)+"]", "tool results may hold text and image blocks only")
		}
		p, err := decodePart(cb, param+".content["+strconv.Itoa(j)+"]")
		if err != nil {
			return llm.Message{}, err
		}
		m.Parts = append(m.Parts, p)
	}
	return m, nil
}

func decodeAssistant(blocks []block, param string) (llm.Message, error) {
	m := llm.Message{Role: "assistant"}
	for j := range blocks {
		b := &blocks[j]
		switch b.Type {
		case "text":
			m.Parts = append(m.Parts, llm.Part{Type: "text", Text: b.Text})
		case "tool_use":
			if b.ID == "" || b.Name == "" {
				return m, invalid(param+".content["+strconv.Itoa(j)+"]", "tool_use blocks need an id and a name")
			}
			m.ToolCalls = append(m.ToolCalls, llm.ToolCall{
				ID:       b.ID,
				Type:     "function",
				Function: llm.FunctionCall{Name: b.Name, Arguments: compactArgs(b.Input)},
			})
		case "thinking", "redacted_thinking":
			// Reasoning of an earlier turn: canonical requests cannot
			// carry it, and upstreams do not need it to continue.
		default:
			return m, invalid(param+".content["+strconv.Itoa(j)+"].type", "content block type "+strconv.Quote(b.Type)+" is not supported here")
		}
	}
	m.HasContent = len(m.Parts) > 0 || len(m.ToolCalls) == 0
	if m.HasContent && m.Parts == nil {
		m.Parts = []llm.Part{}
	}
	return m, nil
}

func decodeToolChoice(out *llm.Request, c *wireToolChoice) error {
	switch c.Type {
	case "auto":
		out.ToolChoice = json.RawMessage(`"auto"`)
	case "any":
		out.ToolChoice = json.RawMessage(`"required"`)
	case "none":
		out.ToolChoice = json.RawMessage(`"none"`)
	case "tool":
		if c.Name == "" {
			return invalid("tool_choice.name", "tool_choice of type tool needs a name")
		}
		raw, err := appendJSON(nil, map[string]any{
			"type":     "function",
			"function": map[string]string{"name": c.Name},
		})
		if err != nil {
			return err
		}
		out.ToolChoice = raw
	default:
		return invalid("tool_choice.type", "unknown tool_choice type "+strconv.Quote(c.Type))
	}
	if c.DisableParallelToolUse && c.Type != "none" {
		out.Extra = map[string]json.RawMessage{"parallel_tool_calls": json.RawMessage("false")}
	}
	return nil
}

// messageOut is the Messages API answer the native front writes.
type messageOut struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      []block   `json:"content"`
	StopReason   string    `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        *usageOut `json:"usage"`
}

// EncodeMessagesResponse appends the Messages API answer for r to dst, for
// an Anthropic-native client.
//
// The first choice is written: its text (Content, text parts, then any
// refusal) as one text block, each tool call as a tool_use block whose
// input is the parsed arguments ({} when they are not a JSON object).
// finish_reason maps back to stop_reason (stop: end_turn, length:
// max_tokens, tool_calls: tool_use, content_filter: refusal); usage is
// converted back to Anthropic's convention, input_tokens excluding cache
// reads and writes. A nil r writes an empty message.
func EncodeMessagesResponse(dst []byte, r *llm.Response) []byte {
	m := messageOut{Type: "message", Role: "assistant", Content: []block{}, StopReason: "end_turn"}
	if r != nil {
		m.ID, m.Model = r.ID, r.Model
		if len(r.Choices) > 0 {
			c := &r.Choices[0]
			m.Content = messageBlocks(&c.Message)
			m.StopReason = stopReason(c.FinishReason)
		}
		if r.Usage != nil {
			m.Usage = anthropicUsage(*r.Usage)
		}
	}
	if m.Usage == nil {
		m.Usage = &usageOut{}
	}
	out, err := appendJSON(dst, m)
	if err != nil { // unreachable: blocks hold strings and valid JSON only
		return EncodeError(dst, &llm.Error{Kind: llm.KindInternal, Msg: "internal error"})
	}
	return out
}

// messageBlocks renders a canonical assistant message as content blocks.
func messageBlocks(msg *llm.Message) []block {
	text := msg.Content
	for i := range msg.Parts {
		if msg.Parts[i].Type == "text" {
			text += msg.Parts[i].Text
		}
	}
	text += msg.Refusal
	out := make([]block, 0, 1+len(msg.ToolCalls))
	if text != "" {
		out = append(out, block{Type: "text", Text: text})
	}
	for i := range msg.ToolCalls {
		tc := &msg.ToolCalls[i]
		input, err := toolInput(tc.Function.Arguments)
		if err != nil {
			input = json.RawMessage("{}")
		}
		out = append(out, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return out
}

// anthropicUsage converts canonical usage back to Anthropic's convention.
func anthropicUsage(u llm.Usage) *usageOut {
	input := u.PromptTokens - u.CachedTokens - u.CacheWriteTokens
	out := &usageOut{
		InputTokens:              max(input, 0),
		CacheCreationInputTokens: max(u.CacheWriteTokens, 0),
		CacheReadInputTokens:     max(u.CachedTokens, 0),
		OutputTokens:             max(u.CompletionTokens, 0),
	}
	if u.ReasoningTokens > 0 {
		out.OutputTokensDetails = &thinkingOut{ThinkingTokens: u.ReasoningTokens}
	}
	return out
}

// EncodeNative builds the upstream request for an Anthropic-native client
// routed to an Anthropic target: the client's body is sent as it came,
// byte for byte, unless the target's model differs from the one the client
// named, in which case only "model" is rewritten. beta is the client's
// anthropic-beta header ("" for none); it is the one client header
// forwarded, because beta features change the body's meaning. The
// credential and anthropic-version are the target's, never the client's.
func EncodeNative(body []byte, clientModel, beta string, stream bool, t *llm.Target) (llm.Outbound, error) {
	if t.Model != clientModel {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return llm.Outbound{}, invalid("", "The request body is not a JSON object.")
		}
		name, _ := json.Marshal(t.Model)
		m["model"] = name
		b, err := json.Marshal(m)
		if err != nil {
			return llm.Outbound{}, invalid("", "The request body could not be re-encoded.")
		}
		body = b
	}
	version := t.APIVersion
	if version == "" {
		version = DefaultAPIVersion
	}
	out := llm.Outbound{Method: "POST", URL: messagesURL(t.BaseURL), Body: body, Stream: stream,
		Header: []llm.Header{
			{Key: "Content-Type", Value: "application/json"},
			{Key: "anthropic-version", Value: version},
		}}
	if t.APIKey != "" {
		out.Header = append(out.Header, llm.Header{Key: "x-api-key", Value: t.APIKey})
	}
	if stream {
		out.Header = append(out.Header, llm.Header{Key: "Accept", Value: "text/event-stream"})
	} else {
		out.Header = append(out.Header, llm.Header{Key: "Accept", Value: "application/json"})
	}
	if beta != "" {
		out.Header = append(out.Header, llm.Header{Key: "anthropic-beta", Value: beta})
	}
	return out, nil
}
