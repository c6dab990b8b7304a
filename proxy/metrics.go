package proxy

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the gateway's Prometheus instruments, registered on a registry
// the caller owns (never the global one). Label values are bounded: model is
// the configured alias or "unknown", route one of a fixed set, provider a
// configured provider id.
type Metrics struct {
	Requests     *prometheus.CounterVec   // route, model, code
	Duration     *prometheus.HistogramVec // route, model, stream
	UpstreamTTFB *prometheus.HistogramVec // provider, model
	Tokens       *prometheus.CounterVec   // model, provider, type
	// CostMicros counts what the ledger records as spent, in micro-USD.
	CostMicros    *prometheus.CounterVec // model, provider
	InFlight      prometheus.Gauge
	ActiveStreams prometheus.Gauge
	Errors        *prometheus.CounterVec // kind
	Upstream      *prometheus.CounterVec // provider, outcome
	ConfigReloads *prometheus.CounterVec // result
	Panics        prometheus.Counter

	// Routing: breaker state and health per target, failovers.
	UpstreamUp   *prometheus.GaugeVec   // target
	BreakerState *prometheus.GaugeVec   // target
	Failovers    *prometheus.CounterVec // from, to, reason

	// Quotas: refusals (and shadow limits' would-be refusals) by reason,
	// queue depth per org with a queue, whether the shared backend is used.
	QuotaRejections *prometheus.CounterVec // reason, shadow
	QuotaQueueDepth *prometheus.GaugeVec   // org
	QuotaBackendUp  prometheus.Gauge

	// Budget alerts (period, threshold), refusals (period, action),
	// webhook deliveries (result) and the shared backend's state.
	BudgetAlerts    *prometheus.CounterVec
	BudgetRefusals  *prometheus.CounterVec
	BudgetWebhooks  *prometheus.CounterVec
	BudgetBackendUp prometheus.Gauge
	// Response cache lookups (tier, result), coalesced misses and Redis
	// errors.
	CacheLookups     *prometheus.CounterVec
	CacheCoalesced   prometheus.Counter
	CacheRedisErrors prometheus.Counter
	// CompressionSaved counts prompt tokens compression removed, by
	// strategy.
	CompressionSaved *prometheus.CounterVec
	// LedgerErrors counts usage records the ledger refused.
	LedgerErrors prometheus.Counter
}

// NewMetrics creates the instruments and registers them, with the Go and
// process collectors and build info, on reg.
func NewMetrics(reg prometheus.Registerer, version string) *Metrics {
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aigw_requests_total", Help: "Requests answered, by route, model alias and HTTP status.",
		}, []string{"route", "model", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aigw_request_duration_seconds", Help: "Time from request received to answer complete (stream end for streams).",
			Buckets: latency,
		}, []string{"route", "model", "stream"}),
		UpstreamTTFB: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aigw_upstream_ttfb_seconds", Help: "Time from upstream request sent to its answer headers.",
			Buckets: latency,
		}, []string{"provider", "model"}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aigw_tokens_total", Help: "Tokens accounted, by model alias, provider and type (prompt, completion, cached).",
		}, []string{"model", "provider", "type"}),
		CostMicros: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aigw_cost_usd_micros_total", Help: "Upstream cost accounted, in micro-USD, by model alias and provider (priced requests only; the sum of the ledger's cost_usd_micros).",
		}, []string{"model", "provider"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aigw_requests_in_flight", Help: "Requests being handled, streams included.",
		}),
		ActiveStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aigw_active_streams", Help: "Streams being relayed to clients.",
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aigw_errors_total", Help: "Requests that ended in an error, by error kind.",
		}, []string{"kind"}),
		Upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aigw_upstream_requests_total", Help: "Upstream attempts, by provider and outcome (ok, error kind).",
		}, []string{"provider", "outcome"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aigw_config_reloads_total", Help: "Policy reloads, by result (ok, error).",
		}, []string{"result"}),
	}
	m.Panics = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aigw_panics_total", Help: "Handler panics recovered; anything above zero is a bug.",
	})
	m.UpstreamUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aigw_upstream_up", Help: "1 when the target's breaker is closed or half-open and its latest health check passed, else 0.",
	}, []string{"target"})
	m.BreakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aigw_upstream_breaker_state", Help: "Circuit breaker state per target: 0 closed, 1 open, 2 half-open.",
	}, []string{"target"})
	m.Failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aigw_failovers_total", Help: "Requests moved from one target to another before the commit point, by reason (error kind).",
	}, []string{"from", "to", "reason"})
	m.QuotaRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aigw_quota_rejections_total", Help: "Requests refused by a quota, by reason (the limit, as in x-aigw-quota-reason); shadow=\"true\" counts requests a shadow limit would have refused.",
	}, []string{"reason", "shadow"})
	m.QuotaQueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aigw_quota_queue_depth", Help: "Requests waiting in an organisation's quota queue (orgs with a queue in policy).",
	}, []string{"org"})
	m.QuotaBackendUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aigw_quota_shared_backend_up", Help: "1 while quota decisions go to the shared backend (Redis), 0 while its fallback decides; 1 for the in-process backend.",
	})
	m.QuotaBackendUp.Set(1)
	m.LedgerErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aigw_ledger_append_errors_total", Help: "Usage records the ledger could not keep (disk full, ledger closed); anything above zero loses accounting.",
	})
	m.BudgetAlerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aigw_budget_alerts_total", Help: "Budget alerts fired, by period (daily, monthly) and threshold percent (0: the period's first refusal).",
	}, []string{"period", "threshold"})
	m.BudgetRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aigw_budget_refusals_total", Help: "Requests a budget could not hold, by period and the action taken (refuse, downgrade).",
	}, []string{"period", "action"})
	m.BudgetWebhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aigw_budget_webhook_deliveries_total", Help: "Budget alert webhook deliveries, after retries, by result (ok, failed).",
	}, []string{"result"})
	m.BudgetBackendUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aigw_budget_shared_backend_up", Help: "1 while budget decisions go to the shared backend (Redis), 0 while its fallback decides; 1 for the in-process backend.",
	})
	m.BudgetBackendUp.Set(1)
	m.CacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aigw_cache_lookups_total", Help: "Response cache lookups, by tier (l1 in process, l2 Redis) and result (hit, miss).",
	}, []string{"tier", "result"})
	m.CacheCoalesced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aigw_cache_coalesced_total", Help: "Cache misses answered by another request's upstream call (identical requests in flight at once).",
	})
	m.CacheRedisErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aigw_cache_redis_errors_total", Help: "Failed calls to the shared (Redis) cache tier; each reads as a miss.",
	})
	m.CompressionSaved = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aigw_prompt_compression_saved_tokens_total", Help: "Prompt tokens removed by compression before the upstream call, by strategy.",
	}, []string{"strategy"})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aigw_build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(m.Requests, m.Duration, m.UpstreamTTFB, m.Tokens, m.CostMicros, m.InFlight, m.ActiveStreams,
		m.Errors, m.Upstream, m.ConfigReloads, m.Panics, m.UpstreamUp, m.BreakerState, m.Failovers,
		m.QuotaRejections, m.QuotaQueueDepth, m.QuotaBackendUp, m.LedgerErrors,
		m.BudgetAlerts, m.BudgetRefusals, m.BudgetWebhooks, m.BudgetBackendUp,
		m.CacheLookups, m.CacheCoalesced, m.CacheRedisErrors, m.CompressionSaved, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
