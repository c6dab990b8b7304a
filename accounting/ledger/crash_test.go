package ledger

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// crashEnv tells the test binary it runs as TestKill9's child, and where.
const crashEnv = "AIGW_LEDGER_CRASH_CHILD_DIR"

// crashSyncEnv is the child's SyncInterval ("" for fsync on every Append).
const crashSyncEnv = "AIGW_LEDGER_CRASH_SYNC"

func crashConfig(dir string) Config {
	every, _ := time.ParseDuration(os.Getenv(crashSyncEnv))
	return Config{
		DSN: "sqlite:" + filepath.Join(dir, "aigw.db"),
		Options: Options{
			SpillDir:      filepath.Join(dir, "spill"),
			FlushInterval: 2 * time.Millisecond,
			FlushBatch:    100,
			SegmentBytes:  256 << 10, // rotations happen during the run
			SyncInterval:  every,
		},
	}
}

// TestCrashChild is the child process of TestKill9LosesNoAcknowledgedRecord:
// eight goroutines append records as fast as they can and print "ack <id>"
// once Append has returned, until the parent kills the process.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9LosesNoAcknowledgedRecord")
	}
	l, err := Open(context.Background(), crashConfig(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; ; i++ {
				id := fmt.Sprintf("kill-%d-%d", g, i)
				if err := l.Append(context.Background(), record(id, i)); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				mu.Lock()
				os.Stdout.WriteString("ack " + id + "\n")
				mu.Unlock()
			}
		}(g)
	}
	time.Sleep(time.Minute) // the parent kills us long before
	os.Exit(3)
}

// TestKill9LosesNoAcknowledgedRecord kills a process appending under load
// with SIGKILL, then opens the ledger again: every record whose Append had
// returned (and been acknowledged on stdout) must be in the store after
// the replay.
func TestKill9LosesNoAcknowledgedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	for _, sync := range []string{"", "20ms"} {
		t.Run("sync="+sync, func(t *testing.T) {
			t.Setenv(crashSyncEnv, sync)
			testKill9(t)
		})
	}
}

func testKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // a partial last line is not an acknowledgement
			}
			lines <- line
		}
	}()
	acked := make(map[string]bool)
	take := func(line string) {
		if id, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ack "); ok {
			acked[id] = true
		}
	}
	deadline := time.After(30 * time.Second)
	var firstAck time.Time
wait:
	for len(acked) < 3000 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("child exited early: %s", stderr.String())
			}
			take(line)
			if firstAck.IsZero() {
				firstAck = time.Now()
			}
			if time.Since(firstAck) > 3*time.Second {
				break wait
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("no progress from the child: %d acks; stderr: %s", len(acked), stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	for line := range lines {
		take(line)
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Exited() {
		t.Fatalf("child was not killed by a signal: %v; stderr: %s", err, stderr.String())
	}

	cfg := crashConfig(dir)
	segs, _ := listSegments(cfg.SpillDir)
	storedBefore := storedIDs(t, dir)
	l, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeLedger(t, l)
	stored := storedIDs(t, dir)
	missing := 0
	for id := range acked {
		if !stored[id] {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged record %s lost", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged records lost", missing, len(acked))
	}
	t.Logf("killed after %d acknowledged appends; %d stored before the replay, %d after (spill had %d segments)",
		len(acked), len(storedBefore), len(stored), len(segs))
	if len(stored) < len(acked) {
		t.Errorf("store holds %d records, fewer than the %d acknowledged", len(stored), len(acked))
	}
}

func storedIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	s, err := OpenSQLite(filepath.Join(dir, "aigw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := make(map[string]bool)
	rows, err := s.DB().Query(`SELECT request_id FROM usage_records`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return ids
		}
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}
