package transport

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aigw/aigw/providers/llm"
)

// TestMain fails the package when a test leaves a goroutine behind: a body
// reader, a fake upstream or a dial that never ends.
//
// Two fasthttp goroutines are ignored because they outlive every Client by
// design and end by themselves (the Client doc says so):
//   - (*HostClient).connsCleaner closes idle pooled connections; it sleeps
//     up to MaxIdleConnDuration (90s) between rounds and exits once the host
//     has no connection left.
//   - (*Client).mCleaner drops unused host clients; it sleeps 10s between
//     rounds and exits once the Client has no host client left.
//
// Neither holds a connection or a response, so ignoring them hides no leak
// of ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
	)
}

// ---- errors and timing ----

// llmErr asserts err is an *llm.Error of kind k and returns it.
func llmErr(t *testing.T, err error, k llm.Kind) *llm.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", k)
	}
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *llm.Error", err, err)
	}
	if e.Kind != k {
		t.Fatalf("error kind = %s, want %s (%v)", e.Kind, k, err)
	}
	return e
}

// within asserts min <= d <= max. Deadlines never fire early, so min is a
// little under the configured deadline; max is generous for a loaded machine.
func within(t *testing.T, what string, d, min, max time.Duration) {
	t.Helper()
	if d < min || d > max {
		t.Errorf("%s took %v, want between %v and %v", what, d, min, max)
	}
}

// readN reads exactly len(want) bytes from r and checks them.
func readN(t *testing.T, r io.Reader, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("reading %q: %v", want, err)
	}
	if string(buf) != want {
		t.Fatalf("read %q, want %q", buf, want)
	}
}

// closeBody closes an Inbound's body and fails on an error.
func closeBody(t *testing.T, in *llm.Inbound) {
	t.Helper()
	if err := in.Body.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func sse(i int) string { return fmt.Sprintf("data: {\"n\":%d}\n\n", i) }

// ---- fake upstreams ----

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// httpUpstream is an httptest server with an accept counter. quit is closed
// when the test ends (before the server closes), for handlers that wait.
type httpUpstream struct {
	*httptest.Server
	ln   *countingListener
	quit chan struct{}
}

func newHTTPUpstream(t *testing.T, h http.HandlerFunc) *httpUpstream {
	return startHTTPUpstream(t, h, false)
}

func newTLSUpstream(t *testing.T, h http.HandlerFunc) *httpUpstream {
	return startHTTPUpstream(t, h, true)
}

func startHTTPUpstream(t *testing.T, h http.HandlerFunc, useTLS bool) *httpUpstream {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS tests fail handshakes on purpose
	u := &httpUpstream{Server: srv, ln: &countingListener{Listener: srv.Listener}, quit: make(chan struct{})}
	srv.Listener = u.ln
	if useTLS {
		// Asking for a (optional) client certificate makes Go's server send
		// its TLS 1.3 session ticket after the client's second flight, so
		// it reaches the client after the request, as OpenSSL-based
		// upstreams do; without it the ticket rides the server's first
		// flight and the first-byte tests over TLS would prove nothing.
		srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(u.quit) })
	return u
}

func (u *httpUpstream) accepted() int { return int(u.ln.n.Load()) }

// clientTLS trusts the upstream's test certificate. It enables session
// resumption, as a production config may: the client then offers PSK modes
// and the server sends a TLS 1.3 session ticket (see startHTTPUpstream).
func (u *httpUpstream) clientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(u.Certificate())
	return &tls.Config{RootCAs: pool, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
}

// rawServer is a TCP upstream whose handler speaks (or breaks) HTTP by hand.
// Handlers should return when quit is closed; Cleanup closes every
// connection and waits for them.
type rawServer struct {
	ln       net.Listener
	quit     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	accepted atomic.Int32
}

func newRawServer(t *testing.T, handle func(s *rawServer, c net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, quit: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(s, c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(s.quit)
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url(path string) string { return "http://" + s.ln.Addr().String() + path }

// rawRequest is a request as it was on the wire.
type rawRequest struct {
	line   string
	fields []string // header lines, as sent
	body   []byte
}

// readRawRequest reads one request; the body must have a Content-Length (the
// transport never sends chunked requests).
func readRawRequest(br *bufio.Reader) (*rawRequest, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, err
	}
	r := &rawRequest{line: line}
	n := 0
	for {
		l, err := tp.ReadLine()
		if err != nil {
			return nil, err
		}
		if l == "" {
			break
		}
		r.fields = append(r.fields, l)
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Content-Length") {
			if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return nil, err
			}
		}
	}
	r.body = make([]byte, n)
	_, err = io.ReadFull(br, r.body)
	return r, err
}

// reset closes c (or the TCP connection under a *tls.Conn) with an RST
// instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// tlsPair returns a server TLS config with a test certificate and a client
// config trusting it, for raw TLS upstreams.
func tlsPair(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	server = srv.TLS.Clone()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	srv.Close()
	server.NextProtos = nil
	return server, &tls.Config{RootCAs: pool}
}

// closedPortURL returns a URL nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/v1/chat/completions"
}

// post is a minimal non-stream request.
func post(url string) *llm.Outbound {
	return &llm.Outbound{Method: "POST", URL: url, Body: []byte(`{"model":"m"}`),
		Header: []llm.Header{{Key: "Content-Type", Value: "application/json"}}}
}

// postStream is a minimal stream request.
func postStream(url string) *llm.Outbound {
	o := post(url)
	o.Stream = true
	return o
}

// sseHeaders writes an SSE answer's status line and headers.
func sseHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
}

// flushEvent writes one event and flushes it to the wire.
func flushEvent(w http.ResponseWriter, ev string) {
	_, _ = io.WriteString(w, ev)
	w.(http.Flusher).Flush()
}
