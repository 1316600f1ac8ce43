package storage

import (
	"fmt"
	"math/bits"
	"os"
	"sync"
	"time"

	"github.com/ringbroker/ringbroker/internal/reqtrace"
	"github.com/ringbroker/ringbroker/invariants"
	"github.com/ringbroker/ringbroker/proto"
)

// AppendResult reports the outcome of one Append.
type AppendResult struct {
	BaseOffset     int64 // offset of the first record; -1 on error
	LastOffset     int64 // offset of the last record; -1 on error
	LogAppendTime  int64 // ms, when message.timestamp.type=LogAppendTime; else -1
	LogStartOffset int64
	Err            error // nil, or the write/fdatasync error (the append is not in the log)
	// WriteStartNs, WrittenNs and SyncedNs are when the group's write
	// began and when it and its fdatasync returned, as internal/reqtrace
	// stamps; 0 unless requests are traced (SyncedNs also 0 when the group
	// was not synced).
	WriteStartNs, WrittenNs, SyncedNs int64
}

// AppendCallback receives the result of an accepted Append exactly once.
// It runs on the log's writer goroutine after the log lock is released (an
// inline append's on RunInline's caller: append_inline.go): it must not
// block (post to the caller's queue and wake its loop), and it may call
// back into the log.
type AppendCallback interface{ AppendDone(AppendResult) }

// AppendFunc adapts a function to AppendCallback.
type AppendFunc func(AppendResult)

// AppendDone implements AppendCallback.
func (f AppendFunc) AppendDone(r AppendResult) { f(r) }

// appendReq is one accepted Append: the appender-owned copy of the batch
// bytes plus bookkeeping. Requests are pooled by size class so steady-state
// appends allocate nothing.
type appendReq struct {
	buf        []byte
	cb         AppendCallback
	next       *appendReq
	records    int64
	offsets    int64
	enqueuedNs int64
	class      int
	res        AppendResult
	// replicaBase is an AppendReplica's first offset (replica.go); -1 for
	// an Append, whose offsets the writer assigns.
	replicaBase int64
}

const (
	minClassShift = 9  // 512 B
	maxClassShift = 30 // 1 GiB
)

var reqPools [maxClassShift + 1]sync.Pool

func sizeClass(n int) int {
	if n <= 1<<minClassShift {
		return minClassShift
	}
	return bits.Len(uint(n - 1))
}

func getReq(n int) *appendReq {
	c := sizeClass(n)
	if r, ok := reqPools[c].Get().(*appendReq); ok {
		return r
	}
	return &appendReq{buf: make([]byte, 0, 1<<c), class: c}
}

func putReq(r *appendReq) {
	r.cb, r.next, r.res = nil, nil, AppendResult{}
	reqPools[r.class].Put(r)
}

// Append validates batches (one or more whole v2 record batches back to
// back: framing, magic and CRC32C), copies them into an appender-owned
// buffer and queues them for writing. It never blocks on I/O.
//
// On a non-nil return (ErrCorruptBatch, ErrInvalidBatch, ErrBacklog,
// ErrClosed, ErrLogFailed) nothing was queued and cb is never called.
// Otherwise cb is called exactly once, on the writer goroutine, after the
// write (and, when the flush policy asks, its fdatasync) completed or
// failed. The caller may reuse batches as soon as Append returns.
//
// Offsets are assigned in the order Append calls take the log lock.
func (l *Log) Append(batches []byte, cb AppendCallback) error {
	_, offsets, records, err := validateBatches(batches)
	if err != nil {
		return err
	}
	return l.enqueue(batches, offsets, records, cb)
}

// AppendBatch is Append for one batch the caller has already validated:
// rb's framing was checked when the view was made (proto.ParseRecordBatch)
// and the caller checked or restamped its CRC (the broker's produce path
// validates each batch in place before deciding anything), so its header
// is parsed once on the produce path. A negative lastOffsetDelta is still
// refused (ErrInvalidBatch): the log's offsets must only grow.
func (l *Log) AppendBatch(rb proto.RecordBatch, cb AppendCallback) error {
	lod := rb.LastOffsetDelta()
	if lod < 0 {
		return fmt.Errorf("%w: lastOffsetDelta %d", ErrInvalidBatch, lod)
	}
	return l.enqueue(rb.Bytes(), int64(lod)+1, int64(rb.RecordCount()), cb)
}

