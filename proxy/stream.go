package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/openai"
	"github.com/aigw/aigw/providers/sse"
)

// maxEventBytes caps one upstream SSE event.
const maxEventBytes = 1 << 20

var (
	doneData   = []byte("[DONE]")
	doneEvent  = []byte("data: [DONE]\n\n")
	heartbeatC = "keep-alive"
)

// streamMode says how upstream events become client events.
type streamMode int

const (
	// modePass relays an OpenAI-format stream to an OpenAI client.
	modePass streamMode = iota
	// modeTranslate decodes another provider's stream into OpenAI chunks.
	modeTranslate
	// modeNativePass relays an Anthropic stream to an Anthropic client.
	modeNativePass
	// modeNativeTranslate encodes another provider's stream as Anthropic
	// events for an Anthropic client.
	modeNativeTranslate
)

// streamJob relays one upstream stream. It is created in the handler, which
// primes it (reads until the first content, holding those frames back: the
// commit point), and then run by fasthttp's stream writer after the handler
// returned. It never touches the RequestCtx after the handler returned, and
// is used by one goroutine at a time.
type streamJob struct {
	s    *Server
	x    *exchange
	t    *Target
	req  *llm.Request
	in   *llm.Inbound
	conn net.Conn
	mode streamMode
	sc   *sse.Scanner

	// held are client bytes produced before the commit point.
	held []byte
	// tail are the client bytes of the upstream's terminal event ([DONE],
	// message_stop), held back with the trailer until the usage record is
	// on disk: a client that saw the end of its stream has been accounted.
	tail       []byte
	sawContent bool
	done       bool

	// translation state
	dec    StreamDecoder
	enc    *anthropic.StreamEncoder
	deltas []llm.Delta
	// capDec decodes a passed-through stream for the response cache, only
	// while the answer is to be stored.
	capDec    StreamDecoder
	capDeltas []llm.Delta
	id        string
	model     string
	created   int64
	scratch   []byte
}

func (s *Server) newStreamJob(x *exchange, t *Target, req *llm.Request, in *llm.Inbound) *streamJob {
	j := &streamJob{s: s, x: x, t: t, req: req, in: in, sc: newScanner(in.Body),
		id: "chatcmpl-" + x.id, model: t.Model, created: s.opts.Now().Unix()}
	switch {
	case x.native && t.Type == "anthropic":
		j.mode = modeNativePass
	case x.native:
		j.mode = modeNativeTranslate
		j.enc = anthropic.NewStreamEncoder("msg_"+x.id, t.Model)
	case t.openAIWire:
		j.mode = modePass
	default:
		j.mode = modeTranslate
	}
	if j.mode != modePass {
		j.dec = t.adapter.NewStreamDecoder(req)
	}
	return j
}

// prime reads upstream events until the first content (text, tool call,
// refusal, finish) or the end of the stream, keeping the client bytes they
// produce. Role-only, message_start and ping frames are held back, so a
// stream that fails before saying anything can still fail over. An error
// returned here means nothing reached the client; the caller closes the
// body.
func (j *streamJob) prime() *llm.Error {
	for !j.sawContent && !j.done && j.sc.Next() {
		var e *llm.Error
		j.held, e = j.stepHold(j.held, j.sc.Event())
		if e != nil {
			return e
		}
	}
	if j.sawContent || j.done {
		return nil
	}
	if err := j.sc.Err(); err != nil {
		e := brokenStream(err, j.t)
		e.Retryable = true
		return e
	}
	return &llm.Error{Kind: llm.KindUpstream, Provider: j.t.Provider, Retryable: true,
		Msg: "The upstream closed the stream before sending anything."}
}

// stepHold is step, except that the bytes of the terminal event go to
// j.tail instead of dst.
func (j *streamJob) stepHold(dst []byte, ev *sse.Event) ([]byte, *llm.Error) {
	n := len(dst)
	dst, e := j.step(dst, ev)
	if e == nil && j.done {
		j.tail = append(j.tail, dst[n:]...)
		dst = dst[:n]
	}
	return dst, e
}

