package budget

import (
	"context"
	"time"
)

// Backend keeps the budgets' state: per account (an org's period, e.g. its
// monthly budget for March) the committed spend, the reserved total, the
// holds with their expiry, and which alerts have fired. NewMemory keeps it
// in process; NewRedis keeps it in Redis, shared by every replica, with a
// breaker and a local fallback. Both make the same decisions for the same
// inputs. A Backend is safe for concurrent use and outlives configuration
// generations.
//
// The interface is sealed: only this package implements it.
type Backend interface {
	// do runs o atomically over all of o's accounts: either it reports
	// (in o.needSeed) accounts that do not exist yet and whose seed o
	// does not carry, changing nothing, or it performs o completely and
	// fills o's results.
	do(ctx context.Context, o *op) error
}

// maxPeriods: daily and monthly.
const maxPeriods = 2

// seedAsk in op.seed asks the backend to report a missing account rather
// than create it.
const seedAsk = -1

type opKind uint8

const (
	// opReserve checks every account for room for o.amount and, if all
	// have it (or o.force), holds it in all of them.
	opReserve opKind = iota
	// opCommit removes hold o.holdID (if not expired) and adds o.amount
	// to each account's spend, then marks the thresholds reached.
	opCommit
	// opRelease removes hold o.holdID.
	opRelease
	// opStatus only reads (after purging expired holds).
	opStatus
)

// via says which state an op was decided on.
type via uint8

const (
	viaMemory via = iota // a Memory backend
	viaShared            // Redis
	viaLocal             // the local fallback while Redis is unavailable
	viaNone              // nothing: failed open
)

// account is one period of one org as the backends see it. It is
// immutable once built and shared by the ops of that period.
type account struct {
	period     Period
	label      string // "d:2025-03-31" or "m:2025-03": unique per org and period
	start, end time.Time
	limit      int64
	expireAt   int64   // ms: when the backend may forget the account (end + accountGrace)
	thr        []int   // alert percents
	thrAmt     []int64 // spend at which each fires: ⌈limit·thr/100⌉
	thrArg     string  // "80:40000000,90:45000000" for the script
}

// accountGrace is how long an account's state outlives its period.
const accountGrace = 7 * 24 * time.Hour

// op is one atomic operation on an org's accounts, and its results.
type op struct {
	kind    opKind
	org     string
	now     time.Time
	holdID  string
	amount  int64     // reserve: the cost; commit: the actual cost
	holdExp time.Time // reserve: when the hold expires
	force   bool      // reserve even if an account has no room
	fail    FailMode
	n       int
	acct    [maxPeriods]*account
	seed    [maxPeriods]int64 // the spend to create a missing account with, or seedAsk

	// Results. via is an input to commit and release (the path the
	// reserve took).
	via      via
	needSeed uint8 // bit i: account i is missing and seed[i] is seedAsk
	admitted bool  // reserve: the hold was taken
	spent    [maxPeriods]int64
	reserved [maxPeriods]int64 // reserve: before this hold; others: after the op
	// flags: reserve: flagOver (no room), flagExhausted (the account's
	// first refusal); commit: bit j set when threshold j fired now.
	flags [maxPeriods]int64
}

const (
	flagOver      = 1
	flagExhausted = 2
)

// reset clears o's results for another run.
func (o *op) reset() {
	o.needSeed, o.admitted = 0, false
	o.spent, o.reserved, o.flags = [maxPeriods]int64{}, [maxPeriods]int64{}, [maxPeriods]int64{}
}

// room reports whether an account with spent and reserved can hold cost
// more under limit. A zero cost needs one µUSD of room, so that an
// exhausted budget refuses requests estimated at nothing.
func room(spent, reserved, cost, limit int64) bool {
	return spent+reserved+max(cost, 1) <= limit
}
