package route

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

func TestBreakerOpensOnConsecutiveFailures(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 3, ErrorRate: -1})
	e.table(TableConfig{Targets: three()})
	e.failN("a", 2)
	e.reg.Observe("a", nil, 0) // a success resets the run
	e.failN("a", 2)
	if got := e.state("a"); got != Closed {
		t.Fatalf("after 2+2 failures split by a success: %v, want closed", got)
	}
	if !e.met.isUp("a") {
		t.Error("a reported down while closed")
	}
	e.failN("a", 1)
	if got := e.state("a"); got != Open {
		t.Fatalf("after 3 consecutive failures: %v, want open", got)
	}
	if e.met.stateOf("a") != Open || e.met.isUp("a") {
		t.Errorf("metrics: state %v up %v, want open and down", e.met.stateOf("a"), e.met.isUp("a"))
	}
	st, _ := e.reg.Status("a")
	if want := e.clk.Now().Add(15 * time.Second); !st.OpenUntil.Equal(want) {
		t.Errorf("OpenUntil = %v, want now + default cooldown (%v)", st.OpenUntil, want)
	}
}

func TestBreakerOpensOnErrorRate(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: -1, ErrorRate: 0.5, MinRequests: 4,
		Window: 10 * time.Second, Buckets: 10})
	e.failN("a", 3) // 3 < MinRequests: no verdict yet
	if got := e.state("a"); got != Closed {
		t.Fatalf("after 3 failures below MinRequests: %v", got)
	}
	e.clk.Advance(11 * time.Second) // they slide out of the window
	e.failN("a", 1)
	e.reg.Observe("a", nil, 0)
	e.reg.Observe("a", nil, 0)
	e.reg.Observe("a", nil, 0)
	if st, _ := e.reg.Status("a"); st.State != Closed || st.Requests != 4 || st.ErrorRate != 0.25 {
		t.Fatalf("after the window slid: %+v, want closed with 1 failure in 4", st)
	}
	e.clk.Advance(5 * time.Second)
	e.failN("a", 2) // 3 of 6 in the window: 50%
	if got := e.state("a"); got != Open {
		t.Fatalf("at 50%% errors over the window: %v, want open", got)
	}
}

func TestBreakerIgnoresClientErrors(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 2, ErrorRate: 0.1, MinRequests: 1})
	clientErrs := []error{
		&llm.Error{Kind: llm.KindInvalidRequest, Status: 400},
		&llm.Error{Kind: llm.KindAuth, Status: 401},
		&llm.Error{Kind: llm.KindPermission, Status: 403},
		&llm.Error{Kind: llm.KindNotFound, Status: 404},
		&llm.Error{Kind: llm.KindContextLength, Status: 400},
		&llm.Error{Kind: llm.KindContextLength}, // refused before sending
		&llm.Error{Kind: llm.KindCanceled},
		&llm.Error{Kind: llm.KindInternal},
		errors.New("not an llm.Error"),
		context.Canceled,
	}
	for range 5 {
		for _, err := range clientErrs {
			e.reg.Observe("a", err, 0)
		}
	}
	if st, _ := e.reg.Status("a"); st.State != Closed || st.ErrorRate != 0 {
		t.Fatalf("client errors moved the breaker: %+v", st)
	}
	// An upstream's 400 proves it alive: it breaks a run of failures.
	e.failN("a", 1)
	e.reg.Observe("a", clientErrs[0], 0)
	e.failN("a", 1)
	if st, _ := e.reg.Status("a"); st.ConsecutiveFailures != 1 {
		t.Errorf("consecutive failures = %d, want 1 (the 400 broke the run)", st.ConsecutiveFailures)
	}
	// Server-side kinds count, whatever Retryable says.
	e.reg.Observe("a", &llm.Error{Kind: llm.KindQuotaExceeded, Status: 429}, 0)
	if got := e.state("a"); got != Open {
		t.Errorf("after quota exhaustion as second failure: %v, want open", got)
	}
}

// attempt runs one Failover attempt on tb and reports the target it got
// ("" when none was admitted), finishing with err.
func attempt(t *testing.T, tb *Table, err error) string {
	t.Helper()
	var f Failover
	if e := tb.Begin(&f, &policy.Exchange{}); e != nil {
		t.Fatal(e)
	}
	i, ok := f.Next()
	if !ok {
		return ""
	}
	f.Done(err, 10*time.Millisecond)
	return tb.Target(i).ID
}

func TestBreakerHalfOpenProbeSuccessCloses(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 2, Cooldown: 10 * time.Second})
	tb := e.table(TableConfig{Targets: []Target{{ID: "a"}, {ID: "b"}}})
	e.failN("a", 2)
	if got := attempt(t, tb, nil); got != "b" {
		t.Fatalf("with a open the attempt went to %q", got)
	}
	e.clk.Advance(10 * time.Second)

	// The cooldown is over: the next request probes a.
	var probe Failover
	_ = tb.Begin(&probe, &policy.Exchange{})
	if i, ok := probe.Next(); !ok || tb.Target(i).ID != "a" {
		t.Fatalf("probe went to %d, %v", i, ok)
	}
	if got := e.state("a"); got != HalfOpen {
		t.Fatalf("during the probe a is %v, want half-open", got)
	}
	// While the one probe slot is taken, other requests skip a.
	if got := attempt(t, tb, nil); got != "b" {
		t.Errorf("second request during the probe went to %q, want b", got)
	}
	probe.Done(nil, 20*time.Millisecond)
	if got := e.state("a"); got != Closed {
		t.Fatalf("after a successful probe a is %v, want closed", got)
	}
	if !e.met.isUp("a") {
		t.Error("a not reported up after closing")
	}
	if got := attempt(t, tb, nil); got != "a" {
		t.Errorf("after closing the attempt went to %q, want a", got)
	}
}

