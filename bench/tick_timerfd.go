//go:build linux && (amd64 || arm64)

package main

import (
	"encoding/binary"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// timerfdTicker paces the open-loop load generator with a periodic timerfd
// read through the Go netpoller. time.Sleep and time.Ticker are not good
// enough: when the process is otherwise idle the runtime parks in epoll_wait
// with a millisecond timeout, so a 500 µs period lasts about 1 ms and the
// requests of a 2,000 req/s schedule leave in bursts. A timerfd has no timer
// slack and wakes epoll as soon as it expires, and no OS thread is blocked
// or locked for it, which keeps thread hand-offs (slow on a busy core) out
// of the schedule.
type timerfdTicker struct {
	f     *os.File
	t0    time.Time
	ticks int64
	buf   [8]byte
}

func newTicker(period time.Duration) ticker {
	const (
		clockMonotonic = 1
		tfdCloexec     = 0x80000
		tfdNonblock    = 0x800
	)
	fd, _, errno := syscall.RawSyscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, tfdCloexec|tfdNonblock, 0)
	if errno != 0 {
		return newSleepTicker(period)
	}
	spec := struct{ interval, value syscall.Timespec }{
		interval: syscall.NsecToTimespec(int64(period)),
		value:    syscall.NsecToTimespec(int64(period)),
	}
	t0 := time.Now()
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		syscall.Close(int(fd))
		return newSleepTicker(period)
	}
	return &timerfdTicker{f: os.NewFile(fd, "timerfd"), t0: t0}
}

func (t *timerfdTicker) start() time.Time { return t.t0 }

func (t *timerfdTicker) wait() int64 {
	if _, err := t.f.Read(t.buf[:]); err != nil {
		return -1
	}
	t.ticks += int64(binary.NativeEndian.Uint64(t.buf[:]))
	return t.ticks
}

func (t *timerfdTicker) stop() { t.f.Close() }
