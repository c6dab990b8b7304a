package budget_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aigw/aigw/policy/budget"
)

// hookServer answers webhook POSTs with the statuses in plan, in order
// (200 once the plan is used up), and records the bodies.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	plan   []int
	bodies [][]byte
	block  chan struct{} // if non-nil, each request waits for it (or its own end)
}

func newHookServer(t *testing.T, plan ...int) *hookServer {
	s := &hookServer{plan: plan}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.block != nil {
			select {
			case <-s.block:
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		code := http.StatusOK
		if len(s.plan) > 0 {
			code, s.plan = s.plan[0], s.plan[1:]
		}
		s.mu.Unlock()
		if r.Header.Get("Content-Type") != "application/json" {
			code = http.StatusUnsupportedMediaType
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

func testAlert(url string) budget.Alert {
	return budget.Alert{Org: "demo", Period: budget.Monthly, PeriodStart: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		Threshold: 80, Spent: usd(40), Limit: usd(50), Time: t0, Webhooks: []string{url}}
}

func newHooks(t *testing.T, s *hookServer, m *metrics, o budget.WebhookOptions) *budget.Webhooks {
	o.Client, o.Metrics = s.Client(), m
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	return budget.NewWebhooks(o)
}

// leakCheck fails t if goroutines started during the test outlive it.
func leakCheck(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// TestWebhookRetriesThenDelivers: 500, 503, then 200: three attempts,
// one successful delivery, with the Slack text and the machine-readable
// alert.
func TestWebhookRetriesThenDelivers(t *testing.T) {
	leakCheck(t)
	s := newHookServer(t, 500, 503)
	m := newMetrics()
	w := newHooks(t, s, m, budget.WebhookOptions{})
	w.Notify(testAlert(s.URL + "/hook"))
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := s.requests()
	if len(reqs) != 3 || m.deliveries(true) != 1 || m.deliveries(false) != 0 {
		t.Fatalf("%d requests, %d ok, %d failed; want 3, 1, 0", len(reqs), m.deliveries(true), m.deliveries(false))
	}
	var got struct {
		Text string `json:"text"`
		AIGW struct {
			Org            string `json:"org"`
			Period         string `json:"period"`
			PeriodStart    string `json:"period_start"`
			Threshold      int    `json:"threshold"`
			Exhausted      *bool  `json:"exhausted"`
			SpentUSDMicros int64  `json:"spent_usd_micros"`
			LimitUSDMicros int64  `json:"limit_usd_micros"`
		} `json:"aigw"`
	}
	if err := json.Unmarshal(reqs[2], &got); err != nil {
		t.Fatalf("%v: %s", err, reqs[2])
	}
	if got.Text != "aigw: org demo has spent 80% of its monthly budget ($40.00 of $50.00)" {
		t.Fatalf("text %q", got.Text)
	}
	a := got.AIGW
	if a.Org != "demo" || a.Period != "monthly" || a.PeriodStart != "2025-03-01T00:00:00Z" || a.Threshold != 80 ||
		a.Exhausted == nil || *a.Exhausted || a.SpentUSDMicros != 40_000_000 || a.LimitUSDMicros != 50_000_000 {
		t.Fatalf("aigw object: %s", reqs[2])
	}
}

// TestWebhookNoRetryOn4xx: a 400 is final; a 429 is retried; retries end.
func TestWebhookStatuses(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name     string
		plan     []int
		requests int
		ok       bool
	}{
		{"400 final", []int{400}, 1, false},
		{"404 final", []int{404}, 1, false},
		{"429 retried", []int{429}, 2, true},
		{"retries run out", []int{500, 502, 503, 504, 200}, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHookServer(t, tc.plan...)
			m := newMetrics()
			w := newHooks(t, s, m, budget.WebhookOptions{})
			w.Notify(testAlert(s.URL))
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := len(s.requests()); n != tc.requests {
				t.Fatalf("%d requests, want %d", n, tc.requests)
			}
			if m.deliveries(tc.ok) != 1 || m.deliveries(!tc.ok) != 0 {
				t.Fatalf("deliveries %v", m.delivered)
			}
		})
	}
}

// TestWebhookNetworkErrorRetried: connections cut before an answer are
// retried; a destination that never answers fails after the retries, and
// its URL (which may hold a token) stays out of the logs.
func TestWebhookNetworkErrorRetried(t *testing.T) {
	leakCheck(t)
	var calls atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = c.Close()
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer s.Close()
	m := newMetrics()
	logs := &syncBuffer{}
	w := budget.NewWebhooks(budget.WebhookOptions{Client: s.Client(), Backoff: time.Millisecond, Retries: 2, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	w.Notify(testAlert(s.URL))
	w.Notify(testAlert("http://" + closedAddr(t) + "/secret-token"))
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || m.deliveries(true) != 1 || m.deliveries(false) != 1 {
		t.Fatalf("%d calls, deliveries %v", calls.Load(), m.delivered)
	}
	if l := logs.String(); strings.Contains(l, "secret-token") || !strings.Contains(l, "not delivered") {
		t.Fatalf("logs: %s", l)
	}
}

// TestWebhookCloseDrains: Close delivers everything queued before it
// returns; alerts after Close are dropped and counted.
func TestWebhookCloseDrains(t *testing.T) {
	leakCheck(t)
	s := newHookServer(t)
	s.block = make(chan struct{})
	m := newMetrics()
	w := newHooks(t, s, m, budget.WebhookOptions{QueueSize: 64})
	a := testAlert(s.URL)
	a.Webhooks = []string{s.URL + "/1", s.URL + "/2"}
	for i := 0; i < 20; i++ {
		w.Notify(a)
	}
	closed := make(chan error)
	go func() { closed <- w.Close(context.Background()) }()
	close(s.block)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := len(s.requests()); n != 40 || m.deliveries(true) != 40 {
		t.Fatalf("%d requests, %d delivered; want 40", n, m.deliveries(true))
	}
	w.Notify(a)
	if w.Dropped() != 1 || m.deliveries(false) != 2 {
		t.Fatalf("after Close: dropped %d, failed %d", w.Dropped(), m.deliveries(false))
	}
	if err := w.Close(context.Background()); err != nil { // again: fine
		t.Fatal(err)
	}
}

// TestWebhookQueueFullNeverBlocks: with the worker stuck, Notify drops
// what does not fit, at once; Close gives up when its ctx ends and the
// worker still stops.
func TestWebhookQueueFullNeverBlocks(t *testing.T) {
	leakCheck(t)
	s := newHookServer(t)
	s.block = make(chan struct{})
	defer close(s.block)
	m := newMetrics()
	w := newHooks(t, s, m, budget.WebhookOptions{QueueSize: 2, Timeout: time.Minute})
	a := testAlert(s.URL)
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			w.Notify(a)
			sent.Add(1)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify blocked")
	}
	// One in the worker, at most two queued.
	if d := w.Dropped(); d < 97 || d > 99 {
		t.Fatalf("dropped %d of 100 with a queue of 2", d)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w.Close(cctx); err != context.DeadlineExceeded {
		t.Fatalf("Close with a stuck server: %v", err)
	}
	if total := m.deliveries(true) + m.deliveries(false); total != 100 {
		t.Fatalf("%d deliveries accounted for, want 100: %v", total, m.delivered)
	}
}

// TestKeeperToWebhooks: a threshold reached through a Gate arrives at the
// org's webhook.
func TestKeeperToWebhooks(t *testing.T) {
	leakCheck(t)
	s := newHookServer(t)
	m := newMetrics()
	w := newHooks(t, s, m, budget.WebhookOptions{})
	c := newClock(t0)
	k := budget.New(nil, budget.Options{Clock: c.Now, Notifier: w, Metrics: m})
	g, err := k.NewGate([]budget.OrgPolicy{{Org: "demo", Monthly: usd(50), Webhooks: []string{s.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	h := mustReserve(t, g, budget.Request{ID: "1", Org: "demo", Cost: usd(41)})
	if err := h.Commit(ctx, usd(41)); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Reserve(ctx, budget.Request{ID: "2", Org: "demo", Cost: usd(10)}); err == nil {
		t.Fatal("admitted past the budget")
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d webhook requests, want 2 (80 %% and exhausted)", len(reqs))
	}
	var ex struct {
		Text string `json:"text"`
		AIGW struct {
			Exhausted bool `json:"exhausted"`
			Threshold int  `json:"threshold"`
		} `json:"aigw"`
	}
	if err := json.Unmarshal(reqs[1], &ex); err != nil || !ex.AIGW.Exhausted || ex.AIGW.Threshold != 0 {
		t.Fatalf("exhausted alert: %v %s", err, reqs[1])
	}
	if ex.Text != "aigw: org demo's monthly budget of $50.00 is exhausted ($41.00 spent); requests it cannot hold are refused" {
		t.Fatalf("text %q", ex.Text)
	}
}
