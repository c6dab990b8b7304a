package route

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

// step is one scripted attempt: the target expected and what it returns.
type step struct {
	want string
	err  error
	// took is how long the attempt lasts on the fake clock.
	took time.Duration
}

// run drives f over a script the way the proxy's loop does, sleeping on the
// fake clock. It returns the delays Done asked for.
func run(t *testing.T, e *env, tb *Table, f *Failover, script []step) []time.Duration {
	t.Helper()
	var delays []time.Duration
	for k := 0; ; k++ {
		i, ok := f.Next()
		if !ok {
			if k != len(script) {
				t.Fatalf("loop ended after %d attempts, script has %d", k, len(script))
			}
			return delays
		}
		if k >= len(script) {
			t.Fatalf("attempt %d on %s beyond the script", k+1, tb.Target(i).ID)
		}
		s := script[k]
		if got := tb.Target(i).ID; got != s.want {
			t.Fatalf("attempt %d went to %s, want %s", k+1, got, s.want)
		}
		e.clk.Advance(s.took)
		delay, again := f.Done(s.err, s.took)
		if !again {
			if k != len(script)-1 {
				t.Fatalf("loop stopped after attempt %d, script has %d", k+1, len(script))
			}
			if _, ok := f.Next(); ok {
				t.Fatal("Next admitted an attempt after Done said stop")
			}
			return delays
		}
		delays = append(delays, delay)
		e.clk.Advance(delay)
	}
}

func begin(t *testing.T, tb *Table, f *Failover) {
	t.Helper()
	if err := tb.Begin(f, &policy.Exchange{}); err != nil {
		t.Fatal(err)
	}
}

func TestFailoverFirstSuccess(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: three()})
	var f Failover
	begin(t, tb, &f)
	run(t, e, tb, &f, []step{{"a", nil, 80 * time.Millisecond}})
	if f.Err() != nil || f.Attempts() != 1 {
		t.Errorf("Err = %v, Attempts = %d", f.Err(), f.Attempts())
	}
	st, _ := e.reg.Status("a")
	if st.TTFB != 80*time.Millisecond || st.InFlight != 0 {
		t.Errorf("status after success: %+v", st)
	}
	// A nil *llm.Error (what the proxy's send returns) is a success.
	var none *llm.Error
	begin(t, tb, &f)
	run(t, e, tb, &f, []step{{"a", none, 80 * time.Millisecond}})
	if f.Err() != nil || len(e.reg.Events(nil)) != 0 {
		t.Errorf("a typed nil error was taken for a failure: %v", f.Err())
	}
	// A failed attempt's duration does not feed the EWMA.
	begin(t, tb, &f)
	run(t, e, tb, &f, []step{{"a", upstreamErr(504), 5 * time.Second}, {"b", nil, 0}})
	if st, _ := e.reg.Status("a"); st.TTFB != 80*time.Millisecond {
		t.Errorf("TTFB after a timeout = %v, want 80ms still", st.TTFB)
	}
}

func TestFailoverFatalStops(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: three()})
	var f Failover
	begin(t, tb, &f)
	bad := upstreamErr(400)
	run(t, e, tb, &f, []step{{"a", bad, 0}})
	if f.Err() != bad {
		t.Errorf("Err = %v, want the 400 itself", f.Err())
	}
	if ev := e.reg.Events(nil); len(ev) != 0 {
		t.Errorf("a fatal error recorded failover events: %+v", ev)
	}
}

