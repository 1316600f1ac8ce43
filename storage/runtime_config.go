package storage

import (
	"errors"
	"math"
	"sync"
	"time"
)

// Changing a topic's config on an open log (AlterConfigs) without
// reopening it.
//
// Concurrency: Log.cfg and Log.pol are read in two ways (see append.go,
// retention.go):
//
//   - under l.mu: SegmentBytes and SegmentMs (takeGroup, needRoll),
//     RetentionMs and RetentionBytes (EnforceRetention), the policy in
//     decide, the compaction fields (the cleaner's snapshot, needRoll). Writing these under l.mu.Lock is race-free at any time.
//   - by the writer goroutine WITHOUT the lock while it writes a group:
//     pol.flushMessages and pol.flushIntervalNs (syncAfterGroup),
//     LogAppendTime (writeGroup), IndexIntervalBytes (indexGroup),
//     IndexMaxBytes (createSegment on roll). These may only change while
//     the writer is at a safe point: parked with nothing queued
//     (writerIdle or writerFlushWait under l.mu: no write in flight, and
//     the only thing it may do before taking l.mu again is a periodic
//     fdatasync, which reads none of these; a queued append first sets
//     writerBusy), or running on its own goroutine between groups (a
//     Waiter's HWAdvanced, which runs after completeGroup released l.mu).
//     A writer parked in writerFlushWait is woken after the change so its
//     flush timer follows the new flush.ms.
//
// SetConfig therefore applies the first set at once and the second set at
// the first safe point: at once when the writer is idle, else from a
// Waiter that fires after the next completed group, polling for idleness
// meanwhile (a group that fails completes without firing waiters).
//
// Fields never changed at runtime: AppendLingerMs (Append reads
// pol.lingerNs without the lock from any goroutine), AppendBatchMaxBytes,
// AppendPendingMaxBytes and AppendInline (ringbroker broker keys, not topic
// keys). An inline appender holding the writer role (writerInline) is not
// parked: SetConfig waits for it like for a busy writer.
//
// Rejected: closing and reopening the log (Partition.Log is read without a
// lock by the request path, and a reopen would stall produce and fetch);
// making the fields atomics (an edit of the writer's hot path for a rare
// admin operation).

// ErrConfigPending is returned by SetConfig when the writer did not reach a
// safe point within the wait: the lock-guarded settings (segment.bytes,
// segment.ms, retention.*) are applied, the writer-side ones (flush.*,
// message.timestamp.type, index sizes) take effect when the log reopens.
var ErrConfigPending = errors.New("log: writer busy; flush/timestamp/index settings apply at next open")

// setConfigWaitMax bounds how long SetConfig waits for the writer.
const setConfigWaitMax = 5 * time.Second

// SetConfig changes the log's topic-level settings (segment.bytes,
// segment.ms, retention.ms, retention.bytes, flush.messages, flush.ms,
// message.timestamp.type, index.interval.bytes, segment.index.bytes) while
// it is open. It may wait (up to a few seconds) for the writer goroutine to
// reach a safe point, so it must not be called on a latency-critical
// thread. The append-tuning fields of cfg are ignored.
func (l *Log) SetConfig(cfg Config) error {
	l.mu.Lock()
	l.cfg.SegmentBytes = min(cfg.SegmentBytes, math.MaxInt32) // u32 index positions, as in Open
	l.cfg.SegmentMs = cfg.SegmentMs
	l.cfg.RetentionMs = cfg.RetentionMs
	l.cfg.RetentionBytes = cfg.RetentionBytes
	l.cfg.Compact, l.cfg.NoDeleteRetention = cfg.Compact, cfg.NoDeleteRetention
	l.cfg.DeleteRetentionMs, l.cfg.MinCleanableDirtyRatio = cfg.DeleteRetentionMs, cfg.MinCleanableDirtyRatio
	l.cfg.MinCompactionLagMs, l.cfg.MaxCompactionLagMs = cfg.MinCompactionLagMs, cfg.MaxCompactionLagMs
	if l.closed || l.writerParkedEmptyLocked() {
		l.applyWriterConfig(cfg)
		l.mu.Unlock()
		l.signal() // re-decide: the flush timer may be for the old flush.ms
		return nil
	}
	a := &configApplier{l: l, cfg: cfg, done: make(chan struct{})}
	l.waiters = append(l.waiters, a)
	l.mu.Unlock()

	deadline := time.Now().Add(setConfigWaitMax)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-a.done:
			return nil
		case <-tick.C:
		}
		l.mu.Lock()
		if !a.settled && (l.closed || l.writerParkedEmptyLocked()) {
			a.applyLocked()
		}
		applied := a.settled
		if !applied && time.Now().After(deadline) {
			a.settled = true // the waiter, if it fires later, does nothing
			l.mu.Unlock()
			l.RemoveWaiter(a)
			return ErrConfigPending
		}
		l.mu.Unlock()
		if applied {
			l.RemoveWaiter(a)
			l.signal() // as above: re-arm the flush timer
			return nil
		}
	}
}

// writerParkedEmptyLocked reports the parked safe point (see above).
// REQUIRES: l.mu held.
func (l *Log) writerParkedEmptyLocked() bool {
	return !l.closing && (l.writerState == writerIdle || l.writerState == writerFlushWait)
}

// applyWriterConfig sets the fields the writer reads without the lock.
// REQUIRES: l.mu held and the writer at a safe point.
func (l *Log) applyWriterConfig(cfg Config) {
	l.cfg.FlushMessages = cfg.FlushMessages
	l.cfg.FlushMs = cfg.FlushMs
	l.cfg.LogAppendTime = cfg.LogAppendTime
	l.cfg.IndexIntervalBytes = cfg.IndexIntervalBytes
	l.cfg.IndexMaxBytes = cfg.IndexMaxBytes
	l.pol.flushMessages = l.cfg.FlushMessages
	l.pol.flushIntervalNs = l.cfg.flushIntervalNanos()
}

// configApplier is the Waiter SetConfig registers when the writer is busy.
type configApplier struct {
	l       *Log
	cfg     Config
	once    sync.Once
	done    chan struct{}
	settled bool // applied or given up; guarded by l.mu
}

// applyLocked applies the config once. REQUIRES: l.mu held, writer at a
// safe point.
func (a *configApplier) applyLocked() {
	if a.settled {
		return
	}
	a.settled = true
	a.l.applyWriterConfig(a.cfg)
	a.once.Do(func() { close(a.done) })
}

// HWAdvanced runs on the writer goroutine after a group completed, with
// l.mu released: a safe point.
func (a *configApplier) HWAdvanced(int64) {
	a.l.mu.Lock()
	a.applyLocked()
	a.l.mu.Unlock()
}
