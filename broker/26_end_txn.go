package broker

// EndTxn (key 26), versions 0-5.
//
// Behaviour: commits or aborts the transaction through the transaction
// coordinator (txn_coordinator.go): answered once the PrepareCommit or
// PrepareAbort record is durable (the outcome is then decided); the
// markers are written to every partition of the transaction afterwards,
// and until they are, the id answers CONCURRENT_TRANSACTIONS (which
// clients retry). v5 is transactions v2 (KIP-890, as Kafka maps it by
// version): the epoch is bumped by every EndTxn and the answer carries the
// producer id and epoch to continue with. PRODUCER_FENCED is
// INVALID_PRODUCER_EPOCH below v2, as in Kafka.
//
// Authorization (with the authorizer on): TRANSACTIONAL_ID WRITE, as Kafka.

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
	register(decoded(kmsg.EndTxn, 0, 5, copying, (*Broker).serveEndTxn))
}

func (b *Broker) serveEndTxn(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.EndTxnRequest) {
	h := hdr
	h.ClientID = nil
	resp := kmsg.NewEndTxnResponse()
	resp.Version = h.APIVersion
	reply := func(a txn.Answer) {
		resp.ErrorCode = txn.FencedForVersion(txn.APIEndTxn, h.APIVersion, a.Err)
		resp.ProducerID, resp.ProducerEpoch = a.ProducerID, a.ProducerEpoch
		b.replyMsg(req, &h, &resp)
	}
	fail := func(code int16) { reply(txn.Answer{Err: code, ProducerID: -1, ProducerEpoch: -1}) }
	if !b.authorize(req, acl.OpWrite, acl.ResourceTransactionalID, r.TransactionalID) { // authz.go
		fail(kerr.TransactionalIDAuthorizationFailed.Code)
		return
	}
	txnVersion := int16(0)
	if h.APIVersion >= 5 {
		txnVersion = 2
	}
	if code := b.txns.call(r.TransactionalID, reply, func(co *txn.Coordinator, now time.Time) txn.Effects {
		return co.EndTxn(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit, txnVersion, now)
	}); code != 0 {
		fail(code)
	}
}