func TestFailoverMovesOnAndRecordsEvents(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 3, Cooldown: 10 * time.Second})
	tb := e.table(TableConfig{Targets: three()})
	start := e.clk.Now()
	for range 3 {
		var f Failover
		begin(t, tb, &f)
		delays := run(t, e, tb, &f, []step{{"a", upstreamErr(502), 0}, {"b", nil, 0}})
		if !slices.Equal(delays, []time.Duration{0}) {
			t.Errorf("delays = %v, want no wait before another target", delays)
		}
		e.clk.Advance(time.Second)
	}
	// a is open now; b serves alone, no failover.
	var f Failover
	begin(t, tb, &f)
	run(t, e, tb, &f, []step{{"b", nil, 0}})

	ev := e.reg.Events(nil)
	if len(ev) != 1 || ev[0].From != "a" || ev[0].To != "b" || ev[0].Reason != "upstream" ||
		ev[0].Status != 502 || ev[0].Requests != 3 || !ev[0].Time.Equal(start) ||
		!ev[0].Last.Equal(start.Add(2*time.Second)) || !ev[0].Recovered.IsZero() {
		t.Fatalf("events = %+v, want one coalesced a->b upstream event of 3 requests", ev)
	}
	if n := e.met.failovers[[3]string{"a", "b", "upstream"}]; n != 3 {
		t.Errorf("failover metric a->b = %d, want 3", n)
	}

	// A different reason starts a new event.
	var g Failover
	e.clk.Advance(10 * time.Second) // a's cooldown is over; it is probed
	begin(t, tb, &g)
	run(t, e, tb, &g, []step{{"a", upstreamErr(504), 0}, {"b", nil, 0}})
	ev = e.reg.Events(nil)
	if len(ev) != 2 || ev[0].Reason != "timeout" || ev[1].Reason != "upstream" {
		t.Fatalf("events = %+v, want timeout newest, then upstream", ev)
	}

	// a recovers when its breaker closes again: both events get the time.
	e.clk.Advance(10 * time.Second)
	var h Failover
	begin(t, tb, &h)
	run(t, e, tb, &h, []step{{"a", nil, 0}})
	if e.state("a") != Closed {
		t.Fatalf("a is %v after a successful probe", e.state("a"))
	}
	now := e.clk.Now()
	ev = e.reg.Events(nil)
	for _, x := range ev {
		if !x.Recovered.Equal(now) {
			t.Errorf("event %+v not recovered at %v", x, now)
		}
	}
	if got := ev[1].Recovery(); got != now.Sub(start) {
		t.Errorf("recovery of the first event = %v, want %v", got, now.Sub(start))
	}
	// After recovery the same from/to/reason starts a new event.
	var k Failover
	begin(t, tb, &k)
	run(t, e, tb, &k, []step{{"a", upstreamErr(504), 0}, {"b", nil, 0}})
	if ev = e.reg.Events(nil); len(ev) != 3 || ev[0].Requests != 1 || !ev[0].Recovered.IsZero() {
		t.Errorf("events = %+v, want a fresh unrecovered event first", ev)
	}
}

func TestFailoverRecoveryWithoutTrip(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: three()})
	var f Failover
	begin(t, tb, &f)
	run(t, e, tb, &f, []step{{"a", upstreamErr(503), 0}, {"b", nil, 0}})
	e.clk.Advance(3 * time.Second)
	begin(t, tb, &f) // a is still closed and first
	run(t, e, tb, &f, []step{{"a", nil, 0}})
	ev := e.reg.Events(nil)
	if len(ev) != 1 || ev[0].Recovery() != 3*time.Second {
		t.Errorf("events = %+v, want a recovered after 3s by its next success", ev)
	}
}

func TestEventRingWraps(t *testing.T) {
	r := newEventRing(2)
	t0 := time.Unix(0, 0)
	r.add(t0, "a", "b", "upstream", 502)
	r.add(t0, "a", "c", "upstream", 502)
	r.add(t0, "a", "c", "upstream", 503) // coalesced: same from/to/reason
	r.add(t0, "b", "c", "timeout", 0)
	ev := r.snapshot(nil)
	if len(ev) != 2 || ev[0].From != "b" || ev[1].To != "c" || ev[1].Requests != 2 || ev[1].Status != 503 {
		t.Errorf("ring = %+v, want b->c then a->c(x2)", ev)
	}
}