func (l *Log) enqueue(batches []byte, offsets, records int64, cb AppendCallback) error {
	r := getReq(len(batches))
	r.buf = append(r.buf[:0], batches...)
	r.cb, r.records, r.offsets = cb, records, offsets
	r.replicaBase = -1
	if testAppendInline {
		claimed, err := l.enqueueReqMode(r, true)
		if claimed {
			l.RunInline()
		}
		return err
	}
	return l.enqueueReq(r)
}

// testAppendInline makes every Append and AppendBatch an inline append run
// on its caller at once (AppendBatchInline + RunInline), whatever
// Config.AppendInline says: the package's tests run their whole suite in
// that mode with LOG_APPEND_INLINE=1 (append_inline_test.go). Set only
// before any log is opened.
var testAppendInline bool

// enqueueReq queues a filled request (Append's or AppendReplica's).
func (l *Log) enqueueReq(r *appendReq) error {
	_, err := l.enqueueReqMode(r, false)
	return err
}

// enqueueReqMode queues r; with inline, a request arriving at an idle
// writer and an empty queue makes the caller the writer (claimed: it must
// call RunInline; append_inline.go) instead of waking the writer goroutine.
func (l *Log) enqueueReqMode(r *appendReq, inline bool) (claimed bool, err error) {
	if l.pol.lingerNs > 0 {
		r.enqueuedNs = l.clock.Now().UnixNano()
	}
	l.mu.Lock()
	if err := l.acceptErr(int64(len(r.buf))); err != nil {
		l.mu.Unlock()
		putReq(r)
		return false, err
	}
	if l.tail == nil {
		l.head = r
	} else {
		l.tail.next = r
	}
	l.tail = r
	l.pendingBytes += int64(len(r.buf))
	// See writerState for why each parked state wakes or not.
	wake := l.writerState == writerIdle || l.writerState == writerFlushWait ||
		(l.writerState == writerLingering && l.pendingBytes >= l.pol.batchBytesMax)
	if wake {
		// Claim only what RunInline would write itself: not a group the
		// flush policy fdatasyncs by count (flush.messages=1 is every
		// group), which goes to the writer goroutine at once as before
		// (unflushedMsgs is the writer's, settled when it parked idle).
		if inline && l.writerState == writerIdle && l.head == r && l.pol.lingerNs == 0 &&
			l.unflushedMsgs+r.records < l.pol.flushMessages {
			l.writerState = writerInline
			claimed = true
		} else {
			l.writerState = writerBusy
		}
	}
	l.mu.Unlock()
	if wake && !claimed {
		l.signal()
	}
	return claimed, nil
}

// REQUIRES: l.mu held.
func (l *Log) acceptErr(n int64) error {
	switch {
	case l.closing:
		return ErrClosed
	case l.failed != nil:
		return fmt.Errorf("%w: %v", ErrLogFailed, l.failed)
	case l.dirState.isOffline():
		return l.dirState.offlineErr()
	case l.pendingBytes > 0 && l.pendingBytes+n > l.cfg.AppendPendingMaxBytes:
		return ErrBacklog
	}
	return nil
}

// run is the writer goroutine: it owns the active segment's file offset,
// offset assignment, index appends and the IO backend.
func (l *Log) run() {
	defer close(l.stopped)
	for {
		select {
		case <-l.wake:
		case <-l.timer.C:
		}
		if l.service() {
			return
		}
	}
}

