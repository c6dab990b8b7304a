package openai

import (
	"net/url"
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// EncodeHealth builds the cheap call the gateway's active health check
// makes: GET t.BaseURL + "/models" (a listing, no tokens spent), with the
// same credential header as a chat request.
func (Adapter) EncodeHealth(t *llm.Target) (llm.Outbound, error) {
	if t == nil || t.BaseURL == "" {
		return llm.Outbound{}, &llm.Error{Kind: llm.KindInternal, Msg: "internal error", Err: errNoTarget}
	}
	return llm.Outbound{Method: "GET", URL: t.BaseURL + "/models", Header: headers(t, false)}, nil
}

// EncodeHealth builds GET {base}/openai/models?api-version={version}, the
// Azure OpenAI resource's model listing.
func (a AzureAdapter) EncodeHealth(t *llm.Target) (llm.Outbound, error) {
	if t == nil || t.BaseURL == "" {
		return llm.Outbound{}, &llm.Error{Kind: llm.KindInternal, Msg: "internal error", Err: errNoTarget}
	}
	version := t.APIVersion
	if version == "" {
		version = DefaultAzureAPIVersion
	}
	base := strings.TrimRight(t.BaseURL, "/")
	if !strings.HasSuffix(base, "/openai") {
		base += "/openai"
	}
	return llm.Outbound{Method: "GET", URL: base + "/models?api-version=" + url.QueryEscape(version),
		Header: azureHeaders(t, false)}, nil
}
