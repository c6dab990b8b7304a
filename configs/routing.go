package configs

import "strconv"

// Routing strategies accepted in Model.Strategy.
const (
	StrategyPriority     = "priority"      // configured order, the next ones as fallbacks (default)
	StrategyWeighted     = "weighted"      // random by TargetRef.Weight
	StrategyLeastLatency = "least_latency" // lowest EWMA time to first byte
	StrategyLeastBusy    = "least_busy"    // fewest requests in flight
	StrategyCost         = "cost"          // cheapest target whose capabilities fit
)

// Target capabilities accepted in TargetRef.Capabilities.
const (
	CapabilityTools  = "tools"
	CapabilityImages = "images"
	CapabilityJSON   = "json"
)

// Retry bounds one request's failover before the commit point. Zero fields
// get the router's defaults: 3 attempts, no same-target retries (except
// after a short Retry-After), a 2s failover deadline, backoff 100ms..1s,
// Retry-After waited out up to 1s.
type Retry struct {
	MaxAttempts   int      `yaml:"max_attempts"`
	SameTarget    int      `yaml:"same_target"`
	Deadline      Duration `yaml:"deadline"`
	BaseBackoff   Duration `yaml:"base_backoff"`
	MaxBackoff    Duration `yaml:"max_backoff"`
	MaxRetryAfter Duration `yaml:"max_retry_after"`
}

// Breaker tunes the per-target circuit breakers. Zero fields get defaults:
// open after 5 consecutive failures or a 50% error rate over 60s (with at
// least 20 outcomes), stay open 15s, then let 1 probe through.
type Breaker struct {
	ConsecutiveFailures int      `yaml:"consecutive_failures"`
	ErrorRate           float64  `yaml:"error_rate"`
	MinRequests         int      `yaml:"min_requests"`
	Window              Duration `yaml:"window"`
	Cooldown            Duration `yaml:"cooldown"`
	HalfOpenProbes      int      `yaml:"half_open_probes"`
}

// HealthCheck configures a provider's active health probe, a models
// listing. Mock providers are never probed.
type HealthCheck struct {
	Disabled bool     `yaml:"disabled"`
	Interval Duration `yaml:"interval"` // default 30s
	Timeout  Duration `yaml:"timeout"`  // default 5s
}

// OrgRouting overrides routing for one org. Only and Bar entries name
// provider ids.
type OrgRouting struct {
	// Only pins the org to these providers (empty: no restriction).
	Only []string `yaml:"only"`
	// Bar keeps the org away from these providers; it wins over Only.
	Bar []string `yaml:"bar"`
	// AllowPin lets the org's requests pin a target or provider with the
	// x-aigw-target header, for debugging.
	AllowPin bool `yaml:"allow_pin"`
}

func (l *loader) validateBreaker(m itemMeta, b *Breaker) {
	if b.ConsecutiveFailures < 0 {
		l.errf(m, "consecutive_failures", " must not be negative")
	}
	if b.ErrorRate < 0 || b.ErrorRate > 1 {
		l.errf(m, "error_rate", " must be between 0 and 1")
	}
	if b.MinRequests < 0 {
		l.errf(m, "min_requests", " must not be negative")
	}
	if b.HalfOpenProbes < 0 {
		l.errf(m, "half_open_probes", " must not be negative")
	}
}

// validateRouting checks a model's strategy, retry settings and its
// targets' routing fields.
func (l *loader) validateRouting(m itemMeta, md *Model) {
	switch md.Strategy {
	case "", StrategyPriority, StrategyLeastLatency, StrategyLeastBusy, StrategyCost:
	case StrategyWeighted:
		positive := false
		for _, t := range md.Targets {
			positive = positive || t.Weight > 0
		}
		if !positive && len(md.Targets) > 0 {
			l.errf(m, "strategy", ": weighted needs at least one target with a positive weight")
		}
	default:
		l.errf(m, "strategy", " %q is not supported (use priority, weighted, least_latency, least_busy or cost)", clip(md.Strategy, 40))
	}
	rm := itemMeta{file: m.file, path: m.path + ".retry", pos: m.at("retry")}
	if md.Retry.MaxAttempts < 0 {
		l.errf(rm, "max_attempts", " must not be negative")
	}
	if md.Retry.SameTarget < 0 {
		l.errf(rm, "same_target", " must not be negative")
	}
	for j := range md.Targets {
		t := &md.Targets[j]
		tm := itemMeta{file: m.file, path: m.path + ".targets[" + strconv.Itoa(j) + "]", pos: t.Pos}
		if t.Weight < 0 {
			l.errf(tm, "weight", " must not be negative")
		}
		if t.Cost < 0 {
			l.errf(tm, "cost", " must not be negative")
		}
		if t.ContextWindow < 0 {
			l.errf(tm, "context_window", " must not be negative")
		}
		for k, c := range t.Capabilities {
			switch c {
			case CapabilityTools, CapabilityImages, CapabilityJSON:
			default:
				l.errf(tm, "capabilities["+strconv.Itoa(k)+"]", " %q is not a capability (use tools, images or json)", clip(c, 40))
			}
		}
	}
}

// validateOrgRouting checks that an org's routing names declared providers.
func (l *loader) validateOrgRouting(m itemMeta, r *OrgRouting, providers map[string]*Provider) {
	rm := itemMeta{file: m.file, path: m.path + ".routing", pos: m.at("routing")}
	for _, list := range []struct {
		name string
		ids  []string
	}{{"only", r.Only}, {"bar", r.Bar}} {
		for k, id := range list.ids {
			if _, ok := providers[id]; !ok {
				l.errf(rm, list.name+"["+strconv.Itoa(k)+"]", ": provider %q is not declared", clip(id, 64))
			}
		}
	}
}
