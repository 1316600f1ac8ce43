package broker

// Transactions in a partition's producer state (Kafka's ProducerStateManager
// transaction tracking and ProducerAppendInfo.appendEndTxnMarker).
//
// Each producer entry has at most one current transaction (e.txn), begun
// by its first transactional batch; every transaction not yet ended by a
// marker written to the log is in partState.ongoing. The last stable
// offset is
//
//	LSO = min(high watermark, first offset of every ongoing transaction)
//
// Offsets are assigned by the log writer after the check, so a
// transaction's first offset is not known when its first batch is
// accepted: until that batch's append completes, the transaction counts
// with the high watermark read at acceptance, a lower bound of the offset
// it will get (the LSO is then conservative, never too high); completion
// makes it exact.
//
// A marker (WriteTxnMarkers) is checked and appended on the partition's
// produce worker, after the state is loaded: an epoch older than the
// producer's is INVALID_PRODUCER_EPOCH, a coordinator epoch older than the
// last one seen for the producer TRANSACTION_COORDINATOR_FENCED (Kafka's
// checks for origin COORDINATOR). Acceptance detaches the transaction
// from its producer (a next transaction may start) but keeps it in
// ongoing until the marker's append completes; then, on the log writer
// goroutine and in this order, an ABORT's entry is appended to the
// segment's transaction index (storage.Log.AppendAbortedTxn) and the
// transaction leaves ongoing. A read_committed fetch that sees the LSO
// past an aborted transaction therefore finds its entry.
//
// If a marker's write fails the transaction goes back to its producer (or,
// if another began meanwhile, stays in ongoing: the LSO then stays at it
// until a restart rebuilds the state from the log, conservative). A failed
// transactional batch keeps its producer's entry (and transaction), unlike
// a failed idempotent one: the client aborts the transaction.
//
// Loading (readProducers) replays transactional batches and control
// batches after the snapshot, re-deriving the transaction index entries of
// ABORT markers it passes (AppendAbortedTxn ignores those present), so an
// entry lost in a crash comes back. Snapshots record each producer's
// current transaction and coordinator epoch (snapshot format v2).

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

// openTxn is one transaction not yet ended by a written marker.
type openTxn struct {
	pid   int64
	first int64 // exact once its first batch completed, else a lower bound
	exact bool
}

// Control record types (Kafka's ControlRecordType).
const (
	controlAbort  = 0
	controlCommit = 1
)

// lastStableOffset returns the partition's LSO. REQUIRES: ps loaded (or
// nothing transactional ever reached it).
func (ps *partState) lastStableOffset() int64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.lsoLocked()
}

func (ps *partState) lsoLocked() int64 {
	lso := ps.p.Log.HighWatermark()
	for t := range ps.ongoing {
		lso = min(lso, t.first)
	}
	return lso
}

// addLSOWaiter registers w to be woken (HWAdvanced) when a transaction
// ends, unless the LSO already moved past seen (then false: read now).
// The high watermark's own waiters (storage) do not cover the LSO: a
// marker's append wakes them before the transaction leaves ongoing.
func (ps *partState) addLSOWaiter(w storage.Waiter, seen int64) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.lsoLocked() > seen {
		return false
	}
	if ps.lsoWaiters == nil {
		ps.lsoWaiters = make(map[storage.Waiter]struct{})
	}
	ps.lsoWaiters[w] = struct{}{}
	return true
}

func (ps *partState) removeLSOWaiter(w storage.Waiter) {
	ps.mu.Lock()
	delete(ps.lsoWaiters, w)
	ps.mu.Unlock()
}

// endTxn removes t from ongoing and wakes the LSO waiters (outside the
// lock: they may call back).
func (ps *partState) endTxn(t *openTxn) {
	ps.mu.Lock()
	delete(ps.ongoing, t)
	lso := ps.lsoLocked()
	var ws []storage.Waiter
	for w := range ps.lsoWaiters {
		ws = append(ws, w)
	}
	clear(ps.lsoWaiters)
	ps.mu.Unlock()
	for _, w := range ws {
		w.HWAdvanced(lso)
	}
}

// beginTxn starts e's transaction for a batch accepted now; hwBefore is
// the high watermark read before the batch was appended, a lower bound of
// its offset. REQUIRES: ps.mu held.
func (ps *partState) beginTxn(pid int64, e *producerEntry, hwBefore int64) *openTxn {
	t := &openTxn{pid: pid, first: hwBefore}
	e.txn = t
	if ps.ongoing == nil {
		ps.ongoing = make(map[*openTxn]struct{})
	}
	ps.ongoing[t] = struct{}{}
	return t
}

// stableOffsetWithout is the LSO ignoring t: the aborted transaction
// index's lastStableOffset field (Kafka's lastStableOffset(completedTxn):
// the first offset of the earliest other ongoing transaction, else the
// marker's offset + 1). REQUIRES: ps.mu held.
func (ps *partState) stableOffsetWithout(t *openTxn, marker int64) int64 {
	lso := marker + 1
	for o := range ps.ongoing {
		if o != t && o.pid != t.pid {
			lso = min(lso, o.first)
		}
	}
	return lso
}

