package ledger

import (
	"encoding/binary"
	"sync"
)

// hotMax bounds the records the writer hands to the flusher in memory
// (about 1 KiB each); beyond it the flusher reads them from the spill.
const hotMax = 8192

// hotEntry is one record the writer has fsynced, with where its frame is.
type hotEntry struct {
	seg  *segment
	off  int64 // the frame's offset in seg
	size int64 // the frame's length
	rec  Record
}

// hotQueue hands freshly fsynced records from the writer to the flusher so
// that, in the steady state, the flusher does not read back and decode
// what was just written. It is only a cache of the spill, keyed by frame
// position: the flusher takes an entry only when it sits exactly at the
// position it is about to read, and reads the spill otherwise (after a
// restart, after an overflow, after a store outage that outlasted the
// queue). So it can never change what reaches the store, only how fast.
// Safe for concurrent use by one writer and one reader.
type hotQueue struct {
	mu      sync.Mutex
	entries []hotEntry // in spill order
	head    int
}

// push queues recs, whose frames (appendFrame's, one per record, in order)
// are frames and start at off in seg. When the queue is full the rest are
// dropped (the flusher reads them from disk).
func (q *hotQueue) push(seg *segment, off int64, recs []Record, frames []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	// Entries before head were taken. Once they are half the array, the
	// waiting ones move to the front: under steady load the queue is never
	// empty at a push, and without this the array grew with every record
	// that passed through it (about 400 bytes each, for as long as the load
	// lasted). So the array is at most about twice the waiting entries.
	if q.head > 0 && q.head >= len(q.entries)-q.head {
		n := copy(q.entries, q.entries[q.head:])
		clear(q.entries[n:])
		q.entries, q.head = q.entries[:n], 0
	}
	for i := range recs {
		if len(q.entries)-q.head >= hotMax {
			return
		}
		size := int64(frameHeader) + int64(binary.LittleEndian.Uint32(frames))
		frames = frames[size:]
		q.entries = append(q.entries, hotEntry{seg: seg, off: off, size: size, rec: recs[i]})
		off += size
	}
}

// take returns the record whose frame starts at off in seg and ends by
// limit, and the frame's length, if the queue holds it. Entries before
// that position (already read from disk, or of earlier segments) are
// discarded on the way.
func (q *hotQueue) take(seg *segment, off, limit int64) (Record, int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head < len(q.entries) {
		e := &q.entries[q.head]
		if e.seg.seq < seg.seq || (e.seg == seg && e.off < off) {
			*e = hotEntry{}
			q.head++
			continue
		}
		if e.seg != seg || e.off != off || e.off+e.size > limit {
			return Record{}, 0, false
		}
		rec, size := e.rec, e.size
		*e = hotEntry{}
		q.head++
		return rec, size, true
	}
	return Record{}, 0, false
}
