// Package transport is aigw's only user of the fasthttp client. It sends the
// llm.Outbound requests adapters build and hands back llm.Inbound answers
// whose bodies stream, with connection pools, deadlines (connect, first
// byte, idle, total) and header hygiene: the upstream sees only the headers
// the adapter set, never the client's.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/llm"
)

// Config sets one upstream's client. Zero durations mean the defaults below.
type Config struct {
	// Name is the provider id, used in errors.
	Name string
	// ConnectTimeout bounds connecting: dialling and, for https, the TLS
	// handshake (default 5s).
	ConnectTimeout time.Duration
	// FirstByteTimeout bounds the wait from request written to the first
	// answer byte (default 120s).
	FirstByteTimeout time.Duration
	// IdleTimeout bounds each silence while a body streams (default 60s).
	IdleTimeout time.Duration
	// TotalTimeout bounds the whole exchange, stream included (default 10m).
	TotalTimeout time.Duration
	// MaxConns caps connections per upstream host (default 512). A request
	// that finds all of them busy waits up to ConnectTimeout for one to come
	// free (a burst queues rather than fails); after that it fails as
	// unavailable.
	MaxConns int
	// MaxResponseBytes caps a non-stream answer (default 32 MiB).
	MaxResponseBytes int
	// TLS overrides the TLS client configuration (tests).
	TLS *tls.Config
}

