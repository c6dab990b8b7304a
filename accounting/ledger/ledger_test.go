package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/providers/llm"
)

// appendN appends n records with ids prefix-0..n-1 from g goroutines.
func appendN(t testing.TB, l *Ledger, prefix string, n, g int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += g {
				if err := l.Append(context.Background(), record(fmt.Sprintf("%s-%d", prefix, i), i)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestAppendReachesStore(t *testing.T) {
	store, _ := newSQLite(t)
	q := sqliteQ{store}
	dir := t.TempDir()
	l, err := New(store, fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "req", 500, 8)
	// The flusher counts a batch as flushed just after the store committed
	// it: wait for both.
	waitFor(t, "500 records in the store", 10*time.Second, func() bool {
		return q.Int(t, `SELECT count(*) FROM usage_records`) == 500 && l.Stats().Flushed == 500
	})
	st := l.Stats()
	if st.Appended != 500 || st.Flushed != 500 || !st.StoreHealthy {
		t.Errorf("stats %+v", st)
	}
	var wantCost int64
	for i := 0; i < 500; i++ {
		r := record("", i)
		wantCost += int64(r.CostUSDMicros)
	}
	if got := q.Int(t, `SELECT sum(cost_usd_micros) FROM usage_records`); got != wantCost {
		t.Errorf("cost sum %d, want %d", got, wantCost)
	}
	if got := q.Int(t, `SELECT sum(requests) FROM usage_rollup_day`); got != 500 {
		t.Errorf("day rollup requests %d, want 500", got)
	}
	// A clean Close leaves an empty spill directory.
	closeLedger(t, l)
	if files := spillFiles(t, dir); len(files) != 0 {
		t.Errorf("spill not empty after a clean Close: %v", files)
	}
	if err := l.Append(context.Background(), record("late", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestStoreOutage: while the store fails, records accumulate in the spill;
// when it recovers they all arrive, none twice.
func TestStoreOutage(t *testing.T) {
	inner, _ := newSQLite(t)
	q := sqliteQ{inner}
	store := &flakyStore{Store: inner}
	store.down.Store(true)
	dir := t.TempDir()
	var logs bytes.Buffer
	var logMu sync.Mutex
	opts := fastOptions(dir)
	opts.SegmentBytes = 16 << 10 // several segments during the outage
	opts.FlushBatch = 64
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	l, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "out", 400, 4)
	waitFor(t, "failed store writes", 5*time.Second, func() bool { return store.failures.Load() >= 3 })
	st := l.Stats()
	if st.StoreHealthy || st.StoreErrors == 0 || st.LastStoreError == "" {
		t.Errorf("outage not visible in stats: %+v", st)
	}
	if st.SpillBytes == 0 || st.SpillSegments < 2 {
		t.Errorf("spill did not grow: %+v", st)
	}
	if n := q.Int(t, `SELECT count(*) FROM usage_records`); n != 0 {
		t.Fatalf("%d records reached a store that is down", n)
	}

	store.down.Store(false)
	waitFor(t, "the spill to drain", 10*time.Second, func() bool {
		n := q.Int(t, `SELECT count(*) FROM usage_records`)
		if n != 400 {
			t.Logf("stored %d, stats %+v, files %v", n, l.Stats(), spillFiles(t, dir))
		}
		return n == 400
	})
	waitFor(t, "healthy stats", 5*time.Second, func() bool { return l.Stats().StoreHealthy })
	if got := q.Int(t, `SELECT sum(requests) FROM usage_rollup_minute`); got != 400 {
		t.Errorf("minute rollups count %d, want 400", got)
	}
	store.mu.Lock()
	for _, n := range store.batchSizes {
		if n > 64 {
			t.Errorf("batch of %d records, FlushBatch is 64", n)
		}
	}
	store.mu.Unlock()
	waitFor(t, "consumed segments removed", 5*time.Second, func() bool { return len(spillFiles(t, dir)) <= 1 })
	closeLedger(t, l)
	if !store.closeCalled.Load() {
		t.Error("Close did not close the store")
	}
	logMu.Lock()
	if !strings.Contains(logs.String(), "store write failed") {
		t.Errorf("outage not logged: %s", logs.String())
	}
	logMu.Unlock()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestCommitThenFail: a store that commits and then reports failure (a
// lost acknowledgement) gets the batch again; nothing is counted twice.
func TestCommitThenFail(t *testing.T) {
	inner, _ := newSQLite(t)
	q := sqliteQ{inner}
	store := &flakyStore{Store: inner}
	store.failAfter.Store(true)
	l, err := New(store, fastOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "ack", 100, 4)
	waitFor(t, "repeated deliveries", 5*time.Second, func() bool { return store.failures.Load() >= 3 })
	store.failAfter.Store(false)
	waitFor(t, "delivery acknowledged", 5*time.Second, func() bool { return l.Stats().Flushed >= 100 })
	if n := q.Int(t, `SELECT count(*) FROM usage_records`); n != 100 {
		t.Errorf("%d records, want 100", n)
	}
	for _, tab := range rollupTables {
		if n := q.Int(t, `SELECT sum(requests) FROM `+tab.name); n != 100 {
			t.Errorf("%s counts %d requests, want 100", tab.name, n)
		}
	}
	closeLedger(t, l)
}

// TestReplaySameSpillTwice: the same spill replayed into the same store
// twice stores each record once and counts it once.
func TestReplaySameSpillTwice(t *testing.T) {
	inner, dbPath := newSQLite(t)
	store := &flakyStore{Store: inner}
	store.down.Store(true)
	dir := t.TempDir()
	spill := filepath.Join(dir, "spill")
	l, err := New(store, fastOptions(spill))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "rep", 200, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := l.Close(ctx); err == nil {
		t.Error("Close with the store down reported no records left behind")
	}
	cancel()
	if len(spillFiles(t, spill)) == 0 {
		t.Fatal("Close with the store down left no spill")
	}
	copyDir(t, spill, filepath.Join(dir, "copy"))

	replay := func(spillDir string) {
		s, err := OpenSQLite(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		l, err := New(s, fastOptions(spillDir))
		if err != nil {
			t.Fatal(err)
		}
		closeLedger(t, l)
	}
	replay(spill)
	replay(filepath.Join(dir, "copy"))

	s, err := OpenSQLite(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := sqliteQ{s}
	if n := q.Int(t, `SELECT count(*) FROM usage_records`); n != 200 {
		t.Errorf("%d records after two replays, want 200", n)
	}
	for _, tab := range rollupTables {
		if n := q.Int(t, `SELECT sum(requests) FROM `+tab.name); n != 200 {
			t.Errorf("%s counts %d requests after two replays, want 200", tab.name, n)
		}
	}
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range spillFiles(t, from) {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// writeSpill writes segment files by hand, as a crashed process would have
// left them.
func writeSpill(t testing.TB, dir string, seq uint64, recs []Record, tail []byte) string {
	t.Helper()
	var buf []byte
	for i := range recs {
		r := recs[i]
		r.normalize(time.Now())
		payload, err := jsonMarshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		buf = appendFrame(buf, payload)
	}
	buf = append(buf, tail...)
	path := filepath.Join(dir, segmentName(seq))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTornTailIsReplayed: a segment cut in the middle of a frame (a crash
// during a write) gives up its whole frames and nothing else.
func TestTornTailIsReplayed(t *testing.T) {
	store, _ := newSQLite(t)
	q := sqliteQ{store}
	dir := t.TempDir()
	whole := []Record{record("t1", 1), record("t2", 2), record("t3", 3)}
	torn := appendFrame(nil, []byte(`{"request_id":"t4"}`))
	writeSpill(t, dir, 7, whole, torn[:len(torn)-5])
	writeSpill(t, dir, 8, []Record{record("t5", 5)}, make([]byte, 64)) // zero-filled tail
	l, err := New(store, fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replay", 5*time.Second, func() bool { return q.Int(t, `SELECT count(*) FROM usage_records`) == 4 })
	if n := q.Int(t, `SELECT count(*) FROM usage_records WHERE request_id = 't4'`); n != 0 {
		t.Error("a torn frame was stored")
	}
	if st := l.Stats(); st.Corrupt != 0 {
		t.Errorf("torn tails counted as corruption: %+v", st)
	}
	// New segments continue after the recovered ones.
	if err := l.Append(context.Background(), record("t6", 6)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(9))); err != nil {
		t.Errorf("new segment not numbered after the recovered ones: %v", err)
	}
	closeLedger(t, l)
}

// TestCorruptFrameIsKept: a frame whose checksum fails stops the reading
// of its segment; the valid records before it are stored, the segment is
// kept as *.corrupt, and later segments are replayed.
func TestCorruptFrameIsKept(t *testing.T) {
	store, _ := newSQLite(t)
	q := sqliteQ{store}
	dir := t.TempDir()
	path := writeSpill(t, dir, 1, []Record{record("c1", 1), record("c2", 2), record("c3", 3)}, nil)
	b, _ := os.ReadFile(path)
	first := frameHeader + int(uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24)
	b[first+frameHeader+3] ^= 0xff // inside the second record's payload
	os.WriteFile(path, b, 0o600)
	writeSpill(t, dir, 2, []Record{record("c4", 4)}, nil)
	l, err := New(store, fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replay", 5*time.Second, func() bool { return q.Int(t, `SELECT count(*) FROM usage_records`) == 2 })
	if n := q.Int(t, `SELECT count(*) FROM usage_records WHERE request_id IN ('c1', 'c4')`); n != 2 {
		t.Errorf("valid records missing: %d of 2", n)
	}
	if st := l.Stats(); st.Corrupt != 1 {
		t.Errorf("corruption not counted: %+v", st)
	}
	closeLedger(t, l)
	if _, err := os.Stat(path + corruptExt); err != nil {
		t.Errorf("corrupt segment not kept: %v", err)
	}
}

func TestSegmentsRotateAndAreRemoved(t *testing.T) {
	store, _ := newSQLite(t)
	q := sqliteQ{store}
	dir := t.TempDir()
	opts := fastOptions(dir)
	opts.SegmentBytes = 1 << 10
	sample := record("rot-00", 0)
	sample.normalize(time.Now())
	frame := len(appendRecordFrame(nil, &sample))
	l, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ { // one at a time: each Append is its own write
		if err := l.Append(context.Background(), record(fmt.Sprint("rot-", i), i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "flush", 5*time.Second, func() bool { return q.Int(t, `SELECT count(*) FROM usage_records`) == 60 })
	waitFor(t, "old segments removed", 5*time.Second, func() bool { return len(spillFiles(t, dir)) == 1 })
	l.segMu.Lock()
	last := l.lastSeq
	l.segMu.Unlock()
	if want := uint64(60 * int64(frame) / opts.SegmentBytes / 2); last < want || want < 5 {
		t.Errorf("%d segments for 60 records of %d bytes with 1 KiB segments, want at least %d (and 5)", last, frame, want)
	}
	closeLedger(t, l)
}

func TestSegmentMaxAge(t *testing.T) {
	store, _ := newSQLite(t)
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := fastOptions(dir)
	opts.SegmentMaxAge = time.Minute
	opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l.Append(ctx, record("age-1", 1))
	l.Append(ctx, record("age-2", 2))
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	l.Append(ctx, record("age-3", 3))
	l.segMu.Lock()
	last := l.lastSeq
	l.segMu.Unlock()
	if last != 2 {
		t.Errorf("lastSeq = %d, want 2 (one rotation by age)", last)
	}
	closeLedger(t, l)
}

func TestAppendNormalizes(t *testing.T) {
	store, _ := newSQLite(t)
	q := sqliteQ{store}
	l, err := New(store, fastOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Append(ctx, Record{}); err == nil {
		t.Error("record without request id accepted")
	}
	if err := l.Append(ctx); err != nil {
		t.Errorf("empty Append: %v", err)
	}
	r := Record{
		RequestID:    "norm",
		Org:          "bad\xffutf8\x00nul",
		ErrorMessage: strings.Repeat("é", 5000),
		PromptTokens: -4,
	}
	in := r
	if err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r != in {
		t.Error("Append modified the caller's record")
	}
	waitFor(t, "flush", 5*time.Second, func() bool { return q.Int(t, `SELECT count(*) FROM usage_records`) == 1 })
	if got := q.Str(t, `SELECT org FROM usage_records`); got != "bad\uFFFDutf8nul" {
		t.Errorf("org stored as %q", got)
	}
	if got := q.Int(t, `SELECT length(CAST(error_message AS BLOB)) FROM usage_records`); got > maxErrorMessage || got%2 != 0 {
		t.Errorf("error_message stored with %d bytes (cut mid-rune or too long)", got)
	}
	if got := q.Int(t, `SELECT prompt_tokens FROM usage_records`); got != 0 {
		t.Errorf("negative count stored as %d", got)
	}
	if got := q.Str(t, `SELECT outcome || '/' || display_currency FROM usage_records`); got != "ok/USD" {
		t.Errorf("defaults: %q", got)
	}
	if got := q.Str(t, `SELECT time FROM usage_records`); !strings.HasPrefix(got, "20") {
		t.Errorf("zero time not defaulted: %q", got)
	}
	closeLedger(t, l)
}

func TestAppendHonoursContext(t *testing.T) {
	store, _ := newSQLite(t)
	l, err := New(store, fastOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer closeLedger(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either the queue took it before the context was seen (nil) or the
	// context won; it must not block.
	if err := l.Append(ctx, record("ctx", 1)); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context = %v", err)
	}
}

func TestSpillDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	s1, _ := newSQLite(t)
	l, err := New(s1, fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := newSQLite(t)
	if l2, err := New(s2, fastOptions(dir)); err == nil {
		l2.Close(context.Background())
		t.Fatal("two ledgers shared a spill directory")
	}
	s2.Close()
	closeLedger(t, l)
	s3, _ := newSQLite(t)
	l3, err := New(s3, fastOptions(dir))
	if err != nil {
		t.Fatalf("spill directory still locked after Close: %v", err)
	}
	closeLedger(t, l3)
	if _, err := New(s3, Options{}); err == nil {
		t.Error("New without SpillDir succeeded")
	}
}

// TestRetention: the pruner deletes old rows, and a replay skips records
// older than retention so it cannot revive them.
func TestRetention(t *testing.T) {
	store, _ := newSQLite(t)
	q := sqliteQ{store}
	dir := t.TempDir()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	old := record("old", 1)
	old.Time = now.Add(-100 * 24 * time.Hour)
	writeSpill(t, dir, 1, []Record{old, record("new", 2)}, nil)
	opts := fastOptions(dir)
	opts.Now = func() time.Time { return now }
	opts.Retention = DefaultRetention()
	opts.PruneInterval = time.Hour
	l, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replay", 5*time.Second, func() bool { return l.Stats().Expired == 1 && l.Stats().Flushed == 1 })
	if n := q.Int(t, `SELECT count(*) FROM usage_records WHERE request_id = 'old'`); n != 0 {
		t.Error("a record older than retention was replayed")
	}
	// Store an old record directly, then prune.
	stale := record("stale", 3)
	stale.Time = now.Add(-91 * 24 * time.Hour)
	stale.normalize(now)
	if err := store.Write(context.Background(), []Record{stale}); err != nil {
		t.Fatal(err)
	}
	n, err := l.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || q.Int(t, `SELECT count(*) FROM usage_records`) != 1 {
		t.Errorf("prune deleted %d rows; records left: %d", n, q.Int(t, `SELECT count(*) FROM usage_records`))
	}
	if n := q.Int(t, `SELECT count(*) FROM usage_rollup_minute`); n != 1 {
		t.Errorf("%d minute rollups, want 1 (the stale one older than 2 days goes)", n)
	}
	if q.Int(t, `SELECT count(*) FROM usage_rollup_day`) != 2 {
		t.Error("day rollups were pruned; they are kept forever by default")
	}
	closeLedger(t, l)
}

// TestOpen covers the bootstrap path: DSN -> store -> migrate -> ledger.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(context.Background(), Config{DSN: "sqlite:" + filepath.Join(dir, "data", "aigw.db"), Options: fastOptions(filepath.Join(dir, "spill"))})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), record("open-1", 1)); err != nil {
		t.Fatal(err)
	}
	closeLedger(t, l)
	s, err := OpenSQLite(filepath.Join(dir, "data", "aigw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := (sqliteQ{s}).Int(t, `SELECT count(*) FROM usage_records`); n != 1 {
		t.Errorf("%d records after Close, want 1", n)
	}
	if _, err := Open(context.Background(), Config{DSN: "nope", Options: fastOptions(dir)}); err == nil {
		t.Error("Open with a bad DSN succeeded")
	}
}

// TestLedgerOnPostgres runs the outage scenario against PostgreSQL.
func TestLedgerOnPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	store := &flakyStore{Store: newPostgres(t, dsn)}
	store.down.Store(true)
	l, err := New(store, fastOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "pg", 300, 6)
	waitFor(t, "failures", 5*time.Second, func() bool { return store.failures.Load() > 0 })
	store.down.Store(false)
	store.failAfter.Store(true)
	waitFor(t, "a committed-then-failed delivery", 5*time.Second, func() bool { return store.failures.Load() > 3 })
	store.failAfter.Store(false)
	waitFor(t, "drain", 10*time.Second, func() bool { return l.Stats().Flushed >= 300 })
	closeLedger(t, l)
	q := pgQ{dsn}
	if n := q.Int(t, `SELECT count(*) FROM usage_records`); n != 300 {
		t.Errorf("%d records, want 300", n)
	}
	for _, tab := range rollupTables {
		if n := q.Int(t, `SELECT sum(requests) FROM `+tab.name); n != 300 {
			t.Errorf("%s counts %d, want 300", tab.name, n)
		}
	}
}

func TestRecordSetters(t *testing.T) {
	var r Record
	r.SetUsage(llm.Usage{PromptTokens: 100, CompletionTokens: 20, CachedTokens: 30, CacheWriteTokens: 5, ReasoningTokens: 7, Estimated: true})
	if r.TotalTokens != 120 || !r.UsageEstimated || r.CacheWriteTokens != 5 || r.ReasoningTokens != 7 {
		t.Errorf("SetUsage: %+v", r)
	}
	gbp, _ := accounting.ParseRate("GBP", "0.79")
	r.SetCost(1_000_000, true, gbp)
	if r.CostDisplayMicros != 790_000 || r.DisplayCurrency != "GBP" || !r.Priced {
		t.Errorf("SetCost: %+v", r)
	}
	r.SetCost(5, false, accounting.Rate{})
	if r.DisplayCurrency != "USD" || r.CostDisplayMicros != 5 || r.Priced {
		t.Errorf("SetCost without a rate: %+v", r)
	}
	r.SetError(&llm.Error{Kind: llm.KindCanceled, Msg: "client went away"})
	if r.Outcome != OutcomeCanceled || r.ErrorType != "canceled" || r.ErrorMessage != "client went away" {
		t.Errorf("SetError: %+v", r)
	}
	r.SetError(&llm.Error{Kind: llm.KindUpstream, Msg: "bad gateway"})
	if r.Outcome != OutcomeError || r.ErrorType != "upstream" {
		t.Errorf("SetError: %+v", r)
	}
	r.SetError(nil)
	if r.Outcome != OutcomeOK || r.ErrorType != "" {
		t.Errorf("SetError(nil): %+v", r)
	}
}

// slowStore takes d per Write, as a store whose commit waits for a disk.
type slowStore struct {
	Store
	d time.Duration
}

func (s slowStore) Write(ctx context.Context, recs []Record) error {
	time.Sleep(s.d)
	return s.Store.Write(ctx, recs)
}

// TestFlushDoesNotChaseArrivals: records that arrive while a batch is being
// written wait for the next tick instead of starting a transaction each, so
// a steady trickle costs about one Write per FlushInterval, not one per
// write's duration.
func TestFlushDoesNotChaseArrivals(t *testing.T) {
	db, path := newSQLite(t)
	f := &flakyStore{Store: slowStore{Store: db, d: 10 * time.Millisecond}}
	opts := fastOptions(t.TempDir())
	opts.FlushInterval = 100 * time.Millisecond
	l, err := New(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	start := time.Now()
	for i := range n {
		if err := l.Append(context.Background(), record(fmt.Sprintf("trickle-%d", i), i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	closeLedger(t, l)
	db, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := (sqliteQ{db}).Int(t, `SELECT count(*) FROM usage_records`); got != n {
		t.Fatalf("stored %d records, want %d", got, n)
	}
	// One Write per tick, one on Close, and slack for a slow machine.
	limit := int64(elapsed/opts.FlushInterval) + 4
	if w := f.writes.Load(); w > limit {
		t.Fatalf("%d Writes for %d records over %v, want at most %d (one per %v tick): the flusher chased arrivals; batch sizes %v",
			w, n, elapsed.Round(time.Millisecond), limit, opts.FlushInterval, f.batchSizes)
	}
}

// TestAppendReusesItsRequests: Append takes its frame buffer, record copies
// and answer channel from a pool, so that a steady stream of appends does
// not allocate them each time (it was 4 allocations a call); the records
// still arrive whole.
func TestAppendReusesItsRequests(t *testing.T) {
	store, path := newSQLite(t)
	opts := fastOptions(t.TempDir())
	opts.FlushInterval, opts.FlushBatch = time.Hour, 1<<20 // the flusher stays idle while counting
	l, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	allocs := testing.AllocsPerRun(200, func() {
		n++
		if err := l.Append(ctx, record(fmt.Sprintf("pool-%d", n), n)); err != nil {
			t.Fatal(err)
		}
	})
	// record itself (the request id, the key id, the rate) allocates; the
	// rest is the hot queue's amortized growth.
	base := testing.AllocsPerRun(200, func() { _ = record(fmt.Sprintf("pool-%d", n), n) })
	t.Logf("allocations per Append: %.1f (building the record: %.1f)", allocs, base)
	if allocs-base > 1 {
		t.Errorf("Append allocates %.1f times a call beyond building its record, want at most 1", allocs-base)
	}
	closeLedger(t, l) // flushes, then closes store
	again, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := (sqliteQ{again}).Int(t, `SELECT count(DISTINCT request_id) FROM usage_records`); got != int64(n) {
		t.Errorf("%d records stored, want %d", got, n)
	}
}
