package storage

import (
	"errors"
	"fmt"
	"sort"

	"github.com/ringbroker/ringbroker/invariants"
)

// truncateReq is a TruncateTo handed to the writer goroutine.
type truncateReq struct {
	offset int64
	// startAt: TruncateFullyAndStartAt (offset at or past the log end, or
	// anywhere on an empty log).
	startAt bool
	done    chan error // buffered: the writer never blocks on it
}

// TruncateTo removes every record at or above offset: what a follower
// does at the divergence point OffsetForLeaderEpoch found (Kafka's
// UnifiedLog.truncateTo). It is the only call besides retention,
// DeleteRecords and compaction that deletes data, and it deletes only on
// this explicit request, never on an error.
//
// Semantics (Kafka's, but for where the log ends):
//
//   - offset >= log end offset: nothing to remove. The epoch cache is still
//     cut at the log end (an entry there belongs to an epoch with no data
//     here). Returns nil.
//   - Otherwise segments starting above offset are deleted and the one
//     holding it is cut before the batch containing offset (a batch is
//     never split: the new log end is that batch's base offset, or offset
//     itself when it falls in a gap compaction left; Kafka sets its log end
//     to offset in both cases). That segment becomes the active one, its
//     indexes keep the entries below the cut, and the high watermark,
//     recovery point and cleaner's first dirty offset are lowered to the
//     new log end, the log start offset too if it was above.
//   - Every segment starting above offset (offset below the first
//     segment's base): Kafka's truncateFullyAndStartAt(offset), a new
//     empty segment at offset replaces them all.
//   - The leader-epoch cache drops the entries starting at or after the
//     new log end (truncateFromEnd), and its file is rewritten. That is
//     the last step: an error from it (not ErrLogFailed) comes with the
//     records already removed, and calling TruncateTo again retries the
//     file (the file left behind may hold entries past the log end, which
//     the next open cuts; it never lacks one).
//
// Durability and crash safety: when TruncateTo returns nil the truncation
// is durable. Each step leaves a log that recovery opens as a prefix of
// the old one (never a hole): the in-memory state is lowered first (no
// read sees the removed records afterwards), then whole segments are
// unlinked highest base first, each followed by a directory fsync, then
// the cut segment is ftruncate'd and fdatasync'd, then the epoch file is
// rewritten (a stale file holding entries past the log end is cut back at
// the next open). A failure after the in-memory state was lowered marks
// the log failed (ErrLogFailed): its disk holds a prefix of the old log,
// which the next open recovers.
//
// A recovery point checkpointed before the truncation may lie above the
// new log end; a later open would trust, unscanned, every segment below
// the one holding it. So until the log end passes the highest recovery
// point this log ever had, a roll fdatasyncs the segment it closes before
// the new segment is created (Log.roll); Kafka instead rewrites the
// recovery-point checkpoint right after truncating. The broker may
// checkpoint too (Manager.Checkpoint) but need not.
//
// Concurrency: TruncateTo blocks until done; call it from one goroutine
// at a time per log (the replica fetcher). It pauses this log's cleaner
// first (Kafka's abortAndPauseCleaning: a running round sees the abort at
// its next batch and gives up before its swap; l.cleaning is held until
// the end so no round starts), then takes l.swapMu, which retention and
// DeleteRecords also take, so none of them runs meanwhile. The work itself
// runs on the log's writer goroutine between two groups: a group already
// taken completes first; appends still queued are written after the
// truncation, at the new log end (an Append gets offsets from there; an
// AppendReplica whose first batch no longer starts at the log end fails).
// The writer first waits for the background flusher of rolled segments to
// go idle, so no flush of a segment being cut or deleted is in flight.
// Reads in flight keep their segment's descriptor (Region pins): a deleted
// segment's bytes stay readable through it, but a Region over the cut
// part of the active segment becomes short, which the sender must treat
// as a failed transfer (Kafka's FileRecords.writeTo throws in that case).
// Lock order: l.cleaning, l.swapMu, l.epochFileMu, l.mu.
func (l *Log) TruncateTo(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("log: truncate to negative offset %d", offset)
	}
	return l.runTruncate(&truncateReq{offset: offset, done: make(chan error, 1)})
}

