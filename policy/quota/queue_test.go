package quota_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/providers/llm"
)

// queued starts a Take that is expected to wait; it returns once the org's
// queue holds depth requests.
func (e *env) queued(t *testing.T, ctx context.Context, g *quota.Gate, s quota.Subject, n quota.Need, depth int) <-chan result {
	t.Helper()
	ch := make(chan result, 1)
	go func() {
		h, err := g.Take(ctx, s, n)
		if err != nil {
			d, _ := quota.DecisionOf(err)
			ch <- result{d: d, err: err}
			return
		}
		ch <- result{h: h, d: h.Decision()}
	}()
	e.waitDepth(t, s.Org, depth)
	return ch
}

// waitDepth waits (for goroutines, not for time) until org's queue holds n.
func (e *env) waitDepth(t *testing.T, org string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.lim.QueueDepth(org) != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue depth %d, want %d", e.lim.QueueDepth(org), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func recv(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
		return result{}
	}
}

func pending(t *testing.T, ch <-chan result) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("answered early: %+v", r)
	default:
	}
}

func queueOrg(id string, l quota.Limits, depth int, wait time.Duration) quota.OrgPolicy {
	p := org(id, l)
	p.Queue = quota.Queue{Depth: depth, MaxWait: wait}
	return p
}

func TestQueueWaitsForCapacity(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, queueOrg("a", quota.Limits{RPM: quota.Limit{Max: 1}}, 4, 2*time.Minute))
	take(g, sub("a"), req(0)).mustAllow(t, "1")
	ch := e.queued(t, context.Background(), g, sub("a"), req(0), 1)
	e.clock.Advance(time.Minute - time.Microsecond)
	pending(t, ch)
	e.clock.Advance(time.Microsecond)
	r := recv(t, ch)
	if d := r.mustAllow(t, "queued").Decision(); d.Queued != time.Minute {
		t.Fatalf("queued %v, want 1m", d.Queued)
	}
	if e.lim.QueueDepth("a") != 0 || e.metrics.depth["a"] != 0 {
		t.Fatal("queue not empty")
	}
}

func TestQueueRefusesAtOnceWhenTheWaitIsTooLong(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, queueOrg("a", quota.Limits{RPM: quota.Limit{Max: 1}, RPD: quota.Limit{Max: 2}}, 4, 30*time.Second))
	take(g, sub("a"), req(0)).mustAllow(t, "1")
	if r := take(g, sub("a"), req(0)); r.mustRefuse(t, "2", quota.ReasonOrgRPM).RetryAfter != time.Minute {
		t.Fatalf("retry after %v", r.d.RetryAfter)
	}
	e.clock.Advance(time.Minute)
	take(g, sub("a"), req(0)).mustAllow(t, "2")
	e.clock.Advance(time.Minute)
	take(g, sub("a"), req(0)).mustRefuse(t, "daily quotas never queue", quota.ReasonOrgRPD)
	if e.lim.QueueDepth("a") != 0 {
		t.Fatal("something queued")
	}
	// A context deadline shorter than the wait refuses at once too.
	g = e.gate(t, queueOrg("b", quota.Limits{RPM: quota.Limit{Max: 1}}, 4, 2*time.Minute))
	take(g, sub("b"), req(0)).mustAllow(t, "1")
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(10*time.Second))
	defer cancel()
	if _, err := g.Take(ctx, sub("b"), req(0)); err == nil {
		t.Fatal("admitted")
	}
}

func TestQueueServesHigherClassFirst(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, queueOrg("a", quota.Limits{RPM: quota.Limit{Max: 1}}, 4, 5*time.Minute))
	take(g, sub("a"), req(0)).mustAllow(t, "1")
	low := e.queued(t, context.Background(), g, sub("a"), req(0), 1)
	high := e.queued(t, context.Background(), g, quota.Subject{Org: "a", KeyID: "k9", Class: quota.ClassEmergency}, req(0), 2)
	e.clock.Advance(time.Minute)
	if d := recv(t, high).mustAllow(t, "high").Decision(); d.Class != quota.ClassEmergency {
		t.Fatalf("class %d", d.Class)
	}
	pending(t, low)
	e.clock.Advance(time.Minute)
	recv(t, low).mustAllow(t, "low")
}

func TestQueueShedsLowestClassFirst(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, queueOrg("a", quota.Limits{RPM: quota.Limit{Max: 1}}, 2, 5*time.Minute))
	take(g, sub("a"), req(0)).mustAllow(t, "1")
	low1 := e.queued(t, context.Background(), g, sub("a"), req(0), 1)
	low2 := e.queued(t, context.Background(), g, sub("a"), req(0), 2)
	high := e.queued(t, context.Background(), g, quota.Subject{Org: "a", Class: 5}, req(0), 2)
	r := recv(t, low2) // the latest of the lowest class makes room
	r.mustRefuse(t, "shed", quota.ReasonOrgRPM)
	if !r.d.Shed || r.d.RetryAfter <= 0 {
		t.Fatalf("decision %+v: want shed with a retry hint", r.d)
	}
	// Full of classes at least as high: a newcomer is refused.
	r = take(g, sub("a"), req(0))
	r.mustRefuse(t, "full", quota.ReasonOrgRPM)
	if !r.d.Shed {
		t.Fatal("not marked shed")
	}
	e.clock.Advance(time.Minute)
	recv(t, high).mustAllow(t, "high")
	e.clock.Advance(time.Minute)
	recv(t, low1).mustAllow(t, "low1")
	if n := e.metrics.refusals(quota.ReasonOrgRPM); n != 2 { // the shed one and the one refused when full
		t.Fatalf("org_rpm refusals counted: %d, want 2", n)
	}
}

