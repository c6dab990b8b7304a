package llm

import "encoding/json"

// Response is a complete (non-stream) chat completion in canonical form.
type Response struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
}

// Choice is one generated alternative.
type Choice struct {
	Index        int             `json:"index"`
	Message      Message         `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// Finish reasons, as OpenAI names them.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Delta is one canonical stream event: a piece of one choice, or the final
// usage. Adapters decode provider events into Deltas; the proxy encodes Deltas
// into the client's wire format when the two formats differ.
type Delta struct {
	ID      string
	Model   string
	Created int64
	Index   int

	Role         string
	Content      string
	Refusal      string
	ToolCalls    []ToolCallDelta
	FinishReason string

	// Usage is set on the event that carries the (cumulative) usage.
	Usage *Usage
}

// HasContent reports whether the delta carries something the client must see
// (text, a refusal, a tool call, a finish reason), as opposed to a role-only
// or bookkeeping frame.
func (d *Delta) HasContent() bool {
	return d.Content != "" || d.Refusal != "" || len(d.ToolCalls) > 0 || d.FinishReason != ""
}

// ToolCallDelta is a fragment of a streamed tool call. The first fragment of a
// call carries ID, Type and Name; later ones append to Arguments.
type ToolCallDelta struct {
	Index     int
	ID        string
	Type      string
	Name      string
	Arguments string
}

// EmbeddingResponse is OpenAI's embeddings answer. Each embedding is kept as
// the raw JSON the upstream sent (a float array or a base64 string).
type EmbeddingResponse struct {
	Object string      `json:"object"`
	Data   []Embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  *Usage      `json:"usage,omitempty"`
}

// Embedding is one vector.
type Embedding struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}
