package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// exchangeOnce serves one raw exchange: it records the request and answers
// with answer, then keeps the connection until the test ends.
func exchangeOnce(t *testing.T, answer string) (*rawServer, <-chan *rawRequest) {
	got := make(chan *rawRequest, 1)
	s := newRawServer(t, func(s *rawServer, c net.Conn) {
		r, err := readRawRequest(bufio.NewReader(c))
		if err != nil {
			t.Errorf("upstream: reading request: %v", err)
			return
		}
		got <- r
		if _, err := io.WriteString(c, answer); err != nil {
			t.Errorf("upstream: writing answer: %v", err)
		}
		<-s.quit
	})
	return s, got
}

// canonicalFields turns header lines into sorted "Canonical-Key: value"
// strings, so that sets compare regardless of order.
func canonicalFields(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ":")
		out = append(out, textproto.CanonicalMIMEHeaderKey(k)+": "+strings.TrimSpace(v))
	}
	slices.Sort(out)
	return out
}

func TestDoNonStreamRequestAndAnswer(t *testing.T) {
	body := `{"error":{"message":"slow down"}}`
	answer := "HTTP/1.1 429 Too Many Requests\r\n" +
		"Content-Type: application/json\r\n" +
		"Retry-After: 7\r\n" +
		"X-Request-Id: req-1\r\n" +
		"Set-Cookie: session=secret\r\n" +
		"X-Internal-Trace: abc\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	s, got := exchangeOnce(t, answer)

	reqBody := `{"model":"gpt-4o","messages":[]}`
	out := &llm.Outbound{
		Method: "POST",
		// Path and query go out as written: no path normalizing, escapes kept.
		URL: s.url("/v1/deployments/a%2Fb//chat?api-version=2024-02-01&q=a%20b"),
		Header: []llm.Header{
			{Key: "Content-Type", Value: "application/json"},
			{Key: "Authorization", Value: "Bearer sk-test"},
			{Key: "x-custom", Value: "v1"},
			// A repeated key reaches the upstream as two fields.
			{Key: "Anthropic-Beta", Value: "a"},
			{Key: "Anthropic-Beta", Value: "b"},
		},
		Body: []byte(reqBody),
	}
	c := New(Config{Name: "up"})
	in, err := c.Do(context.Background(), out)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)

	r := <-got
	if want := "POST /v1/deployments/a%2Fb//chat?api-version=2024-02-01&q=a%20b HTTP/1.1"; r.line != want {
		t.Errorf("request line = %q, want %q", r.line, want)
	}
	if string(r.body) != reqBody {
		t.Errorf("request body = %q, want %q", r.body, reqBody)
	}
	// Exactly the adapter's headers plus Host and Content-Length: no
	// User-Agent, no Accept-Encoding, no Connection.
	wantFields := canonicalFields([]string{
		"Host: " + s.ln.Addr().String(),
		"Content-Length: " + strconv.Itoa(len(reqBody)),
		"Content-Type: application/json",
		"Authorization: Bearer sk-test",
		"X-Custom: v1",
		"Anthropic-Beta: a",
		"Anthropic-Beta: b",
	})
	if gotFields := canonicalFields(r.fields); !slices.Equal(gotFields, wantFields) {
		t.Errorf("request headers:\n got %q\nwant %q", gotFields, wantFields)
	}

	if in.Status != 429 {
		t.Errorf("Status = %d, want 429", in.Status)
	}
	// Only the kept headers come back, in keptHeaders order.
	wantHeader := []llm.Header{
		{Key: "Content-Type", Value: "application/json"},
		{Key: "Retry-After", Value: "7"},
		{Key: "X-Request-Id", Value: "req-1"},
	}
	if !slices.Equal(in.Header, wantHeader) {
		t.Errorf("Header = %q, want %q", in.Header, wantHeader)
	}
	if in.Get("Retry-After") != "7" || in.Get("Set-Cookie") != "" {
		t.Errorf("Get: Retry-After=%q Set-Cookie=%q", in.Get("Retry-After"), in.Get("Set-Cookie"))
	}
	b, ok := in.Body.(interface{ Bytes() []byte })
	if !ok {
		t.Fatalf("non-stream body %T has no Bytes method", in.Body)
	}
	if string(b.Bytes()) != body {
		t.Errorf("Bytes() = %q, want %q", b.Bytes(), body)
	}
	all, err := io.ReadAll(in.Body)
	if err != nil || string(all) != body {
		t.Errorf("ReadAll = %q, %v; want %q", all, err, body)
	}
}

