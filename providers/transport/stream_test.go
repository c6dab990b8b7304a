package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

func TestStreamIsIncremental(t *testing.T) {
	read1 := make(chan struct{})
	u := newHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		sseHeaders(w)
		flushEvent(w, sse(1))
		// Event 2 is written only once the client has read event 1: a
		// transport that buffers the answer would never deliver event 1.
		select {
		case <-read1:
		case <-time.After(5 * time.Second):
			t.Error("the client did not get event 1 before event 2 was written")
		}
		flushEvent(w, sse(2))
	})
	in, err := New(Config{}).Do(context.Background(), postStream(u.URL))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)
	if in.Status != 200 || in.Get("Content-Type") != "text/event-stream" {
		t.Errorf("Status=%d Content-Type=%q", in.Status, in.Get("Content-Type"))
	}
	if _, ok := in.Body.(interface{ Bytes() []byte }); ok {
		t.Error("a stream body has a Bytes method: it would buffer the stream")
	}
	readN(t, in.Body, sse(1))
	close(read1)
	rest, err := io.ReadAll(in.Body)
	if err != nil || string(rest) != sse(2) {
		t.Errorf("rest = %q, %v; want %q", rest, err, sse(2))
	}
}

func TestStreamCloseEarlyAbortsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	u := newLateUpstream(t, false, quietAfterFirst(canceled))
	in, err := New(Config{}).Do(context.Background(), postStream(u.URL))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	readN(t, in.Body, sse(1))
	start := time.Now()
	closeBody(t, in)
	within(t, "Close", time.Since(start), 0, 2*time.Second)
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("upstream did not see the connection close after Close")
	}
}

// TestStreamCloseWhileBlocked closes a stream whose Read is blocked in
// another goroutine (the proxy may do this when its client goes away): the
// Read returns instead of waiting for the idle timeout.
func TestStreamCloseWhileBlocked(t *testing.T) {
	canceled := make(chan struct{})
	u := newLateUpstream(t, false, quietAfterFirst(canceled))
	in, err := New(Config{IdleTimeout: 30 * time.Second}).Do(context.Background(), postStream(u.URL))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	readN(t, in.Body, sse(1))
	done := make(chan error, 1)
	go func() {
		_, err := in.Body.Read(make([]byte, 64))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the Read block (either order is fine)
	closeBody(t, in)
	select {
	case err := <-done:
		if err == nil {
			t.Error("the blocked Read returned no error")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the blocked Read did not return after Close")
	}
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Error("upstream did not see the connection close")
	}
}

const sseAnswerHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

// chunk encodes s as one HTTP/1.1 chunk.
func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

// brokenStream is a raw upstream that writes head, waits for the test's
// signal on step, then breaks the connection with breakConn. With a non-nil
// tlsCfg it speaks TLS and breakConn gets the *tls.Conn.
func brokenStream(t *testing.T, tlsCfg *tls.Config, head string, step <-chan struct{}, breakConn func(net.Conn)) *rawServer {
	return newRawServer(t, func(s *rawServer, c net.Conn) {
		if tlsCfg != nil {
			c = tls.Server(c, tlsCfg)
		}
		if _, err := readRawRequest(bufio.NewReader(c)); err != nil {
			return
		}
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		select {
		case <-step:
			breakConn(c)
		case <-s.quit:
		}
	})
}

func TestStreamBrokenUpstream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		head  string // written before the break
		first string // what the client reads before the break
		brk   func(net.Conn)
	}{
		{name: "reset after headers", head: sseAnswerHead, brk: reset},
		{name: "reset mid-stream", head: sseAnswerHead + chunk(sse(1)), first: sse(1), brk: reset},
		// A clean close is no clean end: the terminating chunk is missing.
		{name: "close between chunks", head: sseAnswerHead + chunk(sse(1)), first: sse(1), brk: func(c net.Conn) { c.Close() }},
		{name: "close inside a chunk", head: sseAnswerHead + chunk(sse(1)) + "100\r\ndata: {", first: sse(1) + "data: {", brk: func(c net.Conn) { c.Close() }},
		{name: "close inside a sized body", head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100\r\n\r\n" + sse(1), first: sse(1), brk: func(c net.Conn) { c.Close() }},
	} {
		for _, useTLS := range []bool{false, true} {
			name := tc.name
			if useTLS {
				name += " over TLS"
			}
			t.Run(name, func(t *testing.T) {
				testBrokenStream(t, useTLS, tc.head, tc.first, tc.brk)
			})
		}
	}
}

