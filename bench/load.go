package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// ticker counts the ticks of a fixed period: tick i is due at start + i*period.
type ticker interface {
	start() time.Time
	wait() int64 // blocks until the next tick is due; returns the ticks due so far, -1 on failure
	stop()
}

// sleepTicker is the portable ticker, precise to about a millisecond.
type sleepTicker struct {
	t0     time.Time
	period time.Duration
	seen   int64
}

func newSleepTicker(period time.Duration) ticker {
	return &sleepTicker{t0: time.Now(), period: period}
}

func (t *sleepTicker) start() time.Time { return t.t0 }

func (t *sleepTicker) wait() int64 {
	time.Sleep(time.Until(t.t0.Add(time.Duration(t.seen+1) * t.period)))
	t.seen = max(t.seen+1, int64(time.Since(t.t0)/t.period))
	return t.seen
}

func (t *sleepTicker) stop() {}

// Load modes.
const (
	modeClosed       = "closed"        // non-stream, N workers back to back: max req/s
	modeRate         = "rate"          // non-stream, open loop at a fixed rate: latency
	modeStream       = "stream"        // streams, open loop at a fixed rate: TTFB and total time
	modeStreamClosed = "stream-closed" // streams, N workers back to back: max streams/s
)

// loadSpec is one load run against one target.
type loadSpec struct {
	Target   string        // host:port
	Mode     string        // one of the modes above
	Duration time.Duration // measured window
	Warmup   time.Duration // run before the window, not measured
	Conns    int           // connections (and workers)
	Rate     float64       // requests per second, open-loop modes
	Key      string        // gateway key sent as a bearer token
}

// loadResult is what a load run measured. Times are in microseconds.
type loadResult struct {
	Mode       string   `json:"mode"`
	Target     string   `json:"target"`
	Window     float64  `json:"window_s"`   // measured window, seconds
	OK         int      `json:"ok"`         // good answers in the window
	Errors     int      `json:"errors"`     // bad answers in the window (status, body, transport)
	Unsent     int      `json:"unsent"`     // open loop: scheduled but never sent (target too slow)
	TotalDone  int      `json:"total_done"` // answers over the whole run, warmup included
	RPS        float64  `json:"rps"`        // good answers per second in the window
	Lat        pcts     `json:"lat"`        // non-stream: from scheduled (open loop) or send (closed) to answer
	Service    pcts     `json:"service"`    // open loop: from actual send to answer (or end of stream)
	SendLag    pcts     `json:"send_lag"`   // open loop: actual send - scheduled send
	TTFB       pcts     `json:"ttfb"`       // streams: to the first body byte
	Total      pcts     `json:"total"`      // streams: to the end of the stream
	ErrSamples []string `json:"err_samples,omitempty"`
}

// pcts are latency percentiles in microseconds.
type pcts struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(d []time.Duration) pcts {
	if len(d) == 0 {
		return pcts{}
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		i = max(0, min(i, len(d)-1))
		return float64(d[i]) / float64(time.Microsecond)
	}
	return pcts{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

// sample is one answer as a worker saw it.
type sample struct {
	sched, sent, first, done time.Time // first: first body byte (streams)
}

// worker state; merged after the run, so no locks on the hot path.
type workerStats struct {
	samples []sample
	ok      int
	errs    int
	unsent  int
	total   int
}

type errSampler struct {
	mu   sync.Mutex
	seen map[string]int
}

func (e *errSampler) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen == nil {
		e.seen = map[string]int{}
	}
	if len(e.seen) < 8 || e.seen[err.Error()] > 0 {
		e.seen[err.Error()]++
	}
}

func (e *errSampler) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for k, n := range e.seen {
		out = append(out, fmt.Sprintf("%dx %s", n, k))
	}
	slices.Sort(out)
	return out
}

const (
	chatPath      = "/v1/chat/completions"
	chatBody      = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`
	chatBodyTrue  = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}],"stream":true}`
	minSSEEvents  = streamChunks + 2 // content chunks, the finish chunk, [DONE]
	drainGrace    = 2 * time.Second  // open loop: how long after the window queued requests may still leave
	clientTimeout = 15 * time.Second
)

// client sends one kind of request and checks the answer.
type client struct {
	hc     *fasthttp.HostClient
	stream bool
	url    string
	key    string
}

func newClient(spec loadSpec) *client {
	stream := spec.Mode == modeStream || spec.Mode == modeStreamClosed
	return &client{
		hc: &fasthttp.HostClient{
			Addr:                spec.Target,
			MaxConns:            spec.Conns,
			ReadTimeout:         clientTimeout,
			WriteTimeout:        clientTimeout,
			MaxIdleConnDuration: time.Minute,
			StreamResponseBody:  stream,
			MaxConnWaitTimeout:  clientTimeout,
		},
		stream: stream,
		url:    "http://" + spec.Target + chatPath,
		key:    spec.Key,
	}
}

// conn is one worker's reusable request, response and read buffer.
type conn struct {
	req  *fasthttp.Request
	resp *fasthttp.Response
	buf  []byte
	body []byte
}

func (c *client) newConn() *conn {
	req := fasthttp.AcquireRequest()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(c.url)
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer "+c.key)
	if c.stream {
		req.Header.Set("Accept", "text/event-stream")
		req.SetBodyString(chatBodyTrue)
	} else {
		req.SetBodyString(chatBody)
	}
	return &conn{req: req, resp: fasthttp.AcquireResponse(), buf: make([]byte, 32<<10)}
}

var (
	errNoChoices = errors.New("answer without choices")
	doneEvent    = []byte("data: [DONE]")
	dataField    = []byte("data:")
	choicesKey   = []byte(`"choices"`)
)

