package route

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// State is a target's circuit breaker state.
type State uint32

// Breaker states.
const (
	// Closed: requests flow; failures are counted.
	Closed State = iota
	// Open: the target is skipped by routing until its cooldown ends.
	Open
	// HalfOpen: the cooldown ended (or a health check succeeded); a few
	// probe requests may go through to decide between Closed and Open.
	HalfOpen
)

// String returns "closed", "open" or "half_open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "unknown"
}

// BreakerPolicy tunes every target's circuit breaker. Zero fields take the
// documented defaults; a negative ConsecutiveFailures or ErrorRate disables
// that trip condition.
type BreakerPolicy struct {
	// ConsecutiveFailures trips the breaker after this many failures in a
	// row (default 5).
	ConsecutiveFailures int
	// ErrorRate trips the breaker when failures / outcomes over Window
	// reach it (default 0.5), once at least MinRequests outcomes were seen
	// in the window (default 20).
	ErrorRate   float64
	MinRequests int
	// Window is the span of the error-rate window (default 60 s), divided
	// into Buckets sliding buckets (default 10).
	Window  time.Duration
	Buckets int
	// Cooldown is how long the breaker stays open before it lets probes
	// through (default 15 s).
	Cooldown time.Duration
	// HalfOpenProbes is how many probe requests may be in flight at once in
	// the half-open state, and how many must succeed to close the breaker
	// (default 1).
	HalfOpenProbes int
}

// withDefaults returns p with zero fields defaulted.
func (p BreakerPolicy) withDefaults() BreakerPolicy {
	if p.ConsecutiveFailures == 0 {
		p.ConsecutiveFailures = 5
	}
	if p.ErrorRate == 0 {
		p.ErrorRate = 0.5
	}
	if p.MinRequests <= 0 {
		p.MinRequests = 20
	}
	if p.Window <= 0 {
		p.Window = 60 * time.Second
	}
	if p.Buckets <= 0 {
		p.Buckets = 10
	}
	if p.Cooldown <= 0 {
		p.Cooldown = 15 * time.Second
	}
	if p.HalfOpenProbes <= 0 {
		p.HalfOpenProbes = 1
	}
	return p
}

// outcome is what one attempt tells the breaker.
type outcome uint8

const (
	neutral outcome = iota // says nothing about the target's health
	success                // the target answered properly
	failure                // the target failed
)

// outcomeOf classifies an attempt's error for the breaker. Server-side
// kinds (rate limit, quota, upstream, overloaded, unavailable, timeout) are
// failures whatever their Retryable flag. Client-side kinds (400, 401, 403,
// 404, 413, context length) never trip a breaker: when the upstream sent
// them (Status != 0) they prove it is alive and count as successes,
// otherwise (the gateway refused before sending) they are neutral, as are
// cancellations and internal errors.
func outcomeOf(err error) outcome {
	if err == nil {
		return success
	}
	e := llm.AsError(err)
	switch e.Kind {
	case llm.KindRateLimit, llm.KindQuotaExceeded, llm.KindUpstream, llm.KindOverloaded,
		llm.KindUnavailable, llm.KindTimeout:
		return failure
	case llm.KindInvalidRequest, llm.KindAuth, llm.KindPermission, llm.KindNotFound,
		llm.KindTooLarge, llm.KindContextLength:
		if e.Status != 0 {
			return success
		}
	}
	return neutral
}

// window counts outcomes in sliding buckets. Guarded by its state's mutex.
type window struct {
	width   int64 // nanoseconds per bucket
	buckets []bucket
}

type bucket struct {
	epoch     int64 // absolute bucket number (time / width)
	ok, fails int
}

func (w *window) init(p *BreakerPolicy) {
	w.width = int64(p.Window) / int64(p.Buckets)
	if w.width <= 0 {
		w.width = 1
	}
	w.buckets = make([]bucket, p.Buckets)
}

func (w *window) add(now time.Time, failed bool) {
	ep := now.UnixNano() / w.width
	b := &w.buckets[int(uint64(ep)%uint64(len(w.buckets)))]
	if b.epoch != ep {
		*b = bucket{epoch: ep}
	}
	if failed {
		b.fails++
	} else {
		b.ok++
	}
}

// counts returns the outcomes of the buckets still inside the window.
func (w *window) counts(now time.Time) (ok, fails int) {
	ep := now.UnixNano() / w.width
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.epoch > ep-int64(len(w.buckets)) && b.epoch <= ep {
			ok += b.ok
			fails += b.fails
		}
	}
	return ok, fails
}

