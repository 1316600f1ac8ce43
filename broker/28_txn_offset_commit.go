package broker

// TxnOffsetCommit (key 28), versions 0-4.
//
// Behaviour: a transactional producer commits a consumer group's offsets
// inside its transaction. The group coordinator (this broker, or in a
// cluster the leader of the group's __consumer_offsets partition; else
// NOT_COORDINATOR) checks the committer as Kafka does (no member check for
// generation -1 without a member id, what v0-2 always send; a v3+ member
// is fenced like an OffsetCommit), and, when it also coordinates the
// transactional id, that the producer's id and epoch are current and the
// group's __consumer_offsets partition is in the transaction (the
// transaction coordinator's verify-only check: a fenced epoch answers
// INVALID_PRODUCER_EPOCH, what Kafka's log append answers here; a partition
// not added by AddOffsetsToTxn INVALID_TXN_STATE; CONCURRENT_TRANSACTIONS
// while the previous transaction completes). The offsets are appended
// to the group's partition as one transactional batch (the producer's id
// and epoch), answered when durable, and held pending per producer by the
// group coordinator (group/txn_offsets.go): invisible to OffsetFetch until
// the transaction's marker reaches that partition, which commits or drops
// them (onTxnMarker). On restart the load replays transactional batches
// and markers the same way (loadOffsetsBatch).
//
// The batch goes through the partition's producer state as Kafka's
// AppendOrigin.COORDINATOR (txn_offsets_append.go): epoch checked (older:
// INVALID_PRODUCER_EPOCH), sequences not, and the transaction tracked, so
// the __consumer_offsets partition's last stable offset and .txnindex
// cover it like any transactional produce.
//
// v5 is transactions v2 (KIP-890 part 2): the client sends no
// AddOffsetsToTxn; the group's __consumer_offsets partition is added to the
// transaction here, through the transaction coordinator (txn_add.go),
// before the offsets are appended. Its errors: PRODUCER_FENCED is
// INVALID_PRODUCER_EPOCH, the transaction coordinator's unavailability
// COORDINATOR_NOT_AVAILABLE (retriable), CONCURRENT_TRANSACTIONS and
// TRANSACTION_ABORTABLE as they are.
//
// Differences from Apache Kafka: v6 (KIP-1319) is not served.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/txn"
)

func init() {
	register(decoded(kmsg.TxnOffsetCommit, 0, 5, copying, (*Broker).serveTxnOffsetCommit))
}

