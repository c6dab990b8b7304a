package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/accounting/tokens"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy/auth"
	"github.com/aigw/aigw/policy/budget"
	"github.com/aigw/aigw/policy/cache"
	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/policy/route"
	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/gemini"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/mock"
	"github.com/aigw/aigw/providers/openai"
	"github.com/aigw/aigw/providers/transport"
)

// Upstream sends one request to a provider and returns its answer once the
// status and headers are in. transport.Client and mock.Upstream implement
// it. Implementations are safe for concurrent use.
type Upstream interface {
	Do(ctx context.Context, out *llm.Outbound) (*llm.Inbound, error)
}

// Runtime is one immutable generation of the configuration, built from the
// policy files and swapped whole on reload. A request loads it once and
// keeps it to the end, streams included, so a reload never changes a
// request half-way.
type Runtime struct {
	Generation   uint64
	Checksum     string
	MaxBodyBytes int64
	// MetadataHeaders are the request headers recorded as ledger metadata.
	MetadataHeaders []string

	pipe     Pipeline
	models   map[string]*Model
	modelIDs []string // sorted
	created  int64    // unix time the snapshot was built, for /v1/models
	// health is the generation's active health checker (nil: no probes);
	// the Server runs it while the generation is current.
	health *route.HealthChecker
	// quota is the generation's quota stage and priority-mode defaults.
	quota *quotaPlan
	// prices is the shipped table with the policy's prices merged in (nil:
	// costs are unknown); currency the display rate of each org that has
	// one; meta the allow-listed metadata headers.
	prices   *prices.Table
	currency map[string]accounting.Rate
	// budget is the generation's budget stage; nil when no org has one.
	budget *budgetStage
	// cache is the generation's cache policy; nil when no org has one.
	cache *cacheStage
	meta  []metaHeader
}

// Model is a configured alias and its ordered targets.
type Model struct {
	ID        string
	Embedding bool
	Targets   []*Target
}

// Target is a resolved upstream for a model: where to send, in which wire
// format, through which client.
type Target struct {
	llm.Target
	adapter  Adapter
	upstream Upstream
	// openAIWire says the upstream speaks OpenAI's format, so answers may
	// pass through to OpenAI clients unchanged.
	openAIWire bool
}

// builder turns policies into runtimes. It keeps upstream clients across
// generations when a provider's settings did not change, so connection pools
// survive reloads. It is used under the server's reload lock.
type builder struct {
	mu      sync.Mutex
	clients map[string]Upstream // keyed by provider settings
	gen     uint64
	now     func() time.Time
	routes  *route.Registry
	quota   *quota.Limiter
	// prices is the shipped price table policies add to (nil: none).
	prices *prices.Table
	budget *budget.Keeper
	// newCache makes the response cache the first time a policy turns it
	// on, sized by that policy (a later size change needs a restart);
	// cache is it, shared by every later generation.
	newCache func(maxBytes int64) (*cache.Cache, error)
	cache    *cache.Cache
	metrics  *Metrics
	// tokens is the prompt counter, built on first use (it costs about a
	// second and 50 MB) and shared by every generation.
	tokens func() *tokens.Counter
}

func newBuilder(now func() time.Time, routes *route.Registry, lim *quota.Limiter) *builder {
	return &builder{clients: map[string]Upstream{}, now: now, routes: routes, quota: lim,
		tokens: sync.OnceValue(func() *tokens.Counter { return tokens.New(tokens.Options{}) })}
}

