package configs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Fail modes accepted in Org.FailMode: what an org's requests get while the
// shared quota backend (Redis) is unavailable.
const (
	FailLocal  = "local"  // each replica enforces its share of every limit (default)
	FailOpen   = "open"   // admit without counting
	FailClosed = "closed" // refuse (503)
)

// ScopeEmergency is the Key.Scopes entry for an emergency-override key: its
// requests are served first from the org's queue and shed last.
const ScopeEmergency = "emergency"

// Unlimited is a Limit.Max that removes a tier's limit in an override
// (written "unlimited" in YAML).
const Unlimited = -1

// Zero is the Limit.Max of a limit written as 0: nothing is allowed (an
// exhausted quota), as distinct from a limit left out.
const Zero = -2

// Limit is one limit. YAML accepts an integer (the maximum; 0 allows
// nothing), "unlimited" (in an override: remove the tier's limit), or a mapping
// {max, burst, shadow}: burst is the most a rate lets through at one
// instant (default max), shadow counts and reports without refusing.
type Limit struct {
	Max    int64 `yaml:"max"`
	Burst  int64 `yaml:"burst"`
	Shadow bool  `yaml:"shadow"`
}

// Limits are optional limits of an org, a key or a tier: requests and
// tokens per minute, tokens per hour, requests and tokens per calendar day
// (in the org's time zone).
type Limits struct {
	RPM Limit `yaml:"rpm"`
	TPM Limit `yaml:"tpm"`
	TPH Limit `yaml:"tph"`
	RPD Limit `yaml:"rpd"`
	TPD Limit `yaml:"tpd"`
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// Tier is a named template of limits that orgs refer to.
type Tier struct {
	ID string `yaml:"id"`
	// Class orders queued requests: a higher class is served first and
	// shed last.
	Class  int    `yaml:"class"`
	Limits Limits `yaml:"limits"`
	Pos    Pos    `yaml:"-"`
}

// Schedule changes an org's limits on a date range (both ends included,
// in the org's time zone): "MM-DD" recurs every year (and may wrap the new
// year), "YYYY-MM-DD" is one range. Limits override, then Multiplier
// scales.
type Schedule struct {
	Name       string  `yaml:"name"`
	From       string  `yaml:"from"`
	To         string  `yaml:"to"`
	Multiplier float64 `yaml:"multiplier"`
	Limits     Limits  `yaml:"limits"`
}

// PriorityMode is an org's time-boxed critical period (a wedding day):
// higher limits and first place in the queue. It is on from policy until
// Until (RFC 3339; empty: off unless started through the admin API, for
// Duration, default 24h). Limits override, then Multiplier scales (default
// x2 when neither is set).
type PriorityMode struct {
	Until      string   `yaml:"until"`
	Duration   Duration `yaml:"duration"`
	Multiplier float64  `yaml:"multiplier"`
	Limits     Limits   `yaml:"limits"`
}

// Queue lets requests over a rate limit wait instead of being refused.
type Queue struct {
	Depth   int      `yaml:"depth"`    // most waiting requests for the org; 0 disables
	MaxWait Duration `yaml:"max_wait"` // longest wait
}

// Output says how many output tokens admission reserves for a chat request
// without max_tokens, and caps what it reserves for one with it.
type Output struct {
	DefaultMaxTokens int `yaml:"default_max_tokens"` // 0: 1024
	MaxTokensCap     int `yaml:"max_tokens_cap"`     // 0: no cap
}

// parseDate checks "YYYY-MM-DD" or "MM-DD".
func parseDate(s string) error {
	layout := "2006-01-02"
	v := s
	if strings.Count(s, "-") == 1 {
		layout, v = "2006-01-02", "2000-"+s // a leap year: 02-29 recurs
	}
	if _, err := time.Parse(layout, v); err != nil {
		return fmt.Errorf("%q is not a date (use YYYY-MM-DD, or MM-DD for every year)", clip(s, 40))
	}
	return nil
}

func (l *loader) validateLimits(m itemMeta, name string, x *Limits, override bool) {
	lm := itemMeta{file: m.file, path: m.path + "." + name, pos: m.at(name)}
	for _, f := range []struct {
		name string
		l    *Limit
	}{{"rpm", &x.RPM}, {"tpm", &x.TPM}, {"tph", &x.TPH}, {"rpd", &x.RPD}, {"tpd", &x.TPD}} {
		switch {
		case f.l.Max == Unlimited && !override:
			l.errf(lm, f.name, ": unlimited is only meaningful in an override (leave the limit out instead)")
		case (f.l.Max < Unlimited && f.l.Max != Zero) || f.l.Burst < 0:
			l.errf(lm, f.name, " must not be negative")
		case f.l.Max > 1<<40 || f.l.Burst > 1<<40:
			l.errf(lm, f.name, " is too large (at most %d)", int64(1)<<40)
		}
	}
}

func (l *loader) validateTiers(ts []Tier) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]Pos{}
	for i := range ts {
		t, m := &ts[i], l.tierMeta[i]
		if m.bad() {
			continue
		}
		if l.checkID(m, t.ID) {
			l.unique(seen, m, "tier", t.ID)
			ids[t.ID] = true
		}
		if t.Class < 0 || t.Class >= 1<<20 {
			l.errf(m, "class", " must be between 0 and %d", 1<<20-1)
		}
		l.validateLimits(m, "limits", &t.Limits, false)
	}
	return ids
}