func TestDoAddsNoDefaultHeaders(t *testing.T) {
	for _, tc := range []struct {
		name   string
		out    llm.Outbound
		line   string
		fields []string
	}{
		{
			// fasthttp would add "Content-Type: application/octet-stream".
			name:   "body without content type",
			out:    llm.Outbound{Method: "POST", URL: "/v1/x", Body: []byte("abc")},
			line:   "POST /v1/x HTTP/1.1",
			fields: []string{"Content-Length: 3"},
		},
		{
			name:   "get without body",
			out:    llm.Outbound{Method: "GET", URL: "/v1/models", Header: []llm.Header{{Key: "Authorization", Value: "Bearer k"}}},
			line:   "GET /v1/models HTTP/1.1",
			fields: []string{"Authorization: Bearer k"},
		},
		{
			// An adapter that wants a User-Agent sets one; it is sent as is.
			name:   "adapter user agent",
			out:    llm.Outbound{Method: "POST", URL: "/v1/x", Body: []byte("{}"), Header: []llm.Header{{Key: "User-Agent", Value: "aigw-test/1"}}},
			line:   "POST /v1/x HTTP/1.1",
			fields: []string{"Content-Length: 2", "User-Agent: aigw-test/1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, got := exchangeOnce(t, "HTTP/1.1 204 No Content\r\n\r\n")
			out := tc.out
			out.URL = s.url(out.URL)
			in, err := New(Config{}).Do(context.Background(), &out)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			defer closeBody(t, in)
			if in.Status != 204 {
				t.Errorf("Status = %d, want 204", in.Status)
			}
			r := <-got
			if r.line != tc.line {
				t.Errorf("request line = %q, want %q", r.line, tc.line)
			}
			want := canonicalFields(append([]string{"Host: " + s.ln.Addr().String()}, tc.fields...))
			if g := canonicalFields(r.fields); !slices.Equal(g, want) {
				t.Errorf("request headers:\n got %q\nwant %q", g, want)
			}
		})
	}
}

func TestDoNonStreamChunkedAnswer(t *testing.T) {
	u := newHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		flushEvent(w, `{"a":`)
		flushEvent(w, `1}`)
	})
	in, err := New(Config{}).Do(context.Background(), post(u.URL+"/v1/chat/completions"))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)
	if got := string(in.Body.(interface{ Bytes() []byte }).Bytes()); got != `{"a":1}` {
		t.Errorf("Bytes() = %q", got)
	}
	if in.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", in.Get("Content-Type"))
	}
}

func TestBodiesAfterClose(t *testing.T) {
	u := newHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "data: x\n\n")
	})
	c := New(Config{})
	for _, stream := range []bool{false, true} {
		out := post(u.URL)
		out.Stream = stream
		in, err := c.Do(context.Background(), out)
		if err != nil {
			t.Fatalf("stream=%v: Do: %v", stream, err)
		}
		if err := in.Body.Close(); err != nil {
			t.Errorf("stream=%v: Close: %v", stream, err)
		}
		// A second Close is a no-op, a Read after Close an error (not a
		// panic, not pooled memory).
		if err := in.Body.Close(); err != nil {
			t.Errorf("stream=%v: second Close: %v", stream, err)
		}
		if n, err := in.Body.Read(make([]byte, 16)); n != 0 || err == nil {
			t.Errorf("stream=%v: Read after Close = %d, %v; want 0 and an error", stream, n, err)
		}
	}
}

