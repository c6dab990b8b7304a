package llm

// Usage is a cumulative token count for one request.
//
// The fields follow OpenAI's conventions whatever the provider: PromptTokens
// includes CachedTokens, CompletionTokens includes ReasoningTokens. Adapters
// convert providers that count differently (Anthropic reports cache reads and
// writes apart from input) so that every layer above can rely on this.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`

	// CachedTokens are prompt tokens read from the provider's prompt cache.
	CachedTokens int `json:"-"`
	// CacheWriteTokens are prompt tokens written to the provider's prompt
	// cache (Anthropic bills them apart).
	CacheWriteTokens int `json:"-"`
	// ReasoningTokens are completion tokens spent on hidden reasoning.
	ReasoningTokens int `json:"-"`

	// Estimated is true when the figures are the gateway's own estimate
	// because the upstream reported none.
	Estimated bool `json:"-"`
}

// Merge folds a later snapshot into u. Providers report usage piecewise (an
// input count at the start of a stream, an output count at the end); a zero
// field in next never erases a figure already known.
func (u *Usage) Merge(next Usage) {
	if next.PromptTokens > 0 {
		u.PromptTokens = next.PromptTokens
	}
	if next.CompletionTokens > 0 {
		u.CompletionTokens = next.CompletionTokens
	}
	if next.CachedTokens > 0 {
		u.CachedTokens = next.CachedTokens
	}
	if next.CacheWriteTokens > 0 {
		u.CacheWriteTokens = next.CacheWriteTokens
	}
	if next.ReasoningTokens > 0 {
		u.ReasoningTokens = next.ReasoningTokens
	}
	u.Estimated = u.Estimated && next.Estimated
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
}
