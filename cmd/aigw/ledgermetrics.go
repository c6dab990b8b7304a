package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aigw/aigw/accounting/ledger"
)

// ledgerStats is what the ledger collector reads; *ledger.Ledger has it.
type ledgerStats interface {
	Stats() ledger.Stats
}

// ledgerCollector exposes the usage ledger's counters on /metrics, read
// from Stats at each scrape: how far the store is behind the spill
// (aigw_ledger_backlog_bytes), whether the store is taking writes, and the
// failures an operator must hear about. Safe for concurrent scrapes.
type ledgerCollector struct {
	led                                     ledgerStats
	appended, flushed, expired, corrupt     *prometheus.Desc
	backlog, segments, storeUp, storeErrors *prometheus.Desc
	syncErrors                              *prometheus.Desc
}

func newLedgerCollector(led ledgerStats) *ledgerCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &ledgerCollector{
		led:         led,
		appended:    d("aigw_ledger_records_appended_total", "Usage records written to the ledger's spill since start."),
		flushed:     d("aigw_ledger_records_flushed_total", "Usage records the ledger's store acknowledged since start (replays included)."),
		expired:     d("aigw_ledger_records_expired_total", "Replayed usage records skipped for being older than retention."),
		corrupt:     d("aigw_ledger_corrupt_frames_total", "Spill frames that could not be read; each is a lost record."),
		backlog:     d("aigw_ledger_backlog_bytes", "Spill bytes written but not yet in the store: grows while the store is down or behind."),
		segments:    d("aigw_ledger_spill_segments", "Spill segment files on disk."),
		storeUp:     d("aigw_ledger_store_up", "1 while the ledger's store takes writes, 0 from a failed write until the next success."),
		storeErrors: d("aigw_ledger_store_errors_total", "Failed writes to the ledger's store (each batch is retried from the spill)."),
		syncErrors:  d("aigw_ledger_sync_errors_total", "Failed background fsyncs of the spill."),
	}
}

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.appended, c.flushed, c.expired, c.corrupt, c.backlog, c.segments,
		c.storeUp, c.storeErrors, c.syncErrors} {
		ch <- d
	}
}

func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.led.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.appended, s.Appended)
	counter(c.flushed, s.Flushed)
	counter(c.expired, s.Expired)
	counter(c.corrupt, s.Corrupt)
	counter(c.storeErrors, s.StoreErrors)
	counter(c.syncErrors, s.SyncErrors)
	gauge(c.backlog, float64(s.SpillBytes))
	gauge(c.segments, float64(s.SpillSegments))
	up := 0.0
	if s.StoreHealthy {
		up = 1
	}
	gauge(c.storeUp, up)
}