func TestConnectionReuse(t *testing.T) {
	u := newHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if r.URL.Path == "/stream" {
			sseHeaders(w)
			for i := range 3 {
				flushEvent(w, sse(i))
			}
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	c := New(Config{})
	nonStream := func() {
		t.Helper()
		in, err := c.Do(context.Background(), post(u.URL+"/chat"))
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		if b, _ := io.ReadAll(in.Body); string(b) != `{"ok":true}` {
			t.Errorf("body = %q", b)
		}
		closeBody(t, in)
	}
	nonStream()
	nonStream()
	in, err := c.Do(context.Background(), postStream(u.URL+"/stream"))
	if err != nil {
		t.Fatalf("Do stream: %v", err)
	}
	b, err := io.ReadAll(in.Body)
	if err != nil || string(b) != sse(0)+sse(1)+sse(2) {
		t.Errorf("stream body = %q, %v", b, err)
	}
	closeBody(t, in)
	nonStream()
	if n := u.accepted(); n != 1 {
		t.Errorf("upstream accepted %d connections, want 1 (reused)", n)
	}

	// A stream closed before its end must not go back to the pool: its
	// connection still carries the rest of the answer.
	in, err = c.Do(context.Background(), postStream(u.URL+"/stream"))
	if err != nil {
		t.Fatalf("Do stream: %v", err)
	}
	readN(t, in.Body, "data: ")
	closeBody(t, in)
	nonStream()
	if n := u.accepted(); n != 2 {
		t.Errorf("upstream accepted %d connections, want 2 (aborted stream not reused)", n)
	}
}

func TestDialFailure(t *testing.T) {
	c := New(Config{Name: "down", ConnectTimeout: 10 * time.Second})
	start := time.Now()
	_, err := c.Do(context.Background(), post(closedPortURL(t)))
	e := llmErr(t, err, llm.KindUnavailable)
	if !e.Retryable || e.Provider != "down" {
		t.Errorf("Retryable=%v Provider=%q, want true and down", e.Retryable, e.Provider)
	}
	within(t, "refused dial", time.Since(start), 0, 3*time.Second) // not the connect timeout
	if strings.Contains(e.Msg, "127.0.0.1") {
		t.Errorf("client-facing message %q leaks the address", e.Msg)
	}
}

// TestTLSHandshakeTimeout covers the connect timeout where loopback allows
// it: the TCP connect succeeds at once, the TLS handshake never completes,
// and ConnectTimeout (not the first-byte timeout) ends the attempt.
func TestTLSHandshakeTimeout(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn) {
		_, _ = io.Copy(io.Discard, c) // swallow the ClientHello, answer nothing
	})
	c := New(Config{Name: "tls", ConnectTimeout: 200 * time.Millisecond, FirstByteTimeout: 10 * time.Second})
	start := time.Now()
	_, err := c.Do(context.Background(), post("https://"+s.ln.Addr().String()+"/v1/chat/completions"))
	e := llmErr(t, err, llm.KindUnavailable)
	if !e.Retryable {
		t.Error("connect timeout is not retryable")
	}
	within(t, "TLS handshake timeout", time.Since(start), 150*time.Millisecond, 3*time.Second)
}

func TestTLSFailure(t *testing.T) {
	u := newTLSUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	// No RootCAs: the test certificate is not trusted.
	_, err := New(Config{}).Do(context.Background(), post(u.URL))
	e := llmErr(t, err, llm.KindUnavailable)
	if !e.Retryable {
		t.Error("TLS failure is not retryable")
	}
}

func TestTLSExchangeAndReuse(t *testing.T) {
	u := newTLSUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.TLS == nil {
			t.Error("upstream got a request outside TLS")
		}
		_, _ = w.Write(b)
	})
	c := New(Config{TLS: u.clientTLS()})
	for i := range 3 {
		out := post(u.URL + "/echo")
		out.Body = []byte(strconv.Itoa(i))
		in, err := c.Do(context.Background(), out)
		if err != nil {
			t.Fatalf("Do %d: %v", i, err)
		}
		if b, _ := io.ReadAll(in.Body); string(b) != strconv.Itoa(i) {
			t.Errorf("answer %d = %q", i, b)
		}
		closeBody(t, in)
	}
	if n := u.accepted(); n != 1 {
		t.Errorf("upstream accepted %d connections, want 1", n)
	}
}

