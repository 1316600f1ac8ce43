package storage

import (
	"fmt"
	"runtime"
	"time"

	"github.com/ringbroker/ringbroker/invariants"
	"github.com/ringbroker/ringbroker/proto"
	"golang.org/x/sys/unix"
)

// Inline appends (append.inline): the appending thread writes its own
// group.
//
// On io_uring a produce used to cross two threads before its answer could
// leave: the ring thread queued the append and woke the log's writer
// goroutine (another OS thread has to pick it up: the ring thread is locked
// and never parks in Go), and the writer's callback posted the answer to
// the loop's mailbox, waking the ring out of io_uring_enter through its
// eventfd. Those two wake-ups were most of the slowest produce requests'
// time (docs/BENCHMARKS.md, "Where the e2e tail goes").
//
// With Config.AppendInline, an AppendBatchInline that finds the writer
// parked with nothing queued and nothing timed (writerIdle) takes the
// writer role itself instead of waking the goroutine (writerInline), and
// its caller runs the write step with RunInline once it has released its
// own locks (the callbacks take them: the broker's producer state is
// locked around the append). RunInline writes one group through the log's
// IO, exactly as the writer goroutine would (writeGroup: same offsets,
// index entries, trace stamps, fault injection, cut-back on a failed
// write) and runs the callbacks on the caller: the broker's answer is then
// posted from the loop's own thread, which drains its mailbox before it
// sleeps, so no eventfd wake-up either.
//
// Only the cheap case runs inline: a write into the page cache of the
// active segment. Whenever the group would need anything that may block
// for long or that the writer goroutine owns, the role goes back to the
// writer goroutine before anything is taken off the queue, and it does
// exactly what it did before: a roll (trims and may fdatasync), the
// segment's first write (creates the index files), a new leader epoch
// (writes the epoch file durably), an fdatasync the flush policy asks for
// (flush.messages / flush.ms: a ring thread never waits in fdatasync), a
// linger, an AppendReplica, a truncation, an idle roll, a closing or failed
// log. After the inline group, the role is handed back the same way when
// anything was queued meanwhile (appends from other threads queue behind a
// writerInline log without waking anyone) or the policy wants a timer (the
// next flush.ms fdatasync); otherwise the log parks as writerIdle again.
//
// Ownership: the writer role is a state under l.mu. An appender claims it
// only from writerIdle (enqueueReqMode); the writer goroutine's service
// returns at once while the state is writerInline and otherwise sets
// writerBusy before acting, so the two never run the write step at once,
// and every hand-over goes through l.mu (happens-before for the fields
// the writer reads without the lock).
//
// What the caller's thread pays: one pwritev (or IORING_OP_WRITEV on the
// log's own ring) into the page cache per group. A write stalled in dirty
// page throttling stalls that thread for as long; the writer goroutine
// would have absorbed it. So a log whose inline write stalled
// (inlineStalled: over inlineStallNs, and the thread slept in the kernel
// or spent that long on the CPU; not a preemption) writes through its
// writer goroutine for the next inlineBackoffNs, and so does every other
// log of its log dir (the Manager's dirState): a stalling disk costs the
// caller's thread (a ring thread and all its connections) about one stall
// per log dir per second, not one per request, nor one per partition when
// a loop serves many.
// BENCHMARKS.md records the trade measured.
//
// Rejected: submitting the WRITEV (+ linked FSYNC) on the network loop's
// own ring with the completion handled there. It removes the same two
// hops, but the writer's state (offsets assigned at write time, index
// appends, rolls, epoch writes, the cut-back of a failed group) would have
// to become a state machine driven from every loop's completion handler,
// with a partition's appends arriving on several loops; the inline step
// reuses the one writer step that the crash and fault tests already cover.

// inlineStallNs: an inline write slower than this (a normal one takes tens
// of µs) that slept or used as much CPU (inlineStalled) sends the log's
// appends to its writer goroutine for inlineBackoffNs.
const (
	inlineStallNs   = int64(time.Millisecond)
	inlineBackoffNs = int64(time.Second)
)

// threadUsage is what the calling thread has done so far: how often it
// slept in the kernel (voluntary context switches) and the CPU time it
// ran. ok is false when the kernel would not say.
type threadUsage struct {
	sleeps int64
	cpuNs  int64
	ok     bool
}

// threadUsageNow samples the calling thread (getrusage RUSAGE_THREAD,
// about 0.25 µs). A variable so tests can stand in for the kernel.
var threadUsageNow = func() threadUsage {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return threadUsage{}
	}
	return threadUsage{sleeps: ru.Nvcsw, cpuNs: ru.Utime.Nano() + ru.Stime.Nano(), ok: true}
}

