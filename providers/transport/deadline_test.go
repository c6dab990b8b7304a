package transport

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// silentUpstream reads requests and never answers.
func silentUpstream(t *testing.T) *rawServer {
	return newRawServer(t, func(s *rawServer, c net.Conn) {
		if _, err := readRawRequest(bufio.NewReader(c)); err != nil {
			return
		}
		<-s.quit
	})
}

func TestFirstByteTimeout(t *testing.T) {
	s := silentUpstream(t)
	c := New(Config{Name: "slow", FirstByteTimeout: 200 * time.Millisecond, IdleTimeout: 10 * time.Second})
	start := time.Now()
	_, err := c.Do(context.Background(), post(s.url("/v1/chat/completions")))
	e := llmErr(t, err, llm.KindTimeout)
	if !e.Retryable || e.Provider != "slow" {
		t.Errorf("Retryable=%v Provider=%q", e.Retryable, e.Provider)
	}
	within(t, "first-byte timeout", time.Since(start), 150*time.Millisecond, 3*time.Second)
}

// slowAnswer answers after delay; the idle timeout is far shorter than the
// delay, so only a first-byte deadline lets it through.
func slowAnswer(delay time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		time.Sleep(delay)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}
}

func TestSlowFirstByteWithinDeadline(t *testing.T) {
	u := newHTTPUpstream(t, slowAnswer(400*time.Millisecond))
	c := New(Config{FirstByteTimeout: 3 * time.Second, IdleTimeout: 100 * time.Millisecond})
	// The second request runs on the pooled connection: its wait for the
	// first byte is a first-byte wait again, not an idle one.
	for i := range 2 {
		in, err := c.Do(context.Background(), post(u.URL))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if b, _ := io.ReadAll(in.Body); string(b) != `{"ok":true}` {
			t.Errorf("request %d: body %q", i, b)
		}
		closeBody(t, in)
	}
	if n := u.accepted(); n != 1 {
		t.Errorf("upstream accepted %d connections, want 1", n)
	}
}

// TestTLSSlowFirstByteWithinDeadline guards the first-byte phase over TLS:
// TLS 1.3 session tickets reach the client after it wrote the request, and
// must not count as the answer's first byte.
func TestTLSSlowFirstByteWithinDeadline(t *testing.T) {
	u := newTLSUpstream(t, slowAnswer(400*time.Millisecond))
	c := New(Config{TLS: u.clientTLS(), FirstByteTimeout: 3 * time.Second, IdleTimeout: 100 * time.Millisecond})
	in, err := c.Do(context.Background(), post(u.URL))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)
	if b, _ := io.ReadAll(in.Body); string(b) != `{"ok":true}` {
		t.Errorf("body %q", b)
	}
}

func TestTLSFirstByteTimeout(t *testing.T) {
	u := newTLSUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	c := New(Config{TLS: u.clientTLS(), FirstByteTimeout: 200 * time.Millisecond, IdleTimeout: 10 * time.Second})
	start := time.Now()
	_, err := c.Do(context.Background(), post(u.URL))
	llmErr(t, err, llm.KindTimeout)
	within(t, "first-byte timeout over TLS", time.Since(start), 150*time.Millisecond, 3*time.Second)
}

// quietAfterFirst sends headers and one event, then says nothing until the
// client goes away; canceled is closed when the handler sees that.
func quietAfterFirst(canceled chan<- struct{}) func(u *httpUpstream) http.HandlerFunc {
	return func(u *httpUpstream) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			sseHeaders(w)
			flushEvent(w, sse(1))
			select {
			case <-r.Context().Done():
				close(canceled)
			case <-u.quit:
			}
		}
	}
}

// newLateUpstream builds the handler from the upstream, so that it can wait
// on u.quit.
func newLateUpstream(t *testing.T, useTLS bool, mk func(u *httpUpstream) http.HandlerFunc) *httpUpstream {
	var h atomic.Pointer[http.HandlerFunc]
	u := startHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) { (*h.Load())(w, r) }, useTLS)
	f := mk(u)
	h.Store(&f)
	return u
}

func TestStreamIdleTimeout(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			canceled := make(chan struct{})
			u := newLateUpstream(t, useTLS, quietAfterFirst(canceled))
			cfg := Config{Name: "quiet", FirstByteTimeout: 10 * time.Second, IdleTimeout: 200 * time.Millisecond}
			if useTLS {
				cfg.TLS = u.clientTLS()
			}
			in, err := New(cfg).Do(context.Background(), postStream(u.URL))
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			readN(t, in.Body, sse(1))
			start := time.Now()
			n, err := in.Body.Read(make([]byte, 64))
			if n != 0 {
				t.Errorf("Read returned %d bytes from a silent upstream", n)
			}
			e := llmErr(t, err, llm.KindTimeout)
			if e.Provider != "quiet" || !e.Retryable || !strings.Contains(e.Msg, "silent") {
				t.Errorf("Provider=%q Retryable=%v Msg=%q", e.Provider, e.Retryable, e.Msg)
			}
			within(t, "idle timeout", time.Since(start), 150*time.Millisecond, 3*time.Second)
			closeBody(t, in)
			// The timed-out connection is closed, so the upstream stops too.
			select {
			case <-canceled:
			case <-time.After(3 * time.Second):
				t.Error("upstream did not see the connection close after the idle timeout")
			}
		})
	}
}

