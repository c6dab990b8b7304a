package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
)

// This file holds the Messages API wire types, shared by the adapter (which
// writes requests and reads answers) and the native front (which reads
// requests and writes answers).

// wireRequest is a Messages API request body. Field order is the order
// Anthropic's documentation lists them in, so encoded bodies read naturally.
type wireRequest struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens,omitempty"`
	System        *content        `json:"system,omitempty"`
	Messages      []wireTurn      `json:"messages"`
	Tools         []wireTool      `json:"tools,omitempty"`
	ToolChoice    *wireToolChoice `json:"tool_choice,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	TopK          json.RawMessage `json:"top_k,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Metadata      *wireMetadata   `json:"metadata,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
}

type wireMetadata struct {
	UserID string `json:"user_id,omitempty"`
}

// wireTurn is one entry of messages.
type wireTurn struct {
	Role    string  `json:"role"`
	Content content `json:"content"`
}

// content is a Messages API content field: a plain string or an array of
// blocks. isText selects the string form when encoding and records it when
// decoding.
type content struct {
	text   string
	blocks []block
	isText bool
}

// MarshalJSON implements json.Marshaler.
func (c content) MarshalJSON() ([]byte, error) {
	if c.isText {
		return appendJSON(nil, c.text)
	}
	if c.blocks == nil {
		return []byte("[]"), nil
	}
	return appendJSON(nil, c.blocks)
}

var errContentShape = errors.New("content must be a string or an array of content blocks")

// UnmarshalJSON implements json.Unmarshaler.
func (c *content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		c.isText = true
		c.blocks = nil
		return json.Unmarshal(b, &c.text)
	}
	if len(b) > 0 && b[0] == '[' {
		c.isText = false
		c.text = ""
		return json.Unmarshal(b, &c.blocks)
	}
	return errContentShape
}

// block is a content block of any type; only the fields of its Type are set.
type block struct {
	Type string `json:"type"`
	// text
	Text string `json:"text,omitempty"`
	// image, document
	Source *wireSource `json:"source,omitempty"`
	// tool_use
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result
	ToolUseID string   `json:"tool_use_id,omitempty"`
	Content   *content `json:"content,omitempty"`
	IsError   bool     `json:"is_error,omitempty"`
	// document (read only, dropped when translated)
	Title string `json:"title,omitempty"`
}

// UnmarshalJSON implements json.Unmarshaler. A block of a type this
// package does not translate keeps only its Type, whatever the shape of its
// other fields, so that callers can name it in an error or skip it.
func (b *block) UnmarshalJSON(data []byte) error {
	type plain block
	err := json.Unmarshal(data, (*plain)(b))
	if err == nil {
		return nil
	}
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &head) == nil && !knownBlock(head.Type) {
		*b = block{Type: head.Type}
		return nil
	}
	return err
}

func knownBlock(typ string) bool {
	switch typ {
	case "text", "image", "document", "tool_use", "tool_result":
		return true
	}
	return false
}

// wireSource is the source of an image or document block.
type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
	FileID    string `json:"file_id,omitempty"`
}

// wireTool is a client tool definition. Type is empty (or "custom") for
// client tools and names a server tool otherwise.
type wireTool struct {
	Type        string          `json:"type,omitempty"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// wireToolChoice is tool_choice: type auto, any, tool (with name) or none.
type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// wireMessage is a Messages API answer (non-stream), and the message of a
// message_start stream event.
type wireMessage struct {
	ID           string     `json:"id"`
	Type         string     `json:"type"`
	Role         string     `json:"role"`
	Model        string     `json:"model"`
	Content      []block    `json:"content"`
	StopReason   *string    `json:"stop_reason"`
	StopSequence *string    `json:"stop_sequence"`
	Usage        *wireUsage `json:"usage,omitempty"`
	// Error is set when the body is an error object ("type": "error").
	Error *wireErrorBody `json:"error,omitempty"`
}

// wireUsage is Anthropic's usage object as read from an answer. Pointers
// tell a field that is absent (keep the figure already known) from a zero.
type wireUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokensDetails      *struct {
		ThinkingTokens *int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
}

// usageOut is Anthropic's usage object as the native front writes it.
type usageOut struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	// OutputTokensDetails is written only when reasoning tokens are known.
	OutputTokensDetails *thinkingOut `json:"output_tokens_details,omitempty"`
}

type thinkingOut struct {
	ThinkingTokens int `json:"thinking_tokens"`
}

// wireError is Anthropic's error body: {"type":"error","error":{...}}.
type wireError struct {
	Type  string         `json:"type"`
	Error *wireErrorBody `json:"error"`
}

type wireErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// appendJSON appends the JSON encoding of v to dst, without HTML escaping
// and without the trailing newline json.Encoder writes.
func appendJSON(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, err
	}
	out := buf.Bytes()
	if n := len(out); n > 0 && out[n-1] == '\n' {
		out = out[:n-1]
	}
	return out, nil
}
