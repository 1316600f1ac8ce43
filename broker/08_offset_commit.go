package broker

// OffsetCommit (key 8), versions 2-9 (v0-v1, ZooKeeper-era, are not served;
// ApiVersions says 2).
//
// Behaviour: the committer is validated against the group (generation
// fencing: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
// REBALANCE_IN_PROGRESS while CompletingRebalance; generation -1 with no
// member id is a "simple" commit, allowed to an Empty or missing group).
// The offsets go to __consumer_offsets as one record batch (Kafka's
// OffsetCommitKey/Value schemas) on the group's partition; the request is
// answered, and the offsets become visible to OffsetFetch, when that append
// completed (its log callback). Per partition: UNKNOWN_TOPIC_OR_PARTITION
// for a partition that does not exist, OFFSET_METADATA_TOO_LARGE above
// 4096 bytes of metadata; a refused append (log backlog) answers
// COORDINATOR_NOT_AVAILABLE so the client retries.
//
// Differences from Apache Kafka: an empty group id is INVALID_GROUP_ID
// (Kafka accepts "" for commits, a pre-0.9 leftover); the v2-v4 retention
// time is ignored (offsets.retention.minutes applies).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

func init() {
	register(decoded(kmsg.OffsetCommit, 2, 9, copying, (*Broker).serveOffsetCommit))
}

func (b *Broker) serveOffsetCommit(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.OffsetCommitRequest) {
	h := hdr
	h.ClientID = nil
	resp := kmsg.NewOffsetCommitResponse()
	resp.Version = h.APIVersion
	// codes[i][j] answers r.Topics[i].Partitions[j]; -1 = to be appended.
	codes := make([][]int16, len(r.Topics))
	reply := func() {
		for i, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		b.replyMsg(req, &h, &resp)
	}
	inst := ""
	if r.InstanceID != nil {
		inst = *r.InstanceID
	}
	now := b.clock.Now()
	c := b.groups
	c.lock()
	defer c.unlock()
	code := c.g.CheckCommit(now, r.Group, r.MemberID, inst, r.Generation)
	var oc offsetCommits
	for i, t := range r.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		readable := b.authorize(req, acl.OpRead, acl.ResourceTopic, t.Topic) // authz.go (GROUP READ: in decoded)
		for j, p := range t.Partitions {
			switch {
			case !readable:
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
			case code != 0:
				codes[i][j] = code
			default:
				le := int32(-1)
				if r.Version >= 6 {
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
	batch := appendRecordBatch(nil, now.UnixMilli(), oc.records)
	part := group.PartitionFor(r.Group, c.partitions)
	groupID := r.Group
	ok := c.persist.with(func(t *Topic, _ bool) {
		p := partitionOf(t, part)
		if p == nil {
			fail(kerr.CoordinatorNotAvailable.Code)
			return
		}
		if code := b.coordRefuse(p); code != 0 {
			fail(coordinatorCode(code))
			return
		}
		err := p.Log.Append(batch, storage.AppendFunc(func(res storage.AppendResult) {
			if res.Err != nil {
				c.log.Warn("offset commit append failed", zap.String("group", groupID), zap.Error(res.Err))
				fail(kerr.CoordinatorNotAvailable.Code)
				return
			}
			// Answered (and visible to OffsetFetch) once on the ISR
			// (coord_append.go), as Kafka's commit with acks=all.
			b.coordReplicated(p, res, func(code int16) {
				if code != 0 {
					fail(coordinatorCode(code))
					return
				}
				c.lock()
				for _, pd := range oc.toApply {
					c.g.ApplyOffset(now, groupID, pd.tp, pd.o)
				}
				c.unlock()
				reply()
			})
		}))
		if err != nil {
			fail(kerr.CoordinatorNotAvailable.Code)
		}
	})
	if !ok {
		fail(kerr.CoordinatorNotAvailable.Code)
	}
}

// offsetCommits is what an offset commit (OffsetCommit, TxnOffsetCommit)
// stores: the offsets accepted, with their place in the response, and
// their __consumer_offsets records.
type offsetCommits struct {
	toApply []pendingOffset
	records [][2][]byte
}

type pendingOffset struct {
	i, j int // topic and partition index in the request
	tp   group.TopicPartition
	o    group.Offset
}

// add checks partition (i, j) of groupID's commit and accepts its offset;
// it returns the partition's error code (0 when accepted).
func (oc *offsetCommits) add(b *Broker, groupID string, i, j int, topic string, partition int32, offset int64, leaderEpoch int32, metadata *string, now time.Time) int16 {
	md := ""
	if metadata != nil {
		md = *metadata
	}
	switch {
	case b.reg == nil || !b.reg.HasPartition(topic, partition):
		return kerr.UnknownTopicOrPartition.Code
	case len(md) > group.MaxOffsetMetadataBytes:
		return kerr.OffsetMetadataTooLarge.Code
	}
	pd := pendingOffset{i: i, j: j, tp: group.TopicPartition{Topic: topic, Partition: partition},
		o: group.Offset{Offset: offset, LeaderEpoch: leaderEpoch, Metadata: md, CommitTimestamp: now.UnixMilli()}}
	oc.toApply = append(oc.toApply, pd)
	oc.records = append(oc.records, [2][]byte{group.OffsetKey(groupID, pd.tp), group.OffsetValue(pd.o)})
	return 0
}
