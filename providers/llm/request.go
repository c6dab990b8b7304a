package llm

import "encoding/json"

// Request is a chat completion request in canonical form. It mirrors OpenAI's
// chat completions body because that is the wire format aigw's clients speak;
// adapters translate it for other providers.
//
// Fields the gateway does not model are kept verbatim in Extra so that an
// OpenAI-compatible upstream still receives them.
type Request struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Stop                Stop            `json:"stop,omitempty"`
	User                string          `json:"user,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ResponseFormat      json.RawMessage `json:"response_format,omitempty"`

	// Extra holds every top-level field not listed above, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// StreamOptions is OpenAI's stream_options object.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// WantsUsageChunk reports whether the client asked for the final usage chunk
// of a stream.
func (r *Request) WantsUsageChunk() bool {
	return r.Stream && r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// MaxOutputTokens returns the client's output cap (max_completion_tokens wins
// over max_tokens) and whether one was given.
func (r *Request) MaxOutputTokens() (int, bool) {
	if r.MaxCompletionTokens != nil {
		return *r.MaxCompletionTokens, true
	}
	if r.MaxTokens != nil {
		return *r.MaxTokens, true
	}
	return 0, false
}

// Stop is OpenAI's stop parameter: a string or a list of strings on the wire,
// always a list here.
type Stop []string

// Message is one chat message.
//
// Content holds plain text when the client sent a string; Parts holds the
// content when the client sent an array. At most one of them is set.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"-"`
	Parts      []Part     `json:"-"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Refusal    string     `json:"refusal,omitempty"`

	// HasContent is false when the client sent no content or null (an
	// assistant turn that only calls tools).
	HasContent bool `json:"-"`
}

// Part is one element of an array content.
type Part struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
	// Raw is the part as the client sent it, for part types aigw does not
	// model (input_audio, file, ...). Adapters that cannot express it refuse.
	Raw json.RawMessage `json:"-"`
}

// ImageURL is the image_url part: an http(s) URL or a base64 data URL.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// Tool is a tool definition offered to the model.
type Tool struct {
	Type     string       `json:"type"`
	Function FunctionDecl `json:"function"`
}

// FunctionDecl declares a callable function. Parameters is a JSON schema.
type FunctionDecl struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolCall is an assistant's call of a tool. Arguments is a JSON text, as
// OpenAI sends it.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and carries its JSON-encoded arguments.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// EmbeddingRequest is OpenAI's embeddings body. Input is kept raw: a string,
// a list of strings, or token arrays.
type EmbeddingRequest struct {
	Model          string                     `json:"model"`
	Input          json.RawMessage            `json:"input"`
	EncodingFormat string                     `json:"encoding_format,omitempty"`
	Dimensions     *int                       `json:"dimensions,omitempty"`
	User           string                     `json:"user,omitempty"`
	Extra          map[string]json.RawMessage `json:"-"`
}