// service performs actions until the policy says idle. It returns true
// when the writer should exit (closing and drained).
func (l *Log) service() bool {
	for {
		now := l.clock.Now().UnixNano()
		l.mu.Lock()
		if l.writerState == writerInline {
			// An appender holds the writer role (append_inline.go); it
			// hands it back, waking us if anything is left to do.
			l.mu.Unlock()
			return false
		}
		// Not parked from here on, whatever woke us (a timer, a retention
		// idle roll, a stale signal): no appender may claim the writer
		// role (enqueueReqMode) while this goroutine acts.
		l.writerState = writerBusy
		l.busySinceNs.Store(now) // this action's start; 0 again when parked
		if l.crash {
			l.head, l.tail, l.pendingBytes = nil, nil, 0
			if r := l.truncReq; r != nil {
				l.truncReq = nil
				r.done <- ErrClosed
			}
			l.mu.Unlock()
			l.busySinceNs.Store(0)
			return true
		}
		st := l.groupStateLocked(now)
		if r := l.truncReq; r != nil {
			// Between groups, before anything queued: see TruncateTo.
			l.truncReq = nil
			l.mu.Unlock()
			if r.startAt {
				r.done <- l.startAt(r.offset, now)
			} else {
				r.done <- l.truncate(r.offset, now)
			}
			continue
		}
		if l.idleRoll {
			l.idleRoll = false
			if l.head == nil && !l.closing && l.failed == nil && l.active().size.Load() > 0 {
				l.mu.Unlock()
				if err := l.roll(now); err != nil {
					l.logf("log %s: rolling an idle compacted segment: %v", l.dir, err)
				}
				continue
			}
		}
		act, wakeAt := l.pol.decide(st)
		switch act {
		case actIdle:
			l.busySinceNs.Store(0)
			if l.closing && l.head == nil {
				l.mu.Unlock()
				return true
			}
			switch {
			case wakeAt == 0:
				l.writerState = writerIdle
			case l.head != nil:
				l.writerState = writerLingering
			default:
				l.writerState = writerFlushWait
			}
			l.mu.Unlock()
			if wakeAt > 0 {
				l.timer.Reset(time.Duration(wakeAt - now))
			}
			return false
		case actSync:
			l.mu.Unlock()
			l.flushAlone(now)
		case actWrite:
			l.takeGroup(now)
			epoch := l.leaderEpoch
			failed := l.failed
			l.mu.Unlock()
			if failed != nil {
				l.completeGroup(fmt.Errorf("%w: %v", ErrLogFailed, failed), false, 0, now)
				continue
			}
			if l.dirState.isOffline() { // queued before: nothing more is written there
				l.completeGroup(l.dirState.offlineErr(), false, 0, now)
				continue
			}
			l.writeGroup(now, epoch)
		}
	}
}

// groupStateLocked is the policy's input at now. REQUIRES: l.mu held; the
// writer role (writer goroutine or an inline appender).
func (l *Log) groupStateLocked(now int64) groupState {
	st := groupState{
		nowNs: now, pendingBytes: l.pendingBytes, unflushedMsgs: l.unflushedMsgs,
		lastFlushNs: l.lastFlushNs, closing: l.closing,
	}
	if l.head != nil {
		st.oldestEnqueuedNs = l.head.enqueuedNs
	}
	if l.failed != nil {
		st.unflushedMsgs = 0 // nothing more to flush on a failed log
	}
	return st
}

// takeGroup pops the next group off the queue into l.group.
// REQUIRES: l.mu held; writer goroutine.
func (l *Log) takeGroup(now int64) {
	act := l.active()
	space := l.cfg.SegmentBytes - act.size.Load()
	if l.needRoll(act, int64(len(l.head.buf)), l.head.offsets, now) {
		space = l.cfg.SegmentBytes // the group starts a new segment
	}
	r := l.head
	n := 1 // an AppendReplica is a group of its own (replica.go)
	if r.replicaBase < 0 {
		n = l.pol.groupCut(func(i int) (int64, bool) {
			if r == nil || r.replicaBase >= 0 {
				return 0, false
			}
			sz := int64(len(r.buf))
			r = r.next
			return sz, true
		}, space)
	}
	l.group = l.group[:0]
	for i := 0; i < n; i++ {
		g := l.head
		l.head = g.next
		g.next = nil
		l.pendingBytes -= int64(len(g.buf))
		l.group = append(l.group, g)
	}
	if l.head == nil {
		l.tail = nil
	}
}