func (w *window) reset() {
	clear(w.buckets)
}

// state is one target's breaker, latency, load and health. It lives in the
// Registry and is shared by every Table generation that names the target.
// The atomics are read lock-free by Plan; everything else is guarded by mu.
type state struct {
	reg      *Registry
	id       string
	provider atomic.Pointer[string] // the latest Table's provider id, for Snapshot

	st        atomic.Uint32 // State
	openUntil atomic.Int64  // unix nanoseconds; meaningful while Open
	inFlight  atomic.Int64
	ewma      atomic.Int64 // nanoseconds; 0 = never measured
	// unrecovered is set when a failover event names this target as its
	// origin and cleared when the target recovers (see Registry.Events).
	unrecovered atomic.Bool

	mu       sync.Mutex
	pol      *BreakerPolicy // the policy win was sized for
	win      window
	consec   int    // consecutive failures while Closed
	epoch    uint64 // bumped on every transition; stale probes are ignored
	probes   int    // half-open probes in flight
	probesOK int    // half-open probes that succeeded
	up       bool   // the last value reported to Metrics.UpstreamUp

	lastCheck    time.Time
	checkLatency time.Duration
	checkErr     string
	checkFailing bool
}

// ticket is a permit for one attempt on a target, returned by acquire and
// given back to release exactly once.
type ticket struct {
	probe  bool   // took a half-open probe slot
	forced bool   // went through although the breaker refused (last resort, pin)
	epoch  uint64 // the breaker epoch the ticket was taken in
}

// policyLocked returns the current breaker policy, re-laying the window
// (which forgets its counts) when the policy's Window or Buckets changed.
func (s *state) policyLocked() *BreakerPolicy {
	p := s.reg.breaker.Load()
	if p != s.pol {
		if s.pol == nil || s.pol.Window != p.Window || s.pol.Buckets != p.Buckets {
			s.win.init(p)
		}
		s.pol = p
	}
	return p
}

// acquire asks for a permit to send one request. Closed targets always
// admit (lock-free). An open target whose cooldown ended turns half-open.
// A half-open target admits up to HalfOpenProbes probes at once. When the
// breaker refuses, forced admits anyway (the caller has nothing better).
func (s *state) acquire(forced bool) (ticket, bool) {
	if State(s.st.Load()) == Closed {
		s.inFlight.Add(1)
		return ticket{}, true
	}
	now := s.reg.now()
	s.mu.Lock()
	p := s.policyLocked()
	t := ticket{epoch: s.epoch}
	switch State(s.st.Load()) {
	case Open:
		if now.UnixNano() < s.openUntil.Load() {
			if !forced {
				s.mu.Unlock()
				return ticket{}, false
			}
			t.forced = true
			break
		}
		s.halfOpenLocked()
		t.epoch = s.epoch
		fallthrough
	case HalfOpen:
		if s.probes < p.HalfOpenProbes {
			s.probes++
			t.probe = true
		} else if forced {
			t.forced = true
		} else {
			s.mu.Unlock()
			return ticket{}, false
		}
	}
	s.mu.Unlock()
	s.inFlight.Add(1)
	return t, true
}

// release returns t's permit with the attempt's result: the in-flight count
// drops, a success updates the TTFB EWMA, and the outcome feeds the breaker.
func (s *state) release(t ticket, err error, ttfb time.Duration) {
	s.inFlight.Add(-1)
	o := outcomeOf(err)
	if o == success && ttfb > 0 {
		s.observeTTFB(ttfb)
	}
	s.record(o, t)
}

// observeTTFB folds one time-to-first-byte sample into the EWMA.
func (s *state) observeTTFB(d time.Duration) {
	alpha := s.reg.alpha
	for {
		old := s.ewma.Load()
		next := int64(d)
		if old != 0 {
			next = old + int64(alpha*float64(int64(d)-old))
		}
		if next == 0 {
			next = 1 // keep "measured" distinct from "never measured"
		}
		if s.ewma.CompareAndSwap(old, next) {
			return
		}
	}
}