func (c *Config) defaults() {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.FirstByteTimeout <= 0 {
		c.FirstByteTimeout = 120 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.TotalTimeout <= 0 {
		c.TotalTimeout = 10 * time.Minute
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 512
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = 32 << 20
	}
}

// Client sends requests to one upstream. It is safe for concurrent use; its
// idle connections close by themselves after a while, so dropping a Client
// (after a config reload) leaks nothing for long.
type Client struct {
	cfg    Config
	dialer net.Dialer
	hc     *fasthttp.Client
}

// New builds a client.
func New(cfg Config) *Client {
	cfg.defaults()
	c := &Client{cfg: cfg, dialer: net.Dialer{KeepAlive: 30 * time.Second}}
	c.hc = &fasthttp.Client{
		// Every host client dials through c.dial, which knows the scheme: it
		// does the TLS handshake itself so that watchConn sits above TLS
		// (see watchConn) and ConnectTimeout bounds the handshake too.
		// fasthttp takes a conn with a Handshake method as TLS already.
		ConfigureClient: func(hc *fasthttp.HostClient) error {
			isTLS := hc.IsTLS
			hc.DialTimeout = func(addr string, timeout time.Duration) (net.Conn, error) {
				return c.dial(addr, isTLS, timeout)
			}
			return nil
		},
		MaxConnsPerHost:               cfg.MaxConns,
		MaxConnWaitTimeout:            cfg.ConnectTimeout,
		MaxIdleConnDuration:           90 * time.Second,
		MaxResponseBodySize:           cfg.MaxResponseBytes,
		ReadBufferSize:                64 << 10,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: false,
		DisablePathNormalizing:        true,
		RetryIfErr:                    func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	return c
}

// dialError marks a failure to connect (dial or TLS handshake): the upstream
// never saw the request.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial connects to addr within ConnectTimeout, or within timeout (what is
// left of the request's deadline) when that is shorter, and wraps the
// connection in a watchConn, above TLS for https. Failures are dialErrors,
// except running out of the request's deadline, which is a plain timeout.
func (c *Client) dial(addr string, isTLS bool, timeout time.Duration) (net.Conn, error) {
	byRequest := timeout > 0 && timeout < c.cfg.ConnectTimeout
	if !byRequest {
		timeout = c.cfg.ConnectTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	fail := func(err error) error {
		var ne net.Error
		if byRequest && errors.As(err, &ne) && ne.Timeout() {
			return err
		}
		return &dialError{err}
	}
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fail(err)
	}
	if !isTLS {
		return &watchConn{Conn: conn, firstByte: c.cfg.FirstByteTimeout, idle: c.cfg.IdleTimeout}, nil
	}
	var tc *tls.Config
	if c.cfg.TLS != nil {
		tc = c.cfg.TLS.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		tc.ServerName = host
	}
	tlsConn := tls.Client(conn, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fail(err)
	}
	return &tlsWatchConn{watchConn{Conn: tlsConn, firstByte: c.cfg.FirstByteTimeout, idle: c.cfg.IdleTimeout}}, nil
}

// keptHeaders are the answer headers the proxy may need; others are not
// copied (the proxy never relays an upstream's headers to its clients).
var keptHeaders = [...]string{"Content-Type", "Retry-After", "Retry-After-Ms", "X-Should-Retry", "X-Request-Id", "Request-Id"}

// inboundHeaders is an Inbound with the backing array of its Header.
type inboundHeaders struct {
	in llm.Inbound
	h  [len(keptHeaders)]llm.Header
}

// headerValue returns v as a string, without allocating for the content
// types upstreams send on nearly every answer.
func headerValue(v []byte) string {
	switch string(v) {
	case "application/json":
		return "application/json"
	case "application/json; charset=utf-8":
		return "application/json; charset=utf-8"
	case "text/event-stream":
		return "text/event-stream"
	case "text/event-stream; charset=utf-8":
		return "text/event-stream; charset=utf-8"
	}
	return string(v)
}

// Do sends out and returns once the answer's status and headers arrived.
//
// The caller owns the returned Inbound and must Close its Body exactly once.
// For a stream, Close before the end aborts the upstream request (the
// connection is closed, so the upstream sees the cancel); a stream read to
// io.EOF and closed gives its connection back to the pool. Reads must come
// from one goroutine at a time; a stream's Close may come from another one
// and makes a blocked Read return. A non-stream body also has a Bytes
// method returning the whole body without a copy, valid until Close.
//
// ctx's deadline, when earlier than the total timeout, bounds the exchange,
// stream included; ctx itself is not watched (fasthttp has no
// cancellation): the first-byte timeout bounds the wait for headers, and
// closing the body ends a stream.
//
// Errors are *llm.Error: KindUnavailable for connect failures (dial, TLS
// handshake, pool full), KindTimeout for deadlines, KindUpstream for broken
// answers; all retryable except an answer over MaxResponseBytes. A ctx
// already done gives KindCanceled (KindTimeout for an expired deadline),
// not retryable, without dialling. Errors from a stream's Read, other than
// io.EOF, are *llm.Error too.
//
// The upstream receives exactly out's headers (names in canonical form, one
// field per entry, repeated keys kept), plus Host and Content-Length; no
// default User-Agent or Content-Type is added.
func (c *Client) Do(ctx context.Context, out *llm.Outbound) (*llm.Inbound, error) {
	if err := ctx.Err(); err != nil {
		e := &llm.Error{Kind: llm.KindCanceled, Provider: c.cfg.Name, Msg: "request canceled", Err: err}
		if errors.Is(err, context.DeadlineExceeded) {
			e.Kind, e.Msg = llm.KindTimeout, "request deadline exceeded"
		}
		return nil, e
	}
	deadline := time.Now().Add(c.cfg.TotalTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.SetRequestURI(out.URL)
	req.Header.SetMethod(out.Method)
	req.Header.SetNoDefaultContentType(true)
	for _, h := range out.Header {
		req.Header.Add(h.Key, h.Value)
	}
	req.SetBodyRaw(out.Body)
	resp.StreamBody = out.Stream

	start := time.Now()
	err := c.hc.DoDeadline(req, resp, deadline)
	fasthttp.ReleaseRequest(req)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, c.classify(err, time.Since(start))
	}
	// One allocation for the answer and room for every kept header.
	ih := &inboundHeaders{}
	in := &ih.in
	in.Status = resp.StatusCode()
	in.Header = ih.h[:0]
	for _, k := range keptHeaders {
		if v := resp.Header.Peek(k); len(v) > 0 {
			in.Header = append(in.Header, llm.Header{Key: k, Value: headerValue(v)})
		}
	}
	if out.Stream && resp.BodyStream() != nil {
		sb := &streamBody{resp: resp, stream: resp.BodyStream(), name: c.cfg.Name, deadline: deadline,
			chunked: resp.Header.ContentLength() == -1}
		if a, ok := resp.LocalAddr().(*connAddr); ok {
			sb.conn = a.conn
		}
		in.Body = sb
	} else {
		in.Body = &bufferedBody{resp: resp, b: resp.Body()}
	}
	return in, nil
}

func (c *Client) classify(err error, elapsed time.Duration) error {
	e := &llm.Error{Provider: c.cfg.Name, Retryable: true, Err: err}
	var ne net.Error
	var oe *net.OpError
	var de *dialError
	switch {
	case errors.As(err, &de):
		e.Kind = llm.KindUnavailable
		e.Msg = "upstream " + c.cfg.Name + " is unreachable"
		if errors.As(err, &ne) && ne.Timeout() {
			e.Msg += " (connect timeout)"
		}
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &ne) && ne.Timeout():
		e.Kind = llm.KindTimeout
		e.Msg = fmt.Sprintf("upstream %s did not answer in time (%s)", c.cfg.Name, elapsed.Round(time.Millisecond))
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		e.Kind = llm.KindUnavailable
		e.Msg = fmt.Sprintf("upstream %s has no free connection (all %d busy)", c.cfg.Name, c.cfg.MaxConns)
	case errors.As(err, &oe) && oe.Op == "dial":
		e.Kind = llm.KindUnavailable
		e.Msg = "upstream " + c.cfg.Name + " is unreachable"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		e.Kind = llm.KindUpstream
		e.Msg = "upstream " + c.cfg.Name + " closed the connection before answering"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e.Kind = llm.KindUpstream
		e.Retryable = false
		e.Msg = "upstream " + c.cfg.Name + " answer is too large"
	default:
		e.Kind = llm.KindUpstream
		e.Msg = "upstream " + c.cfg.Name + " failed: " + shortErr(err)
	}
	return e
}

// shortErr keeps an error text short and free of addresses for clients.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		s = s[i+2:]
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

var (
	// errClosedBody is returned by Read after Close.
	errClosedBody = errors.New("transport: read on a closed body")
	// errTruncated is a chunked stream cut by the upstream closing the
	// connection before the last chunk.
	errTruncated = fmt.Errorf("connection closed before the last chunk: %w", io.ErrUnexpectedEOF)
)

// streamBody is a streamed answer body. stream is fasthttp's reader, taken
// before resp can be released: it is not pooled, it serialises Read with
// Close and fails Reads after Close, so a Close from another goroutine
// unblocks a pending Read safely.
type streamBody struct {
	resp      *fasthttp.Response
	stream    io.Reader
	conn      *watchConn // the answer's connection; nil if unknown
	name      string
	deadline  time.Time // the exchange's total deadline
	chunked   bool
	closed    atomic.Bool
	truncated atomic.Bool
}

// Read returns io.EOF at the end of the body and *llm.Error otherwise:
// KindTimeout when the idle or the total deadline passed, KindUpstream when
// the stream broke (reset, truncated chunk).
func (b *streamBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errClosedBody
	}
	n, err := b.stream.Read(p)
	if b.closed.Load() && err != nil {
		return n, errClosedBody
	}
	if err == io.EOF && b.chunked && b.conn != nil && b.conn.eof.Load() {
		// A chunked body ends with its last chunk, never by the peer
		// closing; fasthttp does not tell the two apart.
		b.truncated.Store(true)
		err = errTruncated
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	e := &llm.Error{Kind: llm.KindUpstream, Provider: b.name, Retryable: true, Err: err}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(b.deadline):
		e.Kind, e.Msg = llm.KindTimeout, "upstream "+b.name+" stream exceeded the total timeout"
	case errors.As(err, &ne) && ne.Timeout():
		e.Kind, e.Msg = llm.KindTimeout, "upstream "+b.name+" went silent"
	default:
		e.Msg = "upstream " + b.name + " stream broke: " + shortErr(err)
	}
	return n, e
}

// Close aborts the stream if it was not read to the end and releases the
// response. Later calls are no-ops.
func (b *streamBody) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	if b.truncated.Load() {
		// fasthttp saw io.EOF and would pool the dead connection.
		if s, ok := b.stream.(fasthttp.ReadCloserWithError); ok {
			_ = s.CloseWithError(errTruncated)
		}
	}
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	return err
}

type bufferedBody struct {
	resp *fasthttp.Response
	b    []byte
}

func (b *bufferedBody) Read(p []byte) (int, error) {
	if len(b.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.b)
	b.b = b.b[n:]
	return n, nil
}

// Bytes returns the unread body without copying; valid until Close.
func (b *bufferedBody) Bytes() []byte { return b.b }

func (b *bufferedBody) Close() error {
	b.b = nil
	if b.resp != nil {
		fasthttp.ReleaseResponse(b.resp)
		b.resp = nil
	}
	return nil
}
