package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aigw/aigw/accounting"
)

// DefaultHoldTTL is how long an unsettled reservation lives by default.
const DefaultHoldTTL = 15 * time.Minute

// seedTimeout bounds one SpendSource call.
const seedTimeout = 5 * time.Second

// Options configures New. Zero fields get defaults.
type Options struct {
	// Clock is the source of time for periods, hold expiry and alerts,
	// also with Redis; default time.Now.
	Clock func() time.Time
	// HoldTTL is how long an unsettled reservation lives before it
	// expires and its amount is available again (the holds of a gateway
	// that died); default 15 min. It must exceed the longest request: a
	// hold that expired before its Commit no longer limits others, though
	// the commit still counts in full.
	HoldTTL time.Duration
	// Notifier receives the alerts; nil: alerts are only counted in
	// Metrics.
	Notifier Notifier
	// Metrics receives Alert and Refused; nil: none.
	Metrics Metrics
	// Logger logs seed failures; nil: discard.
	Logger *slog.Logger
	// Seed is asked for an org's spend so far when the backend has no
	// state for a period yet; nil: periods start at 0.
	Seed SpendSource
}

// Keeper holds budget state across configuration generations, as
// quota.Limiter does: create one per process and build a Gate from each
// generation's policies. It is safe for concurrent use.
type Keeper struct {
	b        Backend
	clock    func() time.Time
	holdTTL  time.Duration
	notifier Notifier
	metrics  Metrics
	log      *slog.Logger
	src      SpendSource

	nonce string // makes hold ids unique per Keeper
	seq   atomic.Uint64

	seedMu sync.Mutex
	seeds  map[seedKey]*seedCall
}

type seedKey struct {
	via   via
	org   string
	label string
}

// seedCall is one SpendSource call, shared by the requests that found the
// same account missing; its result is kept until the period ends.
type seedCall struct {
	done chan struct{}
	val  int64
	end  time.Time
}

// New returns a Keeper on b (NewMemory() when b is nil).
func New(b Backend, opts Options) *Keeper {
	if b == nil {
		b = NewMemory()
	}
	k := &Keeper{
		b:        b,
		clock:    opts.Clock,
		holdTTL:  opts.HoldTTL,
		notifier: opts.Notifier,
		metrics:  opts.Metrics,
		log:      opts.Logger,
		src:      opts.Seed,
		seeds:    make(map[seedKey]*seedCall),
	}
	if k.clock == nil {
		k.clock = time.Now
	}
	if k.holdTTL <= 0 {
		k.holdTTL = DefaultHoldTTL
	}
	if k.metrics == nil {
		k.metrics = nopMetrics{}
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	var n [6]byte
	_, _ = rand.Read(n[:])
	k.nonce = hex.EncodeToString(n[:])
	return k
}

// holdID returns a hold id unique across Keepers: the request id, then
// this Keeper's nonce and a sequence number.
func (k *Keeper) holdID(reqID string) string {
	return reqID + "/" + k.nonce + "." + strconv.FormatUint(k.seq.Add(1), 36)
}

// exec runs o on the backend, seeding the accounts it reports missing.
func (k *Keeper) exec(ctx context.Context, o *op) error {
	for i := 0; i < o.n; i++ {
		if k.src != nil {
			o.seed[i] = seedAsk
		} else {
			o.seed[i] = 0
		}
	}
	for attempt := 0; ; attempt++ {
		o.reset()
		if err := k.b.do(ctx, o); err != nil {
			return err
		}
		if o.needSeed == 0 {
			return nil
		}
		if attempt > 0 { // cannot happen: every asked seed is now given
			for i := 0; i < o.n; i++ {
				o.seed[i] = max(o.seed[i], 0)
			}
			continue
		}
		for i := 0; i < o.n; i++ {
			if o.needSeed&(1<<i) == 0 {
				continue
			}
			v, err := k.seedFor(ctx, o.via, o.org, o.acct[i], o.now)
			if err != nil {
				return err
			}
			o.seed[i] = v
		}
	}
}

// seedFor returns the spend to create an org's missing account with,
// asking the SpendSource at most once per account and path. A failing
// source is logged and counts as 0. It fails only when ctx ends while
// another request's call is under way.
func (k *Keeper) seedFor(ctx context.Context, v via, org string, a *account, now time.Time) (int64, error) {
	key := seedKey{via: v, org: org, label: a.label}
	k.seedMu.Lock()
	c := k.seeds[key]
	if c == nil {
		for kk, cc := range k.seeds { // few entries: one per org and period
			if !cc.end.After(now) {
				select {
				case <-cc.done:
					delete(k.seeds, kk)
				default:
				}
			}
		}
		c = &seedCall{done: make(chan struct{}), end: a.end}
		k.seeds[key] = c
		k.seedMu.Unlock()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), seedTimeout)
		spent, err := k.src.SpentSince(sctx, org, a.start)
		cancel()
		switch {
		case err != nil:
			k.log.Warn("budget: cannot read the spend so far; the period starts from 0",
				"org", org, "period", a.period, "since", a.start, "err", err)
			spent = 0
		case spent < 0:
			spent = 0
		}
		c.val = int64(min(spent, accounting.MicroUSD(1<<53)))
		close(c.done)
		return c.val, nil
	}
	k.seedMu.Unlock()
	select {
	case <-c.done:
		return c.val, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// alert notifies and counts one alert.
func (k *Keeper) alert(a Alert) {
	k.metrics.Alert(a.Period, a.Threshold)
	if k.notifier != nil {
		k.notifier.Notify(a)
	}
}
