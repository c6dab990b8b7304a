package proxy

import (
	"github.com/aigw/aigw/providers/llm"
)

// codec is an adapter whose NewStreamDecoder returns its own concrete
// decoder type (the providers do not import proxy, so they cannot name
// StreamDecoder in their signatures).
type codec[D StreamDecoder] interface {
	EncodeChat(dst []byte, in *llm.Request, t *llm.Target) (llm.Outbound, error)
	DecodeChat(body []byte) (*llm.Response, error)
	NewStreamDecoder(in *llm.Request) D
	ClassifyError(status int, header func(key string) string, body []byte) error
	EncodeEmbeddings(dst []byte, in *llm.EmbeddingRequest, t *llm.Target) (llm.Outbound, error)
	DecodeEmbeddings(body []byte) (*llm.EmbeddingResponse, error)
	EncodeHealth(t *llm.Target) (llm.Outbound, error)
}

// adapt turns a provider codec into an Adapter.
func adapt[D StreamDecoder, C codec[D]](c C) Adapter { return adapted[D, C]{c} }

type adapted[D StreamDecoder, C codec[D]] struct{ c C }

func (a adapted[D, C]) EncodeChat(dst []byte, in *llm.Request, t *llm.Target) (llm.Outbound, error) {
	return a.c.EncodeChat(dst, in, t)
}
func (a adapted[D, C]) DecodeChat(body []byte) (*llm.Response, error) { return a.c.DecodeChat(body) }
func (a adapted[D, C]) NewStreamDecoder(in *llm.Request) StreamDecoder {
	return a.c.NewStreamDecoder(in)
}
func (a adapted[D, C]) ClassifyError(status int, header func(string) string, body []byte) error {
	return a.c.ClassifyError(status, header, body)
}
func (a adapted[D, C]) EncodeEmbeddings(dst []byte, in *llm.EmbeddingRequest, t *llm.Target) (llm.Outbound, error) {
	return a.c.EncodeEmbeddings(dst, in, t)
}
func (a adapted[D, C]) DecodeEmbeddings(body []byte) (*llm.EmbeddingResponse, error) {
	return a.c.DecodeEmbeddings(body)
}
func (a adapted[D, C]) EncodeHealth(t *llm.Target) (llm.Outbound, error) {
	return a.c.EncodeHealth(t)
}
