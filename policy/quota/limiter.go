package quota

import (
	"sync"
	"time"
)

// DefaultNamespace prefixes every state key: "aigw:{org}:rpm".
const DefaultNamespace = "aigw"

// Options configures New. Zero fields get defaults.
type Options struct {
	Clock   Clock   // default SystemClock
	Metrics Metrics // default: none
	// Namespace prefixes state keys; default DefaultNamespace. Replicas
	// sharing limits must use the same one.
	Namespace string
}

// Limiter is the long-lived part of the quota stage: the backend holding
// the counters, the per-org queues and the priority modes started at run
// time. It outlives configuration generations; each generation's policies
// become a Gate (NewGate) that shares the limiter's state, so a reload
// keeps every counter. A Limiter is safe for concurrent use.
type Limiter struct {
	backend Backend
	clock   Clock
	metrics Metrics
	ns      string

	mu       sync.Mutex
	priority map[string]time.Time // org -> priority mode until
	queues   sync.Map             // org -> *queue
}

// New returns a limiter over backend: NewMemory() for one gateway, or
// NewRedis for replicas sharing limits.
func New(backend Backend, o Options) *Limiter {
	l := &Limiter{backend: backend, clock: o.Clock, metrics: o.Metrics, ns: o.Namespace,
		priority: make(map[string]time.Time)}
	if l.clock == nil {
		l.clock = SystemClock{}
	}
	if l.metrics == nil {
		l.metrics = nopMetrics{}
	}
	if l.ns == "" {
		l.ns = DefaultNamespace
	}
	return l
}

// Subject is who a request counts against: an org, one of its keys, and
// the request's own queue class (ClassEmergency for an emergency-override
// key scope; 0 otherwise). The effective class is the highest of it, the
// org's tier class and ClassPriorityMode while the org's priority mode is
// active.
type Subject struct {
	Org   string
	KeyID string
	Class Class
}

// Need is what one request asks for: requests (normally 1) and estimated
// tokens, prompt and output together.
type Need struct {
	Requests int64
	Tokens   int64
}

// StartPriorityMode turns on org's priority mode now for d
// (DefaultPriorityDuration when d <= 0): its limits are raised per its
// policy's PriorityMode and its requests go first in its queue. It ends on
// its own; it returns when. It applies to this limiter (this replica)
// only and does not survive a restart: a mode meant to outlive either
// belongs in the policy (PriorityMode.Until).
func (l *Limiter) StartPriorityMode(org string, d time.Duration) time.Time {
	if d <= 0 {
		d = DefaultPriorityDuration
	}
	until := l.clock.Now().Add(d)
	l.mu.Lock()
	l.priority[org] = until
	l.mu.Unlock()
	return until
}

// StopPriorityMode ends a priority mode started with StartPriorityMode.
// One set in the policy stays.
func (l *Limiter) StopPriorityMode(org string) {
	l.mu.Lock()
	delete(l.priority, org)
	l.mu.Unlock()
}

// PriorityUntil returns when org's run-time priority mode ends, zero when
// none is active.
func (l *Limiter) PriorityUntil(org string) time.Time {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.priority[org]
	if !ok {
		return time.Time{}
	}
	if !u.After(now) {
		delete(l.priority, org)
		return time.Time{}
	}
	return u
}

// QueueDepth returns the number of org's requests waiting in its queue.
func (l *Limiter) QueueDepth(org string) int {
	if v, ok := l.queues.Load(org); ok {
		return int(v.(*queue).n.Load())
	}
	return 0
}

func (l *Limiter) queue(org string) *queue {
	if v, ok := l.queues.Load(org); ok {
		return v.(*queue)
	}
	v, _ := l.queues.LoadOrStore(org, &queue{l: l, org: org})
	return v.(*queue)
}

// kick lets org's queue retry its waiters now: capacity was given back.
func (l *Limiter) kick(org string) {
	if v, ok := l.queues.Load(org); ok {
		v.(*queue).kick()
	}
}
