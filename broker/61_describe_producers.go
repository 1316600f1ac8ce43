package broker

// DescribeProducers (key 61), version 0.
//
// Behaviour: for each partition, the producers in its producer state
// (produce_state.go, produce_txn.go): producer id, epoch, last sequence,
// last timestamp (max timestamp of its last batch or marker), coordinator
// epoch of its last marker (-1 none) and the first offset of its open
// transaction (-1 none). The state is loaded first if it is not (on the
// partition's produce worker; the request waits on a goroutine). Unknown
// partition: UNKNOWN_TOPIC_OR_PARTITION; a failed load
// KAFKA_STORAGE_ERROR.
//
// Differences from Apache Kafka: producers are never expired, so every
// producer that ever wrote to the partition is listed (Kafka drops them
// after producer.id.expiration.ms); a transaction whose first batch is
// still being written reports a lower bound of its first offset.
//
// Authorization (KafkaApis): READ on the topic, else
// TOPIC_AUTHORIZATION_FAILED on its partitions.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DescribeProducers, 0, 0, copying, (*Broker).serveDescribeProducers))
}

func (b *Broker) serveDescribeProducers(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DescribeProducersRequest) {
	hdr.ClientID = nil // aliases the frame
	go func() {
		resp := kmsg.DescribeProducersResponse{Version: hdr.APIVersion}
		for _, t := range r.Topics {
			rt := kmsg.DescribeProducersResponseTopic{Topic: t.Topic}
			refused := !b.authorize(req, acl.OpRead, acl.ResourceTopic, t.Topic)
			for _, part := range t.Partitions {
				if refused {
					rt.Partitions = append(rt.Partitions, kmsg.DescribeProducersResponseTopicPartition{Partition: part, ErrorCode: kerr.TopicAuthorizationFailed.Code})
					continue
				}
				rt.Partitions = append(rt.Partitions, b.describeProducers(t.Topic, part))
			}
			resp.Topics = append(resp.Topics, rt)
		}
		b.replyMsg(req, &hdr, &resp)
	}()
}

// describeProducers answers one partition. May wait for a load: never on a
// ring thread.
func (b *Broker) describeProducers(topic string, index int32) kmsg.DescribeProducersResponseTopicPartition {
	rp := kmsg.DescribeProducersResponseTopicPartition{Partition: index}
	p, code := b.servedPartition(topic, index)
	if p == nil {
		rp.ErrorCode = code
		return rp
	}
	ps := b.produce.part(p)
	loaded := make(chan error, 1)
	ps.ensureLoaded(func(err error) { loaded <- err })
	if err := <-loaded; err != nil {
		rp.ErrorCode = kerr.KafkaStorageError.Code
		return rp
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for pid, e := range ps.producers {
		ap := kmsg.DescribeProducersResponseTopicPartitionActiveProducer{ProducerID: pid, ProducerEpoch: int32(e.epoch),
			LastSequence: e.lastSeq, LastTimestamp: e.lastTimestamp, CoordinatorEpoch: e.coordEpoch, CurrentTxnStartOffset: -1}
		if e.n == 0 {
			ap.LastSequence = -1
		}
		if e.txn != nil {
			ap.CurrentTxnStartOffset = e.txn.first
		}
		rp.ActiveProducers = append(rp.ActiveProducers, ap)
	}
	return rp
}
