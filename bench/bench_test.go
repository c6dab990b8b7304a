package main

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func serveTest(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := listen127()
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().(*net.TCPAddr).String()
}

func TestJSONTrue(t *testing.T) {
	for body, want := range map[string]bool{
		`{"stream":true}`:                                  true,
		`{"stream" : true}`:                                true,
		`{"stream":false}`:                                 false,
		`{"model":"x"}`:                                    false,
		`{"content":"\"stream\"","stream":true}`:           true,
		`{"stream_options":{"include_usage":true}}`:        false,
		`{"stream":false,"stream_options":{"x":"stream"}}`: false,
	} {
		if got := jsonTrue([]byte(body), keyStream); got != want {
			t.Errorf("jsonTrue(%s) = %v, want %v", body, got, want)
		}
	}
	if !jsonTrue([]byte(`{"stream_options":{"include_usage": true}}`), keyIncludeUsage) {
		t.Error("include_usage not seen")
	}
}

func TestUpstreamStream(t *testing.T) {
	up := serveTest(t, newFakeUpstream().handle)
	for _, usage := range []bool{false, true} {
		body := chatBodyTrue
		if usage {
			body = `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`
		}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.Header.SetMethod("POST")
		req.SetRequestURI("http://" + up + chatPath)
		req.SetBodyString(body)
		if err := fasthttp.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		b := resp.Body()
		if got := bytes.Count(b, []byte("data: ")); got != streamChunks+2+map[bool]int{true: 1}[usage] {
			t.Errorf("usage=%v: %d events", usage, got)
		}
		if bytes.Contains(b, []byte(`"usage"`)) != usage {
			t.Errorf("usage=%v: usage chunk presence wrong", usage)
		}
		if string(resp.Header.ContentType()) != "text/event-stream" {
			t.Errorf("content type %q", resp.Header.ContentType())
		}
	}
}

// Every mode, direct and through the floor, without errors.
func TestLoadModes(t *testing.T) {
	up := serveTest(t, newFakeUpstream().handle)
	floor := serveTest(t, newFloorProxy(up).handle)
	for _, addr := range []string{up, floor} {
		if err := smokeCheck(addr, "k"); err != nil {
			t.Fatalf("smoke %s: %v", addr, err)
		}
		for _, mode := range allModes {
			spec := loadSpec{Target: addr, Mode: mode, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
				Conns: 4, Rate: 200, Key: "k"}
			r := runLoad(spec)
			if r.failed() || r.OK == 0 {
				t.Errorf("%s %s: ok %d errors %d unsent %d %v", addr, mode, r.OK, r.Errors, r.Unsent, r.ErrSamples)
			}
			switch mode {
			case modeRate:
				// 200/s for 300 ms: about 60 in the window.
				if r.OK < 50 || r.OK > 70 || r.Lat.N != r.OK {
					t.Errorf("%s rate: %d answers, %d latencies", addr, r.OK, r.Lat.N)
				}
			case modeStream, modeStreamClosed:
				if r.TTFB.N != r.OK || r.TTFB.P50 <= 0 || r.TTFB.P50 > r.Total.P50 {
					t.Errorf("%s %s: ttfb %+v total %+v", addr, mode, r.TTFB, r.Total)
				}
			}
		}
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	p := percentiles(d)
	if p.P50 != 50 || p.P99 != 99 || p.Max != 100 || p.N != 100 {
		t.Errorf("%+v", p)
	}
}

func TestTicker(t *testing.T) {
	tk := newTicker(time.Millisecond)
	defer tk.stop()
	var due int64
	for due < 20 {
		if due = tk.wait(); due < 0 {
			t.Fatal("ticker failed")
		}
	}
	if el := time.Since(tk.start()); el < 19*time.Millisecond {
		t.Errorf("20 ticks of 1ms in %s", el)
	}
}
