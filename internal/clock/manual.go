package clock

import (
	"fmt"
	"sync"
	"time"
)

// Manual is a Clock for tests: time stands still until Advance moves it.
//
// Advance runs what falls due in deadline order (ties in the order they
// were armed), setting Now to each one's deadline as it goes, and returns
// when all of it ran: an AfterFunc callback runs on the goroutine calling
// Advance (not on a goroutine of its own, as with package time, so a test
// knows it has run), a ticker's tick is sent without blocking (dropped when
// the one buffered tick was not received, as with time.Ticker). A callback
// may arm timers; those due by the Advance's target fire in the same call.
// A timer armed for d <= 0 is due at once and fires at the next Advance
// (Advance(0) runs it).
//
// WaitTimers waits (in real time, bounded) until the code under test has
// armed the timers a test expects, the step between "the broker parked the
// request" and "now move time".
//
// Safe for concurrent use. Advance calls are serialised.
type Manual struct {
	advanceMu sync.Mutex // serialises Advance

	mu      sync.Mutex
	now     time.Time
	seq     uint64
	armed   map[*manualEvent]struct{}
	changed chan struct{} // closed and replaced whenever armed changes
}

// NewManual returns a Manual clock reading start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start, armed: map[*manualEvent]struct{}{}, changed: make(chan struct{})}
}

// manualEvent is one timer or ticker. Guarded by Manual.mu.
type manualEvent struct {
	m      *Manual
	when   time.Time
	seq    uint64
	period time.Duration  // ticker: > 0
	fn     func()         // timer
	ch     chan time.Time // ticker
	armed  bool
}

// Now is the clock's current time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// AfterFunc arms a timer that calls f (on the Advance goroutine) once the
// clock has moved d past now.
func (m *Manual) AfterFunc(d time.Duration, f func()) Timer {
	e := &manualEvent{m: m, fn: f}
	m.mu.Lock()
	m.armLocked(e, d)
	m.mu.Unlock()
	return e
}

// NewTicker arms a ticker with period d.
func (m *Manual) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	e := &manualEvent{m: m, period: d, ch: make(chan time.Time, 1)}
	m.mu.Lock()
	m.armLocked(e, d)
	m.mu.Unlock()
	return manualTicker{e}
}

// Armed is the number of timers and tickers armed now.
func (m *Manual) Armed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.armed)
}

// WaitTimers waits until at least n timers and tickers are armed, for at
// most within of real time; the error says how many were.
func (m *Manual) WaitTimers(n int, within time.Duration) error {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		armed, changed := len(m.armed), m.changed
		m.mu.Unlock()
		if armed >= n {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("clock: %d timers armed after %v, waiting for %d", armed, within, n)
		}
	}
}

// Advance moves the clock d forward, running everything that falls due.
func (m *Manual) Advance(d time.Duration) {
	m.advanceMu.Lock()
	defer m.advanceMu.Unlock()
	m.mu.Lock()
	target := m.now.Add(d)
	for {
		e := m.nextDueLocked(target)
		if e == nil {
			break
		}
		if e.when.After(m.now) {
			m.now = e.when
		}
		if e.period > 0 {
			m.seq++
			e.when, e.seq = e.when.Add(e.period), m.seq
		} else {
			m.disarmLocked(e)
		}
		now, fn, ch := m.now, e.fn, e.ch
		m.mu.Unlock()
		if ch != nil {
			select {
			case ch <- now:
			default:
			}
		} else {
			fn()
		}
		m.mu.Lock()
	}
	if target.After(m.now) {
		m.now = target
	}
	m.mu.Unlock()
}

// nextDueLocked is the armed event with the earliest deadline not after
// target (the earliest armed on a tie), or nil.
func (m *Manual) nextDueLocked(target time.Time) *manualEvent {
	var next *manualEvent
	for e := range m.armed {
		if e.when.After(target) {
			continue
		}
		if next == nil || e.when.Before(next.when) || (e.when.Equal(next.when) && e.seq < next.seq) {
			next = e
		}
	}
	return next
}

func (m *Manual) armLocked(e *manualEvent, d time.Duration) {
	m.seq++
	e.when, e.seq = m.now.Add(max(d, 0)), m.seq
	if !e.armed {
		e.armed = true
		m.armed[e] = struct{}{}
		m.signalLocked()
	}
}

func (m *Manual) disarmLocked(e *manualEvent) bool {
	if !e.armed {
		return false
	}
	e.armed = false
	delete(m.armed, e)
	m.signalLocked()
	return true
}

func (m *Manual) signalLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Stop implements Timer.
func (e *manualEvent) Stop() bool {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	return e.m.disarmLocked(e)
}

// Reset implements Timer.
func (e *manualEvent) Reset(d time.Duration) bool {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	was := e.armed
	e.m.armLocked(e, d)
	return was
}

type manualTicker struct{ e *manualEvent }

func (t manualTicker) C() <-chan time.Time { return t.e.ch }
func (t manualTicker) Stop()               { t.e.Stop() }

func (t manualTicker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive interval for Ticker.Reset")
	}
	t.e.m.mu.Lock()
	defer t.e.m.mu.Unlock()
	t.e.period = d
	t.e.m.armLocked(t.e, d)
}