func testBrokenStream(t *testing.T, useTLS bool, head, first string, brk func(net.Conn)) {
	step := make(chan struct{})
	// The idle timeout is long: a hang would surface as a KindTimeout after
	// 10s and fail the kind check below.
	cfg := Config{Name: "broken", IdleTimeout: 10 * time.Second}
	var srvTLS *tls.Config
	if useTLS {
		srvTLS, cfg.TLS = tlsPair(t)
	}
	s := brokenStream(t, srvTLS, head, step, brk)
	url := s.url("/")
	if useTLS {
		url = "https" + strings.TrimPrefix(url, "http")
	}
	in, err := New(cfg).Do(context.Background(), postStream(url))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)
	if first != "" {
		readN(t, in.Body, first)
	}
	close(step)
	start := time.Now()
	_, err = readUntilError(in.Body)
	if err == io.EOF {
		t.Fatal("a broken stream ended with io.EOF, as if complete")
	}
	e := llmErr(t, err, llm.KindUpstream)
	if e.Provider != "broken" {
		t.Errorf("Provider = %q", e.Provider)
	}
	within(t, "broken stream detection", time.Since(start), 0, 3*time.Second)
}

func TestNonStreamBrokenUpstream(t *testing.T) {
	for _, tc := range []struct {
		name string
		head string
		brk  func(net.Conn)
	}{
		{name: "reset in body", head: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":", brk: reset},
		{name: "close in body", head: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":", brk: func(c net.Conn) { c.Close() }},
		{name: "close between chunks", head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("{}"), brk: func(c net.Conn) { c.Close() }},
		{name: "close before answer", head: "", brk: func(c net.Conn) { c.Close() }},
		{name: "reset before answer", head: "", brk: reset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := make(chan struct{})
			close(step) // break right after writing head
			s := brokenStream(t, nil, tc.head, step, tc.brk)
			_, err := New(Config{IdleTimeout: 10 * time.Second}).Do(context.Background(), post(s.url("/")))
			e := llmErr(t, err, llm.KindUpstream)
			if !e.Retryable {
				t.Error("a broken answer before the body was delivered is not retryable")
			}
		})
	}
}

// TestTruncatedStreamNotPooled: after a stream cut between chunks, the dead
// connection must not serve the next request.
func TestTruncatedStreamNotPooled(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn) {
		br := bufio.NewReader(c)
		first := s.accepted.Load() == 1
		for {
			if _, err := readRawRequest(br); err != nil {
				return
			}
			if first {
				_, _ = io.WriteString(c, sseAnswerHead+chunk(sse(1)))
				return // close: no last chunk
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	c := New(Config{})
	in, err := c.Do(context.Background(), postStream(s.url("/")))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	_, err = readUntilError(in.Body)
	llmErr(t, err, llm.KindUpstream)
	closeBody(t, in)
	in, err = c.Do(context.Background(), post(s.url("/")))
	if err != nil {
		t.Fatalf("request after a truncated stream: %v", err)
	}
	if b, _ := io.ReadAll(in.Body); string(b) != "ok" {
		t.Errorf("body = %q", b)
	}
	closeBody(t, in)
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("upstream accepted %d connections, want 2", n)
	}
}

func TestConcurrentStreams(t *testing.T) {
	const streams, events = 100, 5
	var started atomic.Int32
	allStarted := make(chan struct{})
	u := newHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		id := string(b)
		sseHeaders(w)
		flushEvent(w, "data: "+id+"-0\n\n")
		// Every stream stays open until all of them are: the client really
		// runs 100 streams at once.
		if started.Add(1) == streams {
			close(allStarted)
		}
		select {
		case <-allStarted:
		case <-time.After(10 * time.Second):
			t.Error("not all streams were open at once")
			return
		}
		for i := 1; i < events; i++ {
			flushEvent(w, "data: "+id+"-"+strconv.Itoa(i)+"\n\n")
		}
	})
	c := New(Config{IdleTimeout: 15 * time.Second})
	var wg sync.WaitGroup
	for g := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := strconv.Itoa(g)
			out := postStream(u.URL)
			out.Body = []byte(id)
			in, err := c.Do(context.Background(), out)
			if err != nil {
				t.Errorf("stream %d: Do: %v", g, err)
				return
			}
			defer in.Body.Close()
			b, err := io.ReadAll(in.Body)
			var want strings.Builder
			for i := range events {
				fmt.Fprintf(&want, "data: %s-%d\n\n", id, i)
			}
			if err != nil || string(b) != want.String() {
				t.Errorf("stream %d: got %q, %v; want %q", g, b, err, want.String())
			}
		}()
	}
	wg.Wait()
	if n := u.accepted(); n != streams {
		t.Errorf("upstream accepted %d connections, want %d", n, streams)
	}
}