func TestQueueDeadlineRefuses(t *testing.T) {
	e := newEnv(t)
	// Two waiters for one slot a minute: the second cannot make it in 90 s.
	g := e.gate(t, queueOrg("a", quota.Limits{RPM: quota.Limit{Max: 1}}, 4, 90*time.Second))
	take(g, sub("a"), req(0)).mustAllow(t, "1")
	first := e.queued(t, context.Background(), g, sub("a"), req(0), 1)
	second := e.queued(t, context.Background(), g, sub("a"), req(0), 2)
	e.clock.Advance(time.Minute)
	recv(t, first).mustAllow(t, "first")
	r := recv(t, second)
	r.mustRefuse(t, "second", quota.ReasonOrgRPM)
	if r.d.Queued != time.Minute || r.d.RetryAfter != time.Minute {
		t.Fatalf("queued %v retry %v", r.d.Queued, r.d.RetryAfter)
	}
}

func TestQueueCancel(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, queueOrg("a", quota.Limits{RPM: quota.Limit{Max: 1}}, 4, 5*time.Minute))
	take(g, sub("a"), req(0)).mustAllow(t, "1")
	ctx, cancel := context.WithCancel(context.Background())
	ch := e.queued(t, ctx, g, sub("a"), req(0), 1)
	cancel()
	r := recv(t, ch)
	var le *llm.Error
	if !errors.As(r.err, &le) || le.Kind != llm.KindCanceled {
		t.Fatalf("got %v, want KindCanceled", r.err)
	}
	e.waitDepth(t, "a", 0)
	e.clock.Advance(time.Minute)
	take(g, sub("a"), req(0)).mustAllow(t, "the slot was not taken by the cancelled request")
}

func TestQueueWokenByRelease(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, queueOrg("a", quota.Limits{RPM: quota.Limit{Max: 1}}, 4, 5*time.Minute))
	h := take(g, sub("a"), req(0)).mustAllow(t, "1")
	ch := e.queued(t, context.Background(), g, sub("a"), req(0), 1)
	if err := h.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ch).mustAllow(t, "after release").Decision(); d.Queued != 0 {
		t.Fatalf("queued %v: the clock did not move", d.Queued)
	}
}

func TestQueueKeyLimitHoldsBackOnlyThatKey(t *testing.T) {
	e := newEnv(t)
	p := queueOrg("a", quota.Limits{RPM: quota.Limit{Max: 100}}, 4, 5*time.Minute)
	p.Keys = []quota.KeyLimits{{KeyID: "k1", Limits: quota.Limits{RPM: quota.Limit{Max: 1}}}}
	g := e.gate(t, p)
	take(g, sub("a"), req(0)).mustAllow(t, "k1 1")
	ch := e.queued(t, context.Background(), g, sub("a"), req(0), 1)
	take(g, quota.Subject{Org: "a", KeyID: "k2"}, req(0)).mustAllow(t, "k2 is not behind k1")
	pending(t, ch)
	e.clock.Advance(time.Minute)
	recv(t, ch).mustAllow(t, "k1 2")
}

// TestQueueNoOvertaking: capacity a waiter needs is not taken by a later
// request of the same class, even a smaller one that would fit now; a
// higher class goes first.
func TestQueueNoOvertaking(t *testing.T) {
	e := newEnv(t)
	g := e.gate(t, queueOrg("a", quota.Limits{TPM: quota.Limit{Max: 100}}, 4, 5*time.Minute))
	take(g, sub("a"), req(100)).mustAllow(t, "fill")
	big := e.queued(t, context.Background(), g, sub("a"), req(50), 1) // due in 30 s
	e.clock.Advance(10 * time.Second)                                 // 16 tokens are back
	small := e.queued(t, context.Background(), g, quota.Subject{Org: "a", KeyID: "k2"}, req(10), 2)
	take(g, quota.Subject{Org: "a", Class: quota.ClassEmergency}, req(10)).mustAllow(t, "higher class")
	// big was due at 30 s but the higher class took 10 tokens: 6 s more.
	e.clock.Advance(26*time.Second - time.Microsecond)
	pending(t, big)
	pending(t, small)
	e.clock.Advance(time.Microsecond)
	recv(t, big).mustAllow(t, "big")
	e.clock.Advance(6*time.Second - time.Microsecond) // then small's 10 tokens
	pending(t, small)
	e.clock.Advance(time.Microsecond)
	if d := recv(t, small).mustAllow(t, "small").Decision(); d.Queued != 32*time.Second {
		t.Fatalf("small queued %v", d.Queued)
	}
}
