// Package fakecore is the plumbing the fake upstreams of providertest share:
// an httptest.Server whose handlers record every request, misbehave on
// demand (a fault, optionally for a number of requests only), pace and cut
// SSE streams, and count the streams their client abandoned.
//
// It knows nothing of any provider's wire format; fakeanthropic and
// fakegemini build their answers and hand them to Core.
package fakecore

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Recorded is one request as a fake received it.
type Recorded struct {
	Method string
	Path   string // decoded
	// EscapedPath is the path as it was sent, escapes kept (a deployment
	// or model name with a "/" arrives as %2F).
	EscapedPath string
	Query       string
	Header      http.Header
	Body        []byte
}

// Core is the shared state of one fake server. F is the fake's fault type.
// Its methods are safe for concurrent use.
type Core[F any] struct {
	srv  *httptest.Server
	done chan struct{}

	canceled atomic.Int64
	seq      atomic.Int64

	mu    sync.Mutex
	reqs  []Recorded
	fault F
	left  int // requests left for a counted fault; 0 means until replaced
}

// Start serves h on a new httptest.Server and registers its shutdown with
// t.Cleanup: hanging handlers are released, connections closed.
func (c *Core[F]) Start(t testing.TB, h http.Handler) {
	t.Helper()
	c.done = make(chan struct{})
	c.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		close(c.done)
		c.srv.CloseClientConnections()
		c.srv.Close()
	})
}

// URL is the server's root URL (scheme, host and port, no path).
func (c *Core[F]) URL() string { return c.srv.URL }

// Requests returns a deep copy of every request received so far, in order.
func (c *Core[F]) Requests() []Recorded {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Recorded, len(c.reqs))
	for i, r := range c.reqs {
		r.Header = r.Header.Clone()
		r.Body = append([]byte(nil), r.Body...)
		out[i] = r
	}
	return out
}

// Canceled returns the number of streams the client abandoned before their
// end.
func (c *Core[F]) Canceled() int { return int(c.canceled.Load()) }

// SetFault puts f in force from the next request on: for count requests,
// after which the zero F is, or until replaced when count is 0.
func (c *Core[F]) SetFault(f F, count int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fault, c.left = f, count
}

// Record stores the request and returns the fault that applies to it.
func (c *Core[F]) Record(r *http.Request, body []byte) F {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, Recorded{Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body})
	f := c.fault
	if c.left > 0 {
		if c.left--; c.left == 0 {
			var zero F
			c.fault = zero
		}
	}
	return f
}

// NextID returns "prefix" followed by a number unique to this server.
func (c *Core[F]) NextID(prefix string) string {
	return prefix + strconv.FormatInt(c.seq.Add(1), 10)
}

// Pause waits d; false if the client or the server went away first.
func (c *Core[F]) Pause(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-c.done:
	}
	return false
}

// Hang blocks until the client gives up or the server closes.
func (c *Core[F]) Hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-c.done:
	}
}

// Stream answers 200 with an SSE body made of frames (each a complete SSE
// event, blank line included), flushing each and waiting interval between
// two. abortAfter > 0 breaks the connection after that many frames. A
// client that goes away mid-stream is counted in Canceled. The Content-Type
// is text/event-stream unless the caller set one.
func (c *Core[F]) Stream(w http.ResponseWriter, r *http.Request, frames [][]byte, interval time.Duration, abortAfter int) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for i, fr := range frames {
		if abortAfter > 0 && i == abortAfter {
			panic(http.ErrAbortHandler) // net/http closes the connection quietly
		}
		if i > 0 && !c.Pause(r, interval) {
			c.canceled.Add(1)
			return
		}
		_, err := w.Write(fr)
		if flusher != nil {
			flusher.Flush()
		}
		if err != nil || r.Context().Err() != nil {
			c.canceled.Add(1)
			return
		}
	}
}

// WriteJSON answers status with a JSON body.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
