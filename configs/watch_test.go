package configs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startWatcher runs w with a tick channel the test drives. tick returns
// once the watcher has finished the poll it caused.
func startWatcher(t *testing.T, w *Watcher) (tick func(), stop func() error) {
	t.Helper()
	ticks := make(chan time.Time)
	polled := make(chan struct{})
	w.afterPoll = func() { polled <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, ticks) }()
	tick = func() {
		ticks <- time.Time{}
		<-polled
	}
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("watcher did not stop on cancel")
			return nil
		}
	}
	return tick, stop
}

func TestWatcherFiresOnceOnChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.yaml")
	writeFile(t, file, "providers: []\n")

	var calls atomic.Int32
	var lastSum atomic.Value
	w := &Watcher{Path: dir, OnChange: func(sum string) { calls.Add(1); lastSum.Store(sum) }}
	tick, stop := startWatcher(t, w)

	tick()
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d calls without change", n)
	}
	writeFile(t, file, "providers: [{id: x}]\n")
	tick()
	tick()
	tick()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls after one change, want 1", n)
	}
	want, _ := checksumPath(dir)
	if got := lastSum.Load(); got != want {
		t.Errorf("OnChange got %v, want the new checksum %s", got, want)
	}

	// A new file counts, and so does a removed one.
	writeFile(t, filepath.Join(dir, "b.yml"), "models: []\n")
	tick()
	if err := os.Remove(filepath.Join(dir, "b.yml")); err != nil {
		t.Fatal(err)
	}
	tick()
	// Files that are not policy files do not.
	writeFile(t, filepath.Join(dir, "notes.txt"), "hello\n")
	tick()
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("run returned %v, want context.Canceled", err)
	}
}

func TestWatcherSeededWithLast(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "orgs: []\n")
	var calls atomic.Int32
	// Last is stale: the files changed between Load and Run.
	w := &Watcher{Path: dir, Last: "stale", OnChange: func(string) { calls.Add(1) }}
	tick, stop := startWatcher(t, w)
	tick()
	tick()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
	_ = stop()
}

func TestWatcherReadErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policy")
	writeFile(t, filepath.Join(dir, "a.yaml"), "keys: []\n")
	var calls, errs atomic.Int32
	sum, err := checksumPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := &Watcher{Path: dir, Last: sum, OnChange: func(string) { calls.Add(1) }, OnError: func(error) { errs.Add(1) }}
	tick, stop := startWatcher(t, w)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	tick()
	if calls.Load() != 0 || errs.Load() != 1 {
		t.Errorf("calls %d errs %d after the directory vanished, want 0 and 1", calls.Load(), errs.Load())
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), "keys: []\n") // back as before
	tick()
	if calls.Load() != 0 {
		t.Errorf("%d calls after the same content came back", calls.Load())
	}
	_ = stop()
}

func TestWatchValidatesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := (&Watcher{Path: ".", OnChange: func(string) {}}).Run(ctx); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Run without Interval = %v", err)
	}
	if err := (&Watcher{Path: ".", Interval: time.Second}).Run(ctx); err == nil {
		t.Errorf("Run without OnChange = %v", err)
	}
	if err := Watch(ctx, ".", time.Second, nil); err == nil {
		t.Errorf("Watch without onChange = %v", err)
	}
	// The real ticker path: returns promptly on cancel, leaves nothing behind
	// (goleak checks at the end of the package's tests).
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "keys: []\n")
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, dir, time.Millisecond, func() {}) }()
	time.Sleep(5 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not stop on cancel")
	}
}
