package transport

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// watchConn enforces the first-byte and idle deadlines fasthttp's client does
// not have: every Read gets a deadline of now+firstByte while the connection
// awaits the first byte of an answer (after a Write), and now+idle once bytes
// flow. A deadline fasthttp itself sets (the request's total deadline) caps
// both.
//
// For https it wraps the *tls.Conn (Client.dial does the handshake), never
// the TCP connection under it: below TLS, handshake traffic and TLS 1.3
// session tickets, which arrive after the request was written, would count
// as the answer's first byte and switch the wait for the real one to the
// idle timeout.
//
// fasthttp uses a client connection from one goroutine at a time (the
// request's, then the body reader's after a happens-before hand-off), so the
// fields need no lock. Close may be called from any goroutine.
type watchConn struct {
	net.Conn
	firstByte time.Duration
	idle      time.Duration
	limit     time.Time // deadline set through SetReadDeadline; zero = none
	awaiting  bool
	// eof records that the peer closed the connection during the current
	// exchange. fasthttp reports a chunked body cut at a chunk boundary as
	// a plain io.EOF; the stream body checks eof to tell that from the end.
	// Atomic because a stream's Close may race with a Read (see streamBody).
	eof atomic.Bool
	// local is what LocalAddr returns, made on its first call: fasthttp
	// asks once per response, and a fresh connAddr each time would be an
	// allocation per request.
	local connAddr
}

// connAddr is the local address a watchConn reports. fasthttp keeps it in
// the Response (ParseNetConn), which tells Do the connection an answer came
// on.
type connAddr struct {
	net.Addr
	conn *watchConn
}

// LocalAddr returns the connection's local address, tagged with c.
func (c *watchConn) LocalAddr() net.Addr {
	if c.local.conn == nil {
		c.local = connAddr{c.Conn.LocalAddr(), c}
	}
	return &c.local
}

func (c *watchConn) Write(p []byte) (int, error) {
	c.awaiting = true
	c.eof.Store(false)
	return c.Conn.Write(p)
}

func (c *watchConn) Read(p []byte) (int, error) {
	d := c.idle
	if c.awaiting {
		d = c.firstByte
	}
	var dl time.Time
	if d > 0 {
		dl = time.Now().Add(d)
	}
	if !c.limit.IsZero() && (dl.IsZero() || c.limit.Before(dl)) {
		dl = c.limit
	}
	if err := c.Conn.SetReadDeadline(dl); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.awaiting = false
	}
	if err == io.EOF {
		c.eof.Store(true)
	}
	return n, err
}

// SetReadDeadline records fasthttp's deadline; Read applies it.
func (c *watchConn) SetReadDeadline(t time.Time) error {
	c.limit = t
	return nil
}

// SetDeadline records the read part and applies the write part.
func (c *watchConn) SetDeadline(t time.Time) error {
	c.limit = t
	return c.Conn.SetWriteDeadline(t)
}

// tlsWatchConn is a watchConn over an established TLS connection. Its
// Handshake method tells fasthttp the connection is TLS already, so that
// fasthttp does not wrap it a second time.
type tlsWatchConn struct{ watchConn }

// Handshake is a no-op: Client.dial completed the handshake.
func (c *tlsWatchConn) Handshake() error { return nil }
