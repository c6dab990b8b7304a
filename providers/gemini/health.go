package gemini

import (
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// EncodeHealth builds the cheap call the gateway's active health check
// makes: GET {base}/v1beta/models?pageSize=1 (a listing, no tokens spent)
// with the x-goog-api-key header.
func (a *Adapter) EncodeHealth(t *llm.Target) (llm.Outbound, error) {
	if t == nil {
		return llm.Outbound{}, llm.Errorf(llm.KindInternal, "gemini: no target")
	}
	base := strings.TrimRight(t.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	return llm.Outbound{Method: "GET", URL: base + "/v1beta/models?pageSize=1", Header: headers(t)}, nil
}