// step turns one upstream event into client bytes appended to dst,
// observing usage and the first content on the way.
func (j *streamJob) step(dst []byte, ev *sse.Event) ([]byte, *llm.Error) {
	x := j.x
	if j.mode == modePass {
		if bytes.Equal(ev.Data, doneData) {
			j.done = true
			return append(dst, doneEvent...), nil
		}
		f := openai.Observe(ev.Data)
		if f.HasUsage {
			x.usage.Merge(f.Usage)
			x.haveUsage = true
		}
		if f.Err {
			return dst, j.upstreamStreamError(ev)
		}
		if f.Content {
			j.markContent()
		}
		if c := x.cache; c != nil && c.store && !c.bad {
			if j.capDec == nil {
				j.capDec = j.t.adapter.NewStreamDecoder(j.req)
			}
			var err error
			if j.capDeltas, err = j.capDec.Decode(ev, j.capDeltas[:0]); err != nil {
				c.bad = true
			}
			c.observe(j.capDeltas)
		}
		wantUsage := j.req.WantsUsageChunk()
		if f.UsageOnly && !wantUsage {
			return dst, nil
		}
		payload := ev.Data
		if !wantUsage {
			j.scratch = openai.StripNullUsage(j.scratch[:0], ev.Data)
			payload = j.scratch
		}
		return sse.AppendEvent(dst, ev.Name, payload), nil
	}

	var err error
	j.deltas, err = j.dec.Decode(ev, j.deltas[:0])
	if err != nil {
		return dst, providerError(err, j.t)
	}
	if c := x.cache; c != nil && c.store && j.mode == modeTranslate {
		c.observe(j.deltas)
	}
	if j.mode == modeNativePass {
		for i := range j.deltas {
			if j.deltas[i].HasContent() {
				j.markContent()
			}
		}
		j.done = j.dec.Done()
		return sse.AppendEvent(dst, ev.Name, ev.Data), nil
	}
	for i := range j.deltas {
		d := &j.deltas[i]
		if d.Usage != nil {
			x.usage.Merge(*d.Usage)
			x.haveUsage = true
		}
		if d.HasContent() {
			j.markContent()
		}
		if j.mode == modeNativeTranslate {
			dst = j.enc.Append(dst, d)
			continue
		}
		if d.Role == "" && !d.HasContent() {
			continue
		}
		j.scratch = openai.AppendChunk(j.scratch[:0], d, j.id, j.model, j.created)
		dst = sse.AppendData(dst, j.scratch)
	}
	j.done = j.dec.Done()
	return dst, nil
}

func (j *streamJob) markContent() {
	if !j.sawContent {
		j.sawContent = true
		j.x.firstToken = j.s.opts.Now().Sub(j.x.start)
	}
}

// trailer ends a stream that completed: the usage chunk when asked and
// [DONE] for OpenAI clients, message_delta and message_stop for Anthropic
// ones.
func (j *streamJob) trailer(dst []byte) []byte {
	x := j.x
	if j.dec != nil {
		if u, ok := j.dec.Usage(); ok {
			x.usage.Merge(u)
			x.haveUsage = true
		}
	}
	j.s.keepStream(x)
	switch j.mode {
	case modePass:
		if !j.done { // the upstream closed without [DONE] (else it is in dst, from j.tail)
			dst = append(dst, doneEvent...)
		}
	case modeTranslate:
		if j.req.WantsUsageChunk() && x.haveUsage {
			j.scratch = openai.AppendUsageChunk(j.scratch[:0], x.usage, j.id, j.model, j.created)
			dst = sse.AppendData(dst, j.scratch)
		}
		dst = append(dst, doneEvent...)
	case modeNativeTranslate:
		dst = j.enc.Finish(dst, x.usage)
	}
	return dst
}

// errorTrailer ends a committed stream that failed: an error event in the
// client's format (then [DONE] for OpenAI clients, so SDKs stop cleanly).
func (j *streamJob) errorTrailer(dst []byte, e *llm.Error) []byte {
	switch j.mode {
	case modeNativePass, modeNativeTranslate:
		enc := j.enc
		if enc == nil {
			enc = anthropic.NewStreamEncoder("", "")
		}
		return enc.AppendError(dst, e)
	default:
		dst = sse.AppendData(dst, appendOpenAIError(nil, e))
		return append(dst, doneEvent...)
	}
}

// startStream commits to a streamed answer: status and SSE headers now, the
// held frames and the rest from the stream writer fasthttp runs after the
// handler returns.
func (s *Server) startStream(ctx *fasthttp.RequestCtx, j *streamJob) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	h := &ctx.Response.Header
	h.SetContentType("text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	j.conn = ctx.Conn()
	s.metrics.ActiveStreams.Inc()
	ctx.SetBodyStreamWriter(j.run)
}

// run relays the rest of the stream, finishes the exchange (the usage
// record is appended, and fsynced, there), and only then sends the end of
// the stream. A kill -9 can therefore lose no record of a stream whose
// client saw its end; a client that goes away just before the end is
// recorded as answered (it had all the content).
func (j *streamJob) run(w *bufio.Writer) {
	s, x := j.s, j.x
	defer s.metrics.ActiveStreams.Dec()
	defer j.in.Body.Close()
	cw := &clientWriter{w: w, conn: j.conn, timeout: s.opts.WriteTimeout, interval: s.opts.Heartbeat}
	if cw.interval > 0 {
		cw.timer = time.AfterFunc(cw.interval, cw.beat)
	}
	defer cw.stop()

	end, e := j.relay(cw)
	status := fasthttp.StatusOK
	switch {
	case e == nil:
	case e.Kind == llm.KindCanceled:
		status = 499
	default:
		// The status line went out long ago; the error travelled in the
		// stream, and the record says the request failed.
		status = e.Kind.Status()
	}
	x.finish(status, e)
	if e == nil {
		_ = cw.write(end)
		j.drain()
	}
}

