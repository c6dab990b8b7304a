package budget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of WebhookOptions.
const (
	DefaultWebhookTimeout = 5 * time.Second
	DefaultWebhookRetries = 3
	DefaultWebhookBackoff = time.Second
	DefaultWebhookQueue   = 256
)

// maxBackoff caps one wait between attempts, also one a 429's Retry-After
// asks for.
const maxBackoff = time.Minute

// WebhookOptions configures NewWebhooks. Zero fields get defaults.
type WebhookOptions struct {
	// Client sends the requests; default a client of its own (whose idle
	// connections Close closes).
	Client *http.Client
	// Timeout bounds one attempt; default 5 s.
	Timeout time.Duration
	// Retries is the number of retries after a failed first attempt, on
	// a network error, a 5xx or a 429 (other answers are final); default
	// 3, negative for none.
	Retries int
	// Backoff is the wait before the first retry, doubled before each
	// further one (a 429's Retry-After, if longer, is honoured up to one
	// minute); default 1 s.
	Backoff time.Duration
	// QueueSize bounds the alerts waiting for delivery; default 256. An
	// alert that finds the queue full is dropped and counted.
	QueueSize int
	// Metrics receives Delivered; default: none.
	Metrics Metrics
	// Logger logs failed and dropped deliveries; default: discard.
	Logger *slog.Logger
}

// Webhooks is a Notifier that POSTs each alert, as Slack-compatible JSON,
// to each of its Webhooks, from one worker goroutine. Notify never blocks.
// Call Close to stop the worker.
type Webhooks struct {
	client    *http.Client
	ownClient bool
	timeout   time.Duration
	retries   int
	backoff   time.Duration
	metrics   Metrics
	log       *slog.Logger

	mu     sync.Mutex // guards closed and sends on q
	closed bool
	q      chan Alert

	ctx     context.Context // the worker's: cancelled when Close gives up
	cancel  context.CancelFunc
	done    chan struct{}
	dropped atomic.Uint64
}

// NewWebhooks starts a webhook notifier.
func NewWebhooks(o WebhookOptions) *Webhooks {
	w := &Webhooks{client: o.Client, timeout: o.Timeout, retries: o.Retries, backoff: o.Backoff,
		metrics: o.Metrics, log: o.Logger, done: make(chan struct{})}
	if w.client == nil {
		w.client, w.ownClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, true
	}
	if w.timeout <= 0 {
		w.timeout = DefaultWebhookTimeout
	}
	switch {
	case w.retries == 0:
		w.retries = DefaultWebhookRetries
	case w.retries < 0:
		w.retries = 0
	}
	if w.backoff <= 0 {
		w.backoff = DefaultWebhookBackoff
	}
	if w.metrics == nil {
		w.metrics = nopMetrics{}
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	size := o.QueueSize
	if size <= 0 {
		size = DefaultWebhookQueue
	}
	w.q = make(chan Alert, size)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w
}

// Notify queues a for delivery to a.Webhooks; it never blocks. An alert
// without webhooks is ignored; one that finds the queue full, or arrives
// after Close, is dropped: counted in Dropped and as a failed delivery per
// destination.
func (w *Webhooks) Notify(a Alert) {
	if len(a.Webhooks) == 0 {
		return
	}
	w.mu.Lock()
	ok := false
	if !w.closed {
		select {
		case w.q <- a:
			ok = true
		default:
		}
	}
	w.mu.Unlock()
	if !ok {
		w.drop(a, "queue full or closed")
	}
}

// Dropped returns the number of alerts dropped so far.
func (w *Webhooks) Dropped() uint64 { return w.dropped.Load() }

func (w *Webhooks) drop(a Alert, why string) {
	w.dropped.Add(1)
	for range a.Webhooks {
		w.metrics.Delivered(false)
	}
	w.log.Warn("budget: alert dropped", "why", why, "org", a.Org, "period", a.Period, "threshold", a.Threshold)
}

// Close stops accepting alerts, delivers those queued until ctx ends, and
// stops the worker. If ctx ends first, the delivery under way is abandoned,
// the rest are dropped, and ctx's error is returned once the worker has
// stopped. Close may be called more than once.
func (w *Webhooks) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.q)
	}
	w.mu.Unlock()
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
		err = ctx.Err()
	}
	w.cancel()
	if w.ownClient {
		w.client.CloseIdleConnections()
	}
	return err
}

