package cache

import (
	"bytes"

	"github.com/aigw/aigw/providers/llm"
)

// Rule is an org's cache policy, as far as Cacheable needs it.
type Rule struct {
	// TemperatureZeroOnly limits the cache to requests that set temperature
	// to 0 explicitly. An absent temperature is not 0: OpenAI's default is
	// 1 (Anthropic's and Gemini's too), and sampled answers are not worth
	// replaying to a client that did not ask for determinism. When false,
	// any temperature is cacheable: the client gets an answer the model
	// gave, once, to the same request.
	TemperatureZeroOnly bool
}

// Cacheable reports whether r may be looked up in and stored into the
// cache under rule. Besides rule, it always excludes requests whose answer
// an Entry cannot replay in both formats:
//
//   - n > 1 (several choices; an Entry holds one);
//   - logprobs true or any top_logprobs (a streamed replay has no
//     logprobs);
//   - audio output (an audio parameter).
//
// A nil request or one without messages is not cacheable.
func Cacheable(r *llm.Request, rule Rule) bool {
	if r == nil || len(r.Messages) == 0 {
		return false
	}
	if r.N != nil && *r.N > 1 {
		return false
	}
	if v, ok := r.Extra["logprobs"]; ok && bytes.Equal(bytes.TrimSpace(v), []byte("true")) {
		return false
	}
	if v, ok := r.Extra["top_logprobs"]; ok && !isAbsentJSON(v) {
		return false
	}
	if v, ok := r.Extra["audio"]; ok && !isAbsentJSON(v) {
		return false
	}
	if rule.TemperatureZeroOnly && (r.Temperature == nil || *r.Temperature != 0) {
		return false
	}
	return true
}