// build validates nothing the loader already checked; it fails only on
// things the loader cannot know (an adapter for a provider type this build
// lacks).
func (b *builder) build(pol *configs.Policy) (*Runtime, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rt := &Runtime{
		Checksum:        pol.Checksum,
		MaxBodyBytes:    int64(pol.Server.MaxBodyBytes),
		MetadataHeaders: pol.Server.MetadataHeaders,
		models:          make(map[string]*Model, len(pol.Models)),
		created:         b.now().Unix(),
	}
	if rt.MaxBodyBytes <= 0 {
		rt.MaxBodyBytes = 8 << 20
	}
	if b.prices != nil || len(pol.Prices) > 0 {
		table, probs := PriceTable(pol, b.prices)
		if b.prices == nil {
			probs = nil // no shipped table: only the policy's entries are known
		}
		if table == nil || len(probs) > 0 {
			return nil, problemsError("prices", probs)
		}
		rt.prices = table
	}
	var err error
	if rt.currency, err = currencies(pol); err != nil {
		return nil, err
	}
	rt.meta = metadataHeaders(pol.Server.MetadataHeaders)
	providers := make(map[string]*configs.Provider, len(pol.Providers))
	for i := range pol.Providers {
		providers[pol.Providers[i].ID] = &pol.Providers[i]
	}
	used := map[string]Upstream{}
	for _, m := range pol.Models {
		model := &Model{ID: m.ID, Embedding: m.Type == "embedding"}
		for _, tr := range m.Targets {
			p := providers[tr.Provider]
			if p == nil {
				return nil, fmt.Errorf("model %s: unknown provider %q", m.ID, tr.Provider)
			}
			t, err := b.target(p, tr, m.ID, used)
			if err != nil {
				return nil, fmt.Errorf("model %s: %w", m.ID, err)
			}
			model.Targets = append(model.Targets, t)
		}
		rt.models[m.ID] = model
		rt.modelIDs = append(rt.modelIDs, m.ID)
	}
	sort.Strings(rt.modelIDs)

	orgModels := make(map[string][]string, len(pol.Orgs))
	for _, o := range pol.Orgs {
		orgModels[o.ID] = o.Models
	}
	keys := make([]auth.Key, 0, len(pol.Keys))
	for _, k := range pol.Keys {
		allowed, all := effectiveModels(orgModels[k.Org], k.Models)
		keys = append(keys, auth.Key{ID: k.ID, Org: k.Org, SHA256: strings.ToLower(k.SHA256),
			Models: allowed, AllModels: all, Disabled: k.Disabled, Priority: keyPriority(&k)})
	}
	t, err := auth.New(keys)
	if err != nil {
		return nil, err
	}
	tbl, err := buildRoutes(b.routes, pol, rt.models)
	if err != nil {
		return nil, err
	}
	if rt.health, err = b.routes.NewHealthChecker(healthProbes(pol, rt.models)); err != nil {
		return nil, err
	}
	if rt.quota, err = buildQuota(b.quota, pol, b.tokens); err != nil {
		return nil, err
	}
	rt.pipe = Pipeline{Auth: t, Quota: rt.quota.stage, Route: tbl}
	if b.newCache != nil && b.cache == nil && slices.ContainsFunc(pol.Orgs, func(o configs.Org) bool { return o.Cache.Enabled }) {
		size := int64(pol.Server.Cache.MaxBytes)
		if size <= 0 {
			size = int64(configs.DefaultCacheMaxBytes)
		}
		if b.cache, err = b.newCache(size); err != nil {
			return nil, fmt.Errorf("response cache: %w", err)
		}
	}
	rt.cache = buildCache(b.cache, pol)
	cs, err := buildCompress(pol, b.tokens, b.metrics)
	if err != nil {
		return nil, err
	}
	if cs != nil { // a nil *compressStage must not become a non-nil Compressor
		rt.pipe.Compress = cs
	}
	if b.budget != nil {
		bs, err := buildBudget(b.budget, pol, rt, b.tokens)
		if err != nil {
			return nil, err
		}
		if bs != nil { // a nil *budgetStage must not become a non-nil Gate
			if cs != nil {
				bs.fit = cs
			}
			rt.pipe.Budget = bs
			rt.budget = bs
		}
	}
	b.clients = used // clients no longer referenced are dropped; their idle conns time out
	b.gen++
	rt.Generation = b.gen
	return rt, nil
}

