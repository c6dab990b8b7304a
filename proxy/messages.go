package proxy

import (
	"bytes"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/llm"
)

// routeMessages labels the Anthropic-native route.
const routeMessages = "messages"

// messages handles POST /v1/messages for clients built on Anthropic's SDK.
// The key may come as x-api-key or as Authorization: Bearer (current SDKs
// send the latter). Errors are answered in Anthropic's shape. An Anthropic
// target gets the client's body as it came (usage is still observed); any
// other target gets the request translated, and its answer is translated
// back.
func (s *Server) messages(ctx *fasthttp.RequestCtx, x *exchange) {
	x.native = true
	body, e := readBody(ctx, x.rt.MaxBodyBytes)
	if e != nil {
		s.fail(ctx, x, e)
		return
	}
	key := ctx.Request.Header.Peek("x-api-key")
	if len(key) == 0 {
		key = bearer(ctx)
	}
	if e := s.authenticate(ctx, x, bytes.TrimSpace(key)); e != nil {
		s.fail(ctx, x, e)
		return
	}
	if !utf8.Valid(body) {
		s.fail(ctx, x, notUTF8())
		return
	}
	req, err := anthropic.DecodeMessagesRequest(body)
	if err != nil {
		s.fail(ctx, x, invalidJSON(err))
		return
	}
	x.stream = req.Stream
	x.user = req.User
	if e := s.resolveModel(x, req.Model, false); e != nil {
		s.fail(ctx, x, e)
		return
	}
	x.px.Chat = req
	if e := s.admit(ctx, x); e != nil {
		s.fail(ctx, x, e)
		return
	}
	beta := string(ctx.Request.Header.Peek("anthropic-beta"))
	s.failover(ctx, x, leg{
		encode: func(t *Target) (llm.Outbound, error) {
			if t.Type == "anthropic" {
				return anthropic.EncodeNative(body, req.Model, beta, req.Stream, &t.Target)
			}
			return t.adapter.EncodeChat(encodeRoom(body), req, &t.Target)
		},
		answer: s.answerMessages,
		stream: req.Stream,
		req:    req,
	})
}

// answerMessages relays a non-stream answer to an Anthropic-native client.
func (s *Server) answerMessages(ctx *fasthttp.RequestCtx, x *exchange, t *Target, in *llm.Inbound) {
	defer in.Body.Close()
	body, err := bodyBytes(in)
	if err != nil {
		s.fail(ctx, x, providerError(&llm.Error{Kind: llm.KindUpstream, Msg: "The upstream answer could not be read.", Err: err}, t))
		return
	}
	resp, err := t.adapter.DecodeChat(body)
	if err != nil {
		s.fail(ctx, x, providerError(&llm.Error{Kind: llm.KindUpstream, Msg: "The upstream answer could not be decoded.", Err: err}, t))
		return
	}
	if resp.Usage != nil {
		x.usage, x.haveUsage = *resp.Usage, true
	}
	x.firstToken = s.opts.Now().Sub(x.start)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	if t.Type == "anthropic" {
		ctx.SetBody(body)
	} else {
		if resp.Model == "" {
			resp.Model = t.Model
		}
		ctx.SetBody(anthropic.EncodeMessagesResponse(nil, resp))
	}
	x.finish(fasthttp.StatusOK, nil)
}

// writeAnthropicError answers an Anthropic-native client in its error shape.
func writeAnthropicError(ctx *fasthttp.RequestCtx, e *llm.Error) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(anthropic.ErrorStatus(e.Kind))
	ctx.SetContentType("application/json")
	setRetryHeaders(&ctx.Response.Header, e)
	ctx.SetBody(anthropic.EncodeError(nil, e))
}