func (w *Webhooks) run() {
	defer close(w.done)
	for a := range w.q {
		if w.ctx.Err() != nil {
			w.drop(a, "closing")
			continue
		}
		body, err := json.Marshal(payload(a))
		if err != nil { // cannot happen: plain types only
			w.drop(a, err.Error())
			continue
		}
		for _, u := range a.Webhooks {
			err := w.deliver(u, body)
			w.metrics.Delivered(err == nil)
			if err != nil {
				w.log.Warn("budget: alert not delivered", "webhook", redactURL(u), "org", a.Org,
					"period", a.Period, "threshold", a.Threshold, "err", err)
			}
		}
	}
}

// deliver POSTs body to u, retrying per the options.
func (w *Webhooks) deliver(u string, body []byte) error {
	wait := w.backoff
	for attempt := 0; ; attempt++ {
		retry, after, err := w.attempt(u, body)
		if err == nil {
			return nil
		}
		if !retry || attempt >= w.retries {
			return err
		}
		d := max(wait, min(after, maxBackoff))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: closing)", err)
		}
		wait = min(2*wait, maxBackoff)
	}
}

// attempt makes one POST; it reports whether a failure is worth a retry
// and how long the server asked to wait.
func (w *Webhooks) attempt(u string, body []byte) (retry bool, after time.Duration, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aigw-budget-alerts")
	resp, err := w.client.Do(req)
	if err != nil {
		return true, 0, errors.New("webhook request failed: " + scrubURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return true, after, fmt.Errorf("webhook answered %s", resp.Status)
	case resp.StatusCode >= 500:
		return true, 0, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return false, 0, fmt.Errorf("webhook answered %s", resp.Status)
}

// scrubURLError drops the URL (which may hold a secret token) from a
// client error.
func scrubURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// webhookBody is the JSON posted: Slack's "text", and the alert in
// machine-readable form under "aigw".
type webhookBody struct {
	Text string      `json:"text"`
	AIGW webhookData `json:"aigw"`
}

type webhookData struct {
	Org            string `json:"org"`
	Period         Period `json:"period"`
	PeriodStart    string `json:"period_start"`
	Threshold      int    `json:"threshold"`
	Exhausted      bool   `json:"exhausted"`
	SpentUSDMicros int64  `json:"spent_usd_micros"`
	LimitUSDMicros int64  `json:"limit_usd_micros"`
	Time           string `json:"time"`
}

func payload(a Alert) webhookBody {
	text := fmt.Sprintf("aigw: org %s has spent %d%% of its %s budget (%s of %s)",
		a.Org, a.Threshold, a.Period, FormatUSD(a.Spent), FormatUSD(a.Limit))
	if a.Exhausted {
		text = fmt.Sprintf("aigw: org %s's %s budget of %s is exhausted (%s spent); requests it cannot hold are refused",
			a.Org, a.Period, FormatUSD(a.Limit), FormatUSD(a.Spent))
	}
	return webhookBody{Text: text, AIGW: webhookData{
		Org: a.Org, Period: a.Period, PeriodStart: a.PeriodStart.Format(time.RFC3339),
		Threshold: a.Threshold, Exhausted: a.Exhausted,
		SpentUSDMicros: int64(a.Spent), LimitUSDMicros: int64(a.Limit),
		Time: a.Time.UTC().Format(time.RFC3339Nano),
	}}
}
