package broker

// AddOffsetsToTxn (key 25), versions 0-4.
//
// Behaviour: adds the group's __consumer_offsets partition
// (group.PartitionFor(group, offsets.topic.num.partitions)) to the
// transaction, through the transaction coordinator (txn_coordinator.go),
// answered once the Ongoing record is durable. PRODUCER_FENCED is
// INVALID_PRODUCER_EPOCH below v2, as in Kafka.
//
// Authorization (with the authorizer on): TRANSACTIONAL_ID WRITE, then
// GROUP READ, as Kafka.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/txn"
)

func init() {
	register(decoded(kmsg.AddOffsetsToTxn, 0, 4, copying, (*Broker).serveAddOffsetsToTxn))
}

func (b *Broker) serveAddOffsetsToTxn(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.AddOffsetsToTxnRequest) {
	h := hdr
	h.ClientID = nil
	resp := kmsg.NewAddOffsetsToTxnResponse()
	resp.Version = h.APIVersion
	reply := func(code int16) {
		resp.ErrorCode = txn.FencedForVersion(txn.APIAddOffsets, h.APIVersion, code)
		b.replyMsg(req, &h, &resp)
	}
	if !b.authorize(req, acl.OpWrite, acl.ResourceTransactionalID, r.TransactionalID) { // authz.go
		reply(kerr.TransactionalIDAuthorizationFailed.Code)
		return
	}
	if !b.authorize(req, acl.OpRead, acl.ResourceGroup, r.Group) {
		reply(kerr.GroupAuthorizationFailed.Code)
		return
	}
	if r.Group == "" {
		reply(kerr.InvalidGroupID.Code)
		return
	}
	if code := b.txns.call(r.TransactionalID, func(a txn.Answer) { reply(a.Err) }, func(co *txn.Coordinator, now time.Time) txn.Effects {
		return co.AddOffsets(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, now)
	}); code != 0 {
		reply(code)
	}
}
