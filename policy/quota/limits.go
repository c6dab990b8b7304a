package quota

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Unlimited, as an override's Max, removes the limit it overrides.
const Unlimited int64 = -1

// Zero, as a Max, allows nothing: every request the limit applies to is
// refused (an exhausted or withheld quota). It overrides like any set
// limit and scaling leaves it zero.
const Zero int64 = -2

// DefaultPriorityDuration is how long a priority mode started without an
// explicit duration lasts.
const DefaultPriorityDuration = 24 * time.Hour

// DefaultPriorityMultiplier scales every limit while a priority mode is
// active when the policy names neither a multiplier nor override limits.
const DefaultPriorityMultiplier = 2.0

// DefaultOutputTokens is the output estimate reserved for a chat request
// that gives no max_tokens when the policy sets none.
const DefaultOutputTokens = 1024

// Limit is one limit: at most Max requests or tokens per window (a minute,
// an hour, or a calendar day).
//
// Per-minute and per-hour limits are rates, enforced with GCRA (in its
// equivalent leaky-bucket form, in exact integer arithmetic): the allowance
// refills continuously at Max per window, and at most Burst may be taken at
// one instant. In any interval of length d at most Burst + ⌈d·Max/window⌉
// pass, so there is no window boundary at which twice the rate gets
// through. Burst 0 means Max: a full window's allowance, refilled
// continuously, which is how OpenAI's own limits behave.
//
// Daily limits are counters of the calendar day in the org's time zone,
// reset at its midnight; Burst is ignored for them.
//
// A Shadow limit is counted and reported (Decision.Shadowed, metrics,
// headers) but never refuses. It counts what enforcement would have
// admitted: a request it would have refused is not counted against it.
type Limit struct {
	Max    int64 // 0: no limit; Zero: nothing allowed
	Burst  int64 // rates only; 0: Max
	Shadow bool
}

// Set reports whether the limit applies.
func (l Limit) Set() bool { return l.Max > 0 || l.Max == Zero }

func (l Limit) burst() int64 {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.Max
}

