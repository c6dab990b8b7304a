package ledger

import (
	"os"
	"time"
)

// syncLoop is the spill syncer of a ledger with SyncInterval > 0: every
// interval it fsyncs the active segment if the writer has written to it
// since the last fsync. It runs until Close stops it after the writer has
// finished (closeActive fsyncs the last segment itself). With SyncInterval
// zero the writer fsyncs every batch and this returns at once.
func (l *Ledger) syncLoop() {
	defer close(l.syncerDone)
	if l.opts.SyncInterval <= 0 {
		return
	}
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	var synced *segment
	var syncedTo int64
	for {
		select {
		case <-l.stopSyncer:
			return
		case <-t.C:
		}
		l.syncMu.Lock()
		f, seg := l.sfile, l.sseg
		if f == nil || (seg == synced && seg.written.Load() == syncedTo) {
			l.syncMu.Unlock()
			continue
		}
		to := seg.written.Load()
		err := l.opts.fsync(f)
		l.syncMu.Unlock()
		if err != nil {
			// The page cache cannot be trusted after a failed fsync: the
			// writer abandons the segment at its next batch and starts a
			// new one. What was written to it stays readable for the
			// flusher until the process ends; a power cut before then
			// loses it.
			l.log.Error("ledger: spill fsync failed; the segment is abandoned", "path", seg.path, "error", err)
			l.stats.syncErrors.Add(1)
			l.syncFailed.Store(true)
			continue
		}
		synced, syncedTo = seg, to
	}
}

// setSyncTarget hands the syncer the active segment's file (nil: none).
// The writer calls it when it opens, closes or abandons a segment; it
// waits for an fsync in progress, so the file is never closed under one.
func (l *Ledger) setSyncTarget(f *os.File, s *segment) {
	l.syncMu.Lock()
	l.sfile, l.sseg = f, s
	l.syncMu.Unlock()
}
