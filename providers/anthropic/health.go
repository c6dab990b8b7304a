package anthropic

import (
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// EncodeHealth builds the cheap call the gateway's active health check
// makes: GET {base}/v1/models (the Models API listing; no tokens spent),
// with the x-api-key and anthropic-version headers.
func (Adapter) EncodeHealth(t *llm.Target) (llm.Outbound, error) {
	if t == nil {
		return llm.Outbound{}, &llm.Error{Kind: llm.KindInternal, Provider: ProviderName, Msg: "internal error", Err: errNilArg}
	}
	version := t.APIVersion
	if version == "" {
		version = DefaultAPIVersion
	}
	u := strings.TrimSuffix(messagesURL(t.BaseURL), "/messages") + "/models?limit=1"
	return llm.Outbound{Method: "GET", URL: u, Header: []llm.Header{
		{Key: "x-api-key", Value: t.APIKey},
		{Key: "anthropic-version", Value: version},
		{Key: "accept", Value: "application/json"},
	}}, nil
}
