package quota

import "time"

// Reason names the limit behind a refusal (or a shadow limit's would-be
// refusal). It is stable: the proxy sends it in the x-aigw-quota-reason
// header and uses it as the reason label of aigw_quota_rejections_total.
type Reason string

// Reasons. "org_" limits are the organisation's, "key_" ones the key's.
const (
	ReasonOrgRPM Reason = "org_rpm"
	ReasonOrgTPM Reason = "org_tpm"
	ReasonOrgTPH Reason = "org_tph"
	ReasonOrgRPD Reason = "org_rpd"
	ReasonOrgTPD Reason = "org_tpd"
	ReasonKeyRPM Reason = "key_rpm"
	ReasonKeyTPM Reason = "key_tpm"
	ReasonKeyTPH Reason = "key_tph"
	ReasonKeyRPD Reason = "key_rpd"
	ReasonKeyTPD Reason = "key_tpd"
	// ReasonUnavailable: the shared backend is down and the org's policy
	// is FailClosed.
	ReasonUnavailable Reason = "quota_unavailable"
)

// Reasons lists every reason, for pre-declaring metric label values.
func Reasons() []Reason {
	return []Reason{ReasonOrgRPM, ReasonOrgTPM, ReasonOrgTPH, ReasonOrgRPD, ReasonOrgTPD,
		ReasonKeyRPM, ReasonKeyTPM, ReasonKeyTPH, ReasonKeyRPD, ReasonKeyTPD, ReasonUnavailable}
}

// Daily reports whether r is a daily quota (answered with
// insufficient_quota rather than rate_limit_exceeded).
func (r Reason) Daily() bool {
	switch r {
	case ReasonOrgRPD, ReasonOrgTPD, ReasonKeyRPD, ReasonKeyTPD:
		return true
	}
	return false
}

// OrgWide reports whether r is one of the organisation's limits (rather
// than a key's).
func (r Reason) OrgWide() bool { return len(r) > 4 && r[:4] == "org_" }

// limitKind indexes the five limits of a Limits.
type limitKind uint8

const (
	kRPM limitKind = iota
	kTPM
	kTPH
	kRPD
	kTPD
	numKinds
)

var kindInfo = [numKinds]struct {
	name   string
	window time.Duration // 0: calendar day
	tokens bool
	text   string
}{
	kRPM: {"rpm", time.Minute, false, "requests per minute"},
	kTPM: {"tpm", time.Minute, true, "tokens per minute"},
	kTPH: {"tph", time.Hour, true, "tokens per hour"},
	kRPD: {"rpd", 0, false, "requests per day"},
	kTPD: {"tpd", 0, true, "tokens per day"},
}

var reasons = [2][numKinds]Reason{
	{ReasonOrgRPM, ReasonOrgTPM, ReasonOrgTPH, ReasonOrgRPD, ReasonOrgTPD},
	{ReasonKeyRPM, ReasonKeyTPM, ReasonKeyTPH, ReasonKeyRPD, ReasonKeyTPD},
}

func (l *Limits) at(k limitKind) Limit {
	switch k {
	case kRPM:
		return l.RPM
	case kTPM:
		return l.TPM
	case kTPH:
		return l.TPH
	case kRPD:
		return l.RPD
	default:
		return l.TPD
	}
}

func (l *Limits) set(k limitKind, v Limit) {
	switch k {
	case kRPM:
		l.RPM = v
	case kTPM:
		l.TPM = v
	case kTPH:
		l.TPH = v
	case kRPD:
		l.RPD = v
	default:
		l.TPD = v
	}
}

// maxExact keeps every quantity the stores compute below 2^52, so that
// Redis's Lua (whose numbers are doubles) computes exactly what Go does.
const maxExact int64 = 1 << 52

// rateSpec is a rate limit in scaled integer units. Time advances in ticks
// of res µs; a cost unit (a request or a token) weighs unit scaled units;
// the bucket drains rate scaled units per tick and holds at most cap. So
// Max per window is rate·(window/res) = Max·unit per window, exactly, with
// no rounding of the emission interval window/Max.
type rateSpec struct {
	res  int64 // µs per tick, a power of ten
	rate int64 // drain per tick (= Max)
	unit int64 // scaled units per request or token (= window in ticks)
	cap  int64 // capacity (= Burst · unit)
}

func newRate(max, burst int64, window time.Duration) rateSpec {
	w := window.Microseconds()
	res := int64(1)
	for res < w && burst+1 > maxExact/(w/res) {
		res *= 10
	}
	unit := w / res
	return rateSpec{res: res, rate: max, unit: unit, cap: burst * unit}
}

// drain returns the bucket's level at now from its stored level and the
// time it was last drained to (µs). The time only advances by whole ticks,
// so no fraction of a tick is ever lost. A clock behind the stored time
// (another replica's) drains nothing.
func (r *rateSpec) drain(level, last, now int64) (int64, int64) {
	if level <= 0 {
		return 0, now
	}
	if now <= last {
		return level, last
	}
	el := (now - last) / r.res
	if el == 0 {
		return level, last
	}
	if el >= (level+r.rate-1)/r.rate {
		return 0, now
	}
	return level - el*r.rate, last + el*r.res
}

// until returns the µs from now until the bucket (drained to last) holds
// at most target.
func (r *rateSpec) until(level, last, target, now int64) int64 {
	ex := level - target
	if ex <= 0 {
		return 0
	}
	t := last + (ex+r.rate-1)/r.rate*r.res - now
	if t < 0 {
		return 0
	}
	return t
}

// clampLevel bounds a level after an unchecked charge.
func clampLevel(v int64) int64 {
	if v > maxExact {
		return maxExact
	}
	if v < 0 {
		return 0
	}
	return v
}