// validateOrgQuota checks an org's quota settings against the tiers.
func (l *loader) validateOrgQuota(m itemMeta, o *Org, tiers map[string]bool) {
	if o.Tier != "" && !tiers[o.Tier] {
		l.errf(m, "tier", ": tier %q is not declared", clip(o.Tier, 64))
	}
	l.validateLimits(m, "limits", &o.Limits, true)
	if o.Timezone != "" {
		if _, err := time.LoadLocation(o.Timezone); err != nil {
			l.errf(m, "timezone", ": %q is not a known time zone (use an IANA name such as Europe/London)", clip(o.Timezone, 64))
		}
	}
	for j := range o.Schedules {
		s := &o.Schedules[j]
		sm := itemMeta{file: m.file, path: m.path + ".schedules[" + strconv.Itoa(j) + "]", pos: m.at("schedules[" + strconv.Itoa(j) + "]")}
		for _, f := range []struct{ name, v string }{{"from", s.From}, {"to", s.To}} {
			if f.v == "" {
				l.required(sm, f.name, "")
			} else if err := parseDate(f.v); err != nil {
				l.errf(sm, f.name, ": %s", err)
			}
		}
		if (strings.Count(s.From, "-") == 1) != (strings.Count(s.To, "-") == 1) {
			l.errf(sm, "to", ": from and to must both have a year or both recur every year")
		}
		if s.Multiplier < 0 {
			l.errf(sm, "multiplier", " must be positive")
		}
		if s.Multiplier == 0 && s.Limits.IsZero() {
			l.errf(sm, "multiplier", ": set a multiplier or limits")
		}
		l.validateLimits(sm, "limits", &s.Limits, true)
	}
	pm := itemMeta{file: m.file, path: m.path + ".priority_mode", pos: m.at("priority_mode")}
	if u := o.PriorityMode.Until; u != "" {
		if _, err := time.Parse(time.RFC3339, u); err != nil {
			l.errf(pm, "until", ": %q is not an RFC 3339 time such as 2027-06-12T23:59:00+01:00", clip(u, 40))
		}
	}
	if o.PriorityMode.Multiplier < 0 {
		l.errf(pm, "multiplier", " must be positive")
	}
	l.validateLimits(pm, "limits", &o.PriorityMode.Limits, true)
	if o.Queue.Depth < 0 {
		l.errf(m, "queue.depth", " must not be negative")
	}
	switch o.FailMode {
	case "", FailLocal, FailOpen, FailClosed:
	default:
		l.errf(m, "fail_mode", " %q is not supported (use local, open or closed)", clip(o.FailMode, 40))
	}
	if o.Output.DefaultMaxTokens < 0 || o.Output.MaxTokensCap < 0 {
		l.errf(m, "output", ": token counts must not be negative")
	}
}

// validateKeyQuota checks a key's own limits and scopes.
func (l *loader) validateKeyQuota(m itemMeta, k *Key) {
	l.validateLimits(m, "limits", &k.Limits, false)
	for j, s := range k.Scopes {
		if s != ScopeEmergency {
			l.errf(m, "scopes["+strconv.Itoa(j)+"]", " %q is not a scope (use emergency)", clip(s, 40))
		}
	}
}
