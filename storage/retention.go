package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/ringbroker/ringbroker/invariants"
)

// DeleteRecords moves the log start offset up to offset (Kafka
// DeleteRecords; the low watermark), then deletes segments entirely below
// it. offset must be <= the high watermark; -1 means the high watermark.
// Returns the new log start offset.
func (l *Log) DeleteRecords(offset int64) (int64, error) {
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
	victims := l.cutSegmentsLocked(func(s, next *segment) bool { return next.base <= lso })
	l.mu.Unlock()
	return lso, errors.Join(l.dropSegments(victims), l.truncateEpochsFromStart())
}

// EnforceRetention deletes whole non-active segments past retention.ms
// (judged by the segment's largest timestamp, as Kafka does) or beyond
// retention.bytes (oldest first), and those below the log start offset.
// The broker calls it periodically (log.retention.check.interval.ms).
// With cleanup.policy=compact alone (NoDeleteRetention) only the log start
// offset deletes: retention.ms and retention.bytes do not apply, as in
// Kafka. Returns how many segments were deleted.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	nowMs := now.UnixMilli()
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.mu.Lock()
	retain := !l.cfg.NoDeleteRetention
	var total int64
	for _, s := range l.segments {
		total += s.size.Load()
	}
	victims := l.cutSegmentsLocked(func(s, next *segment) bool {
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
	if len(victims) == 0 {
		return 0, nil
	}
	return len(victims), errors.Join(l.dropSegments(victims), l.truncateEpochsFromStart())
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

// cutSegmentsLocked removes the longest prefix of non-active segments for
// which del(segment, its successor) holds, advancing the log start offset
// to the first remaining segment. REQUIRES: l.mu held.
func (l *Log) cutSegmentsLocked(del func(s, next *segment) bool) []*segment {
	n := 0
	for n < len(l.segments)-1 && del(l.segments[n], l.segments[n+1]) {
		n++
	}
	if n == 0 {
		return nil
	}
	victims := make([]*segment, n)
	copy(victims, l.segments[:n])
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
	return victims
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