func TestFailoverSameTargetRetry(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: three(), Retry: RetryPolicy{SameTarget: 1, MaxAttempts: 4,
		Rand: func(n uint64) uint64 { return n / 2 }}})
	var f Failover
	begin(t, tb, &f)
	delays := run(t, e, tb, &f, []step{
		{"a", upstreamErr(502), 0}, // backoff (jitter 50%: 50ms), retry a
		{"a", upstreamErr(502), 0}, // same budget spent: move on
		{"b", &llm.Error{Kind: llm.KindRateLimit, Status: 429, Retryable: true, RetryAfter: 300 * time.Millisecond}, 0},
		{"b", nil, 0}, // waited out the short Retry-After
	})
	if !slices.Equal(delays, []time.Duration{50 * time.Millisecond, 0, 300 * time.Millisecond}) {
		t.Errorf("delays = %v", delays)
	}
	if ev := e.reg.Events(nil); len(ev) != 1 || ev[0].From != "a" || ev[0].To != "b" {
		t.Errorf("events = %+v, want only a->b (same-target retries are not failovers)", ev)
	}
}

func TestFailoverLimits(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	five := append(three(), Target{ID: "d"}, Target{ID: "e"})
	tb := e.table(TableConfig{Targets: five, Retry: RetryPolicy{MaxAttempts: 2}})
	var f Failover
	begin(t, tb, &f)
	run(t, e, tb, &f, []step{{"a", upstreamErr(502), 0}, {"b", upstreamErr(500), 0}})
	if err := f.Err(); err == nil || err.Kind != llm.KindUpstream || err.Status != 500 || err.Msg != "upstream failed" {
		t.Errorf("Err after the attempt limit = %+v, want a 502 with the last upstream's reason", err)
	}

	// The deadline counts from the first failure, not from the start: a
	// long first attempt still fails over, but no attempt starts 2 s later.
	tb = e.table(TableConfig{Targets: five, Retry: RetryPolicy{MaxAttempts: 10}})
	begin(t, tb, &f)
	run(t, e, tb, &f, []step{
		{"a", upstreamErr(502), 30 * time.Second},
		{"b", upstreamErr(504), 1500 * time.Millisecond},
		{"c", upstreamErr(503), 600 * time.Millisecond}, // 2.1 s after the first failure
	})
	if err := f.Err(); err == nil || err.Kind != llm.KindUnavailable || err.Status != 503 {
		t.Errorf("Err after the deadline = %+v, want 503", err)
	}
}

func TestFailoverErrMapping(t *testing.T) {
	for _, c := range []struct {
		last error
		kind llm.Kind
	}{
		{upstreamErr(504), llm.KindTimeout},
		{&llm.Error{Kind: llm.KindTimeout, Retryable: true}, llm.KindTimeout},
		{upstreamErr(429), llm.KindUnavailable},
		{&llm.Error{Kind: llm.KindQuotaExceeded, Status: 429}, llm.KindUnavailable},
		{upstreamErr(529), llm.KindUnavailable},
		{upstreamErr(503), llm.KindUnavailable},
		{upstreamErr(500), llm.KindUpstream},
		{&llm.Error{Kind: llm.KindUpstream, Status: 401, Retryable: true}, llm.KindUpstream},
	} {
		e := newEnv(t, BreakerPolicy{})
		tb := e.table(TableConfig{Targets: []Target{{ID: "a"}}})
		var f Failover
		begin(t, tb, &f)
		f.Next()
		if _, again := f.Done(c.last, 0); again {
			t.Fatalf("%v: again on a one-target plan", c.last)
		}
		got := f.Err()
		if got == nil || got.Kind != c.kind || got.Err != c.last || !got.Retryable {
			t.Errorf("Err after %v = %+v, want kind %v wrapping it", c.last, got, c.kind)
		}
	}
	// Nothing admitted at all: the only target's probe slot is taken.
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 1})
	tb := e.table(TableConfig{Targets: []Target{{ID: "a"}, {ID: "b"}}})
	e.failN("a", 1)
	e.failN("b", 1)
	e.clk.Advance(time.Minute)
	var probeA, probeB, f Failover
	begin(t, tb, &probeA)
	probeA.Next()
	begin(t, tb, &probeB)
	probeB.Next()
	begin(t, tb, &f)
	if i, ok := f.Next(); ok {
		t.Fatalf("admitted %d while both probe slots are taken", i)
	}
	if err := f.Err(); err == nil || err.Kind != llm.KindUnavailable {
		t.Errorf("Err with no attempt = %v", err)
	}
	probeA.Done(nil, 0)
	probeB.Done(nil, 0)
	// A refusal from Begin is Err as well.
	if err := tb.Begin(&f, &policy.Exchange{PinTarget: "a"}); err == nil || f.Err() == nil ||
		f.Err().Kind != llm.KindPermission {
		t.Errorf("Begin refusal: %v / %v", err, f.Err())
	}
	if _, ok := f.Next(); ok {
		t.Error("Next admitted an attempt after Begin refused")
	}
}