// ErrStartAtBelowEnd is TruncateFullyAndStartAt's answer to an offset
// below the log end of a log that holds records (log start below log
// end): records at or above it would be dropped, which only TruncateTo (a
// proven divergence point) may do.
var ErrStartAtBelowEnd = errors.New("log: start offset below the log end")

// TruncateFullyAndStartAt replaces the whole log by an empty one starting
// at offset, which must be at or past the log end (ErrStartAtBelowEnd
// otherwise) unless the log is empty (log start == log end): Kafka's
// truncateFullyAndStartAt as a follower uses it when its leader's log
// starts past the follower's log end (the leader's retention or
// DeleteRecords removed every record the follower has, and the records
// between its end and the leader's start are gone), and, on an empty log,
// to move the log start back to the base offset of the first batch it
// gets when that batch starts below the log start and ends at or after it
// (Kafka's Partition handling UnexpectedAppendOffsetException: the log
// start fell inside a batch by DeleteRecords, and an empty log, e.g. one
// whose unsynced records a power loss took while the log start checkpoint
// survived, can take that batch only from its base offset). No record is
// dropped then: the log has none. Every
// segment goes, the log start, log end, high watermark and recovery point
// become offset, and the leader-epoch cache is emptied (Kafka's
// clearAndFlush): nothing the log held has a place in the leader's log any
// more. Same concurrency and crash rules as TruncateTo: the new empty
// segment is created and its name made durable before the old segments
// are unlinked, highest first, so a crash leaves the old log (or a prefix
// of it) beside the empty segment at offset, which the next open reads as
// a log with a gap, and the fetcher resets again.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	return l.runTruncate(&truncateReq{offset: offset, startAt: true, done: make(chan error, 1)})
}

// runTruncate hands req to the writer and waits; see TruncateTo.
func (l *Log) runTruncate(req *truncateReq) error {
	if l.dirState.isOffline() {
		return l.dirState.offlineErr() // nothing is cut from an offline dir
	}
	l.truncating.Add(1)
	l.cleaning.Lock()
	defer func() {
		l.cleaning.Unlock()
		l.truncating.Add(-1)
	}()
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	if l.swapUnfinished != nil {
		// A committed cleaner swap's later steps failed: finish them
		// before segments move under them.
		if err := l.swapUnfinished(); err != nil {
			return fmt.Errorf("finishing an earlier cleaned segment's swap: %w", err)
		}
		l.swapUnfinished = nil
	}
	l.mu.Lock()
	switch {
	case l.closing:
		l.mu.Unlock()
		return ErrClosed
	case l.failed != nil:
		err := fmt.Errorf("%w: %v", ErrLogFailed, l.failed)
		l.mu.Unlock()
		return err
	}
	l.truncReq = req
	if l.writerState != writerInline { // the inline appender wakes the writer when done
		l.writerState = writerBusy
	}
	l.mu.Unlock()
	l.signal()
	return <-req.done
}

