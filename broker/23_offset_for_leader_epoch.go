package broker

// OffsetForLeaderEpoch (key 23), versions 0-4.
//
// Behaviour: answered from the partition log's leader-epoch cache
// (storage: leader-epoch-checkpoint, Kafka's LeaderEpochFileCache) as
// Kafka's leader answers it (endOffsetFor): the largest epoch <= the one
// asked that wrote to this log, and its end offset, which is where the next
// epoch starts, or the log end offset for the latest epoch; an epoch below
// every cached one gets the start of the first cached epoch; an epoch above
// every one, or -1, gets (-1, -1), Kafka's UNDEFINED_EPOCH /
// UNDEFINED_EPOCH_OFFSET. The leader's current epoch counts as started at
// the log end even before its first batch (Kafka's makeLeader assigns it
// then; here it is written with that batch), so a follower of an older
// epoch learns where that epoch ended. current_leader_epoch (v2+) is fenced
// as in ListOffsets (UNKNOWN_LEADER_EPOCH above the served epoch,
// FENCED_LEADER_EPOCH below it, -1 skips the check). A partition not led
// here: NOT_LEADER_OR_FOLLOWER (servedPartition); unknown topic or
// partition: UNKNOWN_TOPIC_OR_PARTITION. In-memory only (the cache is read
// under the log's read lock): answered on the ring thread.
//
// Differences from Apache Kafka: the log end offset is that of completed
// writes. A requested epoch below -1 is answered (-1, -1) (Kafka's cache
// would answer the requested epoch with its first start offset).

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
			case p.LeaderEpoch >= 0:
				rp.LeaderEpoch, rp.EndOffset = part.Log.EndOffsetForEpochAsLeader(p.LeaderEpoch, part.leaderEpoch.Load())
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.replyMsg(req, h, &resp)
}
