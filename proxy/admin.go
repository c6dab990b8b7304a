package proxy

import (
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// serveAdmin is the admin listener's handler. It listens on localhost by
// default; anything reachable from elsewhere must sit behind admin keys.
func (s *Server) serveAdmin(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/metrics":
		s.metricsHTTP(ctx)
	case "/healthz":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}`)
	case "/readyz":
		ctx.SetContentType("application/json")
		if !s.ready.Load() || s.rt.Load() == nil {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString(`{"status":"not ready"}`)
			return
		}
		ctx.SetBodyString(`{"status":"ready"}`)
	case "/api/ai/providers/health":
		s.providersHealth(ctx)
	case "/api/ai/budgets":
		s.budgets(ctx)
	case "/api/ai/wedding-day-mode":
		s.weddingDayMode(ctx)
	case "/admin/reload":
		if !ctx.IsPost() {
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
		ctx.SetContentType("application/json")
		if err := s.Reload(); err != nil {
			ctx.SetStatusCode(fasthttp.StatusUnprocessableEntity)
			ctx.SetBody(appendJSONMessage(nil, false, err.Error()))
			return
		}
		ctx.SetBody(appendJSONMessage(nil, true, "reloaded"))
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"error":"not found"}`)
	}
}

func (s *Server) metricsHandler() fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
}
