package broker

// OffsetForLeaderEpoch (key 23), versions 0-4.
//
// Behaviour: every partition has had one leader epoch, 0 (one broker, no
// leader changes; Metadata reports epoch 0). Asked for epoch 0 the answer is
// (epoch 0, end offset = high watermark); asked for any other epoch it is
// (-1, -1), Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET, which is what
// Kafka's leader-epoch cache answers for an epoch it does not hold.
// current_leader_epoch (v2+) is fenced as in ListOffsets (UNKNOWN_LEADER_EPOCH
// above 0, FENCED_LEADER_EPOCH below it, -1 skips the check). Unknown
// topic or partition: UNKNOWN_TOPIC_OR_PARTITION. In-memory only: answered
// on the ring thread.
//
// Differences from Apache Kafka: the end offset is the high watermark, which
// here always equals the log end offset of completed writes; no epoch cache
// file (leader-epoch-checkpoint) is kept.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.OffsetForLeaderEpoch, 0, 4, aliasing, (*Broker).serveOffsetForLeaderEpoch))
}

func (b *Broker) serveOffsetForLeaderEpoch(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.OffsetForLeaderEpochRequest) {
	h := &hdr
	resp := kmsg.OffsetForLeaderEpochResponse{Version: h.APIVersion}
	for _, t := range r.Topics {
		rt := kmsg.OffsetForLeaderEpochResponseTopic{Topic: t.Topic}
		described := b.authorize(req, acl.OpDescribe, acl.ResourceTopic, t.Topic) // authz.go
		for _, p := range t.Partitions {
			rp := kmsg.OffsetForLeaderEpochResponseTopicPartition{Partition: p.Partition, LeaderEpoch: -1, EndOffset: -1}
			part, code := b.servedPartition(t.Topic, p.Partition)
			switch {
			case !described:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case part == nil:
				rp.ErrorCode = code
			case checkPartitionEpoch(part, p.CurrentLeaderEpoch) != 0:
				rp.ErrorCode = checkPartitionEpoch(part, p.CurrentLeaderEpoch)
			case p.LeaderEpoch >= 0 && p.LeaderEpoch <= part.leaderEpoch.Load():
				// One copy of every partition (no replication yet): no
				// epoch's log can have diverged, so every epoch up to the
				// current one ends at the high watermark.
				rp.LeaderEpoch, rp.EndOffset = part.leaderEpoch.Load(), part.Log.HighWatermark()
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.replyMsg(req, h, &resp)
}
