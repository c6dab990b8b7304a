package proxy

import (
	"context"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/openai"
)

// maxErrorBody caps how much of an upstream error answer is read.
const maxErrorBody = 64 << 10

// chat handles POST /v1/chat/completions: one pass from body to answer.
func (s *Server) chat(ctx *fasthttp.RequestCtx, x *exchange) {
	body, e := readBody(ctx, x.rt.MaxBodyBytes)
	if e != nil {
		s.fail(ctx, x, e)
		return
	}
	if e := s.authenticate(ctx, x, bearer(ctx)); e != nil {
		s.fail(ctx, x, e)
		return
	}
	var req llm.Request
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
	x.stream = req.Stream
	x.user = req.User
	if e := s.resolveModel(x, req.Model, false); e != nil {
		s.fail(ctx, x, e)
		return
	}
	x.px.Chat = &req
	if e := s.admit(ctx, x); e != nil {
		s.fail(ctx, x, e)
		return
	}
	if x.rt.cache != nil && s.serveFromCache(ctx, x, &req) {
		return
	}

	s.failover(ctx, x, leg{
		encode: func(t *Target) (llm.Outbound, error) { return t.adapter.EncodeChat(encodeRoom(body), &req, &t.Target) },
		answer: s.answerChat,
		stream: req.Stream,
		req:    &req,
	})
}

// send performs one upstream attempt and turns a non-2xx answer into an
// *llm.Error (reading and closing its body). On success the caller owns
// in.Body.
func (s *Server) send(x *exchange, t *Target, out *llm.Outbound) (*llm.Inbound, *llm.Error) {
	sent := s.opts.Now()
	in, err := t.upstream.Do(context.Background(), out)
	x.upstreamTTFB = s.opts.Now().Sub(sent)
	s.metrics.UpstreamTTFB.WithLabelValues(t.Provider, x.modelLabel()).Observe(x.upstreamTTFB.Seconds())
	if err != nil {
		e := providerError(err, t)
		s.metrics.Upstream.WithLabelValues(t.Provider, e.Kind.String()).Inc()
		return nil, e
	}
	if in.Status < 200 || in.Status > 299 {
		b, _ := io.ReadAll(io.LimitReader(in.Body, maxErrorBody))
		in.Body.Close()
		e := llm.AsError(t.adapter.ClassifyError(in.Status, in.Get, b))
		if e.Status == 0 {
			e.Status = in.Status
		}
		e = providerError(e, t)
		s.metrics.Upstream.WithLabelValues(t.Provider, e.Kind.String()).Inc()
		return nil, e
	}
	s.metrics.Upstream.WithLabelValues(t.Provider, "ok").Inc()
	return in, nil
}

// providerError makes err an *llm.Error attributed to t's provider. Upstream
// authentication failures are the gateway's configuration problem, not the
// client's: they become 502s so the client is not told its key is bad.
func providerError(err error, t *Target) *llm.Error {
	e := llm.AsError(err)
	if e.Provider == "" {
		e.Provider = t.Provider
	}
	if (e.Kind == llm.KindAuth || e.Kind == llm.KindPermission) && e.Status != 0 {
		e = &llm.Error{Kind: llm.KindUpstream, Provider: e.Provider, Status: e.Status, Retryable: true,
			Msg: "The upstream provider " + e.Provider + " rejected the gateway's credentials.", Err: e}
	}
	return e
}

// authenticate resolves the caller or returns the 401 to send.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, x *exchange, key []byte) *llm.Error {
	p, err := x.rt.pipe.Auth.Authenticate(key)
	if err != nil {
		return llm.AsError(err)
	}
	x.principal = p
	if len(x.rt.meta) > 0 {
		x.meta = readMetadata(&ctx.Request.Header, x.rt.meta)
	}
	return nil
}

// resolveModel finds the alias and checks the caller may use it.
func (s *Server) resolveModel(x *exchange, alias string, embedding bool) *llm.Error {
	x.asked = alias
	m := x.rt.lookupModel(alias)
	if m == nil || m.Embedding != embedding {
		return &llm.Error{Kind: llm.KindNotFound, Code: "model_not_found", Param: "model",
			Msg: "The model `" + alias + "` does not exist or you do not have access to it."}
	}
	if !x.principal.Allows(m.ID) {
		return &llm.Error{Kind: llm.KindPermission, Code: "model_not_allowed", Param: "model",
			Msg: "Your gateway key is not allowed to use the model `" + alias + "`."}
	}
	x.model = m
	x.px.Model = m.ID
	return nil
}

