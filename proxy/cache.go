package proxy

import (
	"bytes"
	"context"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy/cache"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/openai"
	"github.com/aigw/aigw/providers/sse"
)

// Cache headers: the request may say no-store (neither look up nor store)
// or refresh (skip the lookup, store the new answer); every answer of an
// org with the cache on says hit or miss.
const (
	hdrCache         = "x-aigw-cache"
	cacheHit         = "hit"
	cacheMiss        = "miss"
	cacheNoStore     = "no-store"
	cacheRefresh     = "refresh"
	defaultCacheWait = 30 * time.Second
)

// cacheMetrics exports the cache's lookups.
type cacheMetrics struct{ m *Metrics }

func (c cacheMetrics) Lookup(tier string, hit bool) {
	r := cacheMiss
	if hit {
		r = cacheHit
	}
	c.m.CacheLookups.WithLabelValues(tier, r).Inc()
}

func (c cacheMetrics) Coalesced()        { c.m.CacheCoalesced.Inc() }
func (c cacheMetrics) RedisError(string) { c.m.CacheRedisErrors.Inc() }

// cacheOrg is one org's cache policy.
type cacheOrg struct {
	rule        cache.Rule
	ttl         time.Duration
	models      map[string]bool // nil: every model
	allowLength bool
}

// cacheStage is one generation's cache policy over the server's cache.
// Immutable; safe for concurrent use.
type cacheStage struct {
	c    *cache.Cache
	orgs map[string]*cacheOrg
}

// buildCache returns the generation's cache policy; nil when no org has
// the cache on.
func buildCache(c *cache.Cache, pol *configs.Policy) *cacheStage {
	st := &cacheStage{c: c, orgs: map[string]*cacheOrg{}}
	for i := range pol.Orgs {
		o := &pol.Orgs[i]
		if !o.Cache.Enabled {
			continue
		}
		co := &cacheOrg{rule: cache.Rule{TemperatureZeroOnly: o.Cache.When != configs.CacheAny},
			ttl: o.Cache.TTL.D(), allowLength: o.Cache.AllowLength}
		if co.ttl <= 0 {
			co.ttl = configs.DefaultCacheTTL.D()
		}
		for _, m := range o.Cache.Models {
			if m == configs.AllModels {
				co.models = nil
				break
			}
			if co.models == nil {
				co.models = map[string]bool{}
			}
			co.models[m] = true
		}
		st.orgs[o.ID] = co
	}
	if len(st.orgs) == 0 || c == nil {
		return nil
	}
	return st
}

// cacheState is a request's part in the cache: the key it looks up and
// may fill, and what a hit served.
type cacheState struct {
	org  *cacheOrg
	key  cache.Key
	lead *cache.Lead // this request fills key on a miss (nil: another did, or refresh)
	// store says the answer is to be stored: a miss or a refresh.
	store bool
	hit   bool
	saved llm.Usage // on a hit: what the cached answer used upstream

	// Collected from a stream while store is set.
	deltas []string
	finish string
	bad    bool // the stream carried something an Entry cannot replay
}

// serveFromCache looks a chat request up in its org's cache. On a hit it
// answers (as JSON or as a replayed stream, as the client asked), finishes
// the request and returns true. Otherwise it notes what to store and the
// caller goes upstream.
func (s *Server) serveFromCache(ctx *fasthttp.RequestCtx, x *exchange, req *llm.Request) bool {
	cs := x.rt.cache
	co := cs.orgs[x.principal.Org]
	if co == nil || (co.models != nil && !co.models[x.model.ID]) {
		return false
	}
	ctx.Response.Header.Set(hdrCache, cacheMiss)
	if !cache.Cacheable(req, co.rule) {
		return false
	}
	mode := string(bytes.ToLower(bytes.TrimSpace(ctx.Request.Header.Peek(hdrCache))))
	if mode == cacheNoStore {
		return false
	}
	x.cache = &cacheState{org: co, key: cache.KeyOf(x.principal.Org, x.model.ID, req), store: true}
	if mode == cacheRefresh {
		return false
	}
	c, cancel := context.WithTimeout(context.Background(), defaultCacheWait)
	e, hit, lead := cs.c.Begin(c, x.cache.key)
	cancel()
	if !hit {
		x.cache.lead = lead
		return false
	}
	x.cache.store, x.cache.hit, x.cache.saved = false, true, e.Usage
	ctx.Response.Header.Set(hdrCache, cacheHit)
	x.firstToken = s.opts.Now().Sub(x.start)
	ctx.SetStatusCode(fasthttp.StatusOK)
	if req.Stream {
		ctx.SetContentType("text/event-stream")
		ctx.Response.Header.Set("Cache-Control", "no-cache")
		ctx.SetBody(replayStream(nil, &e, "chatcmpl-"+x.id, x.model.ID, s.opts.Now().Unix(), req.WantsUsageChunk()))
	} else {
		ctx.SetContentType("application/json")
		ctx.SetBody(entryJSON(&e, x.model.ID))
	}
	x.finish(fasthttp.StatusOK, nil)
	return true
}

