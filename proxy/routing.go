package proxy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/policy/route"
	"github.com/aigw/aigw/providers/llm"
)

// tables is the route stage of one generation: each model alias's routing
// table. Immutable; safe for concurrent use.
type tables map[string]*route.Table

// Begin plans x on its model's table.
func (ts tables) Begin(f *route.Failover, x *policy.Exchange) error {
	t := ts[x.Model]
	if t == nil {
		return &llm.Error{Kind: llm.KindNotFound, Code: "model_not_found", Param: "model",
			Msg: "The model `" + x.Model + "` does not exist or you do not have access to it."}
	}
	return t.Begin(f, x)
}

// buildRoutes makes the generation's routing tables on reg (whose breaker,
// latency and health state outlive generations) from the policy's models,
// whose resolved targets are in models.
func buildRoutes(reg *route.Registry, pol *configs.Policy, models map[string]*Model) (tables, error) {
	var rules []route.OrgRule
	for _, o := range pol.Orgs {
		r := o.Routing
		if len(r.Only) > 0 || len(r.Bar) > 0 || r.AllowPin {
			rules = append(rules, route.OrgRule{Org: o.ID, Only: r.Only, Bar: r.Bar, AllowPin: r.AllowPin})
		}
	}
	rs, err := route.NewRules(rules)
	if err != nil {
		return nil, err
	}
	b := pol.Server.Breaker
	reg.SetBreakerPolicy(route.BreakerPolicy{
		ConsecutiveFailures: b.ConsecutiveFailures, ErrorRate: b.ErrorRate, MinRequests: b.MinRequests,
		Window: b.Window.D(), Cooldown: b.Cooldown.D(), HalfOpenProbes: b.HalfOpenProbes,
	})
	out := make(tables, len(pol.Models))
	for _, m := range pol.Models {
		strategy := route.StrategyPriority
		if m.Strategy != "" {
			if strategy, err = route.ParseStrategy(m.Strategy); err != nil {
				return nil, fmt.Errorf("model %s: %w", m.ID, err)
			}
		}
		cfg := route.TableConfig{Model: m.ID, Strategy: strategy, Rules: rs, Retry: route.RetryPolicy{
			MaxAttempts: m.Retry.MaxAttempts, SameTarget: m.Retry.SameTarget, Deadline: m.Retry.Deadline.D(),
			BaseBackoff: m.Retry.BaseBackoff.D(), MaxBackoff: m.Retry.MaxBackoff.D(), MaxRetryAfter: m.Retry.MaxRetryAfter.D(),
		}}
		for i, tr := range m.Targets {
			caps := route.CapAll
			if len(tr.Capabilities) > 0 {
				caps = 0
				for _, c := range tr.Capabilities {
					cp, err := route.ParseCap(c)
					if err != nil {
						return nil, fmt.Errorf("model %s: %w", m.ID, err)
					}
					caps |= cp
				}
			}
			t := models[m.ID].Targets[i]
			cfg.Targets = append(cfg.Targets, route.Target{ID: t.ID, Provider: t.Provider, Weight: tr.Weight,
				Cost: tr.Cost, Caps: caps, ContextWindow: tr.ContextWindow})
		}
		tbl, err := reg.NewTable(cfg)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.ID, err)
		}
		out[m.ID] = tbl
	}
	return out, nil
}

// healthProbes makes one active health check per provider that has
// enabled it and serves at least one target (mock providers are never
// probed): a models listing through the provider's own client. A probe
// fails on a transport error or a 5xx; other answers prove the upstream is
// up (a 404 from a server without a listing route still answered).
func healthProbes(pol *configs.Policy, models map[string]*Model) []route.Probe {
	byProvider := map[string][]*Target{}
	for _, m := range pol.Models {
		for _, t := range models[m.ID].Targets {
			byProvider[t.Provider] = append(byProvider[t.Provider], t)
		}
	}
	var probes []route.Probe
	for _, p := range pol.Providers {
		ts := byProvider[p.ID]
		if p.HealthCheck.Disabled || p.Type == configs.ProviderMock || len(ts) == 0 {
			continue
		}
		ids := make([]string, 0, len(ts))
		seen := map[string]bool{}
		for _, t := range ts {
			if !seen[t.ID] {
				seen[t.ID] = true
				ids = append(ids, t.ID)
			}
		}
		t := ts[0]
		probes = append(probes, route.Probe{
			Name: p.ID, Targets: ids, Interval: p.HealthCheck.Interval.D(), Timeout: p.HealthCheck.Timeout.D(),
			Check: func(ctx context.Context) error { return checkTarget(ctx, t) },
		})
	}
	return probes
}

// checkTarget performs one health call to t's provider.
func checkTarget(ctx context.Context, t *Target) error {
	out, err := t.adapter.EncodeHealth(&t.Target)
	if err != nil {
		return err
	}
	in, err := t.upstream.Do(ctx, &out)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(in.Body, maxErrorBody))
	in.Body.Close()
	if in.Status >= 500 {
		return fmt.Errorf("health check: %s answered HTTP %d", t.Provider, in.Status)
	}
	return nil
}

// healthRunner runs the current generation's health checker, replacing it
// on reload. Safe for concurrent use.
type healthRunner struct {
	mu      sync.Mutex
	cur     *route.HealthChecker
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// swap stops the running checker (waiting for its checks) and starts h
// (nil: none) with a one-second tick.
func (r *healthRunner) swap(h *route.HealthChecker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
	if h == nil || r.stopped {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.cur, r.cancel, r.done = h, cancel, done
	go func() {
		defer close(done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		h.Run(ctx, tk.C)
	}()
}

func (r *healthRunner) stopLocked() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel, r.done = nil, nil
	}
}

// stop ends health checking for good.
func (r *healthRunner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.stopLocked()
}

// status returns the running checker's probe results.
func (r *healthRunner) status() []route.ProbeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return nil
	}
	return r.cur.Status()
}

// routeMetrics feeds breaker state, up/down and failovers to Prometheus.
type routeMetrics struct {
	up        *prometheus.GaugeVec   // target
	state     *prometheus.GaugeVec   // target
	failovers *prometheus.CounterVec // from, to, reason
}

func (m routeMetrics) UpstreamUp(target string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(target).Set(v)
}

func (m routeMetrics) BreakerState(target string, s route.State) {
	m.state.WithLabelValues(target).Set(float64(s))
}

func (m routeMetrics) Failover(from, to, reason string) {
	m.failovers.WithLabelValues(from, to, strings.ToLower(reason)).Inc()
}
