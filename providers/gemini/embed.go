package gemini

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/aigw/aigw/providers/llm"
)

// EncodeEmbeddings builds the Gemini request for OpenAI-style embeddings.
//
// A single string input goes to models/<model>:embedContent as
// {"model":"models/<model>","content":{"parts":[{"text":...}]}}; a list of
// strings goes to models/<model>:batchEmbedContents as {"requests":[...]},
// each request naming its model, as the batch method requires. dimensions
// becomes outputDimensionality. Token-array inputs (lists of integers) have
// no Gemini counterpart and are refused, as are empty lists. encoding_format
// and user are not sent: Gemini always answers floats (see DecodeEmbeddings).
func (a *Adapter) EncodeEmbeddings(dst []byte, in *llm.EmbeddingRequest, t *llm.Target) (llm.Outbound, error) {
	if in == nil {
		return llm.Outbound{}, llm.Errorf(llm.KindInternal, "gemini: no request")
	}
	if t == nil {
		return llm.Outbound{}, llm.Errorf(llm.KindInternal, "gemini: no target")
	}
	texts, single, err := embeddingInputs(in.Input)
	if err != nil {
		return llm.Outbound{}, err
	}
	if in.Dimensions != nil && *in.Dimensions < 1 {
		return llm.Outbound{}, invalid("dimensions", "dimensions must be at least 1")
	}
	model := "models/" + modelName(t.Model)
	reqs := make([]embedRequest, len(texts))
	for i, s := range texts {
		reqs[i] = embedRequest{
			Model:                model,
			Content:              content{Parts: []part{{Text: s}}},
			OutputDimensionality: in.Dimensions,
		}
	}

	method := "batchEmbedContents"
	var v any = &batchEmbedRequest{Requests: reqs}
	if single {
		method, v = "embedContent", &reqs[0]
	}
	u, err := modelURL(t, method)
	if err != nil {
		return llm.Outbound{}, err
	}
	body, err := marshalAppend(dst, v)
	if err != nil {
		return llm.Outbound{}, err
	}
	return llm.Outbound{Method: "POST", URL: u, Header: headers(t), Body: body}, nil
}

// embeddingInputs reads OpenAI's input: a string (single) or a non-empty
// list of strings.
func embeddingInputs(raw json.RawMessage) (texts []string, single bool, _ error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, false, invalid("input", "input is required")
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, false, invalid("input", "malformed input")
		}
		return []string{s}, true, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, false, invalid("input", "malformed input")
		}
		if len(items) == 0 {
			return nil, false, invalid("input", "input must not be empty")
		}
		texts = make([]string, len(items))
		for i, it := range items {
			it = bytes.TrimSpace(it)
			if len(it) == 0 || it[0] != '"' {
				return nil, false, invalid("input["+strconv.Itoa(i)+"]", "gemini embeds text only; token arrays are not supported")
			}
			if err := json.Unmarshal(it, &texts[i]); err != nil {
				return nil, false, invalid("input["+strconv.Itoa(i)+"]", "malformed input")
			}
		}
		return texts, false, nil
	default:
		return nil, false, invalid("input", "input must be a string or a list of strings")
	}
}

// DecodeEmbeddings parses an embedContent ({"embedding":{"values":[...]}})
// or batchEmbedContents ({"embeddings":[{"values":[...]}, ...]}) answer.
// Each embedding keeps Gemini's float array verbatim (compacted) as its JSON;
// a client that asked for encoding_format base64 needs the caller to convert.
// Model is "" (the adapter does not see the target here) and Usage is nil:
// Gemini's embedding answers carry no token counts, the proxy estimates them.
// An answer without embeddings, or with values that are not a JSON array, is
// an *llm.Error of KindUpstream. Values are checked to be a list of numbers.
func (a *Adapter) DecodeEmbeddings(body []byte) (*llm.EmbeddingResponse, error) {
	var r embedResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &llm.Error{Kind: llm.KindUpstream, Provider: ProviderType, Msg: "gemini: malformed embeddings answer", Err: err}
	}
	var list []contentEmbedding
	switch {
	case r.Embedding != nil:
		list = []contentEmbedding{*r.Embedding}
	case len(r.Embeddings) > 0:
		list = r.Embeddings
	default:
		return nil, &llm.Error{Kind: llm.KindUpstream, Provider: ProviderType, Msg: "gemini: embeddings answer without embeddings"}
	}
	out := &llm.EmbeddingResponse{Object: "list", Data: make([]llm.Embedding, len(list))}
	for i := range list {
		v := bytes.TrimSpace(list[i].Values)
		var b bytes.Buffer
		var floats []float64
		if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &floats) != nil || json.Compact(&b, v) != nil {
			return nil, &llm.Error{Kind: llm.KindUpstream, Provider: ProviderType, Msg: "gemini: embedding " + strconv.Itoa(i) + " has no values array"}
		}
		out.Data[i] = llm.Embedding{Object: "embedding", Index: i, Embedding: json.RawMessage(b.Bytes())}
	}
	return out, nil
}
