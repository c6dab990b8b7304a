package proxy

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/openai"
)

// embeddings handles POST /v1/embeddings.
func (s *Server) embeddings(ctx *fasthttp.RequestCtx, x *exchange) {
	body, e := readBody(ctx, x.rt.MaxBodyBytes)
	if e != nil {
		s.fail(ctx, x, e)
		return
	}
	if e := s.authenticate(ctx, x, bearer(ctx)); e != nil {
		s.fail(ctx, x, e)
		return
	}
	var req llm.EmbeddingRequest
	if !utf8.Valid(body) {
		s.fail(ctx, x, notUTF8())
		return
	}
	if err := req.UnmarshalJSON(body); err != nil {
		s.fail(ctx, x, invalidJSON(err))
		return
	}
	if err := req.Validate(); err != nil {
		s.fail(ctx, x, llm.AsError(err))
		return
	}
	x.user = req.User
	if e := s.resolveModel(x, req.Model, true); e != nil {
		s.fail(ctx, x, e)
		return
	}
	x.px.Embeddings = &req
	if e := s.admit(ctx, x); e != nil {
		s.fail(ctx, x, e)
		return
	}
	s.failover(ctx, x, leg{
		encode: func(t *Target) (llm.Outbound, error) { return t.adapter.EncodeEmbeddings(nil, &req, &t.Target) },
		answer: func(ctx *fasthttp.RequestCtx, x *exchange, t *Target, in *llm.Inbound) {
			s.answerEmbeddings(ctx, x, t, &req, in)
		},
	})
}

// answerEmbeddings relays the vectors in the encoding the client asked for:
// the Node SDK asks for base64 by default, and upstreams that ignore
// encoding_format answer with floats, which are converted here.
func (s *Server) answerEmbeddings(ctx *fasthttp.RequestCtx, x *exchange, t *Target, req *llm.EmbeddingRequest, in *llm.Inbound) {
	defer in.Body.Close()
	body, err := bodyBytes(in)
	if err != nil {
		s.fail(ctx, x, providerError(&llm.Error{Kind: llm.KindUpstream, Msg: "The upstream answer could not be read.", Err: err}, t))
		return
	}
	resp, err := t.adapter.DecodeEmbeddings(body)
	if err != nil {
		s.fail(ctx, x, providerError(&llm.Error{Kind: llm.KindUpstream, Msg: "The upstream answer could not be decoded.", Err: err}, t))
		return
	}
	if resp.Usage != nil {
		x.usage, x.haveUsage = *resp.Usage, true
	}
	rewrite := !t.openAIWire
	if req.EncodingFormat == "base64" {
		for i := range resp.Data {
			if len(resp.Data[i].Embedding) > 0 && resp.Data[i].Embedding[0] == '[' {
				b64, err := openai.FloatsToBase64(resp.Data[i].Embedding)
				if err != nil {
					s.fail(ctx, x, providerError(&llm.Error{Kind: llm.KindUpstream, Msg: "The upstream embedding could not be encoded.", Err: err}, t))
					return
				}
				resp.Data[i].Embedding = b64
				rewrite = true
			}
		}
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	if !rewrite {
		ctx.SetBody(body)
	} else {
		if resp.Object == "" {
			resp.Object = "list"
		}
		if resp.Model == "" {
			resp.Model = t.Model
		}
		for i := range resp.Data {
			if resp.Data[i].Object == "" {
				resp.Data[i].Object = "embedding"
			}
		}
		out, err := json.Marshal(resp)
		if err != nil {
			s.fail(ctx, x, &llm.Error{Kind: llm.KindInternal, Msg: "internal error", Err: err})
			return
		}
		ctx.SetBody(out)
	}
	x.finish(fasthttp.StatusOK, nil)
}

// models handles GET /v1/models and GET /v1/models/{id}: the aliases the
// caller's key may use.
func (s *Server) models(ctx *fasthttp.RequestCtx, x *exchange, path []byte) {
	if e := s.authenticate(ctx, x, bearer(ctx)); e != nil {
		s.fail(ctx, x, e)
		return
	}
	ids := make([]string, 0, len(x.rt.modelIDs))
	for _, id := range x.rt.modelIDs {
		if x.principal.Allows(id) {
			ids = append(ids, id)
		}
	}
	ctx.SetContentType("application/json")
	if len(path) > len("/models/") {
		want := string(path[len("/models/"):])
		for _, id := range ids {
			if id == want {
				b, _ := json.Marshal(modelObject{ID: id, Object: "model", Created: x.rt.created, OwnedBy: "aigw"})
				ctx.SetBody(b)
				x.finish(fasthttp.StatusOK, nil)
				return
			}
		}
		s.fail(ctx, x, &llm.Error{Kind: llm.KindNotFound, Code: "model_not_found", Param: "model",
			Msg: "The model `" + want + "` does not exist or you do not have access to it."})
		return
	}
	ctx.SetBody(openai.EncodeModelList(nil, ids, x.rt.created, "aigw"))
	x.finish(fasthttp.StatusOK, nil)
}

// modelObject is OpenAI's model object, answered by GET /v1/models/{id}.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}