// truncate performs a TruncateTo on the writer goroutine; see TruncateTo.
// REQUIRES: writer goroutine; l.mu not held; the caller of TruncateTo
// holds l.cleaning and l.swapMu.
func (l *Log) truncate(target int64, now int64) error {
	l.waitRolledFlushed()
	oldEnd := l.nextOffset
	if target >= oldEnd {
		return l.truncateEpochsFromEnd(l.nextOffset)
	}
	l.mu.RLock()
	segs := append([]*segment(nil), l.segments...)
	rpBefore := l.recoveryPoint
	l.mu.RUnlock()
	k := sort.Search(len(segs), func(i int) bool { return segs[i].base > target }) - 1
	if k < 0 {
		return l.truncateFully(target, segs, now)
	}
	old := segs[k]
	size := old.size.Load()
	cut, newNext := size, target
	if pos, found := old.findOffset(target, size); found {
		h := new([batchHeaderSize]byte)
		bi, ok := old.readHeader(pos, size, h)
		if !ok {
			return fmt.Errorf("truncate %s to %d: cannot read the batch at byte %d", old.path, target, pos)
		}
		cut = pos
		if bi.baseOffset < target {
			newNext = bi.baseOffset // the whole batch holding target goes
		}
	}
	// The segment that stays becomes the active one: a rolled one is
	// reopened with writable, preallocated indexes (another segment value
	// over the same files; readers keep the old one's descriptors).
	s := old
	if k < len(segs)-1 {
		var err error
		if s, err = l.reopenActive(old.base, now); err != nil {
			return fmt.Errorf("truncate: reopening segment %d: %w", old.base, err)
		}
		s.createdNs = old.createdNs
		s.namesDurable.Store(true)
	}
	// Index entries at or past the cut go (Kafka's index truncateTo).
	s.idx.n.Store(int64(sort.Search(int(s.idx.entries()), func(i int) bool {
		_, p := s.idx.offsetEntry(int64(i))
		return int64(p) >= cut
	})))
	s.tidx.n.Store(int64(sort.Search(int(s.tidx.entries()), func(i int) bool {
		_, rel := s.tidx.timeEntry(int64(i))
		return s.base+int64(rel) >= newNext
	})))
	s.maxTs, s.maxTsOffset = -1, -1
	if ts, ok := s.tidx.lastTime(); ok {
		_, rel := s.tidx.timeEntry(s.tidx.entries() - 1)
		s.maxTs, s.maxTsOffset = ts, s.base+int64(rel)
	}
	s.maxTs, s.maxTsOffset = l.indexTail(s, cut)
	s.bytesSinceIndex = int(cut)
	if n := s.idx.entries(); n > 0 {
		_, p := s.idx.offsetEntry(n - 1)
		s.bytesSinceIndex = int(cut - int64(p))
	}
	victims := segs[k+1:]

	l.mu.Lock()
	l.segments = append(append(l.segments[:0], segs[:k]...), s)
	s.size.Store(cut)
	s.next = newNext
	s.syncedTo = min(s.syncedTo, newNext)
	l.lowerOffsetsLocked(newNext)
	if invariants.Enabled {
		l.checkSegmentOrder()
		l.checkOffsetsLocked()
	}
	l.mu.Unlock()
	if s != old {
		old.release() // the log's reference; the files live on in s
	}
	l.staleRecoveryPoint = max(l.staleRecoveryPoint, rpBefore)
	l.logf("log %s: truncated to offset %d (log end was %d)", l.dir, newNext, oldEnd)

	// Disk: the highest segments first, so that every crash leaves a prefix.
	if err := l.dropSegmentsDurably(victims); err != nil {
		return l.failTruncate(err)
	}
	if err := l.fs.Truncate(s.f, cut); err != nil {
		return l.failTruncate(fmt.Errorf("truncate %s to %d: %w", s.path, cut, err))
	}
	if err := l.datasync(s.f); err != nil {
		return l.failTruncate(err)
	}
	l.mu.Lock()
	s.syncedTo = newNext
	l.updateRecoveryPointLocked()
	// Aborted transactions whose marker was cut go with it (an unclean
	// open would drop them too).
	l.dropTxnEntriesPast(newNext)
	l.mu.Unlock()
	return l.truncateEpochsFromEnd(newNext)
}

// truncateFully replaces every segment (all of them start above target)
// by a new empty one at target: Kafka's truncateFullyAndStartAt. The new
// segment is created (and its name made durable) before the old ones are
// unlinked, highest first, so a crash leaves the old log or a prefix of
// it beside an empty segment below it. REQUIRES: as truncate.
func (l *Log) truncateFully(target int64, segs []*segment, now int64) error {
	s, err := createSegment(l.fs, l.dir, target, &l.cfg, now)
	if err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		s.closeFiles()
		l.fs.Remove(s.path)
		return fmt.Errorf("truncate: %w", err)
	}
	s.namesDurable.Store(true)
	l.mu.Lock()
	rpBefore := l.recoveryPoint
	l.segments = append(l.segments[:0], s)
	l.lowerOffsetsLocked(target)
	if invariants.Enabled {
		l.checkSegmentOrder()
		l.checkOffsetsLocked()
	}
	l.mu.Unlock()
	l.staleRecoveryPoint = max(l.staleRecoveryPoint, rpBefore)
	l.tsSoFar, l.tsOffSoFar = -1, -1
	l.logf("log %s: truncated fully, starting at offset %d", l.dir, target)
	if err := l.dropSegmentsDurably(segs); err != nil {
		return l.failTruncate(err)
	}
	return l.truncateEpochsFromEnd(target)
}

