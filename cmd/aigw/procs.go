package main

import (
	"runtime"
	"runtime/debug"

	"github.com/aigw/aigw/configs"
)

// minProcs is the fewest Ps (GOMAXPROCS) the gateway runs with.
//
// The usage ledger makes blocking syscalls on the request path's behalf
// (the spill's write and fsync, SQLite's file I/O). With one P, which is
// what Go picks on a single core or under a one-CPU container limit, a
// goroutine blocked in fsync holds the only P until the scheduler's monitor
// takes it back (up to milliseconds), and no request is served meanwhile:
// on one core the gateway then idles at about 60% while requests wait. A
// second P lets the scheduler run requests on another thread during the
// syscall. Under a one-CPU container quota the two threads can briefly run
// at once and the kernel throttles the excess; an operator who prefers
// that trade the other way sets GOMAXPROCS=1, which is respected.
const minProcs = 2

// ensureProcs raises GOMAXPROCS to minProcs unless the operator set
// GOMAXPROCS. It returns the value in effect and whether it changed it.
func ensureProcs(lookupEnv configs.Env) (int, bool) {
	if _, set := lookupEnv("GOMAXPROCS"); set {
		return runtime.GOMAXPROCS(0), false
	}
	if n := runtime.GOMAXPROCS(0); n >= minProcs {
		return n, false
	}
	runtime.GOMAXPROCS(minProcs)
	return minProcs, true
}

// defaultGCPercent is the GOGC the gateway runs with unless the operator
// set GOGC (GOMEMLIMIT, if set, still caps the heap).
//
// On a core shared by the two Ps, a garbage collection cycle's mark worker
// takes the core from the request threads for the kernel's time slice,
// and at 2,000 requests a second that was most of what was left of the
// p99 once the ledger's flush yielded (docs/benchmarks.md, 2026-12-07
// "last": about 1.15 ms added at GOGC=100, 0.6-0.8 ms at 300). At
// 300 a cycle comes a third as often; the price is a heap that may grow
// to four times the live data instead of twice (peak RSS 42 against 37 MiB
// at 2,000 requests a second, 134 against 76 MiB in the closed loop, both
// measured while the ledger's hot queue still leaked, which inflated them).
const defaultGCPercent = 300

// ensureGCPercent sets GOGC to defaultGCPercent unless the operator set
// GOGC, and reports whether it did.
func ensureGCPercent(lookupEnv configs.Env) bool {
	if _, set := lookupEnv("GOGC"); set {
		return false
	}
	debug.SetGCPercent(defaultGCPercent)
	return true
}
