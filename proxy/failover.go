package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/llm"
)

// leg is how one kind of request (chat, embeddings, Anthropic messages)
// reaches a target: encode builds the upstream request; answer takes over a
// non-stream 2xx answer (and closes its body). For a stream (stream true)
// the loop primes the answer up to its first content before committing.
type leg struct {
	encode func(t *Target) (llm.Outbound, error)
	answer func(ctx *fasthttp.RequestCtx, x *exchange, t *Target, in *llm.Inbound)
	stream bool
	req    *llm.Request // the canonical request, for streams
}

// failover sends x to its model's targets in the router's order until one
// answers with something that can be relayed: the commit point. Nothing
// has reached the client before it, so a failed attempt (dial error,
// timeout before headers, 429, 5xx, 529, a stream that died before its
// first content) moves on as the retry policy says, within the failover
// deadline; a client error (400, 404, context length) ends the loop at
// once. When no attempt succeeds the client gets the router's verdict: a
// clean 502/503/504 carrying the last upstream's reason.
func (s *Server) failover(ctx *fasthttp.RequestCtx, x *exchange, l leg) {
	f := &x.fo
	var first *Target
	single := true      // every attempt went to the same target
	var last *llm.Error // the latest attempt's error
	if err := x.rt.pipe.Route.Begin(f, &x.px); err != nil {
		s.fail(ctx, x, llm.AsError(err))
		return
	}
	for {
		i, ok := f.Next()
		if !ok {
			break
		}
		t := x.model.Targets[i]
		if first == nil {
			first = t
		}
		single = single && t == first
		x.attempts++
		x.target = t
		sent := s.opts.Now()
		var e *llm.Error
		out, err := l.encode(t)
		if err != nil {
			e = providerError(err, t)
		}
		var in *llm.Inbound
		if e == nil {
			in, e = s.send(x, t, &out)
		}
		var j *streamJob
		if e == nil && l.stream {
			j = s.newStreamJob(x, t, l.req, in)
			if e = j.prime(); e != nil {
				in.Body.Close()
				s.metrics.Upstream.WithLabelValues(t.Provider, "stream_"+e.Kind.String()).Inc()
			}
		}
		last = e
		delay, again := f.Done(e, s.opts.Now().Sub(sent))
		if e == nil {
			if j != nil {
				s.startStream(ctx, j)
			} else {
				l.answer(ctx, x, t, in)
			}
			return
		}
		if !again {
			break
		}
		if delay > 0 {
			wait(delay)
		}
	}
	e := f.Err()
	if single && last != nil {
		// No failover happened: the client learns what the upstream said
		// (a 429 stays a 429 with its Retry-After, a 529 a 529).
		e = last
	}
	s.fail(ctx, x, e)
}

// wait sleeps d; the retry policy bounds d (a backoff or a short
// Retry-After, at most about a second, within the failover deadline).
func wait(d time.Duration) {
	t := time.NewTimer(d)
	<-t.C
}
