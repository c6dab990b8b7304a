package llm

// Target is one concrete upstream a model alias can be sent to, as the
// runtime snapshot resolved it from policy. Adapters read it to build the
// outbound request; it is immutable once built.
type Target struct {
	// ID names the target in logs and metrics (provider id + "/" + model).
	ID string
	// Provider is the policy's provider id; Type its kind ("openai",
	// "anthropic", "gemini", "azure", "mock").
	Provider string
	Type     string
	// BaseURL is the upstream's base, without a trailing slash, for example
	// "https://api.openai.com/v1".
	BaseURL string
	// Model is the upstream model (or Azure deployment) name.
	Model string
	// APIKey is the resolved credential, never logged.
	APIKey string
	// APIVersion is used by Azure (api-version) and Anthropic
	// (anthropic-version); empty means the adapter's default.
	APIVersion string
	// DefaultMaxTokens is sent when the provider requires an output cap and
	// the client gave none.
	DefaultMaxTokens int
}

// Outbound is an upstream HTTP request an adapter built. The transport sends
// it as is; it adds no header of its own beyond Host, Content-Length and
// User-Agent.
type Outbound struct {
	Method string
	// URL is absolute: scheme, host, path and query.
	URL    string
	Header []Header
	Body   []byte
	// Stream says the answer is an SSE stream.
	Stream bool
}

// Header is one outbound header field.
type Header struct{ Key, Value string }

// Inbound is an upstream's answer as the transport (or the built-in mock)
// received it: status and headers are complete, the body may still be
// arriving.
//
// The receiver must Close Body exactly once, whether or not it read it to
// the end; Close releases the connection (or returns it to its pool) and,
// for a stream, cancels the upstream request.
type Inbound struct {
	Status int
	// Header holds the answer's header fields, keys in canonical MIME form.
	Header []Header
	Body   interface {
		Read(p []byte) (int, error)
		Close() error
	}
}

// Get returns the first value of the header key (canonical MIME form, for
// example "Retry-After"), or "".
func (in *Inbound) Get(key string) string {
	for i := range in.Header {
		if in.Header[i].Key == key {
			return in.Header[i].Value
		}
	}
	return ""
}
