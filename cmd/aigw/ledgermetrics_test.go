package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aigw/aigw/accounting/ledger"
)

type fixedStats ledger.Stats

func (f fixedStats) Stats() ledger.Stats { return ledger.Stats(f) }

func TestLedgerCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newLedgerCollector(fixedStats{Appended: 7, Flushed: 5, Corrupt: 1, SpillBytes: 4096,
		SpillSegments: 2, StoreHealthy: false, StoreErrors: 3, SyncErrors: 0}))
	want := `
# HELP aigw_ledger_backlog_bytes Spill bytes written but not yet in the store: grows while the store is down or behind.
# TYPE aigw_ledger_backlog_bytes gauge
aigw_ledger_backlog_bytes 4096
# HELP aigw_ledger_records_appended_total Usage records written to the ledger's spill since start.
# TYPE aigw_ledger_records_appended_total counter
aigw_ledger_records_appended_total 7
# HELP aigw_ledger_records_flushed_total Usage records the ledger's store acknowledged since start (replays included).
# TYPE aigw_ledger_records_flushed_total counter
aigw_ledger_records_flushed_total 5
# HELP aigw_ledger_store_up 1 while the ledger's store takes writes, 0 from a failed write until the next success.
# TYPE aigw_ledger_store_up gauge
aigw_ledger_store_up 0
# HELP aigw_ledger_store_errors_total Failed writes to the ledger's store (each batch is retried from the spill).
# TYPE aigw_ledger_store_errors_total counter
aigw_ledger_store_errors_total 3
# HELP aigw_ledger_corrupt_frames_total Spill frames that could not be read; each is a lost record.
# TYPE aigw_ledger_corrupt_frames_total counter
aigw_ledger_corrupt_frames_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "aigw_ledger_backlog_bytes",
		"aigw_ledger_records_appended_total", "aigw_ledger_records_flushed_total", "aigw_ledger_store_up",
		"aigw_ledger_store_errors_total", "aigw_ledger_corrupt_frames_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 9 {
		t.Errorf("%d series (%v), want the 9 ledger metrics", n, err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}