func TestContextDoneBeforeDo(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		kind llm.Kind
	}{
		{"canceled", canceled, llm.KindCanceled},
		{"deadline passed", expired, llm.KindTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			_, err = New(Config{}).Do(tc.ctx, post("http://"+ln.Addr().String()+"/"))
			e := llmErr(t, err, tc.kind)
			if e.Retryable {
				t.Error("a done context is retryable: another target would fail the same way")
			}
			// Nothing dialled: a completed TCP handshake would be waiting
			// in the accept queue.
			_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
			if c, err := ln.Accept(); err == nil {
				c.Close()
				t.Error("Do dialled the upstream with a done context")
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	const limit = 1024
	u := newHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		} else if n > 0 {
			w.(http.Flusher).Flush() // headers out first: chunked encoding
		}
		_, _ = w.Write([]byte(strings.Repeat("x", n)))
	})
	c := New(Config{Name: "big", MaxResponseBytes: limit})
	for _, tc := range []struct {
		query  string
		stream bool
		ok     bool
	}{
		{query: "n=1024", ok: true},
		{query: "n=1025"},
		{query: "n=4096&chunked=1"},
		// The cap is for non-stream answers only.
		{query: "n=4096&chunked=1", stream: true, ok: true},
		{query: "n=4096", stream: true, ok: true},
	} {
		out := post(u.URL + "/?" + tc.query)
		out.Stream = tc.stream
		in, err := c.Do(context.Background(), out)
		if !tc.ok {
			e := llmErr(t, err, llm.KindUpstream)
			if e.Retryable {
				t.Errorf("%s: too large is retryable", tc.query)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s stream=%v: Do: %v", tc.query, tc.stream, err)
			continue
		}
		b, err := io.ReadAll(in.Body)
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.Split(tc.query, "&")[0], "n="))
		if err != nil || len(b) != n {
			t.Errorf("%s stream=%v: read %d bytes, %v; want %d", tc.query, tc.stream, len(b), err, n)
		}
		closeBody(t, in)
	}
}

func TestStreamRequestGetsErrorAnswer(t *testing.T) {
	u := newHTTPUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"busy"}`)
	})
	in, err := New(Config{}).Do(context.Background(), postStream(u.URL))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)
	if in.Status != 503 || in.Get("Retry-After") != "3" {
		t.Errorf("Status=%d Retry-After=%q", in.Status, in.Get("Retry-After"))
	}
	if b, err := io.ReadAll(in.Body); err != nil || string(b) != `{"error":"busy"}` {
		t.Errorf("body = %q, %v", b, err)
	}
}

func TestPoolFull(t *testing.T) {
	canceled := make(chan struct{})
	u := newLateUpstream(t, false, quietAfterFirst(canceled))
	c := New(Config{Name: "small", MaxConns: 1})
	in, err := c.Do(context.Background(), postStream(u.URL))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer closeBody(t, in)
	// The only connection carries the open stream.
	_, err = c.Do(context.Background(), post(u.URL))
	if e := llmErr(t, err, llm.KindUnavailable); !e.Retryable {
		t.Error("a full pool is not retryable")
	}
}

func TestBadURL(t *testing.T) {
	_, err := New(Config{}).Do(context.Background(), post("ftp://example.invalid/x"))
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *llm.Error", err)
	}
}

// TestHeaderValueOwnsItsBytes: headerValue's result equals the header and
// stays so when fasthttp reuses the buffer it came from, for the interned
// content types and for any other value.
func TestHeaderValueOwnsItsBytes(t *testing.T) {
	for _, v := range []string{"application/json", "text/event-stream; charset=utf-8", "application/json; charset=UTF-8", "req_123", ""} {
		buf := []byte(v)
		got := headerValue(buf)
		for i := range buf {
			buf[i] = 'x'
		}
		if got != v {
			t.Errorf("headerValue(%q) = %q after its buffer was reused", v, got)
		}
	}
}
