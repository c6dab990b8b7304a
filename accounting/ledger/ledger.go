// Package ledger records one usage record per finished request, durably,
// and moves the records in batches to a Store (SQLite embedded, PostgreSQL
// for several replicas) off the request path.
//
// # Path of a record
//
//	Append ──> spill writer ──> segment file, fsync ──> Append returns
//	                 (or, with SyncInterval: write ──> Append returns;
//	                  a syncer fsyncs every SyncInterval)
//	                                   │
//	                     flusher (every FlushInterval, or at FlushBatch
//	                     records) takes the spilled frames in batches
//	                                   │
//	                                   v
//	                     Store.Write (idempotent on request_id)
//	                                   │
//	                     acknowledged segments are deleted
//
// Append hands its records to one writer goroutine that appends them to the
// current spill segment and fsyncs; every Append waiting at that moment is
// answered by the same fsync (group commit: no timer, so an idle ledger adds
// no delay and a busy one shares each fsync among all the requests that
// arrived while the previous one ran). When Append returns nil the records
// are on disk. With Options.SyncInterval set, the writer answers after the
// write alone and a syncer fsyncs the active segment every SyncInterval.
//
// # Durability window
//
// A record whose Append returned nil survives kill -9: it is in a spill
// segment until the store has committed it, and it is replayed into the
// store at the next start (and, while the store is down, kept and retried
// with backoff). With SyncInterval zero it also survives a power cut,
// because the segment was fsynced before Append returned; with SyncInterval
// set, a power cut (or a kernel crash) loses the records appended within
// the last SyncInterval, plus an fsync in progress, that the store had not
// yet committed. The store deduplicates on request_id, so a replay of
// something already stored changes nothing, rollups included.
//
// The window is therefore the time between the end of a request and the
// return of its Append: with SyncInterval zero at most one write and fsync
// already in progress plus its own (BenchmarkAppend reports it: p50
// 0.3-0.6 ms, p99 0.6-7 ms with 2 to 32 concurrent appenders on the
// development machine; it grows with the disk's fsync latency), with
// SyncInterval one or two writes. A caller that appends after it has
// finished answering the client can lose the records of answers that
// completed within that time before a crash. A caller that must lose none
// appends before sending the answer's last byte (the [DONE] of a stream)
// and sends it only after Append returned.
//
// Two limits remain. The spill has no size cap: during a long store outage
// it grows until the disk is full, and from then on Append returns errors
// (Stats shows the growth). And a spill directory lost with its disk loses
// what the store had not yet committed.
//
// # Lifecycle
//
// New (or Open) recovers the spill left by an earlier process and starts
// the writer, the flusher and the pruner. Close, called once by the
// composition root at shutdown after the proxy stopped accepting requests
// and its in-flight requests finished, stops accepting appends, writes what
// the spill holds to the store until its context ends, and closes the
// store. Whatever could not be written stays in the spill for the next
// start.
package ledger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("ledger: closed")

// Options configure a Ledger. Zero fields take the defaults given.
type Options struct {
	// SpillDir is the local directory for spill segments. Required. Every
	// process (every replica) needs its own; a lock file enforces it.
	SpillDir string
	// SegmentBytes rotates the spill to a new segment once the current one
	// is this large (default 8 MiB); SegmentMaxAge once it is this old
	// (default 1 h). Old segments are deleted once the store holds them.
	SegmentBytes  int64
	SegmentMaxAge time.Duration
	// FlushInterval is how often the flusher writes to the store (default
	// 200 ms); it writes sooner once FlushBatch records (default 1000) are
	// waiting. FlushBatch is also the largest batch per Store.Write.
	FlushInterval time.Duration
	FlushBatch    int
	// SyncInterval chooses what a returned Append promises. Zero (the
	// default): the spill is fsynced before Append returns, so the record
	// survives a power cut. Above zero: Append returns once its record is
	// written to the spill file (in the page cache: it survives a kill -9
	// or a panic of the process, not a power cut), and a background syncer
	// fsyncs the spill every SyncInterval while there is something new. A
	// power cut then loses at most the records appended in the last
	// SyncInterval plus one fsync that the store had not yet committed.
	SyncInterval time.Duration
	// StoreTimeout bounds one Store.Write (default 30 s).
	StoreTimeout time.Duration
	// RetryMin and RetryMax bound the backoff after a failed store write
	// (defaults 100 ms and 10 s).
	RetryMin, RetryMax time.Duration
	// Retention is applied by the pruner every PruneInterval (default 1 h)
	// when the store supports it. Records older than Retention.Records are
	// also skipped when the spill is replayed, so a replay never revives
	// what retention deleted. The zero Retention keeps everything.
	Retention     Retention
	PruneInterval time.Duration
	// Logger receives warnings (store outages, corrupt spill frames). Nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	// fsync syncs a spill file (default (*os.File).Sync); tests replace it
	// to count, delay or fail fsyncs.
	fsync func(*os.File) error
}