// needRoll reports whether a group starting with a batch of n bytes and
// offsets offsets must go to a new segment: segment.bytes, segment.ms (but
// never a segment younger than TimeRollMinMs), a full index, or relative
// offsets that would not fit the index.
// REQUIRES: writer goroutine; l.mu held (reads s.createdNs).
func (l *Log) needRoll(s *segment, n, offsets int64, now int64) bool {
	size := s.size.Load()
	if size == 0 {
		return false
	}
	return size+n > l.cfg.SegmentBytes ||
		now-s.createdNs >= max(l.cfg.rollMs(), l.cfg.TimeRollMinMs)*int64(time.Millisecond) ||
		s.idx.full() || s.tidx.full() ||
		l.nextOffset+offsets-1-s.base > maxRelativeOffset
}

// writeGroup stamps offsets into l.group, rolls if needed, writes the group
// with one Writev (+ linked fdatasync when the policy says) and completes it.
// A group holding an AppendReplica goes to writeReplicaGroup.
// REQUIRES: writer goroutine; l.mu not held.
func (l *Log) writeGroup(now int64, epoch int32) {
	if l.group[0].replicaBase >= 0 {
		l.writeReplicaGroup(now)
		return
	}
	l.writeGroupAt(now, epoch, false)
}

// writeGroupAt is writeGroup's body; replica: l.group is one AppendReplica
// whose epochs are already assigned, written as it is.
func (l *Log) writeGroupAt(now int64, epoch int32, replica bool) {
	var groupMsgs, groupOffsets, groupBytes int64
	for _, r := range l.group {
		groupMsgs += r.records
		groupOffsets += r.offsets
		groupBytes += int64(len(r.buf))
	}
	l.mu.RLock()
	act := l.active()
	roll := l.needRoll(act, int64(len(l.group[0].buf)), l.group[0].offsets, now)
	l.mu.RUnlock()
	if roll {
		if err := l.roll(now); err != nil {
			l.completeGroup(err, false, 0, now)
			return
		}
		l.mu.RLock() // retention may be replacing the list (cutSegmentsLocked)
		act = l.active()
		l.mu.RUnlock()
	}
	if err := act.createIndexes(); err != nil { // no-op after the first write
		l.completeGroup(err, false, 0, now)
		return
	}
	// The group's epoch starts at its first offset if it is new; the
	// file is written (durably) before the data, as in Kafka.
	if !replica {
		if err := l.assignEpoch(epoch, l.nextOffset); err != nil {
			l.completeGroup(err, false, 0, now)
			return
		}
	}
	appendTime := int64(-1)
	if l.cfg.LogAppendTime && !replica {
		appendTime = now / int64(time.Millisecond)
	}
	next := l.nextOffset
	l.iov = l.iov[:0]
	for _, r := range l.group {
		base := next
		if replica { // the leader's offsets and bytes, untouched
			base = r.replicaBase
			next = base + r.offsets
		} else {
			next, _, _ = stampBatches(r.buf, base, epoch, appendTime)
		}
		r.res = AppendResult{BaseOffset: base, LastOffset: next - 1, LogAppendTime: appendTime}
		l.iov = append(l.iov, r.buf)
	}
	sync := l.pol.syncAfterGroup(now, l.lastFlushNs, l.unflushedMsgs, groupMsgs)
	if sync {
		// Acked after fdatasync means the file's name must survive too;
		// done before the write so a failure leaves nothing to undo.
		if err := l.durableNames(act); err != nil {
			l.completeGroup(err, false, 0, now)
			return
		}
	}
	pos := act.size.Load()
	err := l.writeAll(act, pos, groupBytes, sync)
	if err != nil {
		// Undo whatever part reached the file so the log stays a clean
		// prefix; the next group is written at the same position with the
		// same offsets.
		if terr := l.fs.Truncate(act.f, pos); terr != nil {
			l.mu.Lock()
			l.failed = fmt.Errorf("truncate %s to %d after %v: %w", act.path, pos, err, terr)
			l.mu.Unlock()
		}
		l.completeGroup(err, false, 0, now)
		return
	}
	batches := l.indexGroup(act, pos)
	if l.stats != nil {
		l.stats.AppendWrite(int(groupBytes), batches)
	}
	l.nextOffset = next
	if sync {
		l.unflushedMsgs = 0
		l.lastFlushNs = now
	} else {
		l.unflushedMsgs += groupMsgs
	}
	l.completeGroup(nil, sync, pos+groupBytes, now)
}

