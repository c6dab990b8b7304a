package gemini

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// DecodeChat parses a 2xx generateContent answer into a chat completion.
//
//   - ID is "chatcmpl-" + responseId, or "chatcmpl-" + a hash of the body
//     when Gemini sent none; Model is modelVersion ("" when absent: the
//     adapter does not see the target here, the proxy names the model);
//     Created comes from the adapter's clock.
//   - Each candidate becomes a choice: its non-thought text parts
//     concatenated as the content, its functionCall parts as tool calls with
//     generated ids (see toolCallID) and arguments the compact JSON of args.
//   - Finish reasons map as finishReason does; a prompt blocked before any
//     candidate (promptFeedback.blockReason) answers one empty choice with
//     finish_reason content_filter.
//   - usageMetadata maps as usageFrom does.
//
// An answer that is not JSON, carries an error object, or has neither
// candidates nor a block reason is an *llm.Error of KindUpstream.
func (a *Adapter) DecodeChat(body []byte) (*llm.Response, error) {
	var r generateResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &llm.Error{Kind: llm.KindUpstream, Provider: ProviderType, Msg: "gemini: malformed answer", Err: err}
	}
	if r.Error != nil {
		return nil, statusError(0, r.Error, "")
	}
	out := &llm.Response{
		ID:      responseID(r.ResponseID, body),
		Object:  "chat.completion",
		Created: a.clock().Unix(),
		Model:   r.ModelVersion,
	}
	if r.UsageMetadata != nil {
		u := usageFrom(r.UsageMetadata)
		out.Usage = &u
	}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback == nil || r.PromptFeedback.BlockReason == "" {
			return nil, &llm.Error{Kind: llm.KindUpstream, Provider: ProviderType, Retryable: true, Msg: "gemini: answer without candidates"}
		}
		out.Choices = []llm.Choice{{
			Index:        0,
			Message:      llm.Message{Role: "assistant", HasContent: true},
			FinishReason: llm.FinishContentFilter,
		}}
		return out, nil
	}
	out.Choices = make([]llm.Choice, 0, len(r.Candidates))
	for i := range r.Candidates {
		c := &r.Candidates[i]
		var text strings.Builder
		var calls []llm.ToolCall
		if c.Content != nil {
			for j := range c.Content.Parts {
				p := &c.Content.Parts[j]
				switch {
				case p.FunctionCall != nil:
					args := compactArgs(p.FunctionCall.Args)
					calls = append(calls, llm.ToolCall{
						ID:   toolCallID(r.ResponseID, c.Index, len(calls), p.FunctionCall.Name, args, p.ThoughtSignature),
						Type: "function",
						Function: llm.FunctionCall{
							Name:      p.FunctionCall.Name,
							Arguments: args,
						},
					})
				case p.Thought:
					// Thought summaries are reasoning, not the answer.
				default:
					text.WriteString(p.Text)
				}
			}
		}
		msg := llm.Message{Role: "assistant", Content: text.String(), ToolCalls: calls}
		msg.HasContent = msg.Content != "" || len(calls) == 0
		out.Choices = append(out.Choices, llm.Choice{
			Index:        c.Index,
			Message:      msg,
			FinishReason: finishReason(c.FinishReason, len(calls) > 0),
		})
	}
	return out, nil
}

// finishReason maps a Gemini FinishReason to OpenAI's. STOP (and any other
// non-filter, non-length reason) becomes tool_calls when the candidate called
// functions; MAX_TOKENS becomes length; the safety family (SAFETY,
// RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY,
// IMAGE_PROHIBITED_CONTENT) becomes content_filter; everything else,
// including MALFORMED_FUNCTION_CALL, OTHER and values added later, becomes
// stop. An empty reason (a stream chunk mid-way) maps to "".
func finishReason(r string, hasCalls bool) string {
	switch r {
	case "":
		return ""
	case "MAX_TOKENS":
		return llm.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT":
		return llm.FinishContentFilter
	}
	if hasCalls {
		return llm.FinishToolCalls
	}
	return llm.FinishStop
}

// usageFrom converts Gemini's usage to the canonical one:
// PromptTokens = promptTokenCount + toolUsePromptTokenCount (both billed as
// input; the former already includes cachedContentTokenCount),
// CompletionTokens = candidatesTokenCount + thoughtsTokenCount (thoughts are
// billed as output), ReasoningTokens = thoughtsTokenCount, CachedTokens =
// cachedContentTokenCount, TotalTokens = PromptTokens + CompletionTokens
// (which is Gemini's totalTokenCount). Negative counts are read as 0.
func usageFrom(m *usageMetadata) llm.Usage {
	nn := func(v int) int { return max(v, 0) }
	u := llm.Usage{
		PromptTokens:     nn(m.PromptTokenCount) + nn(m.ToolUsePromptTokenCount),
		CompletionTokens: nn(m.CandidatesTokenCount) + nn(m.ThoughtsTokenCount),
		CachedTokens:     nn(m.CachedContentTokenCount),
		ReasoningTokens:  nn(m.ThoughtsTokenCount),
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// responseID derives the completion id.
func responseID(geminiID string, body []byte) string {
	if geminiID != "" {
		return "chatcmpl-" + geminiID
	}
	sum := sha256.Sum256(body)
	return "chatcmpl-" + hex.EncodeToString(sum[:12])
}

// compactArgs returns the function call arguments as compact JSON text, "{}"
// when Gemini sent none.
func compactArgs(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "{}"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "{}"
	}
	return b.String()
}

// signatureSep separates the generated part of a tool call id from the
// thought signature it carries.
const signatureSep = "__thought__"

// toolCallID generates the id of a Gemini function call. Gemini does not
// number its calls, so the id is derived deterministically from what
// identifies the call: "call_" + 24 hex digits of a SHA-256 over the
// response id, the candidate index, the call's position among the
// candidate's calls, its name and its arguments. The same answer therefore
// gets the same ids whether it was streamed or not.
//
// When Gemini attached a thought signature to the call, the id also carries
// it ("call_<hash>__thought__<signature>") so that EncodeChat can hand it
// back on the next turn, as Gemini 3 models require. Clients treat ids as
// opaque; such ids are long (signatures run to kilobytes).
func toolCallID(responseID string, cand, n int, name, args, signature string) string {
	h := sha256.New()
	h.Write([]byte(responseID))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(cand)))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(n)))
	h.Write([]byte{0})
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(args))
	var sum [sha256.Size]byte
	id := "call_" + hex.EncodeToString(h.Sum(sum[:0])[:12])
	if signature != "" && validSignature(signature) {
		id += signatureSep + signature
	}
	return id
}

// splitToolCallID splits an id made by toolCallID into its base and thought
// signature; ids from elsewhere have no signature.
func splitToolCallID(id string) (base, signature string) {
	i := strings.Index(id, signatureSep)
	if i < 0 {
		return id, ""
	}
	sig := id[i+len(signatureSep):]
	if !validSignature(sig) {
		return id, ""
	}
	return id[:i], sig
}

// validSignature reports whether s looks like a base64 (standard or URL-safe)
// thought signature, so that a foreign id that happens to contain the
// separator is not sent to Gemini as a corrupt signature.
func validSignature(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '+', c == '/', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return true
}
