package main

import (
	"runtime"
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
