package configs

import (
	"context"
	"errors"
	"time"
)

// Watcher polls the policy at Path and calls OnChange when its checksum
// (the same one as Policy.Checksum: the files' base names and bytes) differs
// from the last one seen. It does not load the policy: OnChange typically
// calls Load and swaps the runtime snapshot if the load succeeds.
//
// Files named by "file:" secrets are not watched.
type Watcher struct {
	Path     string        // a file or a directory, as for Load
	Interval time.Duration // time between polls; must be > 0
	// Last is the checksum already seen, usually the Policy.Checksum of
	// the generation in service, so that a change made between that Load
	// and the start of Run is not missed. If empty, Run takes the first
	// checksum itself when it starts.
	Last string
	// OnChange is called with the new checksum, on Run's goroutine, never
	// concurrently; polls that fall due while it runs are skipped. A change
	// is reported once: if the caller's reload fails, the next call comes
	// with the next change. Required.
	OnChange func(sum string)
	// OnError, if set, is told when a poll cannot read the policy (for
	// instance while the directory is being replaced). The poll is then
	// skipped and Last kept.
	OnError func(err error)

	afterPoll func() // tests: called after each poll
}

// Run polls until ctx is done and then returns ctx.Err(). It blocks: the
// caller starts it on a goroutine of its own and stops it by cancelling
// ctx; Run leaves no goroutine or ticker behind. It returns an error at
// once if Interval or OnChange is missing.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Interval <= 0 {
		return errors.New("configs: Watcher.Interval must be positive")
	}
	if w.OnChange == nil {
		return errors.New("configs: Watcher.OnChange is nil")
	}
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	return w.run(ctx, t.C)
}

// run is Run with the clock injected: it polls once per value received
// from ticks.
func (w *Watcher) run(ctx context.Context, ticks <-chan time.Time) error {
	last := w.Last
	if last == "" {
		last, _ = checksumPath(w.Path) // unreadable now: any later readable state is a change
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticks:
		}
		last = w.poll(last)
		if w.afterPoll != nil {
			w.afterPoll()
		}
	}
}

// poll checks the policy once and returns the checksum now last seen.
func (w *Watcher) poll(last string) string {
	sum, err := checksumPath(w.Path)
	if err != nil {
		if w.OnError != nil {
			w.OnError(err)
		}
		return last
	}
	if sum != last {
		w.OnChange(sum)
	}
	return sum
}

// Watch polls the policy at path every interval and calls onChange, on the
// calling goroutine, each time the policy files change, until ctx is done;
// it then returns ctx.Err(). The first checksum is taken when Watch starts.
// It is a shorthand for Watcher.Run; use a Watcher to seed the checksum
// from a loaded Policy or to see read errors.
func Watch(ctx context.Context, path string, interval time.Duration, onChange func()) error {
	if onChange == nil {
		return errors.New("configs: Watch needs an onChange function")
	}
	w := Watcher{Path: path, Interval: interval, OnChange: func(string) { onChange() }}
	return w.Run(ctx)
}