// do sends one request. It returns when the first body byte arrived (zero
// for non-stream answers) and any failure: transport error, a status other
// than 200, or a body that is not a whole answer.
func (c *client) do(cn *conn) (first time.Time, err error) {
	resp := cn.resp
	if err := c.hc.Do(cn.req, resp); err != nil {
		return first, err
	}
	if !c.stream {
		if resp.StatusCode() != fasthttp.StatusOK {
			return first, fmt.Errorf("status %d: %.120s", resp.StatusCode(), resp.Body())
		}
		if !bytes.Contains(resp.Body(), choicesKey) {
			return first, errNoChoices
		}
		return first, nil
	}
	defer func() { _ = resp.CloseBodyStream() }()
	r := resp.BodyStream()
	if r == nil {
		return first, fmt.Errorf("status %d, no body stream", resp.StatusCode())
	}
	cn.body = cn.body[:0]
	for {
		n, rerr := r.Read(cn.buf)
		if n > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			cn.body = append(cn.body, cn.buf[:n]...)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return first, rerr
		}
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return first, fmt.Errorf("status %d: %.120s", resp.StatusCode(), cn.body)
	}
	if n := bytes.Count(cn.body, dataField); n < minSSEEvents {
		return first, fmt.Errorf("stream with %d events, want >= %d", n, minSSEEvents)
	}
	if !bytes.HasSuffix(bytes.TrimRight(cn.body, "\r\n"), doneEvent) {
		return first, errors.New("stream does not end with data: [DONE]")
	}
	return first, nil
}

// runLoad runs one load spec and measures it.
func runLoad(spec loadSpec) loadResult {
	c := newClient(spec)
	var es errSampler
	workers := make([]workerStats, spec.Conns)
	start := time.Now()
	winStart := start.Add(spec.Warmup)
	winEnd := winStart.Add(spec.Duration)

	var wg sync.WaitGroup
	var tickerLost atomic.Int64 // open loop: jobs never scheduled because the ticker failed
	switch spec.Mode {
	case modeClosed, modeStreamClosed:
		for w := range workers {
			wg.Add(1)
			go func(ws *workerStats) {
				defer wg.Done()
				cn := c.newConn()
				for {
					sent := time.Now()
					if !sent.Before(winEnd) {
						return
					}
					first, err := c.do(cn)
					done := time.Now()
					ws.total++
					if done.Before(winStart) || done.After(winEnd) {
						if err != nil && done.Before(winStart) {
							es.add(fmt.Errorf("warmup: %w", err))
						}
						continue
					}
					if err != nil {
						ws.errs++
						es.add(err)
						continue
					}
					ws.ok++
					ws.samples = append(ws.samples, sample{sched: sent, sent: sent, first: first, done: done})
				}
			}(&workers[w])
		}
	case modeRate, modeStream:
		interval := time.Duration(float64(time.Second) / spec.Rate)
		n := int64((spec.Warmup + spec.Duration) / interval)
		jobs := make(chan time.Time, min(n, 1<<16))
		tk := newTicker(interval)
		start = tk.start()
		winStart = start.Add(spec.Warmup)
		winEnd = winStart.Add(spec.Duration)
		go func() {
			defer close(jobs)
			defer tk.stop()
			for i := int64(1); i <= n; {
				due := tk.wait()
				if due < 0 {
					es.add(errors.New("load generator: ticker failed"))
					tickerLost.Store(n - i + 1)
					return
				}
				for ; i <= min(due, n); i++ {
					jobs <- start.Add(time.Duration(i) * interval)
				}
			}
		}()
		for w := range workers {
			wg.Add(1)
			go func(ws *workerStats) {
				defer wg.Done()
				cn := c.newConn()
				for at := range jobs {
					inWindow := !at.Before(winStart)
					sent := time.Now()
					if sent.After(winEnd.Add(drainGrace)) {
						if inWindow {
							ws.unsent++
						}
						continue
					}
					first, err := c.do(cn)
					done := time.Now()
					ws.total++
					if !inWindow {
						if err != nil {
							es.add(fmt.Errorf("warmup: %w", err))
						}
						continue
					}
					if err != nil {
						ws.errs++
						es.add(err)
						continue
					}
					ws.ok++
					ws.samples = append(ws.samples, sample{sched: at, sent: sent, first: first, done: done})
				}
			}(&workers[w])
		}
	default:
		return loadResult{Mode: spec.Mode, ErrSamples: []string{"unknown mode " + spec.Mode}}
	}
	wg.Wait()

	res := loadResult{Mode: spec.Mode, Target: spec.Target, Window: spec.Duration.Seconds(), Unsent: int(tickerLost.Load())}
	var lat, service, lag, ttfb, total []time.Duration
	for _, ws := range workers {
		res.OK += ws.ok
		res.Errors += ws.errs
		res.Unsent += ws.unsent
		res.TotalDone += ws.total
		for _, s := range ws.samples {
			if c.stream {
				ttfb = append(ttfb, s.first.Sub(s.sched))
				total = append(total, s.done.Sub(s.sched))
			} else {
				lat = append(lat, s.done.Sub(s.sched))
			}
			if spec.Mode == modeRate || spec.Mode == modeStream {
				service = append(service, s.done.Sub(s.sent))
				lag = append(lag, s.sent.Sub(s.sched))
			}
		}
	}
	res.RPS = float64(res.OK) / spec.Duration.Seconds()
	res.Lat, res.Service, res.SendLag = percentiles(lat), percentiles(service), percentiles(lag)
	res.TTFB, res.Total = percentiles(ttfb), percentiles(total)
	res.ErrSamples = es.list()
	return res
}

// failed reports whether any request of the window went wrong.
func (r loadResult) failed() bool { return r.Errors > 0 || r.Unsent > 0 }
