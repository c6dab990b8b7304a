// Package policy holds what the admission stages share: who is calling
// (Principal) and what is being admitted (Exchange). Each stage lives in a
// sub-package (auth, quota, budget, compress, cache, route, guard); the proxy
// runs them in a fixed order.
package policy

import (
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// Principal is the authenticated caller: an organisation and one of its
// keys. It is immutable and shared by every request made with that key in
// one config generation.
type Principal struct {
	Org   string
	KeyID string
	// Models lists the model aliases the key may use; AllModels overrides it.
	Models    map[string]struct{}
	AllModels bool
	// Priority is the queue class every request of this key starts with
	// (quota.ClassEmergency for an emergency-override key; 0 otherwise).
	Priority int
}

// Allows reports whether the principal may use the model alias.
func (p *Principal) Allows(model string) bool {
	if p.AllModels {
		return true
	}
	_, ok := p.Models[model]
	return ok
}

// Exchange is what admission decides on: one request from one principal.
// It is owned by the request's goroutine.
type Exchange struct {
	RequestID string
	Principal *Principal
	// Model is the configured alias the client asked for.
	Model string
	// Chat is the parsed request for chat completions, nil otherwise.
	Chat *llm.Request
	// Embeddings is the parsed request for embeddings, nil otherwise.
	Embeddings *llm.EmbeddingRequest
	// EstimatedPromptTokens is the admission estimate of the input.
	EstimatedPromptTokens int
	// Start is when the gateway received the request.
	Start time.Time
	// PinTarget is what the client's debug pin header asked for: a target
	// id or a provider id, "" when none. The proxy copies the header
	// verbatim; the route stage decides whether the caller may pin and
	// refuses the request when it may not.
	PinTarget string
	// TokensSaved is the prompt tokens compression removed.
	TokensSaved int
	// Compressed is set once compression has run on the request (by the
	// compress stage, or earlier by the budget stage's cost-aware path):
	// it runs at most once per request.
	Compressed bool
	// DowngradedFrom is the model alias the client asked for when the
	// budget stage moved the request to the org's cheaper model (Model);
	// "" otherwise.
	DowngradedFrom string
	// Priority is the request's own queue class for admission (higher is
	// served first and shed last), e.g. quota.ClassEmergency for a key
	// with the emergency-override scope; 0 for ordinary requests. The
	// org's tier and priority mode raise it further.
	Priority int
}
