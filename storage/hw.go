package storage

import "github.com/ringbroker/ringbroker/invariants"

// High watermark and log end.
//
// A log has two upper offsets: the log end (LogEndOffset, what its writes
// completed) and the high watermark (HighWatermark, what consumers may
// read). A log opens in local mode, where the high watermark is the log
// end, advanced by each completed group exactly as a single node needs;
// nothing else changes and nothing costs more. SetHighWatermark switches
// it to replicated mode, Kafka's: completed writes move only the log end
// (waking AddEndWaiter waiters, a leader's follower fetches), and the
// high watermark moves when the replication layer says so (the leader:
// the smallest log end of its in-sync replicas; a follower: its leader's
// high watermark). FollowWrites goes back to local mode.
//
//	logStart <= hw <= end <= nextOffset
//
// The high watermark never goes back, except that TruncateTo below it
// lowers it to the truncation point (a follower cutting a divergent
// tail), and it is never below the log start (raised with it, as
// Kafka's updateLogStartOffset does). A log opened with
// Options.Replicated starts in replicated mode from its checkpointed high
// watermark (hw_checkpoint.go); otherwise it opens in local mode with
// hw = end.

// LogEndOffset is the offset after the last completed write: what a
// follower may read (ReadReplica) and the leader's own position in its
// ISR.
func (l *Log) LogEndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.end
}

// Replicated reports whether the log is in replicated mode
// (SetHighWatermark was called and FollowWrites was not since).
func (l *Log) Replicated() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.replicated
}

// SetHighWatermark switches the log to replicated mode, if it is not
// already, and sets the high watermark to hw clamped to [current high
// watermark, log end]: it never goes back here. It returns the high
// watermark now. When it advanced, the high-watermark waiters (AddWaiter,
// HWChanged) are woken on the caller's goroutine, after the lock is
// released. Safe from any goroutine.
func (l *Log) SetHighWatermark(hw int64) int64 {
	l.mu.Lock()
	l.replicated = true
	hw = min(max(hw, l.hw), l.end)
	return l.moveHWAndUnlock(hw)
}

// FollowWrites switches the log back to local mode: the high watermark
// is the log end again (it moves up to it at once, waking waiters) and
// follows completed writes. For a partition whose replicas shrank to
// this node alone.
func (l *Log) FollowWrites() {
	l.mu.Lock()
	l.replicated = false
	l.moveHWAndUnlock(l.end)
}

// moveHWAndUnlock sets the high watermark to hw (>= the current one),
// releases l.mu, then wakes the high-watermark waiters if it moved.
// REQUIRES: l.mu held.
func (l *Log) moveHWAndUnlock(hw int64) int64 {
	if hw <= l.hw {
		hw = l.hw
		l.mu.Unlock()
		return hw
	}
	l.hw = hw
	if invariants.Enabled {
		l.checkLogStartLocked()
	}
	ws := l.waiters
	l.waiters = nil
	if l.hwChan != nil {
		close(l.hwChan)
		l.hwChan = nil
	}
	l.mu.Unlock()
	for _, w := range ws {
		w.HWAdvanced(hw)
	}
	return hw
}
