package ledger

import "syscall"

// yieldThread offers the CPU to any other runnable thread, the kernel's
// sched_yield: it returns at once when nothing else is waiting. It does not
// block, so it needs no hand-off of the goroutine's P.
func yieldThread() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
