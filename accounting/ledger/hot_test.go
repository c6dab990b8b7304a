package ledger

import (
	"context"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"
)

// framesOf returns frames of the given total lengths, as Append makes them.
func framesOf(sizes ...int) []byte {
	var b []byte
	for _, n := range sizes {
		b = appendFrame(b, make([]byte, n-frameHeader))
	}
	return b
}

func TestHotQueueTakesOnlyAtPosition(t *testing.T) {
	a, b := &segment{seq: 1}, &segment{seq: 2}
	var q hotQueue
	recs := []Record{record("r0", 0), record("r1", 1), record("r2", 2)}
	q.push(a, 100, recs, framesOf(10, 20, 30)) // frames at 100, 110, 130; end 160
	q.push(b, 0, recs[:1], framesOf(10))

	if _, _, ok := q.take(a, 90, 1000); ok {
		t.Fatal("took an entry ahead of the read position")
	}
	if _, _, ok := q.take(a, 100, 105); ok {
		t.Fatal("took a frame that ends past the written limit")
	}
	// Position 110: the frame at 100 was read from disk; it is skipped.
	r, n, ok := q.take(a, 110, 1000)
	if !ok || r.RequestID != "r1" || n != 20 {
		t.Fatalf("take(110) = %s %d %v", r.RequestID, n, ok)
	}
	// Next segment while a's last entry is unread: a's entries are dropped.
	r, n, ok = q.take(b, 0, 10)
	if !ok || r.RequestID != "r0" || n != 10 {
		t.Fatalf("take(b, 0) = %s %d %v", r.RequestID, n, ok)
	}
	if _, _, ok := q.take(b, 10, 1000); ok {
		t.Fatal("took from an empty queue")
	}
}

func TestHotQueueBounded(t *testing.T) {
	seg := &segment{seq: 1}
	var q hotQueue
	recs := make([]Record, hotMax+10)
	sizes := make([]int, len(recs))
	for i := range recs {
		recs[i].RequestID, sizes[i] = strconv.Itoa(i), frameHeader+1
	}
	q.push(seg, 0, recs, framesOf(sizes...))
	if n := len(q.entries) - q.head; n != hotMax {
		t.Fatalf("%d entries queued, cap %d", n, hotMax)
	}
	// The dropped tail is simply not there: the flusher reads it from disk.
	if _, _, ok := q.take(seg, hotMax*(frameHeader+1), 1<<30); ok {
		t.Fatal("took a dropped entry")
	}
}

// recordingStore keeps what it is given.
type recordingStore struct {
	mu   sync.Mutex
	recs []Record
}

func (s *recordingStore) Migrate(context.Context) error { return nil }
func (s *recordingStore) Write(_ context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	return nil
}
func (s *recordingStore) Prune(context.Context, Cutoffs) (int64, error) { return 0, nil }
func (s *recordingStore) Close() error                                  { return nil }

func (s *recordingStore) all() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.recs...)
}

// TestHotPathEqualsSpill: what the store receives from the in-memory
// handoff is exactly what it would have decoded from the spill, and the
// handoff is what serves the steady state.
func TestHotPathEqualsSpill(t *testing.T) {
	store := &recordingStore{}
	l, err := New(store, fastOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	appendN(t, l, "hot", n, 6)
	waitFor(t, "records in the store", 10*time.Second, func() bool { return len(store.all()) == n })
	closeLedger(t, l)
	l.hot.mu.Lock()
	left := len(l.hot.entries) - l.hot.head
	l.hot.mu.Unlock()
	if left != 0 {
		t.Errorf("%d hot entries never taken", left)
	}
	if hits := l.stats.fromMemory.Load(); hits < n/2 {
		t.Errorf("only %d of %d records handed over in memory", hits, n)
	}
	for _, got := range store.all() {
		fromDisk, err := decodeRecord(appendRecord(nil, &got))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, fromDisk) {
			t.Fatalf("handed over %+v\nspill gives %+v", got, fromDisk)
		}
	}
}

// TestHotQueueMemoryStaysBounded: under steady load the flusher takes
// entries while the writer keeps pushing, so the queue is never empty at a
// push. Its array must not grow with the records that passed through it
// (a gateway at 2,000 req/s for an hour pushes 7.2 million), only with
// the entries waiting.
func TestHotQueueMemoryStaysBounded(t *testing.T) {
	seg := &segment{seq: 1}
	var q hotQueue
	frame := framesOf(frameHeader + 1)
	recs := []Record{{RequestID: "x"}}
	var off int64
	pushOne := func() {
		q.push(seg, off, recs, frame)
		off += int64(len(frame))
	}
	var read int64
	for range 4 { // four waiting, always
		pushOne()
	}
	for i := range 200_000 {
		pushOne()
		if _, n, ok := q.take(seg, read, off); !ok {
			t.Fatalf("push %d: entry at %d not taken", i, read)
		} else {
			read += n
		}
	}
	if waiting := len(q.entries) - q.head; waiting != 4 {
		t.Fatalf("%d entries waiting, want 4", waiting)
	}
	if c := cap(q.entries); c > 4*hotMax {
		t.Fatalf("the queue's array holds %d entries after 200,000 passed with 4 waiting", c)
	}
}