// defaultFlushBatch is Options.FlushBatch's default.
const defaultFlushBatch = 1000

func (o *Options) defaults() {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 8 << 20
	}
	if o.SegmentMaxAge <= 0 {
		o.SegmentMaxAge = time.Hour
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.FlushBatch <= 0 {
		o.FlushBatch = defaultFlushBatch
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 30 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = 10 * time.Second
		if o.RetryMax < o.RetryMin {
			o.RetryMax = o.RetryMin
		}
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.fsync == nil {
		o.fsync = (*os.File).Sync
	}
}

// Config is what Open needs: the store's DSN and the ledger's options.
type Config struct {
	// DSN is ledger.dsn: "sqlite:PATH" or a postgres:// URL; "" is
	// DefaultDSN.
	DSN string
	Options
}

// Open opens and migrates the store cfg.DSN names and starts a Ledger on
// it, which owns the store from then on.
func Open(ctx context.Context, cfg Config) (*Ledger, error) {
	store, err := OpenStore(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, err
	}
	l, err := New(store, cfg.Options)
	if err != nil {
		store.Close()
		return nil, err
	}
	return l, nil
}

// Ledger is the durable usage ledger. It is safe for concurrent use.
type Ledger struct {
	store  Store
	opts   Options
	log    *slog.Logger
	unlock func() error

	// Append -> writer.
	reqs     chan *appendReq
	appendMu sync.RWMutex // held shared while sending on reqs; exclusively to close it
	closed   bool         // guarded by appendMu

	// Segments, oldest first. The writer appends new ones; the flusher
	// removes consumed ones. Guarded by segMu.
	segMu   sync.Mutex
	segs    []*segment
	lastSeq uint64

	// Writer state, owned by the writer goroutine.
	wfile      *os.File
	wseg       *segment
	wsegOpened time.Time
	wbuf       []byte

	// Syncer state (SyncInterval > 0): the active segment's file, which
	// the writer sets and clears under syncMu; the syncer holds syncMu
	// while it fsyncs, so the writer never closes a file under a Sync.
	// syncFailed asks the writer to abandon the active segment.
	syncMu     sync.Mutex
	sfile      *os.File
	sseg       *segment
	syncFailed atomic.Bool
	stopSyncer chan struct{}
	syncerDone chan struct{}

	// Flusher state, owned by the flusher goroutine. rseg and roff, the
	// position up to which the store holds everything, are written under
	// segMu (Stats reads them).
	rseg     *segment
	roff     int64
	rfile    *os.File
	rfileSeg *segment
	batch    []Record
	frames   []Record // readFrames' scratch, reused from batch to batch
	bseg     *segment // position after the pending batch
	boff     int64
	scratch  []byte

	flushKick   chan struct{}
	stopFlusher chan struct{}
	// flushCtx bounds store writes; it is cancelled when Close's context
	// ends. pruneCtx is cancelled when Close starts.
	flushCtx    context.Context
	flushCancel context.CancelFunc
	pruneCtx    context.Context
	pruneCancel context.CancelFunc
	writerDone  chan struct{}
	flusherDone chan struct{}
	prunerDone  chan struct{}
	closeOnce   sync.Once
	closeErr    error

	pending  atomic.Int64 // records spilled but not yet in the store
	stats    counters
	hot      hotQueue        // writer -> flusher, records just spilled
	freeReqs chan *appendReq // answered appendReqs, for reuse (see newAppendReq)
}

type counters struct {
	appended, flushed, expired, corrupt, storeErrors atomic.Uint64
	fromMemory                                       atomic.Uint64 // records the flusher took from the hot queue
	syncErrors                                       atomic.Uint64 // failed background fsyncs (SyncInterval > 0)
	lastErrMu                                        sync.Mutex
	lastErr                                          string
	lastErrAt                                        time.Time
	healthy                                          atomic.Bool
}

// appendReq is one Append's frames and records on their way to the
// writer. Append takes it from Ledger.freeReqs and returns it there once the
// writer has answered on done, after which the writer no longer touches it
// (the hot queue keeps copies of recs); one whose Append stopped waiting
// stays with the writer and is left to the garbage collector.
type appendReq struct {
	buf  []byte
	n    int
	recs []Record // normalised copies, for the flusher (see hotQueue)
	done chan error
}

// Bounds on the free appendReqs: how many are kept (enough for every
// request finishing at once on a busy gateway, at about 1 KiB each), and
// what one may keep, so that one large Append does not pin its buffers.
const (
	keptReqs         = 256
	pooledFrameBytes = 64 << 10
	pooledRecords    = 64
)

// newAppendReq returns an appendReq for n records, with empty frames and
// len(recs) == n.
func (l *Ledger) newAppendReq(n int) *appendReq {
	var req *appendReq
	select {
	case req = <-l.freeReqs:
	default:
		req = &appendReq{done: make(chan error, 1)}
	}
	req.buf = slices.Grow(req.buf[:0], frameSizeHint*n)
	req.recs = slices.Grow(req.recs[:0], n)[:n]
	req.n = n
	return req
}

// freeAppendReq keeps req for a later Append, unless enough are kept. Only
// Append calls it, and only when the writer is done with req (it answered,
// or never received it).
func (l *Ledger) freeAppendReq(req *appendReq) {
	if cap(req.buf) > pooledFrameBytes || cap(req.recs) > pooledRecords {
		return
	}
	clear(req.recs) // drop the records' strings
	select {
	case l.freeReqs <- req:
	default:
	}
}

// New starts a Ledger on store, which it owns from then on (Close closes
// it). The store must be migrated. It recovers the spill segments an
// earlier process left in opts.SpillDir and replays them into the store in
// the background.
func New(store Store, opts Options) (*Ledger, error) {
	opts.defaults()
	if opts.SpillDir == "" {
		return nil, errors.New("ledger: Options.SpillDir is required")
	}
	if _, err := os.Stat(opts.SpillDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(opts.SpillDir, 0o700); err != nil {
			return nil, fmt.Errorf("ledger: spill directory: %w", err)
		}
		// Make the new directory's own entry durable.
		if err := syncDir(filepath.Dir(opts.SpillDir)); err != nil {
			return nil, fmt.Errorf("ledger: spill directory: %w", err)
		}
	}
	unlock, err := lockDir(opts.SpillDir)
	if err != nil {
		return nil, err
	}
	segs, err := listSegments(opts.SpillDir)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("ledger: spill directory: %w", err)
	}
	l := &Ledger{
		store:       store,
		opts:        opts,
		log:         opts.Logger,
		unlock:      unlock,
		reqs:        make(chan *appendReq, 4096),
		freeReqs:    make(chan *appendReq, keptReqs),
		segs:        segs,
		flushKick:   make(chan struct{}, 1),
		stopFlusher: make(chan struct{}),
		writerDone:  make(chan struct{}),
		flusherDone: make(chan struct{}),
		prunerDone:  make(chan struct{}),
		stopSyncer:  make(chan struct{}),
		syncerDone:  make(chan struct{}),
	}
	if n := len(segs); n > 0 {
		l.lastSeq = segs[n-1].seq
		l.log.Info("ledger: replaying spill", "segments", n, "dir", opts.SpillDir)
		l.kick()
	}
	l.flushCtx, l.flushCancel = context.WithCancel(context.Background())
	l.pruneCtx, l.pruneCancel = context.WithCancel(context.Background())
	l.stats.healthy.Store(true)
	go l.writeLoop()
	go l.syncLoop()
	go l.flushLoop()
	go l.pruneLoop()
	return l, nil
}