// replayStream appends e as an OpenAI chat completion stream: one chunk
// per stored chunk (the first with the assistant role), one with the
// finish reason, the usage chunk when asked, and [DONE]. Every chunk has
// the same id.
func replayStream(dst []byte, e *cache.Entry, id, model string, created int64, usage bool) []byte {
	chunks := e.Chunks()
	if len(chunks) == 0 {
		chunks = []string{""}
	}
	var scratch []byte
	for i, c := range chunks {
		d := llm.Delta{Content: c}
		if i == 0 {
			d.Role = "assistant"
		}
		scratch = openai.AppendChunk(scratch[:0], &d, id, model, created)
		dst = sse.AppendData(dst, scratch)
	}
	scratch = openai.AppendChunk(scratch[:0], &llm.Delta{FinishReason: e.FinishReason}, id, model, created)
	dst = sse.AppendData(dst, scratch)
	if usage {
		scratch = openai.AppendUsageChunk(scratch[:0], e.Usage, id, model, created)
		dst = sse.AppendData(dst, scratch)
	}
	return append(dst, doneEvent...)
}

// entryJSON is e as a chat.completion body: the stored one, or one built
// from a stream's content.
func entryJSON(e *cache.Entry, model string) []byte {
	if e.Body != nil {
		return e.Body
	}
	u := e.Usage
	resp := &llm.Response{ID: "chatcmpl-cached", Object: "chat.completion", Created: e.Created.Unix(), Model: model,
		Choices: []llm.Choice{{Message: llm.Message{Role: "assistant", Content: e.Content(), HasContent: true},
			FinishReason: e.FinishReason}}, Usage: &u}
	return openai.EncodeResponse(nil, resp)
}

// storable reports whether an answer that finished with reason may be kept.
func (cs *cacheState) storable(reason string) bool {
	switch reason {
	case llm.FinishStop:
		return true
	case llm.FinishLength:
		return cs.org.allowLength
	}
	return false // tool calls, content filter, unknown
}

// keepJSON stores a non-stream answer (body is what the client got, resp
// its decoded form) when it can be replayed.
func (s *Server) keepJSON(x *exchange, body []byte, resp *llm.Response) {
	cs := x.cache
	if cs == nil || !cs.store {
		return
	}
	cs.store = false
	if resp == nil || len(resp.Choices) != 1 || len(resp.Choices[0].Message.ToolCalls) > 0 ||
		resp.Choices[0].Message.Refusal != "" || !cs.storable(resp.Choices[0].FinishReason) {
		return
	}
	e := cache.Entry{Body: append([]byte(nil), body...), FinishReason: resp.Choices[0].FinishReason,
		Usage: x.usage, Created: s.opts.Now()}
	s.fill(x, e)
}

// observe collects a streamed answer's content for the cache, from the
// deltas of one event.
func (cs *cacheState) observe(ds []llm.Delta) {
	for i := range ds {
		d := &ds[i]
		if d.Index != 0 || len(d.ToolCalls) > 0 || d.Refusal != "" {
			cs.bad = true
		}
		if d.Content != "" {
			cs.deltas = append(cs.deltas, d.Content)
		}
		if d.FinishReason != "" {
			cs.finish = d.FinishReason
		}
	}
}

// keepStream stores a stream that completed, when it can be replayed.
func (s *Server) keepStream(x *exchange) {
	cs := x.cache
	if cs == nil || !cs.store {
		return
	}
	cs.store = false
	if cs.bad || !cs.storable(cs.finish) {
		return
	}
	deltas := cs.deltas
	if deltas == nil {
		deltas = []string{}
	}
	s.fill(x, cache.Entry{Deltas: deltas, FinishReason: cs.finish, Usage: x.usage, Created: s.opts.Now()})
}

func (s *Server) fill(x *exchange, e cache.Entry) {
	cs := x.cache
	if cs.lead != nil {
		cs.lead.Fill(e, cs.org.ttl)
		return
	}
	x.rt.cache.c.Set(context.Background(), cs.key, e, cs.org.ttl)
}

// done ends the request's part in the cache: a lead that was not filled
// is abandoned so waiters go on.
func (cs *cacheState) done() {
	if cs != nil {
		cs.lead.Abandon()
	}
}

// savedCost is what a hit's answer would have cost at the model's first
// target.
func (x *exchange) savedCost(table *prices.Table) accounting.MicroUSD {
	if x.cache == nil || !x.cache.hit || table == nil || x.model == nil || len(x.model.Targets) == 0 {
		return 0
	}
	if p, ok := table.ForTarget(&x.model.Targets[0].Target); ok {
		return p.Cost(x.cache.saved)
	}
	return 0
}
