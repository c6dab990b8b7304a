package ledger

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testPruneWalksEveryOrg: Prune deletes the old records of every
// organisation, the empty one (requests refused before auth) included,
// and keeps the newer ones of each.
func testPruneWalksEveryOrg(t *testing.T, s Store) {
	ctx := context.Background()
	base := time.Date(2026, 6, 13, 9, 0, 0, 0, time.UTC)
	orgs := []string{"", "acme", "bride-co", "zz-venue"}
	var recs []Record
	for i, org := range orgs {
		for j, age := range []time.Duration{-2 * time.Hour, -time.Minute, time.Minute} {
			r := record(fmt.Sprintf("p-%d-%d", i, j), i)
			r.Org, r.Time = org, base.Add(age)
			if err := r.normalize(time.Time{}); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n, err := s.(Pruner).Prune(ctx, Cutoffs{Records: base})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(2*len(orgs)) {
		t.Errorf("Prune deleted %d rows, want %d (two per org)", n, 2*len(orgs))
	}
	sq := s.(SpendQuerier)
	for i, org := range orgs {
		got, err := sq.SpentSince(ctx, org, time.Time{})
		if want := recs[3*i+2].CostUSDMicros; err != nil || got != want {
			t.Errorf("org %q after prune: %d µUSD stored, %v; want %d (the newest record's only)", org, got, err, want)
		}
	}
}

func TestSQLitePruneWalksEveryOrg(t *testing.T) {
	s, _ := newSQLite(t)
	defer s.Close()
	testPruneWalksEveryOrg(t, s)
}

func TestPostgresPruneWalksEveryOrg(t *testing.T) {
	s := newPostgres(t, postgresDSN(t))
	testPruneWalksEveryOrg(t, s)
}

// TestSQLitePruneUsesTheOrgIndex: with no index on time alone, each of
// Prune's queries must still seek in (org, time) rather than scan the table.
func TestSQLitePruneUsesTheOrgIndex(t *testing.T) {
	s, _ := newSQLite(t)
	defer s.Close()
	ctx := context.Background()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'usage_records_time'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("usage_records_time still exists (%d, %v): every insert pays for it", n, err)
	}
	for _, q := range []string{
		orgAfter(true, "?"),
		orgAfter(false, "?"),
		`SELECT rowid FROM usage_records WHERE org = ? AND time < ? LIMIT ?`,
	} {
		rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, "acme", "2026-01-01", 10)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "INDEX usage_records_org_time") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s; want a seek in usage_records_org_time", q, p)
		}
	}
}