// Append records recs durably: when it returns nil every record is in the
// spill (fsynced, unless Options.SyncInterval is set) and will reach the
// store even if the process is killed right after. It is safe for
// concurrent use and meant to be called once per finished request, from
// the request's Finish.
//
// Records are copied and normalised (UTC time to the microsecond, valid
// UTF-8, bounded strings; a zero Time becomes now); a record without a
// RequestID is refused. Append blocks for one write and one fsync shared
// with concurrent callers (for the write alone with SyncInterval); if ctx
// ends first it returns ctx's error, and the records may or may not have
// been stored (a retry with the same request id
// is harmless). Pass a context that outlives the client's connection (not
// the request's own, which ends when the client goes away), with a timeout
// of a few seconds in case the disk stalls. After Close it returns
// ErrClosed.
func (l *Ledger) Append(ctx context.Context, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	now := l.opts.Now()
	req := l.newAppendReq(len(recs))
	for i := range recs {
		r := &req.recs[i]
		*r = recs[i]
		if err := r.normalize(now); err != nil {
			l.freeAppendReq(req)
			return err
		}
		req.buf = appendRecordFrame(req.buf, r)
	}
	l.appendMu.RLock()
	if l.closed {
		l.appendMu.RUnlock()
		l.freeAppendReq(req)
		return ErrClosed
	}
	select {
	case l.reqs <- req:
		l.appendMu.RUnlock()
	case <-ctx.Done():
		l.appendMu.RUnlock()
		l.freeAppendReq(req)
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		l.freeAppendReq(req)
		return err
	case <-ctx.Done():
		return ctx.Err() // the writer still has req
	}
}

