package providertest

import (
	"encoding/json"
	"errors"

	"github.com/aigw/aigw/providers/llm"
)

// The dumps below are the golden representation of canonical values. They
// show every field, including those llm's OpenAI encoding hides (cached
// and cache-write tokens, HasContent, Part.Raw), so that goldens catch a
// change in any of them.

// UsageDump is the golden form of llm.Usage.
type UsageDump struct {
	PromptTokens     int  `json:"prompt_tokens"`
	CompletionTokens int  `json:"completion_tokens"`
	TotalTokens      int  `json:"total_tokens"`
	CachedTokens     int  `json:"cached_tokens,omitempty"`
	CacheWriteTokens int  `json:"cache_write_tokens,omitempty"`
	ReasoningTokens  int  `json:"reasoning_tokens,omitempty"`
	Estimated        bool `json:"estimated,omitempty"`
}

// DumpUsage returns the golden form of u.
func DumpUsage(u llm.Usage) UsageDump { return UsageDump(u) }

// PartDump is the golden form of llm.Part.
type PartDump struct {
	Type     string          `json:"type"`
	Text     string          `json:"text,omitempty"`
	ImageURL *llm.ImageURL   `json:"image_url,omitempty"`
	Raw      json.RawMessage `json:"raw,omitempty"`
}

// MessageDump is the golden form of llm.Message.
type MessageDump struct {
	Role       string         `json:"role"`
	Content    string         `json:"content"`
	HasContent bool           `json:"has_content"`
	Parts      []PartDump     `json:"parts,omitempty"`
	Name       string         `json:"name,omitempty"`
	ToolCalls  []llm.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
	Refusal    string         `json:"refusal,omitempty"`
}

// DumpMessage returns the golden form of m.
func DumpMessage(m *llm.Message) MessageDump {
	d := MessageDump{
		Role: m.Role, Content: m.Content, HasContent: m.HasContent, Name: m.Name,
		ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID, Refusal: m.Refusal,
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		d.Parts = append(d.Parts, PartDump{Type: p.Type, Text: p.Text, ImageURL: p.ImageURL, Raw: p.Raw})
	}
	return d
}

// ChoiceDump is the golden form of llm.Choice.
type ChoiceDump struct {
	Index        int             `json:"index"`
	Message      MessageDump     `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// ResponseDump is the golden form of llm.Response.
type ResponseDump struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []ChoiceDump `json:"choices"`
	Usage             *UsageDump   `json:"usage,omitempty"`
	SystemFingerprint string       `json:"system_fingerprint,omitempty"`
}

// DumpResponse returns the golden form of r.
func DumpResponse(r *llm.Response) ResponseDump {
	d := ResponseDump{ID: r.ID, Object: r.Object, Created: r.Created, Model: r.Model,
		SystemFingerprint: r.SystemFingerprint, Choices: []ChoiceDump{}}
	for i := range r.Choices {
		c := &r.Choices[i]
		d.Choices = append(d.Choices, ChoiceDump{Index: c.Index, Message: DumpMessage(&c.Message),
			FinishReason: c.FinishReason, Logprobs: c.Logprobs})
	}
	if r.Usage != nil {
		u := DumpUsage(*r.Usage)
		d.Usage = &u
	}
	return d
}

// ToolCallDeltaDump is the golden form of llm.ToolCallDelta.
type ToolCallDeltaDump struct {
	Index     int    `json:"index"`
	ID        string `json:"id,omitempty"`
	Type      string `json:"type,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

// DeltaDump is the golden form of llm.Delta; empty fields are left out.
type DeltaDump struct {
	ID           string              `json:"id,omitempty"`
	Model        string              `json:"model,omitempty"`
	Created      int64               `json:"created,omitempty"`
	Index        int                 `json:"index"`
	Role         string              `json:"role,omitempty"`
	Content      string              `json:"content,omitempty"`
	Refusal      string              `json:"refusal,omitempty"`
	ToolCalls    []ToolCallDeltaDump `json:"tool_calls,omitempty"`
	FinishReason string              `json:"finish_reason,omitempty"`
	Usage        *UsageDump          `json:"usage,omitempty"`
}

// DumpDelta returns the golden form of d. It copies everything, so d may
// be reused afterwards.
func DumpDelta(d *llm.Delta) DeltaDump {
	out := DeltaDump{ID: d.ID, Model: d.Model, Created: d.Created, Index: d.Index, Role: d.Role,
		Content: d.Content, Refusal: d.Refusal, FinishReason: d.FinishReason}
	for _, tc := range d.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCallDeltaDump(tc))
	}
	if d.Usage != nil {
		u := DumpUsage(*d.Usage)
		out.Usage = &u
	}
	return out
}

// ErrorDump is the golden form of an *llm.Error (Err, the hidden cause, is
// left out).
type ErrorDump struct {
	Kind         string `json:"kind"`
	Provider     string `json:"provider,omitempty"`
	Status       int    `json:"status,omitempty"`
	Retryable    bool   `json:"retryable"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
	Code         string `json:"code,omitempty"`
	Param        string `json:"param,omitempty"`
	Msg          string `json:"msg,omitempty"`
}

// DumpError returns the golden form of err. An error that is not an
// *llm.Error dumps with kind "NOT llm.Error", which no golden should hold.
func DumpError(err error) *ErrorDump {
	if err == nil {
		return nil
	}
	var e *llm.Error
	if !errors.As(err, &e) {
		return &ErrorDump{Kind: "NOT llm.Error", Msg: err.Error()}
	}
	return &ErrorDump{Kind: e.Kind.String(), Provider: e.Provider, Status: e.Status, Retryable: e.Retryable,
		RetryAfterMS: e.RetryAfter.Milliseconds(), Code: e.Code, Param: e.Param, Msg: e.Msg}
}
