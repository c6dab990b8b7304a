// Package proxy is aigw's HTTP edge: the public listener (OpenAI-compatible
// routes), the admin listener (metrics, health, reload), the per-request
// flow (parse once, admit, route, fail over, answer or stream, finish once)
// and the runtime snapshot that pins one config generation per request.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy/budget"
	"github.com/aigw/aigw/policy/cache"
	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/policy/route"
	"github.com/aigw/aigw/providers/llm"
)

// Options configure a Server. Zero values mean the documented defaults.
type Options struct {
	// Version is reported in build info and /admin endpoints.
	Version string
	// Logger receives one line per request and lifecycle events.
	Logger *slog.Logger
	// Registry receives the metrics; a fresh one is made when nil.
	Registry *prometheus.Registry
	// ReadHeaderTimeout bounds reading a request's headers and body
	// (default 30s). There is no server-wide write timeout: streams get a
	// deadline per write instead (WriteTimeout, default 30s).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (default 120s).
	IdleTimeout time.Duration
	// MaxHeaderBytes caps request headers (default 64 KiB).
	MaxHeaderBytes int
	// Heartbeat is the interval of SSE comments sent while an upstream
	// stream is quiet (default 15s; negative disables).
	Heartbeat time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NoHealthChecks turns the policy's active health probes off (tests
	// that count upstream calls; breakers still learn from traffic).
	NoHealthChecks bool
	// QuotaBackend makes the backend that keeps rate-limit and quota state,
	// given the server's quota metrics (for the shared backend's state).
	// nil keeps it in process (quota.NewMemory). Called once, by New.
	QuotaBackend func(quota.Metrics) quota.Backend
	// Ledger keeps one usage record per finished request; nil keeps none.
	// The caller owns it and closes it after Shutdown.
	Ledger Recorder
	// Prices is the shipped price table; each generation merges the
	// policy's prices into it and refuses a policy with an unpriced
	// routable model. nil prices only what the policy itself lists (and
	// records every other cost as unknown): for tests.
	Prices *prices.Table
	// QuotaNamespace prefixes the quota backend's keys (default "aigw");
	// replicas sharing limits use the same one.
	QuotaNamespace string
	// QuotaClock is the quota limiter's clock (default the wall clock);
	// tests pass a fake one.
	QuotaClock quota.Clock
	// BudgetBackend makes the backend that keeps budget state, given the
	// server's budget metrics. nil keeps it in process (budget.NewMemory).
	// Called once, by New.
	BudgetBackend func(budget.Metrics) budget.Backend
	// BudgetSeed reports an org's spend so far when a budget period has no
	// state yet (after a restart): usually the ledger. nil starts at 0.
	BudgetSeed budget.SpendSource
	// BudgetNotifier receives budget alerts. nil: the server posts them
	// to the orgs' webhooks itself (budget.Webhooks), and Shutdown drains
	// those deliveries.
	BudgetNotifier budget.Notifier
	// BudgetClock decides budget periods and hold expiry (default Now).
	BudgetClock func() time.Time
	// CacheRedis, when set, is the response cache's shared tier (the
	// caller owns and closes it); nil keeps entries in process only.
	CacheRedis redis.UniversalClient
	// CacheNamespace prefixes the shared tier's keys (default "aigw").
	CacheNamespace string
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
}

// Server is the gateway. Create it with New, start it with Serve, stop it
// with Shutdown. Its methods are safe for concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	rt      atomic.Pointer[Runtime]
	build   *builder
	reload  sync.Mutex
	load    func() (*configs.Policy, error)

	public *fasthttp.Server
	admin  *fasthttp.Server
	ready  atomic.Bool
	ids    *idSource

	metricsHTTP fasthttp.RequestHandler

	// routes keeps breakers, latency and health per target across
	// generations; health runs the current generation's health checks.
	routes *route.Registry
	health healthRunner

	// quota keeps the limits' state and run-time priority modes across
	// generations.
	quota      *quota.Limiter
	quotaClock quota.Clock
	// asyncSettle settles reservations off the request path (a shared
	// backend: each settlement is a round trip); settling tracks them.
	asyncSettle bool
	settling    sync.WaitGroup

	// budget keeps spend and reservations across generations; webhooks
	// is the alert sender the server owns (nil when the caller gave one).
	budget   *budget.Keeper
	webhooks *budget.Webhooks
}

