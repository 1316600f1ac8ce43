package broker

// DeleteRecords (key 21), versions 0-2.
//
// Behaviour: moves each partition's log start offset up to the requested
// offset (-1 = the high watermark) and deletes the segments wholly below it
// (storage.DeleteRecords); the answer's low watermark is the new log start
// offset. An offset below -1 or above the high watermark answers
// OFFSET_OUT_OF_RANGE, an unknown topic or partition
// UNKNOWN_TOPIC_OR_PARTITION, a topic with cleanup.policy=compact (without
// delete) POLICY_VIOLATION, an internal topic (__consumer_offsets)
// INVALID_TOPIC_EXCEPTION, as in Kafka; a partition named twice
// INVALID_REQUEST. Deleting segments unlinks files, so the request is
// served on a goroutine, never on the ring thread.
//
// Differences from Apache Kafka: the timeout is not used (there are no
// followers to wait for); the new log start offset reaches its checkpoint
// file at the log dir's next checkpoint or clean shutdown.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

func init() {
	register(decoded(kmsg.DeleteRecords, 0, 2, copying, (*Broker).serveDeleteRecords))
}

func (b *Broker) serveDeleteRecords(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DeleteRecordsRequest) {
	hdr.ClientID = nil // aliases the frame
	go b.answerDeleteRecords(req, hdr, r)
}

func (b *Broker) answerDeleteRecords(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DeleteRecordsRequest) {
	resp := kmsg.DeleteRecordsResponse{Version: hdr.APIVersion}
	seen := partitionCounts{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			seen.add(t.Topic, p.Partition)
		}
	}
	for _, t := range r.Topics {
		rt := kmsg.DeleteRecordsResponseTopic{Topic: t.Topic}
		deletable := b.authorize(req, acl.OpDelete, acl.ResourceTopic, t.Topic) // authz.go
		for _, p := range t.Partitions {
			rp := kmsg.DeleteRecordsResponseTopicPartition{Partition: p.Partition, LowWatermark: -1}
			if !deletable {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if seen.repeated(t.Topic, p.Partition) {
				rp.ErrorCode = kerr.InvalidRequest.Code
			} else {
				rp.LowWatermark, rp.ErrorCode = b.deleteRecords(t.Topic, p.Partition, p.Offset)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.replyMsg(req, &hdr, &resp)
}

func (b *Broker) deleteRecords(topic string, partition int32, offset int64) (int64, int16) {
	if isInternalTopic(topic) {
		return -1, kerr.InvalidTopicException.Code // as Kafka, before looking the partition up
	}
	p, code := b.servedPartition(topic, partition)
	if p == nil {
		return -1, code
	}
	if p.Topic.Settings().cleanupPolicy == "compact" {
		return -1, kerr.PolicyViolation.Code
	}
	if offset < -1 {
		return -1, kerr.OffsetOutOfRange.Code
	}
	lso, err := p.Log.DeleteRecords(offset)
	switch {
	case err == nil:
		return lso, 0
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return -1, kerr.OffsetOutOfRange.Code
	default:
		// The start moved but a segment file could not be unlinked: the
		// records are gone for readers; the operator sees the log line.
		b.log.Warn("delete records: removing segment files", zap.String("topic", topic), zap.Int32("partition", partition), zap.Error(err))
		return lso, 0
	}
}