func TestFailoverMisuse(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: three()})
	mustPanic := func(name string, fn func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		fn()
	}
	var f Failover
	begin(t, tb, &f)
	mustPanic("Done without Next", func() { f.Done(nil, 0) })
	f.Next()
	mustPanic("Next twice", func() { f.Next() })
	mustPanic("Begin during an attempt", func() { _ = tb.Begin(&f, &policy.Exchange{}) })
	f.Done(nil, 0)
	begin(t, tb, &f) // fine again
}

func TestFailoverReuseDoesNotAllocate(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	tb := e.table(TableConfig{Targets: three()})
	var f Failover
	x := &policy.Exchange{}
	n := testing.AllocsPerRun(100, func() {
		_ = tb.Begin(&f, x)
		f.Next()
		f.Done(nil, time.Millisecond)
	})
	if n != 0 {
		t.Errorf("Begin/Next/Done allocates %v times per request", n)
	}
}

// TestConcurrentUse runs requests, health checks, snapshots and reloads of
// the breaker policy at once; -race checks the locking, the end state
// checks the counters.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 3, Cooldown: 50 * time.Millisecond, HalfOpenProbes: 2})
	tb := e.table(TableConfig{Strategy: StrategyLeastBusy, Targets: three(),
		Retry: RetryPolicy{MaxAttempts: 3, SameTarget: 1}})
	hc, err := e.reg.NewHealthChecker([]Probe{{Name: "pa", Targets: []string{"a"}, Interval: time.Millisecond,
		Check: func(context.Context) error { return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			var f Failover
			for n := range 300 {
				if err := tb.Begin(&f, &policy.Exchange{}); err != nil {
					t.Error(err)
					return
				}
				for {
					i, ok := f.Next()
					if !ok {
						break
					}
					var err error
					if (n+w+i)%3 == 0 {
						err = upstreamErr(502)
					}
					if _, again := f.Done(err, time.Millisecond); !again {
						break
					}
				}
				if n%50 == 0 {
					e.clk.Advance(20 * time.Millisecond)
				}
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			hc.CheckDue(t.Context())
			e.reg.Snapshot()
			e.reg.Events(nil)
			e.clk.Advance(time.Millisecond)
		}
	})
	wg.Go(func() {
		for k := range 20 {
			e.reg.SetBreakerPolicy(BreakerPolicy{ConsecutiveFailures: 3 + k%2, Cooldown: 50 * time.Millisecond, HalfOpenProbes: 2})
		}
	})
	wg.Wait()
	for _, st := range e.reg.Snapshot() {
		if st.InFlight != 0 {
			t.Errorf("%s: %d in flight after every request ended", st.ID, st.InFlight)
		}
	}
}