// frameSizeHint is room for a typical record's frame (a few hundred bytes),
// so that encoding one does not grow its buffer step by step.
const frameSizeHint = 512

// maxWriteBatch bounds the bytes one write gathers.
const maxWriteBatch = 4 << 20

// writeLoop is the spill writer: it gathers every queued append, writes
// them with one write and one fsync, and answers them.
func (l *Ledger) writeLoop() {
	defer close(l.writerDone)
	var batch []*appendReq
	for {
		req, ok := <-l.reqs
		if !ok {
			l.closeActive()
			return
		}
		batch = append(batch[:0], req)
		size, open := len(req.buf), true
		// Let the goroutines that are ready to run (requests finishing
		// alongside this one) queue their appends before the write: under
		// load that turns one write syscall per request into one per
		// dozens (21 records a write in a closed-loop benchmark, against
		// 1), and with nothing else to run it returns at once.
		if len(l.reqs) == 0 {
			runtime.Gosched()
		}
	gather:
		for size < maxWriteBatch {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					open = false
					break gather
				}
				batch = append(batch, r)
				size += len(r.buf)
			default:
				break gather
			}
		}
		err := l.writeBatch(batch)
		for i, r := range batch {
			r.done <- err
			batch[i] = nil
		}
		if !open {
			l.closeActive()
			return
		}
	}
}

// writeBatch appends the batch to the active segment and, unless the
// ledger syncs on an interval, fsyncs it.
func (l *Ledger) writeBatch(batch []*appendReq) error {
	if l.wfile != nil && l.syncFailed.Swap(false) {
		l.failActive()
	}
	if l.wfile != nil && (l.wseg.written.Load() >= l.opts.SegmentBytes || l.opts.Now().Sub(l.wsegOpened) >= l.opts.SegmentMaxAge) {
		l.closeActive()
	}
	if l.wfile == nil {
		if err := l.openSegment(); err != nil {
			return fmt.Errorf("ledger: spill: %w", err)
		}
	}
	var data []byte
	n := 0
	if len(batch) == 1 {
		data = batch[0].buf
	} else {
		l.wbuf = l.wbuf[:0]
		for _, r := range batch {
			l.wbuf = append(l.wbuf, r.buf...)
		}
		data = l.wbuf
	}
	for _, r := range batch {
		n += r.n
	}
	if _, err := l.wfile.Write(data); err != nil {
		l.failActive()
		return fmt.Errorf("ledger: spill write: %w", err)
	}
	if l.opts.SyncInterval <= 0 {
		if err := l.opts.fsync(l.wfile); err != nil {
			// After a failed fsync the page cache cannot be trusted:
			// abandon the segment (it is read up to its last good fsync)
			// and start a new one for the next batch.
			l.failActive()
			return fmt.Errorf("ledger: spill fsync: %w", err)
		}
	}
	off := l.wseg.written.Load() // only the writer advances it
	for _, r := range batch {
		l.hot.push(l.wseg, off, r.recs, r.buf)
		off += int64(len(r.buf))
	}
	l.wseg.written.Add(int64(len(data)))
	l.stats.appended.Add(uint64(n))
	if l.pending.Add(int64(n)) >= int64(l.opts.FlushBatch) {
		l.kick()
	}
	if cap(l.wbuf) > maxWriteBatch*2 {
		l.wbuf = nil
	}
	return nil
}

