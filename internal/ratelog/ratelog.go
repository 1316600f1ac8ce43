// Package ratelog rate-limits log lines that report floods of events
// (refused connections, failed accepts, dropped messages), so a flood costs
// one line per interval, never one per event.
package ratelog

import (
	"sync/atomic"
	"time"
)

// Every rate-limits one log line: every event is counted, and at most one
// line per interval is let through, carrying the number of events since the
// previous one. Safe from any goroutine; an event costs two atomic adds and
// a clock read when no line is due. The zero value is ready.
type Every struct {
	lastNanos atomic.Int64
	unlogged  atomic.Int64 // events since the last line
}

// Event records one event. When a line is due it returns true and the
// number of events since the previous line (this one included).
func (e *Every) Event(interval time.Duration) (int64, bool) {
	e.unlogged.Add(1)
	now := time.Now().UnixNano()
	last := e.lastNanos.Load()
	if now-last < int64(interval) || !e.lastNanos.CompareAndSwap(last, now) {
		return 0, false
	}
	return e.unlogged.Swap(0), true
}
