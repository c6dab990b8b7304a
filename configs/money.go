package configs

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Budget actions accepted in Budget.OnExhausted: what an org's requests get
// once a budget is spent.
const (
	BudgetRefuse       = "refuse"        // 429 insufficient_quota (the default)
	BudgetDowngrade    = "downgrade"     // served by Budget.DowngradeTo while it fits
	BudgetPriorityOnly = "priority_only" // only emergency keys and the org's priority mode are served
)

// Decimal is an exact non-negative decimal number written in YAML as a
// number or a string ("2.50", 0.075, "10"), with at most six fractional
// digits. It is kept as text so that no amount of money ever passes
// through a float; the runtime parses it into integer millionths.
type Decimal string

// IsZero reports whether d was left out.
func (d Decimal) IsZero() bool { return d == "" }

// checkDecimal explains why s is not a Decimal, or returns "".
func checkDecimal(s string) string {
	whole, frac, dot := strings.Cut(s, ".")
	digits := func(p string) bool {
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
		return true
	}
	switch {
	case s == "" || !digits(whole) || !digits(frac) || (dot && frac == "") || whole == "" && !dot:
		return fmt.Sprintf("%q is not a non-negative decimal number", clip(s, 40))
	case len(frac) > 6:
		return fmt.Sprintf("%q has more than six decimal places", clip(s, 40))
	case len(whole) > 12:
		return fmt.Sprintf("%q is too large", clip(s, 40))
	}
	return ""
}

// Price adds a model to the shipped price table (configs/prices.yaml) or
// replaces its entry whole. Amounts are USD per million tokens.
type Price struct {
	// Provider is a provider id declared in the policy (to price one
	// account apart) or a provider type ("openai", "anthropic", ...).
	Provider string `yaml:"provider"`
	// Model is the upstream model name, or "*" for every model of the
	// provider.
	Model       string  `yaml:"model"`
	Input       Decimal `yaml:"input"`        // required
	Output      Decimal `yaml:"output"`       // required
	CachedInput Decimal `yaml:"cached_input"` // default: Input
	CacheWrite  Decimal `yaml:"cache_write"`  // default: Input
	Pos         Pos     `yaml:"-"`
}

// Budget caps what an org spends, in USD, per calendar day and month in
// the org's time zone. Admission reserves each request's maximum cost;
// the actual cost replaces it when the request ends.
type Budget struct {
	Monthly Decimal `yaml:"monthly"` // USD per calendar month; empty: none
	Daily   Decimal `yaml:"daily"`   // USD per calendar day; empty: none
	// Alerts are the percentages of a budget at which an alert fires,
	// once per period each; default 80, 90, 100.
	Alerts []int `yaml:"alerts"`
	// Webhooks receive alerts as Slack-compatible JSON; they usually hold
	// a secret token, so write them as ${ENV} references.
	Webhooks []Secret `yaml:"webhooks"`
	// OnExhausted is BudgetRefuse (default), BudgetDowngrade or
	// BudgetPriorityOnly.
	OnExhausted string `yaml:"on_exhausted"`
	// DowngradeTo is the model that serves requests once the budget is
	// spent, with BudgetDowngrade: a declared chat model the org may use.
	DowngradeTo string `yaml:"downgrade_to"`
}

// IsZero reports whether no budget is set.
func (b *Budget) IsZero() bool { return b.Monthly.IsZero() && b.Daily.IsZero() }

// Currency is the org's display currency: costs are recorded in USD and
// converted at USDRate (units of Code per US dollar).
type Currency struct {
	Code    string  `yaml:"code"`     // ISO 4217, e.g. "GBP"; empty: USD
	USDRate Decimal `yaml:"usd_rate"` // required with Code, e.g. "0.79"
}

// validatePrices checks the policy's price entries.
func (l *loader) validatePrices(ps []Price, providers map[string]*Provider) {
	seen := map[string]Pos{}
	for i := range ps {
		p, m := &ps[i], l.priceMeta[i]
		if m.bad() {
			continue
		}
		if p.Provider == "" {
			l.required(m, "provider", " (a provider id or type)")
		} else if providers[p.Provider] == nil && !isProviderType(p.Provider) {
			l.errf(m, "provider", ": %q is neither a declared provider nor a provider type (%s)", clip(p.Provider, 64), providerTypes)
		}
		if p.Model == "" {
			l.required(m, "model", " (an upstream model name or \"*\")")
		}
		if k := p.Provider + "\x00" + p.Model; p.Provider != "" && p.Model != "" {
			if first, dup := seen[k]; dup {
				l.errf(m, "model", ": %s %s is already priced at %s", p.Provider, p.Model, first)
			} else {
				seen[k] = m.at("model")
			}
		}
		for _, f := range []struct {
			name     string
			v        Decimal
			required bool
		}{{"input", p.Input, true}, {"output", p.Output, true}, {"cached_input", p.CachedInput, false}, {"cache_write", p.CacheWrite, false}} {
			if f.v.IsZero() {
				if f.required {
					l.required(m, f.name, " (USD per million tokens)")
				}
			} else if msg := checkDecimal(string(f.v)); msg != "" {
				l.errf(m, f.name, ": %s", msg)
			}
		}
	}
}

