package proxy

import (
	"bytes"
	"errors"
	"runtime/debug"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/llm"
)

// servePublic is the public listener's handler: it stamps the request id and
// dispatches by path. Paths are accepted with and without the /v1 prefix.
func (s *Server) servePublic(ctx *fasthttp.RequestCtx) {
	defer s.recoverPanic(ctx)
	id := s.requestID(ctx)
	ctx.Response.Header.Set("x-request-id", id.echoed())
	path := ctx.Path()
	if bytes.HasPrefix(path, []byte("/v1/")) {
		path = path[3:]
	}
	rt := s.rt.Load()
	switch {
	case string(path) == "/chat/completions":
		if !s.allowMethod(ctx, rt, id, fasthttp.MethodPost) {
			return
		}
		s.chat(ctx, s.newExchange(rt, id, routeChat))
	case string(path) == "/messages":
		if !s.allowMethod(ctx, rt, id, fasthttp.MethodPost) {
			return
		}
		s.messages(ctx, s.newExchange(rt, id, routeMessages))
	case string(path) == "/embeddings":
		if !s.allowMethod(ctx, rt, id, fasthttp.MethodPost) {
			return
		}
		s.embeddings(ctx, s.newExchange(rt, id, routeEmbeddings))
	case string(path) == "/models" || bytes.HasPrefix(path, []byte("/models/")):
		if !s.allowMethod(ctx, rt, id, fasthttp.MethodGet) {
			return
		}
		s.models(ctx, s.newExchange(rt, id, routeModels), path)
	default:
		x := s.newExchange(rt, id, routeOther)
		s.fail(ctx, x, &llm.Error{Kind: llm.KindNotFound, Code: "unknown_url",
			Msg: "Invalid URL (" + string(ctx.Method()) + " " + string(ctx.Path()) + ")."})
	}
}

// allowMethod answers 405 for a wrong method and reports whether to go on.
func (s *Server) allowMethod(ctx *fasthttp.RequestCtx, rt *Runtime, id requestIDs, method string) bool {
	if string(ctx.Method()) == method {
		return true
	}
	x := s.newExchange(rt, id, routeOther)
	ctx.Response.Header.Set("Allow", method)
	e := &llm.Error{Kind: llm.KindInvalidRequest, Code: "method_not_allowed",
		Msg: "Method " + string(ctx.Method()) + " is not allowed on " + string(ctx.Path()) + "; use " + method + "."}
	writeError(ctx, e)
	ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	x.finish(fasthttp.StatusMethodNotAllowed, e)
	return false
}

// requestID gives the request a fresh gateway id and keeps the client's
// x-request-id, if it sent a usable one.
func (s *Server) requestID(ctx *fasthttp.RequestCtx) requestIDs {
	id := requestIDs{own: s.ids.next()}
	if v := ctx.Request.Header.Peek("X-Request-Id"); validClientID(v) {
		id.client = string(v)
	}
	return id
}

// fail answers with e (OpenAI's shape) and finishes the exchange.
func (s *Server) fail(ctx *fasthttp.RequestCtx, x *exchange, e *llm.Error) {
	if x.native {
		writeAnthropicError(ctx, e)
		x.finish(ctx.Response.StatusCode(), e)
		return
	}
	writeError(ctx, e)
	x.finish(statusOf(e), e)
}

// serveParseError answers requests fasthttp could not parse (oversize
// headers, bad request line) in OpenAI's shape.
func (s *Server) serveParseError(ctx *fasthttp.RequestCtx, err error) {
	e := &llm.Error{Kind: llm.KindInvalidRequest, Code: "bad_request", Msg: "The request could not be parsed.", Err: err}
	status := fasthttp.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		e.Code, e.Msg = "headers_too_large", "Request headers are larger than the gateway accepts."
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e.Kind, e.Code, e.Msg = llm.KindTooLarge, "request_too_large", "Request body is larger than the gateway accepts."
		status = fasthttp.StatusRequestEntityTooLarge
	}
	ctx.Response.Header.Set("x-request-id", s.ids.next())
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("x-should-retry", "false")
	ctx.SetBody(appendOpenAIError(nil, e))
	ctx.SetConnectionClose()
	s.metrics.Requests.WithLabelValues(routeOther, "unknown", itoa(status)).Inc()
	s.metrics.Errors.WithLabelValues(e.Kind.String()).Inc()
}

// recoverPanic keeps one bad request from taking the gateway (and every
// stream it relays) down: the panic is logged with its stack, counted in
// aigw_panics_total, and answered with a 500 when nothing was sent yet. Tests
// assert the counter stays at zero.
func (s *Server) recoverPanic(ctx *fasthttp.RequestCtx) {
	v := recover()
	if v == nil {
		return
	}
	s.metrics.Panics.Inc()
	s.log.Error("panic in handler", "panic", v, "stack", string(debug.Stack()))
	e := &llm.Error{Kind: llm.KindInternal, Msg: "The gateway hit an internal error."}
	ctx.Response.Reset()
	ctx.Response.Header.Set("x-request-id", s.ids.next())
	writeError(ctx, e)
	ctx.SetConnectionClose()
}
