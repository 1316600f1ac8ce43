package storage

import (
	"fmt"
	"sort"
	"time"
)

// Liveness of the writers, for the daemon's systemd watchdog: a writer that
// has been inside one action (a group's write and its fdatasync, a periodic
// fdatasync, a roll) for longer than a bound is stalled, and every append
// queued behind it waits too. The writer stores the start of each action in
// busySinceNs and clears it when it parks (idle, lingering, waiting for
// flush.ms): two atomic stores per wake-up, nothing per append. A parked
// writer is never stalled: lingering and flush.ms waits are bounded by the
// policy. Background fdatasyncs of rolled segments are not counted: no
// append waits for them.

// Stalled reports how long the writer has been in its current action, and
// whether that is longer than bound.
func (l *Log) Stalled(bound time.Duration) (time.Duration, bool) {
	since := l.busySinceNs.Load()
	if since == 0 {
		return 0, false
	}
	d := time.Duration(l.clock.Now().UnixNano() - since)
	return d, d > bound
}

// Stalled lists the open logs whose writer has been in one action (a write,
// an fdatasync) for longer than bound, as "topic-partition (busy 12s)".
// Safe from any goroutine; it takes m.mu only to copy the open logs.
func (m *Manager) Stalled(bound time.Duration) []string {
	m.mu.Lock()
	logs := make([]*Log, 0, len(m.logs))
	for _, l := range m.logs {
		logs = append(logs, l)
	}
	m.mu.Unlock()
	var out []string
	for _, l := range logs {
		if d, stalled := l.Stalled(bound); stalled {
			out = append(out, fmt.Sprintf("%s-%d (busy %v)", l.topic, l.partition, d.Round(time.Millisecond)))
		}
	}
	sort.Strings(out)
	return out
}
