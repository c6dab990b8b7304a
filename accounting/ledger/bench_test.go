package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// nopStore acknowledges everything; it isolates the spill's cost.
type nopStore struct{ n atomic.Int64 }

func (s *nopStore) Migrate(context.Context) error { return nil }
func (s *nopStore) Write(_ context.Context, recs []Record) error {
	s.n.Add(int64(len(recs)))
	return nil
}
func (s *nopStore) Close() error { return nil }

// BenchmarkAppend is the cost on the request path: one record per call
// from many goroutines (as concurrent requests finish), each call waiting
// for its write and fsync (group commit shares them), or, with sync=50ms,
// for its write alone (the spill is fsynced every 50 ms).
func BenchmarkAppend(b *testing.B) {
	for _, cfg := range []struct {
		name string
		sync time.Duration
		par  int
	}{{"each", 0, 1}, {"each", 0, 16}, {"50ms", 50 * time.Millisecond, 1}, {"50ms", 50 * time.Millisecond, 16}} {
		par := cfg.par
		b.Run(fmt.Sprintf("sync=%s/goroutines=%dxGOMAXPROCS", cfg.name, par), func(b *testing.B) {
			l, err := New(&nopStore{}, Options{SpillDir: b.TempDir(), SyncInterval: cfg.sync})
			if err != nil {
				b.Fatal(err)
			}
			var seq atomic.Int64
			tmpl := record("tmpl", 1)
			lat := make([]time.Duration, b.N+64)
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(seq.Add(1))
					r := tmpl
					r.RequestID = "bench-" + strconv.Itoa(i)
					start := time.Now()
					if err := l.Append(context.Background(), r); err != nil {
						b.Error(err)
						return
					}
					lat[i-1] = time.Since(start)
				}
			})
			b.StopTimer()
			lat = lat[:seq.Load()]
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			closeLedger(b, l)
		})
	}
}

// BenchmarkAppendEncode is the CPU part of Append alone: normalising,
// encoding and framing one record, in the binary form Append writes and, as
// the baseline, in the JSON form it wrote before.
func BenchmarkAppendEncode(b *testing.B) {
	r := record("enc-1", 1)
	now := time.Now()
	var buf []byte
	b.Run("form=binary", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c := r
			c.normalize(now)
			buf = appendRecordFrame(buf[:0], &c)
		}
	})
	b.Run("form=json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c := r
			c.normalize(now)
			payload, _ := json.Marshal(&c)
			buf = appendFrame(buf[:0], payload)
		}
	})
}

func benchmarkStoreWrite(b *testing.B, s Store) {
	benchmarkStoreWriteBatch(b, s, 1000)
}

// benchmarkStoreWriteBatch writes b.N records in batches of batch.
func benchmarkStoreWriteBatch(b *testing.B, s Store, batch int) {
	recs := make([]Record, batch)
	b.ReportAllocs()
	b.ResetTimer()
	written := 0
	for written < b.N {
		n := min(batch, b.N-written)
		for i := 0; i < n; i++ {
			recs[i] = record(fmt.Sprintf("w-%d", written+i), written+i)
			recs[i].normalize(time.Time{})
		}
		if err := s.Write(context.Background(), recs[:n]); err != nil {
			b.Fatal(err)
		}
		written += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSQLiteWrite measures records/s into SQLite in batches of 1000
// (one transaction each, synchronous=FULL), rollups included.
func BenchmarkSQLiteWrite(b *testing.B) {
	s, _ := newSQLite(b)
	defer s.Close()
	benchmarkStoreWrite(b, s)
}

// BenchmarkSQLiteWriteBatch shows a transaction's fixed cost: records/s
// and CPU per record for batches the size a gateway flushing every 20 ms,
// 200 ms and 1 s at 2,000 req/s hands the store.
func BenchmarkSQLiteWriteBatch(b *testing.B) {
	for _, n := range []int{40, 400, 2000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s, _ := newSQLite(b)
			defer s.Close()
			benchmarkStoreWriteBatch(b, s, n)
		})
	}
}

// BenchmarkPostgresWrite measures records/s into PostgreSQL in batches of
// 1000 (COPY + INSERT ... ON CONFLICT + rollups, one transaction each).
func BenchmarkPostgresWrite(b *testing.B) {
	dsn := postgresDSN(b)
	benchmarkStoreWrite(b, newPostgres(b, dsn))
}

// BenchmarkLedgerToSQLite is end to end: concurrent Appends until every
// record is in SQLite.
func BenchmarkLedgerToSQLite(b *testing.B) {
	s, _ := newSQLite(b)
	l, err := New(s, Options{SpillDir: b.TempDir(), FlushInterval: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(seq.Add(1))
			if err := l.Append(context.Background(), record(fmt.Sprint("e2e-", i), i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for l.Stats().Flushed < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	closeLedger(b, l)
}
