package ledger

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// With SyncInterval, Append returns while fsync is blocked, the syncer
// fsyncs within the interval, an idle ledger does not fsync, and the
// records reach the store.
func TestSyncIntervalAppendDoesNotWaitForFsync(t *testing.T) {
	var syncs atomic.Int64
	block := make(chan struct{})
	var blocked atomic.Bool
	blocked.Store(true)
	store := &nopStore{}
	l, err := New(store, Options{
		SpillDir: t.TempDir(), SyncInterval: 5 * time.Millisecond, FlushInterval: 5 * time.Millisecond,
		fsync: func(f *os.File) error {
			if blocked.Load() {
				<-block
			}
			syncs.Add(1)
			return f.Sync()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.Append(ctx, record("sync-1", 1)); err != nil {
		t.Fatalf("Append waited for the blocked fsync: %v", err)
	}
	blocked.Store(false)
	close(block)
	deadline := time.Now().Add(2 * time.Second)
	for syncs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if syncs.Load() == 0 {
		t.Fatal("the syncer never fsynced the spill")
	}
	for l.Stats().Flushed < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond)
	idle := syncs.Load()
	time.Sleep(50 * time.Millisecond)
	if n := syncs.Load(); n != idle {
		t.Errorf("idle ledger fsynced %d more times", n-idle)
	}
	closeLedger(t, l)
	if l.Stats().Flushed != 1 {
		t.Errorf("flushed %d records, want 1", l.Stats().Flushed)
	}
}