func TestBreakerHalfOpenProbeFailureReopens(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 1, Cooldown: 10 * time.Second})
	tb := e.table(TableConfig{Targets: []Target{{ID: "a"}, {ID: "b"}}})
	e.failN("a", 1)
	e.clk.Advance(10 * time.Second)
	if got := attempt(t, tb, upstreamErr(502)); got != "a" {
		t.Fatalf("probe went to %q", got)
	}
	st, _ := e.reg.Status("a")
	if st.State != Open || !st.OpenUntil.Equal(e.clk.Now().Add(10*time.Second)) {
		t.Fatalf("after a failed probe: %+v, want open with a fresh cooldown", st)
	}
	e.met.mu.Lock()
	trail := append([]string(nil), e.met.states...)
	e.met.mu.Unlock()
	want := []string{"a:closed", "b:closed", "a:open", "a:half_open", "a:open"}
	if len(trail) != len(want) {
		t.Fatalf("state trail %v, want %v", trail, want)
	}
	for i := range want {
		if trail[i] != want[i] {
			t.Fatalf("state trail %v, want %v", trail, want)
		}
	}
}

func TestBreakerSeveralProbes(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 1, Cooldown: time.Second, HalfOpenProbes: 2})
	tb := e.table(TableConfig{Targets: []Target{{ID: "a"}, {ID: "b"}}})
	e.failN("a", 1)
	e.clk.Advance(time.Second)
	var p [3]Failover
	var got [3]string
	for k := range p {
		_ = tb.Begin(&p[k], &policy.Exchange{})
		i, _ := p[k].Next()
		got[k] = tb.Target(i).ID
	}
	if got != [3]string{"a", "a", "b"} {
		t.Fatalf("three concurrent requests went to %v, want two probes on a", got)
	}
	p[2].Done(nil, 0)
	p[0].Done(nil, 0)
	if s := e.state("a"); s != HalfOpen {
		t.Fatalf("after one of two probes succeeded: %v, want half-open", s)
	}
	// A probe slot is free again: a third probe may start.
	if got := attempt(t, tb, nil); got != "a" {
		t.Fatalf("a freed probe slot was not used: %q", got)
	}
	if s := e.state("a"); s != Closed {
		t.Fatalf("after two probe successes: %v, want closed", s)
	}
	p[1].Done(upstreamErr(502), 0) // a straggling probe of the previous epoch
	if s := e.state("a"); s != Closed {
		t.Errorf("a stale probe's failure re-opened the breaker: %v", s)
	}
}

func TestBreakerIgnoresStragglersWhileOpen(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 2})
	tb := e.table(TableConfig{Targets: []Target{{ID: "a"}, {ID: "b"}}})
	var slow Failover
	_ = tb.Begin(&slow, &policy.Exchange{})
	slow.Next() // on a, admitted while closed
	e.failN("a", 2)
	slow.Done(nil, 0)
	if s := e.state("a"); s != Open {
		t.Errorf("a straggler's success closed an open breaker: %v", s)
	}
}

func TestBreakerLastResortSuccessCloses(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 1, Cooldown: time.Minute})
	tb := e.table(TableConfig{Targets: []Target{{ID: "a"}}})
	e.failN("a", 1)
	if got := attempt(t, tb, nil); got != "a" {
		t.Fatalf("last resort not tried: %q", got)
	}
	if s := e.state("a"); s != Closed {
		t.Errorf("after a successful last resort: %v, want closed (one probe needed)", s)
	}
}

func TestBreakerPolicyReload(t *testing.T) {
	e := newEnv(t, BreakerPolicy{ConsecutiveFailures: 5, ErrorRate: -1})
	e.failN("a", 3)
	e.reg.SetBreakerPolicy(BreakerPolicy{ConsecutiveFailures: 4, ErrorRate: -1, Buckets: 3})
	e.failN("a", 1)
	if s := e.state("a"); s != Open {
		t.Errorf("state kept across a policy reload should trip at 4: %v", s)
	}

	// The error-rate window survives a reload that keeps its layout and
	// restarts on one that changes it.
	e.reg.Observe("b", nil, 0)
	e.failN("b", 1)
	e.reg.SetBreakerPolicy(BreakerPolicy{ConsecutiveFailures: 9, ErrorRate: -1, Buckets: 3})
	if st, _ := e.reg.Status("b"); st.Requests != 2 {
		t.Errorf("window after a same-layout reload holds %d outcomes, want 2", st.Requests)
	}
	e.reg.SetBreakerPolicy(BreakerPolicy{ConsecutiveFailures: 9, ErrorRate: -1, Buckets: 4})
	if st, _ := e.reg.Status("b"); st.Requests != 0 || st.ConsecutiveFailures != 1 {
		t.Errorf("after a re-layout: %d outcomes, %d consecutive failures; want 0 and 1", st.Requests, st.ConsecutiveFailures)
	}
}
