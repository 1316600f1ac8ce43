// Package clock is the broker's injected time: the group coordinator's
// deadlines, the Fetch long poll and the maintenance loop read Now and arm
// timers through a Clock, so tests can drive them step by step with Manual
// instead of sleeping and hoping the work happened (etcd raft's logical
// ticks, pebble's deterministic time sources).
//
// Real is the wall clock (package time). Manual stands still until the test
// calls Advance, which runs every timer and ticker that falls due, in
// deadline order, before it returns.
//
// Not everything takes this Clock: the storage writer's linger and flush
// timers have their own (storage.Clock, read-only, paired with real timers),
// and durations measured for metrics and logs stay on the wall clock.
package clock

import "time"

// Clock tells the time and arms timers.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// AfterFunc calls f once d has passed (time.AfterFunc), unless the
	// timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTicker delivers the time on C every d (time.NewTicker; d > 0).
	NewTicker(d time.Duration) Ticker
}

// Timer is a stoppable, re-armable AfterFunc timer (time.Timer's methods).
type Timer interface {
	// Stop disarms the timer; it reports whether the timer was armed.
	Stop() bool
	// Reset re-arms the timer to fire after d; it reports whether the
	// timer was armed.
	Reset(d time.Duration) bool
}

// Ticker is time.Ticker behind an interface.
type Ticker interface {
	// C delivers the ticks. Like time.Ticker's channel it holds one tick:
	// a receiver that falls behind misses ticks, it never blocks the clock.
	C() <-chan time.Time
	// Stop turns the ticker off; no more ticks are sent.
	Stop()
	// Reset stops the ticker and restarts it with period d (d > 0).
	Reset(d time.Duration)
}

// Until is t.Sub(c.Now()), time.Until on c.
func Until(c Clock, t time.Time) time.Duration { return t.Sub(c.Now()) }

// Since is c.Now().Sub(t), time.Since on c.
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

// Real is the wall clock.
type Real struct{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// NewTicker is time.NewTicker.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }

// Or returns c, or Real when c is nil: what an Options field left zero
// means.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}