// admit runs the admission stages for a resolved request and puts the
// quota's x-ratelimit-* headers on the answer, admitted or not.
func (s *Server) admit(ctx *fasthttp.RequestCtx, x *exchange) *llm.Error {
	x.px.RequestID = x.id
	x.px.Principal = x.principal
	x.px.Start = x.start
	x.px.Priority = x.principal.Priority
	e := x.rt.pipe.admit(context.Background(), &x.px, &x.adm)
	if e != nil {
		setQuotaHeaders(&ctx.Response.Header, nil, e)
		return e
	}
	setQuotaHeaders(&ctx.Response.Header, x.adm.holds, nil)
	if x.px.DowngradedFrom != "" {
		// The budget moved the request to the org's cheaper model (the
		// loader checked it exists and is allowed to the org).
		if m := x.rt.lookupModel(x.px.Model); m != nil && m.Embedding == x.model.Embedding {
			x.model = m
			ctx.Response.Header.Set("x-aigw-downgraded-from", x.px.DowngradedFrom)
		} else {
			x.px.Model = x.model.ID
		}
	}
	return nil
}

// notUTF8 refuses a body that is not UTF-8, as JSON requires.
func notUTF8() *llm.Error {
	return &llm.Error{Kind: llm.KindInvalidRequest, Code: "invalid_json",
		Msg: "The request body is not valid UTF-8; JSON bodies must be UTF-8 encoded."}
}

// invalidJSON wraps a body decoding error as a 400.
func invalidJSON(err error) *llm.Error {
	if e := llm.AsError(err); e.Kind == llm.KindInvalidRequest {
		return e
	}
	return &llm.Error{Kind: llm.KindInvalidRequest, Code: "invalid_json",
		Msg: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)", Err: err}
}

// answerChat relays a non-stream answer: verbatim when the upstream speaks
// OpenAI's format, translated otherwise. Usage is taken from the answer.
func (s *Server) answerChat(ctx *fasthttp.RequestCtx, x *exchange, t *Target, in *llm.Inbound) {
	defer in.Body.Close()
	body, err := bodyBytes(in)
	if err != nil {
		s.fail(ctx, x, providerError(&llm.Error{Kind: llm.KindUpstream, Msg: "The upstream answer could not be read.", Err: err}, t))
		return
	}
	var out []byte
	if t.openAIWire {
		// Same wire format: relay the body as it came, reading only the
		// usage object out of it.
		f := openai.Observe(body)
		if !isJSONObject(body) || f.Err {
			s.fail(ctx, x, providerError(&llm.Error{Kind: llm.KindUpstream, Retryable: false, Msg: "The upstream answer is not a chat completion."}, t))
			return
		}
		if f.HasUsage {
			x.usage, x.haveUsage = f.Usage, true
		}
		out = body
		if x.cache != nil && x.cache.store {
			resp, _ := t.adapter.DecodeChat(body)
			s.keepJSON(x, out, resp)
		}
	} else {
		resp, err := t.adapter.DecodeChat(body)
		if err != nil {
			s.fail(ctx, x, providerError(&llm.Error{Kind: llm.KindUpstream, Msg: "The upstream answer could not be decoded.", Err: err}, t))
			return
		}
		if resp.Usage != nil {
			x.usage, x.haveUsage = *resp.Usage, true
		}
		out = openai.EncodeResponse(nil, resp)
		s.keepJSON(x, out, resp)
	}
	x.firstToken = s.opts.Now().Sub(x.start)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
	x.finish(fasthttp.StatusOK, nil)
}

// bodyBytes returns a non-stream body, without a copy when the transport
// already holds it whole.
func bodyBytes(in *llm.Inbound) ([]byte, error) {
	if b, ok := in.Body.(interface{ Bytes() []byte }); ok {
		return b.Bytes(), nil
	}
	return io.ReadAll(in.Body)
}

func itoa(n int) string { return strconv.Itoa(n) }

// isJSONObject reports whether b, after leading white space, starts an
// object.
func isJSONObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}