// buildMarker encodes a control batch ending pid's transaction: Kafka's
// EndTransactionMarker, one record with key (version 0, type) and value
// (version 0, coordinator epoch), base sequence -1.
func buildMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, nowMs int64) []byte {
	key := make([]byte, 4)
	if commit {
		binary.BigEndian.PutUint16(key[2:], controlCommit)
	}
	val := make([]byte, 6)
	binary.BigEndian.PutUint32(val[2:], uint32(coordinatorEpoch))
	recs := proto.AppendRecord(nil, &kmsg.Record{Key: key, Value: val})
	return proto.AppendRecordBatch(nil, &kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Attributes: proto.AttrControl | proto.AttrTransactional,
		FirstTimestamp: nowMs, MaxTimestamp: nowMs,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: -1, NumRecords: 1, Records: recs,
	})
}

// parseMarker reads a control batch's marker type and coordinator epoch.
// ok is false for anything that is not a well-formed marker (Kafka skips
// unknown control types too).
func parseMarker(rb proto.RecordBatch) (commit bool, coordinatorEpoch int32, ok bool) {
	if rb.Codec() != proto.CodecNone || rb.RecordCount() < 1 {
		return false, 0, false
	}
	var r kmsg.Record
	if err := r.ReadFrom(rb.Records()); err != nil || len(r.Key) < 4 || binary.BigEndian.Uint16(r.Key) != 0 {
		return false, 0, false
	}
	typ := binary.BigEndian.Uint16(r.Key[2:])
	if typ != controlAbort && typ != controlCommit {
		return false, 0, false
	}
	if len(r.Value) >= 6 {
		coordinatorEpoch = int32(binary.BigEndian.Uint32(r.Value[2:]))
	}
	return typ == controlCommit, coordinatorEpoch, true
}

// markerAppend is one partition's marker of a WriteTxnMarkers request: its
// input, its storage.AppendCallback and its answer.
type markerAppend struct {
	ps               *partState
	pid              int64
	epoch            int16
	commit           bool
	coordinatorEpoch int32
	txn              *openTxn // detached at acceptance; nil: the producer had none
	done             func(code int16)
}

// appendMarker checks a marker against the producer state and appends it.
// REQUIRES: ps loaded; the partition's worker. Never blocks on I/O.
func (ps *partState) appendMarker(m *markerAppend, nowMs int64) appendOutcome {
	ps.mu.Lock()
	e := ps.producers[m.pid]
	var code *kerr.Error
	switch {
	case e == nil:
	case m.epoch < e.epoch:
		code = kerr.InvalidProducerEpoch
	case m.coordinatorEpoch < e.coordEpoch:
		code = kerr.TransactionCoordinatorFenced
	}
	if code != nil {
		ps.mu.Unlock()
		m.done(code.Code)
		return outAnswered
	}
	// Set before Append: AppendDone reads it on the writer goroutine.
	m.txn = nil
	if e != nil {
		m.txn = e.txn
	}
	batch := buildMarker(m.pid, m.epoch, m.commit, m.coordinatorEpoch, nowMs)
	err := ps.p.Log.Append(batch, m)
	if err != nil {
		ps.mu.Unlock()
		if errors.Is(err, storage.ErrBacklog) {
			return outBacklog
		}
		c := kerr.KafkaStorageError
		if errors.Is(err, storage.ErrClosed) {
			c = kerr.NotLeaderForPartition
		}
		m.done(c.Code)
		return outAnswered
	}
	if e == nil {
		if ps.producers == nil {
			ps.producers = make(map[int64]*producerEntry)
		}
		e = &producerEntry{epoch: m.epoch, lastSeq: -1, coordEpoch: -1, lastTimestamp: -1}
		ps.producers[m.pid] = e
	} else if m.epoch > e.epoch {
		e.newEpoch(m.epoch)
	}
	e.coordEpoch = m.coordinatorEpoch
	e.lastTimestamp = nowMs
	e.txn = nil // detached: m.txn
	ps.mu.Unlock()
	return outAppended
}

// AppendDone implements storage.AppendCallback (log writer goroutine).
func (m *markerAppend) AppendDone(res storage.AppendResult) {
	ps := m.ps
	if res.Err != nil {
		ps.logger.Warn("transaction marker append failed", zap.String("topic", ps.p.Topic.Name), zap.Int32("partition", ps.p.Index), zap.Error(res.Err))
		ps.mu.Lock()
		if m.txn != nil {
			if e := ps.producers[m.pid]; e != nil && e.txn == nil {
				e.txn = m.txn
			}
		}
		ps.mu.Unlock()
		m.done(kerr.KafkaStorageError.Code)
		return
	}
	var code int16
	if m.txn != nil {
		ps.mu.Lock()
		entry := storage.AbortedTxn{ProducerID: m.pid, FirstOffset: m.txn.first, LastOffset: res.BaseOffset,
			LastStableOffset: ps.stableOffsetWithout(m.txn, res.BaseOffset)}
		ps.mu.Unlock()
		if !m.commit {
			// Before the transaction leaves ongoing: see the file comment.
			if err := ps.p.Log.AppendAbortedTxn(entry); err != nil {
				// The marker is in the log: the next load re-derives the
				// entry. Until then the transaction stays open (LSO held).
				ps.logger.Warn("transaction index append failed", zap.String("topic", ps.p.Topic.Name), zap.Int32("partition", ps.p.Index), zap.Error(err))
				m.done(kerr.KafkaStorageError.Code)
				return
			}
		}
		ps.endTxn(m.txn)
	}
	ps.mu.Lock()
	ps.completedEnd = res.LastOffset + 1
	ps.mu.Unlock()
	m.done(code)
}

