package main

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"
)

// bufferedLog batches log lines: one write syscall per interval (or per
// 64 KiB) instead of one per request line. Lines written in the last
// interval before a crash may be lost; the usage ledger, not the log, is
// the durable record. Safe for concurrent use.
type bufferedLog struct {
	mu sync.Mutex
	w  *bufio.Writer
}

// newBufferedLog starts flushing every interval until ctx is done; call
// Flush after that for the last lines.
func newBufferedLog(ctx context.Context, out io.Writer, interval time.Duration) *bufferedLog {
	b := &bufferedLog{w: bufio.NewWriterSize(out, 64<<10)}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = b.Flush()
			}
		}
	}()
	return b
}

// Write buffers one log record.
func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out what is buffered.
func (b *bufferedLog) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}
