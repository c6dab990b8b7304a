package budget

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aigw/aigw/accounting"
)

// Period is a budget's accounting period: a calendar day or a calendar
// month in the org's Location.
type Period string

// The periods a budget can have.
const (
	Daily   Period = "daily"
	Monthly Period = "monthly"
)

// Action is what happens to a request that the budget cannot hold, once a
// period is exhausted (at 100 %).
type Action int

const (
	// Refuse refuses the request with *Exhausted.
	Refuse Action = iota
	// Downgrade refuses the request with *Exhausted naming the cheaper
	// model alias (DowngradeTo) the caller should retry at, once.
	Downgrade
	// PriorityOnly admits requests with Priority >= MinPriority past the
	// budget and refuses the others.
	PriorityOnly
)

// String returns "refuse", "downgrade" or "priority_only" (for metric
// labels).
func (a Action) String() string {
	switch a {
	case Refuse:
		return "refuse"
	case Downgrade:
		return "downgrade"
	case PriorityOnly:
		return "priority_only"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// FailMode is what an org's requests get while the shared backend (Redis)
// fails.
type FailMode int

const (
	// FailLocal decides on in-process state (a Memory fallback) until
	// Redis answers again.
	FailLocal FailMode = iota
	// FailOpen admits every request, unreserved (a nil *Hold).
	FailOpen
	// FailClosed refuses every request with an error wrapping
	// ErrUnavailable.
	FailClosed
)

// String returns "local", "open" or "closed".
func (f FailMode) String() string {
	switch f {
	case FailLocal:
		return "local"
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	}
	return "failmode(" + strconv.Itoa(int(f)) + ")"
}

// MaxLimit is the largest budget a period may have: $900 million. Every
// amount the Redis script handles then stays below 2^53 µUSD, where Lua's
// numbers are exact.
const MaxLimit accounting.MicroUSD = 900_000_000_000_000

// MaxThresholds is the most alert thresholds an org may have.
const MaxThresholds = 16

// defaultThresholds returns the alert percents of an org that sets none.
func defaultThresholds() []int { return []int{80, 90, 100} }

// OrgPolicy is one organisation's budget. The zero values of the optional
// fields are the defaults.
type OrgPolicy struct {
	Org string
	// Daily and Monthly are the budgets per calendar day and per calendar
	// month; 0 means none. An org with neither has no budget.
	Daily   accounting.MicroUSD
	Monthly accounting.MicroUSD
	// Location is the zone whose calendar days and months the periods
	// are; nil means UTC.
	Location *time.Location
	// Thresholds are the alert percents of committed spend, strictly
	// ascending, each 1..1000; nil or empty means 80, 90, 100.
	Thresholds []int
	// OnExhausted is what happens to a request the budget cannot hold.
	OnExhausted Action
	// DowngradeTo is the model alias to retry at; required with
	// Downgrade.
	DowngradeTo string
	// MinPriority: with PriorityOnly, requests with Priority >=
	// MinPriority are admitted past the budget.
	MinPriority int
	// Webhooks are the alert destinations (http or https URLs), passed
	// on in Alert.Webhooks.
	Webhooks []string
	// FailMode applies while the shared backend fails.
	FailMode FailMode
}

// Request is what Reserve decides on.
type Request struct {
	// ID is the request id. The hold is named after it (made unique per
	// Keeper, so a retry under the same id cannot collide).
	ID  string
	Org string
	// Cost is the most the request can cost, reserved until the hold is
	// settled; >= 0. A request costing 0 still needs one µUSD of room.
	Cost     accounting.MicroUSD
	Priority int
	// Downgraded marks a retry at the org's DowngradeTo model: if the
	// budget cannot hold it either, it is refused instead of downgraded
	// again.
	Downgraded bool
}

// PeriodStatus is the state of one of an org's periods.
type PeriodStatus struct {
	Period     Period
	Start, End time.Time // [Start, End) in the org's Location
	Limit      accounting.MicroUSD
	Spent      accounting.MicroUSD // committed
	Reserved   accounting.MicroUSD // held by unsettled, unexpired holds
}

// Exhausted is the error Reserve returns for a request the budget cannot
// hold. Its message is safe to show to the client; the other fields are
// for the caller, the logs and the metrics.
type Exhausted struct {
	Org    string
	Period Period // the exhausted period (monthly when both are)
	Limit  accounting.MicroUSD
	Spent  accounting.MicroUSD // committed, when the request was refused
	// Reserved is what other requests held then.
	Reserved accounting.MicroUSD
	// Action is Downgrade when the caller should retry the request at
	// DowngradeTo with Request.Downgraded set; otherwise Refuse (also
	// for PriorityOnly: the request's priority was too low).
	Action      Action
	DowngradeTo string
}

// Error returns a client-safe message such as "The organisation's monthly
// budget of $50.00 is exhausted."
func (e *Exhausted) Error() string {
	return "The organisation's " + string(e.Period) + " budget of " + FormatUSD(e.Limit) + " is exhausted."
}

// ErrUnavailable is wrapped in the error Reserve returns for an org that
// fails closed while the shared backend fails, and in the error a Hold
// returns when it cannot reach the backend it was reserved on.
var ErrUnavailable = errors.New("budget: shared backend unavailable")

// SpendSource reports what an org has already spent, e.g. from the usage
// ledger. A Keeper asks it once per (org, period) when the backend has no
// state for the period yet (a new process on Memory, a new period, a
// flushed Redis), so that a restart does not reset a month's spend.
type SpendSource interface {
	// SpentSince returns the org's spend since the period's start.
	SpentSince(ctx context.Context, org string, since time.Time) (accounting.MicroUSD, error)
}

// Notifier receives alerts. Notify is called synchronously on the request
// path: it must not block (see Webhooks, which queues).
type Notifier interface {
	Notify(a Alert)
}

// Alert is one budget alert: a threshold of committed spend was reached,
// or a period's budget refused its first request.
type Alert struct {
	Org         string
	Period      Period
	PeriodStart time.Time
	// Threshold is the percent reached; 0 for an Exhausted alert.
	Threshold int
	// Exhausted marks the alert for a period's first refusal.
	Exhausted bool
	Spent     accounting.MicroUSD // committed, at the time of the alert
	Limit     accounting.MicroUSD
	Time      time.Time
	Webhooks  []string // the org's destinations; shared, do not modify
}

// Metrics receives what the budget stage observes; the proxy exports it.
// Calls are synchronous: implementations must be fast and must not call
// back into the package.
type Metrics interface {
	// Alert counts one alert fired; threshold 0 is an Exhausted alert.
	Alert(period Period, threshold int)
	// Refused counts one request refused by the period's budget, with
	// the action it was refused with (Refuse or Downgrade).
	Refused(period Period, action Action)
	// Delivered counts one webhook delivery that finished, after its
	// retries, successfully or not (also one dropped from a full queue).
	Delivered(ok bool)
	// SharedBackend reports, on each change, whether decisions go to the
	// shared backend (true) or to the fallback (false).
	SharedBackend(up bool)
}

type nopMetrics struct{}

func (nopMetrics) Alert(Period, int)      {}
func (nopMetrics) Refused(Period, Action) {}
func (nopMetrics) Delivered(bool)         {}
func (nopMetrics) SharedBackend(bool)     {}

// FormatUSD formats m as dollars with at least two decimals and as many
// more as needed to be exact: "$50.00", "$0.0125", "-$1.50".
func FormatUSD(m accounting.MicroUSD) string {
	s := m.String() // "50.000000"
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	dot := strings.IndexByte(s, '.')
	end := len(s)
	for end > dot+3 && s[end-1] == '0' {
		end--
	}
	s = "$" + s[:end]
	if neg {
		s = "-" + s
	}
	return s
}
