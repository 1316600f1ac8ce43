package storage

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ringbroker/ringbroker/invariants"
)

// DeleteRecords moves the log start offset up to offset (Kafka
// DeleteRecords; the low watermark), then deletes segments entirely below
// it. offset must be <= the high watermark; -1 means the high watermark.
// Returns the new log start offset.
func (l *Log) DeleteRecords(offset int64) (int64, error) {
	if l.dirState.isOffline() {
		return 0, l.dirState.offlineErr()
	}
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.mu.Lock()
	if offset == -1 {
		offset = l.hw
	}
	if hw := l.hw; offset < 0 || offset > hw {
		l.mu.Unlock()
		return 0, fmt.Errorf("%w: delete records to %d, high watermark %d", ErrOffsetOutOfRange, offset, hw)
	}
	if offset > l.logStart {
		l.logStart = offset
	}
	if invariants.Enabled {
		l.checkLogStartLocked()
	}
	lso := l.logStart
	victims := l.deletablePrefixLocked(func(s, next *segment) bool { return next.base <= lso })
	l.mu.Unlock()
	n, err := l.deleteSegments(victims)
	if n == 0 {
		// The log start moved all the same (deleteSegments cuts the epoch
		// cache when it deletes).
		err = errors.Join(err, l.truncateEpochsFromStart())
	}
	return lso, err
}

// EnforceRetention deletes whole non-active segments past retention.ms
// (judged by the segment's largest timestamp, as Kafka does) or beyond
// retention.bytes (oldest first), and those below the log start offset.
// The broker calls it periodically (log.retention.check.interval.ms).
// With cleanup.policy=compact alone (NoDeleteRetention) only the log start
// offset deletes: retention.ms and retention.bytes do not apply, as in
// Kafka. Returns how many segments were deleted.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	if l.dirState.isOffline() {
		return 0, nil // an offline dir is left as it is (logdir_failure.go)
	}
	nowMs := now.UnixMilli()
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.mu.Lock()
	retain := !l.cfg.NoDeleteRetention
	var total int64
	for _, s := range l.segments {
		total += s.size.Load()
	}
	victims := l.deletablePrefixLocked(func(s, next *segment) bool {
		size := s.size.Load()
		ts := s.maxTs
		if ts < 0 {
			ts = s.createdNs / int64(time.Millisecond)
		}
		// Only segments wholly below the high watermark go by time or
		// size, as in Kafka (deletableSegments): a replicated log keeps
		// what its followers have not yet. In local mode every rolled
		// segment is below it.
		del := next.base <= l.logStart ||
			next.base <= l.hw && retain && l.cfg.RetentionMs >= 0 && nowMs-ts > l.cfg.RetentionMs ||
			next.base <= l.hw && retain && l.cfg.RetentionBytes >= 0 && total-size >= l.cfg.RetentionBytes
		if del {
			total -= size
		}
		return del
	})
	l.requestIdleRollLocked(now.UnixNano())
	l.mu.Unlock()
	return l.deleteSegments(victims)
}

// requestIdleRollLocked asks the writer to roll the active segment of an
// idle compacted log once it is older than segment.ms (max.compaction.lag.ms
// when shorter; never before TimeRollMinMs). The active segment is never
// cleaned and a roll otherwise happens only on append, so without this the
// last records written to a partition that went quiet would never be
// compacted. REQUIRES: l.mu held.
func (l *Log) requestIdleRollLocked(nowNs int64) {
	act := l.active()
	if !l.cfg.Compact || l.closing || l.head != nil || act.size.Load() == 0 ||
		nowNs-act.createdNs < max(l.cfg.rollMs(), l.cfg.TimeRollMinMs)*int64(time.Millisecond) {
		return
	}
	l.idleRoll = true
	l.signal()
}

