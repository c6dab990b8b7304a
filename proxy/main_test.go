package proxy_test

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when any test leaves a goroutine behind: the
// gateway's stream pumps, heartbeat timers, upstream clients and listeners
// must all be gone once every gateway started by a test was shut down.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		var err error
		// Connections closed by the servers' shutdown unwind asynchronously.
		for i := 0; i < 50; i++ {
			if err = goleak.Find(
				// fasthttp's process-wide Date header ticker, started
				// once by the first server and never stopped.
				goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
				// fasthttp client sweepers (per host and per client): they
				// exit on their own once every pooled connection has idled
				// out (MaxIdleConnDuration), not when a client is dropped.
				goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
				goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
			); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