func (b *Broker) serveTxnOffsetCommit(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.TxnOffsetCommitRequest) {
	h := hdr
	h.ClientID = nil
	resp := kmsg.NewTxnOffsetCommitResponse()
	resp.Version = h.APIVersion
	codes := make([][]int16, len(r.Topics))
	for i, t := range r.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	reply := func() {
		for i, t := range r.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		b.replyMsg(req, &h, &resp)
	}
	topicRefused := make([]bool, len(r.Topics))
	failAll := func(code int16) {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
				if topicRefused[i] && code != kerr.TransactionalIDAuthorizationFailed.Code && code != kerr.GroupAuthorizationFailed.Code {
					codes[i][j] = kerr.TopicAuthorizationFailed.Code
				}
			}
		}
		reply()
	}
	// Authorization in Kafka's order (authz.go): WRITE on the
	// transactional id, READ on the group, then READ per topic (a topic
	// refused answers TOPIC_AUTHORIZATION_FAILED and is not committed).
	if !b.authorize(req, acl.OpWrite, acl.ResourceTransactionalID, r.TransactionalID) {
		failAll(kerr.TransactionalIDAuthorizationFailed.Code)
		return
	}
	if !b.authorize(req, acl.OpRead, acl.ResourceGroup, r.Group) {
		failAll(kerr.GroupAuthorizationFailed.Code)
		return
	}
	if b.authzOn() {
		for i, t := range r.Topics {
			topicRefused[i] = !b.authorize(req, acl.OpRead, acl.ResourceTopic, t.Topic)
		}
	}
	if r.TransactionalID == "" {
		failAll(kerr.InvalidRequest.Code)
		return
	}
	if code := b.groupCode(r.Group); code != 0 {
		failAll(code)
		return
	}
	offsetsPart := group.PartitionFor(r.Group, b.groups.partitions)
	offsetsTP := txn.TopicPartition{Topic: offsetsTopic, Partition: offsetsPart}
	if h.APIVersion >= 5 {
		// Transactions v2: the offsets partition joins the transaction
		// here (no AddOffsetsToTxn from the client; txn_add.go).
		b.txnAddPartition(r.TransactionalID, r.ProducerID, r.ProducerEpoch, offsetsTP, false, func(code int16) {
			if code != 0 {
				failAll(txnOffsetCommitAddCode(code))
				return
			}
			b.commitTxnOffsets(h, r, offsetsPart, topicRefused, codes, reply)
		})
		return
	}
	// The transaction must hold the group's offsets partition (Kafka
	// checks this through the partition's producer state).
	if code, ok := b.txns.verifyLocal(r.TransactionalID, r.ProducerID, r.ProducerEpoch, offsetsTP); ok && code != 0 {
		switch code {
		case kerr.TransactionAbortable.Code:
			code = kerr.InvalidTxnState.Code
		case kerr.ProducerFenced.Code:
			code = kerr.InvalidProducerEpoch.Code
		}
		failAll(code)
		return
	}
	b.commitTxnOffsets(h, r, offsetsPart, topicRefused, codes, reply)
}

// commitTxnOffsets checks the committer against the group and appends
// the offsets of r to the group's __consumer_offsets partition
// offsetsPart as a transactional batch, filling codes and calling reply.
func (b *Broker) commitTxnOffsets(h proto.RequestHeader, r *kmsg.TxnOffsetCommitRequest, offsetsPart int32, topicRefused []bool,
	codes [][]int16, reply func()) {
	inst := ""
	if r.InstanceID != nil {
		inst = *r.InstanceID
	}
	gen, member := int32(-1), ""
	if h.APIVersion >= 3 {
		gen, member = r.Generation, r.MemberID
	}
	now := b.clock.Now()
	c := b.groups
	c.lock()
	defer c.unlock()
	code := c.g.CheckTxnCommit(now, r.Group, member, inst, gen)
	var oc offsetCommits
	for i, t := range r.Topics {
		for j, p := range t.Partitions {
			switch {
			case topicRefused[i]:
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
			case code != 0:
				codes[i][j] = code
			default:
				le := int32(-1)
				if h.APIVersion >= 2 {
					le = p.LeaderEpoch
				}
				codes[i][j] = oc.add(b, r.Group, i, j, t.Topic, p.Partition, p.Offset, le, p.Metadata, now)
			}
		}
	}
	if len(oc.records) == 0 {
		reply()
		return
	}
	fail := func(code int16) {
		for _, pd := range oc.toApply {
			codes[pd.i][pd.j] = code
		}
		reply()
	}
	batch := appendTxnRecordBatch(now.UnixMilli(), r.ProducerID, r.ProducerEpoch, oc.records)
	groupID, pid, epoch := r.Group, r.ProducerID, r.ProducerEpoch
	ok := c.persist.with(func(t *Topic, _ bool) {
		p := partitionOf(t, offsetsPart)
		if p == nil {
			fail(kerr.CoordinatorNotAvailable.Code)
			return
		}
		// Through the partition's producer state (txn_offsets_append.go):
		// its LSO and .txnindex cover the transaction.
		b.appendCoordinatorTxn(p, batch, pid, epoch, now.UnixMilli(), func(code int16) {
			if code != 0 {
				c.log.Warn("transactional offset commit not appended", zap.String("group", groupID), zap.String("code", kerr.ErrorForCode(code).Error()))
				fail(code)
				return
			}
			c.lock()
			for _, pd := range oc.toApply {
				c.g.ApplyTxnOffset(now, groupID, pid, pd.tp, pd.o)
			}
			c.unlock()
			reply()
		})
	})
	if !ok {
		fail(kerr.CoordinatorNotAvailable.Code)
	}
}