// Limits are the limits of one subject (an organisation or one key). Each is
// optional.
type Limits struct {
	RPM Limit // requests per minute (rate)
	TPM Limit // tokens per minute (rate)
	TPH Limit // tokens per hour (rate)
	RPD Limit // requests per calendar day (counter)
	TPD Limit // tokens per calendar day (counter)
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// Override returns l with o's fields applied, limit by limit: an o limit
// with Max > 0 replaces l's limit whole (its Burst and Shadow included);
// Max == Unlimited removes it; Max == 0 keeps l's limit but applies o's
// Burst when > 0 and o's Shadow when true. A tier is a template and an org
// overrides any field of it this way.
func (l Limits) Override(o Limits) Limits {
	f := func(base, over Limit) Limit {
		switch {
		case over.Max > 0 || over.Max == Zero:
			return over
		case over.Max == Unlimited:
			return Limit{}
		}
		if over.Burst > 0 {
			base.Burst = over.Burst
		}
		if over.Shadow {
			base.Shadow = true
		}
		return base
	}
	return Limits{
		RPM: f(l.RPM, o.RPM), TPM: f(l.TPM, o.TPM), TPH: f(l.TPH, o.TPH),
		RPD: f(l.RPD, o.RPD), TPD: f(l.TPD, o.TPD),
	}
}

// Scale multiplies every Max and explicit Burst by m (rounded, at least 1).
func (l Limits) Scale(m float64) Limits {
	if m == 1 || m <= 0 {
		return l
	}
	f := func(x Limit) Limit {
		if x.Max > 0 {
			x.Max = scaleInt(x.Max, m)
		}
		if x.Burst > 0 {
			x.Burst = scaleInt(x.Burst, m)
		}
		return x
	}
	return Limits{RPM: f(l.RPM), TPM: f(l.TPM), TPH: f(l.TPH), RPD: f(l.RPD), TPD: f(l.TPD)}
}

func scaleInt(v int64, m float64) int64 {
	r := math.Round(float64(v) * m)
	if r < 1 {
		return 1
	}
	if r > maxLimit {
		return maxLimit
	}
	return int64(r)
}

// maxLimit bounds Max and Burst so that the scaled arithmetic stays exact
// (see newRate).
const maxLimit = 1 << 40

func (l Limits) validate() error {
	var errs []error
	for _, x := range [...]struct {
		name string
		l    Limit
	}{{"rpm", l.RPM}, {"tpm", l.TPM}, {"tph", l.TPH}, {"rpd", l.RPD}, {"tpd", l.TPD}} {
		if (x.l.Max < 0 && x.l.Max != Unlimited && x.l.Max != Zero) || x.l.Burst < 0 {
			errs = append(errs, fmt.Errorf("%s: max and burst must not be negative", x.name))
		}
		if x.l.Max > maxLimit || x.l.Burst > maxLimit {
			errs = append(errs, fmt.Errorf("%s: max and burst must be at most %d", x.name, int64(maxLimit)))
		}
	}
	return errors.Join(errs...)
}

// Class orders requests in an org's queue: a higher class is served first
// and shed last. Tiers carry a class; a priority mode raises an org's
// requests to ClassPriorityMode; an emergency-override key scope gives
// ClassEmergency (set by the caller in Subject.Class or
// policy.Exchange.Priority).
type Class int

// Classes above any tier's.
const (
	ClassDefault      Class = 0
	ClassPriorityMode Class = 1 << 20
	ClassEmergency    Class = 1 << 21
)

// Tier is a named template of limits (FREE, STARTER, ...).
type Tier struct {
	Name   string
	Limits Limits
	Class  Class // queue class of the tier's requests
}

// ExampleTiers returns the shipped example tiers: FREE allows 10 requests a
// day, STARTER 100, PROFESSIONAL and ENTERPRISE more, all with per-minute
// rates. A fresh slice is returned on every call.
func ExampleTiers() []Tier {
	return []Tier{
		{Name: "FREE", Class: 0, Limits: Limits{
			RPM: Limit{Max: 3}, TPM: Limit{Max: 10_000},
			RPD: Limit{Max: 10}, TPD: Limit{Max: 50_000},
		}},
		{Name: "STARTER", Class: 10, Limits: Limits{
			RPM: Limit{Max: 20}, TPM: Limit{Max: 40_000},
			RPD: Limit{Max: 100}, TPD: Limit{Max: 500_000},
		}},
		{Name: "PROFESSIONAL", Class: 20, Limits: Limits{
			RPM: Limit{Max: 500}, TPM: Limit{Max: 400_000}, TPH: Limit{Max: 10_000_000},
			RPD: Limit{Max: 20_000}, TPD: Limit{Max: 50_000_000},
		}},
		{Name: "ENTERPRISE", Class: 30, Limits: Limits{
			RPM: Limit{Max: 5_000}, TPM: Limit{Max: 4_000_000}, TPH: Limit{Max: 100_000_000},
			RPD: Limit{Max: 500_000}, TPD: Limit{Max: 1_000_000_000},
		}},
	}
}

// Date is a calendar date in an org's time zone. Year 0 means every year
// (a recurring range such as a peak season).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses "YYYY-MM-DD" or, for every year, "MM-DD".
func ParseDate(s string) (Date, error) {
	parts := strings.Split(s, "-")
	var d Date
	var err error
	num := func(p string, lo, hi int) int {
		n, e := strconv.Atoi(p)
		if e != nil || n < lo || n > hi {
			err = fmt.Errorf("invalid date %q: want YYYY-MM-DD or MM-DD", s)
		}
		return n
	}
	switch len(parts) {
	case 2:
		d = Date{Month: time.Month(num(parts[0], 1, 12)), Day: num(parts[1], 1, 31)}
	case 3:
		d = Date{Year: num(parts[0], 1, 9999), Month: time.Month(num(parts[1], 1, 12)), Day: num(parts[2], 1, 31)}
	default:
		return Date{}, fmt.Errorf("invalid date %q: want YYYY-MM-DD or MM-DD", s)
	}
	if err != nil {
		return Date{}, err
	}
	return d, d.validate()
}

// String formats d as ParseDate reads it.
func (d Date) String() string {
	if d.Year == 0 {
		return fmt.Sprintf("%02d-%02d", int(d.Month), d.Day)
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

func (d Date) validate() error {
	if d.Month < 1 || d.Month > 12 || d.Day < 1 {
		return fmt.Errorf("invalid date %s", d)
	}
	y := d.Year
	if y == 0 {
		y = 2000 // a leap year: 02-29 is a valid recurring date
	}
	if time.Date(y, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Day() != d.Day {
		return fmt.Errorf("invalid date %s", d)
	}
	return nil
}

func (d Date) key() int { return d.Year*10000 + int(d.Month)*100 + d.Day }

// Schedule raises (or otherwise changes) an org's limits on a range of
// dates, From and To included, in the org's time zone. With Year 0 on both
// ends the range recurs every year and may wrap the new year (11-15 to
// 02-15). While active, Limits override the org's limits (as
// Limits.Override) and then Multiplier (if > 0) scales them; Multiplier also
// scales the org's per-key limits. Active schedules apply in order.
type Schedule struct {
	Name       string
	From, To   Date
	Multiplier float64
	Limits     Limits
}

func (s *Schedule) validate() error {
	var errs []error
	if err := s.From.validate(); err != nil {
		errs = append(errs, fmt.Errorf("from: %w", err))
	}
	if err := s.To.validate(); err != nil {
		errs = append(errs, fmt.Errorf("to: %w", err))
	}
	if (s.From.Year == 0) != (s.To.Year == 0) {
		errs = append(errs, errors.New("from and to must both have a year or both recur every year"))
	} else if s.From.Year != 0 && s.To.key() < s.From.key() {
		errs = append(errs, errors.New("to is before from"))
	}
	if s.Multiplier < 0 || math.IsNaN(s.Multiplier) || math.IsInf(s.Multiplier, 0) {
		errs = append(errs, errors.New("multiplier must be a positive number"))
	}
	if s.Multiplier == 0 && s.Limits.IsZero() {
		errs = append(errs, errors.New("set a multiplier or limits"))
	}
	if err := s.Limits.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("schedule %q: %w", s.Name, err)
	}
	return nil
}

// activeOn reports whether the schedule covers the local date y-m-d.
func (s *Schedule) activeOn(y int, m time.Month, d int) bool {
	if s.From.Year != 0 {
		k := y*10000 + int(m)*100 + d
		return s.From.key() <= k && k <= s.To.key()
	}
	k := int(m)*100 + d
	from, to := s.From.key(), s.To.key()
	if from <= to {
		return from <= k && k <= to
	}
	return k >= from || k <= to // wraps the new year
}

// PriorityMode is an org's time-boxed critical period: higher limits and
// ClassPriorityMode in the queue until Until. Limits override and
// Multiplier scales as for a Schedule; with neither set the multiplier is
// DefaultPriorityMultiplier. Limiter.StartPriorityMode turns it on at run
// time for DefaultPriorityDuration (24 h) or a given duration.
type PriorityMode struct {
	Until      time.Time // zero: off unless started at run time
	Multiplier float64
	Limits     Limits
}

func (p PriorityMode) multiplier() float64 {
	if p.Multiplier > 0 {
		return p.Multiplier
	}
	if p.Limits.IsZero() {
		return DefaultPriorityMultiplier
	}
	return 1
}

// Queue lets a request over a rate limit wait instead of being refused at
// once. Depth 0 disables it.
type Queue struct {
	Depth   int           // most waiting requests per org
	MaxWait time.Duration // longest wait; a request that cannot be admitted within it is refused at once
}

// FailMode says what happens to an org's requests while the shared backend
// (Redis) is unavailable.
type FailMode int

// Fail modes.
const (
	// FailLocal enforces each replica's share of every limit in process
	// (limit / Replicas, rounded up). The default.
	FailLocal FailMode = iota
	// FailOpen admits every request without counting it.
	FailOpen
	// FailClosed refuses every request (503, quota_unavailable).
	FailClosed
)

// String returns "local", "open" or "closed".
func (f FailMode) String() string {
	switch f {
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	default:
		return "local"
	}
}

// Output says how many output tokens admission reserves for a chat request:
// the client's max_tokens (or max_completion_tokens) times n, or Default
// when it gave none, capped at Cap when Cap > 0. The reservation is
// corrected with the real usage when the request finishes.
type Output struct {
	Default int // 0: DefaultOutputTokens
	Cap     int // 0: no cap
}

// KeyLimits are limits of one key, applied on top of its org's.
type KeyLimits struct {
	KeyID  string
	Limits Limits
}

// OrgPolicy is everything the limiter needs about one organisation. The
// proxy builds it from the policy files. The effective limits are
// Tier.Limits.Override(Override), then active schedules, then the priority
// mode.
type OrgPolicy struct {
	Org      string
	Tier     Tier
	Override Limits
	// Keys are optional per-key limits; a request is checked against its
	// org's and its key's limits at once.
	Keys []KeyLimits
	// Location is the org's time zone for daily quotas and schedules; nil
	// is UTC.
	Location  *time.Location
	Schedules []Schedule
	Priority  PriorityMode
	Queue     Queue
	FailMode  FailMode
	Output    Output
}

// Policies is one configuration generation's quota policy.
type Policies struct {
	Orgs []OrgPolicy
	// Default applies to orgs not listed (its Org field is ignored); nil
	// leaves them unlimited.
	Default *OrgPolicy
}
