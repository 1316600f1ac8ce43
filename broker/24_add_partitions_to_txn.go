package broker

// AddPartitionsToTxn (key 24), versions 0-5.
//
// Behaviour: v0-3 (clients) add the request's partitions to one
// transaction; v4+ batch several transactions (Kafka's broker-to-broker
// form), each either added or, with verify_only, only checked (KIP-890:
// is every partition in the transaction at this producer id and epoch).
// Each transaction goes to the transaction coordinator (txn_coordinator.go)
// and is answered when its Ongoing record is durable (at once for a
// verification or an error). As in Kafka, a transaction naming a topic or
// partition that does not exist is not attempted: those partitions answer
// UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED.
// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH below v2, as in Kafka.
//
// Authorization, as KafkaApis: v0-3 (clients) need TRANSACTIONAL_ID WRITE
// (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED on its partitions) and WRITE
// on each topic; a topic refused, or an internal topic (never added to a
// transaction by a client, authorizer or not), answers
// TOPIC_AUTHORIZATION_FAILED and fails the transaction like an unknown one.
// v4+ is the broker-to-broker form: with the authorizer on it needs
// CLUSTER_ACTION on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
//
// v5 without verify_only is transactions v2's implicit add (KIP-890 part
// 2), sent by the leader of a partition a Produce v12+ wrote to, or by a
// group coordinator for TxnOffsetCommit v5+ (txn_add.go): the Ongoing
// record carries client transaction version 2, as in Kafka.
//
// Differences from Apache Kafka: with the authorizer off, v4+ is also
// served to clients; below v5 the Ongoing record keeps the id's client
// transaction version (txn/doc.go).

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/txn"
)

func init() {
	register(decoded(kmsg.AddPartitionsToTxn, 0, 5, copying, (*Broker).serveAddPartitionsToTxn))
}

// addTxnPartitions is one transaction of an AddPartitionsToTxn request and
// its answer, one code per partition in request order.
type addTxnPartitions struct {
	txnID      string
	producerID int64
	epoch      int16
	verifyOnly bool
	// unauthorized: no WRITE on the transactional id (authz.go).
	unauthorized bool
	partitions   []txn.TopicPartition
	// topicRefused[i]: partitions[i]'s topic may not be added (v0-3: no
	// WRITE on it, or internal).
	topicRefused []bool
	codes        []int16
}

func (b *Broker) serveAddPartitionsToTxn(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.AddPartitionsToTxnRequest) {
	h := hdr
	h.ClientID = nil
	version := h.APIVersion
	var txns []*addTxnPartitions
	if version < 4 {
		a := &addTxnPartitions{txnID: r.TransactionalID, producerID: r.ProducerID, epoch: r.ProducerEpoch,
			unauthorized: !b.authorize(req, acl.OpWrite, acl.ResourceTransactionalID, r.TransactionalID)}
		for _, t := range r.Topics {
			refused := isInternalTopic(t.Topic) || !b.authorize(req, acl.OpWrite, acl.ResourceTopic, t.Topic)
			for _, p := range t.Partitions {
				a.partitions = append(a.partitions, txn.TopicPartition{Topic: t.Topic, Partition: p})
				a.topicRefused = append(a.topicRefused, refused)
			}
		}
		txns = append(txns, a)
	} else if !b.authorizeCluster(req, acl.OpClusterAction) {
		resp := kmsg.NewAddPartitionsToTxnResponse()
		resp.Version = version
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.replyMsg(req, &h, &resp)
		return
	} else {
		for _, rt := range r.Transactions {
			a := &addTxnPartitions{txnID: rt.TransactionalID, producerID: rt.ProducerID, epoch: rt.ProducerEpoch, verifyOnly: rt.VerifyOnly,
				unauthorized: !b.authorize(req, acl.OpWrite, acl.ResourceTransactionalID, rt.TransactionalID)}
			for _, t := range rt.Topics {
				for _, p := range t.Partitions {
					a.partitions = append(a.partitions, txn.TopicPartition{Topic: t.Topic, Partition: p})
				}
			}
			txns = append(txns, a)
		}
	}
	var mu sync.Mutex
	left := len(txns)
	finish := func() {
		resp := kmsg.NewAddPartitionsToTxnResponse()
		resp.Version = version
		for _, a := range txns {
			topics := addPartitionsResponseTopics(a)
			if version < 4 {
				resp.Topics = topics
				continue
			}
			rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
			rt.TransactionalID = a.txnID
			for _, t := range topics {
				tt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				tt.Topic = t.Topic
				for _, p := range t.Partitions {
					tp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					tp.Partition, tp.ErrorCode = p.Partition, p.ErrorCode
					tt.Partitions = append(tt.Partitions, tp)
				}
				rt.Topics = append(rt.Topics, tt)
			}
			resp.Transactions = append(resp.Transactions, rt)
		}
		b.replyMsg(req, &h, &resp)
	}
	if left == 0 {
		finish()
		return
	}
	for _, a := range txns {
		a := a
		b.addTxnPartitions(version, a, func() {
			mu.Lock()
			left--
			last := left == 0
			mu.Unlock()
			if last {
				finish()
			}
		})
	}
}