// openSegment creates the next segment file and makes its name durable.
func (l *Ledger) openSegment() error {
	l.segMu.Lock()
	seq := l.lastSeq + 1
	l.segMu.Unlock()
	path := filepath.Join(l.opts.SpillDir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(l.opts.SpillDir); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	s := &segment{seq: seq, path: path}
	l.segMu.Lock()
	l.segs = append(l.segs, s)
	l.lastSeq = seq
	l.segMu.Unlock()
	l.wfile, l.wseg, l.wsegOpened = f, s, l.opts.Now()
	l.setSyncTarget(f, s)
	return nil
}

// closeActive closes the active segment after a rotation or at Close.
func (l *Ledger) closeActive() {
	if l.wfile == nil {
		return
	}
	if l.opts.SyncInterval > 0 {
		// The syncer lets go of the file; what it had not fsynced yet is
		// fsynced here, before the segment counts as closed.
		l.setSyncTarget(nil, nil)
		if err := l.opts.fsync(l.wfile); err != nil {
			l.log.Error("ledger: spill fsync at rotation", "path", l.wseg.path, "error", err)
		}
	}
	if err := l.wfile.Close(); err != nil {
		l.log.Warn("ledger: closing spill segment", "path", l.wseg.path, "error", err)
	}
	l.wseg.closed.Store(true)
	l.wfile, l.wseg = nil, nil
}

// failActive abandons the active segment after a write or fsync error.
func (l *Ledger) failActive() {
	l.log.Error("ledger: spill segment failed; starting a new one", "path", l.wseg.path)
	l.setSyncTarget(nil, nil)
	l.wfile.Close()
	l.wseg.closed.Store(true)
	l.wfile, l.wseg = nil, nil
}

func (l *Ledger) kick() {
	select {
	case l.flushKick <- struct{}{}:
	default:
	}
}

// flushLoop moves spilled records to the store until Close.
func (l *Ledger) flushLoop() {
	defer close(l.flusherDone)
	defer l.closeReader()
	tick := time.NewTicker(l.opts.FlushInterval)
	defer tick.Stop()
	var retry *time.Timer
	var retryC <-chan time.Time
	backoff := time.Duration(0)
	stopping := false
	ctx := l.flushCtx
	for {
		if !stopping {
			select {
			case <-l.stopFlusher:
				stopping = true
			case <-tick.C:
				if retryC != nil {
					continue
				}
			case <-l.flushKick:
				if retryC != nil {
					continue
				}
			case <-retryC:
				retryC = nil
			}
		}
		err := l.drain(ctx, stopping)
		if err == nil {
			if backoff > 0 {
				l.log.Info("ledger: store is back; spill drained")
			}
			backoff, retryC = 0, nil
			l.stats.healthy.Store(true)
			if stopping {
				return
			}
			continue
		}
		l.noteStoreError(err)
		if stopping && ctx.Err() != nil {
			return
		}
		if backoff == 0 {
			backoff = l.opts.RetryMin
		} else if backoff *= 2; backoff > l.opts.RetryMax {
			backoff = l.opts.RetryMax
		}
		if retry == nil {
			retry = time.NewTimer(backoff)
		} else {
			retry.Reset(backoff)
		}
		retryC = retry.C
		if stopping {
			select {
			case <-retryC:
				retryC = nil
			case <-ctx.Done():
				return
			}
		}
	}
}

func (l *Ledger) noteStoreError(err error) {
	l.stats.storeErrors.Add(1)
	l.stats.healthy.Store(false)
	l.stats.lastErrMu.Lock()
	l.stats.lastErr, l.stats.lastErrAt = err.Error(), l.opts.Now()
	l.stats.lastErrMu.Unlock()
	l.log.Warn("ledger: store write failed; records stay in the spill", "error", err, "pending", l.pending.Load())
}

// drain writes batches to the store until the spill is caught up or a
// write fails. Unless all is set it stops after the first batch short of
// FlushBatch: that batch held everything durable when it was read, and
// what arrived while it was written waits for the next tick or kick. Going
// on would chase the arrivals with a transaction per few records, each
// paying the commit's fsync and the statements' fixed cost (at 2,000 req/s
// that measured about 50 small transactions a second instead of 5).
func (l *Ledger) drain(ctx context.Context, all bool) error {
	for {
		if len(l.batch) == 0 {
			if err := l.readBatch(); err != nil {
				return err
			}
			if len(l.batch) == 0 {
				l.removeConsumed()
				return nil
			}
		}
		wctx, cancel := context.WithTimeout(ctx, l.opts.StoreTimeout)
		err := l.store.Write(wctx, l.batch)
		cancel()
		if err != nil {
			return err
		}
		n := int64(len(l.batch))
		short := !all && len(l.batch) < l.opts.FlushBatch
		l.stats.flushed.Add(uint64(n))
		for { // replayed records were never counted in: floor at zero
			v := l.pending.Load()
			if l.pending.CompareAndSwap(v, max(v-n, 0)) {
				break
			}
		}
		l.moveReader(l.bseg, l.boff)
		clear(l.batch)
		l.batch = l.batch[:0]
		l.removeConsumed()
		if short {
			return nil
		}
	}
}

// readBatch fills l.batch from the reader position with up to FlushBatch
// durable records, crossing into later segments as earlier ones end.
func (l *Ledger) readBatch() error {
	seg, off := l.rseg, l.roff
	cutoff := time.Time{}
	if l.opts.Retention.Records > 0 {
		cutoff = l.opts.Now().Add(-l.opts.Retention.Records)
	}
	for len(l.batch) < l.opts.FlushBatch {
		if seg == nil {
			seg = l.segmentAfter(nil)
			off = 0
			if seg == nil {
				break
			}
		}
		// Load closed before written: the writer advances written before it
		// closes a segment, so a closed segment's written is final. The
		// other order could miss frames written between the two loads.
		closed := seg.closed.Load()
		limit := seg.written.Load()
		if off < limit {
			recs, end, bad, err := l.readFrames(l.frames[:0], seg, off, limit, l.opts.FlushBatch-len(l.batch))
			if err == nil {
				for i := range recs {
					if !cutoff.IsZero() && recs[i].Time.Before(cutoff) {
						l.stats.expired.Add(1)
						continue
					}
					l.batch = append(l.batch, recs[i])
				}
			}
			clear(recs)
			l.frames = recs[:0]
			if err != nil {
				return err
			}
			off = end
			if bad != nil {
				l.handleBadFrame(seg, off, bad)
				off = limit
			}
			if off < limit {
				continue
			}
		}
		if !closed {
			break // the active segment: wait for more
		}
		next := l.segmentAfter(seg)
		if next == nil {
			break
		}
		seg, off = next, 0
	}
	l.bseg, l.boff = seg, off
	if len(l.batch) == 0 && seg != nil {
		// Nothing to write (all expired, or nothing new): advance anyway.
		l.moveReader(seg, off)
	}
	return nil
}

// readFrames appends to recs up to max records of seg between off and
// limit. bad is set when an invalid frame ends the readable part of the
// segment.
func (l *Ledger) readFrames(recs []Record, seg *segment, off, limit int64, max int) (_ []Record, end int64, bad error, err error) {
	var r *bufio.Reader // reading the spill at rpos
	var rpos int64
	end = off
	max += len(recs)
	for len(recs) < max && end < limit {
		if rec, n, ok := l.hot.take(seg, end, limit); ok {
			l.stats.fromMemory.Add(1)
			recs = append(recs, rec)
			end += n
			continue
		}
		if r == nil || rpos != end {
			f, err := l.openReader(seg)
			if err != nil {
				return recs, end, nil, err
			}
			if r == nil {
				r = bufio.NewReaderSize(io.NewSectionReader(f, end, limit-end), 64<<10)
			} else {
				r.Reset(io.NewSectionReader(f, end, limit-end))
			}
			rpos = end
		}
		payload, n, ferr := readFrame(r, l.scratch)
		rpos += int64(n)
		if ferr == io.EOF {
			break
		}
		if ferr != nil {
			return recs, end, ferr, nil
		}
		l.scratch = payload[:0]
		if rec, derr := decodeRecord(payload); derr != nil || rec.RequestID == "" {
			l.stats.corrupt.Add(1)
			l.log.Error("ledger: undecodable spill record skipped", "path", seg.path, "offset", end, "error", derr)
		} else {
			recs = append(recs, rec)
		}
		end += int64(n)
	}
	return recs, end, nil, nil
}

// handleBadFrame deals with an invalid frame: the torn tail a crash leaves
// is expected and silent; a corrupt frame is logged and the segment is kept
// as *.corrupt for inspection once its valid records are stored.
func (l *Ledger) handleBadFrame(seg *segment, off int64, bad error) {
	if errors.Is(bad, errTorn) && seg.recovered {
		l.log.Info("ledger: spill segment ends with a torn frame (an interrupted write)", "path", seg.path, "offset", off)
		return
	}
	l.stats.corrupt.Add(1)
	l.log.Error("ledger: corrupt spill frame; the rest of the segment is skipped", "path", seg.path, "offset", off, "error", bad)
	if seg.closed.Load() {
		if err := os.Link(seg.path, seg.path+corruptExt); err != nil {
			l.log.Error("ledger: keeping corrupt segment", "path", seg.path, "error", err)
		}
	}
}

// openReader returns an open file for seg, reusing the last one.
func (l *Ledger) openReader(seg *segment) (*os.File, error) {
	if l.rfile != nil && l.rfileSeg == seg {
		return l.rfile, nil
	}
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, fmt.Errorf("ledger: spill read: %w", err)
	}
	l.closeReader()
	l.rfile, l.rfileSeg = f, seg
	return f, nil
}

