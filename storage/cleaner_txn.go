package storage

// Transactions in compaction (Kafka's LogCleaner with
// CleanedTransactionMetadata):
//
//   - A round never cleans past the last stable offset (Log.SetStableOffset,
//     set by the broker's producer state): records of an open transaction
//     must not shadow older values of their keys, nor be judged aborted.
//   - Records of aborted transactions (a transactional batch of a producer
//     whose aborted transaction, from the transaction indexes, covers it)
//     never enter the key map and are removed when rewritten (a producer's
//     last batch stays as an empty batch, as for any batch).
//   - A marker (control batch) is removed once nothing it covers remains:
//     an ABORT when this round saw no batch of its transaction, a COMMIT
//     when it saw none either; and once older than delete.retention.ms (by
//     its timestamp, which the broker sets to the time it wrote it), so a
//     consumer that read the transaction's batches shortly before still
//     finds the marker. Kafka delays with a KIP-534 delete horizon stamped
//     on the marker; the marker's own timestamp serves here without a
//     rewrite. A marker that is its producer's last batch is kept.
//   - The transaction index entry of an ABORT marker moves with the marker
//     into the cleaned segment (carryTxnEntries); a removed marker's entry
//     goes with it.

import (
	"encoding/binary"
	"sort"

	"github.com/ringbroker/ringbroker/proto"
)

// SetStableOffset sets the function the cleaner asks for the partition's
// last stable offset before a round (nil: the high watermark bounds it, a
// log without transactions). It is called without any log lock held and
// may block (the cleaner's own goroutine). The broker sets it before any
// transactional batch reaches the log.
func (l *Log) SetStableOffset(f func() int64) {
	if f == nil {
		l.stableOffset.Store(nil)
		return
	}
	l.stableOffset.Store(&f)
}

// stableOffsetBound returns the stable offset bound for a round, or
// MaxInt64 when none is set.
func (l *Log) stableOffsetBound() int64 {
	if f := l.stableOffset.Load(); f != nil {
		return (*f)()
	}
	return 1<<63 - 1
}

// txnCleanState follows transactions over one ordered pass of batches
// (Kafka's CleanedTransactionMetadata).
type txnCleanState struct {
	pending          []AbortedTxn          // aborted, not yet reached, by FirstOffset
	ongoingAborted   map[int64]*abortedRun // producer -> its aborted transaction being passed
	ongoingCommitted map[int64]bool        // producers whose non-aborted transactional batch was seen
}

type abortedRun struct {
	txn      AbortedTxn
	observed bool // a batch of it was seen in this pass
}

func newTxnCleanState(aborted []AbortedTxn) *txnCleanState {
	p := append([]AbortedTxn(nil), aborted...)
	sort.SliceStable(p, func(i, j int) bool { return p[i].FirstOffset < p[j].FirstOffset })
	return &txnCleanState{pending: p, ongoingAborted: map[int64]*abortedRun{}, ongoingCommitted: map[int64]bool{}}
}

func (s *txnCleanState) reach(offset int64) {
	for len(s.pending) > 0 && s.pending[0].FirstOffset <= offset {
		t := s.pending[0]
		s.pending = s.pending[1:]
		s.ongoingAborted[t.ProducerID] = &abortedRun{txn: t}
	}
}

// dataBatch reports whether rb (not a control batch) belongs to an aborted
// transaction.
func (s *txnCleanState) dataBatch(rb proto.RecordBatch) bool {
	s.reach(rb.LastOffset())
	if !rb.Transactional() {
		return false
	}
	pid := rb.ProducerID()
	if run := s.ongoingAborted[pid]; run != nil {
		run.observed = true
		return true
	}
	s.ongoingCommitted[pid] = true
	return false
}

// controlBatch reports whether the marker rb covers nothing left: it may
// be removed (once old enough).
func (s *txnCleanState) controlBatch(rb proto.RecordBatch) bool {
	s.reach(rb.LastOffset())
	pid := rb.ProducerID()
	abort, ok := markerIsAbort(rb)
	if !ok {
		return false // not a marker we know: keep
	}
	if abort {
		run := s.ongoingAborted[pid]
		delete(s.ongoingAborted, pid)
		return run == nil || !run.observed
	}
	seen := s.ongoingCommitted[pid]
	delete(s.ongoingCommitted, pid)
	return !seen
}

// markerIsAbort reads a marker's control record type (key: version int16,
// type int16; 0 ABORT, 1 COMMIT).
func markerIsAbort(rb proto.RecordBatch) (abort, ok bool) {
	if rb.Codec() != proto.CodecNone || rb.RecordCount() != 1 {
		return false, false
	}
	it := proto.NewRecordIter(rb.Records(), 1)
	var rec proto.Record
	if !it.Next(&rec) || len(rec.Key) < 4 || binary.BigEndian.Uint16(rec.Key) != 0 {
		return false, false
	}
	switch binary.BigEndian.Uint16(rec.Key[2:]) {
	case 0:
		return true, true
	case 1:
		return false, true
	}
	return false, false
}

// abortedFrom keeps the entries a pass starting at from must follow: those
// whose marker is at or after it (an earlier marker ended its transaction
// before the pass, which would otherwise take the producer's later
// batches for aborted ones).
func abortedFrom(aborted []AbortedTxn, from int64) []AbortedTxn {
	var out []AbortedTxn
	for _, e := range aborted {
		if e.LastOffset >= from {
			out = append(out, e)
		}
	}
	return out
}

type txnBatchVerdict uint8

const (
	txnKeep        txnBatchVerdict = iota // to the ordinary filter
	txnDropAborted                        // a batch of an aborted transaction
	txnDropMarker                         // a marker covering nothing left, old enough
)

// txnVerdict applies the transaction rules to rb in the rewrite pass
// (every batch of the pass goes through it, in order). Only batches below
// the round's end offset are removed.
func txnVerdict(r *cleanRules, rb proto.RecordBatch, retainEmpty bool) txnBatchVerdict {
	if r.txn == nil {
		return txnKeep
	}
	below := rb.LastOffset() < r.endOffset
	if rb.Control() {
		discardable := r.txn.controlBatch(rb)
		old := rb.MaxTimestamp() <= r.nowMs-min(r.deleteRetentionMs, r.nowMs)
		if discardable && old && below && !retainEmpty {
			return txnDropMarker
		}
		return txnKeep
	}
	if r.txn.dataBatch(rb) && below {
		return txnDropAborted
	}
	return txnKeep
}
