package broker

// WriteTxnMarkers (key 27), versions 0-1.
//
// Behaviour: for each marker, for each partition, a control batch is
// appended (Kafka's format: control and transactional attribute bits, one
// record with key = version int16 0 + type int16 (0 ABORT, 1 COMMIT) and
// value = version int16 0 + coordinator epoch int32, the transaction's
// producer id and epoch, base sequence -1), on the partition's produce
// worker after its producer state is loaded, in order with the produce
// jobs queued there. It ends the producer's transaction in the partition:
// the last stable offset advances, and an ABORT's (producerId,
// firstOffset, lastOffset, lastStableOffset) goes to the segment's
// transaction index (produce_txn.go, storage/txnindex.go). Per-partition
// errors as Kafka: unknown partition UNKNOWN_TOPIC_OR_PARTITION; producer
// epoch older than the partition's INVALID_PRODUCER_EPOCH; coordinator
// epoch older than the last seen for the producer
// TRANSACTION_COORDINATOR_FENCED; a failed write KAFKA_STORAGE_ERROR.
// The response comes once every marker's append completed.
//
// Broker.WriteTxnMarkers is the same thing for the transaction coordinator
// in this process (no request, no socket).
//
// A marker written on a __consumer_offsets partition completes the
// transaction's offsets held by the group coordinator (onTxnMarker), as
// Kafka's handler tells its GroupCoordinator.
//
// Differences from Apache Kafka: no cluster authorization (the request is
// a broker's); a marker of a producer unknown to the partition
// is written (Kafka too) without a transaction to end.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

const writeTxnMarkersMax = 1

func init() {
	register(decoded(kmsg.WriteTxnMarkers, 0, writeTxnMarkersMax, copying, (*Broker).serveWriteTxnMarkers))
}

// markerTimeout bounds how long a marker waits for room in a log's append
// backlog (Kafka's request.timeout.ms default).
const markerTimeout = 30 * time.Second

func (b *Broker) serveWriteTxnMarkers(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.WriteTxnMarkersRequest) {
	hdr.ClientID = nil // aliases the frame
	b.WriteTxnMarkers(r, func(resp *kmsg.WriteTxnMarkersResponse) {
		// Markers from another broker's transaction coordinator: the
		// group coordinator here holds the transaction's offsets of
		// the __consumer_offsets partitions written.
		for mi, m := range resp.Markers {
			for _, t := range m.Topics {
				for _, p := range t.Partitions {
					if t.Topic == offsetsTopic && p.ErrorCode == 0 {
						b.onTxnMarker(t.Topic, p.Partition, m.ProducerID, r.Markers[mi].Committed)
					}
				}
			}
		}
		resp.Version = hdr.APIVersion
		b.replyMsg(req, &hdr, resp)
	})
}

// WriteTxnMarkers writes req's markers and calls done with the response
// once every append completed (possibly on another goroutine, possibly
// before returning). req must not change until then.
func (b *Broker) WriteTxnMarkers(req *kmsg.WriteTxnMarkersRequest, done func(*kmsg.WriteTxnMarkersResponse)) {
	resp := &kmsg.WriteTxnMarkersResponse{Version: req.Version}
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(req.Markers))
	var pending atomic.Int64
	pending.Store(1) // held until every append was started
	var once sync.Once
	countDown := func() {
		if pending.Add(-1) == 0 {
			once.Do(func() { done(resp) })
		}
	}
	deadline := time.Now().Add(markerTimeout)
	for mi := range req.Markers {
		m := &req.Markers[mi]
		rm := &resp.Markers[mi]
		rm.ProducerID = m.ProducerID
		rm.Topics = make([]kmsg.WriteTxnMarkersResponseMarkerTopic, len(m.Topics))
		for ti := range m.Topics {
			t := &m.Topics[ti]
			rt := &rm.Topics[ti]
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for pi, part := range t.Partitions {
				rp := &rt.Partitions[pi]
				rp.Partition = part
				p, code := b.servedPartition(t.Topic, part)
				if p == nil {
					rp.ErrorCode = code
					continue
				}
				ps := b.produce.part(p)
				pending.Add(1)
				ma := &markerAppend{ps: ps, pid: m.ProducerID, epoch: m.ProducerEpoch, commit: m.Committed,
					coordinatorEpoch: m.CoordinatorEpoch,
					done: func(code int16) {
						rp.ErrorCode = code
						countDown()
					}}
				ps.queued.Add(1)
				if !ps.worker.enqueue(&produceJob{ps: ps, logger: b.log, marker: &markerJob{m: ma, deadline: deadline, now: b.clock.Now}}) {
					ps.queued.Add(-1)
					ma.done(kerr.NotLeaderForPartition.Code)
				}
			}
		}
	}
	countDown()
}
