package quota

import "time"

// Clock is the limiter's source of time. Every decision reads Now once;
// queue deadlines and retries are scheduled with AfterFunc. Tests use a fake
// clock (see package quotatest) instead of sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for a fake clock, from
	// the goroutine that advances it) once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call returned by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it
	// did so.
	Stop() bool
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