// record feeds one traffic outcome to the state machine. Ordinary attempts
// that were in flight when the breaker tripped (stragglers) only count
// while Closed; probes and last-resort attempts only count in the breaker
// epoch they were admitted in. Successes take
// the lock too: they must enter the error-rate window.
func (s *state) record(o outcome, t ticket) {
	now := s.reg.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.policyLocked()
	current := t.epoch == s.epoch
	if t.probe && current && State(s.st.Load()) == HalfOpen {
		s.probes--
	}
	if (t.probe || t.forced) && !current {
		return // a probe's verdict belongs to the epoch it probed
	}
	switch State(s.st.Load()) {
	case Closed:
		if o == neutral {
			return
		}
		s.win.add(now, o == failure)
		if o == success {
			s.consec = 0
			s.recoveredLocked(now)
			return
		}
		s.consec++
		if s.tripLocked(now, p) {
			s.openLocked(now, p)
		}
	case HalfOpen:
		if !t.probe && !t.forced {
			return
		}
		switch o {
		case success:
			s.probesOK++
			if s.probesOK >= p.HalfOpenProbes {
				s.closeLocked(now)
			}
		case failure:
			s.openLocked(now, p)
		}
	case Open:
		if !t.forced {
			return
		}
		switch o {
		case success:
			// A last-resort attempt worked: treat it as the first probe.
			s.halfOpenLocked()
			s.probesOK = 1
			if s.probesOK >= p.HalfOpenProbes {
				s.closeLocked(now)
			}
		case failure:
			s.openLocked(now, p) // fresh cooldown: the next last resort is another target
		}
	}
}

// checked feeds one health-check result. A failure counts like a traffic
// failure while Closed, re-opens a HalfOpen breaker and keeps an Open one
// open for at least another cooldown. A success lets an Open breaker go
// half-open early and counts as a probe success while HalfOpen; it does not
// reset the consecutive-failure count of a Closed breaker (a cheap listing
// call proves less than a failed completion).
func (s *state) checked(now time.Time, latency time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.policyLocked()
	s.lastCheck = now
	s.checkLatency = latency
	s.checkFailing = err != nil
	s.checkErr = ""
	if err != nil {
		s.checkErr = err.Error()
	}
	switch State(s.st.Load()) {
	case Closed:
		s.win.add(now, err != nil)
		if err != nil {
			s.consec++
			if s.tripLocked(now, p) {
				s.openLocked(now, p)
			}
		}
	case Open:
		if err == nil {
			s.halfOpenLocked()
		} else if until := now.Add(p.Cooldown).UnixNano(); until > s.openUntil.Load() {
			s.openUntil.Store(until)
		}
	case HalfOpen:
		if err != nil {
			s.openLocked(now, p)
		} else {
			s.probesOK++
			if s.probesOK >= p.HalfOpenProbes {
				s.closeLocked(now)
			}
		}
	}
	s.reportUpLocked()
}

func (s *state) tripLocked(now time.Time, p *BreakerPolicy) bool {
	if p.ConsecutiveFailures > 0 && s.consec >= p.ConsecutiveFailures {
		return true
	}
	if p.ErrorRate > 0 {
		ok, fails := s.win.counts(now)
		if n := ok + fails; n >= p.MinRequests && float64(fails) >= p.ErrorRate*float64(n) {
			return true
		}
	}
	return false
}

func (s *state) openLocked(now time.Time, p *BreakerPolicy) {
	s.openUntil.Store(now.Add(p.Cooldown).UnixNano())
	s.transitionLocked(Open)
}

func (s *state) halfOpenLocked() {
	s.transitionLocked(HalfOpen)
}

func (s *state) closeLocked(now time.Time) {
	s.win.reset()
	s.transitionLocked(Closed)
	s.recoveredLocked(now)
}

// transitionLocked enters to, resetting the per-state counters. Metrics are
// reported under the lock so that gauges never go back in time.
func (s *state) transitionLocked(to State) {
	from := State(s.st.Load())
	s.st.Store(uint32(to))
	s.epoch++
	s.consec = 0
	s.probes = 0
	s.probesOK = 0
	if from != to {
		s.reg.metrics.BreakerState(s.id, to)
	}
	s.reportUpLocked()
}

// reportUpLocked tells Metrics when the target's up/down verdict changed:
// up means the breaker is closed and the last health check (if any)
// succeeded.
func (s *state) reportUpLocked() {
	up := State(s.st.Load()) == Closed && !s.checkFailing
	if up != s.up {
		s.up = up
		s.reg.metrics.UpstreamUp(s.id, up)
	}
}

// recoveredLocked marks this target's open failover events recovered.
func (s *state) recoveredLocked(now time.Time) {
	if s.unrecovered.CompareAndSwap(true, false) {
		s.reg.events.recover(s.id, now)
	}
}