// problemsError joins policy problems into one error, each with its
// position.
func problemsError(what string, probs []configs.Problem) error {
	errs := make([]error, 0, len(probs))
	for _, p := range probs {
		errs = append(errs, errors.New(p.String()))
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("invalid"))
	}
	return fmt.Errorf("%s: %w", what, errors.Join(errs...))
}

// effectiveModels intersects an org's allowed models with a key's narrower
// list ("*" or empty means no restriction at that level).
func effectiveModels(org, key []string) ([]string, bool) {
	orgAll := len(org) == 0 || contains(org, "*")
	keyAll := len(key) == 0 || contains(key, "*")
	switch {
	case orgAll && keyAll:
		return nil, true
	case orgAll:
		return key, false
	case keyAll:
		return org, false
	}
	var out []string
	for _, m := range key {
		if contains(org, m) {
			out = append(out, m)
		}
	}
	return out, false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (b *builder) target(p *configs.Provider, tr configs.TargetRef, alias string, used map[string]Upstream) (*Target, error) {
	upstreamModel := tr.Model
	if upstreamModel == "" {
		upstreamModel = alias
	}
	t := &Target{Target: llm.Target{
		ID:               p.ID + "/" + upstreamModel,
		Provider:         p.ID,
		Type:             p.Type,
		BaseURL:          strings.TrimRight(p.BaseURL, "/"),
		Model:            upstreamModel,
		APIKey:           p.APIKey.Value(),
		APIVersion:       p.APIVersion,
		DefaultMaxTokens: tr.MaxTokens,
	}}
	key := clientKey(p)
	up := used[key]
	if up == nil {
		up = b.clients[key]
	}
	switch p.Type {
	case "openai", "mock":
		t.adapter = adapt[*openai.StreamDecoder](openai.Adapter{})
		t.openAIWire = true
	case "azure":
		t.adapter = adapt[*openai.StreamDecoder](openai.AzureAdapter{})
		t.openAIWire = true
	case "anthropic":
		t.adapter = adapt[*anthropic.StreamDecoder](anthropic.Adapter{Now: b.now})
	case "gemini":
		t.adapter = adapt[*gemini.StreamDecoder](gemini.New(b.now))
	default:
		return nil, fmt.Errorf("provider %s: type %q is not supported by this build", p.ID, p.Type)
	}
	if up == nil {
		if p.Type == "mock" {
			cfg := mock.Config{}
			if p.Mock != nil {
				cfg = mock.Config{Latency: p.Mock.Latency.D(), ChunkInterval: p.Mock.ChunkInterval.D(),
					Chunks: p.Mock.Chunks, Reply: p.Mock.Reply, Dimensions: p.Mock.Dimensions}
			}
			up = mock.New(cfg)
		} else {
			up = transport.New(transport.Config{
				Name:             p.ID,
				ConnectTimeout:   p.Timeouts.Connect.D(),
				FirstByteTimeout: p.Timeouts.FirstByte.D(),
				IdleTimeout:      p.Timeouts.Idle.D(),
				TotalTimeout:     p.Timeouts.Total.D(),
				MaxConns:         p.MaxConns,
			})
		}
	}
	if p.Type == "mock" {
		t.BaseURL = "mock://" + p.ID
	}
	used[key] = up
	t.upstream = up
	return t, nil
}

// clientKey identifies the settings that shape an upstream client.
func clientKey(p *configs.Provider) string {
	k := fmt.Sprintf("%s|%s|%s|%d|%v", p.ID, p.Type, p.BaseURL, p.MaxConns, p.Timeouts)
	if p.Mock != nil {
		k += fmt.Sprintf("|%v", *p.Mock)
	}
	return k
}

// lookupModel returns the configured model for an alias.
func (rt *Runtime) lookupModel(alias string) *Model { return rt.models[alias] }
