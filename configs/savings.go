package configs

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cache rules accepted in Cache.When.
const (
	CacheTemperatureZero = "temperature_zero" // only requests with temperature 0 (the default)
	CacheAny             = "any"              // every request (answers may then vary between calls)
)

// Compression strategies accepted in Compression.Strategies.
const (
	CompressWhitespace    = "whitespace"            // whitespace and markup normalisation (not in code blocks)
	CompressDedupe        = "dedupe"                // exact duplicate messages, repeated system prompts
	CompressMinifyJSON    = "minify_json"           // JSON in tool schemas and tool results
	CompressTruncateTools = "truncate_tool_results" // overlong tool results cut with a marker
	CompressFitHistory    = "fit_history"           // drop the oldest turns to fit the context
)

// CompressionStrategies lists every strategy, in the order they run.
func CompressionStrategies() []string {
	return []string{CompressWhitespace, CompressDedupe, CompressMinifyJSON, CompressTruncateTools, CompressFitHistory}
}

// Defaults for the response cache.
const (
	DefaultCacheTTL               = Duration(time.Hour)
	DefaultCacheMaxBytes ByteSize = 64 << 20
)

// ServerCache sizes the process-wide response cache.
type ServerCache struct {
	// MaxBytes bounds the in-process tier (0: DefaultCacheMaxBytes);
	// entries are costed by their size.
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// Cache is an org's exact response cache: a repeated request is answered
// from the cache, never across orgs. Off unless Enabled.
type Cache struct {
	Enabled bool `yaml:"enabled"`
	// When is CacheTemperatureZero ("" means it) or CacheAny.
	When string   `yaml:"when"`
	TTL  Duration `yaml:"ttl"` // 0: DefaultCacheTTL
	// Models limits the cache to these models; empty means all the org's.
	Models []string `yaml:"models"`
	// AllowLength also caches answers cut by max_tokens.
	AllowLength bool `yaml:"allow_length"`
}

// Compression is an org's prompt compression: the strategies run in a
// fixed order, each only when listed. Nothing is on by default.
type Compression struct {
	Strategies []string `yaml:"strategies"`
	// Models limits compression to these models; empty means all.
	Models []string `yaml:"models"`
	// MaxInputTokens is the prompt budget fit_history fits into (also
	// bounded by the target's context_window); 0: the context window only.
	MaxInputTokens int `yaml:"max_input_tokens"`
	// MaxToolResultTokens is where truncate_tool_results cuts (0: 2000).
	MaxToolResultTokens int `yaml:"max_tool_result_tokens"`
	// KeepLastTurns is how many of the latest messages fit_history always
	// keeps (0: the compressor's default).
	KeepLastTurns int `yaml:"keep_last_turns"`
	// RewritePrefix lets whitespace and minify_json change the system
	// prompt and the conversation's stable prefix too, which defeats the
	// providers' prompt caching; off by default.
	RewritePrefix bool `yaml:"rewrite_prefix"`
	// FitBudget is the cost-aware path: a chat request that the org's
	// remaining budget cannot hold at full length is compressed first
	// (fit_history into the prompt tokens the remaining budget still pays
	// for, with the output it reserves), then admitted if it now fits;
	// otherwise the budget's on_exhausted applies as usual. Needs the
	// fit_history strategy and an org budget.
	FitBudget bool `yaml:"fit_budget"`
}

// validateOrgSavings checks an org's cache and compression settings.
func (l *loader) validateOrgSavings(m itemMeta, o *Org, models map[string]bool) {
	cm := itemMeta{file: m.file, path: m.path + ".cache", pos: m.at("cache")}
	c := &o.Cache
	switch c.When {
	case "", CacheTemperatureZero, CacheAny:
	default:
		l.errf(cm, "when", " %q is not supported (use temperature_zero or any)", clip(c.When, 40))
	}
	l.checkModelRefs(cm, c.Models, models, o)

	pm := itemMeta{file: m.file, path: m.path + ".compression", pos: m.at("compression")}
	p := &o.Compression
	seen := map[string]bool{}
	for j, s := range p.Strategies {
		name := "strategies[" + strconv.Itoa(j) + "]"
		switch {
		case !contains(CompressionStrategies(), s):
			l.errf(pm, name, " %q is not a strategy (use %s)", clip(s, 40), strings.Join(CompressionStrategies(), ", "))
		case seen[s]:
			l.errf(pm, name, " %q is listed twice", s)
		}
		seen[s] = true
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max_input_tokens", p.MaxInputTokens}, {"max_tool_result_tokens", p.MaxToolResultTokens}, {"keep_last_turns", p.KeepLastTurns}} {
		if f.v < 0 {
			l.errf(pm, f.name, " must not be negative")
		}
	}
	if p.FitBudget {
		switch {
		case !seen[CompressFitHistory]:
			l.errf(pm, "fit_budget", " needs the %s strategy", CompressFitHistory)
		case o.Budget.IsZero():
			l.errf(pm, "fit_budget", " needs an org budget (budget.monthly or budget.daily)")
		}
	}
	l.checkModelRefs(pm, p.Models, models, o)
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
