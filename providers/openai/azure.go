package openai

import (
	"net/url"
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// DefaultAzureAPIVersion is the api-version AzureAdapter sends when the
// target names none: the latest generally available (non-preview) version of
// Azure OpenAI's data-plane inference API in Microsoft's REST reference
// (specification/cognitiveservices/data-plane/AzureOpenAI/inference/stable/
// 2024-10-21). It documents chat completions with tools, image parts and
// stream_options.include_usage, and embeddings with dimensions and
// encoding_format.
const DefaultAzureAPIVersion = "2024-10-21"

// AzureAdapter translates for Azure OpenAI deployments. Azure speaks OpenAI's
// wire format for bodies, answers, streams and errors, so everything but the
// request line and the credential is Adapter's (embedded, so DecodeChat,
// NewStreamDecoder and DecodeEmbeddings are the same; ClassifyError differs
// only in dropping Azure's numeric error codes). The
// zero value is ready to use; it is stateless and safe for concurrent use.
//
// Targets are read as follows:
//
//   - BaseURL is the resource endpoint, for example
//     "https://my-resource.openai.azure.com". A base that already ends in
//     "/openai" is accepted as well (the segment is not doubled).
//   - Model is the deployment name (path-escaped into the URL).
//   - APIVersion is the api-version query parameter; empty means
//     DefaultAzureAPIVersion.
//   - APIKey, when set, goes in the api-key header (never as
//     Authorization).
type AzureAdapter struct {
	Adapter
}

// EncodeChat builds the POST to
//
//	{base}/openai/deployments/{deployment}/chat/completions?api-version={version}
//
// with the body Adapter.EncodeChat builds (stream_options.include_usage
// forced on for streams, dropped otherwise). "model" stays in the body, set
// to the deployment name, as Azure's own SDKs send it; Azure routes by the
// URL and does not require it. Headers: Content-Type, Accept and, when
// t.APIKey is set, api-key. in and t are not modified.
func (a AzureAdapter) EncodeChat(dst []byte, in *llm.Request, t *llm.Target) (llm.Outbound, error) {
	u, err := azureURL(t, "chat/completions")
	if err != nil {
		return llm.Outbound{}, err
	}
	out, err := a.Adapter.EncodeChat(dst, in, t)
	if err != nil {
		return llm.Outbound{}, err
	}
	out.URL = u
	out.Header = azureHeaders(t, out.Stream)
	return out, nil
}

// EncodeEmbeddings builds the POST to
// {base}/openai/deployments/{deployment}/embeddings?api-version={version}
// with Adapter.EncodeEmbeddings' body. Headers as for EncodeChat.
func (a AzureAdapter) EncodeEmbeddings(dst []byte, in *llm.EmbeddingRequest, t *llm.Target) (llm.Outbound, error) {
	u, err := azureURL(t, "embeddings")
	if err != nil {
		return llm.Outbound{}, err
	}
	out, err := a.Adapter.EncodeEmbeddings(dst, in, t)
	if err != nil {
		return llm.Outbound{}, err
	}
	out.URL = u
	out.Header = azureHeaders(t, false)
	return out, nil
}

// ClassifyError is Adapter.ClassifyError, except that a numeric error code
// is dropped: Azure puts the HTTP status there ("429", "401"), which tells a
// client nothing the status does not, and would hide the gateway's default
// code for the kind. Named codes (DeploymentNotFound, content_filter) are
// kept.
func (a AzureAdapter) ClassifyError(status int, header func(key string) string, body []byte) error {
	e := classify(status, header, body)
	if isDigits(e.Code) {
		e.Code = ""
	}
	return e
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

const errNoDeployment = targetError("openai: azure target without a deployment (model)")

// azureURL returns the deployment URL of an operation.
func azureURL(t *llm.Target, op string) (string, error) {
	if t == nil || t.BaseURL == "" {
		return "", &llm.Error{Kind: llm.KindInternal, Msg: "internal error", Err: errNoTarget}
	}
	if t.Model == "" {
		return "", &llm.Error{Kind: llm.KindInternal, Msg: "internal error", Err: errNoDeployment}
	}
	version := t.APIVersion
	if version == "" {
		version = DefaultAzureAPIVersion
	}
	base := strings.TrimRight(t.BaseURL, "/")
	if !strings.HasSuffix(base, "/openai") {
		base += "/openai"
	}
	return base + "/deployments/" + url.PathEscape(t.Model) + "/" + op + "?api-version=" + url.QueryEscape(version), nil
}

func azureHeaders(t *llm.Target, stream bool) []llm.Header {
	accept := "application/json"
	if stream {
		accept = "text/event-stream"
	}
	h := make([]llm.Header, 2, 3)
	h[0] = llm.Header{Key: "Content-Type", Value: "application/json"}
	h[1] = llm.Header{Key: "Accept", Value: accept}
	if t.APIKey != "" {
		h = append(h, llm.Header{Key: "api-key", Value: t.APIKey})
	}
	return h
}
