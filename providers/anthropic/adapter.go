package anthropic

import (
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// ProviderName is the Provider field of the *llm.Error values this package
// returns. The proxy may replace it with the target's policy id.
const ProviderName = "anthropic"

// DefaultAPIVersion is the anthropic-version header sent when the target
// names none.
const DefaultAPIVersion = "2023-06-01"

// DefaultMaxTokens is the max_tokens sent when neither the client nor the
// target gives an output cap (Anthropic requires one).
const DefaultMaxTokens = 4096

// Adapter translates canonical chat requests to Anthropic's Messages API and
// its answers back. The zero value is ready to use; an Adapter is stateless
// and safe for concurrent use.
//
// It satisfies the method set of proxy.Adapter except that NewStreamDecoder
// returns the concrete *StreamDecoder (Go has no covariant results; the
// proxy wraps it).
type Adapter struct {
	// Now returns the current time, used for Response.Created and
	// Delta.Created (Anthropic's answers carry no timestamp) and for
	// Retry-After dates. Nil means time.Now.
	Now func() time.Time
}

func (a Adapter) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// EncodeEmbeddings always fails: Anthropic has no embeddings API. The error
// is an *llm.Error of kind KindInvalidRequest with Param "model".
func (Adapter) EncodeEmbeddings(dst []byte, in *llm.EmbeddingRequest, t *llm.Target) (llm.Outbound, error) {
	return llm.Outbound{}, errNoEmbeddings()
}

// DecodeEmbeddings always fails: Anthropic has no embeddings API. The error
// is an *llm.Error of kind KindInvalidRequest.
func (Adapter) DecodeEmbeddings(body []byte) (*llm.EmbeddingResponse, error) {
	return nil, errNoEmbeddings()
}

func errNoEmbeddings() *llm.Error {
	return &llm.Error{
		Kind:     llm.KindInvalidRequest,
		Provider: ProviderName,
		Msg:      "embeddings are not supported by anthropic",
		Param:    "model",
	}
}

// invalid builds the KindInvalidRequest error EncodeChat and
// DecodeMessagesRequest return.
func invalid(param, msg string) *llm.Error {
	return &llm.Error{Kind: llm.KindInvalidRequest, Provider: ProviderName, Msg: msg, Param: param}
}

// badAnswer builds the error for a 2xx answer that cannot be understood.
func badAnswer(msg string, cause error) *llm.Error {
	return &llm.Error{Kind: llm.KindUpstream, Provider: ProviderName, Msg: msg, Err: cause}
}

// usageState accumulates Anthropic usage objects into one cumulative
// snapshot. Anthropic reports usage piecewise (input at message_start,
// output at message_delta); every figure is cumulative, so a later value
// replaces an earlier one and an absent field keeps what is known.
type usageState struct {
	input, output, cacheWrite, cacheRead, thinking int64
	seen                                           bool
}

// maxTokenCount bounds each figure so that sums never overflow an int.
const maxTokenCount = 1 << 40

func clampCount(p *int64) int64 {
	v := *p
	if v < 0 {
		return 0
	}
	if v > maxTokenCount {
		return maxTokenCount
	}
	return v
}

func (s *usageState) merge(u *wireUsage) {
	if u == nil {
		return
	}
	s.seen = true
	if u.InputTokens != nil {
		s.input = clampCount(u.InputTokens)
	}
	if u.OutputTokens != nil {
		s.output = clampCount(u.OutputTokens)
	}
	if u.CacheCreationInputTokens != nil {
		s.cacheWrite = clampCount(u.CacheCreationInputTokens)
	}
	if u.CacheReadInputTokens != nil {
		s.cacheRead = clampCount(u.CacheReadInputTokens)
	}
	if d := u.OutputTokensDetails; d != nil && d.ThinkingTokens != nil {
		s.thinking = clampCount(d.ThinkingTokens)
	}
}

// canonical converts to OpenAI's convention (see the package doc).
func (s *usageState) canonical() llm.Usage {
	prompt := int(s.input + s.cacheRead + s.cacheWrite)
	u := llm.Usage{
		PromptTokens:     prompt,
		CompletionTokens: int(s.output),
		TotalTokens:      prompt + int(s.output),
		CachedTokens:     int(s.cacheRead),
		CacheWriteTokens: int(s.cacheWrite),
		ReasoningTokens:  int(min(s.thinking, s.output)),
	}
	return u
}

// finishReason maps Anthropic's stop_reason to OpenAI's finish_reason.
// Unknown reasons map to "stop": the turn did end.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return llm.FinishLength
	case "tool_use":
		return llm.FinishToolCalls
	case "refusal":
		return llm.FinishContentFilter
	default: // end_turn, stop_sequence, pause_turn, future reasons
		return llm.FinishStop
	}
}

// stopReason maps OpenAI's finish_reason back to Anthropic's stop_reason.
func stopReason(finish string) string {
	switch finish {
	case llm.FinishLength:
		return "max_tokens"
	case llm.FinishToolCalls, "function_call":
		return "tool_use"
	case llm.FinishContentFilter:
		return "refusal"
	default:
		return "end_turn"
	}
}