// startAt performs a TruncateFullyAndStartAt on the writer goroutine.
// REQUIRES: as truncate.
func (l *Log) startAt(target int64, now int64) error {
	l.waitRolledFlushed()
	l.mu.RLock()
	empty := l.logStart == l.nextOffset
	l.mu.RUnlock()
	if target < l.nextOffset && !empty {
		return fmt.Errorf("%w: start at %d, log end %d", ErrStartAtBelowEnd, target, l.nextOffset)
	}
	l.mu.RLock()
	segs := append([]*segment(nil), l.segments...)
	l.mu.RUnlock()
	s, err := createSegment(l.fs, l.dir, target, &l.cfg, now)
	if err != nil {
		return fmt.Errorf("start at %d: %w", target, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		s.closeFiles()
		l.fs.Remove(s.path)
		return fmt.Errorf("start at %d: %w", target, err)
	}
	s.namesDurable.Store(true)
	oldStart, oldEnd := l.logStart, l.nextOffset
	l.mu.Lock()
	l.segments = append(l.segments[:0], s)
	l.nextOffset, l.end, l.hw, l.logStart = target, target, target, target
	l.recoveryPoint, l.firstDirty = target, target
	l.unflushedMsgs = 0
	l.tsSoFar, l.tsOffSoFar = -1, -1
	l.epochs.entries = nil
	if invariants.Enabled {
		l.checkSegmentOrder()
		l.checkOffsetsLocked()
	}
	l.mu.Unlock()
	l.warnf("log %s: every record [%d, %d) dropped, the log starts over at offset %d (the leader's log start is past this log's end)", l.dir, oldStart, oldEnd, target)
	if err := l.dropSegmentsDurably(segs); err != nil {
		return l.failTruncate(err)
	}
	l.epochFileMu.Lock()
	defer l.epochFileMu.Unlock()
	return l.persistEpochs()
}

// lowerOffsetsLocked sets the log end to end and lowers everything that
// must not pass it. REQUIRES: l.mu held; writer goroutine.
func (l *Log) lowerOffsetsLocked(end int64) {
	l.nextOffset = end
	l.end = min(l.end, end)
	l.hw = min(l.hw, end)
	l.recoveryPoint = min(l.recoveryPoint, end)
	l.logStart = min(l.logStart, end)
	l.firstDirty = min(l.firstDirty, end)
	l.unflushedMsgs = 0
	act := l.active()
	l.tsSoFar, l.tsOffSoFar = act.maxTs, act.maxTsOffset
}

// dropSegmentsDurably unlinks victims, highest base first, fsyncing the
// directory after each, and drops the log's references.
func (l *Log) dropSegmentsDurably(victims []*segment) error {
	for i := len(victims) - 1; i >= 0; i-- {
		s := victims[i]
		l.logf("log %s: deleting segment %d (truncation)", l.dir, s.base)
		err := s.unlink()
		if err == nil {
			err = l.fs.SyncDir(l.dir)
		}
		if err != nil {
			for _, r := range victims[:i+1] {
				r.release()
			}
			return err
		}
		s.release()
	}
	return nil
}

// failTruncate marks the log failed after a truncation step failed with
// its in-memory state already lowered. REQUIRES: l.mu not held.
func (l *Log) failTruncate(err error) error {
	err = fmt.Errorf("truncation: %w", err)
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
	}
	l.mu.Unlock()
	return errors.Join(ErrLogFailed, err)
}