func (l *Ledger) closeReader() {
	if l.rfile != nil {
		l.rfile.Close()
		l.rfile, l.rfileSeg = nil, nil
	}
}

// moveReader records that everything before (seg, off) is in the store.
// The position is written under segMu because Stats reads it.
func (l *Ledger) moveReader(seg *segment, off int64) {
	l.segMu.Lock()
	l.rseg, l.roff = seg, off
	l.segMu.Unlock()
}

// segmentAfter returns the segment following s (the first one if s is
// nil), or nil.
func (l *Ledger) segmentAfter(s *segment) *segment {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	if s == nil {
		if len(l.segs) == 0 {
			return nil
		}
		return l.segs[0]
	}
	for i, x := range l.segs {
		if x == s && i+1 < len(l.segs) {
			return l.segs[i+1]
		}
	}
	return nil
}

// removeConsumed deletes closed segments the store holds entirely: those
// before the reader's segment, and the reader's own once it is closed and
// read to its end.
func (l *Ledger) removeConsumed() {
	l.segMu.Lock()
	var drop []*segment
	keep := l.segs[:0]
	for _, s := range l.segs {
		consumed := false
		if l.rseg != nil && s.seq < l.rseg.seq {
			consumed = true
		}
		if s == l.rseg && s.closed.Load() && l.roff >= s.written.Load() {
			consumed = true
		}
		if consumed {
			drop = append(drop, s)
		} else {
			keep = append(keep, s)
		}
	}
	clear(l.segs[len(keep):])
	l.segs = keep
	readerDropped := false
	for _, s := range drop {
		if s == l.rseg {
			readerDropped = true
			l.rseg, l.roff = nil, 0
		}
	}
	l.segMu.Unlock()
	if len(drop) == 0 {
		return
	}
	if readerDropped {
		l.closeReader()
	}
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("ledger: removing spill segment", "path", s.path, "error", err)
		}
	}
	if err := syncDir(l.opts.SpillDir); err != nil {
		l.log.Warn("ledger: syncing spill directory", "error", err)
	}
}