func isProviderType(s string) bool {
	switch s {
	case ProviderOpenAI, ProviderAzure, ProviderAnthropic, ProviderGemini, ProviderMock:
		return true
	}
	return false
}

// validateOrgMoney checks an org's budget and display currency. chat lists
// the declared chat models.
func (l *loader) validateOrgMoney(m itemMeta, o *Org, chat map[string]bool) {
	b := &o.Budget
	bm := itemMeta{file: m.file, path: m.path + ".budget", pos: m.at("budget")}
	for _, f := range []struct {
		name string
		v    Decimal
	}{{"monthly", b.Monthly}, {"daily", b.Daily}} {
		if f.v.IsZero() {
			continue
		}
		if msg := checkDecimal(string(f.v)); msg != "" {
			l.errf(bm, f.name, ": %s", msg)
		}
	}
	if !b.IsZero() || len(b.Alerts) > 0 || len(b.Webhooks) > 0 || b.OnExhausted != "" || b.DowngradeTo != "" {
		if b.IsZero() {
			l.errf(bm, "monthly", ": set monthly or daily (the budget's other settings have nothing to apply to)")
		}
	}
	prev := 0
	for j, a := range b.Alerts {
		name := "alerts[" + strconv.Itoa(j) + "]"
		switch {
		case a < 1 || a > 1000:
			l.errf(bm, name, " must be a percentage between 1 and 1000")
		case a <= prev:
			l.errf(bm, name, " must be greater than the alert before it")
		}
		prev = a
	}
	hooks := b.Webhooks[:0:0]
	for j, w := range b.Webhooks {
		name := "webhooks[" + strconv.Itoa(j) + "]"
		if w != "" {
			hooks = append(hooks, w)
		}
		if w == "" {
			l.rep.warn(bm.at(name), bm.path+"."+name+" is empty: alerts for org "+strconv.Quote(o.ID)+" are only counted (aigw_budget_alerts_total)")
		} else if u, err := url.Parse(w.Value()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.errf(bm, name, ": must be an absolute http or https URL")
		}
	}
	b.Webhooks = hooks
	switch b.OnExhausted {
	case "", BudgetRefuse, BudgetPriorityOnly:
		if b.DowngradeTo != "" {
			l.errf(bm, "downgrade_to", ": only used with on_exhausted: downgrade")
		}
	case BudgetDowngrade:
		switch {
		case b.DowngradeTo == "":
			l.required(bm, "downgrade_to", " (the cheaper chat model to serve once the budget is spent)")
		case !chat[b.DowngradeTo]:
			l.errf(bm, "downgrade_to", ": %q is not a declared chat model", clip(b.DowngradeTo, 64))
		case !allows(o.Models, b.DowngradeTo):
			l.errf(bm, "downgrade_to", ": model %q is not allowed for org %q", b.DowngradeTo, o.ID)
		}
	default:
		l.errf(bm, "on_exhausted", " %q is not supported (use refuse, downgrade or priority_only)", clip(b.OnExhausted, 40))
	}

	c := &o.Currency
	cm := itemMeta{file: m.file, path: m.path + ".currency", pos: m.at("currency")}
	switch {
	case c.Code == "" && !c.USDRate.IsZero():
		l.required(cm, "code", " (an ISO 4217 code such as GBP)")
	case c.Code == "":
	case len(c.Code) != 3 || strings.ToUpper(c.Code) != c.Code || !isToken(c.Code):
		l.errf(cm, "code", ": %q is not an ISO 4217 code such as GBP", clip(c.Code, 40))
	case c.USDRate.IsZero() && c.Code != "USD":
		l.required(cm, "usd_rate", " (units of "+c.Code+" per US dollar, e.g. \"0.79\")")
	}
	if !c.USDRate.IsZero() {
		if msg := checkDecimal(string(c.USDRate)); msg != "" {
			l.errf(cm, "usd_rate", ": %s", msg)
		} else if strings.Trim(string(c.USDRate), "0.") == "" {
			l.errf(cm, "usd_rate", " must be positive")
		}
	}
}

// Record fields request metadata may fill, in the usage ledger's column
// names.
const (
	MetaUseCase        = "use_case"
	MetaVendorType     = "vendor_type"
	MetaWeddingDate    = "wedding_date"    // YYYY-MM-DD
	MetaWeddingRelated = "wedding_related" // true/false, yes/no, 1/0
)

// MetadataFields lists the record fields request metadata may fill.
func MetadataFields() []string {
	return []string{MetaUseCase, MetaVendorType, MetaWeddingDate, MetaWeddingRelated}
}

// MetadataField returns the record field a metadata header fills: its
// name lower-cased, without an "x-aigw-" or "x-" prefix, dashes as
// underscores ("X-Aigw-Wedding-Date" and "X-Wedding-Date" both fill
// wedding_date). It returns "" when the header names no field.
func MetadataField(header string) string {
	f := strings.ToLower(header)
	if s, ok := strings.CutPrefix(f, "x-aigw-"); ok {
		f = s
	} else {
		f = strings.TrimPrefix(f, "x-")
	}
	f = strings.ReplaceAll(f, "-", "_")
	for _, k := range MetadataFields() {
		if f == k {
			return k
		}
	}
	return ""
}