// replayMarker applies a control batch found in the log at offset to
// producers and ongoing (loading), and re-derives its transaction index
// entry. Runs on the worker, before the state is installed.
func replayMarker(l *storage.Log, rb proto.RecordBatch, producers map[int64]*producerEntry, ongoing map[*openTxn]struct{}) error {
	commit, coordEpoch, ok := parseMarker(rb)
	if !ok {
		return nil
	}
	pid, epoch, off := rb.ProducerID(), rb.ProducerEpoch(), rb.BaseOffset()
	e := producers[pid]
	if e == nil {
		e = &producerEntry{epoch: epoch, lastSeq: -1, coordEpoch: -1, lastTimestamp: -1}
		producers[pid] = e
	} else if epoch > e.epoch {
		e.newEpoch(epoch)
	}
	e.coordEpoch = coordEpoch
	e.lastTimestamp = rb.MaxTimestamp()
	t := e.txn
	e.txn = nil
	if t == nil {
		return nil
	}
	delete(ongoing, t)
	if commit {
		return nil
	}
	lso := off + 1
	for o := range ongoing {
		lso = min(lso, o.first)
	}
	return l.AppendAbortedTxn(storage.AbortedTxn{ProducerID: pid, FirstOffset: t.first, LastOffset: off, LastStableOffset: lso})
}

// replayTxnBatch applies a data batch's transaction effect while loading:
// a transactional batch of a producer with no transaction begins one.
func replayTxnBatch(e *producerEntry, pid int64, transactional bool, base int64, ongoing map[*openTxn]struct{}) {
	if transactional && e.txn == nil {
		e.txn = &openTxn{pid: pid, first: base, exact: true}
		ongoing[e.txn] = struct{}{}
	}
}

// ensureLoaded calls then once ps's state is loaded: at once on the
// caller's goroutine when it is, else from the partition's worker after
// loading (then gets the load's error, or errWorkersClosed).
func (ps *partState) ensureLoaded(then func(error)) {
	if ps.loaded.Load() {
		then(nil)
		return
	}
	ps.queued.Add(1)
	if !ps.worker.enqueue(&produceJob{ps: ps, logger: ps.logger, loadThen: then}) {
		ps.queued.Add(-1)
		then(errWorkersClosed)
	}
}

var errWorkersClosed = errors.New("broker is shutting down")

// markerJob is a marker queued on the partition's worker.
type markerJob struct {
	m        *markerAppend
	deadline time.Time
	now      func() time.Time
}

// runMarker loads the state, then checks and appends the marker, retrying
// a full backlog until the deadline.
func (j *produceJob) runMarker() {
	ps := j.ps
	defer ps.queued.Add(-1)
	if err := ps.load(j.logger); err != nil {
		j.logger.Warn("loading producer state", zap.String("dir", ps.p.Log.Dir()), zap.Error(err))
		j.marker.m.done(kerr.KafkaStorageError.Code)
		return
	}
	backoff := time.Millisecond
	for ps.appendMarker(j.marker.m, j.marker.now().UnixMilli()) == outBacklog {
		if time.Now().After(j.marker.deadline) {
			j.marker.m.done(kerr.RequestTimedOut.Code)
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 20*time.Millisecond)
	}
}

// installStableOffsets bounds the cleaner of every local partition by its
// last stable offset (storage.Log.SetStableOffset): New calls it for the
// partitions found at start, produceState.part
// for those that come later (before their first transactional batch).
func (b *Broker) installStableOffsets() {
	if b.reg == nil {
		return
	}
	for _, t := range b.reg.Topics() {
		for _, p := range t.Partitions {
			b.installStableOffset(p)
		}
	}
}

func (b *Broker) installStableOffset(p *Partition) {
	if !p.Local() {
		return
	}
	s := b.produce
	p.Log.SetStableOffset(func() int64 { return s.part(p).stableForCleaner() })
}

// stableForCleaner is the LSO for a cleaner round: it waits for the state
// to load (the cleaner's goroutine may block); without it, the log start
// (nothing is cleaned).
func (ps *partState) stableForCleaner() int64 {
	loaded := make(chan error, 1)
	ps.ensureLoaded(func(err error) { loaded <- err })
	if err := <-loaded; err != nil {
		return ps.p.Log.LogStartOffset()
	}
	return ps.lastStableOffset()
}