// pruneLoop applies retention every PruneInterval until Close.
func (l *Ledger) pruneLoop() {
	defer close(l.prunerDone)
	if _, ok := l.store.(Pruner); !ok || l.opts.Retention.isZero() {
		return
	}
	t := time.NewTicker(l.opts.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-l.pruneCtx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(l.pruneCtx, l.opts.PruneInterval)
			if n, err := l.Prune(ctx); err != nil && l.pruneCtx.Err() == nil {
				l.log.Warn("ledger: pruning failed", "error", err)
			} else if n > 0 {
				l.log.Info("ledger: pruned old rows", "rows", n)
			}
			cancel()
		}
	}
}

// Prune applies the retention settings now and returns the rows deleted.
// It does nothing (0, nil) if the store cannot prune or nothing is
// configured.
func (l *Ledger) Prune(ctx context.Context) (int64, error) {
	p, ok := l.store.(Pruner)
	if !ok || l.opts.Retention.isZero() {
		return 0, nil
	}
	return p.Prune(ctx, l.opts.Retention.cutoffs(l.opts.Now()))
}

// Close stops the ledger (see the package documentation for who calls it):
// Append returns ErrClosed from now on, pending appends are fsynced, and the
// flusher writes the spill to the store until it is empty or ctx ends. If
// everything reached the store the spill directory is left empty; otherwise
// the rest is replayed at the next start and Close reports it. The store is
// closed in both cases. Close is idempotent; later calls return the first
// call's result.
func (l *Ledger) Close(ctx context.Context) error {
	l.closeOnce.Do(func() { l.closeErr = l.close(ctx) })
	return l.closeErr
}

