package main

import (
	"runtime"

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
