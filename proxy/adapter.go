package proxy

import (
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// Adapter translates between aigw's canonical types and one provider's wire
// format. Implementations live in providers/<name>; they are stateless, do no
// I/O and are safe for concurrent use.
type Adapter interface {
	// EncodeChat builds the upstream request for a chat completion. dst is
	// a scratch buffer the body may be appended to (it may be nil).
	EncodeChat(dst []byte, in *llm.Request, t *llm.Target) (llm.Outbound, error)
	// DecodeChat parses a 2xx non-stream answer.
	DecodeChat(body []byte) (*llm.Response, error)
	// NewStreamDecoder returns a decoder for one stream answering in.
	NewStreamDecoder(in *llm.Request) StreamDecoder
	// ClassifyError turns a non-2xx answer into an *llm.Error with the
	// right Kind and Retryable flag. header looks up a response header.
	ClassifyError(status int, header func(key string) string, body []byte) error

	// EncodeEmbeddings builds the upstream request for embeddings.
	EncodeEmbeddings(dst []byte, in *llm.EmbeddingRequest, t *llm.Target) (llm.Outbound, error)
	// DecodeEmbeddings parses a 2xx embeddings answer.
	DecodeEmbeddings(body []byte) (*llm.EmbeddingResponse, error)
	// EncodeHealth builds the active health check's request: a cheap
	// call such as a models listing.
	EncodeHealth(t *llm.Target) (llm.Outbound, error)
}

// StreamDecoder decodes one upstream SSE stream into canonical deltas. It is
// used by one goroutine at a time and for one stream only.
type StreamDecoder interface {
	// Decode appends the deltas carried by ev to dst. An upstream error
	// event is returned as an *llm.Error.
	Decode(ev *sse.Event, dst []llm.Delta) ([]llm.Delta, error)
	// Usage returns the cumulative usage seen so far, and whether any was.
	Usage() (llm.Usage, bool)
	// Done reports whether the stream's terminal event was seen.
	Done() bool
}