// appendTxnRecordBatch is appendRecordBatch for a transactional batch of
// producer (pid, epoch), as Kafka's group coordinator writes a
// TxnOffsetCommit (sequence 0: the group coordinator does not track
// sequences on __consumer_offsets).
func appendTxnRecordBatch(ts int64, pid int64, epoch int16, records [][2][]byte) []byte {
	var recs []byte
	for i, kv := range records {
		recs = proto.AppendRecord(recs, &kmsg.Record{OffsetDelta: int32(i), Key: kv[0], Value: kv[1]})
	}
	return proto.AppendRecordBatch(nil, &kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Attributes:           proto.AttrTransactional,
		LastOffsetDelta:      int32(len(records) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        0,
		NumRecords:           int32(len(records)),
		Records:              recs,
	})
}

// onTxnMarker is called once a transaction marker of producerID is durable
// on topic's partition: on a __consumer_offsets partition it commits or
// drops the producer's pending transactional offsets of the groups stored
// there. The transaction coordinator calls it when the data path answered
// the marker written (txn_coordinator.go markersWritten).
func (b *Broker) onTxnMarker(topic string, partition int32, producerID int64, commit bool) {
	if topic != offsetsTopic || b.groups == nil {
		return
	}
	c := b.groups
	c.lock()
	c.g.CompleteTxnOffsets(producerID, commit, func(groupID string) bool {
		return group.PartitionFor(groupID, c.partitions) == partition
	})
	c.unlock()
}

// forEachOffsetsRecord is forEachRecord for loading __consumer_offsets:
// records of plain batches go to f, those of transactional batches to txnf
// with the batch's producer id, and transaction markers to marker, in log
// order, so pending transactional offsets are rebuilt and decided as they
// were before the stop.
func forEachOffsetsRecord(buf []byte, f func(base int64, key, value []byte), txnf func(base, producerID int64, key, value []byte),
	marker func(producerID int64, commit bool), skip func(base int64, why error)) (int64, error) {
	next := int64(-1)
	for len(buf) >= proto.RecordBatchHeaderSize {
		rb, rest, err := proto.ParseRecordBatch(buf)
		if err != nil {
			return next, errBadBatch
		}
		buf = rest
		base := rb.BaseOffset()
		next = rb.LastOffset() + 1
		if rb.Control() {
			if commit, ok := parseControlType(rb); ok {
				marker(rb.ProducerID(), commit)
			}
			continue
		}
		if rb.Codec() != proto.CodecNone {
			skip(base, errCompressedBatch)
			continue
		}
		rec := func(key, value []byte) { f(base, key, value) }
		if rb.Transactional() {
			pid := rb.ProducerID()
			rec = func(key, value []byte) { txnf(base, pid, key, value) }
		}
		if err := batchRecords(rb, rec); err != nil {
			skip(base, err)
		}
	}
	return next, nil
}

// parseControlType reads a control batch's marker type (Kafka's
// ControlRecordType: key version int16, type int16; 0 ABORT, 1 COMMIT).
// ok is false for other control records.
func parseControlType(rb proto.RecordBatch) (commit bool, ok bool) {
	if rb.Codec() != proto.CodecNone {
		return false, false
	}
	it := rb.RecordIter()
	var r proto.Record
	if !it.Next(&r) || len(r.Key) < 4 {
		return false, false
	}
	switch typ := int16(r.Key[2])<<8 | int16(r.Key[3]); typ {
	case 0:
		return false, true
	case 1:
		return true, true
	}
	return false, false
}