// addTxnPartitions answers one transaction of the request into a.codes
// and calls done (at once, or once its record is durable).
func (b *Broker) addTxnPartitions(version int16, a *addTxnPartitions, done func()) {
	a.codes = make([]int16, len(a.partitions))
	all := func(code int16) {
		for i := range a.codes {
			a.codes[i] = code
		}
		done()
	}
	if a.unauthorized {
		all(kerr.TransactionalIDAuthorizationFailed.Code)
		return
	}
	missing := false
	for i, tp := range a.partitions {
		switch {
		case a.topicRefused != nil && a.topicRefused[i]:
			a.codes[i] = kerr.TopicAuthorizationFailed.Code
			missing = true
		case b.reg == nil || !b.reg.HasPartition(tp.Topic, tp.Partition):
			a.codes[i] = kerr.UnknownTopicOrPartition.Code
			missing = true
		}
	}
	if missing {
		for i := range a.codes {
			if a.codes[i] == 0 {
				a.codes[i] = kerr.OperationNotAttempted.Code
			}
		}
		done()
		return
	}
	partitions := append([]txn.TopicPartition(nil), a.partitions...)
	code := b.txns.call(a.txnID, func(ans txn.Answer) {
		if ans.Partitions == nil {
			for i := range a.codes {
				a.codes[i] = txn.FencedForVersion(txn.APIAddPartitions, version, ans.Err)
			}
			done()
			return
		}
		byTP := make(map[txn.TopicPartition]int16, len(ans.Partitions))
		for _, p := range ans.Partitions {
			byTP[p.TopicPartition] = p.Err
		}
		for i, tp := range a.partitions {
			a.codes[i] = txn.FencedForVersion(txn.APIAddPartitions, version, byTP[tp])
		}
		done()
	}, func(co *txn.Coordinator, now time.Time) txn.Effects {
		if version >= 5 && !a.verifyOnly {
			// Transactions v2's implicit add, from a partition leader
			// (txn_add.go): the Ongoing record says client version 2.
			return co.AddPartitionsV2(a.txnID, a.producerID, a.epoch, partitions, now)
		}
		return co.AddPartitions(a.txnID, a.producerID, a.epoch, partitions, a.verifyOnly, now)
	})
	if code != 0 {
		all(code)
	}
}

// addPartitionsResponseTopics groups a's codes by topic, in request order.
func addPartitionsResponseTopics(a *addTxnPartitions) []kmsg.AddPartitionsToTxnResponseTopic {
	var out []kmsg.AddPartitionsToTxnResponseTopic
	index := map[string]int{}
	for i, tp := range a.partitions {
		j, ok := index[tp.Topic]
		if !ok {
			j = len(out)
			index[tp.Topic] = j
			t := kmsg.NewAddPartitionsToTxnResponseTopic()
			t.Topic = tp.Topic
			out = append(out, t)
		}
		p := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
		p.Partition, p.ErrorCode = tp.Partition, a.codes[i]
		out[j].Partitions = append(out[j].Partitions, p)
	}
	return out
}