// relay sends the stream up to its end and returns the end (the terminal
// event and the trailer) unsent, or the error the stream ended with (an
// error trailer, if any, has been sent).
func (j *streamJob) relay(cw *clientWriter) ([]byte, *llm.Error) {
	buf := j.held
	if len(buf) > 0 {
		if err := cw.write(buf); err != nil {
			return nil, canceled(err)
		}
	}
	// Events are buffered as they are relayed and flushed whenever the
	// scanner is about to wait for the upstream: each event reaches the
	// client as soon as it arrives, without one flush (and one syscall) per
	// event when several arrive together.
	var flushErr error
	j.sc.BeforeRead(func() {
		if flushErr == nil {
			flushErr = cw.flush()
		}
	})
	defer j.sc.BeforeRead(nil)
	buf = make([]byte, 0, 4096)
	for !j.done && j.sc.Next() {
		if flushErr != nil {
			return nil, canceled(flushErr)
		}
		var e *llm.Error
		buf, e = j.stepHold(buf[:0], j.sc.Event())
		if e != nil {
			_ = cw.write(j.errorTrailer(buf, e))
			return nil, e
		}
		if len(buf) > 0 {
			if err := cw.buffer(buf); err != nil {
				return nil, canceled(err)
			}
		}
	}
	if flushErr == nil {
		flushErr = cw.flush() // all but the end, before the record's fsync
	}
	if flushErr != nil {
		return nil, canceled(flushErr)
	}
	if err := j.sc.Err(); err != nil && !j.done {
		e := brokenStream(err, j.t)
		_ = cw.write(j.errorTrailer(nil, e))
		return nil, e
	}
	return j.trailer(j.tail), nil
}

// drainLimit bounds what is read after the terminal event so the upstream
// connection can go back to its pool.
const drainLimit = 64 << 10

// drain reads the little an upstream sends after its terminal event (the
// chunked terminator) so the connection is reused, not closed.
func (j *streamJob) drain() {
	for i := 0; i < 4 && j.sc.Next(); i++ {
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(j.in.Body, drainLimit))
}

// clientWriter serialises writes to the client between the pump and the
// heartbeat timer, with a write deadline per flush (there is no server-wide
// write timeout, which would cut long streams).
type clientWriter struct {
	mu       sync.Mutex
	w        *bufio.Writer
	conn     net.Conn
	timeout  time.Duration
	err      error
	stopped  bool
	timer    *time.Timer
	interval time.Duration
}

// write sends p and flushes. It returns the first error seen (the client
// went away); after an error every write fails at once.
func (c *clientWriter) write(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.bufferLocked(p); err != nil {
		return err
	}
	return c.flushLocked()
}

// buffer queues p without flushing; flush (or the next write) sends it.
func (c *clientWriter) buffer(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bufferLocked(p)
}

// flush sends what was buffered.
func (c *clientWriter) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *clientWriter) bufferLocked(p []byte) error {
	if c.err != nil {
		return c.err
	}
	// Only a write that overflows the buffer reaches the connection; the
	// others are copies, and setting a deadline (a runtime timer change)
	// for each was 5% of a stream's CPU.
	if len(p) > c.w.Available() {
		c.armDeadline()
	}
	if _, err := c.w.Write(p); err != nil {
		c.err = err
	}
	return c.err
}

func (c *clientWriter) flushLocked() error {
	if c.err != nil {
		return c.err
	}
	if c.w.Buffered() == 0 {
		return nil
	}
	c.armDeadline()
	if err := c.w.Flush(); err != nil {
		c.err = err
	}
	return c.err
}

// armDeadline gives the next write to the connection the write timeout.
func (c *clientWriter) armDeadline() {
	if c.conn != nil && c.timeout > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
}

// beat is the heartbeat timer's callback: a comment line keeps proxies and
// clients from timing out a quiet stream.
func (c *clientWriter) beat() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.err != nil {
		return
	}
	if c.bufferLocked(sse.AppendComment(nil, heartbeatC)) == nil {
		_ = c.flushLocked()
	}
	c.timer.Reset(c.interval)
}

// stop ends heartbeats; no write happens after it returns.
func (c *clientWriter) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
}

// upstreamStreamError decodes an error event of an OpenAI-format stream.
func (j *streamJob) upstreamStreamError(ev *sse.Event) *llm.Error {
	dec := j.t.adapter.NewStreamDecoder(j.req)
	if _, err := dec.Decode(ev, nil); err != nil {
		return providerError(err, j.t)
	}
	return &llm.Error{Kind: llm.KindUpstream, Provider: j.t.Provider, Msg: "The upstream stream failed."}
}

// brokenStream reports an upstream stream that ended abnormally.
func brokenStream(err error, t *Target) *llm.Error {
	e := llm.AsError(err)
	if e.Kind == llm.KindInternal {
		e = &llm.Error{Kind: llm.KindUpstream, Msg: "The upstream stream was interrupted.", Err: err}
	}
	if e.Provider == "" {
		e.Provider = t.Provider
	}
	return e
}

// canceled reports a client that went away.
func canceled(err error) *llm.Error {
	return &llm.Error{Kind: llm.KindCanceled, Msg: "client closed the connection", Err: err}
}

// newScanner reads an upstream SSE body.
func newScanner(r io.Reader) *sse.Scanner { return sse.NewScanner(r, maxEventBytes) }
