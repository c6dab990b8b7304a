package route

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/policy"
)

// switchProbe is a probe whose verdict the test sets; each check takes
// latency on the fake clock.
type switchProbe struct {
	mu      sync.Mutex
	err     error
	calls   int
	clk     *fakeClock
	latency time.Duration
}

func (p *switchProbe) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *switchProbe) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.clk.Advance(p.latency)
	return p.err
}

func TestHealthCheckerFlipsUpAndDown(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 2, ErrorRate: -1, Cooldown: time.Minute})
	tb := e.table(TableConfig{Targets: []Target{{ID: "p/x", Provider: "p"}, {ID: "p/y", Provider: "p"}, {ID: "q/z", Provider: "q"}}})
	pr := &switchProbe{clk: e.clk, latency: 40 * time.Millisecond}
	hc, err := e.reg.NewHealthChecker([]Probe{{Name: "p", Targets: []string{"p/x", "p/y"}, Check: pr.check}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	if n := hc.CheckDue(ctx); n != 1 {
		t.Fatalf("first CheckDue ran %d probes, want 1", n)
	}
	st, _ := e.reg.Status("p/x")
	if !st.Up || st.CheckLatency != 40*time.Millisecond || !st.LastCheck.Equal(e.clk.Now()) || st.CheckError != "" {
		t.Fatalf("after a good check: %+v", st)
	}
	if n := hc.CheckDue(ctx); n != 0 {
		t.Fatalf("CheckDue before the interval ran %d probes", n)
	}

	pr.set(errors.New("connection refused"))
	e.clk.Advance(30 * time.Second)
	if n := hc.CheckDue(ctx); n != 1 {
		t.Fatalf("CheckDue after the default 30 s interval ran %d probes", n)
	}
	st, _ = e.reg.Status("p/x")
	if st.Up || st.State != Closed || st.CheckError != "connection refused" {
		t.Fatalf("after one failed check: %+v, want down but still closed", st)
	}
	if e.met.isUp("p/x") || e.met.isUp("p/y") || !e.met.isUp("q/z") {
		t.Errorf("up gauges: x=%v y=%v z=%v, want the probed targets down only",
			e.met.isUp("p/x"), e.met.isUp("p/y"), e.met.isUp("q/z"))
	}
	e.clk.Advance(30 * time.Second)
	hc.CheckDue(ctx)
	if got := e.state("p/y"); got != Open {
		t.Fatalf("after two failed checks: %v, want open", got)
	}
	if got := ids(tb, plan(t, tb, &policy.Exchange{})); len(got) != 1 || got[0] != "q/z" {
		t.Errorf("plan = %v, want the unprobed target only", got)
	}

	// Failed checks keep an open breaker open past its cooldown.
	st, _ = e.reg.Status("p/x")
	openedUntil := st.OpenUntil
	e.clk.Advance(50 * time.Second)
	hc.CheckDue(ctx)
	if st, _ = e.reg.Status("p/x"); st.State != Open || !st.OpenUntil.After(openedUntil) {
		t.Fatalf("a failed check on an open breaker: %+v, want the cooldown extended", st)
	}

	// Recovery: a good check lets it half-open, the next one closes it.
	pr.set(nil)
	e.clk.Advance(30 * time.Second)
	hc.CheckDue(ctx)
	if got := e.state("p/x"); got != HalfOpen {
		t.Fatalf("after a good check on an open breaker: %v, want half-open", got)
	}
	if e.met.isUp("p/x") {
		t.Error("reported up while half-open")
	}
	e.clk.Advance(30 * time.Second)
	hc.CheckDue(ctx)
	if got := e.state("p/x"); got != Closed || !e.met.isUp("p/x") || !e.met.isUp("p/y") {
		t.Fatalf("after a second good check: %v up=%v, want closed and up", got, e.met.isUp("p/x"))
	}
	ps := hc.Status()
	if len(ps) != 1 || ps[0].Name != "p" || !ps[0].Up || ps[0].Latency != 40*time.Millisecond {
		t.Errorf("probe status = %+v", ps)
	}
}

func TestHealthCheckerRun(t *testing.T) {
	e := newEnv(t, BreakerPolicy{})
	calls := make(chan struct{}, 10)
	hc, err := e.reg.NewHealthChecker([]Probe{{Name: "p", Targets: []string{"a"}, Interval: 10 * time.Second,
		Check: func(context.Context) error { calls <- struct{}{}; return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		hc.Run(ctx, ticks)
		close(done)
	}()
	<-calls // Run checks at once
	// Not due yet: these ticks run nothing. Run handles one tick at a time
	// and ticks is unbuffered, so once the second send went through the
	// first tick's CheckDue has finished, on the unadvanced clock.
	ticks <- e.clk.Now()
	ticks <- e.clk.Now()
	if n := len(calls); n != 0 {
		t.Fatalf("%d checks ran before the interval elapsed", n)
	}
	e.clk.Advance(10 * time.Second)
	// Due now: some tick (the second one may already see the new time)
	// runs the check.
	for checked := false; !checked; {
		select {
		case ticks <- e.clk.Now():
		case <-calls:
			checked = true
		}
	}
	cancel()
	<-done
	if n := len(calls); n != 0 {
		t.Errorf("%d extra checks ran", n)
	}
	if st, _ := e.reg.Status("a"); st.LastCheck.IsZero() {
		t.Error("no check recorded")
	}
}

func TestHealthCheckerCancelledCheckRecordsNothing(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 1})
	ctx, cancel := context.WithCancel(t.Context())
	hc, err := e.reg.NewHealthChecker([]Probe{{Name: "p", Targets: []string{"a"},
		Check: func(c context.Context) error { cancel(); <-c.Done(); return c.Err() }}})
	if err != nil {
		t.Fatal(err)
	}
	hc.CheckDue(ctx)
	if st, _ := e.reg.Status("a"); st.State != Closed || !st.LastCheck.IsZero() {
		t.Errorf("a check cut short by shutdown counted: %+v", st)
	}
}

func TestNewHealthCheckerRejects(t *testing.T) {
	reg := NewRegistry(Options{})
	if _, err := reg.NewHealthChecker([]Probe{{Name: "p"}}); err == nil {
		t.Error("accepted a probe without a check")
	}
	if _, err := reg.NewHealthChecker([]Probe{{Check: func(context.Context) error { return nil }}}); err == nil {
		t.Error("accepted a probe without a name")
	}
}