func (l *Ledger) close(ctx context.Context) error {
	l.appendMu.Lock()
	l.closed = true
	close(l.reqs)
	l.appendMu.Unlock()
	select {
	case <-l.writerDone:
	case <-ctx.Done():
		// The disk is not answering; the flusher and the store are left
		// running rather than closed under a write in progress.
		return fmt.Errorf("ledger: spill writer did not finish: %w", ctx.Err())
	}
	// The writer fsynced and closed the last segment; the syncer has
	// nothing left.
	close(l.stopSyncer)
	<-l.syncerDone

	l.pruneCancel()
	<-l.prunerDone

	stop := context.AfterFunc(ctx, l.flushCancel)
	close(l.stopFlusher)
	<-l.flusherDone
	stop()
	l.flushCancel()

	var err error
	if left := l.spillLeft(); left > 0 {
		err = fmt.Errorf("ledger: closed with %d bytes of records still in the spill (they are replayed at the next start): %w",
			left, context.Cause(ctx))
		if ctx.Err() == nil {
			err = fmt.Errorf("ledger: closed with %d bytes of records still in the spill (they are replayed at the next start)", left)
		}
	} else {
		l.segMu.Lock()
		for _, s := range l.segs {
			os.Remove(s.path)
		}
		l.segs = nil
		l.segMu.Unlock()
		syncDir(l.opts.SpillDir)
	}
	if cerr := l.store.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if uerr := l.unlock(); err == nil && uerr != nil {
		err = uerr
	}
	return err
}

// spillLeft returns the spilled bytes not yet in the store.
func (l *Ledger) spillLeft() int64 {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.written.Load()
		if s == l.rseg {
			n -= l.roff
		}
	}
	return n
}

// Stats is a snapshot of the ledger's counters, for metrics and readiness.
type Stats struct {
	// Appended counts records written into the spill since start; Flushed
	// those the store acknowledged (replays included); Expired replayed
	// records skipped for being older than retention; Corrupt spill frames
	// that could not be read.
	Appended, Flushed, Expired, Corrupt uint64
	// SpillBytes is the written spill not yet in the store; SpillSegments
	// the number of segment files.
	SpillBytes    int64
	SpillSegments int
	// StoreHealthy is false from a failed store write until the next
	// successful one; StoreErrors counts failures; LastStoreError is the
	// latest one's message.
	StoreHealthy     bool
	StoreErrors      uint64
	LastStoreError   string
	LastStoreErrorAt time.Time
	// SyncErrors counts failed background fsyncs of the spill
	// (SyncInterval > 0); each abandons the segment it was syncing.
	SyncErrors uint64
}

// Stats returns current counters. It is cheap and safe to call at any
// time.
func (l *Ledger) Stats() Stats {
	s := Stats{
		Appended:     l.stats.appended.Load(),
		Flushed:      l.stats.flushed.Load(),
		Expired:      l.stats.expired.Load(),
		Corrupt:      l.stats.corrupt.Load(),
		StoreHealthy: l.stats.healthy.Load(),
		StoreErrors:  l.stats.storeErrors.Load(),
		SyncErrors:   l.stats.syncErrors.Load(),
	}
	l.segMu.Lock()
	s.SpillSegments = len(l.segs)
	l.segMu.Unlock()
	s.SpillBytes = l.spillLeft()
	l.stats.lastErrMu.Lock()
	s.LastStoreError, s.LastStoreErrorAt = l.stats.lastErr, l.stats.lastErrAt
	l.stats.lastErrMu.Unlock()
	return s
}
