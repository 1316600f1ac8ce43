package broker

// The group coordinator's transactional append (TxnOffsetCommit) through
// the partition's producer state: Kafka appends it with
// AppendOrigin.COORDINATOR, which checks the producer epoch but not
// sequences and tracks the transaction like any transactional batch. So
// the batch begins (or continues) the producer's transaction on its
// __consumer_offsets partition: that partition's last stable offset holds
// at the transaction's first offset until the marker, the cleaner stays
// below it, and an ABORT marker finds the transaction and writes its
// .txnindex entry (produce_txn.go). Without this a compaction could keep
// an aborted offset commit as if committed, and drop the marker, and a
// restart then lose the group's committed offset.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/storage"
)

// coordTxnAppend is one coordinator transactional batch in flight.
type coordTxnAppend struct {
	b    *Broker
	ps   *partState
	size int64
	txn  *openTxn // begun by this batch (nil: the producer's was open); guarded by ps.mu
	done func(code int16)
}

// appendCoordinatorTxn appends batch, a transactional batch of producer
// (pid, epoch) with max timestamp ts built by the group coordinator, to p
// through p's producer state (loaded first on p's worker if need be).
// done gets 0 once the batch is on the partition's ISR (coord_append.go),
// else a Kafka error code:
// INVALID_PRODUCER_EPOCH for an epoch older than the partition's, or
// COORDINATOR_NOT_AVAILABLE (retriable) when the state or the log fails.
// done runs on the caller's goroutine (a refusal), p's worker or the log
// writer goroutine; never under a lock of ours.
func (b *Broker) appendCoordinatorTxn(p *Partition, batch []byte, pid int64, epoch int16, ts int64, done func(code int16)) {
	ps := b.produce.part(p)
	ps.ensureLoaded(func(err error) {
		if err != nil {
			done(kerr.CoordinatorNotAvailable.Code)
			return
		}
		ps.appendCoordinatorTxn(b, batch, pid, epoch, ts, done)
	})
}

// appendCoordinatorTxn: see Broker.appendCoordinatorTxn. REQUIRES: ps loaded.
func (ps *partState) appendCoordinatorTxn(b *Broker, batch []byte, pid int64, epoch int16, ts int64, done func(code int16)) {
	ps.mu.Lock()
	e := ps.producers[pid]
	if e != nil && epoch < e.epoch {
		ps.mu.Unlock()
		done(kerr.InvalidProducerEpoch.Code)
		return
	}
	if code := b.coordRefuse(ps.p); code != 0 {
		ps.mu.Unlock()
		done(coordinatorCode(code))
		return
	}
	a := &coordTxnAppend{b: b, ps: ps, size: int64(len(batch)), done: done}
	// Read before the append: a lower bound of the offset it gets.
	hwBefore := ps.p.Log.HighWatermark()
	if err := ps.p.Log.Append(batch, a); err != nil {
		ps.mu.Unlock()
		code := kerr.CoordinatorNotAvailable.Code
		if errors.Is(err, storage.ErrClosed) {
			code = kerr.NotCoordinator.Code
		}
		done(code)
		return
	}
	if e == nil {
		if ps.producers == nil {
			ps.producers = make(map[int64]*producerEntry)
		}
		e = &producerEntry{epoch: epoch, coordEpoch: -1, lastTimestamp: -1}
		ps.producers[pid] = e
	} else if epoch > e.epoch {
		e.newEpoch(epoch)
	}
	e.lastTimestamp = ts
	if e.txn == nil {
		a.txn = ps.beginTxn(pid, e, hwBefore)
	}
	ps.mu.Unlock()
}

// AppendDone implements storage.AppendCallback (log writer goroutine).
func (a *coordTxnAppend) AppendDone(res storage.AppendResult) {
	ps := a.ps
	ps.mu.Lock()
	if res.Err == nil {
		ps.completedEnd = res.LastOffset + 1
		ps.sinceSnap += a.size
		if a.txn != nil {
			a.txn.first, a.txn.exact = res.BaseOffset, true
		}
	}
	// On an error the transaction stays open (first a lower bound, the LSO
	// conservative): the client retries or aborts, and the marker ends it.
	ps.mu.Unlock()
	if res.Err != nil {
		ps.logger.Warn("transactional offset commit append failed", zap.String("topic", ps.p.Topic.Name),
			zap.Int32("partition", ps.p.Index), zap.Error(res.Err))
		a.done(kerr.CoordinatorNotAvailable.Code)
		return
	}
	// Answered once on the ISR (coord_append.go).
	a.b.coordReplicated(ps.p, res, func(code int16) { a.done(coordinatorCode(code)) })
}