// TestStreamSteadyEventsDoNotIdleOut: a stream lasting three idle timeouts,
// with events far more often than that, completes: the idle deadline is per
// read, not for the whole body. (The idle timeout is 500ms rather than
// 200ms so that a scheduling stall on a loaded machine cannot fail it.)
func TestStreamSteadyEventsDoNotIdleOut(t *testing.T) {
	const events, every, idle = 30, 50 * time.Millisecond, 500 * time.Millisecond
	u := newHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		sseHeaders(w)
		for i := range events {
			flushEvent(w, sse(i))
			time.Sleep(every)
		}
	})
	c := New(Config{FirstByteTimeout: 10 * time.Second, IdleTimeout: idle})
	start := time.Now()
	in, err := c.Do(context.Background(), postStream(u.URL))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)
	for i := range events {
		readN(t, in.Body, sse(i))
	}
	if n, err := in.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after the last event: Read = %d, %v; want 0, EOF", n, err)
	}
	// The stream lasted far longer than the idle timeout.
	within(t, "steady stream", time.Since(start), 2*idle, 30*time.Second)
}

// endless sends an event every interval until the client goes away.
func endless(every time.Duration) func(u *httpUpstream) http.HandlerFunc {
	return func(u *httpUpstream) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			sseHeaders(w)
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ; i++ {
				flushEvent(w, sse(i))
				select {
				case <-tick.C:
				case <-r.Context().Done():
					return
				case <-u.quit:
					return
				}
			}
		}
	}
}

// readUntilError reads a stream until an error and returns it with the
// number of bytes read.
func readUntilError(r io.Reader) (int, error) {
	buf := make([]byte, 256)
	total := 0
	for {
		n, err := r.Read(buf)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// The stream-capping deadlines below are 1s rather than 300ms: the stream's
// headers must arrive before the deadline, which a loaded machine running
// -race may not manage in 300ms.

func TestTotalTimeoutCapsStream(t *testing.T) {
	u := newLateUpstream(t, false, endless(20*time.Millisecond))
	c := New(Config{Name: "long", FirstByteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second, TotalTimeout: time.Second})
	start := time.Now()
	in, err := c.Do(context.Background(), postStream(u.URL))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)
	n, err := readUntilError(in.Body)
	if e := llmErr(t, err, llm.KindTimeout); !strings.Contains(e.Msg, "total") {
		t.Errorf("Msg = %q, want it to name the total timeout", e.Msg)
	}
	within(t, "total timeout", time.Since(start), 950*time.Millisecond, 5*time.Second)
	if n < 2*len(sse(0)) {
		t.Errorf("read %d bytes before the total timeout, want several events", n)
	}
}

func TestContextDeadlineBoundsExchange(t *testing.T) {
	cfg := Config{FirstByteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second, TotalTimeout: time.Minute}

	t.Run("waiting for headers", func(t *testing.T) {
		s := silentUpstream(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := New(cfg).Do(ctx, post(s.url("/")))
		llmErr(t, err, llm.KindTimeout)
		within(t, "ctx deadline before headers", time.Since(start), 150*time.Millisecond, 3*time.Second)
	})

	t.Run("connecting", func(t *testing.T) {
		// The TLS handshake never completes; the request's deadline, shorter
		// than the connect timeout, ends it as a timeout.
		s := newRawServer(t, func(s *rawServer, c net.Conn) { _, _ = io.Copy(io.Discard, c) })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		cfg := cfg
		cfg.ConnectTimeout = 10 * time.Second
		start := time.Now()
		_, err := New(cfg).Do(ctx, post("https://"+s.ln.Addr().String()+"/"))
		llmErr(t, err, llm.KindTimeout)
		within(t, "ctx deadline while connecting", time.Since(start), 150*time.Millisecond, 3*time.Second)
	})

	t.Run("streaming", func(t *testing.T) {
		u := newLateUpstream(t, false, endless(20*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		in, err := New(cfg).Do(ctx, postStream(u.URL))
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		defer closeBody(t, in)
		_, err = readUntilError(in.Body)
		llmErr(t, err, llm.KindTimeout)
		within(t, "ctx deadline mid-stream", time.Since(start), 950*time.Millisecond, 5*time.Second)
	})
}

// fetch posts to url through c and reads the whole answer; safe to call
// from a goroutine (it only reports through t.Errorf).
func fetch(t *testing.T, c *Client, url string) error {
	in, err := c.Do(context.Background(), post(url))
	if err != nil {
		return err
	}
	_, err = io.ReadAll(in.Body)
	closeBody(t, in)
	return err
}

// TestBurstBeyondMaxConnsWaits: requests that find every connection busy
// wait for one (up to ConnectTimeout) instead of failing at once; past
// that wait they fail as unavailable, naming the cause.
func TestBurstBeyondMaxConnsWaits(t *testing.T) {
	u := newHTTPUpstream(t, slowAnswer(100*time.Millisecond))
	c := New(Config{MaxConns: 2, ConnectTimeout: 2 * time.Second})
	errs := make(chan error, 6)
	for range 6 {
		go func() {
			errs <- fetch(t, c, u.URL)
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Errorf("request in a burst of 6 over 2 connections: %v", err)
		}
	}
	if n := u.accepted(); n > 2 {
		t.Errorf("upstream accepted %d connections, cap 2", n)
	}

	short := New(Config{MaxConns: 1, ConnectTimeout: 50 * time.Millisecond})
	first := make(chan error, 1)
	go func() {
		first <- fetch(t, short, u.URL)
	}()
	time.Sleep(20 * time.Millisecond) // the first request holds the only connection
	_, err := short.Do(context.Background(), post(u.URL))
	e := llmErr(t, err, llm.KindUnavailable)
	if !strings.Contains(e.Msg, "no free connection") {
		t.Errorf("message %q", e.Msg)
	}
	if err := <-first; err != nil {
		t.Errorf("first request: %v", err)
	}
}
