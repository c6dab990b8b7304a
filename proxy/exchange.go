package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/policy/route"
	"github.com/aigw/aigw/providers/llm"
)

// Route names, used as metric labels.
const (
	routeChat       = "chat_completions"
	routeEmbeddings = "embeddings"
	routeModels     = "models"
	routeOther      = "other"
)

// exchange is one request's state from arrival to Finish. It is owned by
// the handler goroutine, then (for a stream) by the stream writer; never by
// two at once. It holds no reference to the fasthttp RequestCtx.
type exchange struct {
	s        *Server
	rt       *Runtime
	id       string // the gateway's id: unique per request, the ledger's key
	clientID string // the client's x-request-id, or ""
	route    string
	start    time.Time

	principal *policy.Principal
	model     *Model
	asked     string // the model the client named, for the record of a refusal
	target    *Target
	stream    bool
	native    bool // the client speaks Anthropic's Messages API
	user      string
	meta      metadata    // allow-listed request headers, for the record
	cache     *cacheState // nil: the request does not use the cache

	upstreamTTFB time.Duration // request sent -> upstream headers
	firstToken   time.Duration // request received -> first content to client
	usage        llm.Usage
	haveUsage    bool
	attempts     int

	px  policy.Exchange // what admission decides on
	adm admission       // what admission reserved
	fo  route.Failover  // the attempts over the model's targets

	finished atomic.Bool
}

// idSource makes request ids: a random per-process prefix and a counter,
// unique across restarts and replicas without a random read per request.
// Safe for concurrent use.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &idSource{prefix: "req_" + hex.EncodeToString(b[:])}
}

// next returns a fresh request id.
func (s *idSource) next() string {
	var buf [40]byte
	out := append(buf[:0], s.prefix...)
	out = append(out, '_')
	out = strconv.AppendUint(out, s.n.Add(1), 36)
	return string(out)
}

// requestIDs are a request's ids: the gateway's own, which is unique and
// keys its usage record, and the client's x-request-id, which may repeat
// (a retry loop, a tracing id per session) and so keys nothing.
type requestIDs struct {
	own    string
	client string // "" when the client sent none (or an unusable one)
}

// echoed is the x-request-id the answer carries: the client's if it sent
// one, else the gateway's.
func (id requestIDs) echoed() string {
	if id.client != "" {
		return id.client
	}
	return id.own
}

// validClientID accepts a client-sent x-request-id that is short and
// printable, so it can be echoed and logged safely.
func validClientID(b []byte) bool {
	if len(b) == 0 || len(b) > 128 {
		return false
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) newExchange(rt *Runtime, id requestIDs, route string) *exchange {
	s.metrics.InFlight.Inc()
	return &exchange{s: s, rt: rt, id: id.own, clientID: id.client, route: route, start: s.opts.Now()}
}

// modelLabel is the bounded metric label for the model.
func (x *exchange) modelLabel() string {
	if x.model != nil {
		return x.model.ID
	}
	return "unknown"
}

// outcome values for logs.
const (
	outcomeOK       = "ok"
	outcomeError    = "error"
	outcomeCanceled = "canceled"
)

// ran reports whether the request used upstream capacity: it succeeded,
// or an upstream reported usage, or content reached the client before it
// failed. Such requests commit their reservations with what they used;
// the others (refused, failed before any upstream answered, canceled
// before content) give everything back.
func (x *exchange) ran(err *llm.Error) bool {
	return err == nil || x.haveUsage || x.firstToken > 0
}

// billable is the usage reservations are settled with: the upstream's
// when it reported one, else the admission estimate of the prompt (the
// output of an upstream that reports nothing is unknown).
func (x *exchange) billable() llm.Usage {
	if x.haveUsage {
		return x.usage
	}
	n := x.px.EstimatedPromptTokens
	return llm.Usage{PromptTokens: n, TotalTokens: n, Estimated: n > 0}
}

// finish records the request exactly once: metrics, the log line, and (when
// the ledger exists) the usage record. Later calls are ignored. status is
// the HTTP status the client got; err the error it ended with, if any.
func (x *exchange) finish(status int, err *llm.Error) {
	if !x.finished.CompareAndSwap(false, true) {
		return
	}
	s := x.s
	sp := x.spent(err, x.rt.prices)
	x.cache.done()
	s.settle(x.id, x.adm, x.ran(err), sp.usage, sp.cost)
	x.adm = admission{}
	x.record(status, err, sp)
	elapsed := s.opts.Now().Sub(x.start)
	model := x.modelLabel()
	m := s.metrics
	m.InFlight.Dec()
	m.Requests.WithLabelValues(x.route, model, strconv.Itoa(status)).Inc()
	stream := "false"
	if x.stream {
		stream = "true"
	}
	m.Duration.WithLabelValues(x.route, model, stream).Observe(elapsed.Seconds())
	provider := ""
	if x.target != nil {
		provider = x.target.Provider
	}
	if provider != "" && (sp.usage.PromptTokens > 0 || sp.usage.CompletionTokens > 0) {
		m.Tokens.WithLabelValues(model, provider, "prompt").Add(float64(sp.usage.PromptTokens))
		m.Tokens.WithLabelValues(model, provider, "completion").Add(float64(sp.usage.CompletionTokens))
		if sp.usage.CachedTokens > 0 {
			m.Tokens.WithLabelValues(model, provider, "cached").Add(float64(sp.usage.CachedTokens))
		}
	}
	if provider != "" && sp.cost > 0 {
		m.CostMicros.WithLabelValues(model, provider).Add(float64(sp.cost))
	}
	outcome := outcomeOK
	if err != nil {
		outcome = outcomeError
		if err.Kind == llm.KindCanceled {
			outcome = outcomeCanceled
		}
		m.Errors.WithLabelValues(err.Kind.String()).Inc()
	}
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	// Durations are whole microseconds: slog's JSON handler writes a float
	// through encoding/json, which cost more than the rest of the line.
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("request_id", x.id),
		slog.String("route", x.route),
		slog.String("model", model),
		slog.Int("status", status),
		slog.String("outcome", outcome),
		slog.Bool("stream", x.stream),
		slog.Int64("duration_us", elapsed.Microseconds()),
	)
	if x.clientID != "" {
		attrs = append(attrs, slog.String("client_request_id", x.clientID))
	}
	if x.principal != nil {
		attrs = append(attrs, slog.String("org", x.principal.Org), slog.String("key_id", x.principal.KeyID))
	}
	if provider != "" {
		attrs = append(attrs, slog.String("provider", provider), slog.String("upstream_model", x.target.Model),
			slog.Int("attempts", x.attempts),
			slog.Int64("upstream_ttfb_us", x.upstreamTTFB.Microseconds()))
	}
	if x.firstToken > 0 {
		attrs = append(attrs, slog.Int64("ttft_us", x.firstToken.Microseconds()))
	}
	if x.haveUsage {
		attrs = append(attrs, slog.Int("prompt_tokens", x.usage.PromptTokens),
			slog.Int("completion_tokens", x.usage.CompletionTokens))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error_kind", err.Kind.String()), slog.String("error", err.Error()))
	}
	// The record is built here rather than through LogAttrs, which calls
	// runtime.Callers for a source position the handler never prints (a
	// tenth of the line's cost); a zero pc means "no source".
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	r.AddAttrs(attrs...)
	_ = s.log.Handler().Handle(context.Background(), r)
}