// writeAll writes l.iov (total bytes) at pos, retrying short writes, and
// fdatasyncs when sync.
func (l *Log) writeAll(s *segment, pos, total int64, sync bool) error {
	iov := l.iov
	var done int64
	zero := 0
	l.traceStartNs, l.traceWroteNs, l.traceSyncedNs = 0, 0, 0
	if reqtrace.Enabled() {
		l.traceStartNs = reqtrace.Now()
	}
	for done < total {
		var start time.Time
		if sync && l.stats != nil {
			start = time.Now()
		}
		n, synced, err := l.io.Writev(s.f, iov, pos+done, sync)
		if err != nil {
			return err
		}
		if synced && l.stats != nil {
			l.stats.Fsync(time.Since(start))
		}
		done += int64(n)
		if done == total {
			if reqtrace.Enabled() {
				l.traceWroteNs = reqtrace.Now()
				if synced { // a linked write+fdatasync: one stamp for both
					l.traceSyncedNs = l.traceWroteNs
				}
			}
			if sync && !synced {
				err := l.datasync(s.f)
				if reqtrace.Enabled() {
					l.traceSyncedNs = reqtrace.Now()
				}
				return err
			}
			return nil
		}
		if n == 0 {
			if zero++; zero > 16 {
				return fmt.Errorf("write %s at %d: no progress", s.path, pos+done)
			}
		}
		for n > 0 { // advance past what was written
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
	}
	return nil
}

// indexGroup adds sparse index entries for the batches just written and
// returns how many batches they were.
// REQUIRES: writer goroutine.
func (l *Log) indexGroup(s *segment, pos int64) int {
	batches := 0
	for _, r := range l.group {
		for p := 0; p < len(r.buf); {
			bi, _ := parseBatchHeader(r.buf[p:])
			s.indexBatch(pos, bi, l.cfg.IndexIntervalBytes, &l.tsSoFar, &l.tsOffSoFar)
			pos += int64(bi.length)
			p += bi.length
			batches++
		}
	}
	return batches
}

// datasync fdatasyncs f through the IO backend, timing it for Stats.
func (l *Log) datasync(f *os.File) error {
	if l.stats == nil {
		return l.io.Datasync(f)
	}
	start := time.Now()
	err := l.io.Datasync(f)
	l.stats.Fsync(time.Since(start))
	return err
}

// completeGroup publishes a finished group (err == nil: advance the log
// end, and in local mode the high watermark, to l.nextOffset and the
// segment size to end) and runs the callbacks and waiters outside the lock.
func (l *Log) completeGroup(err error, synced bool, end int64, now int64) {
	if err != nil {
		l.ioFailed(err) // logdir_failure.go
	}
	l.mu.Lock()
	if err == nil {
		act := l.active()
		act.size.Store(end)
		act.next = l.nextOffset
		if l.tsSoFar > act.maxTs {
			act.maxTs, act.maxTsOffset = l.tsSoFar, l.tsOffSoFar
		}
		if invariants.Enabled {
			l.checkOffsetsLocked() // before: the high watermark never goes back
		}
		l.end = l.nextOffset
		if synced {
			act.syncedTo = l.nextOffset
		}
		l.updateRecoveryPointLocked()
		l.firing = append(l.firing[:0], l.endWaiters...)
		clear(l.endWaiters)
		l.endWaiters = l.endWaiters[:0]
		if !l.replicated {
			// Local mode: the high watermark follows completed writes.
			l.hw = l.end
			l.firing = append(l.firing, l.waiters...)
			clear(l.waiters)
			l.waiters = l.waiters[:0]
			if l.hwChan != nil {
				close(l.hwChan)
				l.hwChan = nil
			}
		}
	}
	if invariants.Enabled {
		l.checkOffsetsLocked()
	}
	lso := l.logStart
	if l.writerState != writerInline { // an inline appender keeps the role
		l.writerState = writerBusy
	}
	l.mu.Unlock()
	leo := l.nextOffset
	for _, r := range l.group {
		res := r.res
		res.LogStartOffset = lso
		res.WriteStartNs, res.WrittenNs, res.SyncedNs = l.traceStartNs, l.traceWroteNs, l.traceSyncedNs
		if err != nil {
			res = AppendResult{BaseOffset: -1, LastOffset: -1, LogAppendTime: -1, LogStartOffset: lso, Err: err}
		}
		cb := r.cb
		putReq(r)
		if cb != nil {
			cb.AppendDone(res)
		}
	}
	clear(l.group)
	l.group = l.group[:0]
	if err == nil {
		// Local mode: end waiters and high-watermark waiters both see the
		// new end, which is also the high watermark.
		for i, w := range l.firing {
			w.HWAdvanced(leo)
			l.firing[i] = nil
		}
	}
}

// updateRecoveryPointLocked sets the recovery point to the first offset
// not known to be fdatasync'd: the syncedTo of the first segment that is
// not fully synced (rolled segments are synced in the background), else
// the log end. REQUIRES: l.mu held.
func (l *Log) updateRecoveryPointLocked() {
	rp := l.end
	for _, s := range l.segments {
		if s.syncedTo < s.next {
			rp = s.syncedTo
			break
		}
	}
	l.recoveryPoint = max(l.recoveryPoint, rp)
}

// flushAlone fdatasyncs the active segment when flush.ms elapsed with no
// group to piggyback on.
func (l *Log) flushAlone(now int64) {
	l.mu.RLock()
	act := l.active()
	l.mu.RUnlock()
	to := l.nextOffset // writer goroutine: nothing is written meanwhile
	err := l.durableNames(act)
	if err == nil {
		err = l.datasync(act.f)
	}
	if err != nil {
		l.logf("log %s: periodic fdatasync: %v", l.dir, err)
		l.ioFailed(err)
		l.lastFlushNs = now // retry at the next interval, not in a loop
		return
	}
	l.unflushedMsgs = 0
	l.lastFlushNs = now
	l.mu.Lock()
	act.syncedTo = to
	l.updateRecoveryPointLocked()
	l.mu.Unlock()
}

// roll closes the active segment for writes (fdatasync if it holds unsynced
// bytes, final time index entry, trimmed indexes) and starts a new one at
// l.nextOffset. REQUIRES: writer goroutine; l.mu not held.
func (l *Log) roll(now int64) error {
	l.mu.RLock()
	old := l.active()
	l.mu.RUnlock()
	// Not under l.mu (see trimIndexes): an index msync or a slow ftruncate
	// held under the lock stalled every Append caller — the network loops —
	// behind the disk for seconds under write-back pressure.
	if err := old.trimIndexes(); err != nil {
		return err
	}
	if l.nextOffset <= l.staleRecoveryPoint {
		// After a truncation, a checkpointed recovery point may still lie
		// at or above the new segment's base: the next open would then
		// trust old unscanned, so it must be on disk first (TruncateTo).
		err := l.durableNames(old)
		if err == nil {
			err = l.datasync(old.f)
		}
		if err != nil {
			if uerr := old.untrimIndexes(); uerr != nil {
				l.mu.Lock()
				l.failed = uerr
				l.mu.Unlock()
			}
			return err
		}
		l.mu.Lock()
		old.syncedTo = old.next
		l.updateRecoveryPointLocked()
		l.mu.Unlock()
	}
	s, err := createSegment(l.fs, l.dir, l.nextOffset, &l.cfg, now)
	if err != nil {
		// old stays active: give its index files their preallocated size
		// back so appends through the mapping stay inside the file.
		if uerr := old.untrimIndexes(); uerr != nil {
			l.mu.Lock()
			l.failed = uerr
			l.mu.Unlock()
		}
		return err
	}
	// No directory fsync here: the new names become durable before the
	// first fdatasync of s counts (durableNames), as in Kafka.
	if invariants.Enabled {
		checkRoll(l.dir, old, s, l.nextOffset)
	}
	l.mu.Lock()
	l.segments = append(l.segments, s)
	// The flusher's reference, taken while old is still in the list: once
	// it is not the active one, retention may drop it (and the log's
	// reference) as soon as the lock is released.
	old.acquire()
	l.mu.Unlock()
	l.tsSoFar, l.tsOffSoFar = -1, -1
	// Like Kafka, flush the rolled segment in the background: a 1 GiB
	// fdatasync on the append path would stall every producer. The
	// recovery point passes it only once this completes. Its indexes are
	// synced there too, even when the data already is (flush.messages=1).
	l.queueRolled(old)
	return nil
}

// queueRolled hands a rolled segment (with a reference taken) to the log's
// one background flusher, starting it if idle. One flusher per log, in roll
// order: a goroutine per roll piled up dozens of concurrent fsyncs when
// small segments rolled faster than a busy disk synced them, and synced
// segments retention had already deleted.
func (l *Log) queueRolled(s *segment) {
	l.rolledMu.Lock()
	l.rolled = append(l.rolled, s)
	start := !l.flusherOn
	l.flusherOn = true
	if start {
		l.flusherDone = make(chan struct{})
	}
	l.rolledMu.Unlock()
	if start {
		l.bgFlushes.Add(1)
		go l.flushRolledLoop()
	}
}

// waitRolledFlushed waits until the background flusher has no rolled
// segment left to flush (under a stream of rolls, until it catches up).
func (l *Log) waitRolledFlushed() {
	l.rolledMu.Lock()
	on, done := l.flusherOn, l.flusherDone
	l.rolledMu.Unlock()
	if on {
		<-done
	}
}

func (l *Log) flushRolledLoop() {
	defer l.bgFlushes.Done()
	for {
		l.rolledMu.Lock()
		if len(l.rolled) == 0 {
			l.flusherOn = false
			l.rolled = nil
			close(l.flusherDone)
			l.rolledMu.Unlock()
			return
		}
		s := l.rolled[0]
		l.rolled[0] = nil
		l.rolled = l.rolled[1:]
		l.rolledMu.Unlock()
		l.flushRolled(s)
	}
}

// flushRolled fdatasyncs a rolled segment's indexes and, when it holds
// unsynced bytes, its data, off the writer goroutine. IO.Datasync is safe
// for this (see IO).
func (l *Log) flushRolled(s *segment) {
	defer s.release()
	if s.unlnk.Load() {
		return // retention deleted it meanwhile: nothing to make durable
	}
	if err := s.syncIndexes(); err != nil {
		l.logf("log %s: sync of rolled segment %d's indexes: %v", l.dir, s.base, err)
		l.ioFailed(err)
	}
	l.mu.RLock()
	unsynced := s.syncedTo < s.next // only this flush changes it once rolled
	l.mu.RUnlock()
	if !unsynced {
		return
	}
	err := l.durableNames(s)
	if err == nil {
		err = l.datasync(s.f)
	}
	if err != nil {
		l.logf("log %s: fdatasync of rolled segment %d: %v", l.dir, s.base, err)
		l.ioFailed(err)
		return // stays below the recovery point; recovery will scan it
	}
	l.mu.Lock()
	s.syncedTo = s.next
	l.updateRecoveryPointLocked()
	l.mu.Unlock()
}
