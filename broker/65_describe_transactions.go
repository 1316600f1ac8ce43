package broker

// DescribeTransactions (key 65), version 0.
//
// Behaviour: each transactional id's state from its transaction
// coordinator (txn_coordinator.go): Kafka's state name, producer id and
// epoch, timeout, start time and partitions. TRANSACTIONAL_ID_NOT_FOUND
// for an id the coordinator does not hold, NOT_COORDINATOR when another
// broker coordinates it, COORDINATOR_NOT_AVAILABLE when its partition did
// not load.
//
// Authorization (KafkaApis): DESCRIBE on the transactional id, else
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED; only the topics the principal may
// DESCRIBE are listed in a transaction's partitions.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DescribeTransactions, 0, 0, aliasing, (*Broker).serveDescribeTransactions))
}

func (b *Broker) serveDescribeTransactions(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DescribeTransactionsRequest) {
	resp := kmsg.NewDescribeTransactionsResponse()
	resp.Version = hdr.APIVersion
	tc := b.txns
	tc.mu.Lock()
	for _, id := range r.TransactionalIDs {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID = id
		s.ProducerID, s.ProducerEpoch, s.StartTimestamp = -1, -1, -1
		part := tc.partitionFor(id)
		switch {
		case !b.authorize(req, acl.OpDescribe, acl.ResourceTransactionalID, id):
			s.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case !tc.owns(part):
			s.ErrorCode = kerr.NotCoordinator.Code
		case tc.broken[part] != nil:
			s.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case tc.coords[part] == nil || tc.coords[part].Transaction(id) == nil:
			s.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			md := tc.coords[part].Transaction(id)
			s.State = md.State.String()
			s.TimeoutMillis = md.TimeoutMs
			s.StartTimestamp = md.StartTimestamp
			s.ProducerID, s.ProducerEpoch = md.ProducerID, md.ProducerEpoch
			for _, tp := range md.Partitions() {
				if !b.authorize(req, acl.OpDescribe, acl.ResourceTopic, tp.Topic) {
					continue
				}
				if n := len(s.Topics); n == 0 || s.Topics[n-1].Topic != tp.Topic {
					t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					t.Topic = tp.Topic
					s.Topics = append(s.Topics, t)
				}
				last := &s.Topics[len(s.Topics)-1]
				last.Partitions = append(last.Partitions, tp.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	tc.mu.Unlock()
	b.replyMsg(req, &hdr, &resp)
}
