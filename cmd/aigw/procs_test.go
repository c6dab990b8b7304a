package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestEnsureProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	set := func(k string) (string, bool) { return "1", k == "GOMAXPROCS" }
	if n, raised := ensureProcs(set); raised || n != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("operator's GOMAXPROCS=1 overridden: %d %v", n, raised)
	}
	unset := func(string) (string, bool) { return "", false }
	if n, raised := ensureProcs(unset); !raised || n != minProcs || runtime.GOMAXPROCS(0) != minProcs {
		t.Fatalf("one P not raised: %d %v, GOMAXPROCS %d", n, raised, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(3)
	if n, raised := ensureProcs(unset); raised || n != 3 {
		t.Fatalf("3 Ps changed: %d %v", n, raised)
	}
}

func TestEnsureGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	set := func(k string) (string, bool) { return "100", k == "GOGC" }
	if ensureGCPercent(set) {
		t.Fatal("operator's GOGC overridden")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC is %d after an operator set it, want 100 kept", got)
	}
	unset := func(string) (string, bool) { return "", false }
	if !ensureGCPercent(unset) {
		t.Fatal("GOGC unset: not raised")
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Fatalf("GOGC is %d with no GOGC in the environment, want %d", got, defaultGCPercent)
	}
}

func TestParseLedgerSync(t *testing.T) {
	for in, want := range map[string]time.Duration{"always": 0, "50ms": 50 * time.Millisecond, "1s": time.Second} {
		if got, err := parseLedgerSync(in); err != nil || got != want {
			t.Errorf("parseLedgerSync(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "never", "0", "-1s", "500us", "2m"} {
		if _, err := parseLedgerSync(in); err == nil {
			t.Errorf("parseLedgerSync(%q) accepted", in)
		}
	}
}
