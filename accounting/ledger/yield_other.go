//go:build !linux

package ledger

// yieldThread is a no-op where sched_yield is not used: the flusher's rows
// then run back to back.
func yieldThread() {}