// inlineStalled reports whether an inline step that took wall ns stalled
// in a way the writer goroutine would have absorbed: it slept in the
// kernel (dirty-page throttling, a wait for the journal or a lock: each a
// voluntary context switch), or its own work took more than inlineStallNs
// of CPU. A step that was slow only because its thread was preempted (by
// the clients, on a machine with few CPUs) is not a stall of the disk: the
// writer goroutine's thread would have waited for a CPU as well, and
// backing off for it cost inline appends a second of every such
// preemption (BENCHMARKS.md, "Inline appends and preemption"). Without
// usage figures, any slow step counts.
func inlineStalled(wall int64, before, after threadUsage) bool {
	if wall <= inlineStallNs {
		return false
	}
	if !before.ok || !after.ok {
		return true
	}
	return after.sleeps != before.sleeps || after.cpuNs-before.cpuNs > inlineStallNs
}

// AppendBatchInline is AppendBatch for a caller that can run the write
// itself: with Config.AppendInline and the writer idle with nothing queued,
// it returns run = true and the caller has taken the writer role. It must
// then call RunInline exactly once, without holding any lock its callbacks
// take, and soon (until then the log writes nothing). With run = false it
// is AppendBatch: the callback comes from the writer goroutine.
func (l *Log) AppendBatchInline(rb proto.RecordBatch, cb AppendCallback) (run bool, err error) {
	lod := rb.LastOffsetDelta()
	if lod < 0 {
		return false, fmt.Errorf("%w: lastOffsetDelta %d", ErrInvalidBatch, lod)
	}
	batches := rb.Bytes()
	r := getReq(len(batches))
	r.buf = append(r.buf[:0], batches...)
	r.cb, r.records, r.offsets = cb, int64(rb.RecordCount()), int64(lod)+1
	r.replicaBase = -1
	return l.enqueueReqMode(r, l.cfg.AppendInline)
}

// RunInline writes what the caller queued with AppendBatchInline (and
// whatever queued behind it that fits the same group) on the caller's
// thread, runs the callbacks there, and hands the writer role back. When
// the group needs the writer goroutine (see above) it wakes it instead and
// the callbacks come from there.
// REQUIRES: the caller holds the writer role (AppendBatchInline returned
// run = true, and this is the one RunInline for it).
func (l *Log) RunInline() {
	now := l.clock.Now().UnixNano()
	l.mu.Lock()
	if invariants.Enabled && l.writerState != writerInline {
		panic(fmt.Sprintf("log %s: RunInline without the writer role (state %d)", l.dir, l.writerState))
	}
	if !l.inlineWritableLocked(now) {
		l.handBackLocked()
		return
	}
	l.busySinceNs.Store(now)
	l.takeGroup(now)
	epoch := l.leaderEpoch
	l.mu.Unlock()
	// One thread for the whole step (a loop's thread is locked already),
	// so the two usage samples are the same thread's.
	runtime.LockOSThread()
	before := threadUsageNow()
	l.writeGroupAt(now, epoch, false) // completes the group, callbacks included
	after := threadUsageNow()
	runtime.UnlockOSThread()
	start := now
	now = l.clock.Now().UnixNano()
	l.mu.Lock()
	l.busySinceNs.Store(0)
	if inlineStalled(now-start, before, after) {
		l.inlineOffUntilNs.Store(now + inlineBackoffNs)
	}
	if l.head == nil && l.truncReq == nil && !l.idleRoll && !l.closing && !l.crash {
		if act, wakeAt := l.pol.decide(l.groupStateLocked(now)); act == actIdle && wakeAt == 0 {
			l.writerState = writerIdle
			l.mu.Unlock()
			return
		}
	}
	l.handBackLocked()
}

// handBackLocked gives the writer role back to the writer goroutine and
// wakes it to decide. REQUIRES: l.mu held (released on return); the
// caller holds the writer role.
func (l *Log) handBackLocked() {
	l.writerState = writerBusy
	l.mu.Unlock()
	l.signal()
}

// inlineWritableLocked reports whether the next group is one RunInline
// writes itself: a plain write into the page cache of the active segment,
// due now. REQUIRES: l.mu held; the caller holds the writer role.
func (l *Log) inlineWritableLocked(now int64) bool {
	r := l.head
	if r == nil || r.replicaBase >= 0 || l.closing || l.crash || l.failed != nil || l.truncReq != nil || l.idleRoll {
		return false
	}
	if now < l.inlineOffUntilNs.Load() { // a recent inline write of the dir stalled
		return false
	}
	if act, _ := l.pol.decide(l.groupStateLocked(now)); act != actWrite {
		return false // a linger or a periodic fdatasync first
	}
	act := l.active()
	if act.idx.f == nil || act.tidx.f == nil { // the segment's first write creates them
		return false
	}
	if l.needRoll(act, int64(len(r.buf)), r.offsets, now) {
		return false
	}
	if epoch := l.leaderEpoch; epoch >= 0 { // assignEpoch's no-op case only
		last, ok := l.epochs.latest()
		if !ok || last.Epoch != epoch || l.nextOffset < last.StartOffset {
			return false
		}
	}
	// Would the group be fdatasync'd? Count every queued record (the group
	// takes at most those): the policy only syncs more as the count grows.
	var msgs int64
	for q := r; q != nil; q = q.next {
		msgs += q.records
	}
	return !l.pol.syncAfterGroup(now, l.lastFlushNs, l.unflushedMsgs, msgs)
}