// New builds a server from a policy loader. load is called now and on every
// reload; New fails when the first load fails.
func New(load func() (*configs.Policy, error), opts Options) (*Server, error) {
	opts.defaults()
	s := &Server{opts: opts, log: opts.Logger, load: load, ids: newIDSource()}
	s.metrics = NewMetrics(opts.Registry, opts.Version)
	s.routes = route.NewRegistry(route.Options{Now: opts.Now, Metrics: routeMetrics{
		up: s.metrics.UpstreamUp, state: s.metrics.BreakerState, failovers: s.metrics.Failovers}})
	qm := quotaMetrics{s.metrics}
	var backend quota.Backend = quota.NewMemory()
	if opts.QuotaBackend != nil {
		backend = opts.QuotaBackend(qm)
		s.asyncSettle = true
	}
	s.quotaClock = opts.QuotaClock
	if s.quotaClock == nil {
		s.quotaClock = quota.SystemClock{}
	}
	s.quota = quota.New(backend, quota.Options{Clock: s.quotaClock, Metrics: qm, Namespace: opts.QuotaNamespace})
	for _, r := range quota.Reasons() {
		s.metrics.QuotaRejections.WithLabelValues(string(r), "false")
	}
	bm := budgetMetrics{s.metrics}
	var bb budget.Backend = budget.NewMemory()
	if opts.BudgetBackend != nil {
		bb = opts.BudgetBackend(bm)
		s.asyncSettle = true
	}
	notifier := opts.BudgetNotifier
	if notifier == nil {
		s.webhooks = budget.NewWebhooks(budget.WebhookOptions{Metrics: bm, Logger: opts.Logger})
		notifier = s.webhooks
	}
	clock := opts.BudgetClock
	if clock == nil {
		clock = opts.Now
	}
	s.budget = budget.New(bb, budget.Options{Clock: clock, Notifier: notifier, Metrics: bm,
		Logger: opts.Logger, Seed: opts.BudgetSeed})
	s.build = newBuilder(opts.Now, s.routes, s.quota)
	s.build.prices = opts.Prices
	s.build.budget = s.budget
	s.build.metrics = s.metrics
	s.build.newCache = func(maxBytes int64) (*cache.Cache, error) {
		return cache.New(cache.Options{MaxBytes: maxBytes, Redis: opts.CacheRedis, Namespace: opts.CacheNamespace,
			Clock: opts.Now, Logger: opts.Logger, Metrics: cacheMetrics{s.metrics}})
	}
	s.metricsHTTP = s.metricsHandler()
	if err := s.Reload(); err != nil {
		if s.webhooks != nil {
			_ = s.webhooks.Close(context.Background()) // nothing was queued yet
		}
		return nil, err
	}
	s.public = &fasthttp.Server{
		Handler:                       s.servePublic,
		ErrorHandler:                  s.serveParseError,
		Name:                          "aigw",
		ReadTimeout:                   opts.ReadTimeout,
		IdleTimeout:                   opts.IdleTimeout,
		ReadBufferSize:                opts.MaxHeaderBytes,
		StreamRequestBody:             true,
		MaxRequestBodySize:            256 << 10, // bytes read ahead; larger bodies stream
		DisableHeaderNamesNormalizing: false,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		ReduceMemoryUsage:             false,
	}
	s.admin = &fasthttp.Server{
		Handler:               s.serveAdmin,
		Name:                  "aigw-admin",
		ReadTimeout:           opts.ReadTimeout,
		WriteTimeout:          opts.ReadTimeout,
		IdleTimeout:           opts.IdleTimeout,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
	}
	return s, nil
}

// Runtime returns the current config generation.
func (s *Server) Runtime() *Runtime { return s.rt.Load() }

// Metrics returns the server's instruments.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Reload loads the policies again and swaps the runtime snapshot. On error
// the previous snapshot stays in force and the error says why. Requests in
// flight finish on the generation they started with.
func (s *Server) Reload() error {
	s.reload.Lock()
	defer s.reload.Unlock()
	pol, err := s.load()
	if err == nil {
		if cur := s.rt.Load(); cur != nil && cur.Checksum != "" && cur.Checksum == pol.Checksum {
			return nil
		}
		var rt *Runtime
		if rt, err = s.build.build(pol); err == nil {
			s.rt.Store(rt)
			if !s.opts.NoHealthChecks {
				s.health.swap(rt.health)
			}
			s.metrics.ConfigReloads.WithLabelValues("ok").Inc()
			s.log.Info("config loaded", "generation", rt.Generation, "models", len(rt.modelIDs))
			return nil
		}
	}
	s.metrics.ConfigReloads.WithLabelValues("error").Inc()
	s.log.Error("config reload failed; keeping the previous configuration", "error", err)
	return err
}

// Serve accepts connections on the public and admin listeners until
// Shutdown. It returns the first listener error other than a clean close.
func (s *Server) Serve(public, admin net.Listener) error {
	errc := make(chan error, 2)
	go func() { errc <- s.public.Serve(public) }()
	go func() { errc <- s.admin.Serve(admin) }()
	s.ready.Store(true)
	err := <-errc
	if err2 := <-errc; err == nil {
		err = err2
	}
	return err
}

// Shutdown stops accepting connections, marks the gateway not ready, and
// waits for in-flight requests and streams to finish until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.health.stop()
	var errs []error
	if err := s.public.ShutdownWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("public listener: %w", err))
	}
	if err := s.admin.ShutdownWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("admin listener: %w", err))
	}
	s.WaitSettled()
	s.build.mu.Lock()
	if s.build.cache != nil {
		s.build.cache.Close()
	}
	s.build.mu.Unlock()
	if s.webhooks != nil {
		if err := s.webhooks.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("budget alerts: %w", err))
		}
	}
	return errors.Join(errs...)
}

// settle commits (ran) or releases a finished request's reservations.
// With a shared quota backend it runs in its own goroutine, so the
// settlement's round trip is not on the request path; the in-process
// backend settles at once. Either way a later WaitSettled waits for it.
func (s *Server) settle(id string, a admission, ran bool, usage llm.Usage, cost accounting.MicroUSD) {
	if len(a.holds) == 0 {
		return
	}
	if !s.asyncSettle {
		s.settleNow(id, a, ran, usage, cost)
		return
	}
	s.settling.Add(1)
	go func() {
		defer s.settling.Done()
		s.settleNow(id, a, ran, usage, cost)
	}()
}

// settleNow is settle's work, on the calling goroutine. (A closure shared
// by both of settle's paths would be allocated on every request, the
// in-process backend's included.)
func (s *Server) settleNow(id string, a admission, ran bool, usage llm.Usage, cost accounting.MicroUSD) {
	if err := a.settle(context.Background(), ran, usage, cost); err != nil {
		s.log.Warn("settling reservations failed", "request_id", id, "error", err)
	}
}

// WaitSettled blocks until every reservation of a request finished so far
// is settled. Shutdown calls it; each settlement is bounded by the quota
// backend's timeout.
func (s *Server) WaitSettled() { s.settling.Wait() }