// deletablePrefixLocked returns the longest prefix of non-active segments
// for which del(segment, its successor) holds. Nothing changes yet: the
// caller deletes them with deleteSegments. REQUIRES: l.mu and l.swapMu
// held.
func (l *Log) deletablePrefixLocked(del func(s, next *segment) bool) []*segment {
	n := 0
	for n < len(l.segments)-1 && del(l.segments[n], l.segments[n+1]) {
		n++
	}
	if n == 0 {
		return nil
	}
	return slices.Clone(l.segments[:n])
}

// deleteSegments deletes victims (from deletablePrefixLocked, under the
// same swapMu hold, so they are still the first segments of the list) and
// returns how many went.
//
// A victim holding bytes no fdatasync covered yet (a rolled segment whose
// background flush has not run yet, or failed) is fdatasync'd before it
// leaves the list. Once it has left, nothing holds the recovery point
// below it, and its unlink is not durable until the directory is fsync'd:
// a power loss can bring the file back, torn, below a checkpointed
// recovery point (Open would trust it unscanned) or above flushed
// segments (a scan would cut the log there and delete everything after
// it, flushed data included). Synced, a victim that comes back is an
// intact prefix of the log, which the next retention check deletes again
// (it is below the log start, or past retention, as before). The sync is
// the one the background flusher owed the segment anyway, so deleting
// costs no directory fsync: Kafka's deleteSegments renames and deletes
// asynchronously without one too.
//
// A victim whose sync fails stays, with every later one; the next
// retention check tries again. REQUIRES: l.swapMu held; l.mu not held.
func (l *Log) deleteSegments(victims []*segment) (int, error) {
	if len(victims) == 0 {
		return 0, nil
	}
	n, syncErr := l.syncVictims(victims)
	if n == 0 {
		return 0, syncErr
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, errors.Join(syncErr, ErrClosed)
	}
	l.cutSegmentsLocked(victims[:n])
	l.mu.Unlock()
	return n, errors.Join(syncErr, l.dropSegments(victims[:n]), l.truncateEpochsFromStart())
}

// syncVictims fdatasyncs (indexes too, as the background flusher would)
// every victim not yet fully synced, lowest first, and returns how many of
// them, from the first, are safe to delete. REQUIRES: l.mu not held.
func (l *Log) syncVictims(victims []*segment) (int, error) {
	for i, s := range victims {
		l.mu.RLock()
		unsynced := s.syncedTo < s.next // a rolled segment's next no longer changes
		l.mu.RUnlock()
		if !unsynced {
			continue
		}
		err := s.syncIndexes()
		if err == nil {
			err = l.datasync(s.f)
		}
		if err != nil {
			return i, fmt.Errorf("log %s: fdatasync of segment %d before deleting it: %w", l.dir, s.base, err)
		}
		l.mu.Lock()
		s.syncedTo = s.next
		l.updateRecoveryPointLocked()
		l.mu.Unlock()
	}
	return len(victims), nil
}

// cutSegmentsLocked removes victims, the first segments of the list,
// advancing the log start offset to the first remaining segment.
// REQUIRES: l.mu held.
func (l *Log) cutSegmentsLocked(victims []*segment) {
	n := len(victims)
	if invariants.Enabled {
		invariants.Check(n < len(l.segments) && l.segments[n-1] == victims[n-1] && l.segments[0] == victims[0],
			"log %s: segments to delete are no longer the first %d of the list", l.dir, n)
	}
	l.segments = append(l.segments[:0], l.segments[n:]...)
	if b := l.segments[0].base; b > l.logStart {
		l.logStart = b
		// Kafka's updateLogStartOffset: the high watermark is never below
		// the log start (a follower's, behind its leader's log start).
		l.hw = max(l.hw, b)
	}
	if invariants.Enabled {
		l.checkLogStartLocked()
	}
}

// dropSegments unlinks the files and drops the log's reference; readers
// holding a Region keep the descriptors until they release.
func (l *Log) dropSegments(victims []*segment) error {
	var first error
	for _, s := range victims {
		l.logf("log %s: deleting segment %d", l.dir, s.base)
		if err := s.unlink(); err != nil && first == nil {
			first = err
		}
		s.release()
	}
	return first
}
